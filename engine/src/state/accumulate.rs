//! An aggregation's accumulators, used only to merge state rows: no accumulator lives between
//! batches. A merge creates one of DataFusion's `GroupsAccumulator`s per aggregate for just the
//! groups it touches, feeds it their stored state rows and the batch's partial rows, and takes
//! the new state rows (or the final values) out. DataFusion's partial aggregation emits the
//! same grouped accumulators' state, so the rows always match.

use std::sync::Arc;

use arrow::array::ArrayRef;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::rows::StateRows;
use crate::error::Result;

/// One accumulator per aggregate, over groups numbered `0..n`.
pub(super) type Accumulators = Vec<Box<dyn GroupsAccumulator>>;

/// An aggregation's aggregates and the width of each one's state.
pub(super) struct Aggregates {
    exprs: Vec<Arc<AggregateFunctionExpr>>,
    widths: Vec<usize>,
}

impl Aggregates {
    pub(super) fn try_new(exprs: Vec<Arc<AggregateFunctionExpr>>) -> Result<Self> {
        let widths =
            exprs.iter().map(|a| a.state_fields().map(|f| f.len())).collect::<datafusion::error::Result<Vec<_>>>()?;
        Ok(Aggregates { exprs, widths })
    }

    /// State columns of all aggregates together.
    pub(super) fn state_width(&self) -> usize {
        self.widths.iter().sum()
    }

    /// Fresh accumulators, holding no group yet.
    pub(super) fn accumulators(&self) -> Result<Accumulators> {
        self.exprs.iter().map(groups_accumulator).collect()
    }

    /// Merges state columns (all aggregates', in order): row `i` into group `row_groups[i]`,
    /// of `num_groups` groups.
    pub(super) fn merge(
        &self,
        accumulators: &mut Accumulators,
        states: &[ArrayRef],
        row_groups: &[usize],
        num_groups: usize,
    ) -> Result<()> {
        let mut column = 0;
        for (acc, &width) in accumulators.iter_mut().zip(&self.widths) {
            acc.merge_batch(&states[column..column + width], row_groups, num_groups)?;
            column += width;
        }
        Ok(())
    }

    /// Accumulators over `slots` (group `i` is `slots[i]`) holding their stored rows; a slot
    /// without a row starts empty.
    pub(super) fn holding(&self, rows: &StateRows, slots: &[u32]) -> Result<Accumulators> {
        let mut accumulators = self.accumulators()?;
        let (stored, at): (Vec<u32>, Vec<usize>) =
            slots.iter().enumerate().filter(|(_, s)| rows.has(**s)).map(|(i, &s)| (s, i)).unzip();
        self.merge(&mut accumulators, &rows.get(&stored)?, &at, slots.len())?;
        Ok(accumulators)
    }

    /// The groups' state rows, taken out.
    pub(super) fn states(accumulators: Accumulators) -> Result<Vec<ArrayRef>> {
        let mut columns = Vec::new();
        for mut acc in accumulators {
            columns.extend(acc.state(EmitTo::All)?);
        }
        Ok(columns)
    }

    /// The groups' final values, one column per aggregate, taken out.
    pub(super) fn evaluate(accumulators: Accumulators) -> Result<Vec<ArrayRef>> {
        accumulators.into_iter().map(|mut acc| Ok(acc.evaluate(EmitTo::All)?)).collect()
    }
}

/// A DataFusion grouped accumulator for `aggregate`; for the few aggregates without one, its
/// per-group accumulators behind the same interface.
fn groups_accumulator(aggregate: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn GroupsAccumulator>> {
    if aggregate.groups_accumulator_supported() {
        return Ok(aggregate.create_groups_accumulator()?);
    }
    let aggregate = aggregate.clone();
    Ok(Box::new(GroupsAccumulatorAdapter::new(move || aggregate.create_accumulator())))
}
