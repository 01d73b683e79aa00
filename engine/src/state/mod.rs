//! The versioned state of stateful operators. Here: a streaming aggregation's, one set of
//! DataFusion accumulators per group, folded batch by batch, checkpointed as Arrow IPC files;
//! [`keys`]: deduplication's set of keys; [`sessions`]: session windows' sessions.
//!
//! ```text
//! state/<op>/<N>.delta      the groups batch N changed: key columns + accumulator state columns
//! state/<op>/<N>.removed    the keys batch N removed (evicted by the watermark), if any
//! state/<op>/<N>.snapshot   every group, when compaction is due (`files::Compaction`)
//! ```
//!
//! Version N is the state after batch N. Restoring version N reads the newest snapshot at or
//! before N, then replays each later version in order: its delta (a row *replaces* its group),
//! then its removals. A batch writes only what it changed, so checkpoint bytes scale with the
//! change, not with the state.
//!
//! When the aggregation is keyed on event time (a window of the watermark column, or the column
//! itself), each group's event time (a window's end) is indexed in order, so finding the groups
//! a watermark has passed costs what they are, not what the state is.

mod accumulator;
mod files;
pub(crate) mod keys;
pub(crate) mod sessions;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, new_empty_array};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use crate::error::{Error, Result};

struct Group {
    /// The group key in arrow's row format.
    key: Box<[u8]>,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// Bytes held by this group, for `memoryUsedBytes`.
    size: usize,
    /// The key's event time in microseconds (a window's end), when the key has one.
    event_time: Option<i64>,
}

/// Which key column holds event time, and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventTimeKey {
    /// A `window{start, end}` struct: its `end`.
    WindowEnd(usize),
    /// A timestamp column: its value.
    Time(usize),
}

/// All groups of one aggregation operator.
pub(crate) struct AggregateState {
    /// Key columns first, then each aggregate's state columns: the layout of DataFusion's
    /// partial aggregate output, used for both merging and checkpoint files.
    partial_schema: SchemaRef,
    num_keys: usize,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// How many state columns each aggregate has.
    state_widths: Vec<usize>,
    converter: Option<RowConverter>,
    index: HashMap<Box<[u8]>, usize>,
    /// Group slots; a removed group leaves a free slot for the next new one.
    groups: Vec<Option<Group>>,
    free: Vec<usize>,
    memory_bytes: usize,
    /// Groups changed in the current batch, in first-change order.
    touched: Vec<usize>,
    touched_mark: Vec<bool>,
    /// Keys removed in the current batch.
    removed: Vec<Box<[u8]>>,
    event_time_key: Option<EventTimeKey>,
    /// `(event time, slot)` of every group with an event time.
    by_time: BTreeSet<(i64, usize)>,
    compaction: files::Compaction,
    dir: PathBuf,
}

impl AggregateState {
    pub(crate) fn try_new(
        partial_schema: SchemaRef,
        num_keys: usize,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        event_time_key: Option<EventTimeKey>,
        dir: PathBuf,
    ) -> Result<Self> {
        let state_widths = aggregates
            .iter()
            .map(|a| a.state_fields().map(|f| f.len()))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let expected = num_keys + state_widths.iter().sum::<usize>();
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
        let mut state = AggregateState {
            partial_schema,
            num_keys,
            aggregates,
            state_widths,
            converter,
            index: HashMap::new(),
            groups: Vec::new(),
            free: Vec::new(),
            memory_bytes: 0,
            touched: Vec::new(),
            touched_mark: Vec::new(),
            removed: Vec::new(),
            event_time_key,
            by_time: BTreeSet::new(),
            compaction: files::Compaction::default(),
            dir,
        };
        if num_keys == 0 {
            // A global aggregate has its one group from the start: `count` is 0 before any row.
            state.group_for(&[], None)?;
        }
        Ok(state)
    }

    fn group(&self, g: usize) -> &Group {
        self.groups[g].as_ref().expect("a live group slot")
    }

    fn group_mut(&mut self, g: usize) -> &mut Group {
        self.groups[g].as_mut().expect("a live group slot")
    }

    fn group_for(&mut self, key: &[u8], event_time: Option<i64>) -> Result<usize> {
        if let Some(&i) = self.index.get(key) {
            return Ok(i);
        }
        let accumulators =
            self.aggregates.iter().map(accumulator::new_accumulator).collect::<datafusion::error::Result<Vec<_>>>()?;
        let group = Group { key: key.into(), accumulators, size: 0, event_time };
        let i = match self.free.pop() {
            Some(i) => {
                self.groups[i] = Some(group);
                i
            }
            None => {
                self.groups.push(Some(group));
                self.touched_mark.push(false);
                self.groups.len() - 1
            }
        };
        self.index.insert(key.into(), i);
        if let Some(t) = event_time {
            self.by_time.insert((t, i));
        }
        Ok(i)
    }

    /// Each row's key event time in microseconds, when the state has an event-time key.
    fn event_times(&self, partial: &RecordBatch) -> Result<Vec<Option<i64>>> {
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

    fn keys_of(&self, partial: &RecordBatch) -> Result<Vec<Box<[u8]>>> {
        match &self.converter {
            None => Ok(vec![Box::from([] as [u8; 0]); partial.num_rows()]),
            Some(c) => {
                let rows = c.convert_columns(&partial.columns()[..self.num_keys])?;
                Ok(rows.iter().map(|r| Box::from(r.as_ref())).collect())
            }
        }
    }

    /// Folds a batch of partial aggregates (key columns + state columns) into the state,
    /// except rows whose key event time is at or before `late_until` (microseconds); returns
    /// how many rows were dropped as late.
    pub(crate) fn merge(&mut self, partial: &RecordBatch, late_until: Option<i64>) -> Result<u64> {
        let keys = self.keys_of(partial)?;
        let times = self.event_times(partial)?;
        let mut dropped = 0;
        for (row, (key, time)) in keys.iter().zip(times).enumerate() {
            if let (Some(t), Some(w)) = (time, late_until)
                && t <= w
            {
                dropped += 1;
                continue;
            }
            let g = self.group_for(key, time)?;
            self.merge_row(g, partial, row)?;
        }
        Ok(dropped)
    }

    fn merge_row(&mut self, g: usize, partial: &RecordBatch, row: usize) -> Result<()> {
        let group = self.groups[g].as_mut().expect("a live group slot");
        let size = group.key.len()
            + merge_partial_row(&mut group.accumulators, &self.state_widths, partial, self.num_keys, row)?;
        self.memory_bytes = self.memory_bytes + size - group.size;
        group.size = size;
        if !self.touched_mark[g] {
            self.touched_mark[g] = true;
            self.touched.push(g);
        }
        Ok(())
    }

    /// Groups changed since the last [`AggregateState::end_batch`], in first-change order.
    pub(crate) fn touched(&self) -> &[usize] {
        &self.touched
    }

    /// Every live group.
    pub(crate) fn all_groups(&self) -> Vec<usize> {
        (0..self.groups.len()).filter(|&g| self.groups[g].is_some()).collect()
    }

    /// Groups whose event time is at or before `watermark` (microseconds), oldest first.
    pub(crate) fn expired(&self, watermark: i64) -> Vec<usize> {
        self.by_time.range(..=(watermark, usize::MAX)).map(|&(_, g)| g).collect()
    }

    /// The earliest event time still in state, and how many groups have one.
    pub(crate) fn open_event_times(&self) -> (Option<i64>, usize) {
        (self.by_time.first().map(|&(t, _)| t), self.by_time.len())
    }

    /// Removes `groups` from state (recorded in this version's removals).
    pub(crate) fn remove(&mut self, groups: &[usize]) {
        for &g in groups {
            let Some(group) = self.groups[g].take() else { continue };
            self.index.remove(&group.key);
            if let Some(t) = group.event_time {
                self.by_time.remove(&(t, g));
            }
            self.memory_bytes -= group.size;
            self.touched_mark[g] = false;
            self.free.push(g);
            self.removed.push(group.key);
        }
    }

    /// Keys removed since the last commit.
    pub(crate) fn removed_count(&self) -> usize {
        self.removed.len()
    }

    /// Key columns and final aggregate values of `groups`.
    pub(crate) fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let mut columns = self.key_columns(groups)?;
        for a in 0..self.aggregates.len() {
            let values = groups
                .iter()
                .map(|&g| self.group_mut(g).accumulators[a].evaluate())
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let data_type = self.aggregates[a].field().data_type().clone();
            columns.push(scalars_to_array(values, &data_type)?);
        }
        Ok(columns)
    }

    fn key_columns(&self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let keys: Vec<&[u8]> = groups.iter().map(|&g| &*self.group(g).key).collect();
        self.columns_of_keys(&keys)
    }

    fn columns_of_keys(&self, keys: &[&[u8]]) -> Result<Vec<ArrayRef>> {
        let Some(converter) = &self.converter else { return Ok(Vec::new()) };
        let parser = converter.parser();
        Ok(converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?)
    }

    fn key_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.partial_schema.fields()[..self.num_keys].to_vec()))
    }

    /// `groups` in the partial layout (keys + accumulator states), for checkpoint files.
    fn state_rows(&mut self, groups: &[usize]) -> Result<RecordBatch> {
        let mut columns = self.key_columns(groups)?;
        let states =
            groups.iter().map(|&g| states_of(&mut self.group_mut(g).accumulators)).collect::<Result<Vec<_>>>()?;
        columns.extend(state_columns(states, &self.partial_schema.fields()[self.num_keys..])?);
        Ok(RecordBatch::try_new(self.partial_schema.clone(), columns)?)
    }

    /// Writes version `version` (the changed groups, and every group when compaction is due)
    /// and starts a new batch.
    pub(crate) fn commit(&mut self, version: u64) -> Result<()> {
        let touched: Vec<usize> =
            std::mem::take(&mut self.touched).into_iter().filter(|&g| self.touched_mark[g]).collect();
        let delta = self.state_rows(&touched)?;
        files::write(&self.dir, version, files::Kind::Delta, &delta)?;
        let removed = std::mem::take(&mut self.removed);
        if !removed.is_empty() {
            let keys: Vec<&[u8]> = removed.iter().map(|k| &**k).collect();
            let batch = RecordBatch::try_new(self.key_schema(), self.columns_of_keys(&keys)?)?;
            files::write(&self.dir, version, files::Kind::Removed, &batch)?;
        }
        self.compaction.wrote(delta.num_rows() + removed.len());
        if self.compaction.snapshot_due(version, self.len()) {
            let (all, schema, dir) = (self.all_groups(), self.partial_schema.clone(), self.dir.clone());
            files::write_snapshot(&dir, version, &schema, &all, |groups| self.state_rows(groups))?;
        }
        for g in touched {
            self.touched_mark[g] = false;
        }
        Ok(())
    }

    /// Deletes state files that versions from `keep_from` on no longer need.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        files::purge(&self.dir, keep_from)
    }

    /// Forgets the changes of a batch that will be re-run (its state is restored instead).
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.index.clear();
        self.groups.clear();
        self.free.clear();
        self.touched.clear();
        self.touched_mark.clear();
        self.removed.clear();
        self.by_time.clear();
        self.memory_bytes = 0;
        if self.num_keys == 0 {
            self.group_for(&[], None)?;
        }
        if let Some(version) = version {
            let key_schema = self.key_schema();
            let changes = files::read_version(&self.dir, version, &self.partial_schema, &key_schema)?;
            self.compaction.restored(&changes);
            for (kind, batch) in changes {
                let keys = self.keys_of(&batch)?;
                if kind == files::Kind::Removed {
                    let groups: Vec<usize> = keys.iter().filter_map(|k| self.index.get(k).copied()).collect();
                    self.remove(&groups);
                    continue;
                }
                let times = self.event_times(&batch)?;
                for (row, (key, time)) in keys.iter().zip(times).enumerate() {
                    let g = self.group_for(key, time)?;
                    // A stored row is the group's whole state: replace, then merge it in.
                    let fresh = self
                        .aggregates
                        .iter()
                        .map(accumulator::new_accumulator)
                        .collect::<datafusion::error::Result<Vec<_>>>()?;
                    self.group_mut(g).accumulators = fresh;
                    self.merge_row(g, &batch, row)?;
                }
            }
        }
        for g in std::mem::take(&mut self.touched) {
            self.touched_mark[g] = false;
        }
        self.removed.clear();
        Ok(())
    }

    /// Groups in state.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Approximate bytes held, from the accumulators' own `size()`.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes + self.index.len() * (std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<usize>())
    }
}

/// What a streaming aggregation needs of its state, whether groups are fixed keys
/// ([`AggregateState`]) or sessions that merge ([`sessions::SessionState`]). A group is a slot
/// number, valid until the group is removed.
pub(crate) trait GroupStore: Send {
    /// Folds a batch of partial aggregates in, except rows whose event time is at or before
    /// `late_until` (microseconds); returns how many were dropped as late.
    fn merge(&mut self, partial: &RecordBatch, late_until: Option<i64>) -> Result<u64>;
    /// Groups changed since the last commit, in first-change order.
    fn touched(&self) -> Vec<usize>;
    /// Rows this batch wrote to state, for progress's `numRowsUpdated`: by default the groups
    /// it changed.
    fn updated_count(&self) -> usize {
        self.touched().len()
    }
    /// Every live group.
    fn all_groups(&self) -> Vec<usize>;
    /// Groups whose event time (a window's or session's end) is at or before `watermark`.
    fn expired(&self, watermark: i64) -> Vec<usize>;
    /// The earliest event time in state, and how many groups have one.
    fn open_event_times(&self) -> (Option<i64>, usize);
    /// Removes `groups` (recorded in this version's removals).
    fn remove(&mut self, groups: &[usize]);
    /// Groups the watermark removed since the last commit (`numRowsRemoved`).
    fn removed_count(&self) -> usize;
    /// Key columns and final aggregate values of `groups`.
    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>>;
    /// Writes version `version`.
    fn commit(&mut self, version: u64) -> Result<()>;
    /// Deletes files versions from `keep_from` on no longer need.
    fn purge(&self, keep_from: u64) -> Result<()>;
    /// Rebuilds `version`, or empty.
    fn restore(&mut self, version: Option<u64>) -> Result<()>;
    /// Groups in state.
    fn len(&self) -> usize;
    /// Approximate bytes held.
    fn memory_bytes(&self) -> usize;
}

impl GroupStore for AggregateState {
    fn merge(&mut self, partial: &RecordBatch, late_until: Option<i64>) -> Result<u64> {
        AggregateState::merge(self, partial, late_until)
    }
    fn touched(&self) -> Vec<usize> {
        AggregateState::touched(self).to_vec()
    }
    fn all_groups(&self) -> Vec<usize> {
        AggregateState::all_groups(self)
    }
    fn expired(&self, watermark: i64) -> Vec<usize> {
        AggregateState::expired(self, watermark)
    }
    fn open_event_times(&self) -> (Option<i64>, usize) {
        AggregateState::open_event_times(self)
    }
    fn remove(&mut self, groups: &[usize]) {
        AggregateState::remove(self, groups)
    }
    fn removed_count(&self) -> usize {
        AggregateState::removed_count(self)
    }
    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        AggregateState::evaluate(self, groups)
    }
    fn commit(&mut self, version: u64) -> Result<()> {
        AggregateState::commit(self, version)
    }
    fn purge(&self, keep_from: u64) -> Result<()> {
        AggregateState::purge(self, keep_from)
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

/// Merges the state columns (from column `first`) of row `row` of a partial aggregate batch
/// into `accumulators`; returns their size in bytes afterwards.
fn merge_partial_row(
    accumulators: &mut [Box<dyn Accumulator>],
    widths: &[usize],
    partial: &RecordBatch,
    first: usize,
    row: usize,
) -> Result<usize> {
    let (mut column, mut size) = (first, 0);
    for (acc, width) in accumulators.iter_mut().zip(widths) {
        let states: Vec<ArrayRef> = partial.columns()[column..column + width].iter().map(|c| c.slice(row, 1)).collect();
        acc.merge_batch(&states)?;
        size += acc.size();
        column += width;
    }
    Ok(size)
}

/// One group's accumulator states, in the partial layout's order.
fn states_of(accumulators: &mut [Box<dyn Accumulator>]) -> Result<Vec<ScalarValue>> {
    let mut states = Vec::new();
    for acc in accumulators {
        states.extend(acc.state()?);
    }
    Ok(states)
}

/// Groups' accumulator states (from [`states_of`]) as columns typed as `fields`, for
/// checkpoint files.
fn state_columns(per_group: Vec<Vec<ScalarValue>>, fields: &[arrow::datatypes::FieldRef]) -> Result<Vec<ArrayRef>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| scalars_to_array(per_group.iter().map(|s| s[i].clone()).collect(), field.data_type()))
        .collect()
}

fn scalars_to_array(values: Vec<ScalarValue>, data_type: &arrow::datatypes::DataType) -> Result<ArrayRef> {
    if values.is_empty() {
        return Ok(new_empty_array(data_type));
    }
    let array = ScalarValue::iter_to_array(values)?;
    if array.data_type() == data_type { Ok(array) } else { Ok(arrow::compute::cast(&array, data_type)?) }
}
