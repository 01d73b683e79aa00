//! Chapter 17 — A streaming pipeline end to end: generated events with late and repeated
//! deliveries, a raw Delta table written exactly once, deduplication under a 10-minute
//! watermark, 5-minute tumbling windows merged into a Delta table in update mode, 5-minute
//! windows sliding by 1 minute appended to another, events enriched with a static users
//! table, every table read back, and a restart half-way that changes nothing.
//!
//! Run: `cargo run --example ch17_pipeline`. Bigger input, generated at a rate with a progress
//! bar: `cargo run --bin pipeline-events -- --dir target/pipeline/input --events 100000`.

use std::path::{Path, PathBuf};

use brooklet::prelude::*;
use brooklet::{DeltaTable, Trigger};
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator, write_with_mtime};

/// Files of input, and events per file.
const FILES: usize = 8;
const PER_FILE: usize = 60;

// ANCHOR: generate
/// The events: 20 users from 09:00, about 10% late (stamped up to 15 minutes before they
/// arrive) and 2% delivered twice; `PER_FILE` per file, files `from..to` of the sequence.
pub fn write_events(input: &Path, from: usize, to: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(input)?;
    let mut generator =
        EventGenerator::new(2024, "2024-01-01T09:00:00Z", 20).with_late_events(10, 15 * 60_000).with_duplicates(2);
    for file in 0..to {
        let lines: Vec<String> = generator.events(PER_FILE).iter().map(|e| e.to_json()).collect();
        if file >= from {
            write_with_mtime(&input.join(format!("events-{file:05}.json")), &(lines.join("\n") + "\n"), file)?;
        }
    }
    Ok(())
}

/// The static users table the events are enriched with: one row per user, as CSV.
pub fn write_users(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from("user_id,name,tier\n");
    for u in 1..=20 {
        let tier = ["gold", "silver", "bronze"][u % 3];
        csv.push_str(&format!("user-{u:02},User {u},{tier}\n"));
    }
    std::fs::write(dir.join("users.csv"), csv)?;
    Ok(())
}
// ANCHOR_END: generate

/// Where one run of the pipeline keeps its input, tables and checkpoints.
pub struct Places {
    pub input: PathBuf,
    pub users: PathBuf,
    pub tables: PathBuf,
    pub checkpoints: PathBuf,
}

impl Places {
    pub fn under(dir: &Path) -> Self {
        Places {
            input: dir.join("input"),
            users: dir.join("users"),
            tables: dir.join("tables"),
            checkpoints: dir.join("checkpoints"),
        }
    }

    pub fn table(&self, name: &str) -> PathBuf {
        self.tables.join(name)
    }
}

// ANCHOR: pipeline
/// The events as a stream, one file per micro-batch.
fn events(session: &Session, p: &Places) -> brooklet::Result<DataFrame> {
    session.read_stream().format("json").schema(EVENT_SCHEMA).option("maxFilesPerTrigger", 1).load(&p.input)
}

/// The same events with a 10-minute watermark, each `event_id` once.
fn clean(session: &Session, p: &Places) -> brooklet::Result<DataFrame> {
    events(session, p)?.with_watermark("timestamp", "10 minutes")?.drop_duplicates_within_watermark(&["event_id"])
}

/// The four queries of the pipeline, each to its own Delta table with its own checkpoint,
/// each processing what is there now (`AvailableNow`) and stopping.
pub fn run_pipeline(session: &Session, p: &Places) -> brooklet::Result<()> {
    let start = |df: DataFrame, name: &str, mode: &str| {
        df.write_stream()
            .query_name(name)
            .output_mode(mode)
            .trigger(Trigger::AvailableNow)
            .option("checkpointLocation", p.checkpoints.join(name).display())
    };
    let to_delta = |writer: brooklet::DataStreamWriter, name: &str| {
        writer.format("delta").option("path", p.table(name).display()).start()
    };

    // 1. Raw: every delivery as it came, exactly once per batch (the sink's txn action).
    let raw = to_delta(start(events(session, p)?, "raw", "append"), "raw")?;

    // 2. Tumbling 5-minute windows per event type, in update mode: each batch's changed
    //    windows MERGEd into the table by key, once per batch id.
    let tumbling = clean(session, p)?
        .group_by([window(col("timestamp"), "5 minutes"), col("event_type")])?
        .agg(["count(*) AS events", "round(sum(value), 2) AS revenue"])?
        .select(["window.start AS start", "window.end AS end", "event_type", "events", "revenue"])?;
    let table = p.table("tumbling");
    let tumbling = start(tumbling, "tumbling", "update")
        .foreach_batch(move |batch, batch_id| {
            if !DeltaTable::is_delta_table(&table) {
                // The first batch creates the table; a re-run of it finds the table and merges.
                return batch.write().format("delta").save(&table);
            }
            DeltaTable::for_path(batch.session(), &table)?
                .merge(&batch, "t.start = s.start AND t.event_type = s.event_type")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .idempotent("tumbling", batch_id)
                .execute()
                .map(|_| ())
        })
        .start()?;

    // 3. Sliding windows, 5 minutes every minute, in append mode: a window is written once
    //    the watermark passes its end, and never changes after.
    let sliding = clean(session, p)?
        .group_by([sliding_window(col("timestamp"), "5 minutes", "1 minute")])?
        .agg(["count(*) AS events", "round(avg(value), 2) AS avg_value"])?
        .select(["window.start AS start", "window.end AS end", "events", "avg_value"])?;
    let sliding = to_delta(start(sliding, "sliding", "append"), "sliding")?;

    // 4. Each event with its user's name and tier (a stream-static join).
    let users = session
        .read()
        .format("csv")
        .option("header", true)
        .schema("user_id STRING, name STRING, tier STRING")
        .load(&p.users)?;
    let enriched = clean(session, p)?.join(users, "user_id", "left")?.select([
        "event_id",
        "timestamp",
        "user_id",
        "name",
        "tier",
        "event_type",
        "value",
    ])?;
    let enriched = to_delta(start(enriched, "enriched", "append"), "enriched")?;

    for query in [raw, tumbling, sliding, enriched] {
        query.await_termination()?;
    }
    Ok(())
}
// ANCHOR_END: pipeline

/// Every table of a run, each sorted: what the restart must not change.
pub fn contents(session: &Session, p: &Places) -> brooklet::Result<Vec<(String, String)>> {
    let sorted = [
        ("raw", "event_id, timestamp"),
        ("tumbling", "start, event_type"),
        ("sliding", "start"),
        ("enriched", "event_id"),
    ];
    let mut out = Vec::new();
    for (name, order) in sorted {
        session.read().format("delta").load(p.table(name))?.create_or_replace_temp_view(name)?;
        let all = session.sql(&format!("SELECT * FROM {name} ORDER BY {order}"))?;
        out.push((name.to_string(), all.show_string(100_000, 0)?));
    }
    Ok(out)
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    // The pipeline runs in a session of its own: the book shows its tables, not its batches.
    let session = &Session::builder().clock(VirtualClock::at("2024-01-01T09:00:00Z")).target_partitions(2).build();
    let p = Places::under(&chapter.path("run"));
    write_users(&p.users)?;

    chapter.cell("generate", |out| {
        // ANCHOR: first_half
        write_events(&p.input, 0, FILES / 2)?;
        // ANCHOR_END: first_half
        let input = session.read().format("json").schema(EVENT_SCHEMA).load(&p.input)?;
        input.create_or_replace_temp_view("input")?;
        out.print(session.sql("SELECT * FROM input ORDER BY event_id LIMIT 5")?.show_string(20, 20)?);
        let summary = session.sql(
            "SELECT count(*) AS deliveries, count(DISTINCT event_id) AS events, \
             min(timestamp) AS first, max(timestamp) AS last FROM input",
        )?;
        out.print(summary.show_string(20, 0)?);
        Ok(())
    })?;

    chapter.cell("first_run", |out| {
        // ANCHOR: first_run
        run_pipeline(session, &p)?;
        // ANCHOR_END: first_run
        out.print(table_sizes(session, &p)?);
        Ok(())
    })?;

    chapter.cell("restart", |out| {
        // ANCHOR: restart
        write_events(&p.input, FILES / 2, FILES)?;
        run_pipeline(session, &p)?; // the same queries, on the same checkpoints
        // ANCHOR_END: restart
        out.print(table_sizes(session, &p)?);
        Ok(())
    })?;

    chapter.show("raw_history", || {
        // ANCHOR: raw_history
        let history = DeltaTable::for_path(session, p.table("raw"))?.history()?;
        let shown = history.select(["version", "operation", "addedFiles", "txnVersion"])?;
        // ANCHOR_END: raw_history
        Ok(shown.show_string(20, 0)?)
    })?;

    chapter.show("tumbling", || {
        // ANCHOR: tumbling
        let tumbling = DeltaTable::for_path(session, p.table("tumbling"))?.to_df()?;
        tumbling.create_or_replace_temp_view("tumbling")?;
        let first =
            session.sql("SELECT * FROM tumbling WHERE start < '2024-01-01 09:15:00' ORDER BY start, event_type")?;
        // ANCHOR_END: tumbling
        Ok(first.show_string(20, 0)?)
    })?;

    chapter.show("sliding", || {
        // ANCHOR: sliding
        let sliding = session.read().format("delta").load(p.table("sliding"))?;
        sliding.create_or_replace_temp_view("sliding")?;
        let first = session.sql("SELECT * FROM sliding ORDER BY start LIMIT 8")?;
        // ANCHOR_END: sliding
        Ok(first.show_string(20, 0)?)
    })?;

    chapter.show("enriched", || {
        // ANCHOR: enriched
        let enriched = session.read().format("delta").load(p.table("enriched"))?;
        enriched.create_or_replace_temp_view("enriched")?;
        let by_tier = session.sql(
            "SELECT tier, count(*) AS events, round(sum(value), 2) AS value FROM enriched GROUP BY tier ORDER BY tier",
        )?;
        // ANCHOR_END: enriched
        Ok(by_tier.show_string(20, 0)?)
    })?;

    chapter.cell("uninterrupted", |out| {
        // ANCHOR: uninterrupted
        let once = Places::under(&chapter.path("once"));
        write_users(&once.users)?;
        write_events(&once.input, 0, FILES)?;
        run_pipeline(session, &once)?;
        for ((name, restarted), (_, straight)) in contents(session, &p)?.iter().zip(contents(session, &once)?) {
            let same = if *restarted == straight { "the same" } else { "rows differ:" };
            out.print(format!("{name:<9} stopped half-way and run straight through: {same}"));
            for line in restarted.lines().filter(|l| !straight.contains(*l)) {
                out.print(format!("  only after the restart: {line}"));
            }
            for line in straight.lines().filter(|l| !restarted.contains(*l)) {
                out.print(format!("  only straight through:  {line}"));
            }
        }
        // ANCHOR_END: uninterrupted
        Ok(())
    })?;
    Ok(())
}

/// Rows per table, and the raw table's deliveries against the input's.
fn table_sizes(session: &Session, p: &Places) -> anyhow::Result<String> {
    let input = session.read().format("json").schema(EVENT_SCHEMA).load(&p.input)?.count()?;
    let mut lines = vec![format!("input deliveries: {input}")];
    for name in ["raw", "tumbling", "sliding", "enriched"] {
        let rows = session.read().format("delta").load(p.table(name))?.count()?;
        lines.push(format!("{name:<9} {rows:>4} rows"));
    }
    Ok(lines.join("\n"))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
