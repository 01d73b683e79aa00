//! Streaming deduplication: `drop_duplicates(cols)` and `drop_duplicates_within_watermark(cols)`
//! (SEMANTICS §7).
//!
//! The operator keeps the keys it has let through. A row passes when its key is new, and the
//! first row in input order wins within a batch. What the state keeps, and for how long, depends
//! on the event-time column (the one `with_watermark` marked) and the variant:
//!
//! | variant | state per key | a key leaves state |
//! |---|---|---|
//! | no watermark | the key | never |
//! | watermark, keys without the event time | the key | never |
//! | watermark, keys with the event time | the key and its time | when `time <= W_N` |
//! | within watermark | the key and `first time + delay` | when that `<= W_N` |
//!
//! With a watermark, rows with `event time <= W_{N-1}` are dropped as late before any of this.
//! Eviction runs after the batch's rows (so a key evicted in batch N still deduplicates the rows
//! of batch N).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMicrosecondType};

use crate::error::{Error, Result};
use crate::execution::progress::StateOperatorProgress;
use crate::operator::late_rows::{LateRowsBuffer, Reason};
use crate::state::keys::KeyStore;

/// How keys leave state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Eviction {
    /// Never: the keys do not include event time.
    Never,
    /// When the watermark passes the key's event time (the key column at this position).
    KeyTime(usize),
    /// When the watermark passes the first event time plus the delay (within watermark).
    Expiry { delay_us: i64 },
}

/// What one deduplication does, resolved against its input's columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DedupSpec {
    /// Input columns that make the key.
    pub keys: Vec<usize>,
    /// The input's event-time column, when it has one.
    pub event_time: Option<usize>,
    pub eviction: Eviction,
    pub within_watermark: bool,
}

impl DedupSpec {
    /// Spark's operator name in progress.
    fn operator_name(&self) -> &'static str {
        if self.within_watermark { "dedupeWithinWatermark" } else { "dedupe" }
    }
}

/// A deduplication's keys and this batch's counters.
pub(crate) struct Deduplicate {
    spec: DedupSpec,
    store: KeyStore,
    /// Rows with event time at or before this (microseconds) are late, in this batch.
    late_until_us: Option<i64>,
    /// Where rows dropped as late go, when the query asked for them.
    late_rows: Option<LateRowsBuffer>,
    added: u64,
    removed: u64,
    dropped_late: u64,
    dropped_duplicates: u64,
    updates: Duration,
    removals: Duration,
}

/// A deduplication shared by the plan that runs it and the loop that commits it.
pub(crate) type DedupCell = Arc<Mutex<Option<Deduplicate>>>;

impl std::fmt::Debug for Deduplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deduplicate").field("spec", &self.spec).field("keys", &self.store.len()).finish()
    }
}

impl Deduplicate {
    pub(crate) fn try_new(spec: DedupSpec, input: &Schema, dir: PathBuf) -> Result<Self> {
        let fields = spec.keys.iter().map(|&i| Arc::new(input.field(i).clone())).collect();
        let time_column = matches!(spec.eviction, Eviction::Expiry { .. }).then_some("expiresAtMicros");
        let store = KeyStore::try_new(fields, time_column, dir)?;
        Ok(Deduplicate {
            spec,
            store,
            late_until_us: None,
            late_rows: None,
            added: 0,
            removed: 0,
            dropped_late: 0,
            dropped_duplicates: 0,
            updates: Duration::ZERO,
            removals: Duration::ZERO,
        })
    }

    /// Starts a batch whose late rows are those at or before `late_watermark_ms` (`W_{N-1}`).
    pub(crate) fn begin_batch(&mut self, late_watermark_ms: i64) {
        self.late_until_us = self.spec.event_time.map(|_| late_watermark_ms * 1_000);
        (self.added, self.removed, self.dropped_late, self.dropped_duplicates) = (0, 0, 0, 0);
        (self.updates, self.removals) = (Duration::ZERO, Duration::ZERO);
    }

    /// The rows of `batch` whose key is new, in order; their keys go into state.
    pub(crate) fn filter(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let started = Instant::now();
        let times = match self.spec.event_time {
            Some(i) => micros(batch, i)?,
            None => vec![None; batch.num_rows()],
        };
        let key_columns: Vec<_> = self.spec.keys.iter().map(|&i| batch.column(i).clone()).collect();
        let keys = self.store.keys(&key_columns)?;
        let key_times = match self.spec.eviction {
            Eviction::KeyTime(k) => micros(batch, self.spec.keys[k])?,
            _ => Vec::new(),
        };
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut late_rows = Vec::new();
        for (row, (key, time)) in keys.into_iter().zip(times).enumerate() {
            if let (Some(t), Some(late)) = (time, self.late_until_us)
                && t <= late
            {
                self.dropped_late += 1;
                late_rows.push((row as u32, t));
                keep.push(false);
                continue;
            }
            if self.store.contains(&key) {
                self.dropped_duplicates += 1;
                keep.push(false);
                continue;
            }
            let evict_at = match self.spec.eviction {
                Eviction::Never => None,
                Eviction::KeyTime(_) => key_times[row],
                // Spark reads a null event time as 0 here.
                Eviction::Expiry { delay_us } => Some(time.unwrap_or(0) + delay_us),
            };
            self.store.insert(key, evict_at);
            self.added += 1;
            keep.push(true);
        }
        let kept = filter_record_batch(batch, &BooleanArray::from(keep))?;
        if let (Some(buffer), Some(watermark_us)) = (&self.late_rows, self.late_until_us)
            && !late_rows.is_empty()
        {
            let (rows, times): (Vec<u32>, Vec<i64>) = late_rows.into_iter().unzip();
            let rows = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))?;
            buffer.record(self.spec.operator_name(), Reason::EventTime, watermark_us, &times, &rows)?;
        }
        self.updates += started.elapsed();
        Ok(kept)
    }

    /// After the batch's rows: forgets keys the watermark `watermark_ms` (`W_N`) has passed.
    pub(crate) fn evict(&mut self, watermark_ms: i64) {
        if self.spec.eviction == Eviction::Never {
            return;
        }
        let started = Instant::now();
        self.removed += self.store.evict(watermark_ms * 1_000) as u64;
        self.removals += started.elapsed();
    }

    /// Whether a no-data batch should run with the new watermark (Spark's dedup operators ask
    /// only that the watermark moved).
    pub(crate) fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        next_watermark_ms > watermark_ms
    }

    /// Rebuilds the keys of `version` (the last committed batch), or none.
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        let eviction = self.spec.eviction;
        let time_of = move |batch: &RecordBatch| match eviction {
            Eviction::KeyTime(k) => micros(batch, k),
            _ => Ok(vec![None; batch.num_rows()]),
        };
        self.store.restore(version, &time_of)
    }

    /// Checkpoints the keys as version `batch_id`; returns the operator's progress.
    pub(crate) fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress> {
        let started = Instant::now();
        self.store.commit(batch_id)?;
        Ok(StateOperatorProgress {
            operator_name: self.spec.operator_name().into(),
            num_rows_total: self.store.len() as u64,
            num_rows_updated: self.added,
            num_rows_removed: self.removed,
            num_rows_dropped_by_watermark: self.dropped_late,
            memory_used_bytes: self.store.memory_bytes() as u64,
            all_updates_time_ms: self.updates.as_millis() as u64,
            all_removals_time_ms: self.removals.as_millis() as u64,
            commit_time_ms: started.elapsed().as_millis() as u64,
            custom_metrics: [("numDroppedDuplicateRows".to_string(), self.dropped_duplicates)].into(),
        })
    }

    /// Deletes state files no retained batch needs.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        self.store.purge(keep_from)
    }
}

/// Column `i` of `batch` (a timestamp) in microseconds.
fn micros(batch: &RecordBatch, i: usize) -> Result<Vec<Option<i64>>> {
    let column = batch.column(i);
    if !matches!(column.data_type(), DataType::Timestamp(_, _)) {
        return Err(Error::Internal(format!("dedup event time column is {}", column.data_type())));
    }
    let us = arrow::compute::cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(us.as_primitive::<TimestampMicrosecondType>().iter().collect())
}

/// The loop's handle on one deduplication in a running query.
pub(crate) struct Deduplication {
    pub cell: DedupCell,
}

impl Deduplication {
    fn with<T>(&self, f: impl FnOnce(&mut Deduplicate) -> Result<T>) -> Result<T> {
        let mut guard = self.cell.lock().expect("dedup state lock poisoned");
        let op = guard.as_mut().ok_or_else(|| Error::Internal("deduplication state not installed".into()))?;
        f(op)
    }

    /// Sends the rows this deduplication drops as late to `buffer` (the late-rows output).
    pub(crate) fn send_late_rows_to(&self, buffer: LateRowsBuffer) -> Result<()> {
        self.with(|d| {
            d.late_rows = Some(buffer);
            Ok(())
        })
    }

    pub(crate) fn begin_batch(&self, late_watermark_ms: i64) -> Result<()> {
        self.with(|d| {
            d.begin_batch(late_watermark_ms);
            Ok(())
        })
    }

    pub(crate) fn evict(&self, watermark_ms: i64) -> Result<()> {
        self.with(|d| {
            d.evict(watermark_ms);
            Ok(())
        })
    }

    pub(crate) fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        self.with(|d| Ok(d.should_run_another_batch(watermark_ms, next_watermark_ms))).unwrap_or(false)
    }

    pub(crate) fn restore(&self, version: Option<u64>) -> Result<()> {
        self.with(|d| d.restore(version))
    }

    pub(crate) fn commit(&self, batch_id: u64) -> Result<StateOperatorProgress> {
        self.with(|d| d.commit(batch_id))
    }

    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        self.with(|d| d.purge(keep_from))
    }
}
