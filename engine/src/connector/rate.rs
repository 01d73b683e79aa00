//! The `rate` and `rate-micro-batch` sources: generated `(timestamp, value)` rows for
//! learning and load tests (semantics appendix, §10).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::checkpoint::log::{read_log_file, write_log_file};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::source::{InputPartitions, Offset, ReadLimit, Source, SourceContext};

/// `timestamp TIMESTAMP, value LONG`.
pub fn rate_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("timestamp", crate::ddl::timestamp_type(), true),
        Field::new("value", DataType::Int64, true),
    ]))
}

pub(crate) static SOURCE: super::SourceConnector = super::SourceConnector {
    names: &["rate"],
    options: || vec!["rowsPerSecond", "rampUpTime", "numPartitions"],
    schema: |_| Ok(rate_schema()),
    create: |o, ctx| Ok(Box::new(RateSource::try_new(o, ctx)?)),
    batch: None,
};

pub(crate) static MICRO_BATCH_SOURCE: super::SourceConnector = super::SourceConnector {
    names: &["rate-micro-batch"],
    options: || vec!["rowsPerBatch", "numPartitions", "startTimestamp", "advanceMillisPerBatch"],
    schema: |_| Ok(rate_schema()),
    create: |o, ctx| Ok(Box::new(RatePerMicroBatchSource::try_new(o, ctx.parallelism)?)),
    batch: None,
};

/// The batch's values spread over `partitions` input partitions as Spark's rate sources do:
/// partition `p` holds `from + p`, `from + p + partitions`, ... (semantics appendix, §10).
fn rows(values: std::ops::Range<i64>, partitions: i64, timestamp_us: impl Fn(i64) -> i64) -> Result<InputPartitions> {
    (0..partitions)
        .map(|p| {
            let mine = || (values.start + p..values.end).step_by(partitions as usize);
            let ts: TimestampMicrosecondArray = mine().map(|v| Some(timestamp_us(v))).collect();
            let vs: Int64Array = mine().map(Some).collect();
            Ok(vec![RecordBatch::try_new(rate_schema(), vec![Arc::new(ts), Arc::new(vs)])?])
        })
        .collect()
}

/// `numPartitions`, or the session's parallelism when not given; and how descriptions show it.
fn num_partitions(o: &Options, parallelism: usize) -> Result<(i64, String)> {
    let n = positive(o, "numPartitions", parallelism.max(1) as i64)?;
    let shown = if o.get("numPartitions").is_some() { n.to_string() } else { "default".to_string() };
    Ok((n, shown))
}

fn positive(o: &Options, key: &str, default: i64) -> Result<i64> {
    let v = o.parse_or(key, default)?;
    if v <= 0 {
        return Err(Error::option(key, format!("must be positive, got {v}")));
    }
    Ok(v)
}

/// `rate`: `rowsPerSecond` rows for every second of processing time since the query first
/// started (ramping up linearly over the first `rampUpTime`), timestamps spread evenly over
/// the batch's seconds. The offset is the number of whole seconds elapsed, so the first batch
/// is empty. Values and timestamps follow Spark's `RateStreamMicroBatchStream` exactly.
pub(crate) struct RateSource {
    rows_per_second: i64,
    partitions: (i64, String),
    ramp_up_seconds: i64,
    start_ms: i64,
    clock: Arc<dyn Clock>,
}

impl RateSource {
    pub(crate) fn try_new(o: &Options, ctx: SourceContext) -> Result<Self> {
        let rows_per_second = positive(o, "rowsPerSecond", 1)?;
        let ramp_up_seconds = match o.get("rampUpTime") {
            None => 0,
            Some(text) => parse_seconds(text).map_err(|m| Error::option("rampUpTime", m))?,
        };
        if ramp_up_seconds > 0 && rows_per_second / (ramp_up_seconds + 1) == 0 {
            return Err(Error::option(
                "rampUpTime",
                format!(
                    "{ramp_up_seconds}s is too long for rowsPerSecond={rows_per_second}: the speed would never rise above 0"
                ),
            ));
        }
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
        let partitions = num_partitions(o, ctx.parallelism)?;
        Ok(RateSource { rows_per_second, partitions, ramp_up_seconds, start_ms, clock: ctx.clock })
    }

    /// The first value not yet generated after `seconds` seconds (Spark's `valueAtSecond`):
    /// during ramp-up the speed grows by `rowsPerSecond / (rampUpTime + 1)` each second.
    fn value_at_second(&self, seconds: i64) -> i64 {
        let ramp = self.ramp_up_seconds;
        let delta = self.rows_per_second / (ramp + 1);
        let ramped = |s: i64| if s % 2 == 1 { (s + 1) / 2 * delta * s } else { s / 2 * delta * (s + 1) };
        if seconds <= ramp { ramped(seconds) } else { ramped(ramp) + (seconds - ramp) * self.rows_per_second }
    }
}

/// Spark's time strings for `rampUpTime`: `10`, `10s`, `500ms`, `2m`, `1h`, or `10 seconds`.
fn parse_seconds(text: &str) -> std::result::Result<i64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let ms_per = match unit.trim() {
        "" | "s" => Some(1_000),
        "ms" => Some(1),
        "m" | "min" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        _ => None,
    };
    let ms = match (n.parse::<i64>(), ms_per) {
        (Ok(n), Some(per)) => n * per,
        _ => crate::options::parse_interval_ms(t)?,
    };
    if ms < 0 {
        return Err(format!("must not be negative, got '{text}'"));
    }
    Ok(ms / 1_000)
}

fn seconds(offset: Option<&Offset>) -> i64 {
    offset.and_then(|o| o.get("seconds")).and_then(|v| v.as_i64()).unwrap_or(0)
}

impl Source for RateSource {
    fn latest_offset(&mut self, _start: Option<&Offset>, _limit: ReadLimit) -> Result<Option<Offset>> {
        let elapsed = (self.clock.now_ms() - self.start_ms).max(0) / 1_000;
        Ok(Some(serde_json::json!({ "seconds": elapsed })))
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions> {
        let (from_s, to_s) = (seconds(start), seconds(Some(end)));
        let (from, to) = (self.value_at_second(from_s), self.value_at_second(to_s));
        // Spark spreads the batch's values evenly over its seconds, in whole milliseconds.
        let local_start_ms = self.start_ms + from_s * 1_000;
        let ms_per_value = if to > from { ((to_s - from_s) * 1_000) as f64 / (to - from) as f64 } else { 0.0 };
        rows(from..to, self.partitions.0, |v| {
            (local_start_ms + ((v - from) as f64 * ms_per_value).round() as i64) * 1_000
        })
    }

    fn description(&self) -> String {
        format!(
            "RateStreamV2[rowsPerSecond={}, rampUpTimeSeconds={}, numPartitions={}]",
            self.rows_per_second, self.ramp_up_seconds, self.partitions.1
        )
    }
}

/// `rate-micro-batch`: exactly `rowsPerBatch` rows per batch, values 0, 1, 2, ..., every row of
/// the k-th batch stamped `startTimestamp + k * advanceMillisPerBatch`. Independent of the clock.
pub(crate) struct RatePerMicroBatchSource {
    rows_per_batch: i64,
    partitions: (i64, String),
    start_timestamp_ms: i64,
    advance_ms: i64,
    /// Under `AvailableNow`: the end of the one batch this run reads.
    available_now_end: Option<i64>,
}

impl RatePerMicroBatchSource {
    pub(crate) fn try_new(o: &Options, parallelism: usize) -> Result<Self> {
        if o.get("rowsPerBatch").is_none() {
            return Err(Error::option("rowsPerBatch", "is required by the rate-micro-batch source"));
        }
        Ok(RatePerMicroBatchSource {
            rows_per_batch: positive(o, "rowsPerBatch", 1)?,
            partitions: num_partitions(o, parallelism)?,
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
        // As Spark's offset: the timestamp the batch after this one starts with.
        let next_batch = end / self.rows_per_batch;
        Ok(Some(
            serde_json::json!({ "offset": end, "timestamp": self.start_timestamp_ms + next_batch * self.advance_ms }),
        ))
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions> {
        let (from, to) = (rows_offset(start), rows_offset(Some(end)));
        let (rpb, start_ms, advance) = (self.rows_per_batch, self.start_timestamp_ms, self.advance_ms);
        rows(from..to, self.partitions.0, |v| (start_ms + (v / rpb) * advance) * 1_000)
    }

    fn prepare_for_available_now(&mut self, start: Option<&Offset>) -> Result<()> {
        self.available_now_end = Some(rows_offset(start) + self.rows_per_batch);
        Ok(())
    }

    fn description(&self) -> String {
        format!(
            "RatePerMicroBatchStream[rowsPerBatch={}, numPartitions={}, startTimestamp={}, advanceMillisPerBatch={}]",
            self.rows_per_batch, self.partitions.1, self.start_timestamp_ms, self.advance_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(rows_per_second: i64, ramp_up_seconds: i64) -> RateSource {
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::VirtualClock::new(0));
        RateSource { rows_per_second, partitions: (1, "1".into()), ramp_up_seconds, start_ms: 0, clock }
    }

    #[test]
    fn ramp_up_follows_sparks_value_at_second() {
        // Spark's own example: rampUpTime 4s, 10 rows/s -> speed 0 2 4 6 8 10 10.
        let s = source(10, 4);
        let ends: Vec<i64> = (0..=6).map(|t| s.value_at_second(t)).collect();
        assert_eq!(ends, [0, 2, 6, 12, 20, 30, 40]);
        assert_eq!(source(10, 0).value_at_second(3), 30);
    }

    #[test]
    fn rate_times_parse_like_spark() {
        assert_eq!(parse_seconds("5s"), Ok(5));
        assert_eq!(parse_seconds("7"), Ok(7));
        assert_eq!(parse_seconds("2m"), Ok(120));
        assert_eq!(parse_seconds("1 minute"), Ok(60));
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn timestamps_spread_over_the_batch_seconds() {
        let mut s = source(10, 4);
        let start = serde_json::json!({"seconds": 1});
        let batch = &s.get_batch(Some(&start), &serde_json::json!({"seconds": 3})).unwrap()[0][0];
        let ts = batch.column(0).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        let values = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        // Seconds 1..3 hold values 2..12 (speeds 4 and 6): ten values over 2000 ms.
        assert_eq!(values.values().to_vec(), (2..12).collect::<Vec<i64>>());
        assert_eq!(ts.values().to_vec(), (0..10).map(|i| 1_000_000 + i * 200_000).collect::<Vec<i64>>());
    }

    #[test]
    fn values_interleave_over_the_partitions_as_in_spark() {
        // Spark 4.3, rate-micro-batch rowsPerBatch=7 numPartitions=3, batch 1:
        // partition 0 holds 7 10 13, partition 1 holds 8 11, partition 2 holds 9 12.
        let partitions = rows(7..14, 3, |_| 0).unwrap();
        let values: Vec<Vec<i64>> = partitions
            .iter()
            .map(|p| p[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect();
        assert_eq!(values, [vec![7, 10, 13], vec![8, 11], vec![9, 12]]);
    }
}
