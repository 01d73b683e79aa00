//! Streaming aggregation: `group_by(..).agg(..)` over a stream.
//!
//! Each batch, DataFusion computes a *partial* aggregate of the batch's rows alone (the first
//! phase of its two-phase aggregation), and the operator merges those partial states into the
//! groups kept in [`AggregateState`]. Work per batch is proportional to the batch: the stored
//! groups are only looked up, never rescanned. What is emitted depends on the output mode:
//! complete emits every group, update only the groups this batch changed.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{ExecutionPlan, collect_partitioned};

use crate::error::{Error, Result};
use crate::execution::progress::StateOperatorProgress;
use crate::plan::AggregatePart;
use crate::plan::tables::BatchTable;
use crate::session::Session;
use crate::state::AggregateState;
use crate::writer::OutputMode;

pub(crate) struct StatefulAggregate {
    session: Session,
    /// The `Aggregate` over this batch's rows, analyzed (types coerced) but not optimized, so
    /// its physical plan has exactly the aggregates the logical plan names, in order.
    plan: LogicalPlan,
    /// Where emitted rows go, for the part of the query above the aggregation.
    output: BatchTable,
    output_schema: SchemaRef,
    state: AggregateState,
    rows_updated: usize,
}

impl StatefulAggregate {
    pub(crate) fn try_new(session: &Session, part: AggregatePart, dir: PathBuf) -> Result<Self> {
        let df_state = session.inner.ctx.state();
        let plan = df_state.analyzer().execute_and_check(part.plan, df_state.config_options(), |_, _| {})?;
        let partial = partial_plan(session, &plan)?;
        let exec =
            partial.downcast_ref::<AggregateExec>().ok_or_else(|| Error::Internal("no partial aggregate".into()))?;
        let state =
            AggregateState::try_new(partial.schema(), exec.group_expr().expr().len(), exec.aggr_expr().to_vec(), dir)?;
        let output_schema = datafusion::datasource::TableProvider::schema(&part.output);
        Ok(StatefulAggregate {
            session: session.clone(),
            plan,
            output: part.output,
            output_schema,
            state,
            rows_updated: 0,
        })
    }

    /// Rebuilds the state as of `version` (the last committed batch), or empty.
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.state.restore(version)
    }

    /// Folds the current batch's rows (already in the source tables) into the state.
    pub(crate) fn process(&mut self) -> Result<()> {
        let partial = partial_plan(&self.session, &self.plan)?;
        let task = self.session.inner.ctx.task_ctx();
        // Partition by partition, in order: the order groups are first seen in (and so the
        // order the console prints them in) is the same on every run.
        let partitions = self.session.block_on(collect_partitioned(partial, task))?;
        for b in partitions.iter().flatten() {
            self.state.merge(b)?;
        }
        self.rows_updated = self.state.touched().len();
        Ok(())
    }

    /// Puts this batch's result rows into the output table: every group in complete mode, the
    /// changed groups in update mode.
    pub(crate) fn emit(&mut self, mode: OutputMode) -> Result<()> {
        let groups = match mode {
            OutputMode::Complete => self.state.all_groups(),
            OutputMode::Update => self.state.touched().to_vec(),
            OutputMode::Append => {
                return Err(Error::Internal("append mode reached an aggregation without watermark".into()));
            }
        };
        let columns = self.state.evaluate(&groups)?;
        let columns = columns
            .iter()
            .zip(self.output_schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(self.output_schema.clone(), columns)?;
        self.output.set(vec![batch]);
        Ok(())
    }

    /// Deletes state files no retained batch needs.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        self.state.purge(keep_from)
    }

    /// Checkpoints the state as version `batch_id`; returns the operator's progress.
    pub(crate) fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress> {
        let started = std::time::Instant::now();
        self.state.commit(batch_id)?;
        Ok(StateOperatorProgress {
            operator_name: "stateStoreSave".into(),
            num_rows_total: self.state.len() as u64,
            num_rows_updated: self.rows_updated as u64,
            num_rows_removed: 0,
            num_rows_dropped_by_watermark: 0,
            memory_used_bytes: self.state.memory_bytes() as u64,
            commit_time_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The first phase of DataFusion's aggregation over the current batch: group keys and
/// accumulator states.
fn partial_plan(session: &Session, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
    let state = session.inner.ctx.state();
    let physical = session.block_on(state.query_planner().create_physical_plan(plan, &state))?;
    find_partial(&physical).ok_or_else(|| Error::Internal(format!("no aggregate in the physical plan of {plan}")))
}

fn find_partial(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(agg) = plan.downcast_ref::<AggregateExec>() {
        match agg.mode() {
            AggregateMode::Partial => return Some(plan.clone()),
            AggregateMode::Single | AggregateMode::SinglePartitioned => {
                let partial = AggregateExec::try_new(
                    AggregateMode::Partial,
                    agg.group_expr().clone(),
                    agg.aggr_expr().to_vec(),
                    agg.filter_expr().to_vec(),
                    agg.input().clone(),
                    agg.input_schema(),
                )
                .ok()?;
                return Some(Arc::new(partial));
            }
            _ => {}
        }
    }
    plan.children().into_iter().find_map(find_partial)
}
