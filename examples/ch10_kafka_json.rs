//! Chapter 10 — Kafka with JSON messages: produce events to a topic, read them with the Kafka
//! source, parse them with `from_json`, count them in event-time windows, write the counts
//! back to Kafka with the exactly-once sink, and read them back with `read_committed`.
//!
//! Needs a broker: `scripts/kafka.sh start`, then `cargo run --example ch10_kafka_json`.

use std::path::Path;

use anyhow::Context;
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use brooklet_book::kafka::{bootstrap, event_records, produce, producer, recreate_topic};

/// The topic the events go to, and the one the counts go to.
const EVENTS: &str = "ch10-events";
const COUNTS: &str = "ch10-counts";

/// Events from 09:00 by 8 users, about 10% up to 8 minutes late.
fn generator() -> EventGenerator {
    EventGenerator::new(10, "2024-01-01T09:00:00Z", 8).with_late_events(10, 8 * 60_000)
}

// ANCHOR: source
/// The Kafka source: every record of `EVENTS` from the first, at most `per_batch` per batch.
pub fn kafka_events(session: &Session, bootstrap: &str, per_batch: u64) -> brooklet::Result<DataFrame> {
    session
        .read_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", EVENTS)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", per_batch)
        .load_source()
}
// ANCHOR_END: source

// ANCHOR: parse
/// Each record's JSON value as the event's columns, with where it was in Kafka.
pub fn parsed(raw: DataFrame) -> brooklet::Result<DataFrame> {
    raw.select(vec![from_json(col("value"), EVENT_SCHEMA).alias("event"), col("partition"), col("offset")])?
        .select_expr(&[
            "event.event_id AS event_id",
            "event.timestamp AS timestamp",
            "event.user_id AS user_id",
            "event.event_type AS event_type",
            "event.value AS value",
            "partition",
            "\"offset\"",
        ])
}
// ANCHOR_END: parse

// ANCHOR: purchases
/// Filter and enrich: purchases and carts only, with the amount's tier.
pub fn purchases(events: DataFrame) -> brooklet::Result<DataFrame> {
    events.filter("event_type IN ('purchase', 'add_to_cart')")?.select_expr(&[
        "partition",
        "\"offset\"",
        "timestamp",
        "user_id",
        "event_type",
        "value",
        "CASE WHEN value >= 100 THEN 'large' ELSE 'small' END AS tier",
    ])
}
// ANCHOR_END: purchases

// ANCHOR: windowed
/// Events per type and 5-minute window, final once the watermark (5 minutes behind the
/// latest event) passes the window's end, as JSON records keyed by event type, written to
/// `COUNTS` in one Kafka transaction per batch.
pub fn start_counts(events: DataFrame, bootstrap: &str, checkpoint: &Path) -> brooklet::Result<StreamingQuery> {
    events
        .with_watermark("timestamp", "5 minutes")?
        .group_by([window(col("timestamp"), "5 minutes"), col("event_type")])?
        .count()?
        .select_expr(&[
            "event_type AS key",
            "to_json(named_struct('start', window.start, 'event_type', event_type, 'count', count)) AS value",
        ])?
        .write_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", COUNTS)
        .option("deliveryGuarantee", "exactly-once")
        .option("checkpointLocation", checkpoint.display())
        .output_mode("append")
        .query_name("counts")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: windowed

// ANCHOR: read_back
/// The counts topic as a `read_committed` consumer sees it: only committed transactions.
pub fn committed_counts(session: &Session, bootstrap: &str) -> brooklet::Result<DataFrame> {
    session
        .read()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("kafka.isolation.level", "read_committed")
        .option("subscribe", COUNTS)
        .load_source()?
        .select_expr(&["CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition", "\"offset\""])?
        .order_by(vec![col("value").sort(true, true)])
}
// ANCHOR_END: read_back

/// A checkpoint file's text, for the book.
fn file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let bootstrap = bootstrap().context("no Kafka broker answers: run scripts/kafka.sh start")?;
    let events: usize = chapter.param("events", 200)?;
    let per_batch: u64 = chapter.param("max_offsets_per_trigger", 80)?;
    let session = &chapter.session;
    let checkpoint = chapter.path("checkpoint");

    chapter.cell("produce", |out| {
        // ANCHOR: produce
        recreate_topic(&bootstrap, EVENTS, 4)?;
        recreate_topic(&bootstrap, COUNTS, 2)?;
        let records: Vec<_> = event_records(generator().events(events)).collect();
        out.print(format!("first record: key {:?}, value {}", records[0].key, records[0].value));
        produce(&producer(&bootstrap)?, EVENTS, records, || {})?;
        out.print(format!("{events} events in {EVENTS} (4 partitions)"));
        // ANCHOR_END: produce
        Ok(())
    })?;
    chapter.cell("schema", |out| {
        // ANCHOR: schema
        let raw = kafka_events(session, &bootstrap, per_batch)?;
        out.print(raw.schema_tree());
        // ANCHOR_END: schema
        Ok(())
    })?;
    chapter.cell("filter", |_| {
        // ANCHOR: filter
        let query = purchases(parsed(kafka_events(session, &bootstrap, per_batch)?)?)?
            .write_stream()
            .format("console")
            .option("truncate", false)
            .query_name("purchases")
            .trigger(Trigger::AvailableNow)
            .start()?;
        query.await_termination()?;
        // ANCHOR_END: filter
        Ok(())
    })?;
    chapter.cell("counts", |out| {
        // ANCHOR: counts
        let query = start_counts(parsed(kafka_events(session, &bootstrap, per_batch)?)?, &bootstrap, &checkpoint)?;
        query.await_termination()?;
        for p in query.recent_progress() {
            out.print(format!("batch {}: {} records read, sink {}", p.batch_id, p.num_input_rows, p.sink.description));
        }
        // ANCHOR_END: counts
        Ok(())
    })?;
    chapter.show("read_back", || Ok(committed_counts(session, &bootstrap)?.show_string(100, 0)?))?;
    chapter.cell("on_disk", |out| {
        // ANCHOR: on_disk
        out.print(format!(
            "sources/0/initial-offsets.json\n  {}",
            file(&checkpoint.join("sources/0/initial-offsets.json"))?
        ));
        let offsets = file(&checkpoint.join("offsets/2"))?;
        out.print(format!("offsets/2\n  {}", offsets.lines().collect::<Vec<_>>().join("\n  ")));
        out.print(format!("sinks/kafka-topics.json\n  {}", file(&checkpoint.join("sinks/kafka-topics.json"))?));
        // ANCHOR_END: on_disk
        Ok(())
    })?;
    chapter.cell("restart", |out| {
        // ANCHOR: restart
        let more: Vec<_> = event_records(generator().events(events + 80)).skip(events).collect();
        produce(&producer(&bootstrap)?, EVENTS, more, || {})?;
        let query = start_counts(parsed(kafka_events(session, &bootstrap, per_batch)?)?, &bootstrap, &checkpoint)?;
        query.await_termination()?;
        for p in query.recent_progress() {
            let from = p.sources[0].start_offset.as_ref().map_or("-".into(), |o| o.to_string());
            out.print(format!("batch {}: {} records from {from}", p.batch_id, p.num_input_rows));
        }
        let counts = committed_counts(session, &bootstrap)?.count()?;
        out.print(format!("{COUNTS} holds {counts} committed records"));
        // ANCHOR_END: restart
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
