//! One group's accumulators, created so that they can merge what DataFusion's partial
//! aggregation emits.
//!
//! The partial aggregation runs DataFusion's *grouped* accumulators. For nearly every aggregate
//! their state is the same as the per-group [`Accumulator`]'s, which state keeps per group.
//! `approx_distinct` is the exception: its grouped state is a sparse list of hashes, which the
//! per-group accumulator cannot merge. For it, a group keeps a one-group
//! [`GroupsAccumulator`] behind the [`Accumulator`] interface.
//!
//! DataFusion's accumulators may be used up by [`Accumulator::state`] and
//! [`Accumulator::evaluate`] (a batch query calls them once, at the end): `count(DISTINCT s)`
//! over strings hands its set over and is empty afterwards. A streaming group lives on after
//! every batch's output and checkpoint, so each accumulator is [`Kept`]: its state is merged
//! back into a fresh accumulator after either call.

use std::sync::{Arc, Mutex};

use arrow::array::ArrayRef;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

/// A fresh accumulator for one group of `aggregate`.
pub(super) fn new_accumulator(aggregate: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn Accumulator>> {
    if aggregate.fun().name() == "approx_distinct" && aggregate.groups_accumulator_supported() {
        return Ok(Box::new(OneGroup(Mutex::new(aggregate.create_groups_accumulator()?))));
    }
    Ok(Box::new(Kept { inner: aggregate.create_accumulator()?, aggregate: aggregate.clone() }))
}

/// An accumulator that survives [`Accumulator::state`] and [`Accumulator::evaluate`].
#[derive(Debug)]
struct Kept {
    inner: Box<dyn Accumulator>,
    aggregate: Arc<AggregateFunctionExpr>,
}

impl Kept {
    /// A fresh accumulator holding `state`.
    fn holding(&self, state: &[ScalarValue]) -> Result<Box<dyn Accumulator>> {
        let mut fresh = self.aggregate.create_accumulator()?;
        let arrays = state.iter().map(|v| v.to_array()).collect::<Result<Vec<_>>>()?;
        fresh.merge_batch(&arrays)?;
        Ok(fresh)
    }
}

impl Accumulator for Kept {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let state = self.inner.state()?;
        self.inner = self.holding(&state)?;
        Ok(state)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let state = self.state()?;
        self.holding(&state)?.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}

/// A grouped accumulator holding a single group (index 0). (The mutex makes it `Sync`, which
/// [`Accumulator`] requires; `&mut self` methods reach it without locking.)
struct OneGroup(Mutex<Box<dyn GroupsAccumulator>>);

impl std::fmt::Debug for OneGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneGroup")
    }
}

impl OneGroup {
    /// The state arrays (one row). Emitting takes the group out, so it is merged back.
    fn group(&mut self) -> &mut dyn GroupsAccumulator {
        self.0.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).as_mut()
    }

    fn state_arrays(&mut self) -> Result<Vec<ArrayRef>> {
        let state = self.group().state(EmitTo::All)?;
        self.group().merge_batch(&state, &[0], 1)?;
        Ok(state)
    }
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = values.first().map_or(0, |v| v.len());
        self.group().update_batch(values, &vec![0; rows], None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states.first().map_or(0, |s| s.len());
        self.group().merge_batch(states, &vec![0; rows], 1)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.state_arrays()?.iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let state = self.state_arrays()?;
        let value = self.group().evaluate(EmitTo::All)?;
        self.group().merge_batch(&state, &[0], 1)?;
        ScalarValue::try_from_array(&value, 0)
    }

    fn size(&self) -> usize {
        self.0.lock().map_or(0, |g| g.size())
    }
}
