//! Chapter 12 — Joins: enriching a stream of events with a static table of users, the join
//! types Spark allows between a stream and static data, and the ones it refuses; then two
//! streams, ad impressions and clicks, joined with watermarks and a one-hour range.
//!
//! Run: `cargo run --example ch12_joins`

use std::fmt::Write as _;
use std::path::Path;

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator, write_with_mtime};

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

/// Ad impressions and clicks, four files each, one per batch: `(ad, HH:MM)` on 2024-01-01.
const IMPRESSIONS: [&[(Option<&str>, &str)]; 4] = [
    &[(Some("ad1"), "10:00"), (Some("ad2"), "10:05"), (Some("ad3"), "10:10"), (Some("ad1"), "10:02")],
    &[(Some("ad4"), "11:00"), (None, "11:00")],
    &[(Some("ad5"), "12:30")],
    &[(Some("ad6"), "13:00"), (Some("ad7"), "10:45")],
];
const CLICKS: [&[(Option<&str>, &str)]; 4] = [
    &[(Some("ad1"), "10:20")],
    &[(Some("ad2"), "11:05"), (Some("ad3"), "11:11"), (None, "11:01")],
    &[(Some("ad4"), "11:30"), (Some("ad4"), "11:40")],
    &[(Some("ad9"), "13:00"), (Some("ad7"), "10:50")],
];

/// Writes one side's files, oldest first: `{"<id>": "ad1", "<time>": "2024-01-01 10:00:00"}`.
pub fn write_ads(dir: &Path, id: &str, time: &str, files: &[&[(Option<&str>, &str)]]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, rows) in files.iter().enumerate() {
        let line = |(ad, t): &(Option<&str>, &str)| {
            let ad = ad.map_or("null".to_string(), |a| format!("\"{a}\""));
            format!("{{\"{id}\": {ad}, \"{time}\": \"2024-01-01 {t}:00\"}}\n")
        };
        write_with_mtime(&dir.join(format!("{i:02}.json")), &rows.iter().map(line).collect::<String>(), i)?;
    }
    Ok(())
}

// ANCHOR: ad_streams
/// Impressions and clicks, one file of each per batch, each with a 10-minute watermark.
pub fn ad_streams(session: &Session, impressions: &Path, clicks: &Path) -> brooklet::Result<(DataFrame, DataFrame)> {
    let read = |dir: &Path, schema: &str| {
        session.read_stream().format("json").schema(schema).option("maxFilesPerTrigger", 1).load(dir)
    };
    let impressions = read(impressions, "impressionAdId STRING, impressionTime TIMESTAMP")?
        .with_watermark("impressionTime", "10 minutes")?;
    let clicks = read(clicks, "clickAdId STRING, clickTime TIMESTAMP")?.with_watermark("clickTime", "10 minutes")?;
    Ok((impressions, clicks))
}

/// A click counts for an impression of the same ad up to an hour after it (both ends included).
pub const AD_CLICK: &str =
    "clickAdId = impressionAdId AND clickTime >= impressionTime AND clickTime <= impressionTime + interval 1 hour";
// ANCHOR_END: ad_streams

// ANCHOR: ad_state
/// One line per batch: its watermark, and the join's state rows after it.
pub fn join_state(query: &StreamingQuery) -> String {
    let mut out = String::new();
    for p in query.recent_progress() {
        let watermark = p.event_time.get("watermark").map_or("-", String::as_str);
        let s = &p.state_operators[0];
        writeln!(
            out,
            "batch {}: watermark {watermark}, {} rows in, state {} rows (+{} kept, -{} removed), {} late",
            p.batch_id,
            p.num_input_rows,
            s.num_rows_total,
            s.num_rows_updated,
            s.num_rows_removed,
            s.num_rows_dropped_by_watermark
        )
        .expect("writing to a String");
    }
    out
}
// ANCHOR_END: ad_state

// ANCHOR: ad_matrix
/// What `start()` says to stream-stream joins Spark refuses.
pub fn ad_refusals(session: &Session, impressions: &Path, clicks: &Path) -> brooklet::Result<String> {
    let mut out = String::new();
    let cases = [
        ("left_outer", "clickAdId = impressionAdId", "no range: a click may come any time"),
        ("left_outer", "clickAdId = impressionAdId AND clickTime >= impressionTime", "no upper bound"),
        ("left_anti", AD_CLICK, "anti"),
        ("inner", "clickTime >= impressionTime", "no equality"),
    ];
    for (how, condition, what) in cases {
        let (impressions, clicks) = ad_streams(session, impressions, clicks)?;
        let started = impressions.join(clicks, condition, how).and_then(|df| df.write_stream().format("noop").start());
        let verdict = match started {
            Ok(query) => {
                query.stop()?;
                "runs".to_string()
            }
            Err(e) => e.to_string(),
        };
        writeln!(out, "{how} ({what}): {verdict}").expect("writing to a String");
    }
    Ok(out)
}
// ANCHOR_END: ad_matrix

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
    chapter.show("matrix", || Ok(support_matrix(session, &no_events, &users)?))?;

    // Two streams.
    let (impressions, clicks) = (chapter.path("impressions"), chapter.path("clicks"));
    write_ads(&impressions, "impressionAdId", "impressionTime", &IMPRESSIONS)?;
    write_ads(&clicks, "clickAdId", "clickTime", &CLICKS)?;
    chapter.cell("ad_inner", |out| {
        // ANCHOR: ad_inner
        let (imps, clks) = ad_streams(session, &impressions, &clicks)?;
        let query = run_to_end(imps.join(clks, AD_CLICK, "inner")?, "ad_clicks")?;
        out.print(join_state(&query));
        // ANCHOR_END: ad_inner
        Ok(())
    })?;
    chapter.cell("ad_left", |out| {
        // ANCHOR: ad_left
        let (imps, clks) = ad_streams(session, &impressions, &clicks)?;
        let query = run_to_end(imps.join(clks, AD_CLICK, "left_outer")?, "impressions_and_clicks")?;
        out.print(join_state(&query));
        // ANCHOR_END: ad_left
        Ok(())
    })?;
    chapter.show("ad_matrix", || Ok(ad_refusals(session, &no_events, &no_events)?))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
