//! The `rate` and `rate-micro-batch` sources: generated `(timestamp, value)` rows for
//! learning and load tests (SEMANTICS §10).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{Offset, ReadLimit, Source, SourceContext};
use crate::checkpoint::log::{read_log_file, write_log_file};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::options::Options;

/// `timestamp TIMESTAMP, value LONG`.
pub fn rate_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("timestamp", crate::ddl::timestamp_type(), true),
        Field::new("value", DataType::Int64, true),
    ]))
}

pub(crate) const RATE_OPTIONS: &[&str] = &["rowsPerSecond", "numPartitions"];
pub(crate) const RATE_MICRO_BATCH_OPTIONS: &[&str] =
    &["rowsPerBatch", "numPartitions", "startTimestamp", "advanceMillisPerBatch"];

fn rows(values: std::ops::Range<i64>, timestamp_us: impl Fn(i64) -> i64) -> Result<Vec<RecordBatch>> {
    let ts: TimestampMicrosecondArray = values.clone().map(|v| Some(timestamp_us(v))).collect();
    let vs: Int64Array = values.map(Some).collect();
    Ok(vec![RecordBatch::try_new(rate_schema(), vec![Arc::new(ts), Arc::new(vs)])?])
}

fn positive(o: &Options, key: &str, default: i64) -> Result<i64> {
    let v = o.parse_or(key, default)?;
    if v <= 0 {
        return Err(Error::option(key, format!("must be positive, got {v}")));
    }
    Ok(v)
}

/// `rate`: `rowsPerSecond` rows for every second of processing time since the query first
/// started, timestamps spread evenly within each second. The offset is the number of whole
/// seconds elapsed, so the first batch is empty.
pub(crate) struct RateSource {
    rows_per_second: i64,
    start_ms: i64,
    clock: Arc<dyn Clock>,
}

impl RateSource {
    pub(crate) fn try_new(o: &Options, ctx: SourceContext) -> Result<Self> {
        let rows_per_second = positive(o, "rowsPerSecond", 1)?;
        // The start time is kept in the checkpoint so a restart continues the same sequence.
        let path = ctx.dir.join("0");
        let start_ms = if path.exists() {
            let lines = read_log_file(&path)?;
            lines
                .first()
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| Error::checkpoint(&path, "corrupt rate source start time"))?
        } else {
            let now = ctx.clock.now_ms();
            write_log_file(&path, &[now.to_string()])?;
            now
        };
        Ok(RateSource { rows_per_second, start_ms, clock: ctx.clock })
    }
}

fn seconds(offset: Option<&Offset>) -> i64 {
    offset.and_then(|o| o.get("seconds")).and_then(|v| v.as_i64()).unwrap_or(0)
}

impl Source for RateSource {
    fn latest_offset(&mut self, _start: Option<&Offset>, _limit: ReadLimit) -> Result<Option<Offset>> {
        let elapsed = (self.clock.now_ms() - self.start_ms).max(0) / 1_000;
        Ok(Some(serde_json::json!({ "seconds": elapsed })))
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let (from, to) = (seconds(start), seconds(Some(end)));
        let rps = self.rows_per_second;
        let start_us = self.start_ms * 1_000;
        rows(from * rps..to * rps, |v| start_us + (v / rps) * 1_000_000 + (v % rps) * 1_000_000 / rps)
    }

    fn description(&self) -> String {
        format!("RateStreamV2[rowsPerSecond={}, rampUpTimeSeconds=0, numPartitions=default]", self.rows_per_second)
    }
}

/// `rate-micro-batch`: exactly `rowsPerBatch` rows per batch, values 0, 1, 2, ..., every row of
/// the k-th batch stamped `startTimestamp + k * advanceMillisPerBatch`. Independent of the clock.
pub(crate) struct RatePerMicroBatchSource {
    rows_per_batch: i64,
    start_timestamp_ms: i64,
    advance_ms: i64,
    /// Under `AvailableNow`: the end of the one batch this run reads.
    available_now_end: Option<i64>,
}

impl RatePerMicroBatchSource {
    pub(crate) fn try_new(o: &Options) -> Result<Self> {
        if o.get("rowsPerBatch").is_none() {
            return Err(Error::option("rowsPerBatch", "is required by the rate-micro-batch source"));
        }
        Ok(RatePerMicroBatchSource {
            rows_per_batch: positive(o, "rowsPerBatch", 1)?,
            start_timestamp_ms: o.parse_or("startTimestamp", 0)?,
            advance_ms: o.parse_or("advanceMillisPerBatch", 1_000)?,
            available_now_end: None,
        })
    }
}

fn rows_offset(offset: Option<&Offset>) -> i64 {
    offset.and_then(|o| o.get("offset")).and_then(|v| v.as_i64()).unwrap_or(0)
}

impl Source for RatePerMicroBatchSource {
    fn latest_offset(&mut self, start: Option<&Offset>, _limit: ReadLimit) -> Result<Option<Offset>> {
        let end = match self.available_now_end {
            Some(end) => end,
            None => rows_offset(start) + self.rows_per_batch,
        };
        let batch = end / self.rows_per_batch - 1;
        Ok(Some(serde_json::json!({ "offset": end, "timestamp": self.start_timestamp_ms + batch * self.advance_ms })))
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let (from, to) = (rows_offset(start), rows_offset(Some(end)));
        let (rpb, start_ms, advance) = (self.rows_per_batch, self.start_timestamp_ms, self.advance_ms);
        rows(from..to, |v| (start_ms + (v / rpb) * advance) * 1_000)
    }

    fn prepare_for_available_now(&mut self, start: Option<&Offset>) -> Result<()> {
        self.available_now_end = Some(rows_offset(start) + self.rows_per_batch);
        Ok(())
    }

    fn description(&self) -> String {
        format!(
            "RatePerMicroBatchStream[rowsPerBatch={}, numPartitions=default, startTimestamp={}, advanceMillisPerBatch={}]",
            self.rows_per_batch, self.start_timestamp_ms, self.advance_ms
        )
    }
}
