//! Engine tests that run whole queries: bad input and its errors, failures and recovery,
//! query shapes (SQL over streams, joins with static data, global aggregates), triggers and
//! time-based sources. They live inside the library so that the test build links DataFusion
//! once.

mod avro;
mod avro_functions;
mod avro_properties;
mod bad_input;
mod chained;
mod dedup;
#[cfg(feature = "delta")]
mod delta;
mod errors;
mod joins;
mod late_rows;
mod layers;
mod partition_id;
mod queries;
mod sessions;
mod socket;
mod stream_joins;
mod windows;

use crate::Session;
use crate::testing::BatchRecorder;

/// A session on a virtual clock with a recorder of every batch.
fn session() -> (Session, std::sync::Arc<BatchRecorder>) {
    let session =
        Session::builder().clock(crate::clock::VirtualClock::at("2024-01-01T00:00:00Z")).target_partitions(2).build();
    let recorder = std::sync::Arc::new(BatchRecorder::default());
    session.streams().add_listener(recorder.clone());
    (session, recorder)
}

/// Each row of `batches` as `a|b|c` (nulls as `null`), in order.
fn lines(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    lines_with(batches, "null")
}

/// [`lines`] with nulls shown as `null_text`.
fn lines_with(batches: &[arrow::array::RecordBatch], null_text: &str) -> Vec<String> {
    let options = arrow::util::display::FormatOptions::default().with_null(null_text);
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c.value(r).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    rows
}
