//! Chapter 3 — File sources: JSON lines and CSV directories, schemas given or inferred,
//! `maxFilesPerTrigger`, checkpoints and restart, malformed records, and a partitioned Parquet
//! sink read back as a table.
//!
//! Run: `cargo run --example ch03_file_sources`

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use brooklet::functions::spark_partition_id;
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator, write_with_mtime};

// ANCHOR: enrich
/// Cart and purchase events, enriched with a euro amount, the hour and a size flag.
pub fn enriched(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 2) // two new files per micro-batch
        .load(input)?
        .filter("event_type IN ('purchase', 'add_to_cart')")?
        .with_column("value_eur", "round(value * 0.92, 2)")?
        .with_column("hour", "date_part('hour', timestamp)")?
        .with_column("big", "value >= 100")?
        .select(["event_id", "user_id", "event_type", "value_eur", "hour", "big"])
}
// ANCHOR_END: enrich

// ANCHOR: csv
/// Counts per event type over a directory of CSV files with a header line.
pub fn csv_counts(session: &Session, input: &Path) -> brooklet::Result<StreamingQuery> {
    session
        .read_stream()
        .format("csv")
        .option("header", true)
        .schema(EVENT_SCHEMA)
        .load(input)?
        .group_by(["event_type"])?
        .agg(["count(*) AS events", "round(avg(value), 2) AS avg_value"])?
        .write_stream()
        .format("console")
        .output_mode("complete")
        .query_name("csv_counts")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: csv

// ANCHOR: inference
/// Loads the same directory with the schema given and with the schema inferred, timing each.
pub fn compare_inference(session: &Session, input: &Path) -> brooklet::Result<String> {
    let started = Instant::now();
    let given = session.read_stream().format("json").schema(EVENT_SCHEMA).load(input)?;
    let given_ms = started.elapsed().as_secs_f64() * 1000.0;

    let started = Instant::now();
    let inferred = session.read_stream().format("json").option("inferSchema", true).load(input)?;
    let inferred_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut out = String::new();
    for (how, df, ms) in [("given", given, given_ms), ("inferred", inferred, inferred_ms)] {
        writeln!(out, "schema {how}: load() took {ms:.1} ms\n{}", df.schema_tree()).expect("writing to a String");
    }
    Ok(out)
}
// ANCHOR_END: inference

// ANCHOR: restart
/// Counts per event type with a checkpoint: run it, stop it, run it again.
pub fn checkpointed_counts(session: &Session, input: &Path, checkpoint: &Path) -> brooklet::Result<StreamingQuery> {
    session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(input)?
        .group_by(["event_type"])?
        .count()?
        .write_stream()
        .format("console")
        .output_mode("update")
        .query_name("restartable")
        .option("checkpointLocation", checkpoint.display())
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: restart

// ANCHOR: malformed
/// Reads a file with a bad line and a badly typed field under one of Spark's three modes.
pub fn read_with_mode(session: &Session, input: &Path, mode: &str) -> brooklet::Result<StreamingQuery> {
    session
        .read_stream()
        .format("json")
        .schema("event_id STRING, event_type STRING, value DOUBLE, _corrupt_record STRING")
        .option("mode", mode)
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .load(input)?
        .write_stream()
        .format("console")
        .option("truncate", false)
        .query_name(&mode.to_lowercase())
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: malformed

// ANCHOR: parquet
/// Writes the enriched stream as Parquet, one directory per event type.
pub fn to_parquet(events: DataFrame, output: &Path, checkpoint: &Path) -> brooklet::Result<StreamingQuery> {
    events
        .write_stream()
        .format("parquet")
        .partition_by(&["event_type"])
        .option("path", output.display())
        .option("checkpointLocation", checkpoint.display())
        .query_name("to_parquet")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: parquet

/// The paths under `dir`, relative and sorted: what a checkpoint or output looks like on disk.
pub fn tree(dir: &Path) -> String {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out.join("\n")
}

/// One line per batch of the last run: batch id and the source offsets it read between.
fn batches_of(query: &StreamingQuery) -> String {
    let mut out = String::new();
    for p in query.recent_progress() {
        let s = &p.sources[0];
        let show = |o: &Option<serde_json::Value>| o.as_ref().map_or("none".to_string(), |v| v.to_string());
        writeln!(
            out,
            "batch {}: offsets {} -> {}, {} rows",
            p.batch_id,
            show(&s.start_offset),
            show(&s.end_offset),
            p.num_input_rows
        )
        .expect("writing to a String");
    }
    out
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let session = &chapter.session;

    // JSON in, filtered and enriched, two files per batch.
    let json_dir = chapter.path("json");
    EventGenerator::new(3, "2024-01-01T09:00:00Z", 6).write_json_files(&json_dir, 4, 10)?;
    chapter.cell("enrich_run", |_| {
        // ANCHOR: enrich_run
        let query = enriched(session, &json_dir)?
            .write_stream()
            .format("console")
            .query_name("enriched")
            .trigger(Trigger::AvailableNow)
            .start()?;
        query.await_termination()?;
        // ANCHOR_END: enrich_run
        Ok(())
    })?;

    // CSV in, aggregated.
    let csv_dir = chapter.path("csv");
    EventGenerator::new(4, "2024-01-01T09:00:00Z", 6).write_csv_files(&csv_dir, 2, 10)?;
    chapter.cell("csv", |_| Ok(csv_counts(session, &csv_dir)?.await_termination()?))?;

    // Schema given vs inferred, on a larger directory.
    let many = chapter.path("many");
    let (files, per_file) = (chapter.param("inference_files", 20)?, chapter.param("inference_events_per_file", 2_000)?);
    EventGenerator::new(5, "2024-01-01T00:00:00Z", 50).write_json_files(&many, files, per_file)?;
    chapter.show("inference", || Ok(compare_inference(session, &many)?))?;

    // Which rows are read together: the input partitions of a static read of the JSON files.
    chapter.cell("partitions", |out| {
        // ANCHOR: partitions
        let events = session.read().format("json").schema(EVENT_SCHEMA).load(&json_dir)?;
        let per_partition = events
            .select(vec![spark_partition_id().alias("partition"), col("event_id")])?
            .group_by(["partition"])?
            .agg(["count(*) AS events", "min(event_id) AS first", "max(event_id) AS last"])?
            .order_by(vec![col("partition").sort(true, false)])?;
        // ANCHOR_END: partitions
        out.print(per_partition.to_string_table(20)?);
        Ok(())
    })?;

    // Checkpoint and restart: two files, stop, two more files, start again.
    let (input, checkpoint) = (chapter.path("restart-input"), chapter.path("restart-checkpoint"));
    let mut generator = EventGenerator::new(6, "2024-01-01T09:00:00Z", 4);
    generator.write_json_files(&input, 2, 5)?;
    chapter.cell("restart_run", |out| {
        // ANCHOR: restart_run
        let first = checkpointed_counts(session, &input, &checkpoint)?;
        first.await_termination()?; // two files, two batches, then it stops

        generator.write_json_files(&input, 2, 5)?; // two more files arrive while it is down

        let second = checkpointed_counts(session, &input, &checkpoint)?;
        second.await_termination()?; // batch ids go on from 2; files 0 and 1 are not read again
        assert_eq!(first.id(), second.id(), "the query id lives in the checkpoint");
        // ANCHOR_END: restart_run
        out.print(format!("first run\n{}second run\n{}", batches_of(&first), batches_of(&second)));
        Ok(())
    })?;
    chapter.cell("checkpoint_layout", |out| {
        // ANCHOR: checkpoint_layout
        out.print(tree(&checkpoint));
        // ANCHOR_END: checkpoint_layout
        Ok(())
    })?;
    chapter.cell("checkpoint_files", |out| {
        // ANCHOR: checkpoint_files
        for file in ["offsets/2", "commits/2", "sources/0/2"] {
            out.print(format!("$ cat {file}\n{}", std::fs::read_to_string(checkpoint.join(file))?));
        }
        // ANCHOR_END: checkpoint_files
        Ok(())
    })?;

    // Malformed records under each mode.
    let bad = chapter.path("malformed");
    std::fs::create_dir_all(&bad)?;
    let lines = [
        r#"{"event_id": "evt-1", "event_type": "click", "value": 1.5}"#,
        r#"this line is not JSON"#,
        r#"{"event_id": "evt-3", "event_type": "view", "value": "twelve"}"#,
        r#"{"event_id": "evt-4", "event_type": "purchase", "value": 99.0}"#,
    ];
    write_with_mtime(&bad.join("events-0000.json"), &(lines.join("\n") + "\n"), 0)?;
    chapter.cell("permissive", |_| {
        // ANCHOR: permissive
        read_with_mode(session, &bad, "PERMISSIVE")?.await_termination()?;
        // ANCHOR_END: permissive
        Ok(())
    })?;
    chapter.cell("dropmalformed", |_| {
        // ANCHOR: dropmalformed
        read_with_mode(session, &bad, "DROPMALFORMED")?.await_termination()?;
        // ANCHOR_END: dropmalformed
        Ok(())
    })?;
    chapter.cell("failfast", |out| {
        // ANCHOR: failfast
        let failing = read_with_mode(session, &bad, "FAILFAST")?;
        let error = failing.await_termination().expect_err("FAILFAST stops at the first bad record");
        // ANCHOR_END: failfast
        out.print(error.to_string().replace(&failing.id().to_string(), "$QUERY_ID"));
        Ok(())
    })?;

    // Parquet out, partitioned by event type, read back as a table.
    let (out_dir, out_checkpoint) = (chapter.path("parquet"), chapter.path("parquet-checkpoint"));
    chapter.cell("parquet", |out| {
        to_parquet(enriched(session, &json_dir)?, &out_dir, &out_checkpoint)?.await_termination()?;
        out.print(tree(&out_dir));
        Ok(())
    })?;
    chapter.cell("readback", |out| {
        // ANCHOR: readback
        let table = session.read().parquet(&out_dir)?;
        let summary = table.group_by(["event_type"])?.agg(["count(*) AS events", "round(sum(value_eur), 2) AS eur"])?;
        let summary = summary.order_by(vec![col("event_type").sort(true, false)])?;
        // ANCHOR_END: readback
        out.print(summary.to_string_table(20)?);
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
