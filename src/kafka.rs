//! The Kafka broker the Kafka chapters and tests use, and what they do to it besides
//! streaming: find it, create topics with fixed partition counts, produce records with fixed
//! keys and timestamps (so every run prints the same batches), and read a topic back.
//!
//! The broker is whatever `BROOKLET_KAFKA_BOOTSTRAP` names, else the one `scripts/kafka.sh
//! start` runs on 127.0.0.1:39092. Tests skip when neither answers, unless
//! `BROOKLET_REQUIRE_KAFKA` is set (the test command sets it after starting the broker).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Where `scripts/kafka.sh` starts the broker.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:39092";

/// Why a chapter or test that needs Kafka did not run.
pub const NO_BROKER: &str =
    "no Kafka broker answers (start one with scripts/kafka.sh start, or set BROOKLET_KAFKA_BOOTSTRAP)";

/// The bootstrap servers to use, if a broker answers there.
pub fn bootstrap() -> Option<String> {
    let servers = std::env::var("BROOKLET_KAFKA_BOOTSTRAP").unwrap_or_else(|_| DEFAULT_BOOTSTRAP.to_string());
    let first = servers.split(',').next()?.trim().to_string();
    let addr = first.to_socket_addrs().ok()?.next()?;
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok().map(|_| servers)
}

/// [`bootstrap`] for a test: `None` (skip) when no broker answers, unless
/// `BROOKLET_REQUIRE_KAFKA` is set, then a failure that says how to start one.
pub fn broker_for_test(test: &str) -> Option<String> {
    let found = bootstrap();
    if found.is_none() {
        if std::env::var_os("BROOKLET_REQUIRE_KAFKA").is_some() {
            panic!("{test}: {NO_BROKER}");
        }
        eprintln!("skipped {test}: {NO_BROKER}");
    }
    found
}

fn admin(bootstrap: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(ClientConfig::new().set("bootstrap.servers", bootstrap).create()?)
}

/// Deletes `topic` if it exists, then creates it with `partitions` partitions, and waits until
/// every partition answers. Records are kept forever (`retention.ms=-1`): the book's events
/// are dated 2024, and a broker deletes records older than its retention (7 days by default)
/// by their timestamps.
pub fn recreate_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    // A topic that does not exist yet is fine: its result is an error we ignore.
    let _ = futures::executor::block_on(admin.delete_topics(&[topic], &options))?;
    for attempt in 0.. {
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1)).set("retention.ms", "-1");
        let results = futures::executor::block_on(admin.create_topics(&[new], &options))?;
        match results.into_iter().next() {
            Some(Ok(_)) => break,
            // The broker may still be deleting the topic of the same name.
            Some(Err(_)) if attempt < 50 => std::thread::sleep(Duration::from_millis(100)),
            Some(Err((t, code))) => bail!("cannot create topic {t}: {code}"),
            None => bail!("no answer creating topic {topic}"),
        }
    }
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "brooklet-book").create()?;
    for p in 0..partitions {
        consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .with_context(|| format!("partition {topic}-{p} does not answer"))?;
    }
    Ok(())
}

/// Grows `topic` to `total` partitions.
pub fn add_partitions(bootstrap: &str, topic: &str, total: usize) -> anyhow::Result<()> {
    let new = rdkafka::admin::NewPartitions::new(topic, total);
    let done = futures::executor::block_on(admin(bootstrap)?.create_partitions(&[new], &AdminOptions::new()))?;
    for result in done {
        result.map_err(|(t, code)| anyhow::anyhow!("cannot add partitions to {t}: {code}"))?;
    }
    Ok(())
}

/// Deletes the records of `topic`'s `partition` before `offset`, as retention would.
pub fn delete_records_before(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    let done = futures::executor::block_on(admin(bootstrap)?.delete_records(&tpl, &AdminOptions::new()))?;
    for e in done.elements() {
        e.error().with_context(|| format!("cannot delete records of {topic}-{partition}"))?;
    }
    Ok(())
}

/// One record to produce: its value text (JSON in most chapters) or bytes (Avro).
#[derive(Debug, Clone, PartialEq)]
pub struct Record<V = String> {
    /// `None` for a record without a key.
    pub key: Option<String>,
    /// The value.
    pub value: V,
    /// Its partition; `None` lets the producer choose from the key.
    pub partition: Option<i32>,
    /// Its CreateTime, epoch milliseconds.
    pub timestamp_ms: i64,
}

/// A producer with the settings the book uses (idempotent, so a retry never duplicates).
pub fn producer(bootstrap: &str) -> anyhow::Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?)
}

/// Produces `records` to `topic` and waits until the broker has them all. `progress` is
/// called after each record is queued.
pub fn produce<V: AsRef<[u8]>>(
    producer: &BaseProducer,
    topic: &str,
    records: impl IntoIterator<Item = Record<V>>,
    mut progress: impl FnMut(),
) -> anyhow::Result<()> {
    for r in records {
        let mut record = BaseRecord::to(topic).payload(r.value.as_ref()).timestamp(r.timestamp_ms);
        if let Some(k) = &r.key {
            record = record.key(k.as_bytes());
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        let mut pending = record;
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    producer.poll(Duration::from_millis(10));
                    pending = back;
                }
                Err((e, _)) => return Err(e).context(format!("cannot produce to {topic}")),
            }
        }
        progress();
    }
    producer.flush(Duration::from_secs(60)).context("cannot deliver the records")?;
    Ok(())
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value, as text.
    pub value: String,
}

/// Produces `records` to `topic` in one committed transaction (its commit marker takes one
/// offset in each partition it wrote to).
pub fn produce_in_transaction(bootstrap: &str, topic: &str, records: Vec<Record>) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", format!("brooklet-book-{topic}"))
        .create()?;
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout)?;
    producer.begin_transaction()?;
    produce(&producer, topic, records, || {})?;
    producer.commit_transaction(timeout)?;
    Ok(())
}

/// Every record of `topic` now, in partition and offset order, read with `isolation`
/// (`read_committed` or `read_uncommitted`).
pub fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> anyhow::Result<Vec<ReadRecord>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "brooklet-book-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, Duration::from_secs(10))?;
        tpl.add_partition_offset(topic, *p, Offset::Offset(low))?;
        ends.push((*p, high));
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let positions = consumer.position()?;
        let done = ends.iter().all(|(p, high)| {
            positions.find_partition(topic, *p).and_then(|e| e.offset().to_raw()).is_some_and(|o| o >= *high)
                || *high == 0
        });
        if done {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("reading {topic} back took more than 30 s");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            out.push(ReadRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default(),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// The book's events as Kafka records: key `user_id` (so a user's events share a partition
/// and stay in order), value the JSON line, CreateTime the event's own timestamp.
pub fn event_records(events: impl IntoIterator<Item = crate::events::Event>) -> impl Iterator<Item = Record> {
    events.into_iter().map(|e| Record {
        key: Some(e.user_id.clone()),
        value: e.to_json(),
        partition: None,
        timestamp_ms: e.timestamp_ms,
    })
}

/// The book's events as Kafka records as [`event_records`] makes them, the value in Avro in
/// the Confluent wire format with the registry's `schema_id` for
/// [`EVENT_AVRO_SCHEMA`](crate::avro_events::EVENT_AVRO_SCHEMA).
pub fn avro_event_records(
    events: impl IntoIterator<Item = crate::events::Event>,
    schema_id: u32,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Record<Vec<u8>>>>> {
    let avro = crate::avro_events::AvroEvents::new()?;
    Ok(events.into_iter().map(move |e| {
        Ok(Record {
            key: Some(e.user_id.clone()),
            value: avro.encode_framed(&e, schema_id)?,
            partition: None,
            timestamp_ms: e.timestamp_ms,
        })
    }))
}

/// Paces a producer at `per_second` records per second (`0`: as fast as the broker takes
/// them).
pub struct Pacer {
    per_second: u64,
    started: std::time::Instant,
    sent: u64,
}

impl Pacer {
    /// A pacer starting now.
    pub fn new(per_second: u64) -> Self {
        Pacer { per_second, started: std::time::Instant::now(), sent: 0 }
    }

    /// Counts one record, sleeping first if it would be ahead of the rate.
    pub fn tick(&mut self) {
        self.sent += 1;
        if self.per_second == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.sent as f64 / self.per_second as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}
