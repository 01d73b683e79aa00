//! Stateful operators: one per file, each one implementation of [`StatefulOperator`].
//!
//! ```text
//! mod.rs         the trait, the watermarks of a batch, and `build` (plan part -> operator)
//! aggregate.rs   group_by(..).agg(..): plain keys, windows, session windows
//! dedup.rs       drop_duplicates, drop_duplicates_within_watermark
//! join.rs        a join of two streams (symmetric hash join)
//! late_rows.rs   the late-rows output every operator can feed
//! ```
//!
//! The life of one batch for the operators of a query (`execution/mod.rs` drives it):
//!
//! ```text
//!   for each operator, bottom up (highest number first):
//!       rows = run its input plan              stateless: sources + outputs of operators below
//!       out  = operator.process(rows, W)       state changes here, exactly once per batch
//!       its output table <- out                read by the plan above it
//!   sink <- the output plan
//!   for each operator: commit(N)               state version N, progress entry
//!   any operator wants a no-data batch with the new watermark?
//! ```
//!
//! Every operator sees the two watermarks of a batch (semantics appendix, §2): rows whose
//! event time is at or before `W_{N-1}` are late, results at or before `W_N` are final. The
//! operators of one query all judge by the same two values; an operator that delays its output
//! (a join) will give the ones above it an output watermark of its own.

pub(crate) mod aggregate;
pub(crate) mod dedup;
pub(crate) mod join;
pub(crate) mod late_rows;

use std::path::PathBuf;

use arrow::array::RecordBatch;

use crate::error::Result;
use crate::output_mode::OutputMode;
use crate::plan::operators::{OperatorKind, OperatorPart};
use crate::plan::runner::PlanRunner;
use crate::progress::StateOperatorProgress;

/// The two watermarks one batch runs with, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchWatermarks {
    /// `W_{N-1}`: rows at or before it are late.
    pub late_ms: i64,
    /// `W_N`: results at or before it are final and leave state.
    pub eviction_ms: i64,
}

impl BatchWatermarks {
    /// Each of the two the lesser of `self`'s and `other`'s.
    pub(crate) fn min(self, other: BatchWatermarks) -> BatchWatermarks {
        BatchWatermarks {
            late_ms: self.late_ms.min(other.late_ms),
            eviction_ms: self.eviction_ms.min(other.eviction_ms),
        }
    }
}

/// A stateful operator: folds each batch's rows into versioned state, passes rows on.
///
/// Required: [`process`](Self::process), [`commit`](Self::commit),
/// [`restore`](Self::restore), [`purge`](Self::purge). The rest have defaults.
pub(crate) trait StatefulOperator: Send {
    /// This batch's input rows, one list per input plan in input order (a join has two), in;
    /// the rows for the plan above, out.
    fn process(&mut self, inputs: Vec<Vec<RecordBatch>>, watermarks: BatchWatermarks) -> Result<Vec<RecordBatch>>;

    /// Writes the state as version `batch_id`; returns the operator's progress for the batch.
    fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress>;

    /// Rebuilds the state as of `version` (the last committed batch), or empty.
    fn restore(&mut self, version: Option<u64>) -> Result<()>;

    /// Deletes state files that no batch from `keep_from` on needs.
    fn purge(&self, keep_from: u64) -> Result<()>;

    /// The rows this batch dropped as late, in the late-rows output's layout, stamped with
    /// `batch_id`; empty unless the query asked for them.
    fn take_late_rows(&mut self, _batch_id: u64) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }

    /// Whether a no-data batch should run now that the watermark moved from `watermark_ms`
    /// to `next_watermark_ms` (semantics appendix, §5). By default: whenever it moved.
    fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        next_watermark_ms > watermark_ms
    }

    /// The watermark this operator's output carries to the operators above it, given the one
    /// it ran with (Spark's `produceOutputWatermark`). Aggregations, sessions and
    /// deduplication pass it on unchanged, as in Spark; a stream-stream join holds it back.
    fn output_watermark(&self, input_ms: i64) -> i64 {
        input_ms
    }

    /// The earliest event time (microseconds) of a result still waiting for the watermark,
    /// and how many results wait; for the progress's watermark timeline.
    fn open_event_times(&self) -> (Option<i64>, usize) {
        (None, 0)
    }
}

/// What every operator of a query is built with.
pub(crate) struct OperatorContext {
    pub runner: PlanRunner,
    pub mode: OutputMode,
    /// The operator's state directory in the checkpoint.
    pub dir: PathBuf,
    /// Whether the query keeps the rows operators drop as late.
    pub late_rows: bool,
}

/// The operator for one cut-out part of the plan.
pub(crate) fn build(part: &OperatorPart, context: OperatorContext) -> Result<Box<dyn StatefulOperator>> {
    Ok(match &part.kind {
        OperatorKind::Aggregate { plan, rows } => {
            Box::new(aggregate::StatefulAggregate::try_new(plan.clone(), rows.clone(), &part.output, context)?)
        }
        OperatorKind::Deduplicate { spec, input_schema } => {
            Box::new(dedup::Deduplicate::try_new(spec.clone(), input_schema, context)?)
        }
        OperatorKind::StreamJoin { spec } => Box::new(join::StreamJoin::try_new(spec, context)?),
    })
}
