//! Static reads and writes of a Delta table: `read().format("delta").load(path)`, at the
//! latest version or as of one (`versionAsOf`, `timestampAsOf`: Spark-Delta's time travel),
//! and `df.write().format("delta").mode(..).save(path)`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;

use super::table;
use crate::connector::{SaveMode, TableRead};
use crate::error::{Error, Result};
use crate::options::Options;

/// The options a static read takes.
pub(crate) const READ_OPTIONS: &[&str] = &["versionAsOf", "timestampAsOf"];

/// The options a static write takes.
pub(crate) const WRITE_OPTIONS: &[&str] = &["mergeSchema", "overwriteSchema"];

/// The table at `path` as a static DataFrame's provider: the files of the version asked for,
/// listed now and read by every scan.
pub(crate) fn read(path: &Path, options: &Options) -> Result<TableRead> {
    let version = match (options.get("versionAsOf"), options.get("timestampAsOf")) {
        (Some(_), Some(_)) => {
            return Err(Error::Analysis(
                "Cannot specify both version and timestamp when time travelling the table.".into(),
            ));
        }
        (Some(v), None) => {
            Some(v.parse::<u64>().map_err(|_| Error::option("versionAsOf", format!("'{v}' is not a version number")))?)
        }
        (None, Some(t)) => Some(version_at(path, t)?),
        (None, None) => None,
    };
    let delta = table::open(path, version)?;
    let schema = table::schema(path, &delta)?;
    let partition_columns = table::partition_columns(path, &delta)?;
    let mut files = table::snapshot_files(path, &delta)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let adds: Vec<&table::DataFile> = files.iter().collect();
    let files = table::file_table(path, &adds, &schema, &partition_columns);
    Ok((schema, Arc::new(files)))
}

/// The version `timestampAsOf` names: the last committed at or before it. Spark-Delta's
/// errors for a time before the first commit or after the last.
fn version_at(path: &Path, text: &str) -> Result<u64> {
    let at = parse_timestamp(text).ok_or_else(|| {
        Error::option("timestampAsOf", format!("'{text}' is not a timestamp such as 2024-01-01 10:00:00"))
    })?;
    let commits = table::commit_times(path)?;
    let (first, last) = match (commits.first(), commits.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err(Error::Analysis(format!("{} is not a Delta table", path.display()))),
    };
    let show = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map_or(ms.to_string(), |t| t.to_string());
    if at < first.1 {
        return Err(Error::Analysis(format!(
            "The provided timestamp ({text}) is before the earliest version available to this table ({}, version {}).",
            show(first.1),
            first.0
        )));
    }
    if at > last.1 {
        return Err(Error::Analysis(format!(
            "The provided timestamp ({text}) is after the latest version available to this table ({}, version {}).",
            show(last.1),
            last.0
        )));
    }
    Ok(commits.iter().rev().find(|(_, t)| *t <= at).map_or(first.0, |(v, _)| *v))
}

/// The version a stream's `startingTimestamp` names: the first committed at or after it (the
/// table's first for a time before every commit; the next, not yet written, for a time after
/// the last), as Spark-Delta's source starts.
pub(crate) fn first_version_from(path: &Path, text: &str) -> Result<u64> {
    let at = parse_timestamp(text).ok_or_else(|| {
        Error::option("startingTimestamp", format!("'{text}' is not a timestamp such as 2024-01-01 10:00:00"))
    })?;
    let commits = table::commit_times(path)?;
    let next = commits.last().map_or(0, |(v, _)| v + 1);
    Ok(commits.iter().find(|(_, t)| *t >= at).map_or(next, |(v, _)| *v))
}

/// Milliseconds since the epoch of `2024-01-01`, `2024-01-01 10:00:00[.fff]` (UTC, the session
/// time zone) or an RFC 3339 time.
fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(t.timestamp_millis());
    }
    for pattern in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(t, pattern) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis())
}

/// A static write. `errorifexists` refuses an existing table, `ignore` leaves it, `append` adds
/// a commit, `overwrite` replaces the content in one commit (readers of older versions still
/// see theirs).
pub(crate) fn write(
    path: &Path,
    mode: SaveMode,
    options: &Options,
    partition_by: &[String],
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    let exists = table::exists(path);
    let delta_mode = match (exists, mode) {
        (true, SaveMode::ErrorIfExists) => {
            return Err(Error::Analysis(format!(
                "Cannot write to already existent path {} without setting OVERWRITE = 'true': write with \
                 mode(\"overwrite\") to replace the table or mode(\"append\") to add to it",
                path.display()
            )));
        }
        (true, SaveMode::Ignore) => return Ok(()),
        (_, SaveMode::Overwrite) => deltalake::protocol::SaveMode::Overwrite,
        _ => deltalake::protocol::SaveMode::Append,
    };
    let schema_mode = match (options.flag("mergeSchema", false)?, options.flag("overwriteSchema", false)?) {
        (_, true) if mode != SaveMode::Overwrite => {
            return Err(Error::option("overwriteSchema", "replaces the schema only with mode(\"overwrite\")"));
        }
        (_, true) => Some(SchemaMode::Overwrite),
        (true, false) => Some(SchemaMode::Merge),
        (false, false) => None,
    };
    let delta = table::open_for_write(path)?;
    super::sink::write(
        path,
        delta,
        schema,
        batches,
        delta_mode,
        partition_by,
        schema_mode,
        CommitProperties::default(),
    )?;
    Ok(())
}
