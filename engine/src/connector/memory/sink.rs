//! The memory sink: results kept as a table named by `query_name`, for `session.sql(..)`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;

use crate::error::Result;
use crate::output_mode::OutputMode;
use crate::sink::Sink;
use datafusion::prelude::SessionContext;

pub(crate) struct MemorySink {
    ctx: SessionContext,
    name: String,
    mode: OutputMode,
    rows: Vec<RecordBatch>,
    /// The last batch applied: a re-run batch is not applied twice.
    last_batch: Option<u64>,
}

impl MemorySink {
    /// A sink publishing its rows as table `name` of `ctx` (the session's catalog).
    pub(crate) fn try_new(ctx: &SessionContext, name: &str, mode: OutputMode, schema: SchemaRef) -> Result<Self> {
        let sink = MemorySink { ctx: ctx.clone(), name: name.into(), mode, rows: Vec::new(), last_batch: None };
        sink.publish(schema)?;
        Ok(sink)
    }

    fn publish(&self, schema: SchemaRef) -> Result<()> {
        let table = MemTable::try_new(schema, vec![self.rows.clone()])?;
        let ctx = &self.ctx;
        ctx.deregister_table(self.name.as_str())?;
        ctx.register_table(self.name.as_str(), Arc::new(table))?;
        Ok(())
    }
}

impl Sink for MemorySink {
    fn add_batch(&mut self, batch_id: u64, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        if self.last_batch.is_some_and(|last| batch_id <= last) {
            return Ok(());
        }
        if self.mode == OutputMode::Complete {
            self.rows.clear();
        }
        self.rows.extend(batches.iter().filter(|b| b.num_rows() > 0).cloned());
        self.last_batch = Some(batch_id);
        self.publish(schema.clone())
    }

    fn description(&self) -> String {
        format!("MemorySink[{}]", self.name)
    }
}
