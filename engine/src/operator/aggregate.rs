//! Streaming aggregation: `group_by(..).agg(..)` over a stream.
//!
//! Each batch, DataFusion computes a *partial* aggregate of the batch's input rows alone (the first
//! phase of its two-phase aggregation), and the operator merges those partial states into the
//! groups kept in [`AggregateState`]. Work per batch is proportional to the batch: the stored
//! groups are only looked up, never rescanned. What is emitted depends on the output mode:
//! complete emits every group, update only the groups this batch changed.
//!
//! Keyed on event time (a window of the watermark column, or the column itself), the operator
//! uses the two watermarks of a batch (semantics appendix, §2): partial rows whose key is at or before the
//! previous batch's watermark are dropped as late (per window, so part of a sliding-window
//! row can survive); groups at or before this batch's watermark are final. Append emits a
//! group once, when final, and forgets it; update emits changed groups and forgets final ones
//! silently. Complete mode keeps and shows everything: no dropping, no eviction (§3).
//!
//! A session-window aggregation judges lateness per input row instead, before aggregating: a
//! row whose own session `[t, t + gap)` ends at or before `W_{N-1}` is dropped (§3), in every
//! output mode.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, concat_batches, filter_record_batch, not};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};

use super::late_rows::{LateRows, LateRowsPlan, Reason};
use super::{BatchWatermarks, OperatorContext, StatefulOperator};
use crate::error::{Error, Result};
use crate::output_mode::OutputMode;
use crate::plan::runner::PlanRunner;
use crate::plan::tables::BatchTable;
use crate::plan::watermark::delay_of;
use crate::plan::windows::SESSION_COLUMN;
use crate::progress::StateOperatorProgress;
use crate::state::sessions::SessionState;
use crate::state::{AggregateState, EventTimeKey, GroupStore};

pub(crate) struct StatefulAggregate {
    /// Spark's name for the operator in progress and in the late-rows output.
    name: &'static str,
    runner: PlanRunner,
    /// The `Aggregate` over this batch's input rows, analyzed (types coerced) but not
    /// optimized, so its physical plan has exactly the aggregates the logical plan names.
    plan: LogicalPlan,
    /// Where this batch's input rows are put for `plan` to read.
    rows: BatchTable,
    /// The layout of the rows this operator passes on.
    output_schema: SchemaRef,
    state: Box<dyn GroupStore>,
    mode: OutputMode,
    /// Whether the key holds event time (so late rows drop and final groups leave).
    event_time: bool,
    /// Session windows with a watermark: the input column holding each row's own session,
    /// judged late by its end.
    late_sessions: Option<usize>,
    /// How to list the input rows behind dropped partial rows (windows, event-time keys).
    late_rows_plan: Option<LateRowsPlan>,
    /// The rows dropped as late, when the query keeps them.
    late_rows: Option<LateRows>,
    rows_updated: usize,
    rows_dropped: u64,
    updates_ms: u64,
    removals_ms: u64,
}

impl StatefulAggregate {
    /// `plan` is the `Aggregate` over a scan of `rows`; `output` is the table the rows it
    /// emits go to.
    pub(crate) fn try_new(
        plan: LogicalPlan,
        rows: BatchTable,
        output: &BatchTable,
        context: OperatorContext,
    ) -> Result<Self> {
        let OperatorContext { runner, mode, dir, late_rows } = context;
        let df_state = runner.ctx.state();
        let plan = df_state.analyzer().execute_and_check(plan, df_state.config_options(), |_, _| {})?;
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Err(Error::Internal(format!("a streaming aggregation's plan is not an Aggregate: {plan}")));
        };
        let partial = partial_plan(&runner, &plan)?;
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
        let late_sessions = match session_at {
            Some(at) if delay_of(&fields[at]).is_some() => {
                Some(aggregate.input.schema().index_of_column_by_name(None, SESSION_COLUMN).ok_or_else(|| {
                    Error::Internal("a session-window aggregation's input has no session column".into())
                })?)
            }
            _ => None,
        };
        let late_rows_plan = if session_at.is_none() { LateRowsPlan::of(aggregate) } else { None };
        Ok(StatefulAggregate {
            name: if session_at.is_some() { "sessionWindowStateStoreSaveExec" } else { "stateStoreSave" },
            runner,
            plan,
            rows,
            output_schema: datafusion::datasource::TableProvider::schema(output),
            state,
            mode,
            event_time: key.is_some() && mode != OutputMode::Complete,
            late_sessions,
            late_rows_plan,
            late_rows: late_rows.then(LateRows::default),
            rows_updated: 0,
            rows_dropped: 0,
            updates_ms: 0,
            removals_ms: 0,
        })
    }

    /// Session windows: the rows whose own session is not late; the late ones are counted and
    /// listed.
    fn drop_late_sessions(&mut self, input: Vec<RecordBatch>, column: usize, late_us: i64) -> Result<Vec<RecordBatch>> {
        let mut kept = Vec::with_capacity(input.len());
        for batch in input {
            let session = batch.column(column).as_struct();
            let end = session
                .column_by_name("end")
                .ok_or_else(|| Error::Internal("a session window without an end".into()))?;
            let end = cast(end, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let end = end.as_primitive::<TimestampMicrosecondType>();
            let late: BooleanArray = end.iter().map(|t| Some(t.is_some_and(|t| t <= late_us))).collect();
            let dropped = late.true_count();
            if dropped == 0 {
                kept.push(batch);
                continue;
            }
            self.rows_dropped += dropped as u64;
            if let Some(buffer) = &mut self.late_rows {
                let rows = filter_record_batch(&batch, &late)?;
                let times: Vec<i64> =
                    end.iter().zip(late.values()).filter(|(_, l)| *l).map(|(t, _)| t.unwrap_or(0)).collect();
                let own: Vec<usize> = (0..rows.num_columns())
                    .filter(|&i| !rows.schema().field(i).name().starts_with("__brooklet"))
                    .collect();
                buffer.record(self.name, Reason::SessionEnd, late_us, &times, &rows.project(&own)?)?;
            }
            kept.push(filter_record_batch(&batch, &not(&late)?)?);
        }
        Ok(kept)
    }

    /// Lists the input rows behind this batch's dropped partial rows in the late-rows output.
    fn record_late_rows(&mut self, watermark_us: i64) -> Result<()> {
        let (Some(buffer), Some(plan)) = (&mut self.late_rows, &self.late_rows_plan) else { return Ok(()) };
        let name = self.name;
        for batch in &self.runner.run_optimized(&plan.late_by(watermark_us)?)? {
            let (rows, times) = split_late_time(batch)?;
            buffer.record(name, plan.reason, watermark_us, &times, &rows)?;
        }
        Ok(())
    }

    /// This batch's result rows, then evicts the groups `watermark_ms` has passed: complete
    /// mode shows every group, update the groups this batch changed, append the groups that
    /// became final.
    fn emit(&mut self, watermark_ms: i64) -> Result<RecordBatch> {
        let started = Instant::now();
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
        let removing = Instant::now();
        self.state.remove(&expired);
        self.removals_ms = removing.elapsed().as_millis() as u64;
        tracing::trace!(emit_ms = started.elapsed().as_millis() as u64, evicted = expired.len(), "aggregate emitted");
        Ok(batch)
    }
}

impl StatefulOperator for StatefulAggregate {
    fn process(&mut self, inputs: Vec<Vec<RecordBatch>>, watermarks: BatchWatermarks) -> Result<Vec<RecordBatch>> {
        let input = inputs.concat();
        let started = Instant::now();
        let late_us = watermarks.late_ms * 1_000;
        self.rows_dropped = 0;
        let input = match self.late_sessions {
            Some(column) => self.drop_late_sessions(input, column, late_us)?,
            None => input,
        };
        self.rows.set(input)?;
        // Partition by partition, in order: the order groups are first seen in (and so the
        // order the console prints them in) is the same on every run.
        let physical = partial_plan(&self.runner, &self.plan)?;
        let schema = physical.schema();
        let partial = concat_batches(&schema, &self.runner.collect(physical)?)?;
        let late_until = self.event_time.then_some(late_us);
        let partial_dropped = self.state.merge(&partial, late_until)?;
        if partial_dropped > 0 {
            self.record_late_rows(late_us)?;
        }
        self.rows.set(Vec::new())?;
        self.rows_dropped += partial_dropped;
        self.rows_updated = self.state.updated_count();
        self.updates_ms = started.elapsed().as_millis() as u64;
        Ok(vec![self.emit(watermarks.eviction_ms)?])
    }

    fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress> {
        let started = Instant::now();
        let removed = self.state.removed_count() as u64;
        self.state.commit(batch_id)?;
        Ok(StateOperatorProgress {
            operator_name: self.name.into(),
            num_rows_total: self.state.len() as u64,
            num_rows_updated: self.rows_updated as u64,
            num_rows_removed: removed,
            num_rows_dropped_by_watermark: self.rows_dropped,
            num_shuffle_partitions: 1,
            num_state_store_instances: 1,
            memory_used_bytes: self.state.memory_bytes() as u64,
            all_updates_time_ms: self.updates_ms,
            all_removals_time_ms: self.removals_ms,
            commit_time_ms: started.elapsed().as_millis() as u64,
            custom_metrics: Default::default(),
        })
    }

    fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.state.restore(version)
    }

    fn purge(&self, keep_from: u64) -> Result<()> {
        self.state.purge(keep_from)
    }

    fn take_late_rows(&mut self, batch_id: u64) -> Result<Vec<RecordBatch>> {
        self.late_rows.as_mut().map_or(Ok(Vec::new()), |l| l.take(batch_id))
    }

    /// Spark's `shouldRunAnotherBatch` asks only for append or update mode and a watermark
    /// that moved, whether or not the key holds event time.
    fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        self.mode != OutputMode::Complete && next_watermark_ms > watermark_ms
    }

    fn open_event_times(&self) -> (Option<i64>, usize) {
        if self.event_time { self.state.open_event_times() } else { (None, 0) }
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
fn partial_plan(runner: &PlanRunner, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
    let physical = runner.physical(plan)?;
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
