//! State files: Arrow IPC, one file per version, written atomically.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::checkpoint::log::write_atomically;
use crate::error::{Error, Result};

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Delta,
    Snapshot,
}

fn path(dir: &Path, version: u64, kind: Kind) -> PathBuf {
    dir.join(match kind {
        Kind::Delta => format!("{version}.delta"),
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

/// The batches that rebuild `version`: the newest snapshot at or before it, then every delta
/// after that snapshot, in order.
pub(super) fn read_version(dir: &Path, version: u64, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let mut start = 0;
    let mut out = Vec::new();
    for v in (1..=version).rev() {
        let snapshot = path(dir, v, Kind::Snapshot);
        if snapshot.exists() {
            out.extend(read(&snapshot, schema)?);
            start = v + 1;
            break;
        }
    }
    for v in start..=version {
        let delta = path(dir, v, Kind::Delta);
        if !delta.exists() {
            return Err(Error::checkpoint(delta, format!("missing: state version {version} cannot be rebuilt")));
        }
        out.extend(read(&delta, schema)?);
    }
    Ok(out)
}
