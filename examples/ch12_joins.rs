//! Chapter 12 — Joins: enriching a stream of events with a static table of users, the join
//! types Spark allows between a stream and static data, and the ones it refuses.
//!
//! Run: `cargo run --example ch12_joins`

use std::fmt::Write as _;
use std::path::Path;

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// Two files of eight events from six users, one file per batch.
pub fn write_events(input: &Path) -> std::io::Result<()> {
    EventGenerator::new(12, "2024-01-01T10:00:00Z", 6).write_json_files(input, 2, 8).map(|_| ())
}

/// The users table: four of the six users (`user-05` and `user-06` are missing), as CSV.
pub fn write_users(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let rows = "user_id,name,tier\nuser-01,Ada,gold\nuser-02,Brian,silver\nuser-03,Chen,silver\nuser-04,Dora,gold\n";
    std::fs::write(dir.join("users.csv"), rows)
}

// ANCHOR: sides
/// The stream of events (one file per batch) and the static table of users.
pub fn sides(session: &Session, events: &Path, users: &Path) -> brooklet::Result<(DataFrame, DataFrame)> {
    let stream = session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(events)?
        .select(["event_id", "user_id", "event_type"])?;
    let table = session.read().format("csv").option("header", true).schema("user_id STRING, name STRING, tier STRING");
    Ok((stream, table.load(users)?))
}
// ANCHOR_END: sides

// ANCHOR: enrich
/// Each event with its user's name and tier: `how` is `inner` or `left`.
pub fn enrich(events: DataFrame, users: DataFrame, how: &str) -> brooklet::Result<DataFrame> {
    events.join(users, "user_id", how)
}
// ANCHOR_END: enrich

// ANCHOR: start
/// Runs `df` over every file now in the input, printing each batch, and waits for the end.
pub fn run_to_end(df: DataFrame, name: &str) -> brooklet::Result<StreamingQuery> {
    let query = df.write_stream().format("console").query_name(name).trigger(Trigger::AvailableNow).start()?;
    query.await_termination()?;
    Ok(query)
}
// ANCHOR_END: start

// ANCHOR: matrix
/// What `start()` says to each join type, the stream on the left and then on the right (over
/// a directory with no events yet: only the verdict matters).
pub fn support_matrix(session: &Session, events: &Path, users: &Path) -> brooklet::Result<String> {
    let mut out = String::new();
    for how in ["inner", "left", "right", "full", "left_semi", "left_anti"] {
        for stream_left in [true, false] {
            let (stream, table) = sides(session, events, users)?;
            let joined =
                if stream_left { stream.join(table, "user_id", how) } else { table.join(stream, "user_id", how) };
            let started = joined.and_then(|df| df.write_stream().format("noop").start());
            let verdict = match started {
                Ok(query) => {
                    query.stop()?;
                    "runs".to_string()
                }
                Err(e) => e.to_string(),
            };
            let order = if stream_left { "stream, static" } else { "static, stream" };
            writeln!(out, "{how:<9} {order}: {verdict}").expect("writing to a String");
        }
    }
    Ok(out)
}
// ANCHOR_END: matrix

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let (events, users) = (chapter.path("events"), chapter.path("users"));
    write_events(&events)?;
    write_users(&users)?;
    let session = &chapter.session;
    chapter.show("sides", || Ok(sides(session, &events, &users)?.1.to_string_table(20)?))?;
    chapter.cell("inner", |_| {
        // ANCHOR: inner
        let (stream, table) = sides(session, &events, &users)?;
        run_to_end(enrich(stream, table, "inner")?, "inner")?;
        // ANCHOR_END: inner
        Ok(())
    })?;
    chapter.cell("left", |_| {
        // ANCHOR: left
        let (stream, table) = sides(session, &events, &users)?;
        run_to_end(enrich(stream, table, "left")?, "left")?;
        // ANCHOR_END: left
        Ok(())
    })?;
    chapter.cell("anti", |_| {
        // ANCHOR: anti
        let (stream, table) = sides(session, &events, &users)?;
        run_to_end(stream.join(table, "user_id", "left_anti")?, "unknown_users")?;
        // ANCHOR_END: anti
        Ok(())
    })?;
    let no_events = chapter.path("no_events");
    std::fs::create_dir_all(&no_events)?;
    chapter.show("matrix", || Ok(support_matrix(session, &no_events, &users)?))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
