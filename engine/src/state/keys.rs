//! A versioned set of keys, each with an optional eviction time: the state of deduplication.
//!
//! ```text
//! state/<op>/<N>.delta      keys batch N added: the key columns (+ the eviction time column)
//! state/<op>/<N>.removed    keys batch N removed (the watermark passed their time)
//! state/<op>/<N>.snapshot   every key, when compaction is due (written in the background)
//! ```
//!
//! Keys are held in arrow's row format (nulls are ordinary values, so a null key is a key like
//! any other), in a flat [`KeyIndex`]; files hold them as ordinary columns, readable with any
//! Arrow tool. Keys with an eviction time are also indexed by it, so evicting costs what is
//! evicted, not what is kept.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};

use super::files;
use super::key_index::KeyIndex;
use crate::error::Result;

/// A slot's eviction time when it has none.
const NO_TIME: i64 = i64::MIN;

/// Keys and their eviction times (microseconds), versioned per batch.
pub(crate) struct KeyStore {
    converter: RowConverter,
    /// Key columns, then the eviction time column when there is one: the file layout.
    file_schema: SchemaRef,
    key_schema: SchemaRef,
    has_time_column: bool,
    index: KeyIndex,
    /// Per slot, the key's eviction time ([`NO_TIME`] when it has none).
    times: Vec<i64>,
    by_time: BTreeSet<(i64, u32)>,
    /// Slots added since the last commit (a slot may appear twice: added, evicted, reused).
    added: Vec<u32>,
    /// Per slot, whether its key was added since the last commit.
    added_mark: Vec<bool>,
    /// Keys of committed versions removed since the last commit.
    removed: Vec<Box<[u8]>>,
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
            index: KeyIndex::default(),
            times: Vec::new(),
            by_time: BTreeSet::new(),
            added: Vec::new(),
            added_mark: Vec::new(),
            removed: Vec::new(),
        })
    }

    /// Each row of `columns` (the key columns) in row format.
    pub(crate) fn keys(&self, columns: &[ArrayRef]) -> Result<Vec<Box<[u8]>>> {
        let rows = self.converter.convert_columns(columns)?;
        Ok(rows.iter().map(|r| Box::from(r.as_ref())).collect())
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.index.get(key).is_some()
    }

    /// Adds `key`, to be evicted once a watermark reaches `time` (never when `None`).
    pub(crate) fn insert(&mut self, key: Box<[u8]>, time: Option<i64>) -> Result<()> {
        let (slot, _) = self.index.intern(&key)?;
        let s = slot as usize;
        if self.times.len() <= s {
            self.times.resize(s + 1, NO_TIME);
            self.added_mark.resize(s + 1, false);
        }
        if self.times[s] != NO_TIME {
            self.by_time.remove(&(self.times[s], slot));
        }
        self.times[s] = time.unwrap_or(NO_TIME);
        if let Some(t) = time {
            self.by_time.insert((t, slot));
        }
        if !self.added_mark[s] {
            self.added_mark[s] = true;
            self.added.push(slot);
        }
        Ok(())
    }

    /// Removes every key whose time is at or before `watermark_us`; returns how many.
    pub(crate) fn evict(&mut self, watermark_us: i64) -> usize {
        let mut n = 0;
        while let Some(&(t, slot)) = self.by_time.first()
            && t <= watermark_us
        {
            self.by_time.pop_first();
            self.times[slot as usize] = NO_TIME;
            let key = self.index.remove(slot);
            n += 1;
            // A key added and evicted before a commit was never in a version: no removal file.
            if !std::mem::take(&mut self.added_mark[slot as usize]) {
                self.removed.push(key);
            }
        }
        n
    }

    /// Keys in state.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes held: the key index, eviction times, and the time index.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.index.memory_bytes()
            + self.times.capacity() * 8
            + self.added_mark.capacity()
            + self.by_time.len() * 2 * std::mem::size_of::<(i64, u32)>()
    }

    /// `keys` as rows of the key columns, with their eviction times when `times` are given.
    fn rows(&self, keys: &[&[u8]], times: Option<Vec<Option<i64>>>) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let mut columns = self.converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?;
        let schema = match times {
            Some(times) if self.has_time_column => {
                columns.push(Arc::new(Int64Array::from(times)));
                &self.file_schema
            }
            Some(_) => &self.file_schema,
            None => &self.key_schema,
        };
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    /// Writes version `version`: the keys added and removed since the last commit.
    pub(crate) fn commit(&mut self, version: u64) -> Result<()> {
        let mut present = Vec::new();
        for slot in std::mem::take(&mut self.added) {
            // Still here, and listed once (a reused slot is listed again).
            if std::mem::take(&mut self.added_mark[slot as usize]) && self.index.is_live(slot) {
                present.push(slot);
            }
        }
        let keys: Vec<&[u8]> = present.iter().map(|&s| self.index.key(s)).collect();
        let times = present.iter().map(|&s| Some(self.times[s as usize]).filter(|&t| t != NO_TIME)).collect();
        self.files.write_delta(version, &self.rows(&keys, Some(times))?)?;
        let removed = std::mem::take(&mut self.removed);
        let removed: Vec<&[u8]> = removed.iter().map(|k| &**k).collect();
        self.files.write_removed(version, &self.rows(&removed, None)?)?;
        self.files.committed(version, self.len());
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
        self.index.clear();
        self.times.clear();
        self.by_time.clear();
        self.added.clear();
        self.added_mark.clear();
        self.removed.clear();
        let Some(version) = version else { return Ok(()) };
        let num_keys = self.key_schema.fields().len();
        for (kind, batch) in self.files.read(version)? {
            let keys = self.keys(&batch.columns()[..num_keys])?;
            if kind == files::Kind::Removed {
                for key in keys {
                    if let Some(slot) = self.index.get(&key) {
                        if self.times[slot as usize] != NO_TIME {
                            self.by_time.remove(&(self.times[slot as usize], slot));
                        }
                        self.times[slot as usize] = NO_TIME;
                        self.index.remove(slot);
                    }
                }
                continue;
            }
            let times = if self.has_time_column {
                batch.column(num_keys).as_primitive::<Int64Type>().iter().collect()
            } else {
                time_of(&batch)?
            };
            for (key, time) in keys.into_iter().zip(times) {
                self.insert(key, time)?;
            }
        }
        self.added.clear();
        self.added_mark.iter_mut().for_each(|m| *m = false);
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
            s.insert(k.clone(), t).unwrap();
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
