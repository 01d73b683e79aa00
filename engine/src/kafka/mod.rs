//! Kafka: Spark's Kafka source, batch reader and sink, over librdkafka (crate `rdkafka`).
//!
//! ```text
//! client.rs    the `kafka.*` client settings (secrets redacted) and metadata requests
//! context.rs   keeps librdkafka's latest connection error, so a timeout can say why
//! offsets.rs   per-partition offsets as Spark writes them ({"events":{"0":23,"1":5}}),
//!              startingOffsets / endingOffsets / by-timestamp specs resolved on the broker
//! batch.rs     session.read().format("kafka"): one offset range as a static DataFrame
//! read.rs      offset ranges -> Arrow rows with Spark's schema (key, value, topic, ...),
//!              one consumer per core, partitions in order
//! source.rs    the streaming source: which partitions, how far each batch reads
//! sink.rs      rows -> records; at-least-once, or exactly-once in one transaction per batch
//! ```
//!
//! Offsets live in the query's checkpoint, not in consumer-group commits: a restart re-reads
//! exactly the batch that was planned and not committed. Offsets are never assumed dense (a
//! transaction's commit marker takes an offset), so a range is read until the consumer's
//! position passes its end, not until it has counted `end - start` records.

pub(crate) mod batch;
pub(crate) mod client;
pub(crate) mod context;
pub(crate) mod offsets;
pub(crate) mod read;
pub(crate) mod sink;
pub(crate) mod source;

pub use read::kafka_schema;
