//! Reading offset ranges into Arrow rows with Spark's Kafka schema.
//!
//! The ranges of one read are spread over up to one consumer per core, each reading its
//! partitions by assignment (no consumer group), and the rows come back in topic and partition
//! order whatever the timing, so a batch is the same on every run. A range is done when the
//! consumer's position reaches its end: offsets are not dense (transaction markers take one),
//! so counting records would wait forever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder,
    StructBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Timestamp};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};

use super::client::{KafkaConfig, TopicPartition};
use super::context::KafkaConsumer;
use crate::error::{Error, Result};
use crate::options::Options;

/// The option for how long a read may wait for the broker without getting a record.
const POLL_TIMEOUT: &str = "kafkaConsumer.pollTimeoutMs";

/// One partition's records `[from, until)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OffsetRange {
    pub partition: TopicPartition,
    pub from: i64,
    pub until: i64,
}

fn header_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Binary, true)])
}

/// Spark's Kafka source schema; `headers` only with `includeHeaders`.
pub fn kafka_schema(include_headers: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", crate::ddl::timestamp_type(), true),
        Field::new("timestampType", DataType::Int32, false),
    ];
    if include_headers {
        let item = Field::new("item", DataType::Struct(header_fields()), true);
        fields.push(Field::new("headers", DataType::List(Arc::new(item)), true));
    }
    Arc::new(Schema::new(fields))
}

/// Reads offset ranges; keeps its consumers (and their broker connections) between reads.
pub(crate) struct RangeReader {
    config: KafkaConfig,
    group_id: String,
    consumers: Vec<KafkaConsumer>,
    poll_timeout: Duration,
    include_headers: bool,
}

impl RangeReader {
    pub fn try_new(config: KafkaConfig, group_id: String, options: &Options) -> Result<Self> {
        Ok(RangeReader {
            config,
            group_id,
            consumers: Vec::new(),
            poll_timeout: Duration::from_millis(options.parse_or(POLL_TIMEOUT, 120_000u64)?),
            include_headers: options.flag("includeHeaders", false)?,
        })
    }

    pub fn schema(&self) -> SchemaRef {
        kafka_schema(self.include_headers)
    }

    /// The rows of `ranges`, in topic and partition order.
    pub fn read(&mut self, ranges: &[OffsetRange]) -> Result<crate::source::InputPartitions> {
        let ranges: Vec<&OffsetRange> = ranges.iter().filter(|r| r.until > r.from).collect();
        let n = crate::parallel::cores().min(ranges.len());
        while self.consumers.len() < n {
            let consumer = self.config.consumer(&self.group_id)?;
            self.consumers.push(consumer);
        }
        let schema = self.schema();
        let (config, timeout, headers) = (&self.config, self.poll_timeout, self.include_headers);
        let mut read: Vec<(TopicPartition, RecordBatch)> = std::thread::scope(|scope| {
            let workers: Vec<_> = self.consumers[..n]
                .iter()
                .enumerate()
                .map(|(i, consumer)| {
                    let mine: Vec<&OffsetRange> = ranges.iter().skip(i).step_by(n).copied().collect();
                    let schema = schema.clone();
                    scope.spawn(move || read_ranges(consumer, &mine, &schema, headers, config, timeout))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(Error::Internal("a Kafka reader thread panicked".into()))))
                .collect::<Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect();
        // One input partition per topic partition, as Spark's Kafka source reads them.
        read.sort_by(|a, b| a.0.cmp(&b.0));
        let mut partitions: Vec<(TopicPartition, Vec<RecordBatch>)> = Vec::new();
        for (tp, batch) in read {
            match partitions.last_mut() {
                Some((last, rows)) if *last == tp => rows.push(batch),
                _ => partitions.push((tp, vec![batch])),
            }
        }
        Ok(partitions.into_iter().map(|(_, rows)| rows).collect())
    }
}

/// The rows of one partition's range, built as they arrive.
struct RangeRows<'a> {
    range: &'a OffsetRange,
    done: bool,
    keys: BinaryBuilder,
    values: BinaryBuilder,
    offsets: Int64Builder,
    timestamps: TimestampMicrosecondBuilder,
    timestamp_types: Vec<i32>,
    headers: Option<ListBuilder<StructBuilder>>,
}

impl<'a> RangeRows<'a> {
    fn new(range: &'a OffsetRange, headers: bool) -> Self {
        let rows = (range.until - range.from).clamp(0, 1 << 20) as usize;
        RangeRows {
            range,
            done: false,
            keys: BinaryBuilder::with_capacity(rows, 0),
            values: BinaryBuilder::with_capacity(rows, rows * 64),
            offsets: Int64Builder::with_capacity(rows),
            timestamps: TimestampMicrosecondBuilder::with_capacity(rows),
            timestamp_types: Vec::with_capacity(rows),
            headers: headers.then(|| ListBuilder::new(StructBuilder::from_fields(header_fields(), 0))),
        }
    }

    fn push<M: Message>(&mut self, m: &M) {
        self.keys.append_option(m.key());
        self.values.append_option(m.payload());
        self.offsets.append_value(m.offset());
        let (ts, kind) = match m.timestamp() {
            Timestamp::CreateTime(ms) => (Some(ms * 1000), 0),
            Timestamp::LogAppendTime(ms) => (Some(ms * 1000), 1),
            Timestamp::NotAvailable => (None, -1),
        };
        self.timestamps.append_option(ts);
        self.timestamp_types.push(kind);
        if let Some(list) = &mut self.headers {
            let entries = list.values();
            if let Some(headers) = m.headers() {
                for h in headers.iter() {
                    entries.field_builder::<StringBuilder>(0).expect("header key builder").append_value(h.key);
                    entries.field_builder::<BinaryBuilder>(1).expect("header value builder").append_option(h.value);
                    entries.append(true);
                }
            }
            list.append(m.headers().is_some());
        }
    }

    fn finish(mut self, schema: &SchemaRef) -> Result<(TopicPartition, RecordBatch)> {
        let n = self.timestamp_types.len();
        let (topic, partition) = &self.range.partition;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()),
            Arc::new(StringArray::from(vec![topic.as_str(); n])),
            Arc::new(Int32Array::from(vec![*partition; n])),
            Arc::new(self.offsets.finish()),
            Arc::new(self.timestamps.finish()),
            Arc::new(Int32Array::from(std::mem::take(&mut self.timestamp_types))),
        ];
        if let Some(mut headers) = self.headers {
            columns.push(Arc::new(headers.finish()));
        }
        Ok((self.range.partition.clone(), RecordBatch::try_new(schema.clone(), columns)?))
    }
}

/// Reads `ranges` on one consumer until every range's end is reached.
fn read_ranges(
    consumer: &KafkaConsumer,
    ranges: &[&OffsetRange],
    schema: &SchemaRef,
    headers: bool,
    config: &KafkaConfig,
    timeout: Duration,
) -> Result<Vec<(TopicPartition, RecordBatch)>> {
    let mut tpl = TopicPartitionList::new();
    for r in ranges {
        tpl.add_partition_offset(&r.partition.0, r.partition.1, KafkaOffset::Offset(r.from))
            .map_err(|e| config.error("bad offset", e))?;
    }
    consumer.assign(&tpl).map_err(|e| config.error("cannot assign partitions", e))?;
    let mut rows: Vec<RangeRows> = ranges.iter().map(|r| RangeRows::new(r, headers)).collect();
    let mut remaining = rows.len();
    let mut last_progress = Instant::now();
    while remaining > 0 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let Some(r) =
                    rows.iter_mut().find(|r| r.range.partition.1 == m.partition() && r.range.partition.0 == m.topic())
                else {
                    continue;
                };
                if r.done || m.offset() < r.range.from {
                    continue;
                }
                if m.offset() < r.range.until {
                    r.push(&m);
                }
                if m.offset() >= r.range.until - 1 {
                    r.done = true;
                    remaining -= 1;
                }
            }
            Some(Err(e)) => {
                let reading: Vec<String> = rows
                    .iter()
                    .filter(|r| !r.done)
                    .map(|r| {
                        format!("{}-{} [{}, {})", r.range.partition.0, r.range.partition.1, r.range.from, r.range.until)
                    })
                    .collect();
                consumer.unassign().ok();
                return Err(config.error(format!("cannot read {}", reading.join(", ")), e));
            }
            None => {
                // Nothing more arrived: a range may end in records no reader gets (transaction
                // markers, aborted records under read_committed). The position says so.
                let positions = consumer.position().map_err(|e| config.error("cannot ask a consumer's position", e))?;
                for r in rows.iter_mut().filter(|r| !r.done) {
                    let (topic, partition) = &r.range.partition;
                    let position = positions.find_partition(topic, *partition).and_then(|e| e.offset().to_raw());
                    if position.is_some_and(|p| p >= r.range.until) {
                        r.done = true;
                        remaining -= 1;
                    }
                }
                if remaining > 0 && last_progress.elapsed() > timeout {
                    let waiting: Vec<String> = rows
                        .iter()
                        .filter(|r| !r.done)
                        .map(|r| {
                            format!("{}-{} up to offset {}", r.range.partition.0, r.range.partition.1, r.range.until)
                        })
                        .collect();
                    consumer.unassign().ok();
                    return Err(Error::Kafka(format!(
                        "no record arrived for {} ms ({POLL_TIMEOUT}) while reading {} from {}",
                        timeout.as_millis(),
                        waiting.join(", "),
                        config.bootstrap
                    )));
                }
            }
        }
    }
    consumer.unassign().map_err(|e| config.error("cannot unassign partitions", e))?;
    rows.into_iter().map(|r| r.finish(schema)).collect()
}
