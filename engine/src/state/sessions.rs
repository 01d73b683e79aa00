//! The state of a session-window aggregation: per key, its open sessions in start order, each
//! with its partial-state row.
//!
//! Each batch brings partial aggregates grouped by key and by each row's *own* session
//! `[t, t + gap)`. Merging one in: every stored session of its key that overlaps or touches it
//! (`start <= other.end && other.start <= end`) joins it — so a late row can bridge two stored
//! sessions — and the merged session takes the union of their bounds and the merge of their
//! states. A batch first works out which sessions become which, row by row, then merges the
//! states in one pass of DataFusion's grouped accumulators ([`Aggregates`]): the stored rows
//! of the sessions it touches and its own rows in, one row per resulting session out.
//!
//! Files are those of [`super::AggregateState`] (`N.delta`, `N.removed`, `N.snapshot`), the key
//! columns holding the session struct: a session is identified by its key and start, and a
//! merge that moves a start removes the old one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Fields, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::accumulate::Aggregates;
use super::rows::StateRows;
use super::{GroupStore, files};
use crate::error::{Error, Result};
use crate::functions::session::session_struct;

struct Session {
    /// The other grouping keys, in arrow's row format.
    key: Box<[u8]>,
    start: i64,
    end: i64,
}

/// Every open session of one session-window aggregation. A session is a slot; its state row
/// is in `states` under the same number.
pub(crate) struct SessionState {
    /// Key columns (the session struct among them) then accumulator states.
    partial_schema: SchemaRef,
    num_keys: usize,
    /// Which key column is the session.
    session_at: usize,
    aggregates: Aggregates,
    /// Converts the other key columns.
    converter: RowConverter,
    slots: Vec<Option<Session>>,
    states: StateRows,
    free: Vec<u32>,
    by_key: HashMap<Box<[u8]>, BTreeMap<i64, u32>>,
    by_end: BTreeSet<(i64, u32)>,
    touched: Vec<u32>,
    touched_mark: Vec<bool>,
    /// `(key, start)` of sessions gone since the last commit (merged away or evicted).
    removed: Vec<(Box<[u8]>, i64)>,
    /// Keys this batch brought rows for: Spark writes back all of a key's sessions.
    touched_keys: HashSet<Box<[u8]>>,
    /// Sessions the watermark removed since the last commit.
    evicted: usize,
    key_bytes: usize,
    files: files::StateFiles,
}

/// Within one merge: the sessions merged away, and where each went.
#[derive(Default)]
struct Merges {
    /// Merged-away slot -> the slot of the session it joined.
    into: HashMap<u32, u32>,
    /// Merged-away slots that have a stored state row, to fold into where they went.
    stored: Vec<u32>,
    /// Merged-away slots, free again once the merge is done (not before: `into` names them).
    freed: Vec<u32>,
}

impl Merges {
    /// Where the session in `slot` ended up.
    fn resolve(&self, mut slot: u32) -> u32 {
        while let Some(&next) = self.into.get(&slot) {
            slot = next;
        }
        slot
    }
}

impl SessionState {
    pub(crate) fn try_new(
        partial_schema: SchemaRef,
        num_keys: usize,
        session_at: usize,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        dir: PathBuf,
    ) -> Result<Self> {
        let aggregates = Aggregates::try_new(aggregates)?;
        let others = (0..num_keys).filter(|&i| i != session_at);
        let converter =
            RowConverter::new(others.map(|i| SortField::new(partial_schema.field(i).data_type().clone())).collect())?;
        let key_schema = Arc::new(Schema::new(partial_schema.fields()[..num_keys].to_vec()));
        let identity = files::Identity::with_session_start(key_schema.fields(), session_at)?;
        let files = files::StateFiles::new(dir, partial_schema.clone(), key_schema, identity);
        Ok(SessionState {
            states: StateRows::new(partial_schema.fields()[num_keys..].to_vec()),
            partial_schema,
            num_keys,
            session_at,
            aggregates,
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
            key_bytes: 0,
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

    fn insert(&mut self, key: Box<[u8]>, start: i64, end: i64) -> u32 {
        self.key_bytes += key.len();
        let session = Session { key: key.clone(), start, end };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(session);
                i
            }
            None => {
                self.slots.push(Some(session));
                self.touched_mark.push(false);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_key.entry(key).or_default().insert(start, slot);
        self.by_end.insert((end, slot));
        slot
    }

    /// Takes `slot` out of the indexes (not its state row, nor into the free list), recording
    /// its `(key, start)` as removed.
    fn take(&mut self, slot: u32) -> Session {
        let session = self.slots[slot as usize].take().expect("a live session slot");
        if let Some(starts) = self.by_key.get_mut(&session.key) {
            starts.remove(&session.start);
            if starts.is_empty() {
                self.by_key.remove(&session.key);
            }
        }
        self.by_end.remove(&(session.end, slot));
        self.key_bytes -= session.key.len();
        self.touched_mark[slot as usize] = false;
        self.removed.push((session.key.clone(), session.start));
        session
    }

    /// Takes `slot` out for good: its state row too, and the slot is free.
    fn drop_session(&mut self, slot: u32) {
        self.take(slot);
        self.states.remove(slot);
        self.free.push(slot);
    }

    fn touch(&mut self, slot: u32) {
        if !self.touched_mark[slot as usize] {
            self.touched_mark[slot as usize] = true;
            self.touched.push(slot);
        }
    }

    /// Joins the row's own session `[start, end)` of `key` with every session it overlaps or
    /// touches; returns the slot of the result, noting in `merges` what went into it.
    fn merge_session(&mut self, key: &[u8], start: i64, end: i64, merges: &mut Merges) -> u32 {
        let overlapping: Vec<u32> = match self.by_key.get(key) {
            None => Vec::new(),
            Some(starts) => starts
                .range(..=end)
                .rev()
                .map(|(_, &slot)| slot)
                .take_while(|&slot| self.slots[slot as usize].as_ref().is_some_and(|s| s.end >= start))
                .collect(),
        };
        if overlapping.is_empty() {
            return self.insert(key.into(), start, end);
        }
        let (mut new_start, mut new_end) = (start, end);
        for &slot in &overlapping {
            let session = self.take(slot);
            (new_start, new_end) = (new_start.min(session.start), new_end.max(session.end));
            if self.states.has(slot) {
                merges.stored.push(slot);
            }
            merges.freed.push(slot);
        }
        let merged = self.insert(key.into(), new_start, new_end);
        for slot in overlapping {
            merges.into.insert(slot, merged);
        }
        merged
    }

    fn state_rows(&self, slots: &[u32]) -> Result<RecordBatch> {
        let mut columns = self.key_columns(slots)?;
        columns.extend(self.states.get(slots)?);
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

    fn key_columns(&self, slots: &[u32]) -> Result<Vec<ArrayRef>> {
        let sessions: Vec<(&[u8], i64, i64)> = slots
            .iter()
            .map(|&s| {
                let session = self.session(s as usize);
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
        let mut merges = Merges::default();
        // New sessions must not reuse the slots merged away in this batch: `merges` names them.
        let mut row_sessions = Vec::with_capacity(partial.num_rows());
        for (key, (start, end)) in keys.iter().zip(self.bounds(partial)?) {
            row_sessions.push(self.merge_session(key, start, end, &mut merges));
            if !self.touched_keys.contains(key) {
                self.touched_keys.insert(key.clone());
            }
        }
        // The resulting sessions, numbered for the accumulators in first-seen order.
        let mut local: HashMap<u32, usize> = HashMap::new();
        let mut groups: Vec<u32> = Vec::new();
        let mut group_of = |slot: u32| {
            *local.entry(slot).or_insert_with(|| {
                groups.push(slot);
                groups.len() - 1
            })
        };
        let row_groups: Vec<usize> = row_sessions.iter().map(|&s| group_of(merges.resolve(s))).collect();
        let stored_groups: Vec<usize> = merges.stored.iter().map(|&s| group_of(merges.resolve(s))).collect();
        // Sessions that continue without merging keep their slot and bring their stored row.
        let continuing: Vec<u32> = groups.iter().copied().filter(|&s| self.states.has(s)).collect();
        let continuing_groups: Vec<usize> = continuing.iter().map(|s| local[s]).collect();
        let mut accumulators = self.aggregates.accumulators()?;
        let n = groups.len();
        self.aggregates.merge(&mut accumulators, &self.states.get(&continuing)?, &continuing_groups, n)?;
        self.aggregates.merge(&mut accumulators, &self.states.get(&merges.stored)?, &stored_groups, n)?;
        self.aggregates.merge(&mut accumulators, &partial.columns()[self.num_keys..], &row_groups, n)?;
        for &slot in &merges.freed {
            self.states.remove(slot);
        }
        self.free.extend(merges.freed);
        self.states.put(&groups, Aggregates::states(accumulators)?)?;
        for slot in groups {
            self.touch(slot);
        }
        Ok(0)
    }

    /// As Spark's session-window operator counts: every session, after merging, of each key
    /// this batch brought rows for (it writes a key's sessions back together).
    fn updated_count(&self) -> usize {
        self.touched_keys.iter().map(|k| self.by_key.get(k).map_or(0, BTreeMap::len)).sum()
    }

    fn touched(&self) -> Vec<usize> {
        self.touched.iter().filter(|&&s| self.touched_mark[s as usize]).map(|&s| s as usize).collect()
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
        self.by_end.range(..=(watermark, u32::MAX)).map(|&(_, s)| s as usize).collect()
    }

    fn open_event_times(&self) -> (Option<i64>, usize) {
        (self.by_end.first().map(|&(t, _)| t), self.by_end.len())
    }

    fn remove(&mut self, groups: &[usize]) {
        for &slot in groups {
            if self.slots[slot].is_some() {
                self.drop_session(slot as u32);
                self.evicted += 1;
            }
        }
    }

    /// Sessions the watermark evicted; a session merged into another is no removal.
    fn removed_count(&self) -> usize {
        self.evicted
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let slots: Vec<u32> = groups.iter().map(|&g| g as u32).collect();
        let mut columns = self.key_columns(&slots)?;
        columns.extend(Aggregates::evaluate(self.aggregates.holding(&self.states, &slots)?)?);
        Ok(columns)
    }

    fn commit(&mut self, version: u64) -> Result<()> {
        let touched: Vec<u32> = self.touched.iter().copied().filter(|&s| self.touched_mark[s as usize]).collect();
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
            self.touched_mark[slot as usize] = false;
        }
        Ok(())
    }

    fn purge(&self, keep_from: u64) -> Result<()> {
        self.files.purge(keep_from)
    }

    fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.slots.clear();
        self.states.clear();
        self.free.clear();
        self.by_key.clear();
        self.by_end.clear();
        self.touched.clear();
        self.touched_mark.clear();
        self.removed.clear();
        self.touched_keys.clear();
        self.evicted = 0;
        self.key_bytes = 0;
        let Some(version) = version else { return Ok(()) };
        for (kind, batch) in self.files.read(version)? {
            let keys = self.other_keys(&batch)?;
            let bounds = self.bounds(&batch)?;
            let mut slots = Vec::with_capacity(batch.num_rows());
            for (key, (start, end)) in keys.into_iter().zip(bounds) {
                if let Some(&slot) = self.by_key.get(&key).and_then(|s| s.get(&start)) {
                    self.drop_session(slot);
                }
                if kind != files::Kind::Removed {
                    slots.push(self.insert(key, start, end));
                }
            }
            // A stored row is the session's whole state.
            if kind != files::Kind::Removed {
                self.states.put(&slots, batch.columns()[self.num_keys..].to_vec())?;
            }
        }
        self.removed.clear();
        Ok(())
    }

    fn len(&self) -> usize {
        self.by_end.len()
    }

    fn memory_bytes(&self) -> usize {
        let per_session = std::mem::size_of::<Option<Session>>() + 2 * std::mem::size_of::<(i64, u32)>() + 16;
        self.key_bytes + self.states.memory_bytes() + self.by_end.len() * per_session
    }
}
