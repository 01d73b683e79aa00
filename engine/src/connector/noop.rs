//! The `noop` sink (Spark's `format("noop")`): takes every batch and keeps nothing. For
//! measuring a query without the cost of writing its rows, in every output mode.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::sink::Sink;

pub(crate) static SINK: super::SinkConnector = super::SinkConnector {
    names: &["noop"],
    options: &[],
    modes: super::ALL_MODES,
    temporary_checkpoint: true,
    create: |_| Ok(Box::new(NoopSink)),
    batch: None,
};

/// Discards every batch.
pub(crate) struct NoopSink;

impl Sink for NoopSink {
    fn add_batch(&mut self, _batch_id: u64, _schema: &SchemaRef, _batches: &[RecordBatch]) -> Result<()> {
        Ok(())
    }

    fn description(&self) -> String {
        "NoopTable".into()
    }
}
