//! Streaming deduplication: `drop_duplicates(cols)` and `drop_duplicates_within_watermark(cols)`
//! (semantics appendix, §7).
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMicrosecondType};

use super::late_rows::{LateRows, Reason};
use super::{BatchWatermarks, OperatorContext, StatefulOperator};
use crate::error::{Error, Result};
use crate::plan::dedup::{DedupSpec, Eviction};
use crate::progress::StateOperatorProgress;
use crate::state::keys::KeyStore;

/// Spark's operator name in progress.
fn operator_name(spec: &DedupSpec) -> &'static str {
    if spec.within_watermark { "dedupeWithinWatermark" } else { "dedupe" }
}

/// A deduplication's keys and this batch's counters.
pub(crate) struct Deduplicate {
    spec: DedupSpec,
    store: KeyStore,
    /// Rows with event time at or before this (microseconds) are late, in this batch.
    late_until_us: Option<i64>,
    /// The rows dropped as late, when the query keeps them.
    late_rows: Option<LateRows>,
    added: u64,
    removed: u64,
    dropped_late: u64,
    dropped_duplicates: u64,
    updates: Duration,
    removals: Duration,
}

impl std::fmt::Debug for Deduplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deduplicate").field("spec", &self.spec).field("keys", &self.store.len()).finish()
    }
}

impl Deduplicate {
    pub(crate) fn try_new(spec: DedupSpec, input: &Schema, context: OperatorContext) -> Result<Self> {
        let fields = spec.keys.iter().map(|&i| Arc::new(input.field(i).clone())).collect();
        let time_column = matches!(spec.eviction, Eviction::Expiry { .. }).then_some("expiresAtMicros");
        let store = KeyStore::try_new(fields, time_column, context.dir)?;
        Ok(Deduplicate {
            spec,
            store,
            late_until_us: None,
            late_rows: context.late_rows.then(LateRows::default),
            added: 0,
            removed: 0,
            dropped_late: 0,
            dropped_duplicates: 0,
            updates: Duration::ZERO,
            removals: Duration::ZERO,
        })
    }

    /// Starts a batch whose late rows are those at or before `late_watermark_ms` (`W_{N-1}`).
    fn begin_batch(&mut self, late_watermark_ms: i64) {
        self.late_until_us = self.spec.event_time.map(|_| late_watermark_ms * 1_000);
        (self.added, self.removed, self.dropped_late, self.dropped_duplicates) = (0, 0, 0, 0);
        (self.updates, self.removals) = (Duration::ZERO, Duration::ZERO);
    }

    /// The rows of `batch` whose key is new, in order; their keys go into state.
    fn filter(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
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
            self.store.insert(key, evict_at)?;
            self.added += 1;
            keep.push(true);
        }
        let kept = filter_record_batch(batch, &BooleanArray::from(keep))?;
        if let (Some(buffer), Some(watermark_us)) = (&mut self.late_rows, self.late_until_us)
            && !late_rows.is_empty()
        {
            let (rows, times): (Vec<u32>, Vec<i64>) = late_rows.into_iter().unzip();
            let rows = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))?;
            buffer.record(operator_name(&self.spec), Reason::EventTime, watermark_us, &times, &rows)?;
        }
        self.updates += started.elapsed();
        Ok(kept)
    }

    /// After the batch's rows: forgets keys the watermark `watermark_ms` (`W_N`) has passed.
    fn evict(&mut self, watermark_ms: i64) {
        if self.spec.eviction == Eviction::Never {
            return;
        }
        let started = Instant::now();
        self.removed += self.store.evict(watermark_ms * 1_000) as u64;
        self.removals += started.elapsed();
    }
}

/// Dedup operators ask for a no-data batch whenever the watermark moved (the default).
impl StatefulOperator for Deduplicate {
    fn process(&mut self, inputs: Vec<Vec<RecordBatch>>, watermarks: BatchWatermarks) -> Result<Vec<RecordBatch>> {
        let input = inputs.concat();
        self.begin_batch(watermarks.late_ms);
        let kept = input.iter().map(|b| self.filter(b)).collect::<Result<Vec<_>>>()?;
        // After the batch's rows: a key evicted in batch N still deduplicates batch N's rows.
        self.evict(watermarks.eviction_ms);
        Ok(kept)
    }

    fn restore(&mut self, version: Option<u64>) -> Result<()> {
        let eviction = self.spec.eviction;
        let time_of = move |batch: &RecordBatch| match eviction {
            Eviction::KeyTime(k) => micros(batch, k),
            _ => Ok(vec![None; batch.num_rows()]),
        };
        self.store.restore(version, &time_of)
    }

    fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress> {
        let started = Instant::now();
        self.store.commit(batch_id)?;
        Ok(StateOperatorProgress {
            operator_name: operator_name(&self.spec).into(),
            num_rows_total: self.store.len() as u64,
            num_rows_updated: self.added,
            num_rows_removed: self.removed,
            num_rows_dropped_by_watermark: self.dropped_late,
            num_shuffle_partitions: 1,
            num_state_store_instances: 1,
            memory_used_bytes: self.store.memory_bytes() as u64,
            all_updates_time_ms: self.updates.as_millis() as u64,
            all_removals_time_ms: self.removals.as_millis() as u64,
            commit_time_ms: started.elapsed().as_millis() as u64,
            custom_metrics: [("numDroppedDuplicateRows".to_string(), self.dropped_duplicates)].into(),
        })
    }

    fn purge(&self, keep_from: u64) -> Result<()> {
        self.store.purge(keep_from)
    }

    fn take_late_rows(&mut self, batch_id: u64) -> Result<Vec<RecordBatch>> {
        self.late_rows.as_mut().map_or(Ok(Vec::new()), |l| l.take(batch_id))
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
