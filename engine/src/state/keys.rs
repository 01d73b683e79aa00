//! A versioned set of keys, each with an optional eviction time: the state of deduplication.
//!
//! ```text
//! state/<op>/<N>.delta      keys batch N added: the key columns (+ the eviction time column)
//! state/<op>/<N>.removed    keys batch N removed (the watermark passed their time)
//! state/<op>/<N>.snapshot   every key, when compaction is due (`files::Compaction`)
//! ```
//!
//! Keys are held in arrow's row format (nulls are ordinary values, so a null key is a key like
//! any other); files hold them as ordinary columns, readable with any Arrow tool. Keys with an
//! eviction time are also indexed by it, so evicting costs what is evicted, not what is kept.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};

use super::files;
use crate::error::Result;

/// Keys and their eviction times (microseconds), versioned per batch.
pub(crate) struct KeyStore {
    converter: RowConverter,
    /// Key columns, then the eviction time column when there is one: the file layout.
    file_schema: SchemaRef,
    key_schema: SchemaRef,
    has_time_column: bool,
    entries: HashMap<Box<[u8]>, Option<i64>>,
    by_time: BTreeSet<(i64, Box<[u8]>)>,
    /// Keys added and removed since the last commit, in order.
    added: Vec<Box<[u8]>>,
    removed: Vec<Box<[u8]>>,
    key_bytes: usize,
    files: files::StateFiles,
}

impl KeyStore {
    /// A store of keys with `key_fields`; `time_column` names the eviction time column in the
    /// checkpoint files (e.g. Spark's `expiresAtMicros`), when keys have one.
    pub(crate) fn try_new(key_fields: Vec<FieldRef>, time_column: Option<&str>, dir: PathBuf) -> Result<Self> {
        let converter = RowConverter::new(key_fields.iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        let key_schema = Arc::new(Schema::new(key_fields.clone()));
        let identity = files::Identity::columns(&key_fields)?;
        let mut file_fields = key_fields;
        if let Some(name) = time_column {
            file_fields.push(Arc::new(Field::new(name, DataType::Int64, true)));
        }
        let file_schema = Arc::new(Schema::new(file_fields));
        Ok(KeyStore {
            converter,
            files: files::StateFiles::new(dir, file_schema.clone(), key_schema.clone(), identity),
            file_schema,
            key_schema,
            has_time_column: time_column.is_some(),
            entries: HashMap::new(),
            by_time: BTreeSet::new(),
            added: Vec::new(),
            removed: Vec::new(),
            key_bytes: 0,
        })
    }

    /// Each row of `columns` (the key columns) in row format.
    pub(crate) fn keys(&self, columns: &[ArrayRef]) -> Result<Vec<Box<[u8]>>> {
        let rows = self.converter.convert_columns(columns)?;
        Ok(rows.iter().map(|r| Box::from(r.as_ref())).collect())
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.entries.contains_key(key)
    }

    /// Adds `key`, to be evicted once a watermark reaches `time` (never when `None`).
    pub(crate) fn insert(&mut self, key: Box<[u8]>, time: Option<i64>) {
        if let Some(t) = time {
            self.by_time.insert((t, key.clone()));
        }
        self.key_bytes += key.len();
        self.added.push(key.clone());
        self.entries.insert(key, time);
    }

    /// Removes every key whose time is at or before `watermark_us`; returns how many.
    pub(crate) fn evict(&mut self, watermark_us: i64) -> usize {
        let mut n = 0;
        while let Some((t, _)) = self.by_time.first()
            && *t <= watermark_us
        {
            let (_, key) = self.by_time.pop_first().expect("checked above");
            self.entries.remove(&key);
            self.key_bytes -= key.len();
            self.removed.push(key);
            n += 1;
        }
        n
    }

    /// Keys in state.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Approximate bytes held: keys (twice when indexed by time) and table overhead.
    pub(crate) fn memory_bytes(&self) -> usize {
        let slot = std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<Option<i64>>();
        // By length, not capacity: a hash table's capacity after removals depends on its random
        // hash seed, and progress must be the same on every run.
        self.key_bytes + self.entries.len() * slot + self.by_time.len() * (slot + 16)
    }

    fn rows(&self, keys: &[Box<[u8]>], with_time: bool) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let mut columns = self.converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?;
        if with_time && self.has_time_column {
            let times: Int64Array = keys.iter().map(|k| self.entries.get(k).copied().flatten()).collect();
            columns.push(Arc::new(times));
        }
        let schema = if with_time { &self.file_schema } else { &self.key_schema };
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    /// Writes version `version`: the keys added and removed since the last commit, and every
    /// key when compaction is due.
    pub(crate) fn commit(&mut self, version: u64) -> Result<()> {
        // A key added and evicted in the same batch was never in a committed version: it goes
        // in neither file.
        let (present, gone): (Vec<_>, std::collections::HashSet<_>) = {
            let (p, g): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.added).into_iter().partition(|k| self.entries.contains_key(k));
            (p, g.into_iter().collect())
        };
        let delta = self.rows(&present, true)?;
        self.files.write_delta(version, &delta)?;
        let removed: Vec<_> = std::mem::take(&mut self.removed).into_iter().filter(|k| !gone.contains(k)).collect();
        let removed = self.rows(&removed, false)?;
        self.files.write_removed(version, &removed)?;
        self.files.committed(version, self.entries.len());
        Ok(())
    }

    /// Deletes state files that versions from `keep_from` on no longer need.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        self.files.purge(keep_from)
    }

    /// Rebuilds the keys of `version` (the last committed batch), or empty. `time_of` gives a
    /// key's eviction time from a stored row when the files have no time column.
    pub(crate) fn restore(
        &mut self,
        version: Option<u64>,
        time_of: &dyn Fn(&RecordBatch) -> Result<Vec<Option<i64>>>,
    ) -> Result<()> {
        self.entries.clear();
        self.by_time.clear();
        self.key_bytes = 0;
        let Some(version) = version else {
            self.added.clear();
            return Ok(());
        };
        let num_keys = self.key_schema.fields().len();
        let changes = self.files.read(version)?;
        for (kind, batch) in changes {
            let keys = self.keys(&batch.columns()[..num_keys])?;
            if kind == files::Kind::Removed {
                for key in keys {
                    if let Some(Some(t)) = self.entries.remove(&key) {
                        self.by_time.remove(&(t, key.clone()));
                    }
                    self.key_bytes = self.key_bytes.saturating_sub(key.len());
                }
                continue;
            }
            let times = if self.has_time_column {
                batch.column(num_keys).as_primitive::<Int64Type>().iter().collect()
            } else {
                time_of(&batch)?
            };
            for (key, time) in keys.into_iter().zip(times) {
                self.insert(key, time);
            }
        }
        self.added.clear();
        self.removed.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    fn store(dir: &std::path::Path) -> KeyStore {
        let field = Arc::new(Field::new("id", DataType::Utf8, true));
        KeyStore::try_new(vec![field], Some("expiresAtMicros"), dir.to_path_buf()).unwrap()
    }

    #[test]
    fn evicts_by_time_and_restores_each_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let ids: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("c")]));
        let keys = s.keys(&[ids]).unwrap();
        for (k, t) in keys.iter().zip([Some(10), None, Some(30)]) {
            s.insert(k.clone(), t);
        }
        s.commit(0).unwrap();
        assert_eq!(s.evict(10), 1, "at the watermark counts as passed");
        assert!(!s.contains(&keys[0]) && s.contains(&keys[1]), "a null key is a key; no time, no eviction");
        s.commit(1).unwrap();

        let mut again = store(dir.path());
        let no_time = |_: &RecordBatch| -> Result<Vec<Option<i64>>> { unreachable!() };
        again.restore(Some(0), &no_time).unwrap();
        assert_eq!(again.len(), 3);
        again.restore(Some(1), &no_time).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again.evict(29), 0);
        assert_eq!(again.evict(30), 1);
    }
}
