//! The console sink: each batch printed as Spark prints it.
//!
//! ```text
//! -------------------------------------------
//! Batch: 0
//! -------------------------------------------
//! +----------+-----+
//! |event_type|count|
//! +----------+-----+
//! |     click|    3|
//! +----------+-----+
//!
//! ```

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::display::format_table;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::sink::Sink;

/// Receives the console sink's text, one batch at a time.
pub type ConsoleOutput = std::sync::Arc<dyn Fn(&str) -> std::io::Result<()> + Send + Sync>;

pub(crate) static SINK: super::SinkConnector = super::SinkConnector {
    names: &["console"],
    options: OPTIONS,
    modes: super::ALL_MODES,
    temporary_checkpoint: true,
    create: |a| Ok(Box::new(ConsoleSink::try_new(a.options, a.console)?)),
    batch: None,
};

pub(crate) const OPTIONS: &[&str] = &["numRows", "truncate", "checkpointLocation"];

pub(crate) struct ConsoleSink {
    num_rows: usize,
    truncate: usize,
    output: ConsoleOutput,
}

impl ConsoleSink {
    pub(crate) fn try_new(o: &Options, output: ConsoleOutput) -> Result<Self> {
        let truncate = if o.flag("truncate", true)? { 20 } else { 0 };
        Ok(ConsoleSink { num_rows: o.parse_or("numRows", 20)?, truncate, output })
    }
}

/// The console sink's text for one batch.
pub fn render_batch(
    batch_id: u64,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    num_rows: usize,
    truncate: usize,
) -> Result<String> {
    let line = "-------------------------------------------";
    Ok(format!("{line}\nBatch: {batch_id}\n{line}\n{}\n", format_table(schema, batches, num_rows, truncate)?))
}

impl Sink for ConsoleSink {
    fn add_batch(&mut self, batch_id: u64, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let text = render_batch(batch_id, schema, batches, self.num_rows, self.truncate)?;
        (self.output)(&text).map_err(|e| Error::io("<console>", e))
    }

    fn description(&self) -> String {
        "org.apache.spark.sql.execution.streaming.ConsoleTable$".into()
    }

    fn cell_width(&self) -> usize {
        self.truncate
    }
}
