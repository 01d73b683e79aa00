//! Chapter 6 — Deduplication: dropping the second delivery of an event, three ways, and what
//! each way keeps in state.
//!
//! Run: `cargo run --example ch06_deduplication`

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// The input generator: events from 10:00; a quarter of deliveries repeat a recent event,
/// half of those re-stamped with the retry's time; a few events are late.
fn generator() -> EventGenerator {
    EventGenerator::new(6, "2024-01-01T10:00:00Z", 4).with_duplicates(25).with_late_events(5, 3 * 60_000)
}

/// Five files of 16 deliveries (about 45 seconds each), one file per batch.
pub fn write_events(input: &Path) -> std::io::Result<()> {
    generator().write_json_files(input, 5, 16).map(|_| ())
}

// ANCHOR: duplicates
/// The events delivered more than once, with the timestamp of each delivery (a static query).
pub fn duplicated(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    session.read().format("json").schema(EVENT_SCHEMA).load(input)?.create_or_replace_temp_view("deliveries")?;
    session.sql(
        "SELECT event_id, count(*) AS deliveries, array_agg(to_char(timestamp, '%H:%M:%S') ORDER BY timestamp) AS stamped \
         FROM deliveries GROUP BY event_id HAVING count(*) > 1 ORDER BY event_id",
    )
}
// ANCHOR_END: duplicates

// ANCHOR: stream
/// The deliveries as a stream, one file per batch (times to the second, to read easily).
pub fn deliveries(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    session.read_stream().format("json").schema(EVENT_SCHEMA).option("maxFilesPerTrigger", 1).load(input)?.select([
        "event_id",
        "date_trunc('second', timestamp) AS timestamp",
        "event_type",
    ])
}
// ANCHOR_END: stream

// ANCHOR: by_id
/// Every event_id once, ever: the state holds every id seen.
pub fn by_id(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    deliveries(session, input)?.drop_duplicates(&["event_id"])
}
// ANCHOR_END: by_id

// ANCHOR: by_id_and_time
/// Every (event_id, timestamp) once; the watermark (`delay` behind, "1 minute" in the book)
/// lets old pairs go.
pub fn by_id_and_time(session: &Session, input: &Path, delay: &str) -> brooklet::Result<DataFrame> {
    deliveries(session, input)?.with_watermark("timestamp", delay)?.drop_duplicates(&["event_id", "timestamp"])
}
// ANCHOR_END: by_id_and_time

// ANCHOR: within_watermark
/// Every event_id once within `delay` (the watermark delay) of its first delivery.
pub fn within_watermark(session: &Session, input: &Path, delay: &str) -> brooklet::Result<DataFrame> {
    deliveries(session, input)?.with_watermark("timestamp", delay)?.drop_duplicates_within_watermark(&["event_id"])
}
// ANCHOR_END: within_watermark

// ANCHOR: start
/// Runs `df` over every file now in the input, printing each batch, and waits for the end.
pub fn run_to_end(df: DataFrame, name: &str) -> brooklet::Result<StreamingQuery> {
    let query = df
        .write_stream()
        .format("console")
        .option("truncate", false)
        .query_name(name)
        .trigger(Trigger::AvailableNow)
        .start()?;
    query.await_termination()?;
    Ok(query)
}
// ANCHOR_END: start

// ANCHOR: state_table
/// Per batch: rows in and out, what the deduplication dropped and why, and its state.
pub fn state_table(query: &StreamingQuery) -> String {
    let mut out = String::from("batch  watermark  rows in  rows out  duplicates  late  keys in state  keys removed\n");
    for p in query.recent_progress() {
        let Some(op) = p.state_operators.first() else { continue };
        let watermark = p.event_time.get("watermark").and_then(|w| w.get(11..19)).unwrap_or("-");
        let duplicates = op.custom_metrics.get("numDroppedDuplicateRows").copied().unwrap_or(0);
        writeln!(
            out,
            "{:>5}  {watermark:>9}  {:>7}  {:>8}  {duplicates:>10}  {:>4}  {:>13}  {:>12}",
            p.batch_id,
            p.num_input_rows,
            p.sink.num_output_rows,
            op.num_rows_dropped_by_watermark,
            op.num_rows_total,
            op.num_rows_removed
        )
        .expect("writing to a String");
    }
    out
}
// ANCHOR_END: state_table

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let input = chapter.path("events");
    write_events(&input)?;
    let session = &chapter.session;
    let delay: String = chapter.param("delay", "1 minute".to_string())?;
    chapter.show("duplicates", || Ok(duplicated(session, &input)?.to_string_table(50)?))?;

    let by_id = chapter.cell("by_id", |_| Ok(run_to_end(by_id(session, &input)?, "by_id")?))?;
    chapter.show("state_table", || Ok(state_table(&by_id)))?;
    chapter.cell("by_id_and_time", |out| {
        let query = run_to_end(by_id_and_time(session, &input, &delay)?, "by_id_and_time")?;
        out.print(state_table(&query));
        Ok(())
    })?;
    let within = chapter.cell("within_watermark", |out| {
        let query = run_to_end(within_watermark(session, &input, &delay)?, "within_watermark")?;
        out.print(state_table(&query));
        Ok(query)
    })?;
    chapter.cell("operator", |out| {
        // ANCHOR: operator
        let first_with_data = within.recent_progress().into_iter().find(|p| p.num_input_rows > 0);
        let progress = first_with_data.context("a batch read rows")?;
        out.print(serde_json::to_string_pretty(&progress.state_operators)?);
        // ANCHOR_END: operator
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
