//! Streaming aggregation: `group_by(..).agg(..)` over a stream.
//!
//! Each batch, DataFusion computes a *partial* aggregate of the batch's rows alone (the first
//! phase of its two-phase aggregation), and the operator merges those partial states into the
//! groups kept in [`AggregateState`]. Work per batch is proportional to the batch: the stored
//! groups are only looked up, never rescanned. What is emitted depends on the output mode:
//! complete emits every group, update only the groups this batch changed.
//!
//! Keyed on event time (a window of the watermark column, or the column itself), the operator
//! uses the two watermarks of SEMANTICS §2: partial rows whose key is at or before the
//! previous batch's watermark are dropped as late (per window, so part of a sliding-window
//! row can survive); groups at or before this batch's watermark are final. Append emits a
//! group once, when final, and forgets it; update emits changed groups and forgets final ones
//! silently. Complete mode keeps and shows everything: no dropping, no eviction (§3).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{ExecutionPlan, collect_partitioned};

use crate::error::{Error, Result};
use crate::execution::progress::StateOperatorProgress;
use crate::operator::late_rows::LateRowsBuffer;
use crate::plan::AggregatePart;
use crate::plan::late::{LateCell, LateRowsPlan};
use crate::plan::tables::BatchTable;
use crate::plan::watermark::delay_of;
use crate::session::Session;
use crate::state::sessions::SessionState;
use crate::state::{AggregateState, EventTimeKey, GroupStore};
use crate::writer::OutputMode;

pub(crate) struct StatefulAggregate {
    session: Session,
    /// The `Aggregate` over this batch's rows, analyzed (types coerced) but not optimized, so
    /// its physical plan has exactly the aggregates the logical plan names, in order.
    plan: LogicalPlan,
    /// Where emitted rows go, for the part of the query above the aggregation.
    output: BatchTable,
    output_schema: SchemaRef,
    state: Box<dyn GroupStore>,
    mode: OutputMode,
    /// Whether the key holds event time (so late rows drop and final groups leave).
    event_time: bool,
    /// Session windows: the late-row filter below the aggregation, and whether it drops
    /// (with a watermark, in every output mode).
    late: Option<(LateCell, bool)>,
    /// How to find the input rows dropped as late, and where they go (when asked for).
    late_rows_plan: Option<LateRowsPlan>,
    late_rows: Option<LateRowsBuffer>,
    rows_updated: usize,
    rows_dropped: u64,
    updates_ms: u64,
    removals_ms: u64,
}

impl StatefulAggregate {
    pub(crate) fn try_new(session: &Session, part: AggregatePart, mode: OutputMode, dir: PathBuf) -> Result<Self> {
        let df_state = session.inner.ctx.state();
        let plan = df_state.analyzer().execute_and_check(part.plan, df_state.config_options(), |_, _| {})?;
        let partial = partial_plan(session, &plan)?;
        let exec =
            partial.downcast_ref::<AggregateExec>().ok_or_else(|| Error::Internal("no partial aggregate".into()))?;
        let num_keys = exec.group_expr().expr().len();
        let key = event_time_key(&plan, num_keys);
        let fields = plan.schema().fields();
        let session_at = (0..num_keys).find(|&i| crate::plan::is_session(&fields[i]));
        let aggregates = exec.aggr_expr().to_vec();
        let state: Box<dyn GroupStore> = match session_at {
            Some(at) => Box::new(SessionState::try_new(partial.schema(), num_keys, at, aggregates, dir)?),
            None => Box::new(AggregateState::try_new(partial.schema(), num_keys, aggregates, key, dir)?),
        };
        let late = part.late.map(|cell| (cell, session_at.is_some_and(|at| delay_of(&fields[at]).is_some())));
        let output_schema = datafusion::datasource::TableProvider::schema(&part.output);
        Ok(StatefulAggregate {
            session: session.clone(),
            plan,
            output: part.output,
            output_schema,
            state,
            mode,
            event_time: key.is_some() && mode != OutputMode::Complete,
            late,
            late_rows: None,
            late_rows_plan: part.late_rows,
            rows_updated: 0,
            rows_dropped: 0,
            updates_ms: 0,
            removals_ms: 0,
        })
    }

    /// Sends the input rows this operator drops as late to `buffer` (the late-rows output).
    pub(crate) fn send_late_rows_to(&mut self, buffer: LateRowsBuffer) {
        self.late_rows = Some(buffer);
    }

    /// Whether, with `next_watermark_ms` after a batch that used `watermark_ms`, this operator
    /// wants a no-data batch. Spark's `shouldRunAnotherBatch` asks only for append or update
    /// mode and a watermark that moved, whether or not the key holds event time.
    pub(crate) fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        self.mode != OutputMode::Complete && next_watermark_ms > watermark_ms
    }

    /// The earliest event time (a window's end) still open in state, and how many groups are.
    pub(crate) fn open_event_times(&self) -> (Option<i64>, usize) {
        if self.event_time { self.state.open_event_times() } else { (None, 0) }
    }

    /// Rebuilds the state as of `version` (the last committed batch), or empty.
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.state.restore(version)
    }

    /// Folds the current batch's rows (already in the source tables) into the state, dropping
    /// rows at or before `late_watermark_ms` (the previous batch's watermark).
    pub(crate) fn process(&mut self, late_watermark_ms: i64) -> Result<()> {
        let started = std::time::Instant::now();
        if let Some((cell, drops)) = &self.late {
            let mut late = cell.lock().expect("late rows lock poisoned");
            late.until_us = drops.then_some(late_watermark_ms * 1_000);
            late.dropped = 0;
        }
        let partial = partial_plan(&self.session, &self.plan)?;
        let task = self.session.inner.ctx.task_ctx();
        // Partition by partition, in order: the order groups are first seen in (and so the
        // order the console prints them in) is the same on every run.
        let partitions = self.session.block_on(collect_partitioned(partial, task))?;
        let late_until = self.event_time.then_some(late_watermark_ms * 1_000);
        self.rows_dropped = 0;
        for b in partitions.iter().flatten() {
            self.rows_dropped += self.state.merge(b, late_until)?;
        }
        if let Some((cell, _)) = &self.late {
            self.rows_dropped += cell.lock().expect("late rows lock poisoned").dropped;
        }
        if self.rows_dropped > 0 {
            self.record_late_rows(late_watermark_ms * 1_000)?;
        }
        self.rows_updated = self.state.touched().len();
        self.updates_ms = started.elapsed().as_millis() as u64;
        Ok(())
    }

    /// Lists the input rows behind this batch's dropped rows in the late-rows output.
    fn record_late_rows(&self, watermark_us: i64) -> Result<()> {
        let (Some(buffer), Some(plan)) = (&self.late_rows, &self.late_rows_plan) else { return Ok(()) };
        let late = plan.late_by(watermark_us)?;
        let state = self.session.inner.ctx.state();
        let physical = self.session.block_on(state.create_physical_plan(&late))?;
        let partitions = self.session.block_on(collect_partitioned(physical, self.session.inner.ctx.task_ctx()))?;
        for batch in partitions.iter().flatten() {
            let (rows, times) = split_late_time(batch)?;
            buffer.record("stateStoreSave", plan.reason, watermark_us, &times, &rows)?;
        }
        Ok(())
    }

    /// Puts this batch's result rows into the output table, then evicts the groups
    /// `watermark_ms` has passed: complete mode shows every group, update the groups this
    /// batch changed, append the groups that became final.
    pub(crate) fn emit(&mut self, watermark_ms: i64) -> Result<()> {
        let started = std::time::Instant::now();
        let expired = if self.event_time { self.state.expired(watermark_ms * 1_000) } else { Vec::new() };
        let groups = match self.mode {
            OutputMode::Complete => self.state.all_groups(),
            OutputMode::Update => self.state.touched(),
            OutputMode::Append if self.event_time => expired.clone(),
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
        let removing = std::time::Instant::now();
        self.state.remove(&expired);
        self.removals_ms = removing.elapsed().as_millis() as u64;
        tracing::trace!(emit_ms = started.elapsed().as_millis() as u64, evicted = expired.len(), "aggregate emitted");
        Ok(())
    }

    /// Deletes state files no retained batch needs.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        self.state.purge(keep_from)
    }

    /// Checkpoints the state as version `batch_id`; returns the operator's progress.
    pub(crate) fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress> {
        let started = std::time::Instant::now();
        let removed = self.state.removed_count() as u64;
        self.state.commit(batch_id)?;
        Ok(StateOperatorProgress {
            operator_name: "stateStoreSave".into(),
            num_rows_total: self.state.len() as u64,
            num_rows_updated: self.rows_updated as u64,
            num_rows_removed: removed,
            num_rows_dropped_by_watermark: self.rows_dropped,
            memory_used_bytes: self.state.memory_bytes() as u64,
            all_updates_time_ms: self.updates_ms,
            all_removals_time_ms: self.removals_ms,
            commit_time_ms: started.elapsed().as_millis() as u64,
            custom_metrics: Default::default(),
        })
    }
}

/// A batch of [`LateRowsPlan::late_by`] as its input rows and their judged times.
fn split_late_time(batch: &RecordBatch) -> Result<(RecordBatch, Vec<i64>)> {
    let last = batch.num_columns() - 1;
    let times = batch.column(last).as_primitive::<TimestampMicrosecondType>().values().to_vec();
    let rows = batch.project(&(0..last).collect::<Vec<_>>())?;
    Ok((rows, times))
}

/// The grouping key that carries event time: the first key column marked by a watermark,
/// a window (read its end) or a timestamp (read its value).
fn event_time_key(plan: &LogicalPlan, num_keys: usize) -> Option<EventTimeKey> {
    let schema = plan.schema();
    (0..num_keys).find_map(|i| {
        let field = schema.field(i);
        delay_of(field)?;
        match field.data_type() {
            arrow::datatypes::DataType::Struct(_) => Some(EventTimeKey::WindowEnd(i)),
            arrow::datatypes::DataType::Timestamp(_, _) => Some(EventTimeKey::Time(i)),
            _ => None,
        }
    })
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
