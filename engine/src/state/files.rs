//! State files: Arrow IPC, one file per version, written atomically.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::checkpoint::log::write_atomically;
use crate::error::{Error, Result};

/// Snapshots are written on versions that are a multiple of this (Spark's
/// `minDeltasForSnapshot`), when [`Compaction`] says one is due.
pub(super) const SNAPSHOT_EVERY: u64 = 10;

/// When a version also writes a snapshot: on every [`SNAPSHOT_EVERY`]-th version, once the rows
/// written since the last snapshot (deltas and removals) are at least as many as the state
/// holds. Over time, snapshots then cost no more than the deltas did, so the work per batch
/// stays proportional to what batches change (a 1M-group state with 1,000 changes a batch
/// snapshots every 1,000 batches, not every 10), and a restore replays at most about twice
/// the state.
#[derive(Debug, Default)]
pub(super) struct Compaction {
    rows_since_snapshot: usize,
}

impl Compaction {
    /// Counts the rows a version's delta and removal files hold.
    pub(super) fn wrote(&mut self, rows: usize) {
        self.rows_since_snapshot += rows;
    }

    /// Whether `version`, with `state_rows` in state, writes a snapshot.
    pub(super) fn snapshot_due(&mut self, version: u64, state_rows: usize) -> bool {
        let due = version > 0 && version.is_multiple_of(SNAPSHOT_EVERY) && self.rows_since_snapshot >= state_rows;
        if due {
            self.rows_since_snapshot = 0;
        }
        due
    }

    /// Resumes counting from what a restore replayed after its snapshot.
    pub(super) fn restored(&mut self, replayed: &[(Kind, RecordBatch)]) {
        self.rows_since_snapshot =
            replayed.iter().filter(|(kind, _)| *kind != Kind::Snapshot).map(|(_, b)| b.num_rows()).sum();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Groups a version added or changed, whole.
    Delta,
    /// Keys a version removed.
    Removed,
    /// Every group (compaction: a restore starts from the newest one).
    Snapshot,
}

fn path(dir: &Path, version: u64, kind: Kind) -> PathBuf {
    dir.join(match kind {
        Kind::Delta => format!("{version}.delta"),
        Kind::Removed => format!("{version}.removed"),
        Kind::Snapshot => format!("{version}.snapshot"),
    })
}

pub(super) fn write(dir: &Path, version: u64, kind: Kind, batch: &RecordBatch) -> Result<()> {
    let mut bytes = Vec::new();
    let mut writer = FileWriter::try_new(&mut bytes, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    write_atomically(&path(dir, version, kind), &bytes)
}

/// Rows per record batch of a snapshot file.
const SNAPSHOT_CHUNK: usize = 65_536;

/// Writes version `version`'s snapshot of `items`, turned into rows by `rows` a chunk at a
/// time, so that a large state is never converted all at once.
pub(super) fn write_snapshot<T>(
    dir: &Path,
    version: u64,
    schema: &SchemaRef,
    items: &[T],
    mut rows: impl FnMut(&[T]) -> Result<RecordBatch>,
) -> Result<()> {
    let mut bytes = Vec::new();
    let mut writer = FileWriter::try_new(&mut bytes, schema)?;
    for chunk in items.chunks(SNAPSHOT_CHUNK) {
        writer.write(&rows(chunk)?)?;
    }
    writer.finish()?;
    drop(writer);
    write_atomically(&path(dir, version, Kind::Snapshot), &bytes)
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
pub(super) fn read_version(
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
pub(super) fn purge(dir: &Path, keep_from: u64) -> Result<()> {
    let Some(base) = (1..=keep_from).rev().find(|&v| path(dir, v, Kind::Snapshot).exists()) else { return Ok(()) };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let version = name.to_str().and_then(|n| n.split('.').next()).and_then(|v| v.parse::<u64>().ok());
        if version.is_some_and(|v| v < base) {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn purge_keeps_what_retained_versions_need() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        for v in 0..=25 {
            write(dir.path(), v, Kind::Delta, &batch).unwrap();
        }
        for v in [10, 20] {
            write(dir.path(), v, Kind::Snapshot, &batch).unwrap();
        }
        purge(dir.path(), 15).unwrap();
        let mut compaction = Compaction::default();
        compaction.restored(&read_version(dir.path(), 15, &schema, &schema).unwrap());
        assert!(!compaction.snapshot_due(20, 6), "5 delta rows since snapshot 10, 6 in state");
        compaction.wrote(1);
        assert!(!compaction.snapshot_due(19, 6), "not a multiple of SNAPSHOT_EVERY");
        assert!(compaction.snapshot_due(20, 6));
        assert!(!compaction.snapshot_due(30, 6), "counting starts again");
        assert!(!path(dir.path(), 9, Kind::Delta).exists());
        assert!(path(dir.path(), 10, Kind::Snapshot).exists(), "version 15 is rebuilt from snapshot 10");
        assert_eq!(read_version(dir.path(), 15, &schema, &schema).unwrap().len(), 6, "snapshot 10 + deltas 11..=15");
    }
}
