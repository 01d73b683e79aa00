//! State files: the one versioned layer every state store (groups, sessions, keys) writes
//! through. Arrow IPC, one file per version and kind, each written atomically:
//!
//! ```text
//! <N>.delta      rows version N added or changed, whole (a row replaces its identity's row)
//! <N>.removed    identities version N removed, if any
//! <N>.snapshot   every row of version N (compaction), written in the background
//! ```
//!
//! A row's *identity* says which rows replace which: a group's key columns, a key set's keys,
//! a session's other keys and start ([`Identity`]). Restoring version N reads the newest
//! snapshot at or before N, then each later delta and removal in order.
//!
//! Compaction runs off the batch thread, as Spark's maintenance task does: when a snapshot is
//! due, a background thread rebuilds the version from its files (the previous snapshot and the
//! deltas since) and writes the snapshot, while batches go on. A snapshot is only a shortcut for
//! restoring, so a crash mid-write, or a snapshot that fails (logged), loses nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::row::{RowConverter, SortField};

use crate::checkpoint::log::write_atomically;
use crate::error::{Error, Result};

/// Snapshots are written on versions that are a multiple of this (Spark's
/// `minDeltasForSnapshot`), when one is due: once the rows written since the last snapshot
/// (deltas and removals) are at least as many as the state holds. Over time, snapshots then
/// cost no more than the deltas did, so the work stays proportional to what batches change (a
/// 1M-group state with 1,000 changes a batch snapshots every 1,000 batches, not every 10), and
/// a restore replays at most about twice the state.
pub(super) const SNAPSHOT_EVERY: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Rows a version added or changed, whole.
    Delta,
    /// Identities a version removed.
    Removed,
    /// Every row (compaction: a restore starts from the newest one).
    Snapshot,
}

/// Which columns of a state file identify a row: whole columns, or a field of a struct column
/// (a session's `start`). The same columns lead both layouts, rows and removals.
pub(super) struct Identity {
    parts: Vec<(usize, Option<&'static str>)>,
    converter: Option<RowConverter>,
}

impl Identity {
    /// The first `fields.len()` columns, which are `fields`.
    pub(super) fn columns(fields: &[FieldRef]) -> Result<Self> {
        let parts = (0..fields.len()).map(|i| (i, None)).collect();
        Self::new(parts, fields.iter().map(|f| f.data_type().clone()).collect())
    }

    /// The key columns `fields`, but only the `start` of the session struct at `session_at`.
    pub(super) fn with_session_start(fields: &[FieldRef], session_at: usize) -> Result<Self> {
        let mut parts = Vec::new();
        let mut types = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            if i != session_at {
                parts.push((i, None));
                types.push(field.data_type().clone());
                continue;
            }
            let DataType::Struct(children) = field.data_type() else {
                return Err(Error::Internal("the session key is not a struct".into()));
            };
            let start = children.find("start").ok_or_else(|| Error::Internal("a session without start".into()))?;
            parts.push((i, Some("start")));
            types.push(start.1.data_type().clone());
        }
        Self::new(parts, types)
    }

    fn new(parts: Vec<(usize, Option<&'static str>)>, types: Vec<DataType>) -> Result<Self> {
        let converter = if types.is_empty() {
            None
        } else {
            Some(RowConverter::new(types.into_iter().map(SortField::new).collect())?)
        };
        Ok(Identity { parts, converter })
    }

    /// Each row's identity, in arrow's row format.
    fn of(&self, batch: &RecordBatch) -> Result<Vec<Box<[u8]>>> {
        let Some(converter) = &self.converter else { return Ok(vec![Box::from([] as [u8; 0]); batch.num_rows()]) };
        let columns = self
            .parts
            .iter()
            .map(|&(i, field)| match field {
                None => Ok(batch.column(i).clone()),
                Some(name) => batch
                    .column(i)
                    .as_struct_opt()
                    .and_then(|s| s.column_by_name(name))
                    .cloned()
                    .ok_or_else(|| Error::Internal(format!("state column {i} has no field {name}"))),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let rows = converter.convert_columns(&columns)?;
        Ok(rows.iter().map(|r| Box::from(r.as_ref())).collect())
    }
}

/// One state store's files.
pub(super) struct StateFiles {
    dir: PathBuf,
    /// The layout of deltas and snapshots, and of removals.
    schema: SchemaRef,
    key_schema: SchemaRef,
    identity: Arc<Identity>,
    rows_since_snapshot: usize,
    /// The background snapshot, while it runs.
    job: Option<JoinHandle<()>>,
}

impl StateFiles {
    pub(super) fn new(dir: PathBuf, schema: SchemaRef, key_schema: SchemaRef, identity: Identity) -> Self {
        StateFiles { dir, schema, key_schema, identity: Arc::new(identity), rows_since_snapshot: 0, job: None }
    }

    /// The directory the files are in.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes version `version`'s changed rows (possibly none: the file says the version exists).
    pub(super) fn write_delta(&mut self, version: u64, rows: &RecordBatch) -> Result<()> {
        self.rows_since_snapshot += rows.num_rows();
        write(&self.dir, version, Kind::Delta, rows)
    }

    /// Writes version `version`'s removed identities, if any.
    pub(super) fn write_removed(&mut self, version: u64, keys: &RecordBatch) -> Result<()> {
        if keys.num_rows() == 0 {
            return Ok(());
        }
        self.rows_since_snapshot += keys.num_rows();
        write(&self.dir, version, Kind::Removed, keys)
    }

    /// After version `version` is written, with `state_rows` rows in state: starts its
    /// snapshot in the background when one is due and none is running.
    pub(super) fn committed(&mut self, version: u64, state_rows: usize) {
        crate::fault::point("state-written");
        let running = self.job.as_ref().is_some_and(|j| !j.is_finished());
        let due = version > 0 && version.is_multiple_of(SNAPSHOT_EVERY) && self.rows_since_snapshot >= state_rows;
        if running || !due {
            return;
        }
        self.wait();
        self.rows_since_snapshot = 0;
        let (dir, schema, key_schema, identity) =
            (self.dir.clone(), self.schema.clone(), self.key_schema.clone(), self.identity.clone());
        let spawned = std::thread::Builder::new().name("brooklet-snapshot".into()).spawn(move || {
            if let Err(e) = write_snapshot(&dir, version, &schema, &key_schema, &identity) {
                tracing::warn!(dir = %dir.display(), version, error = %e, "state snapshot failed; restores replay deltas instead");
            }
        });
        match spawned {
            Ok(job) => self.job = Some(job),
            Err(e) => tracing::warn!(error = %e, "could not start the state snapshot thread"),
        }
    }

    /// Waits for a running snapshot.
    pub(super) fn wait(&mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.join();
        }
    }

    /// The changes that rebuild `version`, in the order to apply them: the newest snapshot at or
    /// before it, then each later version's delta and removals.
    pub(super) fn read(&mut self, version: u64) -> Result<Vec<(Kind, RecordBatch)>> {
        self.wait();
        remove_unfinished(&self.dir)?;
        let changes = read_version(&self.dir, version, &self.schema, &self.key_schema)?;
        self.rows_since_snapshot =
            changes.iter().filter(|(kind, _)| *kind != Kind::Snapshot).map(|(_, b)| b.num_rows()).sum();
        Ok(changes)
    }

    /// Deletes the files no version from `keep_from` on needs.
    pub(super) fn purge(&self, keep_from: u64) -> Result<()> {
        purge(&self.dir, keep_from)
    }
}

impl Drop for StateFiles {
    fn drop(&mut self) {
        self.wait();
    }
}

fn path(dir: &Path, version: u64, kind: Kind) -> PathBuf {
    dir.join(match kind {
        Kind::Delta => format!("{version}.delta"),
        Kind::Removed => format!("{version}.removed"),
        Kind::Snapshot => format!("{version}.snapshot"),
    })
}

fn write(dir: &Path, version: u64, kind: Kind, batch: &RecordBatch) -> Result<()> {
    let mut bytes = Vec::new();
    let mut writer = FileWriter::try_new(&mut bytes, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    write_atomically(&path(dir, version, kind), &bytes)
}

/// Rows per record batch of a snapshot file.
const SNAPSHOT_CHUNK: usize = 65_536;

/// Rebuilds version `version` from its files and writes it as one snapshot: each identity's
/// last row, in the order rows were last written.
fn write_snapshot(
    dir: &Path,
    version: u64,
    schema: &SchemaRef,
    key_schema: &SchemaRef,
    identity: &Identity,
) -> Result<()> {
    let changes = read_version(dir, version, schema, key_schema)?;
    let mut latest: HashMap<Box<[u8]>, (usize, usize)> = HashMap::new();
    let mut row_batches: Vec<&RecordBatch> = Vec::new();
    for (kind, batch) in &changes {
        let ids = identity.of(batch)?;
        if *kind == Kind::Removed {
            for id in ids {
                latest.remove(&id);
            }
            continue;
        }
        row_batches.push(batch);
        for (row, id) in ids.into_iter().enumerate() {
            latest.insert(id, (row_batches.len() - 1, row));
        }
    }
    let mut rows: Vec<(usize, usize)> = latest.into_values().collect();
    rows.sort_unstable();
    let mut bytes = Vec::new();
    let mut writer = FileWriter::try_new(&mut bytes, schema)?;
    for chunk in rows.chunks(SNAPSHOT_CHUNK) {
        let columns = (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> = row_batches.iter().map(|b| b.column(c).as_ref()).collect();
                Ok(interleave(&arrays, chunk)?)
            })
            .collect::<Result<Vec<_>>>()?;
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    writer.finish()?;
    drop(writer);
    crate::fault::point("snapshot-writing");
    write_atomically(&path(dir, version, Kind::Snapshot), &bytes)
}

/// Deletes what a write cut short left (`.<name>.tmp`), before a restore.
fn remove_unfinished(dir: &Path) -> Result<()> {
    remove_files(dir, |name| name.starts_with('.') && name.ends_with(".tmp"))
}

/// Deletes the files in `dir` whose names `doomed` picks; a missing `dir` has none.
fn remove_files(dir: &Path, doomed: impl Fn(&str) -> bool) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_str().is_some_and(&doomed) {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

fn read(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader =
        FileReader::try_new(file, None).map_err(|e| Error::checkpoint(path, format!("corrupt state file: {e}")))?;
    if reader.schema().fields() != schema.fields() {
        return Err(Error::checkpoint(
            path,
            format!(
                "state was written for a different aggregation ({}), not this query's ({schema}); use a new checkpoint",
                reader.schema()
            ),
        ));
    }
    reader.map(|b| b.map_err(|e| Error::checkpoint(path, format!("corrupt state file: {e}")))).collect()
}

/// The changes that rebuild `version`, in the order to apply them: the newest snapshot at or
/// before it, then each later version's delta and removals.
fn read_version(
    dir: &Path,
    version: u64,
    schema: &SchemaRef,
    key_schema: &SchemaRef,
) -> Result<Vec<(Kind, RecordBatch)>> {
    let mut start = 0;
    let mut out = Vec::new();
    for v in (1..=version).rev() {
        let snapshot = path(dir, v, Kind::Snapshot);
        if snapshot.exists() {
            out.extend(read(&snapshot, schema)?.into_iter().map(|b| (Kind::Snapshot, b)));
            start = v + 1;
            break;
        }
    }
    for v in start..=version {
        let delta = path(dir, v, Kind::Delta);
        if !delta.exists() {
            return Err(Error::checkpoint(delta, format!("missing: state version {version} cannot be rebuilt")));
        }
        out.extend(read(&delta, schema)?.into_iter().map(|b| (Kind::Delta, b)));
        let removed = path(dir, v, Kind::Removed);
        if removed.exists() {
            out.extend(read(&removed, key_schema)?.into_iter().map(|b| (Kind::Removed, b)));
        }
    }
    Ok(out)
}

/// Deletes the files no version from `keep_from` on needs: everything older than the newest
/// snapshot at or before `keep_from`.
fn purge(dir: &Path, keep_from: u64) -> Result<()> {
    let Some(base) = (1..=keep_from).rev().find(|&v| path(dir, v, Kind::Snapshot).exists()) else { return Ok(()) };
    remove_files(dir, |name| name.split('.').next().and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v < base))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(schema: &SchemaRef, keys: &[&str], values: &[i64]) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(keys.to_vec()))];
        if schema.fields().len() > 1 {
            columns.push(Arc::new(Int64Array::from(values.to_vec())));
        }
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    }

    #[test]
    fn snapshots_are_written_in_the_background_and_purge_keeps_what_versions_need() {
        let dir = tempfile::tempdir().unwrap();
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]));
        let key_schema = Arc::new(Schema::new(vec![schema.field(0).clone()]));
        let identity = Identity::columns(key_schema.fields()).unwrap();
        let mut files = StateFiles::new(dir.path().to_path_buf(), schema.clone(), key_schema.clone(), identity);
        for v in 0..=25u64 {
            // "a" changes every version, "b" is written once and removed at version 15.
            let keys: &[&str] = if v == 3 { &["a", "b"] } else { &["a"] };
            files.write_delta(v, &batch(&schema, keys, &[v as i64, 100][..keys.len()])).unwrap();
            if v == 15 {
                files.write_removed(v, &batch(&key_schema, &["b"], &[])).unwrap();
            }
            files.committed(v, 2);
            files.wait();
        }
        assert!(path(dir.path(), 10, Kind::Snapshot).exists() && path(dir.path(), 20, Kind::Snapshot).exists());
        let snapshot = read(&path(dir.path(), 20, Kind::Snapshot), &schema).unwrap();
        assert_eq!(snapshot[0], batch(&schema, &["a"], &[20]), "b was removed, a's last row kept");
        purge(dir.path(), 15).unwrap();
        assert!(!path(dir.path(), 9, Kind::Delta).exists());
        assert!(path(dir.path(), 10, Kind::Snapshot).exists(), "version 15 is rebuilt from snapshot 10");
        let changes = files.read(15).unwrap();
        assert_eq!(changes.len(), 7, "snapshot 10 + deltas 11..=15 + the removal of 15");
        assert_eq!(files.rows_since_snapshot, 6);
        files.committed(20, 7);
        assert!(files.job.is_none(), "6 rows written since the snapshot, 7 in state: not due");
    }
}
