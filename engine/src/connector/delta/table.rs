//! What the Delta source, sink and reader share: opening the table at a path (at a version or
//! the latest), a version's actions, the files of a list of `add` actions read as rows, the
//! type mapping, and delta-rs's errors as Brooklet's.
//!
//! Timestamps: Brooklet's `TIMESTAMP` is Arrow's time-zone-less microseconds read as UTC (the
//! session time zone). Delta's `timestamp` type is the same instant but spelled with a zone;
//! Delta's `timestamp_ntz` needs a table feature Spark writes only for `TIMESTAMP_NTZ` columns.
//! So columns are written as `Timestamp(µs, "UTC")` (Spark's `TimestampType` in the table's
//! schema) and read back zone-less.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;

use deltalake::kernel::{Action, Add, LogicalFileView};
use deltalake::{DeltaTable, DeltaTableError};

use crate::connector::files::table::{FileTable, TableFile};
use crate::error::{Error, Result};
use crate::format::FileFormat;
use crate::source::InputPartitions;

/// delta-rs is async; Brooklet's sources and sinks are called from a query's own thread. The
/// table operations run on one small runtime of their own, shared by every Delta table.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("brooklet-delta")
                .enable_all()
                .build()
                .expect("cannot start the Delta runtime's threads")
        })
        .block_on(f)
}

/// The error for `path`, saying what was being done.
pub(crate) fn error(path: &Path, doing: &str, e: impl std::fmt::Display) -> Error {
    Error::Delta { table: path.display().to_string(), message: format!("{doing}: {e}") }
}

/// The table's location as delta-rs wants it: an absolute `file://` URL.
fn url(path: &Path, create: bool) -> Result<url::Url> {
    if create {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
    }
    let abs = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    url::Url::from_directory_path(&abs).map_err(|()| error(path, "opening", "not a local directory"))
}

/// Whether `path` holds a Delta table (a `_delta_log` with at least one commit).
pub(crate) fn exists(path: &Path) -> bool {
    std::fs::read_dir(path.join("_delta_log"))
        .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))))
}

/// The table at `path` as of `version` (the latest when `None`); Spark's error when there is
/// none.
pub(crate) fn open(path: &Path, version: Option<u64>) -> Result<DeltaTable> {
    if !exists(path) {
        return Err(Error::Analysis(format!("{} is not a Delta table", path.display())));
    }
    let url = url(path, false)?;
    block_on(async {
        match version {
            Some(v) => deltalake::open_table_with_version(url, v).await,
            None => deltalake::open_table(url).await,
        }
    })
    .map_err(|e| match (&e, version) {
        (DeltaTableError::InvalidVersion(_), Some(v)) | (DeltaTableError::NotATable(_), Some(v)) => {
            error(path, "time travel", format!("version {v} does not exist ({e})"))
        }
        _ => error(path, "opening", e),
    })
}

/// The table at `path` to write to: loaded when it exists, else a handle to create it with.
pub(crate) fn open_for_write(path: &Path) -> Result<DeltaTable> {
    let url = url(path, true)?;
    block_on(DeltaTable::try_from_url(url)).map_err(|e| error(path, "opening", e))
}

/// The table's schema as Brooklet's columns.
pub(crate) fn schema(path: &Path, table: &DeltaTable) -> Result<SchemaRef> {
    let snapshot = table.snapshot().map_err(|e| error(path, "reading the schema", e))?;
    refuse_unknown_reader_features(path, table)?;
    Ok(from_delta(&snapshot.snapshot().arrow_schema()))
}

/// The table's partition columns.
pub(crate) fn partition_columns(path: &Path, table: &DeltaTable) -> Result<Vec<String>> {
    let snapshot = table.snapshot().map_err(|e| error(path, "reading the metadata", e))?;
    Ok(snapshot.metadata().partition_columns().to_vec())
}

/// Deletion vectors, column mapping and the like change how files are read; Brooklet reads
/// plain Parquet files with their partition values, so a table that needs more is refused
/// rather than read wrongly.
fn refuse_unknown_reader_features(path: &Path, table: &DeltaTable) -> Result<()> {
    let snapshot = table.snapshot().map_err(|e| error(path, "reading the protocol", e))?;
    let protocol = snapshot.protocol();
    let features: Vec<String> = protocol
        .reader_features()
        .unwrap_or_default()
        .iter()
        .map(|f| f.to_string())
        .filter(|f| f != "timestampNtz")
        .collect();
    if features.is_empty() && protocol.min_reader_version() <= 3 {
        return Ok(());
    }
    Err(error(path, "reading", format!("the table needs reader features Brooklet does not implement: {features:?}")))
}

/// A schema read from Delta, with zone-less timestamps.
pub(crate) fn from_delta(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let t = match f.data_type() {
                    DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, None),
                    other => other.clone(),
                };
                Field::new(f.name(), t, f.is_nullable())
            })
            .collect::<Vec<_>>(),
    ))
}

/// `batch` as Delta stores it: zone-less timestamps become UTC ones (the same instants).
pub(crate) fn to_delta(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Timestamp(_, None))) {
        return Ok(batch.clone());
    }
    let utc = |unit: &TimeUnit| DataType::Timestamp(*unit, Some("UTC".into()));
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(unit, None) => Field::new(f.name(), utc(unit), f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    let columns = batch
        .columns()
        .iter()
        .zip(&fields)
        .map(
            |(c, f)| {
                if c.data_type() == f.data_type() { Ok(c.clone()) } else { arrow::compute::cast(c, f.data_type()) }
            },
        )
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// The actions of commit `version`, in the order they were written; `None` when the version
/// has not been committed (yet).
pub(crate) fn commit(path: &Path, table: &DeltaTable, version: u64) -> Result<Option<Vec<Action>>> {
    let log_store = table.log_store();
    let bytes = block_on(log_store.read_commit_entry(version))
        .map_err(|e| error(path, &format!("reading version {version}"), e))?;
    bytes
        .map(|b| {
            deltalake::logstore::get_actions(version, &b)
                .map_err(|e| error(path, &format!("reading version {version}"), e))
        })
        .transpose()
}

/// One data file of the table: what Brooklet needs of an `add` action.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    /// The file, relative to the table (the log's URL-encoded path, decoded).
    pub path: String,
    pub size: i64,
    pub modification_time: i64,
    pub partition_values: HashMap<String, Option<String>>,
}

impl DataFile {
    pub(crate) fn from_add(add: Add) -> Self {
        DataFile {
            path: crate::connector::files::sink::unescape_path_name(&add.path),
            size: add.size,
            modification_time: add.modification_time,
            partition_values: add.partition_values,
        }
    }

    pub(crate) fn from_view(view: &LogicalFileView) -> Self {
        DataFile {
            path: view.path().into_owned(),
            size: view.size(),
            modification_time: view.modification_time(),
            partition_values: view.partition_values_map(),
        }
    }
}

/// The data files of a table's version (its snapshot).
pub(crate) fn snapshot_files(path: &Path, table: &DeltaTable) -> Result<Vec<DataFile>> {
    let state = table.snapshot().map_err(|e| error(path, "listing the files", e))?;
    Ok(state.log_data().iter().map(|f| DataFile::from_view(&f)).collect())
}

/// The rows of the files `adds` name, each file's rows in order, the files in the input
/// partitions Spark's file scan would pack them into; columns as `schema` orders them.
pub(crate) fn read_files(
    root: &Path,
    adds: &[&DataFile],
    schema: &SchemaRef,
    partition_columns: &[String],
    parallelism: usize,
) -> Result<InputPartitions> {
    file_table(root, adds, schema, partition_columns).read(parallelism)
}

/// The files `adds` name as a table of `schema`: their own columns from the Parquet files,
/// the partition columns from each `add`'s partition values.
pub(crate) fn file_table(
    root: &Path,
    adds: &[&DataFile],
    schema: &SchemaRef,
    partition_columns: &[String],
) -> FileTable {
    let data_fields: Vec<_> =
        schema.fields().iter().filter(|f| !partition_columns.contains(f.name())).cloned().collect();
    let partition_types = partition_columns
        .iter()
        .map(|c| schema.field_with_name(c).map(|f| f.data_type().clone()).unwrap_or(DataType::Utf8))
        .collect();
    let files = adds
        .iter()
        .map(|add| TableFile {
            path: file_path(root, &add.path),
            partition_values: partition_columns
                .iter()
                .map(|c| add.partition_values.get(c).cloned().flatten())
                .collect(),
        })
        .collect();
    FileTable {
        files,
        format: FileFormat::Parquet,
        data_schema: Arc::new(Schema::new(data_fields)),
        schema: schema.clone(),
        partition_columns: partition_columns.to_vec(),
        partition_types,
    }
}

/// A data file's path (decoded, relative to the table) under the table's directory.
fn file_path(root: &Path, path: &str) -> PathBuf {
    root.join(path)
}

/// Each commit's version and time (its log file's modification time in milliseconds, as
/// Spark-Delta dates commits), oldest first.
pub(crate) fn commit_times(path: &Path) -> Result<Vec<(u64, i64)>> {
    let log = path.join("_delta_log");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&log).map_err(|e| Error::io(&log, e))? {
        let entry = entry.map_err(|e| Error::io(&log, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_suffix(".json").and_then(|v| v.parse::<u64>().ok()) else { continue };
        let modified = entry.metadata().and_then(|m| m.modified()).map_err(|e| Error::io(entry.path(), e))?;
        let ms = modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        out.push((version, ms));
    }
    out.sort();
    Ok(out)
}
