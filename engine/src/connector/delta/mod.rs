//! Delta Lake tables, through delta-rs (feature `delta`): the sink (`write_stream().format(
//! "delta")`, append and complete, exactly once by the `txn` action), the stream source
//! (`read_stream().format("delta").load(path)`), static reads at a version and static writes.
//!
//! ```text
//! table.rs    opening a table, a commit's actions, files as rows, the timestamp mapping
//! sink.rs     one commit per micro-batch with txn {query id, batch id}
//! source.rs   the snapshot then each commit's added files, offsets as Spark-Delta's
//! read.rs     read at a version (versionAsOf, timestampAsOf); df.write() with save modes
//! merge.rs    history (a row per commit) and MERGE, for the API's DeltaTable
//! ```
//!
//! | | options |
//! |---|---|
//! | sink | `path`, `mergeSchema`; modes append, complete |
//! | source | `maxFilesPerTrigger`, `maxBytesPerTrigger`, `startingVersion`, `ignoreDeletes`, `ignoreChanges`, `skipChangeCommits` |
//! | read | `versionAsOf`, `timestampAsOf` |
//! | write | `mergeSchema`, `overwriteSchema`; modes errorifexists, append, overwrite, ignore |

mod merge;
mod read;
mod sink;
mod source;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::operations::write::SchemaMode;

use super::{SinkArgs, SinkConnector, TableConnector};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::output_mode::OutputMode;
use crate::sink::Sink;
use crate::source::SourceSpec;

pub(crate) use merge::{MergeSpec, history, merge};

/// Whether `path` holds a Delta table.
pub(crate) fn is_table(path: &Path) -> bool {
    table::exists(path)
}

pub(crate) static SINK: SinkConnector = SinkConnector {
    names: &["delta"],
    options: &["path", "mergeSchema"],
    modes: &[OutputMode::Append, OutputMode::Complete],
    temporary_checkpoint: false,
    create,
    batch: None,
};

pub(crate) static TABLE: TableConnector = TableConnector {
    names: &["delta"],
    read_options: read::READ_OPTIONS,
    stream_options: source::OPTIONS,
    write_options: read::WRITE_OPTIONS,
    read: read::read,
    stream,
    write: read::write,
};

fn create(a: SinkArgs) -> Result<Box<dyn Sink>> {
    let path = a
        .options
        .get("path")
        .ok_or_else(|| Error::option("path", "the delta sink needs option(\"path\", <table directory>)"))?;
    let schema_mode = a.options.flag("mergeSchema", false)?.then_some(SchemaMode::Merge);
    let sink = sink::DeltaSink::try_new(
        PathBuf::from(path),
        a.query_id.to_string(),
        a.mode,
        a.partition_by.to_vec(),
        schema_mode,
    )?;
    Ok(Box::new(sink))
}

fn stream(path: &Path, options: &Options) -> Result<SourceSpec> {
    let delta = table::open(path, None)?;
    let schema = table::schema(path, &delta)?;
    // Options are checked now, so a bad one fails at load rather than at start.
    let (path, options) = (path.to_path_buf(), options.clone());
    let checked_schema = schema.clone();
    source::DeltaSource::try_new(path.clone(), schema.clone(), &options, 1)?;
    Ok(SourceSpec {
        schema,
        name: format!("DeltaSource[{}]", path.display()),
        create: Arc::new(move |ctx| {
            Ok(Box::new(source::DeltaSource::try_new(path.clone(), checked_schema.clone(), &options, ctx.parallelism)?))
        }),
    })
}

/// A sink writing to `path` as query `app_id` would (tests hand it batches again).
#[cfg(test)]
pub(crate) fn sink_for_tests(path: &Path, app_id: &str) -> Box<dyn Sink> {
    Box::new(sink::DeltaSink::try_new(path.to_path_buf(), app_id.into(), OutputMode::Append, Vec::new(), None).unwrap())
}

/// The number of rows delta-rs's own reader (its DataFusion table provider) finds in the table.
#[cfg(test)]
pub(crate) fn rows_by_delta_rs(path: &Path) -> usize {
    let delta = table::open(path, None).unwrap();
    table::block_on(async {
        let provider = delta.table_provider().await.unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        delta.update_datafusion_session(&ctx.state()).unwrap();
        ctx.read_table(provider).unwrap().count().await.unwrap()
    })
}
