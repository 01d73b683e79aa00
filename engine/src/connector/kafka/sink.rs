//! `write_stream().format("kafka")`: rows to Kafka records, Spark's way, plus exactly-once.
//!
//! Columns, as in Spark: `value` (string or binary, required), `key`, `topic` (unless the
//! `topic` option names one, which wins), `partition`, `headers`
//! (`array<struct<key: string, value: binary>>`).
//!
//! `deliveryGuarantee`:
//! - `at-least-once` (the default, Spark's only mode): a batch re-run after a crash writes its
//!   records again.
//! - `exactly-once`: each batch is one Kafka transaction under a transactional id fixed by the
//!   query id, so a restarted query fences its predecessor. In the same transaction the sink
//!   commits a marker, "batch N is written", as the offset of a consumer group named after the
//!   transactional id on partition 0 of each topic the batch wrote. On restart a batch whose
//!   marker is there is skipped: a `read_committed` reader sees every batch exactly once. The
//!   topics the sink has written to are listed in the checkpoint (`sinks/kafka-topics.json`)
//!   before their first transaction, so the markers can be found again.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use arrow::array::{Array, AsArray, BinaryArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Message};

use super::client::KafkaConfig;
use super::context::{BrokerErrors, KafkaConsumer};
use crate::checkpoint::log::write_atomically;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::sink::Sink;

/// The options of the Kafka sink (besides every `kafka.*` producer option).
pub(crate) const SINK_OPTIONS: &[&str] = &["kafka.*", "topic", "deliveryGuarantee", "checkpointLocation"];

/// Remembers the first record the broker refused, and the latest connection error.
struct Deliveries {
    failed: Mutex<Option<String>>,
    errors: BrokerErrors,
}

impl ClientContext for Deliveries {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            let mut failed = self.failed.lock().expect("delivery lock poisoned");
            failed
                .get_or_insert_with(|| format!("a record for {}-{} was not delivered: {e}", m.topic(), m.partition()));
        }
    }
}

/// One batch's rows as record parts, every column cast to what the producer needs.
struct Records {
    rows: usize,
    topics: Option<StringArray>,
    keys: Option<BinaryArray>,
    values: BinaryArray,
    partitions: Option<Int32Array>,
    headers: Option<HeaderColumn>,
}

impl Records {
    fn try_new(batch: &RecordBatch, topic_option: Option<&str>) -> Result<Self> {
        let column = |name: &str| batch.schema().index_of(name).ok().map(|i| batch.column(i).clone());
        let cast = |name: &str, to: &DataType| -> Result<Option<arrow::array::ArrayRef>> {
            column(name)
                .map(|c| {
                    arrow::compute::cast(&c, to).map_err(|e| {
                        Error::Analysis(format!("the Kafka sink's '{name}' column must be {to}-compatible: {e}"))
                    })
                })
                .transpose()
        };
        let values = cast("value", &DataType::Binary)?.ok_or_else(|| {
            Error::Analysis("Required attribute 'value' not found: the Kafka sink writes a value column".into())
        })?;
        let topics = match topic_option {
            Some(_) => None,
            None => Some(cast("topic", &DataType::Utf8)?.ok_or_else(|| {
                Error::Analysis(
                    "topic option required when no 'topic' attribute is present: give .option(\"topic\", ..)".into(),
                )
            })?),
        };
        Ok(Records {
            rows: batch.num_rows(),
            topics: topics.map(|t| t.as_string::<i32>().clone()),
            keys: cast("key", &DataType::Binary)?.map(|k| k.as_binary::<i32>().clone()),
            values: values.as_binary::<i32>().clone(),
            partitions: cast("partition", &DataType::Int32)?
                .map(|p| p.as_primitive::<arrow::datatypes::Int32Type>().clone()),
            headers: column("headers").map(|h| HeaderColumn::try_new(&h)).transpose()?,
        })
    }

    fn topic<'a>(&'a self, row: usize, option: Option<&'a str>) -> Result<&'a str> {
        match (&self.topics, option) {
            (_, Some(t)) => Ok(t),
            (Some(topics), None) if topics.is_valid(row) => Ok(topics.value(row)),
            _ => Err(Error::Analysis(format!("row {row} has a null topic and no topic option is set"))),
        }
    }

    fn headers(&self, row: usize) -> Option<OwnedHeaders> {
        let h = self.headers.as_ref().filter(|h| h.list.is_valid(row))?;
        let offsets = h.list.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let mut headers = OwnedHeaders::new_with_capacity(end - start);
        for i in start..end {
            let value = h.values.is_valid(i).then(|| h.values.value(i));
            headers = headers.insert(Header { key: h.keys.value(i), value });
        }
        Some(headers)
    }
}

/// The `headers` column, `array<struct<key: string, value: binary>>`, its entries cast once.
struct HeaderColumn {
    list: arrow::array::ListArray,
    keys: StringArray,
    values: BinaryArray,
}

impl HeaderColumn {
    fn try_new(column: &arrow::array::ArrayRef) -> Result<Self> {
        let wrong = || {
            Error::Analysis(format!(
                "the Kafka sink's 'headers' column must be array<struct<key: string, value: binary>>, not {}",
                crate::ddl::spark_type_name(column.data_type())
            ))
        };
        let list = column.as_list_opt::<i32>().ok_or_else(wrong)?.clone();
        let entries = list.values().as_struct_opt().ok_or_else(wrong)?;
        let (keys, values) = match (entries.column_by_name("key"), entries.column_by_name("value")) {
            (Some(k), Some(v)) => (
                arrow::compute::cast(k, &DataType::Utf8).map_err(|_| wrong())?,
                arrow::compute::cast(v, &DataType::Binary).map_err(|_| wrong())?,
            ),
            _ => return Err(wrong()),
        };
        Ok(HeaderColumn { list, keys: keys.as_string::<i32>().clone(), values: values.as_binary::<i32>().clone() })
    }
}

/// How a batch's records reach Kafka.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Guarantee {
    AtLeastOnce,
    ExactlyOnce,
}

/// The Kafka sink of one query run.
pub(crate) struct KafkaSink {
    config: KafkaConfig,
    producer: BaseProducer<Deliveries>,
    topic: Option<String>,
    guarantee: Guarantee,
    transactional_id: String,
    /// Exactly-once: the topics ever written (their partition 0 holds the markers).
    topics_path: PathBuf,
    topics: BTreeSet<String>,
    /// Exactly-once: the last batch whose transaction committed, found at start.
    last_written: Option<u64>,
}

impl KafkaSink {
    /// `dir` is the sink's directory in the checkpoint; `query_id` fixes the transactional id.
    pub(crate) fn try_new(options: &Options, query_id: uuid::Uuid, dir: PathBuf) -> Result<Self> {
        let config = KafkaConfig::try_new(options)?;
        let guarantee = match options.get("deliveryGuarantee").map(|g| g.trim().to_lowercase()).as_deref() {
            None | Some("at-least-once") => Guarantee::AtLeastOnce,
            Some("exactly-once") => Guarantee::ExactlyOnce,
            Some(other) => {
                return Err(Error::option(
                    "deliveryGuarantee",
                    format!("'{other}' is neither at-least-once nor exactly-once"),
                ));
            }
        };
        let transactional_id =
            options.get("kafka.transactional.id").map(String::from).unwrap_or_else(|| format!("brooklet-{query_id}"));
        let mut client = config.with_defaults(&[]);
        if guarantee == Guarantee::ExactlyOnce {
            client.set("transactional.id", &transactional_id);
        } else if options.get("kafka.transactional.id").is_some() {
            return Err(Error::option("kafka.transactional.id", "is only used with deliveryGuarantee=exactly-once"));
        }
        let producer: BaseProducer<Deliveries> = client
            .create_with_context(Deliveries { failed: Mutex::default(), errors: config.errors.clone() })
            .map_err(|e| config.error("cannot create a Kafka producer", e))?;
        let topics_path = dir.join("kafka-topics.json");
        let mut sink = KafkaSink {
            topic: options.get("topic").map(String::from),
            producer,
            guarantee,
            transactional_id,
            topics: BTreeSet::new(),
            topics_path,
            last_written: None,
            config,
        };
        if guarantee == Guarantee::ExactlyOnce {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            // Fences an earlier run with the same id and aborts its open transaction.
            sink.producer
                .init_transactions(sink.config.api_timeout)
                .map_err(|e| sink.error(format!("cannot start transactions as '{}'", sink.transactional_id), e))?;
            sink.topics = sink.read_topics()?;
            sink.last_written = sink.read_markers()?;
        }
        Ok(sink)
    }

    /// [`KafkaConfig::error`], after librdkafka's queued logs (where a connection error
    /// arrives) are delivered.
    fn error(&self, what: impl std::fmt::Display, e: KafkaError) -> Error {
        self.producer.poll(Duration::from_millis(10));
        self.config.error(what, e)
    }

    fn read_topics(&self) -> Result<BTreeSet<String>> {
        match std::fs::read(&self.topics_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::checkpoint(&self.topics_path, format!("is not a JSON list of topics: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(Error::io(&self.topics_path, e)),
        }
    }

    /// A consumer in the marker group, only to read and name its offsets.
    fn marker_consumer(&self) -> Result<KafkaConsumer> {
        self.config.consumer(&self.transactional_id)
    }

    /// The last batch whose transaction committed: the highest marker on any topic.
    fn read_markers(&self) -> Result<Option<u64>> {
        if self.topics.is_empty() {
            return Ok(None);
        }
        let mut tpl = TopicPartitionList::new();
        for topic in &self.topics {
            tpl.add_partition(topic, 0);
        }
        let committed = self
            .marker_consumer()?
            .committed_offsets(tpl, self.config.api_timeout)
            .map_err(|e| self.error("cannot read the exactly-once sink's batch markers", e))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| e.offset().to_raw())
            .filter(|o| *o > 0)
            .map(|o| o as u64 - 1)
            .max())
    }

    /// The batch's rows as records, and the topics they go to.
    fn prepare(&self, batches: &[RecordBatch]) -> Result<(Vec<Records>, BTreeSet<String>)> {
        let records = batches.iter().map(|b| Records::try_new(b, self.topic.as_deref())).collect::<Result<Vec<_>>>()?;
        let mut topics = BTreeSet::new();
        for r in &records {
            for row in 0..r.rows {
                let topic = r.topic(row, self.topic.as_deref())?;
                if !topics.contains(topic) {
                    topics.insert(topic.to_string());
                }
            }
        }
        Ok((records, topics))
    }

    /// Queues every record; waits for the broker to take them all.
    fn produce(&self, batches: &[Records]) -> Result<()> {
        for records in batches {
            for row in 0..records.rows {
                let topic = records.topic(row, self.topic.as_deref())?;
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
                if records.values.is_valid(row) {
                    record = record.payload(records.values.value(row));
                }
                if let Some(keys) = records.keys.as_ref().filter(|k| k.is_valid(row)) {
                    record = record.key(keys.value(row));
                }
                if let Some(p) = records.partitions.as_ref().filter(|p| p.is_valid(row)) {
                    record = record.partition(p.value(row));
                }
                if let Some(h) = records.headers(row) {
                    record = record.headers(h);
                }
                let mut pending = record;
                loop {
                    match self.producer.send(pending) {
                        Ok(()) => break,
                        Err((
                            rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                            back,
                        )) => {
                            self.producer.poll(Duration::from_millis(10));
                            pending = back;
                        }
                        Err((e, _)) => return Err(self.error(format!("cannot send a record to '{topic}'"), e)),
                    }
                }
            }
        }
        self.producer.flush(Timeout::Never).map_err(|e| self.error("cannot deliver the batch", e))?;
        match self.producer.context().failed.lock().expect("delivery lock poisoned").take() {
            Some(failed) => Err(Error::Kafka(format!("{failed} (bootstrap servers {})", self.config.bootstrap))),
            None => Ok(()),
        }
    }

    /// One transaction: the rows, then the marker "batch `batch_id` is written".
    fn produce_transaction(&mut self, batch_id: u64, batches: &[RecordBatch]) -> Result<()> {
        let (records, written) = self.prepare(batches)?;
        // The topics must be on disk before a transaction writes a marker to them.
        if !written.is_subset(&self.topics) {
            let topics: BTreeSet<String> = self.topics.union(&written).cloned().collect();
            write_atomically(&self.topics_path, serde_json::to_string(&topics).expect("topics to JSON").as_bytes())?;
            self.topics = topics;
        }
        let error = |what: &str, e| self.error(format!("batch {batch_id}: {what}"), e);
        self.producer.begin_transaction().map_err(|e| error("cannot begin a transaction", e))?;
        let result = self.produce(&records).and_then(|()| {
            crate::fault::point("kafka-sent");
            let mut markers = TopicPartitionList::new();
            for topic in &written {
                markers
                    .add_partition_offset(topic, 0, KafkaOffset::Offset(batch_id as i64 + 1))
                    .map_err(|e| error("bad marker", e))?;
            }
            let group = self.marker_consumer()?.group_metadata().ok_or_else(|| {
                Error::Internal(format!("consumer group '{}' has no metadata", self.transactional_id))
            })?;
            self.producer
                .send_offsets_to_transaction(&markers, &group, self.config.api_timeout)
                .map_err(|e| error("cannot add the batch marker to the transaction", e))?;
            self.producer
                .commit_transaction(self.config.api_timeout)
                .map_err(|e| error("cannot commit the transaction", e))
        });
        if result.is_err() {
            // Nothing of this batch becomes visible to read_committed readers.
            let _ = self.producer.abort_transaction(self.config.api_timeout);
        }
        result
    }
}

impl Sink for KafkaSink {
    fn add_batch(&mut self, batch_id: u64, _schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        match self.guarantee {
            Guarantee::AtLeastOnce => self.produce(&self.prepare(batches)?.0),
            Guarantee::ExactlyOnce if self.last_written.is_some_and(|last| batch_id <= last) => {
                tracing::info!(batch_id, "batch already written in a committed transaction; skipped");
                Ok(())
            }
            Guarantee::ExactlyOnce => self.produce_transaction(batch_id, batches),
        }
    }

    fn description(&self) -> String {
        let target = self.topic.as_deref().unwrap_or("<topic column>");
        match self.guarantee {
            Guarantee::AtLeastOnce => format!("KafkaSink[{target}]"),
            Guarantee::ExactlyOnce => format!("KafkaSink[{target}, exactly-once as {}]", self.transactional_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_headers_column_of_the_wrong_type_is_an_error_naming_the_type_wanted() {
        let schema = crate::ddl::parse_schema("value STRING, headers STRING").unwrap();
        let columns: Vec<arrow::array::ArrayRef> =
            vec![std::sync::Arc::new(StringArray::from(vec!["v"])), std::sync::Arc::new(StringArray::from(vec!["h"]))];
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let e = Records::try_new(&batch, Some("t")).err().unwrap().to_string();
        assert!(e.contains("must be array<struct<key: string, value: binary>>, not string"), "{e}");
    }
}
