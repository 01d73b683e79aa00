//! `foreach_batch`: a function receives each batch's rows and id. (The API wraps the user's
//! function of a DataFrame, see `DataStreamWriter::foreach_batch`.)

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::sink::Sink;

/// What the sink calls for each batch: its id, its schema and its rows.
pub type BatchFn = Box<dyn FnMut(u64, &SchemaRef, &[RecordBatch]) -> Result<()> + Send>;

pub(crate) static SINK: super::SinkConnector = super::SinkConnector {
    names: &["foreachbatch"],
    options: &[],
    modes: super::ALL_MODES,
    temporary_checkpoint: true,
    create: |a| {
        let f =
            a.foreach_batch.ok_or_else(|| crate::error::Error::Internal("foreach_batch without a function".into()))?;
        Ok(Box::new(ForeachBatchSink { f }))
    },
    batch: None,
};

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
