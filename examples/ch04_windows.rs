//! Chapter 4 — Tumbling and sliding windows: grouping a stream by event time, and what
//! overlapping windows do to each row, batch by batch.
//!
//! Run: `cargo run --example ch04_windows`

use std::path::Path;

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// Three files of 40 events from 09:58:30, about two minutes each, one file per batch.
pub fn events(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    session.read_stream().format("json").schema(EVENT_SCHEMA).option("maxFilesPerTrigger", 1).load(input)
}

// ANCHOR: tumbling
/// Five-minute windows per event type: how many events, their average and total value.
pub fn tumbling(events: DataFrame) -> brooklet::Result<StreamingQuery> {
    events
        .group_by([window(col("timestamp"), "5 minutes"), col("event_type")])?
        .agg(["count(*) AS events", "round(avg(value), 2) AS avg_value", "round(sum(value), 2) AS total"])?
        .select(["window['start'] AS start", "window['end'] AS end", "event_type", "events", "avg_value", "total"])?
        .write_stream()
        .format("console")
        .output_mode("update")
        .query_name("tumbling")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: tumbling

// ANCHOR: sliding
/// Five-minute windows starting every minute: each event counts in five of them.
pub fn sliding(events: DataFrame) -> brooklet::Result<StreamingQuery> {
    events
        .group_by([sliding_window(col("timestamp"), "5 minutes", "1 minute")])?
        .agg(["count(*) AS events"])?
        .select(["window['start'] AS start", "window['end'] AS end", "events"])?
        .write_stream()
        .format("console")
        .output_mode("complete")
        .query_name("sliding")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: sliding

// ANCHOR: sql
/// The tumbling count in SQL, over a streaming view.
pub fn tumbling_sql(session: &Session, events: DataFrame) -> brooklet::Result<StreamingQuery> {
    events.create_or_replace_temp_view("events")?;
    session
        .sql(
            "SELECT window(timestamp, '5 minutes') AS window, count(*) AS events \
             FROM events GROUP BY window(timestamp, '5 minutes')",
        )?
        .select(["window['start'] AS start", "events"])?
        .write_stream()
        .format("console")
        .output_mode("complete")
        .query_name("tumbling_sql")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: sql

// ANCHOR: overlap
/// One event and every sliding window it falls in (a static read: windows work on tables too),
/// shown like Spark's `show(truncate = false)`.
pub fn overlap(session: &Session, file: &Path) -> brooklet::Result<String> {
    let one = session
        .read()
        .format("json")
        .schema(EVENT_SCHEMA)
        .load(file)?
        .filter("event_id = 'evt-000001'")?
        .select([col("event_id"), col("timestamp"), sliding_window(col("timestamp"), "5 minutes", "1 minute")])?
        .select(["event_id", "timestamp", "window['start'] AS start", "window['end'] AS end"])?;
    brooklet::display::format_table(&one.schema(), &one.collect()?, 20, 0)
}
// ANCHOR_END: overlap

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let input = chapter.path("events");
    let per_file = chapter.param("events_per_file", 40)?;
    let files = EventGenerator::new(4, "2024-01-01T09:58:30Z", 6).write_json_files(&input, 3, per_file)?;
    let session = &chapter.session;

    chapter.cell("tumbling", |_| Ok(tumbling(events(session, &input)?)?.await_termination()?))?;
    chapter.cell("schema", |out| {
        // ANCHOR: schema
        let windowed = events(session, &input)?.group_by([window(col("timestamp"), "5 minutes")])?.count()?;
        out.print(windowed.schema_tree());
        // ANCHOR_END: schema
        Ok(())
    })?;
    chapter.show("overlap", || Ok(overlap(session, &files[0])?))?;
    chapter.cell("sliding", |_| Ok(sliding(events(session, &input)?)?.await_termination()?))?;
    chapter.cell("sql", |_| Ok(tumbling_sql(session, events(session, &input)?)?.await_termination()?))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
