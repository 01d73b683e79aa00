//! The state of a session-window aggregation: per key, its open sessions in start order, each
//! with DataFusion accumulators.
//!
//! Each batch brings partial aggregates grouped by key and by each row's *own* session
//! `[t, t + gap)`. Merging one in: every stored session of its key that overlaps or touches it
//! (`start <= other.end && other.start <= end`) joins it — so a late row can bridge two stored
//! sessions — and the merged session takes the union of their bounds and the merge of their
//! accumulators. Files are those of [`super::AggregateState`] (`N.delta`, `N.removed`,
//! `N.snapshot`), the key columns holding the session struct: a session is identified by its
//! key and start, and a merge that moves a start removes the old one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Fields, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::{GroupStore, files, merge_partial_row, scalars_to_array, state_columns, states_of};
use crate::error::{Error, Result};
use crate::functions::session::session_struct;

struct Session {
    /// The other grouping keys, in arrow's row format.
    key: Box<[u8]>,
    start: i64,
    end: i64,
    accumulators: Vec<Box<dyn Accumulator>>,
    size: usize,
}

/// Every open session of one session-window aggregation.
pub(crate) struct SessionState {
    /// Key columns (the session struct among them) then accumulator states.
    partial_schema: SchemaRef,
    num_keys: usize,
    /// Which key column is the session.
    session_at: usize,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    state_widths: Vec<usize>,
    /// Converts the other key columns.
    converter: RowConverter,
    slots: Vec<Option<Session>>,
    free: Vec<usize>,
    by_key: HashMap<Box<[u8]>, BTreeMap<i64, usize>>,
    by_end: BTreeSet<(i64, usize)>,
    touched: Vec<usize>,
    touched_mark: Vec<bool>,
    /// `(key, start)` of sessions gone since the last commit (merged away or evicted).
    removed: Vec<(Box<[u8]>, i64)>,
    /// Keys this batch brought rows for: Spark writes back all of a key's sessions.
    touched_keys: HashSet<Box<[u8]>>,
    /// Sessions the watermark removed since the last commit.
    evicted: usize,
    memory_bytes: usize,
    files: files::StateFiles,
}

impl SessionState {
    pub(crate) fn try_new(
        partial_schema: SchemaRef,
        num_keys: usize,
        session_at: usize,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        dir: PathBuf,
    ) -> Result<Self> {
        let state_widths = aggregates
            .iter()
            .map(|a| a.state_fields().map(|f| f.len()))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let others = (0..num_keys).filter(|&i| i != session_at);
        let converter =
            RowConverter::new(others.map(|i| SortField::new(partial_schema.field(i).data_type().clone())).collect())?;
        let key_schema = Arc::new(Schema::new(partial_schema.fields()[..num_keys].to_vec()));
        let identity = files::Identity::with_session_start(key_schema.fields(), session_at)?;
        let files = files::StateFiles::new(dir, partial_schema.clone(), key_schema, identity);
        Ok(SessionState {
            partial_schema,
            num_keys,
            session_at,
            aggregates,
            state_widths,
            converter,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            by_end: BTreeSet::new(),
            touched: Vec::new(),
            touched_mark: Vec::new(),
            removed: Vec::new(),
            touched_keys: HashSet::new(),
            evicted: 0,
            memory_bytes: 0,
            files,
        })
    }

    fn session(&self, slot: usize) -> &Session {
        self.slots[slot].as_ref().expect("a live session slot")
    }

    fn other_keys(&self, batch: &RecordBatch) -> Result<Vec<Box<[u8]>>> {
        let columns: Vec<ArrayRef> =
            (0..self.num_keys).filter(|&i| i != self.session_at).map(|i| batch.column(i).clone()).collect();
        if columns.is_empty() {
            return Ok(vec![Box::from([] as [u8; 0]); batch.num_rows()]);
        }
        let rows = self.converter.convert_columns(&columns)?;
        Ok(rows.iter().map(|r| Box::from(r.as_ref())).collect())
    }

    /// Each row's session bounds, in microseconds.
    fn bounds(&self, batch: &RecordBatch) -> Result<Vec<(i64, i64)>> {
        let session = batch.column(self.session_at).as_struct();
        let micros = |name: &str| -> Result<Vec<Option<i64>>> {
            let c = session.column_by_name(name).ok_or_else(|| Error::Internal(format!("session without {name}")))?;
            let c = arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            Ok(c.as_primitive::<TimestampMicrosecondType>().iter().collect())
        };
        let (starts, ends) = (micros("start")?, micros("end")?);
        starts
            .into_iter()
            .zip(ends)
            .map(|(s, e)| match (s, e) {
                (Some(s), Some(e)) => Ok((s, e)),
                _ => Err(Error::Internal("a null session reached the session state".into())),
            })
            .collect()
    }

    fn insert(&mut self, key: Box<[u8]>, start: i64, end: i64, accumulators: Vec<Box<dyn Accumulator>>) -> usize {
        let session = Session { key: key.clone(), start, end, accumulators, size: 0 };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(session);
                i
            }
            None => {
                self.slots.push(Some(session));
                self.touched_mark.push(false);
                self.slots.len() - 1
            }
        };
        self.by_key.entry(key).or_default().insert(start, slot);
        self.by_end.insert((end, slot));
        slot
    }

    /// Takes `slot` out of state, recording its `(key, start)` as removed.
    fn take(&mut self, slot: usize) -> Session {
        let session = self.slots[slot].take().expect("a live session slot");
        if let Some(starts) = self.by_key.get_mut(&session.key) {
            starts.remove(&session.start);
            if starts.is_empty() {
                self.by_key.remove(&session.key);
            }
        }
        self.by_end.remove(&(session.end, slot));
        self.memory_bytes -= session.size;
        self.touched_mark[slot] = false;
        self.free.push(slot);
        self.removed.push((session.key.clone(), session.start));
        session
    }

    fn fresh_accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        Ok(self.aggregates.iter().map(super::accumulator::new_accumulator).collect::<datafusion::error::Result<_>>()?)
    }

    /// Merges the partial row `row` of `batch` (its states) into `slot`'s accumulators.
    fn merge_row(&mut self, slot: usize, batch: &RecordBatch, row: usize) -> Result<()> {
        let session = self.slots[slot].as_mut().expect("a live session slot");
        let size = session.key.len()
            + merge_partial_row(&mut session.accumulators, &self.state_widths, batch, self.num_keys, row)?;
        self.memory_bytes = self.memory_bytes + size - session.size;
        session.size = size;
        self.touch(slot);
        Ok(())
    }

    fn touch(&mut self, slot: usize) {
        if !self.touched_mark[slot] {
            self.touched_mark[slot] = true;
            self.touched.push(slot);
        }
    }

    /// Merges the row's own session `[start, end)` of `key` with every stored session it
    /// overlaps or touches; returns the slot of the result.
    fn merge_session(&mut self, key: &[u8], start: i64, end: i64) -> Result<usize> {
        let overlapping: Vec<usize> = match self.by_key.get(key) {
            None => Vec::new(),
            Some(starts) => starts
                .range(..=end)
                .rev()
                .map(|(_, &slot)| slot)
                .take_while(|&slot| self.slots[slot].as_ref().is_some_and(|s| s.end >= start))
                .collect(),
        };
        let Some(&first) = overlapping.last() else {
            let accumulators = self.fresh_accumulators()?;
            return Ok(self.insert(key.into(), start, end, accumulators));
        };
        // The earliest overlapping session absorbs the others (their states merge into it).
        let mut merged = self.take(first);
        for &slot in overlapping.iter().rev().skip(1) {
            let other = self.take(slot);
            merged.end = merged.end.max(other.end);
            for (into, mut from) in merged.accumulators.iter_mut().zip(other.accumulators) {
                let states: Vec<ArrayRef> =
                    from.state()?.iter().map(ScalarValue::to_array).collect::<datafusion::error::Result<_>>()?;
                into.merge_batch(&states)?;
            }
        }
        let (new_start, new_end) = (merged.start.min(start), merged.end.max(end));
        let slot = self.insert(merged.key, new_start, new_end, merged.accumulators);
        self.touch(slot);
        Ok(slot)
    }

    fn state_rows(&mut self, slots: &[usize]) -> Result<RecordBatch> {
        let mut columns = self.key_columns(slots)?;
        let states = slots
            .iter()
            .map(|&s| states_of(&mut self.slots[s].as_mut().expect("a live session slot").accumulators))
            .collect::<Result<Vec<_>>>()?;
        columns.extend(state_columns(states, &self.partial_schema.fields()[self.num_keys..])?);
        Ok(RecordBatch::try_new(self.partial_schema.clone(), columns)?)
    }

    /// The key columns of sessions given as `(key, start, end)`.
    fn columns_of(&self, sessions: &[(&[u8], i64, i64)]) -> Result<Vec<ArrayRef>> {
        let parser = self.converter.parser();
        let mut others = if self.num_keys > 1 {
            self.converter.convert_rows(sessions.iter().map(|(k, _, _)| parser.parse(k)))?
        } else {
            Vec::new()
        }
        .into_iter();
        let DataType::Struct(fields) = self.partial_schema.field(self.session_at).data_type().clone() else {
            return Err(Error::Internal("the session key is not a struct".into()));
        };
        let mut columns = Vec::with_capacity(self.num_keys);
        for i in 0..self.num_keys {
            if i == self.session_at {
                columns.push(self.session_column(fields.clone(), sessions)?);
            } else {
                columns.push(others.next().ok_or_else(|| Error::Internal("missing key column".into()))?);
            }
        }
        Ok(columns)
    }

    fn session_column(&self, fields: Fields, sessions: &[(&[u8], i64, i64)]) -> Result<ArrayRef> {
        let starts = sessions.iter().map(|s| s.1).collect();
        let ends = sessions.iter().map(|s| s.2).collect();
        let plain = session_struct(fields.clone(), starts, ends, None);
        // The stored type's time unit may differ from microseconds: cast to it.
        Ok(arrow::compute::cast(&plain, &DataType::Struct(fields))?)
    }

    fn key_columns(&self, slots: &[usize]) -> Result<Vec<ArrayRef>> {
        let sessions: Vec<(&[u8], i64, i64)> = slots
            .iter()
            .map(|&s| {
                let session = self.session(s);
                (&*session.key, session.start, session.end)
            })
            .collect();
        self.columns_of(&sessions)
    }

    fn key_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.partial_schema.fields()[..self.num_keys].to_vec()))
    }
}

impl GroupStore for SessionState {
    fn merge(&mut self, partial: &RecordBatch, _late_until: Option<i64>) -> Result<u64> {
        // Late rows were filtered out before the partial aggregation, counted as input rows.
        let keys = self.other_keys(partial)?;
        for (row, (key, (start, end))) in keys.iter().zip(self.bounds(partial)?).enumerate() {
            let slot = self.merge_session(key, start, end)?;
            self.merge_row(slot, partial, row)?;
            if !self.touched_keys.contains(key) {
                self.touched_keys.insert(key.clone());
            }
        }
        Ok(0)
    }

    /// As Spark's session-window operator counts: every session, after merging, of each key
    /// this batch brought rows for (it writes a key's sessions back together).
    fn updated_count(&self) -> usize {
        self.touched_keys.iter().map(|k| self.by_key.get(k).map_or(0, BTreeMap::len)).sum()
    }

    fn touched(&self) -> Vec<usize> {
        self.touched.iter().copied().filter(|&s| self.touched_mark[s]).collect()
    }

    fn all_groups(&self) -> Vec<usize> {
        // By key, then start: each user's sessions together, in time order.
        let mut slots: Vec<usize> = (0..self.slots.len()).filter(|&s| self.slots[s].is_some()).collect();
        slots.sort_by(|&a, &b| {
            let (a, b) = (self.session(a), self.session(b));
            (&a.key, a.start).cmp(&(&b.key, b.start))
        });
        slots
    }

    fn expired(&self, watermark: i64) -> Vec<usize> {
        self.by_end.range(..=(watermark, usize::MAX)).map(|&(_, s)| s).collect()
    }

    fn open_event_times(&self) -> (Option<i64>, usize) {
        (self.by_end.first().map(|&(t, _)| t), self.by_end.len())
    }

    fn remove(&mut self, groups: &[usize]) {
        for &slot in groups {
            if self.slots[slot].is_some() {
                self.take(slot);
                self.evicted += 1;
            }
        }
    }

    /// Sessions the watermark evicted; a session merged into another is no removal.
    fn removed_count(&self) -> usize {
        self.evicted
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let mut columns = self.key_columns(groups)?;
        for a in 0..self.aggregates.len() {
            let values = groups
                .iter()
                .map(|&s| self.slots[s].as_mut().expect("a live session slot").accumulators[a].evaluate())
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            columns.push(scalars_to_array(values, self.aggregates[a].field().data_type())?);
        }
        Ok(columns)
    }

    fn commit(&mut self, version: u64) -> Result<()> {
        let touched = GroupStore::touched(self);
        let delta = self.state_rows(&touched)?;
        self.files.write_delta(version, &delta)?;
        // A session whose (key, start) is live again was replaced, not removed.
        let live: HashSet<(&[u8], i64)> = self.slots.iter().flatten().map(|s| (&*s.key, s.start)).collect();
        let removed: Vec<(&[u8], i64, i64)> =
            self.removed.iter().filter(|(k, s)| !live.contains(&(&**k, *s))).map(|(k, s)| (&**k, *s, *s)).collect();
        if !removed.is_empty() {
            let batch = RecordBatch::try_new(self.key_schema(), self.columns_of(&removed)?)?;
            self.files.write_removed(version, &batch)?;
        }
        self.files.committed(version, self.len());
        self.removed.clear();
        self.touched_keys.clear();
        self.evicted = 0;
        for slot in std::mem::take(&mut self.touched) {
            self.touched_mark[slot] = false;
        }
        Ok(())
    }

    fn purge(&self, keep_from: u64) -> Result<()> {
        self.files.purge(keep_from)
    }

    fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.slots.clear();
        self.free.clear();
        self.by_key.clear();
        self.by_end.clear();
        self.touched.clear();
        self.touched_mark.clear();
        self.removed.clear();
        self.touched_keys.clear();
        self.evicted = 0;
        self.memory_bytes = 0;
        let Some(version) = version else { return Ok(()) };
        let changes = self.files.read(version)?;
        for (kind, batch) in changes {
            let keys = self.other_keys(&batch)?;
            let bounds = self.bounds(&batch)?;
            for (row, (key, (start, end))) in keys.into_iter().zip(bounds).enumerate() {
                let existing = self.by_key.get(&key).and_then(|s| s.get(&start)).copied();
                if let Some(slot) = existing {
                    self.take(slot);
                }
                if kind != files::Kind::Removed {
                    // A stored row is the session's whole state.
                    let accumulators = self.fresh_accumulators()?;
                    let slot = self.insert(key, start, end, accumulators);
                    self.merge_row(slot, &batch, row)?;
                }
            }
        }
        for slot in std::mem::take(&mut self.touched) {
            self.touched_mark[slot] = false;
        }
        self.removed.clear();
        Ok(())
    }

    fn len(&self) -> usize {
        self.by_end.len()
    }

    fn memory_bytes(&self) -> usize {
        self.memory_bytes + self.by_end.len() * (2 * std::mem::size_of::<(i64, usize)>() + 16)
    }
}
