//! Query listeners: a program's window onto every query's life (Spark's
//! `StreamingQueryListener`), plus Brooklet's per-batch output event, which the book and the
//! snapshot tests record.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use uuid::Uuid;

use super::progress::StreamingQueryProgress;

/// A query started.
#[derive(Debug, Clone)]
pub struct QueryStartedEvent {
    /// The query id (stable across restarts).
    pub id: Uuid,
    /// This run's id.
    pub run_id: Uuid,
    /// The query name, if any.
    pub name: Option<String>,
    /// Processing time of the start, ISO-8601.
    pub timestamp: String,
}

/// A trigger found no new data.
#[derive(Debug, Clone)]
pub struct QueryIdleEvent {
    /// The query id.
    pub id: Uuid,
    /// This run's id.
    pub run_id: Uuid,
    /// Processing time, ISO-8601.
    pub timestamp: String,
}

/// A query stopped, by request or by an error.
#[derive(Debug, Clone)]
pub struct QueryTerminatedEvent {
    /// The query id.
    pub id: Uuid,
    /// This run's id.
    pub run_id: Uuid,
    /// The error message, when the query failed.
    pub exception: Option<String>,
}

/// The rows a micro-batch handed to its sink (a Brooklet addition to Spark's listener).
#[derive(Debug, Clone)]
pub struct BatchOutput {
    /// The query id.
    pub id: Uuid,
    /// The query name, if any.
    pub name: Option<String>,
    /// The batch id.
    pub batch_id: u64,
    /// The watermark this batch finalised by (`W_N`, ISO-8601), when the query has one.
    pub watermark: Option<String>,
    /// The schema of the rows.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// The width at which the sink would cut a cell when it shows them (see
    /// [`Sink::cell_width`](crate::sink::Sink::cell_width)).
    pub cell_width: usize,
}

/// Receives query events. Every method has an empty default: implement what you need.
///
/// Calls come from the query's own thread, in order, after the event happened: a slow
/// listener slows its query.
pub trait StreamingQueryListener: Send + Sync {
    /// A query started.
    fn on_query_started(&self, _event: &QueryStartedEvent) {}
    /// A micro-batch finished.
    fn on_query_progress(&self, _progress: &StreamingQueryProgress) {}
    /// A trigger found no new data.
    fn on_query_idle(&self, _event: &QueryIdleEvent) {}
    /// A query terminated.
    fn on_query_terminated(&self, _event: &QueryTerminatedEvent) {}
    /// A micro-batch delivered these rows to its sink.
    fn on_batch_output(&self, _output: &BatchOutput) {}
}
