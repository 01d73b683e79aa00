//! `foreach_batch`: a function receives each batch's rows and id. (The API wraps the user's
//! function of a DataFrame, see `DataStreamWriter::foreach_batch`.)

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::Sink;
use crate::error::Result;

/// What the sink calls for each batch: its id, its schema and its rows.
pub type BatchFn = Box<dyn FnMut(u64, &SchemaRef, &[RecordBatch]) -> Result<()> + Send>;

pub(crate) struct ForeachBatchSink {
    pub f: BatchFn,
}

impl Sink for ForeachBatchSink {
    fn add_batch(&mut self, batch_id: u64, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        (self.f)(batch_id, schema, batches)
    }

    fn description(&self) -> String {
        "ForeachBatchSink".into()
    }
}
