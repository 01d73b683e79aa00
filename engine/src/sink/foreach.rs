//! `foreach_batch`: the user's own function receives each batch as a static DataFrame.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;

use super::Sink;
use crate::dataframe::DataFrame;
use crate::error::Result;
use crate::session::Session;

/// The function `foreach_batch` takes: the batch's rows and its id.
pub type ForeachBatchFn = Box<dyn FnMut(DataFrame, u64) -> Result<()> + Send>;

pub(crate) struct ForeachBatchSink {
    pub session: Session,
    pub f: ForeachBatchFn,
}

impl Sink for ForeachBatchSink {
    fn add_batch(&mut self, batch_id: u64, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let table = MemTable::try_new(schema.clone(), vec![batches.to_vec()])?;
        let df = DataFrame::from_table(&self.session, "batch", Arc::new(table))?;
        (self.f)(df, batch_id)
    }

    fn description(&self) -> String {
        "ForeachBatchSink".into()
    }
}
