//! Chapter 11 — Kafka as a batch source: read a fixed range of a topic as a static DataFrame,
//! by offsets or by time, to count, backfill, check data quality and migrate to Parquet.
//!
//! Needs a broker: `scripts/kafka.sh start`, then `cargo run --example ch11_kafka_batch`.

use anyhow::Context;
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use brooklet_book::kafka::{bootstrap, event_records, produce, produce_in_transaction, producer, recreate_topic};

const TOPIC: &str = "ch11-events";

/// Events from 09:00 by 12 users; about 5% delivered twice, as a retrying producer would.
fn generator() -> EventGenerator {
    EventGenerator::new(11, "2024-01-01T09:00:00Z", 12).with_duplicates(5)
}

/// Epoch milliseconds of a time on the book's day.
fn at(time: &str) -> anyhow::Result<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(&format!("2024-01-01T{time}Z")).context("a time like 09:10:00")?;
    Ok(t.timestamp_millis())
}

// ANCHOR: kafka_range
/// The records of `TOPIC` from `starting` to `ending` (offsets as Spark takes them:
/// `earliest`, `latest`, or JSON per partition), as a static DataFrame.
pub fn kafka_range(session: &Session, bootstrap: &str, starting: &str, ending: &str) -> brooklet::Result<DataFrame> {
    session
        .read()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", TOPIC)
        .option("startingOffsets", starting)
        .option("endingOffsets", ending)
        .load_source()
}
// ANCHOR_END: kafka_range

// ANCHOR: summary
/// Per partition: how many records, which offsets, which record times.
pub fn per_partition(range: &DataFrame) -> brooklet::Result<String> {
    range.create_or_replace_temp_view("kafka_range")?;
    range
        .session()
        .sql(
            "SELECT partition, count(*) AS records, min(\"offset\") AS first, max(\"offset\") AS last, \
             min(timestamp) AS oldest, max(timestamp) AS newest \
             FROM kafka_range GROUP BY partition ORDER BY partition",
        )?
        .show_string(20, 0)
}
// ANCHOR_END: summary

// ANCHOR: events
/// The JSON values parsed, with where each record is in Kafka.
pub fn events(range: DataFrame) -> brooklet::Result<DataFrame> {
    range.select(vec![
        col("partition"),
        col("offset"),
        from_json(col("value"), EVENT_SCHEMA).alias("event"),
        col("value"),
    ])
}
// ANCHOR_END: events

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let bootstrap = bootstrap().context("no Kafka broker answers: run scripts/kafka.sh start")?;
    let n: usize = chapter.param("events", 300)?;
    let session = &chapter.session;

    chapter.cell("produce", |out| {
        // ANCHOR: produce
        recreate_topic(&bootstrap, TOPIC, 3)?;
        let mut records: Vec<_> = event_records(generator().events(n)).collect();
        records[40].value = r#"{"event_id": "evt-000041", "timestamp": "#.into(); // cut short
        records[120].value = "not json".into();
        let half = records.split_off(n / 2);
        produce(&producer(&bootstrap)?, TOPIC, records, || {})?;
        let (in_transaction, rest) = (half[..4].to_vec(), half[4..].to_vec());
        produce_in_transaction(&bootstrap, TOPIC, in_transaction)?;
        produce(&producer(&bootstrap)?, TOPIC, rest, || {})?;
        out.print(format!("{n} records in {TOPIC} (3 partitions): 2 malformed, 4 written in a transaction"));
        // ANCHOR_END: produce
        Ok(())
    })?;
    chapter.show("whole_topic", || {
        // ANCHOR: whole_topic
        let all = kafka_range(session, &bootstrap, "earliest", "latest")?;
        // ANCHOR_END: whole_topic
        Ok(per_partition(&all)?)
    })?;
    chapter.show("offset_range", || {
        // ANCHOR: offset_range
        let range = kafka_range(
            session,
            &bootstrap,
            r#"{"ch11-events": {"0": 10, "1": 10, "2": -2}}"#,
            r#"{"ch11-events": {"0": 20, "1": 15, "2": 5}}"#,
        )?;
        // ANCHOR_END: offset_range
        Ok(per_partition(&range)?)
    })?;
    chapter.show("backfill", || {
        // ANCHOR: backfill
        // A downstream job missed the window 09:05 to 09:10: recount it from Kafka.
        let (from, to) = (at("09:05:00")?, at("09:10:00")?);
        let range = session
            .read()
            .format("kafka")
            .option("kafka.bootstrap.servers", &bootstrap)
            .option("subscribe", TOPIC)
            .option("startingTimestamp", from)
            .option("endingTimestamp", to)
            .load_source()?;
        let counts = events(range)?
            .select_expr(&["event.timestamp AS timestamp", "event.event_type AS event_type"])?
            .filter(
                format!("timestamp >= to_timestamp_millis({from}) AND timestamp < to_timestamp_millis({to})").as_str(),
            )?
            .group_by(["event_type"])?
            .count()?
            .order_by(vec![col("event_type").sort(true, true)])?;
        // ANCHOR_END: backfill
        Ok(counts.show_string(50, 0)?)
    })?;
    let all = events(kafka_range(session, &bootstrap, "earliest", "latest")?)?;
    all.create_or_replace_temp_view("events")?;
    chapter.show("gaps", || {
        // ANCHOR: gaps
        let gaps = session.sql(
            "SELECT partition, previous + 1 AS missing_from, \"offset\" - 1 AS missing_to \
             FROM (SELECT partition, \"offset\", \
                     lag(\"offset\") OVER (PARTITION BY partition ORDER BY \"offset\") AS previous \
                   FROM events) \
             WHERE \"offset\" - previous > 1 ORDER BY partition",
        )?;
        // ANCHOR_END: gaps
        Ok(gaps.show_string(20, 0)?)
    })?;
    chapter.show("duplicates", || {
        // ANCHOR: duplicates
        let duplicates = session.sql(
            "SELECT event.event_id AS event_id, count(*) AS copies, \
                    string_agg(concat(partition, '@', \"offset\"), ' ' ORDER BY \"offset\") AS at \
             FROM events WHERE event.event_id IS NOT NULL \
             GROUP BY event.event_id HAVING count(*) > 1 ORDER BY event_id",
        )?;
        // ANCHOR_END: duplicates
        Ok(duplicates.show_string(20, 0)?)
    })?;
    chapter.show("malformed", || {
        // ANCHOR: malformed
        let malformed = session.sql(
            "SELECT partition, \"offset\", CAST(value AS STRING) AS value \
             FROM events WHERE event.event_id IS NULL OR event.timestamp IS NULL",
        )?;
        // ANCHOR_END: malformed
        Ok(malformed.show_string(20, 0)?)
    })?;
    chapter.show("migrate", || {
        // ANCHOR: migrate
        let clean = session.sql(
            "SELECT event.event_id AS event_id, event.timestamp AS timestamp, event.user_id AS user_id, \
                    event.event_type AS event_type, event.value AS value, partition, \"offset\" \
             FROM events WHERE event.event_id IS NOT NULL AND event.timestamp IS NOT NULL",
        )?;
        let dir = chapter.path("migrated");
        clean.write().format("parquet").save(&dir)?;
        let migrated = session.read().parquet(&dir)?;
        migrated.create_or_replace_temp_view("migrated")?;
        let check = session.sql(
            "SELECT event_type, count(*) AS events, round(sum(value), 2) AS total \
             FROM migrated GROUP BY event_type ORDER BY event_type",
        )?;
        // ANCHOR_END: migrate
        Ok(check.show_string(20, 0)?)
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
