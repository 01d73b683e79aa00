//! Chapter 1 — Streams are tables that never end.
//!
//! Generates three files of events, then counts events per type with a streaming query that
//! reads one new file per micro-batch and prints every batch like Spark's console sink.
//!
//! Run: `cargo run --example ch01_streams_are_tables`

use std::path::Path;

use anyhow::Context;
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

// ANCHOR: generate
/// `files` files of `per_file` events each, from a fixed seed.
pub fn generate_events(dir: &Path, files: usize, per_file: usize) -> std::io::Result<()> {
    let mut generator = EventGenerator::new(42, "2024-01-01T09:00:00Z", 8);
    generator.write_json_files(dir, files, per_file)?;
    Ok(())
}
// ANCHOR_END: generate

// ANCHOR: query
/// Counts events per type over every file that arrives in `input`.
pub fn count_by_event_type(session: &Session, input: &Path) -> brooklet::Result<StreamingQuery> {
    let events = session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1) // one file per micro-batch
        .load(input)?;

    let counts = events.group_by(["event_type"])?.count()?;

    counts
        .write_stream()
        .format("console")
        .output_mode("complete")
        .query_name("counts_by_type")
        .trigger(Trigger::AvailableNow) // process what is there, then stop
        .start()
}
// ANCHOR_END: query

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let input = chapter.path("events");
    generate_events(&input, chapter.param("files", 3)?, chapter.param("events_per_file", 20)?)?;
    chapter.cell("run", |out| {
        // ANCHOR: run
        let query = count_by_event_type(&chapter.session, &input)?;
        query.await_termination()?;
        let progress = query.last_progress().context("the query ran no batch")?;
        out.print(format!("batches: {}, rows in the last batch: {}", progress.batch_id + 1, progress.num_input_rows));
        out.print(format!("groups in state: {}", progress.state_operators[0].num_rows_total));
        // ANCHOR_END: run
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
