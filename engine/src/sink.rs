//! Sinks: where each micro-batch's result rows go.
//!
//! A sink receives a batch id with the rows. The micro-batch loop may hand the same batch id
//! twice (a batch re-run after a crash); a sink must then leave the same visible result as if
//! it had seen it once. The memory and file sinks do so by remembering committed batch ids;
//! the console prints again (as Spark's does); `foreach_batch` passes the batch id on so the
//! user's code can do the same. The sinks themselves are connectors (`connector/`).

pub use crate::connector::files::sink::{MANIFEST_DIR, committed_files};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;

/// The destination of a streaming query's rows.
pub trait Sink: Send {
    /// Delivers batch `batch_id`'s result rows.
    fn add_batch(&mut self, batch_id: u64, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()>;

    /// How progress reports name this sink.
    fn description(&self) -> String;

    /// The width at which a display of this sink's rows cuts a cell: Spark's 20, or what the
    /// console sink's `truncate` option says (0: nothing cut).
    fn cell_width(&self) -> usize {
        20
    }
}
