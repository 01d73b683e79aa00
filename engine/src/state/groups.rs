//! The groups of a streaming aggregation: each group's key and accumulator state, as data.
//!
//! A group is a slot: its key sits in a [`KeyIndex`], its state row (the columns DataFusion's
//! partial aggregation emits: `count`'s count, `avg`'s sum and count, ...) in [`StateRows`].
//! No accumulator lives between batches ([`Aggregates`]): merging a batch's partial aggregates
//! feeds the touched groups' stored rows and the batch's rows to DataFusion's grouped
//! accumulators and stores the new rows; evaluating groups does the same over the groups asked
//! for. So a batch costs what it touches, and a group costs its key and state bytes.
//!
//! Files are described in the [module docs](super).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::accumulate::Aggregates;
use super::key_index::KeyIndex;
use super::rows::StateRows;
use super::{EventTimeKey, GroupStore, files};
use crate::error::{Error, Result};

/// All groups of one aggregation operator.
pub(crate) struct AggregateState {
    /// Key columns first, then each aggregate's state columns: the layout of DataFusion's
    /// partial aggregate output, used for both merging and checkpoint files.
    partial_schema: SchemaRef,
    num_keys: usize,
    aggregates: Aggregates,
    converter: Option<RowConverter>,
    keys: KeyIndex,
    states: StateRows,
    /// Groups changed in the current batch, in first-change order.
    touched: Vec<u32>,
    touched_mark: Vec<bool>,
    /// Keys removed in the current batch.
    removed: Vec<Box<[u8]>>,
    event_time_key: Option<EventTimeKey>,
    /// Per slot, its key's event time (when the key has one).
    event_times: Vec<i64>,
    /// `(event time, slot)` of every group with an event time.
    by_time: BTreeSet<(i64, u32)>,
    files: files::StateFiles,
}

impl AggregateState {
    pub(crate) fn try_new(
        partial_schema: SchemaRef,
        num_keys: usize,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        event_time_key: Option<EventTimeKey>,
        dir: PathBuf,
    ) -> Result<Self> {
        let aggregates = Aggregates::try_new(aggregates)?;
        let expected = num_keys + aggregates.state_width();
        if partial_schema.fields().len() != expected {
            return Err(Error::Internal(format!(
                "partial aggregate has {} columns, expected {expected}",
                partial_schema.fields().len()
            )));
        }
        let converter = if num_keys == 0 {
            None
        } else {
            let sort_fields =
                partial_schema.fields()[..num_keys].iter().map(|f| SortField::new(f.data_type().clone())).collect();
            Some(RowConverter::new(sort_fields)?)
        };
        let states = StateRows::new(partial_schema.fields()[num_keys..].to_vec());
        let key_schema = Arc::new(Schema::new(partial_schema.fields()[..num_keys].to_vec()));
        let identity = files::Identity::columns(key_schema.fields())?;
        let files = files::StateFiles::new(dir, partial_schema.clone(), key_schema, identity);
        let mut state = AggregateState {
            partial_schema,
            num_keys,
            aggregates,
            converter,
            keys: KeyIndex::default(),
            states,
            touched: Vec::new(),
            touched_mark: Vec::new(),
            removed: Vec::new(),
            event_time_key,
            event_times: Vec::new(),
            by_time: BTreeSet::new(),
            files,
        };
        state.reset();
        Ok(state)
    }

    /// Empties the state. A global aggregate has its one group from the start: `count` is 0
    /// before any row.
    fn reset(&mut self) {
        self.keys.clear();
        self.states.clear();
        self.touched.clear();
        self.touched_mark.clear();
        self.removed.clear();
        self.event_times.clear();
        self.by_time.clear();
        if self.num_keys == 0 {
            self.slot_for(&[], None).expect("an empty key fits");
        }
    }

    fn slot_for(&mut self, key: &[u8], event_time: Option<i64>) -> Result<u32> {
        let (slot, new) = self.keys.intern(key)?;
        if new {
            let s = slot as usize;
            if self.touched_mark.len() <= s {
                self.touched_mark.resize(s + 1, false);
            }
            if let Some(t) = event_time {
                if self.event_times.len() <= s {
                    self.event_times.resize(s + 1, 0);
                }
                self.event_times[s] = t;
                self.by_time.insert((t, slot));
            }
        }
        Ok(slot)
    }

    /// Each row's key event time in microseconds, when the state has an event-time key.
    fn event_times_of(&self, partial: &RecordBatch) -> Result<Vec<Option<i64>>> {
        let column = match self.event_time_key {
            None => return Ok(vec![None; partial.num_rows()]),
            Some(EventTimeKey::WindowEnd(i)) => partial
                .column(i)
                .as_struct_opt()
                .and_then(|s| s.column_by_name("end"))
                .cloned()
                .ok_or_else(|| Error::Internal("the event-time window key has no end".into()))?,
            Some(EventTimeKey::Time(i)) => partial.column(i).clone(),
        };
        let micros = arrow::compute::cast(&column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        Ok(micros.as_primitive::<TimestampMicrosecondType>().iter().collect())
    }

    /// The slot of each row of `batch` (keys + states), new keys added; `None` for rows whose
    /// event time is at or before `late_until`.
    fn slots_of(&mut self, batch: &RecordBatch, late_until: Option<i64>) -> Result<Vec<Option<u32>>> {
        let times = self.event_times_of(batch)?;
        let late = |t: Option<i64>| matches!((t, late_until), (Some(t), Some(w)) if t <= w);
        match self.converter.take() {
            None => times.iter().map(|&t| (!late(t)).then(|| self.slot_for(&[], t)).transpose()).collect(),
            Some(converter) => {
                let rows = converter.convert_columns(&batch.columns()[..self.num_keys]);
                self.converter = Some(converter);
                let rows = rows?;
                times
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| (!late(t)).then(|| self.slot_for(rows.row(i).as_ref(), t)).transpose())
                    .collect()
            }
        }
    }

    /// Folds a batch of partial aggregates (key columns + state columns) into the state,
    /// except rows whose key event time is at or before `late_until` (microseconds); returns
    /// how many rows were dropped as late.
    pub(crate) fn merge(&mut self, partial: &RecordBatch, late_until: Option<i64>) -> Result<u64> {
        let slots = self.slots_of(partial, late_until)?;
        let dropped = slots.iter().filter(|s| s.is_none()).count() as u64;
        // The groups this batch touches, numbered 0.. for the accumulators, and the batch's rows.
        let mut local: HashMap<u32, u32> = HashMap::new();
        let mut groups: Vec<u32> = Vec::new();
        let (mut rows, mut row_groups) = (Vec::new(), Vec::new());
        for (row, slot) in slots.iter().enumerate() {
            let Some(slot) = *slot else { continue };
            let g = *local.entry(slot).or_insert_with(|| {
                groups.push(slot);
                groups.len() as u32 - 1
            });
            rows.push(row as u32);
            row_groups.push(g as usize);
        }
        let states = if dropped == 0 {
            partial.columns()[self.num_keys..].to_vec()
        } else {
            let take = UInt32Array::from(rows);
            partial.columns()[self.num_keys..]
                .iter()
                .map(|c| arrow::compute::take(c, &take, None))
                .collect::<std::result::Result<_, _>>()?
        };
        let mut accumulators = self.aggregates.holding(&self.states, &groups)?;
        self.aggregates.merge(&mut accumulators, &states, &row_groups, groups.len())?;
        self.states.put(&groups, Aggregates::states(accumulators)?)?;
        for slot in groups {
            if !self.touched_mark[slot as usize] {
                self.touched_mark[slot as usize] = true;
                self.touched.push(slot);
            }
        }
        Ok(dropped)
    }

    /// Groups whose event time is at or before `watermark` (microseconds), oldest first.
    pub(crate) fn expired(&self, watermark: i64) -> Vec<usize> {
        self.by_time.range(..=(watermark, u32::MAX)).map(|&(_, g)| g as usize).collect()
    }

    /// Removes `groups` from state (recorded in this version's removals).
    pub(crate) fn remove(&mut self, groups: &[usize]) {
        for &g in groups {
            let slot = g as u32;
            if !self.keys.is_live(slot) {
                continue;
            }
            if self.event_time_key.is_some() && g < self.event_times.len() {
                self.by_time.remove(&(self.event_times[g], slot));
            }
            self.states.remove(slot);
            self.touched_mark[g] = false;
            self.removed.push(self.keys.remove(slot));
        }
    }

    /// Key columns and final aggregate values of `groups`.
    pub(crate) fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let slots: Vec<u32> = groups.iter().map(|&g| g as u32).collect();
        let mut columns = self.key_columns(&slots)?;
        columns.extend(Aggregates::evaluate(self.aggregates.holding(&self.states, &slots)?)?);
        Ok(columns)
    }

    fn key_columns(&self, slots: &[u32]) -> Result<Vec<ArrayRef>> {
        let Some(converter) = &self.converter else { return Ok(Vec::new()) };
        let parser = converter.parser();
        Ok(converter.convert_rows(slots.iter().map(|&s| parser.parse(self.keys.key(s))))?)
    }

    fn key_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.partial_schema.fields()[..self.num_keys].to_vec()))
    }

    /// `slots` in the partial layout (keys + accumulator states), for checkpoint files. A
    /// group without a stored row (the global group before any row) has an empty state.
    fn state_rows(&self, slots: &[u32]) -> Result<RecordBatch> {
        let mut columns = self.key_columns(slots)?;
        if slots.iter().all(|&s| self.states.has(s)) {
            columns.extend(self.states.get(slots)?);
        } else {
            columns.extend(Aggregates::states(self.aggregates.holding(&self.states, slots)?)?);
        }
        Ok(RecordBatch::try_new(self.partial_schema.clone(), columns)?)
    }

    /// Writes version `version` (the changed groups and removed keys) and starts a new batch.
    pub(crate) fn commit(&mut self, version: u64) -> Result<()> {
        let touched: Vec<u32> =
            std::mem::take(&mut self.touched).into_iter().filter(|&g| self.touched_mark[g as usize]).collect();
        self.files.write_delta(version, &self.state_rows(&touched)?)?;
        let removed = std::mem::take(&mut self.removed);
        if !removed.is_empty() {
            let Some(converter) = &self.converter else {
                return Err(Error::Internal("a global aggregate removed its group".into()));
            };
            let parser = converter.parser();
            let columns = converter.convert_rows(removed.iter().map(|k| parser.parse(k)))?;
            self.files.write_removed(version, &RecordBatch::try_new(self.key_schema(), columns)?)?;
        }
        self.files.committed(version, self.len());
        for g in touched {
            self.touched_mark[g as usize] = false;
        }
        Ok(())
    }

    /// Rebuilds `version` from its files, or empties the state.
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.reset();
        let Some(version) = version else { return Ok(()) };
        let changes = self.files.read(version)?;
        for (kind, batch) in changes {
            let slots: Vec<u32> = self.slots_of(&batch, None)?.into_iter().flatten().collect();
            if kind == files::Kind::Removed {
                self.remove(&slots.iter().map(|&s| s as usize).collect::<Vec<_>>());
            } else {
                // A stored row is the group's whole state: it replaces what the group had.
                self.states.put(&slots, batch.columns()[self.num_keys..].to_vec())?;
            }
        }
        self.touched_mark.iter_mut().for_each(|m| *m = false);
        self.removed.clear();
        Ok(())
    }

    /// Groups in state.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Bytes held by keys, state rows and indexes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.keys.memory_bytes()
            + self.states.memory_bytes()
            + self.touched_mark.capacity()
            + self.event_times.capacity() * 8
            + self.by_time.len() * 2 * std::mem::size_of::<(i64, u32)>()
    }
}

impl GroupStore for AggregateState {
    fn merge(&mut self, partial: &RecordBatch, late_until: Option<i64>) -> Result<u64> {
        AggregateState::merge(self, partial, late_until)
    }
    fn touched(&self) -> Vec<usize> {
        self.touched.iter().filter(|&&g| self.touched_mark[g as usize]).map(|&g| g as usize).collect()
    }
    fn all_groups(&self) -> Vec<usize> {
        self.keys.slots().into_iter().map(|s| s as usize).collect()
    }
    fn expired(&self, watermark: i64) -> Vec<usize> {
        AggregateState::expired(self, watermark)
    }
    fn open_event_times(&self) -> (Option<i64>, usize) {
        (self.by_time.first().map(|&(t, _)| t), self.by_time.len())
    }
    fn remove(&mut self, groups: &[usize]) {
        AggregateState::remove(self, groups)
    }
    fn removed_count(&self) -> usize {
        self.removed.len()
    }
    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        AggregateState::evaluate(self, groups)
    }
    fn commit(&mut self, version: u64) -> Result<()> {
        AggregateState::commit(self, version)
    }
    fn purge(&self, keep_from: u64) -> Result<()> {
        self.files.purge(keep_from)
    }
    fn restore(&mut self, version: Option<u64>) -> Result<()> {
        AggregateState::restore(self, version)
    }
    fn len(&self) -> usize {
        AggregateState::len(self)
    }
    fn memory_bytes(&self) -> usize {
        AggregateState::memory_bytes(self)
    }
}
