//! Connectors: every source and sink, one module (a folder when it has parts) per connector,
//! and the registry the readers and writers look them up in by format name. Nothing outside
//! names a connector: a new one is one more module here and one more line in `SINKS` or
//! `SOURCES`.
//!
//! ```text
//! console.rs        sink: each batch printed as Spark prints it
//! delta/            Delta Lake tables: source, sink (exactly once), reads at a version, writes;
//!                   feature `delta`
//! files/            json, csv, text, parquet: the directory stream source, the file sink with
//!                   its manifest (the formats themselves are format/'s)
//! foreach_batch.rs  sink: a function of each batch
//! kafka/            source, batch reader, sink (at-least-once or exactly-once); feature `kafka`
//! memory/           MemoryStream's source; the memory sink (a table for session.sql)
//! noop.rs           sink: drops the rows (Spark's `noop`, for benchmarks)
//! rate.rs           sources: rate, rate-micro-batch
//! socket.rs         source: lines from a TCP server (not fault tolerant, as in Spark)
//! ```
//!
//! Each sink declares the options it reads, the output modes it accepts (Spark's sink table),
//! whether it may run on a temporary checkpoint, and how it is built:
//!
//! | sink | options | modes | without `checkpointLocation` |
//! |---|---|---|---|
//! | `console` | `numRows`, `truncate` | append, update, complete | yes |
//! | `memory` | | append, complete | yes |
//! | `parquet`, `json`, `csv` | `path` | append | no |
//! | `foreachbatch` | | append, update, complete | yes |
//! | `noop` | | append, update, complete | yes |
//! | `kafka` (feature) | `kafka.*`, `topic`, `deliveryGuarantee` | append, update, complete | no |
//! | `delta` (feature) | `path`, `mergeSchema` | append, complete | no |
//!
//! Each source that reads no path declares its options, its fixed schema and how it is built
//! (the file formats read a directory: `files/`):
//!
//! | source | schema |
//! |---|---|
//! | `rate`, `rate-micro-batch` | `timestamp`, `value` |
//! | `socket` | `value`, and `timestamp` with `includeTimestamp` |
//! | `kafka` (feature) | `key`, `value`, `topic`, `partition`, `offset`, `timestamp`, ... |
//!
//! A *table format* is read, streamed and written at a path, with a schema the table itself
//! keeps (`TABLES`): Delta Lake (feature `delta`), `sink` `delta` with modes append and
//! complete.

pub(crate) mod console;
#[cfg(feature = "delta")]
pub(crate) mod delta;
pub(crate) mod files;
pub(crate) mod foreach_batch;
#[cfg(feature = "kafka")]
pub mod kafka;
pub(crate) mod memory;
pub(crate) mod noop;
pub(crate) mod rate;
pub(crate) mod socket;

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::options::Options;
use crate::output_mode::OutputMode;
use crate::sink::Sink;
use crate::source::{Source, SourceContext};
use foreach_batch::BatchFn;

/// Every sink.
static SINKS: &[&SinkConnector] = &[
    &console::SINK,
    &memory::SINK,
    &files::SINK,
    &foreach_batch::SINK,
    &noop::SINK,
    #[cfg(feature = "kafka")]
    &kafka::SINK,
    #[cfg(feature = "delta")]
    &delta::SINK,
];

/// Every source that reads no path.
static SOURCES: &[&SourceConnector] = &[
    &rate::SOURCE,
    &rate::MICRO_BATCH_SOURCE,
    &socket::SOURCE,
    #[cfg(feature = "kafka")]
    &kafka::SOURCE,
];

/// Every table format.
static TABLES: &[&TableConnector] = &[
    #[cfg(feature = "delta")]
    &delta::TABLE,
];

/// What a sink is built from.
pub(crate) struct SinkArgs<'a> {
    /// The format name the query asked for.
    pub format: &'a str,
    /// The session's catalog (the memory sink's table goes there) and console.
    pub ctx: &'a SessionContext,
    pub console: console::ConsoleOutput,
    pub options: &'a Options,
    pub mode: OutputMode,
    /// The rows' layout.
    pub schema: SchemaRef,
    /// The query's id: the exactly-once Kafka sink's transactional id is made from it.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub query_id: uuid::Uuid,
    pub query_name: Option<&'a str>,
    /// The sink's own directory in the checkpoint (the Kafka sink's transaction log).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub sink_dir: PathBuf,
    pub partition_by: &'a [String],
    pub foreach_batch: Option<BatchFn>,
}

/// One sink, as it declares itself.
pub(crate) struct SinkConnector {
    /// The format names that select it.
    pub names: &'static [&'static str],
    /// The options it reads (`checkpointLocation` is everyone's).
    pub options: &'static [&'static str],
    pub modes: &'static [OutputMode],
    /// Whether a query may run on a checkpoint made up for it (Spark's
    /// `useTempCheckpointLocation`): sinks whose output does not outlive the process.
    pub temporary_checkpoint: bool,
    pub create: fn(SinkArgs) -> Result<Box<dyn Sink>>,
    /// Writing a static DataFrame to a destination that is not a path (`df.write()...
    /// save_source()`): its options, and the write.
    pub batch: Option<BatchWrite>,
}

/// A static write: `options` checked, then `write(options, schema, rows)`.
pub(crate) struct BatchWrite {
    pub options: &'static [&'static str],
    pub write: fn(&Options, &SchemaRef, &[RecordBatch]) -> Result<()>,
}

use OutputMode::{Append, Complete, Update};

/// What most sinks take.
pub(crate) const ALL_MODES: &[OutputMode] = &[Append, Update, Complete];

/// The sink `format` names, or Spark's kind of error listing the ones there are.
pub(crate) fn sink(format: &str) -> Result<&'static SinkConnector> {
    SINKS.iter().copied().find(|s| s.names.contains(&format)).ok_or_else(|| {
        let names: Vec<&str> = SINKS.iter().flat_map(|s| s.names.iter().copied()).collect();
        Error::option("format", format!("unknown sink '{format}'; sinks are {}{}", names.join(", "), kafka_note()))
    })
}

/// What to add to a list of connectors when Kafka or Delta is compiled out.
pub(crate) fn kafka_note() -> &'static str {
    match (cfg!(feature = "kafka"), cfg!(feature = "delta")) {
        (true, true) => "",
        (false, true) => " (kafka needs the crate feature `kafka`)",
        (true, false) => " (delta needs the crate feature `delta`)",
        (false, false) => " (kafka and delta need the crate features `kafka` and `delta`)",
    }
}

impl SinkConnector {
    /// Checks the options and the output mode, then builds the sink.
    pub(crate) fn build(&self, args: SinkArgs) -> Result<Box<dyn Sink>> {
        let known: Vec<&str> = self.options.iter().copied().chain(["checkpointLocation"]).collect();
        args.options.check_known(&format!("sink '{}'", args.format), &known)?;
        (self.create)(args)
    }

    /// Spark's refusal of an output mode the sink does not take.
    pub(crate) fn check_mode(&self, format: &str, mode: OutputMode) -> Result<()> {
        if self.modes.contains(&mode) {
            return Ok(());
        }
        Err(Error::Analysis(format!("Data source {format} does not support {mode} output mode")))
    }
}

/// One stream source that reads no path, as it declares itself.
pub(crate) struct SourceConnector {
    pub names: &'static [&'static str],
    /// The options it reads.
    pub options: fn() -> Vec<&'static str>,
    /// Its rows' fixed schema, which may depend on options (Kafka's `includeHeaders`); it also
    /// refuses options the source cannot take.
    pub schema: fn(&Options) -> Result<SchemaRef>,
    /// A fresh instance for one run of a query.
    pub create: fn(&Options, SourceContext) -> Result<Box<dyn Source>>,
    /// Reading it as a static DataFrame (`read()...load_source()`): its options, and the read.
    pub batch: Option<BatchRead>,
}

/// A static DataFrame's schema and rows, in its input partitions.
pub(crate) type Rows = (SchemaRef, crate::source::InputPartitions);

/// A static read: `options` checked, then `read(options)` gives the schema and the rows.
pub(crate) struct BatchRead {
    pub options: fn() -> Vec<&'static str>,
    pub read: fn(&Options) -> Result<Rows>,
}

/// The path-less stream source `format` names, if there is one.
pub(crate) fn stream_source(format: &str) -> Option<&'static SourceConnector> {
    SOURCES.iter().copied().find(|s| s.names.contains(&format))
}

/// The names of the path-less stream sources, for errors that list them.
pub(crate) fn stream_source_names() -> Vec<&'static str> {
    SOURCES.iter().flat_map(|s| s.names.iter().copied()).collect()
}

/// What to do when a static write finds data at its destination (Spark's `SaveMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaveMode {
    /// Refuse to write (Spark's default, also spelled `error`).
    ErrorIfExists,
    /// Replace what is there.
    Overwrite,
    /// Add to what is there.
    Append,
    /// Write nothing, silently.
    Ignore,
}

impl SaveMode {
    /// Spark's names: `errorifexists` (or `error`, `default`), `overwrite`, `append`, `ignore`.
    pub(crate) fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "errorifexists" | "error" | "default" => SaveMode::ErrorIfExists,
            "overwrite" => SaveMode::Overwrite,
            "append" => SaveMode::Append,
            "ignore" => SaveMode::Ignore,
            other => {
                return Err(Error::option(
                    "mode",
                    format!("'{other}': use errorifexists, overwrite, append or ignore"),
                ));
            }
        })
    }
}

/// A static read of a table format: the table's schema and a provider that scans it.
pub(crate) type TableRead = (SchemaRef, std::sync::Arc<dyn datafusion::datasource::TableProvider>);

/// A table format at a path (Delta Lake), as it declares itself: its options for reading,
/// streaming and writing, and the three operations.
pub(crate) struct TableConnector {
    pub names: &'static [&'static str],
    pub read_options: &'static [&'static str],
    pub stream_options: &'static [&'static str],
    pub write_options: &'static [&'static str],
    /// `read().format(..).load(path)`.
    pub read: fn(&std::path::Path, &Options) -> Result<TableRead>,
    /// `read_stream().format(..).load(path)`.
    pub stream: fn(&std::path::Path, &Options) -> Result<crate::source::SourceSpec>,
    /// `df.write().format(..).mode(..).save(path)`, with the rows already computed.
    pub write: TableWrite,
}

/// A static write of a table format: (path, mode, options, partition columns, schema, rows).
pub(crate) type TableWrite =
    fn(&std::path::Path, SaveMode, &Options, &[String], &SchemaRef, &[RecordBatch]) -> Result<()>;

/// The names of the table formats, for errors that list them.
pub(crate) fn table_format_names() -> Vec<&'static str> {
    TABLES.iter().flat_map(|t| t.names.iter().copied()).collect()
}

/// The table format `format` names, if there is one.
pub(crate) fn table_format(format: &str) -> Option<&'static TableConnector> {
    TABLES.iter().copied().find(|t| t.names.contains(&format))
}
