//! Chapter 5 — Watermarks and late data: how long to wait for late events, what is dropped,
//! when append and update mode write a window, the no-data batch at the end, and a rollup of
//! windows into larger windows.
//!
//! Run: `cargo run --example ch05_watermarks`

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// The input generator: events from 10:00; about 10% arrive up to 20 minutes late.
fn generator() -> EventGenerator {
    EventGenerator::new(5, "2024-01-01T10:00:00Z", 6).with_late_events(10, 20 * 60_000)
}

/// Four files of 80 events (about four minutes each), one file per batch.
pub fn write_events(input: &Path) -> std::io::Result<()> {
    generator().write_json_files(input, 4, 80).map(|_| ())
}

// ANCHOR: watermarked
/// Events per five-minute window, waiting `delay` (the book uses "5 minutes") for late events.
pub fn windowed_counts(session: &Session, input: &Path, delay: &str) -> brooklet::Result<DataFrame> {
    session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(input)?
        .with_watermark("timestamp", delay)?
        .group_by([window(col("timestamp"), "5 minutes")])?
        .agg(["count(*) AS events", "round(sum(value), 2) AS total"])?
        .select(["window['start'] AS start", "window['end'] AS end", "events", "total"])
}
// ANCHOR_END: watermarked

// ANCHOR: start
/// Starts the windowed count in `mode` ("append" or "update"); the rows it drops as late go
/// to the memory table `{mode}_late_rows`.
pub fn start(session: &Session, input: &Path, delay: &str, mode: &str) -> brooklet::Result<StreamingQuery> {
    windowed_counts(session, input, delay)?
        .write_stream()
        .format("console")
        .output_mode(mode)
        .query_name(mode)
        .late_rows_table(&format!("{mode}_late_rows"))
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: start

// ANCHOR: late_rows
/// The rows append mode dropped, with why and by which watermark.
pub fn late_rows(session: &Session) -> brooklet::Result<String> {
    session
        .sql("SELECT batch_id, reason, time, watermark, row FROM append_late_rows ORDER BY batch_id, time, row")?
        .show_string(20, 0)
}
// ANCHOR_END: late_rows

// ANCHOR: timeline
/// Per batch: input rows, the two watermarks, rows dropped as late, and what is still open,
/// read from each batch's progress.
pub fn timeline(query: &StreamingQuery) -> String {
    let mut out = String::from("batch  rows  late-row filter  finalise by  dropped  open  earliest open end\n");
    for p in query.recent_progress() {
        let Some(t) = &p.watermark_timeline else { continue };
        let time = |iso: &str| iso.get(11..19).unwrap_or(iso).to_string();
        let dropped = p.state_operators.first().map_or(0, |s| s.num_rows_dropped_by_watermark);
        let earliest = t.earliest_open_window_end.as_deref().map_or("-".to_string(), time);
        writeln!(
            out,
            "{:>5}  {:>4}  {:>15}  {:>11}  {dropped:>7}  {:>4}  {earliest:>17}",
            p.batch_id,
            p.num_input_rows,
            time(&t.late_rows_watermark),
            time(&t.eviction_watermark),
            t.open_windows
        )
        .expect("writing to a String");
    }
    out
}
// ANCHOR_END: timeline

// ANCHOR: two_watermarks
/// A late row accepted and finalised in the same batch: batch 1 still filters late rows by
/// W_0 = 0, but finalises by W_1 = 10:11, which batch 0's 10:21 event set.
pub fn two_watermarks(session: &Session) -> brooklet::Result<StreamingQuery> {
    let events = MemoryStream::new(session, "timestamp TIMESTAMP")?;
    events.add_json(r#"{"timestamp": "2024-01-01 10:21:00"}"#)?;
    events.add_json(r#"{"timestamp": "2024-01-01 10:07:00"}"#)?;
    let query = events
        .to_df()?
        .with_watermark("timestamp", "10 minutes")?
        .group_by([window(col("timestamp"), "5 minutes")])?
        .count()?
        .select(["window['start'] AS start", "window['end'] AS end", "count"])?
        .write_stream()
        .format("console")
        .output_mode("append")
        .query_name("two_watermarks")
        .start()?;
    query.process_all_available()?;
    query.stop()?;
    Ok(query)
}
// ANCHOR_END: two_watermarks

// ANCHOR: rollup
/// Counts per `small` window, rolled up into totals per `large` window: two aggregations in
/// one query. `events` carries a watermark on `timestamp`.
pub fn rollup(events: DataFrame, small: &str, large: &str) -> brooklet::Result<DataFrame> {
    events
        .group_by([window(col("timestamp"), small)])?
        .agg(["count(*) AS events"])?
        .group_by([window(window_time(col("window")), large).alias("rollup")])?
        .agg(["sum(events) AS events", "count(*) AS windows"])?
        .select(["rollup['start'] AS start", "rollup['end'] AS end", "events", "windows"])
}
// ANCHOR_END: rollup

// ANCHOR: operators
/// Per batch: input rows, the watermark, and for each stateful operator, top down as progress
/// lists them, its rows in state, rows updated and rows dropped as late.
pub fn operators(query: &StreamingQuery) -> String {
    let mut out =
        String::from("batch  rows  watermark   hourly: state  updated  dropped   5-minute: state  updated  dropped\n");
    for p in query.recent_progress() {
        let watermark = p.event_time.get("watermark").map_or("-", |w| w.get(11..19).unwrap_or(w));
        write!(out, "{:>5}  {:>4}  {watermark:>9}", p.batch_id, p.num_input_rows).expect("writing to a String");
        for (o, width) in p.state_operators.iter().zip([13, 15]) {
            let (total, updated, dropped) = (o.num_rows_total, o.num_rows_updated, o.num_rows_dropped_by_watermark);
            write!(out, "   {total:>width$}  {updated:>7}  {dropped:>7}").expect("writing to a String");
        }
        out.push('\n');
    }
    out
}
// ANCHOR_END: operators

// ANCHOR: hourly
/// Five-minute counts rolled up by the hour, fed one list of event times per batch.
pub fn hourly(session: &Session) -> brooklet::Result<StreamingQuery> {
    let events = MemoryStream::new(session, "timestamp TIMESTAMP")?;
    let watermarked = events.to_df()?.with_watermark("timestamp", "10 minutes")?;
    let query = rollup(watermarked, "5 minutes", "1 hour")?
        .write_stream()
        .format("console")
        .output_mode("append")
        .query_name("hourly")
        .start()?;
    let batches: [&[&str]; 5] =
        [&["10:01", "10:02", "10:07"], &["10:31", "10:58"], &["11:20"], &["10:40", "11:03"], &["12:30"]];
    for times in batches {
        let rows: Vec<String> = times.iter().map(|t| format!(r#"{{"timestamp": "2024-01-01 {t}:00"}}"#)).collect();
        events.add_json(&rows.join(" "))?;
        query.process_all_available()?;
    }
    query.stop()?;
    Ok(query)
}
// ANCHOR_END: hourly

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let input = chapter.path("events");
    write_events(&input)?;
    let session = &chapter.session;
    let delay: String = chapter.param("delay", "5 minutes".to_string())?;

    chapter.cell("late_events", |out| {
        // ANCHOR: late_events
        let events = generator().events(320);
        let late = events.windows(2).filter(|w| w[1].timestamp_ms < w[0].timestamp_ms).count();
        out.print(format!("{late} of 320 events are stamped earlier than the event before them"));
        // ANCHOR_END: late_events
        Ok(())
    })?;
    let append = chapter.cell("append", |_| {
        // ANCHOR: append
        let append = start(session, &input, &delay, "append")?;
        append.await_termination()?;
        // ANCHOR_END: append
        Ok(append)
    })?;
    chapter.show("timeline", || Ok(timeline(&append)))?;
    chapter.show("late_rows", || Ok(late_rows(session)?))?;
    chapter.cell("last_progress", |out| {
        // ANCHOR: last_progress
        let last = append.last_progress().context("the query ran no batch")?;
        out.print(last.pretty_json());
        // ANCHOR_END: last_progress
        Ok(())
    })?;
    chapter.cell("update", |_| {
        // ANCHOR: update
        let update = start(session, &input, &delay, "update")?;
        update.await_termination()?;
        // ANCHOR_END: update
        Ok(())
    })?;
    chapter.show("two_watermarks", || Ok(timeline(&two_watermarks(session)?)))?;
    chapter.show("hourly", || Ok(operators(&hourly(session)?)))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
