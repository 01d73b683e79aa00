//! [`StreamingQueryProgress`]: what each micro-batch did, with Spark's JSON field names, so
//! dashboards and habits built on Spark's progress read Brooklet's unchanged.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The progress of one micro-batch (Spark's `StreamingQueryProgress`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamingQueryProgress {
    /// The query's id, stable across restarts (stored in the checkpoint).
    pub id: Uuid,
    /// This run's id: new at every start.
    pub run_id: Uuid,
    /// The query's name, if given.
    pub name: Option<String>,
    /// When the batch started (processing time, ISO-8601).
    pub timestamp: String,
    /// The batch id.
    pub batch_id: u64,
    /// Wall-clock milliseconds the batch took.
    pub batch_duration: u64,
    /// Rows read from all sources in this batch (Brooklet counts rows as read from the source,
    /// before any filter).
    pub num_input_rows: u64,
    /// Input rows per second of processing time since the previous batch started.
    pub input_rows_per_second: f64,
    /// Input rows per second of this batch's own duration.
    pub processed_rows_per_second: f64,
    /// Milliseconds per phase: addBatch, getBatch, latestOffset, queryPlanning,
    /// triggerExecution, walCommit, commitOffsets.
    pub duration_ms: BTreeMap<String, u64>,
    /// Event-time statistics and the watermark, when the query has a watermark.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub event_time: BTreeMap<String, String>,
    /// Brooklet's own addition, present when the query has a watermark: enough to answer
    /// "why has my window not appeared yet?".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub watermark_timeline: Option<WatermarkTimeline>,
    /// One entry per stateful operator.
    pub state_operators: Vec<StateOperatorProgress>,
    /// One entry per source.
    pub sources: Vec<SourceProgress>,
    /// The sink.
    pub sink: SinkProgress,
}

/// A stateful operator's state after a batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    /// e.g. `stateStoreSave` for an aggregation.
    pub operator_name: String,
    /// Keys in state after the batch.
    pub num_rows_total: u64,
    /// Keys the batch added or changed.
    pub num_rows_updated: u64,
    /// Keys the batch removed.
    pub num_rows_removed: u64,
    /// Input rows dropped as too late.
    pub num_rows_dropped_by_watermark: u64,
    /// Partitions the operator's input is spread over (Spark's shuffle partitions); Brooklet
    /// keeps each operator's state in one store, so 1.
    #[serde(default)]
    pub num_shuffle_partitions: u64,
    /// State store instances of the operator: 1 in Brooklet.
    #[serde(default)]
    pub num_state_store_instances: u64,
    /// Approximate bytes of state in memory.
    pub memory_used_bytes: u64,
    /// Milliseconds spent folding the batch into state.
    pub all_updates_time_ms: u64,
    /// Milliseconds spent evicting keys the watermark passed.
    pub all_removals_time_ms: u64,
    /// Milliseconds spent writing the state checkpoint.
    pub commit_time_ms: u64,
    /// Operator-specific counts, e.g. deduplication's `numDroppedDuplicateRows`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub custom_metrics: BTreeMap<String, u64>,
}

/// The watermarks around one batch (times are ISO-8601, UTC).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WatermarkTimeline {
    /// Each `with_watermark` input, in plan order.
    pub inputs: Vec<InputWatermark>,
    /// The watermark rows were judged late by in this batch (`W_{N-1}`).
    pub late_rows_watermark: String,
    /// The watermark groups were finalised and evicted by in this batch (`W_N`).
    pub eviction_watermark: String,
    /// The watermark the next batch will use (`W_{N+1}`).
    pub next_watermark: String,
    /// Windows (event-time groups) still open in state after the batch.
    pub open_windows: u64,
    /// The earliest end among them: it is emitted once the watermark reaches it.
    pub earliest_open_window_end: Option<String>,
}

/// One watermarked input's view.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InputWatermark {
    /// The newest event time this input had in the batch (absent without rows).
    pub max_event_time: Option<String>,
    /// This input's own watermark after the batch (absent before its first row).
    pub watermark: Option<String>,
}

/// A source's part of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    /// e.g. `FileStreamSource[/data/events]`.
    pub description: String,
    /// Where the batch started (exclusive), as JSON.
    pub start_offset: Option<serde_json::Value>,
    /// Where the batch ended (inclusive), as JSON.
    pub end_offset: Option<serde_json::Value>,
    /// The newest offset the source reported.
    pub latest_offset: Option<serde_json::Value>,
    /// Rows read from this source.
    pub num_input_rows: u64,
    /// See [`StreamingQueryProgress::input_rows_per_second`].
    pub input_rows_per_second: f64,
    /// See [`StreamingQueryProgress::processed_rows_per_second`].
    pub processed_rows_per_second: f64,
}

/// The sink's part of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    /// e.g. `ConsoleSink` or `MemorySink[word_counts]`.
    pub description: String,
    /// Rows written, when the sink knows.
    pub num_output_rows: i64,
}

impl StreamingQueryProgress {
    /// Shows the progress in evcxr's Jupyter-compatible front ends: its pretty JSON, as HTML.
    pub fn evcxr_display(&self) {
        let json = self.pretty_json();
        crate::display::evcxr_print(&json, &crate::display::html_pre(&json));
    }

    /// The progress as pretty JSON, like Spark's `progress.prettyJson`.
    pub fn pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("progress serializes")
    }
}

impl fmt::Display for StreamingQueryProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pretty_json())
    }
}

/// What a query is doing right now (Spark's `StreamingQueryStatus`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamingQueryStatus {
    /// e.g. `Waiting for data to arrive`, `Processing new data`, `Stopped`.
    pub message: String,
    /// Whether a source has data not yet processed.
    pub is_data_available: bool,
    /// Whether the trigger is firing a batch now.
    pub is_trigger_active: bool,
}

impl fmt::Display for StreamingQueryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string_pretty(self).expect("status serializes"))
    }
}
