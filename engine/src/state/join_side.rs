//! One side of a stream-stream join: the rows it keeps for the other side's future rows to
//! match, many per key, each with an eviction time and a "matched" flag (semantics appendix,
//! §8).
//!
//! ```text
//!   key ──KeyIndex──▶ key slot ──▶ [row slot, row slot, ...]
//!   row slot ──▶ its columns (StateRows), id, eviction time, matched
//!
//!   state/<op>/<left|right>/<N>.delta     rows added or whose matched flag changed, whole
//!   state/<op>/<left|right>/<N>.removed   ids of rows removed
//! ```
//!
//! A row's identity in the files is its id, a number the side gives each row it keeps, so
//! equal rows stay two rows. Rows are also indexed by eviction time: evicting costs what is
//! evicted, not what is kept.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef, UInt64Type};
use arrow::row::{RowConverter, SortField};

use super::files::{self, Kind, StateFiles};
use super::key_index::KeyIndex;
use super::rows::StateRows;
use crate::error::Result;

/// A row slot's eviction time when it has none.
const NO_TIME: i64 = i64::MIN;
/// A free row slot's key slot.
const FREE: u32 = u32::MAX;

/// The rows one side of a join keeps.
pub(crate) struct JoinSide {
    converter: RowConverter,
    num_keys: usize,
    /// Row id, key columns, the row's own columns, matched, eviction time: the file layout.
    file_schema: SchemaRef,
    keys: KeyIndex,
    rows_of_key: Vec<Vec<u32>>,
    rows: StateRows,
    key_of: Vec<u32>,
    ids: Vec<u64>,
    times: Vec<i64>,
    matched: Vec<bool>,
    by_time: BTreeSet<(i64, u32)>,
    free: Vec<u32>,
    len: usize,
    next_id: u64,
    /// Ids below this were written by a commit.
    committed_next_id: u64,
    /// Row slots added or changed since the last commit, and whether each is listed.
    changed: Vec<u32>,
    changed_mark: Vec<bool>,
    /// Ids of committed rows removed since the last commit.
    removed: Vec<u64>,
    files: StateFiles,
}

impl JoinSide {
    /// A side whose keys have `key_fields` and whose rows have `row_fields`, kept in `dir`.
    pub(crate) fn try_new(key_fields: &[FieldRef], row_fields: &[FieldRef], dir: PathBuf) -> Result<Self> {
        let converter = RowConverter::new(key_fields.iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        let id = Arc::new(Field::new("__row_id", DataType::UInt64, false));
        let mut fields = vec![id.clone()];
        fields.extend(key_fields.iter().enumerate().map(|(i, f)| {
            Arc::new(f.as_ref().clone().with_name(format!("__key_{i}")).with_nullable(true)) as FieldRef
        }));
        fields.extend(row_fields.iter().map(|f| Arc::new(f.as_ref().clone().with_nullable(true)) as FieldRef));
        fields.push(Arc::new(Field::new("__matched", DataType::Boolean, false)));
        fields.push(Arc::new(Field::new("__evict_at_micros", DataType::Int64, true)));
        let file_schema = Arc::new(Schema::new(fields));
        let identity = files::Identity::columns(std::slice::from_ref(&id))?;
        let id_schema = Arc::new(Schema::new(vec![id]));
        let files = StateFiles::new(dir, file_schema.clone(), id_schema, identity);
        Ok(JoinSide {
            converter,
            num_keys: key_fields.len(),
            file_schema,
            keys: KeyIndex::default(),
            rows_of_key: Vec::new(),
            rows: StateRows::new(row_fields.to_vec()),
            key_of: Vec::new(),
            ids: Vec::new(),
            times: Vec::new(),
            matched: Vec::new(),
            by_time: BTreeSet::new(),
            free: Vec::new(),
            len: 0,
            next_id: 0,
            committed_next_id: 0,
            changed: Vec::new(),
            changed_mark: Vec::new(),
            removed: Vec::new(),
            files,
        })
    }

    /// Each row's key in row format: nulls are values, so a null key matches a null key, as in
    /// Spark's join state (the planner drops null keys where Spark's optimizer would).
    pub(crate) fn keys(&self, columns: &[ArrayRef]) -> Result<arrow::row::Rows> {
        Ok(self.converter.convert_columns(columns)?)
    }

    /// The row slots kept under `key`.
    pub(crate) fn rows_of(&self, key: &[u8]) -> &[u32] {
        self.keys.get(key).map_or(&[], |k| self.rows_of_key[k as usize].as_slice())
    }

    /// The columns of the rows in `slots`, in that order.
    pub(crate) fn columns(&self, slots: &[u32]) -> Result<Vec<ArrayRef>> {
        self.rows.get(slots)
    }

    pub(crate) fn is_matched(&self, slot: u32) -> bool {
        self.matched[slot as usize]
    }

    /// Marks a kept row as matched (an outer join will not pad it with nulls).
    pub(crate) fn set_matched(&mut self, slot: u32) {
        if !std::mem::replace(&mut self.matched[slot as usize], true) {
            self.mark_changed(slot);
        }
    }

    fn mark_changed(&mut self, slot: u32) {
        if !std::mem::replace(&mut self.changed_mark[slot as usize], true) {
            self.changed.push(slot);
        }
    }

    /// Keeps rows: their row-format keys, columns, eviction times and matched flags; returns
    /// their slots.
    pub(crate) fn add(
        &mut self,
        keys: &[&[u8]],
        columns: Vec<ArrayRef>,
        times: &[Option<i64>],
        matched: &[bool],
    ) -> Result<Vec<u32>> {
        let mut slots = Vec::with_capacity(keys.len());
        for ((key, time), &matched) in keys.iter().zip(times).zip(matched) {
            let (key_slot, new) = self.keys.intern(key)?;
            if new {
                if self.rows_of_key.len() <= key_slot as usize {
                    self.rows_of_key.resize(key_slot as usize + 1, Vec::new());
                }
                self.rows_of_key[key_slot as usize].clear();
            }
            let slot = match self.free.pop() {
                Some(s) => s,
                None => {
                    self.key_of.push(FREE);
                    self.ids.push(0);
                    self.times.push(NO_TIME);
                    self.matched.push(false);
                    self.changed_mark.push(false);
                    (self.key_of.len() - 1) as u32
                }
            };
            let i = slot as usize;
            self.rows_of_key[key_slot as usize].push(slot);
            self.key_of[i] = key_slot;
            self.ids[i] = self.next_id;
            self.next_id += 1;
            self.times[i] = time.unwrap_or(NO_TIME);
            self.matched[i] = matched;
            if let Some(t) = time {
                self.by_time.insert((*t, slot));
            }
            self.mark_changed(slot);
            slots.push(slot);
        }
        self.len += slots.len();
        self.rows.put(&slots, columns)?;
        Ok(slots)
    }

    /// Removes a kept row.
    pub(crate) fn remove(&mut self, slot: u32) {
        let i = slot as usize;
        let key_slot = self.key_of[i];
        if key_slot == FREE {
            return;
        }
        let rows = &mut self.rows_of_key[key_slot as usize];
        rows.retain(|&s| s != slot);
        if rows.is_empty() {
            self.keys.remove(key_slot);
        }
        if self.times[i] != NO_TIME {
            self.by_time.remove(&(self.times[i], slot));
        }
        // A row added since the last commit was never written: nothing to remove on disk.
        self.changed_mark[i] = false;
        if self.ids[i] < self.committed_next_id {
            self.removed.push(self.ids[i]);
        }
        self.key_of[i] = FREE;
        self.rows.remove(slot);
        self.free.push(slot);
        self.len -= 1;
    }

    /// The kept rows whose eviction time is at or before `watermark_us`, oldest first.
    pub(crate) fn expired(&self, watermark_us: i64) -> Vec<u32> {
        self.by_time.range(..=(watermark_us, u32::MAX)).map(|&(_, s)| s).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.keys.memory_bytes()
            + self.rows.memory_bytes()
            + self.rows_of_key.capacity() * std::mem::size_of::<Vec<u32>>()
            + self.key_of.capacity() * (4 + 8 + 8 + 1 + 1)
            + self.by_time.len() * 24
    }

    /// Writes version `version`: the rows added or changed and the ids removed since the last
    /// commit.
    pub(crate) fn commit(&mut self, version: u64) -> Result<()> {
        let live: Vec<u32> = std::mem::take(&mut self.changed)
            .into_iter()
            .filter(|&s| std::mem::take(&mut self.changed_mark[s as usize]) && self.key_of[s as usize] != FREE)
            .collect();
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(UInt64Array::from_iter_values(live.iter().map(|&s| self.ids[s as usize])))];
        let parser = self.converter.parser();
        let keys = live.iter().map(|&s| parser.parse(self.keys.key(self.key_of[s as usize])));
        columns.extend(self.converter.convert_rows(keys)?);
        columns.extend(self.rows.get(&live)?);
        columns.push(Arc::new(BooleanArray::from_iter(live.iter().map(|&s| Some(self.matched[s as usize])))));
        let times = live.iter().map(|&s| Some(self.times[s as usize]).filter(|&t| t != NO_TIME));
        columns.push(Arc::new(Int64Array::from_iter(times)));
        self.files.write_delta(version, &RecordBatch::try_new(self.file_schema.clone(), columns)?)?;
        let removed = UInt64Array::from(std::mem::take(&mut self.removed));
        let id_schema = Arc::new(Schema::new(vec![self.file_schema.field(0).clone()]));
        self.files.write_removed(version, &RecordBatch::try_new(id_schema, vec![Arc::new(removed)])?)?;
        self.files.committed(version, self.len);
        self.committed_next_id = self.next_id;
        Ok(())
    }

    /// Deletes state files that versions from `keep_from` on no longer need.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        self.files.purge(keep_from)
    }

    /// Rebuilds the rows of `version` (the last committed batch), or empty.
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        let all = self.file_schema.fields();
        let key_fields: Vec<FieldRef> = all[1..1 + self.num_keys].to_vec();
        let row_fields: Vec<FieldRef> = all[1 + self.num_keys..all.len() - 2].to_vec();
        let dir = self.files.dir().to_path_buf();
        *self = JoinSide::try_new(&key_fields, &row_fields, dir)?;
        let Some(version) = version else { return Ok(()) };
        let mut by_id: HashMap<u64, u32> = HashMap::new();
        for (kind, batch) in self.files.read(version)? {
            let ids = batch.column(0).as_primitive::<UInt64Type>().clone();
            for id in ids.values() {
                if let Some(slot) = by_id.remove(id) {
                    self.remove(slot);
                }
            }
            if kind == Kind::Removed {
                continue;
            }
            let n = batch.num_columns();
            let keys = self.keys(&batch.columns()[1..1 + self.num_keys])?;
            let keys: Vec<&[u8]> = (0..batch.num_rows()).map(|r| keys.row(r).data()).collect();
            let matched: Vec<bool> = batch.column(n - 2).as_boolean().iter().map(|m| m.unwrap_or(false)).collect();
            let times: Vec<Option<i64>> = batch.column(n - 1).as_primitive::<Int64Type>().iter().collect();
            let columns = batch.columns()[1 + self.num_keys..n - 2].to_vec();
            let slots = self.add(&keys, columns, &times, &matched)?;
            for (slot, &id) in slots.into_iter().zip(ids.values()) {
                self.ids[slot as usize] = id;
                by_id.insert(id, slot);
                self.next_id = self.next_id.max(id + 1);
            }
        }
        self.changed.clear();
        self.changed_mark.iter_mut().for_each(|m| *m = false);
        self.removed.clear();
        self.committed_next_id = self.next_id;
        Ok(())
    }
}
