//! Chapter 7 — Session windows: a user's activity grouped into visits that end after a gap of
//! inactivity; how sessions merge, how a late event bridges two, and a gap per user tier.
//!
//! Run: `cargo run --example ch07_sessions`

use std::path::Path;

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, visits, write_json_by_period};

/// Three users' visits over four hours from 10:00, one file per hour of event time.
pub fn write_events(input: &Path) -> std::io::Result<()> {
    write_json_by_period(input, &visits(7, "2024-01-01T10:00:00Z", 3, 4), 3_600_000).map(|_| ())
}

// ANCHOR: sessions
/// Each user's sessions: activity with no pause of `gap` or more, waiting as long for late
/// events.
pub fn sessions(session: &Session, input: &Path, gap: &str) -> brooklet::Result<DataFrame> {
    session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(input)?
        .with_watermark("timestamp", gap)?
        .group_by([col("user_id"), session_window(col("timestamp"), gap)])?
        .agg(["count(*) AS events", "round(sum(value), 2) AS spent"])?
        .select(["user_id", "session_window['start'] AS start", "session_window['end'] AS end", "events", "spent"])
}
// ANCHOR_END: sessions

// ANCHOR: start
/// Runs `df` in `mode` over every file now in the input, printing each batch; waits for the end.
pub fn run_to_end(df: DataFrame, mode: &str, name: &str) -> brooklet::Result<StreamingQuery> {
    let query = df
        .write_stream()
        .format("console")
        .output_mode(mode)
        .query_name(name)
        .trigger(Trigger::AvailableNow)
        .start()?;
    query.await_termination()?;
    Ok(query)
}
// ANCHOR_END: start

// ANCHOR: tiers
/// Sessions with a gap per tier: gold users (user-01) get 10 minutes, others 30.
pub fn sessions_by_tier(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    let events = session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(input)?
        .with_watermark("timestamp", "30 minutes")?;
    events.create_or_replace_temp_view("events")?;
    let gap = "CASE WHEN user_id = 'user-01' THEN '10 minutes' ELSE '30 minutes' END";
    session
        .sql(&format!(
            "SELECT user_id, session_window(timestamp, {gap}) AS session, count(*) AS events \
             FROM events GROUP BY user_id, session_window(timestamp, {gap})"
        ))?
        .select(["user_id", "session['start'] AS start", "session['end'] AS end", "events"])
}
// ANCHOR_END: tiers

// ANCHOR: bridge
/// One user's two sessions, then a late event in the gap between them, in complete mode so
/// every batch shows every session.
pub fn bridge(session: &Session) -> brooklet::Result<StreamingQuery> {
    let clicks = MemoryStream::new(session, "user_id STRING, timestamp TIMESTAMP")?;
    let query = clicks
        .to_df()?
        .with_watermark("timestamp", "1 hour")?
        .group_by([col("user_id"), session_window(col("timestamp"), "30 minutes")])?
        .count()?
        .select(["user_id", "session_window['start'] AS start", "session_window['end'] AS end", "count"])?
        .write_stream()
        .format("console")
        .output_mode("complete")
        .query_name("bridge")
        .start()?;
    for batch in [
        r#"{"user_id": "ana", "timestamp": "2024-01-01 10:00:00"} {"user_id": "ana", "timestamp": "2024-01-01 10:10:00"}"#,
        r#"{"user_id": "ana", "timestamp": "2024-01-01 11:00:00"}"#,
        r#"{"user_id": "ana", "timestamp": "2024-01-01 10:35:00"}"#,
    ] {
        clicks.add_json(batch)?;
        query.process_all_available()?;
    }
    query.stop()?;
    Ok(query)
}
// ANCHOR_END: bridge

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let input = chapter.path("events");
    write_events(&input)?;
    let session = &chapter.session;
    let gap = chapter.param("gap", "30 minutes".to_string())?;

    chapter.cell("run", |out| {
        // ANCHOR: run
        let sessions = run_to_end(sessions(session, &input, &gap)?, "append", "sessions")?;
        // ANCHOR_END: run
        out.print(session_timeline(&sessions));
        Ok(())
    })?;
    chapter.cell("bridge", |_| Ok(bridge(session)?))?;
    // The book marks this cell expect-error: its error is its output.
    let _refused = chapter.cell("update", |_| Ok(sessions_in_update_mode(session, &input)?));
    chapter.cell("tiers", |_| Ok(run_to_end(sessions_by_tier(session, &input)?, "append", "sessions_by_tier")?))?;
    Ok(())
}

/// Per batch: the watermark, rows read, sessions open in state, sessions written.
fn session_timeline(sessions: &StreamingQuery) -> String {
    let timeline: Vec<String> = sessions
        .recent_progress()
        .iter()
        .map(|p| {
            let op = &p.state_operators[0];
            let w = p.event_time.get("watermark").and_then(|w| w.get(11..19)).unwrap_or("-");
            format!(
                "{:>5}  {w:>9}  {:>7}  {:>13}  {:>7}",
                p.batch_id, p.num_input_rows, op.num_rows_total, p.sink.num_output_rows
            )
        })
        .collect();
    format!("batch  watermark  rows in  open sessions  written\n{}\n", timeline.join("\n"))
}

// ANCHOR: update
/// Update mode would have to retract a session when a later event merges it into another.
pub fn sessions_in_update_mode(session: &Session, input: &Path) -> Result<StreamingQuery, brooklet::Error> {
    sessions(session, input, "30 minutes")?.write_stream().format("console").output_mode("update").start()
}
// ANCHOR_END: update

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
