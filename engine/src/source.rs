//! Sources: where a stream's rows come from, batch by batch.
//!
//! A [`Source`] answers two questions for the micro-batch loop: "how far does the data go
//! now?" ([`Source::latest_offset`]) and "give me the rows between these two offsets"
//! ([`Source::get_batch`]). Offsets are small JSON values written to the checkpoint before a
//! batch runs, so a restarted query re-reads exactly the same rows. The sources themselves are
//! connectors (`connector/`).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::clock::Clock;
use crate::error::Result;

pub use crate::checkpoint::Offset;

/// How much a batch may take from a source (Spark's `ReadLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    /// The source's own rate limit (`maxFilesPerTrigger`, one add per batch, ...).
    Default,
    /// Everything available: `Trigger::Once` takes it all in one batch, as in Spark.
    All,
}

/// A batch's rows as Spark's input partitions, in partition order: the rows of
/// `partitions[p]` are the ones `spark_partition_id()` numbers `p`, and reading the partitions
/// in order reads the rows in the order Spark's sinks receive them (semantics appendix, §10).
pub type InputPartitions = Vec<Vec<RecordBatch>>;

/// Wakes an idle query when its source has new data; returns `false` once the query is gone.
pub type Waker = Arc<dyn Fn() -> bool + Send + Sync>;

/// A stream of rows that can be read in offset ranges.
pub trait Source: Send {
    /// The end offset of the next batch: all data available now, capped by the source's rate
    /// limit (e.g. `maxFilesPerTrigger`) counted from `start` unless `limit` is
    /// [`ReadLimit::All`]. `None` when there has never been any data.
    fn latest_offset(&mut self, start: Option<&Offset>, limit: ReadLimit) -> Result<Option<Offset>>;

    /// The rows after `start` up to and including `end`, in the input partitions Spark's own
    /// source would read them in.
    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions>;

    /// For `Trigger::AvailableNow`: fix the data to process to what is available now.
    fn prepare_for_available_now(&mut self, _start: Option<&Offset>) -> Result<()> {
        Ok(())
    }

    /// Registers a function to call when new data arrives, for sources that know (a
    /// `MemoryStream` does; a directory is polled).
    fn set_waker(&mut self, _waker: Waker) {}

    /// How progress reports name this source, e.g. `FileStreamSource[/data/events]`.
    fn description(&self) -> String;
}

/// What a source needs from the running query.
pub(crate) struct SourceContext {
    /// This source's own directory in the checkpoint (`sources/<i>`).
    pub dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// Spark's `defaultParallelism`: how many partitions a source spreads a batch over when
    /// nothing else decides (the session's target partitions, as `local[N]` is N).
    pub parallelism: usize,
}

/// Builds a fresh source instance for one run of a query.
pub(crate) type SourceFactory = Arc<dyn Fn(SourceContext) -> Result<Box<dyn Source>> + Send + Sync>;

/// How to build a source: what `read_stream()...load()` recorded.
pub(crate) struct SourceSpec {
    pub schema: SchemaRef,
    /// What progress and plans call it (`FileStreamSource[...]`, `rate`, ...).
    pub name: String,
    pub create: SourceFactory,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec").field("name", &self.name).field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl SourceSpec {
    /// Creates a fresh source instance for one run of a query.
    pub(crate) fn create(&self, ctx: SourceContext) -> Result<Box<dyn Source>> {
        (self.create)(ctx)
    }
}
