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

use super::{BatchRead, BatchWrite, SinkConnector, SourceConnector};
use crate::error::Error;

pub(crate) static SOURCE: SourceConnector = SourceConnector {
    names: &["kafka"],
    options: || [source::READ_OPTIONS, source::STREAM_OPTIONS].concat(),
    schema: |o| {
        let ending = ["endingOffsets", "endingOffsetsByTimestamp", "endingTimestamp"];
        if let Some(key) = ending.into_iter().find(|k| o.get(k).is_some()) {
            return Err(Error::option(key, "ending offsets are not valid in streaming queries"));
        }
        Ok(kafka_schema(o.flag("includeHeaders", false)?))
    },
    create: |o, ctx| Ok(Box::new(source::KafkaSource::try_new(o, ctx)?)),
    batch: Some(BatchRead { options: || [source::READ_OPTIONS, batch::BATCH_OPTIONS].concat(), read: batch::read }),
};

pub(crate) static SINK: SinkConnector = SinkConnector {
    names: &["kafka"],
    options: sink::SINK_OPTIONS,
    modes: super::ALL_MODES,
    temporary_checkpoint: false,
    create: |a| Ok(Box::new(sink::KafkaSink::try_new(a.options, a.query_id, a.sink_dir)?)),
    // At least once: a static write has no checkpoint to make it exactly once.
    batch: Some(BatchWrite {
        options: &["kafka.*", "topic"],
        write: |o, schema, rows| {
            use crate::sink::Sink as _;
            sink::KafkaSink::try_new(o, uuid::Uuid::nil(), std::env::temp_dir())?.add_batch(0, schema, rows)
        },
    }),
};
