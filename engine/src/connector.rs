//! The registry of streaming connectors by format name. [`crate::DataStreamWriter`] and
//! `read_stream()` look connectors up here and never match on names; a new one is one more
//! entry. (The file formats, which read a directory and infer schemas, are `format/`'s.)
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
//!
//! Each source that reads no path declares its options, its fixed schema and its kind:
//!
//! | source | schema |
//! |---|---|
//! | `rate`, `rate-micro-batch` | `timestamp`, `value` |
//! | `kafka` (feature) | `key`, `value`, `topic`, `partition`, `offset`, `timestamp`, ... |

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::options::Options;
use crate::output_mode::OutputMode;
use crate::sink::file::{FileSink, WriteFormat};
use crate::sink::foreach::{BatchFn, ForeachBatchSink};
use crate::sink::noop::NoopSink;
use crate::sink::{Sink, console, memory};
use crate::source::SourceKind;
use crate::source::rate::{RATE_MICRO_BATCH_OPTIONS, RATE_OPTIONS, rate_schema};
use datafusion::prelude::SessionContext;

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
}

use OutputMode::{Append, Complete, Update};

const ALL_MODES: &[OutputMode] = &[Append, Update, Complete];

static SINKS: &[SinkConnector] = &[
    SinkConnector {
        names: &["console"],
        options: console::OPTIONS,
        modes: ALL_MODES,
        temporary_checkpoint: true,
        create: |a| Ok(Box::new(console::ConsoleSink::try_new(a.options, a.console)?)),
    },
    SinkConnector {
        names: &["memory"],
        options: &[],
        modes: &[Append, Complete],
        temporary_checkpoint: true,
        create: |a| {
            let name =
                a.query_name.ok_or_else(|| Error::Analysis("queryName must be specified for memory sink".into()))?;
            Ok(Box::new(memory::MemorySink::try_new(a.ctx, name, a.mode, a.schema)?))
        },
    },
    SinkConnector {
        names: &["parquet", "json", "csv"],
        options: &["path"],
        modes: &[Append],
        temporary_checkpoint: false,
        create: |a| {
            let format = WriteFormat::from_name(a.format)
                .ok_or_else(|| Error::Internal(format!("the file sink was chosen for '{}'", a.format)))?;
            let path = a.options.get("path").ok_or_else(|| {
                Error::option("path", format!("the {} sink needs option(\"path\", <directory>)", a.format))
            })?;
            Ok(Box::new(FileSink::try_new(PathBuf::from(path), format, a.partition_by.to_vec(), &a.schema)?))
        },
    },
    SinkConnector {
        names: &["foreachbatch"],
        options: &[],
        modes: ALL_MODES,
        temporary_checkpoint: true,
        create: |a| {
            let f = a.foreach_batch.ok_or_else(|| Error::Internal("foreach_batch without a function".into()))?;
            Ok(Box::new(ForeachBatchSink { f }))
        },
    },
    SinkConnector {
        names: &["noop"],
        options: &[],
        modes: ALL_MODES,
        temporary_checkpoint: true,
        create: |_| Ok(Box::new(NoopSink)),
    },
    #[cfg(feature = "kafka")]
    SinkConnector {
        names: &["kafka"],
        options: crate::kafka::sink::SINK_OPTIONS,
        modes: ALL_MODES,
        temporary_checkpoint: false,
        create: |a| Ok(Box::new(crate::kafka::sink::KafkaSink::try_new(a.options, a.query_id, a.sink_dir)?)),
    },
];

/// The sink `format` names, or Spark's kind of error listing the ones there are.
pub(crate) fn sink(format: &str) -> Result<&'static SinkConnector> {
    SINKS.iter().find(|s| s.names.contains(&format)).ok_or_else(|| {
        let names: Vec<&str> = SINKS.iter().flat_map(|s| s.names.iter().copied()).collect();
        let kafka = if cfg!(feature = "kafka") { "" } else { " (kafka needs the crate feature `kafka`)" };
        Error::option("format", format!("unknown sink '{format}'; sinks are {}{kafka}", names.join(", ")))
    })
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
    pub kind: SourceKind,
}

static SOURCES: &[SourceConnector] = &[
    SourceConnector {
        names: &["rate"],
        options: || RATE_OPTIONS.to_vec(),
        schema: |_| Ok(rate_schema()),
        kind: SourceKind::Rate,
    },
    SourceConnector {
        names: &["rate-micro-batch"],
        options: || RATE_MICRO_BATCH_OPTIONS.to_vec(),
        schema: |_| Ok(rate_schema()),
        kind: SourceKind::RateMicroBatch,
    },
    #[cfg(feature = "kafka")]
    SourceConnector {
        names: &["kafka"],
        options: || [crate::kafka::source::READ_OPTIONS, crate::kafka::source::STREAM_OPTIONS].concat(),
        schema: |o| {
            let ending = ["endingOffsets", "endingOffsetsByTimestamp", "endingTimestamp"];
            if let Some(key) = ending.into_iter().find(|k| o.get(k).is_some()) {
                return Err(Error::option(key, "ending offsets are not valid in streaming queries"));
            }
            Ok(crate::kafka::kafka_schema(o.flag("includeHeaders", false)?))
        },
        kind: SourceKind::Kafka,
    },
];

/// The path-less stream source `format` names, if there is one.
pub(crate) fn stream_source(format: &str) -> Option<&'static SourceConnector> {
    SOURCES.iter().find(|s| s.names.contains(&format))
}

/// The names of the path-less stream sources, for errors that list them.
pub(crate) fn stream_source_names() -> Vec<&'static str> {
    SOURCES.iter().flat_map(|s| s.names.iter().copied()).collect()
}
