//! Helpers for testing streaming queries: record what each micro-batch wrote, render it, and
//! sort rows whose order the engine does not define.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::execution::listener::{BatchOutput, StreamingQueryListener};

pub use crate::clock::VirtualClock;
pub use crate::memory_stream::MemoryStream;

/// One micro-batch's output, as recorded by [`BatchRecorder`].
#[derive(Debug, Clone)]
pub struct RecordedBatch {
    /// The batch id.
    pub batch_id: u64,
    /// The watermark the batch finalised by, when the query has one.
    pub watermark: Option<String>,
    /// The schema of the rows.
    pub schema: SchemaRef,
    /// The rows, as the sink received them.
    pub batches: Vec<RecordBatch>,
    /// The width the sink cuts cells at when it shows them (0: nothing cut).
    pub cell_width: usize,
}

impl From<&BatchOutput> for RecordedBatch {
    fn from(output: &BatchOutput) -> Self {
        RecordedBatch {
            batch_id: output.batch_id,
            watermark: output.watermark.clone(),
            schema: output.schema.clone(),
            batches: output.batches.clone(),
            cell_width: output.cell_width,
        }
    }
}

impl RecordedBatch {
    /// The rows as one batch, sorted by every column (for outputs whose order is undefined).
    pub fn sorted(&self) -> Result<RecordBatch> {
        sort_all_columns(&self.schema, &self.batches)
    }

    /// The rows, sorted, as Spark's console sink prints them (all rows).
    pub fn to_table(&self) -> Result<String> {
        let sorted = self.sorted()?;
        crate::display::format_table(&self.schema, &[sorted], usize::MAX, self.cell_width)
    }
}

/// A listener that keeps every batch's output, by query name (or id when unnamed).
///
/// ```
/// # use std::sync::Arc;
/// # use brooklet::prelude::*;
/// # use brooklet::testing::BatchRecorder;
/// let session = Session::new();
/// let recorder = Arc::new(BatchRecorder::default());
/// session.streams().add_listener(recorder.clone());
/// let numbers = MemoryStream::new(&session, "n LONG").unwrap();
/// let q = numbers.to_df().unwrap().filter("n > 1").unwrap().write_stream().query_name("big").start().unwrap();
/// numbers.add_json(r#"{"n": 1} {"n": 2}"#).unwrap();
/// q.process_all_available().unwrap();
/// q.stop().unwrap();
/// let batches = recorder.batches("big");
/// assert_eq!(batches.len(), 1);
/// assert_eq!(batches[0].to_table().unwrap(), "+---+\n|  n|\n+---+\n|  2|\n+---+\n");
/// ```
#[derive(Debug, Default)]
pub struct BatchRecorder {
    batches: Mutex<BTreeMap<String, Vec<RecordedBatch>>>,
}

impl BatchRecorder {
    /// The batches recorded for query `name`, in batch order.
    pub fn batches(&self, name: &str) -> Vec<RecordedBatch> {
        self.batches.lock().expect("recorder lock poisoned").get(name).cloned().unwrap_or_default()
    }

    /// The names of the queries recorded, sorted.
    pub fn queries(&self) -> Vec<String> {
        self.batches.lock().expect("recorder lock poisoned").keys().cloned().collect()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        self.batches.lock().expect("recorder lock poisoned").clear();
    }
}

impl StreamingQueryListener for BatchRecorder {
    fn on_batch_output(&self, output: &BatchOutput) {
        let name = output.name.clone().unwrap_or_else(|| output.id.to_string());
        let recorded = RecordedBatch::from(output);
        self.batches.lock().expect("recorder lock poisoned").entry(name).or_default().push(recorded);
    }
}

/// Concatenates `batches` and sorts the rows by every column, left to right.
pub fn sort_all_columns(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let batch = concat_batches(schema, batches)?;
    if batch.num_rows() < 2 || batch.num_columns() == 0 {
        return Ok(batch);
    }
    let columns: Vec<SortColumn> =
        batch.columns().iter().map(|c| SortColumn { values: c.clone(), options: None }).collect();
    let indices = lexsort_to_indices(&columns, None)?;
    Ok(take_record_batch(&batch, &indices)?)
}

/// A shared, growable list for collecting values from callbacks such as `foreach_batch`.
pub type Shared<T> = Arc<Mutex<Vec<T>>>;
