//! The micro-batch loop: the life of a streaming query on its own thread.
//!
//! ```text
//!  trigger fires ─► latest offsets ─► offsets/N ─► get batch ─► operators ─► sink ─► state N ─► commits/N
//!        ▲           (each source)     (WAL)        (rows)      (plan)        (N)    (files)     │
//!        └──────────────────────────────── progress, listeners ◄─────────────────────────────────┘
//! ```
//!
//! See [`crate::checkpoint`] for why this order makes a crash at any point safe.
//!
//! With a watermark, batch N runs with `W_N` (recorded in `offsets/N`), drops late rows by
//! `W_{N-1}` and finalises by `W_N`; afterwards the watermark moves to `W_{N+1}` (recorded in
//! `commits/N`). When it moved and a stateful operator has something to finalise with it, the
//! loop runs a *no-data batch*: same offsets, new watermark, no input (semantics appendix, §5).

pub mod listener;
pub mod manager;
pub use crate::progress;
pub mod query;
pub(crate) mod start;
pub mod trigger;
pub mod watermark;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::logical_expr::LogicalPlan;

use self::listener::{BatchOutput, QueryIdleEvent, QueryStartedEvent, QueryTerminatedEvent};
use self::manager::StreamingQueryManager;
use self::progress::{InputWatermark, SinkProgress, SourceProgress, StreamingQueryProgress, WatermarkTimeline};
use self::query::QueryShared;
use self::trigger::Trigger;
use self::watermark::WatermarkTracker;
use crate::checkpoint::{Checkpoint, CommitMetadata, OffsetSeq, OffsetSeqMetadata};
use crate::clock::{Clock, iso_millis};
use crate::error::{Error, Result};
use crate::operator::late_rows::late_rows_schema;
use crate::operator::{BatchWatermarks, StatefulOperator};
use crate::plan::runner::PlanRunner;
use crate::plan::tables::BatchTable;
use crate::sink::Sink;
use crate::source::{Offset, ReadLimit, Source};

/// How long an idle query waits before it checks its sources again (Spark's
/// `spark.sql.streaming.pollingDelay`).
const POLLING_DELAY: Duration = Duration::from_millis(10);

/// One stateful operator of a running query, between the plan below it and the plan above.
pub(crate) struct OperatorStage {
    /// The optimized plans of the operator's input rows (stateless), one per input.
    pub input: Vec<LogicalPlan>,
    pub operator: Box<dyn StatefulOperator>,
    /// Where its rows go for the plans above it.
    pub output: BatchTable,
    /// The operators below it whose outputs it reads.
    pub inputs: Vec<usize>,
}

/// What a running query needs of its session, handed down so that execution never reaches up
/// to the API layer.
pub(crate) struct QueryEnv {
    pub clock: Arc<dyn Clock>,
    /// Listeners, and termination for `await_any_termination`.
    pub streams: Arc<StreamingQueryManager>,
    pub runner: PlanRunner,
    /// `spark.sql.streaming.multipleWatermarkPolicy` as the session sets it.
    pub watermark_policy: Option<String>,
    /// The session, kept alive while the query runs: its runtime runs DataFusion's futures.
    pub _session: Arc<dyn std::any::Any + Send + Sync>,
}

/// Everything a running query owns.
pub(crate) struct MicroBatchExecution {
    pub env: QueryEnv,
    pub runner: PlanRunner,
    pub shared: Arc<QueryShared>,
    pub sources: Vec<Box<dyn Source>>,
    pub source_tables: Vec<BatchTable>,
    /// The stateful operators, numbered top down (Spark's operator ids, their state
    /// directories); a batch runs them bottom up.
    pub operators: Vec<OperatorStage>,
    /// The optimized plan whose rows go to the sink.
    pub output: LogicalPlan,
    pub sink: Box<dyn Sink>,
    /// Where rows dropped as late go, when the query asked for them (`operator/late_rows.rs`).
    pub late_rows: Option<Box<dyn Sink>>,
    pub checkpoint: Checkpoint,
    /// Delete the checkpoint when the query stops cleanly (no `checkpointLocation` given).
    pub temporary_checkpoint: bool,
    pub trigger: Trigger,
    /// End offsets of the last committed batch, per source.
    pub committed: Vec<Option<Offset>>,
    pub next_batch: u64,
    /// A batch planned but not committed before the last stop: re-run first.
    pub pending: Option<OffsetSeq>,
    /// Processing time the previous batch started, for `inputRowsPerSecond`.
    pub previous_start_ms: Option<i64>,
    /// The event-time watermark; its current value is what the next batch uses.
    pub watermark: WatermarkTracker,
    /// The watermark the previous batch ran with (`W_{N-1}`): the late-row filter.
    pub previous_watermark_ms: i64,
    /// The last batch moved the watermark and a stateful operator wants a no-data batch.
    pub needs_another_batch: bool,
}

impl MicroBatchExecution {
    /// Runs until stopped, drained (Once / AvailableNow) or failed; then reports termination.
    pub(crate) fn run(mut self) {
        let clock = self.env.clock.clone();
        for l in self.env.streams.listeners() {
            l.on_query_started(&QueryStartedEvent {
                id: self.shared.id,
                run_id: self.shared.run_id,
                name: self.shared.name.clone(),
                timestamp: iso_millis(clock.now_ms()),
            });
        }
        let result = self.run_batches();
        let exception = result.err().map(Arc::new);
        if let Some(e) = &exception {
            tracing::error!(query = %self.shared.name_or_id(), error = %e, "streaming query failed");
        } else if self.temporary_checkpoint {
            let _ = std::fs::remove_dir_all(self.checkpoint.dir());
        }
        self.shared.update(|s| {
            s.active = false;
            s.exception = exception.clone();
            s.status.message = "Stopped".into();
            s.status.is_trigger_active = false;
        });
        for l in self.env.streams.listeners() {
            l.on_query_terminated(&QueryTerminatedEvent {
                id: self.shared.id,
                run_id: self.shared.run_id,
                exception: exception.as_ref().map(|e| e.to_string()),
            });
        }
        self.env.streams.notify_terminated();
    }

    fn stop_requested(&self) -> bool {
        self.shared.lock().stop_requested
    }

    fn set_status(&self, message: &str, data: bool, trigger: bool) {
        self.shared.update(|s| {
            s.status.message = message.into();
            s.status.is_data_available = data;
            s.status.is_trigger_active = trigger;
        });
    }

    fn run_batches(&mut self) -> Result<()> {
        let clock = self.env.clock.clone();
        if let Some(seq) = self.pending.take() {
            tracing::info!(batch = self.next_batch, "re-running the batch planned before the last stop");
            self.run_batch(seq, 0)?;
        }
        if self.trigger == Trigger::AvailableNow {
            for (s, start) in self.sources.iter_mut().zip(&self.committed) {
                s.prepare_for_available_now(start.as_ref())?;
            }
        }
        let mut next_trigger_ms = clock.now_ms();
        let mut idle_reported = false;
        loop {
            if self.stop_requested() {
                return Ok(());
            }
            if let Trigger::ProcessingTime { interval_ms } = self.trigger {
                if self.wait_until(next_trigger_ms) {
                    return Ok(());
                }
                next_trigger_ms = (clock.now_ms() / interval_ms + 1) * interval_ms;
            }
            let check = self.shared.update(|s| {
                s.checks_started += 1;
                s.checks_started
            });
            // While idle, re-polling the sources leaves the status alone: "Waiting for data to
            // arrive" stays true until a batch starts, instead of flickering on every poll.
            if !idle_reported {
                self.set_status("Getting offsets from sources", false, true);
            }
            let started = Instant::now();
            let mut ends = Vec::with_capacity(self.sources.len());
            let limit = if self.trigger == Trigger::Once { ReadLimit::All } else { ReadLimit::Default };
            for (s, start) in self.sources.iter_mut().zip(&self.committed) {
                ends.push(s.latest_offset(start.as_ref(), limit)?);
            }
            let latest_offset_ms = started.elapsed().as_millis() as u64;
            let has_data = ends.iter().zip(&self.committed).any(|(end, start)| end.is_some() && end != start);
            if has_data || self.needs_another_batch {
                idle_reported = false;
                let mut conf = BTreeMap::new();
                conf.insert(watermark::MULTIPLE_WATERMARK_POLICY.to_string(), self.watermark.policy_name().to_string());
                let seq = OffsetSeq {
                    metadata: OffsetSeqMetadata {
                        batch_watermark_ms: self.watermark.current_ms(),
                        batch_timestamp_ms: clock.now_ms(),
                        conf,
                    },
                    // A no-data batch keeps the committed offsets: no new input, a new watermark.
                    offsets: if has_data { ends } else { self.committed.clone() },
                };
                let wal = Instant::now();
                self.checkpoint.write_offsets(self.next_batch, &seq)?;
                crate::fault::point("offsets-written");
                let wal_ms = wal.elapsed().as_millis() as u64;
                self.run_batch(seq, latest_offset_ms + wal_ms)?;
                if self.trigger == Trigger::Once {
                    return Ok(());
                }
            } else {
                // The status first: process_all_available returns as soon as idle_check is set,
                // and a status read right after it must say the query is waiting.
                if !self.trigger.stops_when_drained() {
                    self.set_status("Waiting for data to arrive", false, false);
                }
                self.shared.update(|s| s.idle_check = check);
                if self.trigger.stops_when_drained() {
                    return Ok(());
                }
                if !idle_reported {
                    idle_reported = true;
                    let event = QueryIdleEvent {
                        id: self.shared.id,
                        run_id: self.shared.run_id,
                        timestamp: iso_millis(clock.now_ms()),
                    };
                    for l in self.env.streams.listeners() {
                        l.on_query_idle(&event);
                    }
                }
                if self.shared.wait_for_data(POLLING_DELAY) {
                    return Ok(());
                }
            }
        }
    }

    /// Whether some stateful operator wants a no-data batch now that the watermark moved from
    /// `watermark_ms` to `next_watermark_ms` (semantics appendix, §5).
    pub(crate) fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        self.operators.iter().any(|s| s.operator.should_run_another_batch(watermark_ms, next_watermark_ms))
    }

    /// Progress `eventTime`: the batch's watermark, and min/max/avg of its rows' event times.
    fn event_time_progress(
        &self,
        watermark_ms: i64,
        stats: &crate::plan::watermark::EventTimeStats,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if !self.watermark.is_defined() {
            return out;
        }
        out.insert("watermark".to_string(), iso_millis(watermark_ms));
        if stats.count > 0 {
            out.insert("min".to_string(), iso_millis(stats.min));
            out.insert("max".to_string(), iso_millis(stats.max));
            out.insert("avg".to_string(), iso_millis(stats.avg() as i64));
        }
        out
    }

    /// Progress `watermarkTimeline` (Brooklet's): the watermarks around this batch and what
    /// is still waiting for one.
    fn watermark_timeline(&self, late_watermark_ms: i64, watermark_ms: i64) -> Option<WatermarkTimeline> {
        if !self.watermark.is_defined() {
            return None;
        }
        let (earliest_end_us, open) = self
            .operators
            .iter()
            .map(|s| s.operator.open_event_times())
            .fold((None, 0), |(earliest, open): (Option<i64>, usize), (e, n)| {
                (earliest.into_iter().chain(e).min(), open + n)
            });
        Some(WatermarkTimeline {
            inputs: self
                .watermark
                .per_input()
                .map(|(max, w)| InputWatermark { max_event_time: max.map(iso_millis), watermark: w.map(iso_millis) })
                .collect(),
            late_rows_watermark: iso_millis(late_watermark_ms),
            eviction_watermark: iso_millis(watermark_ms),
            next_watermark: iso_millis(self.watermark.current_ms()),
            open_windows: open as u64,
            earliest_open_window_end: earliest_end_us.map(|us| iso_millis(us.div_euclid(1_000))),
        })
    }

    /// Sleeps until processing time `deadline_ms`, waking for `stop`; whether stop came.
    fn wait_until(&self, deadline_ms: i64) -> bool {
        let clock = self.env.clock.clone();
        loop {
            let now = clock.now_ms();
            if now >= deadline_ms {
                return self.stop_requested();
            }
            clock.sleep_until(deadline_ms.min(now + 100));
            if self.stop_requested() {
                return true;
            }
        }
    }

    /// Runs one batch whose offsets are already in the offsets log, and commits it.
    fn run_batch(&mut self, seq: OffsetSeq, offsets_ms: u64) -> Result<()> {
        let batch_id = self.next_batch;
        self.run_batch_inner(&seq, offsets_ms).map_err(|e| Error::Query {
            query: self.shared.name_or_id(),
            batch_id,
            source: Box::new(e),
        })?;
        self.committed = seq.offsets;
        self.next_batch += 1;
        Ok(())
    }

    fn run_batch_inner(&mut self, seq: &OffsetSeq, offsets_ms: u64) -> Result<()> {
        let batch_id = self.next_batch;
        let started = Instant::now();
        self.set_status("Processing new data", true, true);
        let mut durations = BTreeMap::new();

        // getBatch: each source's rows between the committed and the new offsets.
        let t = Instant::now();
        let mut rows_per_source = Vec::with_capacity(self.sources.len());
        for (i, source) in self.sources.iter_mut().enumerate() {
            let (start, end) = (self.committed[i].as_ref(), seq.offsets[i].as_ref());
            let data = match end {
                Some(end) if Some(end) != start => source.get_batch(start, end)?,
                _ => Vec::new(),
            };
            rows_per_source.push(data.iter().flatten().map(RecordBatch::num_rows).sum::<usize>() as u64);
            self.source_tables[i].set_partitions(data)?;
        }
        durations.insert("getBatch".to_string(), t.elapsed().as_millis() as u64);

        // Operators bottom up, each fed by the plan below it; then the plan above them.
        let t = Instant::now();
        let batch_watermark_ms = seq.metadata.batch_watermark_ms;
        let late_watermark_ms = self.previous_watermark_ms;
        let watermarks = BatchWatermarks { late_ms: late_watermark_ms, eviction_ms: batch_watermark_ms };
        self.watermark.reset_observations();
        // Bottom up; each operator's two watermarks are the least of what its inputs pass on
        // (semantics appendix, §12).
        let mut passed_on = vec![watermarks; self.operators.len()];
        for (i, stage) in self.operators.iter_mut().enumerate().rev() {
            let own = stage.inputs.iter().fold(watermarks, |w, &below| w.min(passed_on[below]));
            let rows = stage
                .input
                .iter()
                .map(|plan| self.runner.collect(self.runner.physical(plan)?))
                .collect::<Result<Vec<_>>>()?;
            stage.output.set(stage.operator.process(rows, own)?)?;
            passed_on[i] = BatchWatermarks {
                late_ms: stage.operator.output_watermark(own.late_ms),
                eviction_ms: stage.operator.output_watermark(own.eviction_ms),
            };
        }
        let physical = self.runner.physical(&self.output)?;
        durations.insert("queryPlanning".to_string(), t.elapsed().as_millis() as u64);
        let output = self.runner.collect(physical.clone())?;
        // Free the input rows and what the operators passed on.
        for table in self.source_tables.iter().chain(self.operators.iter().map(|s| &s.output)) {
            table.set(Vec::new())?;
        }

        // addBatch: the sink, then the listeners that record outputs.
        let t = Instant::now();
        let schema = physical.schema();
        self.sink.add_batch(batch_id, &schema, &output)?;
        if let Some(sink) = &mut self.late_rows {
            let mut rows = Vec::new();
            for stage in self.operators.iter_mut().rev() {
                rows.extend(stage.operator.take_late_rows(batch_id)?);
            }
            if !rows.is_empty() {
                sink.add_batch(batch_id, &late_rows_schema(), &rows)?;
            }
        }
        durations.insert("addBatch".to_string(), t.elapsed().as_millis() as u64);
        crate::fault::point("sink-done");
        let num_output_rows = output.iter().map(RecordBatch::num_rows).sum::<usize>() as i64;
        let listeners = self.env.streams.listeners();
        if !listeners.is_empty() {
            let event = BatchOutput {
                id: self.shared.id,
                name: self.shared.name.clone(),
                batch_id,
                watermark: self.watermark.is_defined().then(|| iso_millis(batch_watermark_ms)),
                schema,
                batches: output,
                cell_width: self.sink.cell_width(),
            };
            for l in &listeners {
                l.on_batch_output(&event);
            }
        }

        // The watermark moves by what this batch saw.
        let event_time_stats = self.watermark.advance();
        let next_watermark_ms = self.watermark.current_ms();

        // Commit: state first, then the commit log.
        let t = Instant::now();
        let state_operators =
            self.operators.iter_mut().map(|s| s.operator.commit(batch_id)).collect::<Result<Vec<_>>>()?;
        let commit = CommitMetadata {
            next_batch_watermark_ms: next_watermark_ms,
            input_watermarks_ms: self.watermark.inputs().to_vec(),
        };
        self.checkpoint.write_commit(batch_id, &commit)?;
        crate::fault::point("commit-written");
        self.previous_watermark_ms = batch_watermark_ms;
        self.needs_another_batch = self.should_run_another_batch(batch_watermark_ms, next_watermark_ms);
        let keep_from = Checkpoint::first_retained(batch_id);
        self.checkpoint.purge(keep_from)?;
        for stage in &self.operators {
            stage.operator.purge(keep_from)?;
        }
        durations.insert("commitOffsets".to_string(), t.elapsed().as_millis() as u64);
        durations.insert("latestOffset".to_string(), offsets_ms);
        durations.insert("walCommit".to_string(), 0);
        let total_ms = started.elapsed().as_millis() as u64 + offsets_ms;
        durations.insert("triggerExecution".to_string(), total_ms);

        let num_input_rows: u64 = rows_per_source.iter().sum();
        let batch_ms = seq.metadata.batch_timestamp_ms;
        let since_previous_s = self.previous_start_ms.map(|p| (batch_ms - p) as f64 / 1000.0).filter(|s| *s > 0.0);
        self.previous_start_ms = Some(batch_ms);
        let per_second = |rows: u64, seconds: Option<f64>| seconds.map_or(0.0, |s| rows as f64 / s);
        let processed_s = Some(started.elapsed().as_secs_f64()).filter(|s| *s > 0.0);
        let sources = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| SourceProgress {
                description: s.description(),
                start_offset: self.committed[i].clone(),
                end_offset: seq.offsets[i].clone(),
                latest_offset: seq.offsets[i].clone(),
                num_input_rows: rows_per_source[i],
                input_rows_per_second: per_second(rows_per_source[i], since_previous_s),
                processed_rows_per_second: per_second(rows_per_source[i], processed_s),
            })
            .collect();
        let progress = StreamingQueryProgress {
            id: self.shared.id,
            run_id: self.shared.run_id,
            name: self.shared.name.clone(),
            timestamp: iso_millis(batch_ms),
            batch_id,
            batch_duration: total_ms,
            num_input_rows,
            input_rows_per_second: per_second(num_input_rows, since_previous_s),
            processed_rows_per_second: per_second(num_input_rows, processed_s),
            duration_ms: durations,
            event_time: self.event_time_progress(batch_watermark_ms, &event_time_stats),
            watermark_timeline: self.watermark_timeline(late_watermark_ms, batch_watermark_ms),
            state_operators,
            sources,
            sink: SinkProgress { description: self.sink.description(), num_output_rows },
        };
        tracing::debug!(query = %self.shared.name_or_id(), batch_id, num_input_rows, "batch committed");
        self.shared.push_progress(progress.clone());
        for l in &listeners {
            l.on_query_progress(&progress);
        }
        Ok(())
    }
}
