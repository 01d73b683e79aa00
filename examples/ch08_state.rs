//! Chapter 8 — State: what a stateful query keeps between batches and how big it grows, how
//! the state is laid out in the checkpoint, a restart that picks it up, and window functions
//! on static data for contrast.
//!
//! Run: `cargo run --example ch08_state`

use std::fmt::Write as _;
use std::path::Path;

use brooklet::functions::{Over, Window, lag, row_number};
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// The input generator: events from 10:00, some delivered twice, some late.
fn generator() -> EventGenerator {
    EventGenerator::new(8, "2024-01-01T10:00:00Z", 4).with_duplicates(10).with_late_events(10, 4 * 60_000)
}

// ANCHOR: query
/// Events per five-minute window and type, each event counted once: two stateful operators,
/// a deduplication and an aggregation, both bounded by a five-minute watermark.
pub fn counts(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(input)?
        .with_watermark("timestamp", "5 minutes")?
        .drop_duplicates_within_watermark(&["event_id"])?
        .group_by([window(col("timestamp"), "5 minutes"), col("event_type")])?
        .count()?
        .select(["window['start'] AS start", "window['end'] AS end", "event_type", "count"])
}

/// Runs `counts` over the files there are now, from the checkpoint, then stops.
pub fn run_once(session: &Session, input: &Path, checkpoint: &Path) -> brooklet::Result<StreamingQuery> {
    let query = counts(session, input)?
        .write_stream()
        .format("console")
        .query_name("counts")
        .option("checkpointLocation", checkpoint.display())
        .trigger(Trigger::AvailableNow)
        .start()?;
    query.await_termination()?;
    Ok(query)
}
// ANCHOR_END: query

// ANCHOR: state_sizes
/// Per batch and operator: rows in state, rows this batch updated and removed, late rows
/// dropped, and the memory the state takes.
pub fn state_sizes(runs: &[&StreamingQuery]) -> String {
    let mut out = String::from("batch  operator               in state  updated  removed  dropped  memory (bytes)\n");
    for p in runs.iter().flat_map(|q| q.recent_progress()) {
        for op in &p.state_operators {
            writeln!(
                out,
                "{:>5}  {:<21}  {:>8}  {:>7}  {:>7}  {:>7}  {:>14}",
                p.batch_id,
                op.operator_name,
                op.num_rows_total,
                op.num_rows_updated,
                op.num_rows_removed,
                op.num_rows_dropped_by_watermark,
                op.memory_used_bytes
            )
            .expect("writing to a String");
        }
    }
    out
}
// ANCHOR_END: state_sizes

// ANCHOR: state_file
/// A state file as a table: it is an Arrow IPC file.
pub fn state_file(path: &Path) -> anyhow::Result<String> {
    let reader = arrow::ipc::reader::FileReader::try_new(std::fs::File::open(path)?, None)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(brooklet::display::format_table(&schema, &batches, 10, 0)?)
}
// ANCHOR_END: state_file

/// The checkpoint's files; state files with their size and rows.
fn layout(checkpoint: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    let mut dirs = vec![checkpoint.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() { dirs.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    let mut out = String::new();
    for path in files {
        let name = path.strip_prefix(checkpoint)?.display().to_string();
        if name.starts_with("state/") {
            let reader = arrow::ipc::reader::FileReader::try_new(std::fs::File::open(&path)?, None)?;
            let rows: usize = reader.map(|b| b.map(|b| b.num_rows())).sum::<Result<_, _>>()?;
            writeln!(out, "{name:<20} {:>6} bytes  {rows:>3} rows", std::fs::metadata(&path)?.len())?;
        } else {
            writeln!(out, "{name}")?;
        }
    }
    Ok(out)
}

// ANCHOR: static_windows
/// Static data: each event with the value of the user's previous event and its position in
/// the user's day — window functions over a window specification, as in Spark.
pub fn previous_per_user(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    let by_user = Window::partition_by(&["user_id"]).order_by(&["timestamp"]);
    session
        .read()
        .format("json")
        .schema(EVENT_SCHEMA)
        .load(input)?
        .drop_duplicates(&["event_id"])?
        .select([
            col("user_id"),
            col("timestamp"),
            col("value"),
            lag(col("value"), Some(1), None).over(&by_user)?.alias("previous_value"),
            row_number().over(&by_user)?.alias("n"),
        ])?
        .filter("user_id = 'user-01' AND n <= 6")?
        .order_by(vec![col("n").sort(true, true)])
}
// ANCHOR_END: static_windows

// ANCHOR: streaming_lag
/// The same window function on a stream: refused when the query starts.
pub fn lag_on_a_stream(session: &Session, input: &Path) -> brooklet::Result<StreamingQuery> {
    let by_user = Window::partition_by(&["user_id"]).order_by(&["timestamp"]);
    session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .load(input)?
        .select([col("user_id"), lag(col("value"), Some(1), None).over(&by_user)?.alias("previous_value")])?
        .write_stream()
        .format("console")
        .start()
}
// ANCHOR_END: streaming_lag

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let (input, checkpoint) = (chapter.path("events"), chapter.path("checkpoint"));
    let session = &chapter.session;
    let mut events = generator();
    let per_file = chapter.param("events_per_file", 120)?;

    let (first, second) = chapter.cell("restart", |_| {
        // ANCHOR: restart
        events.write_json_files(&input, 3, per_file)?; // three files: batches 0, 1, 2
        let first = run_once(session, &input, &checkpoint)?;

        events.write_json_files(&input, 2, per_file)?; // two more arrive while the query is down
        let second = run_once(session, &input, &checkpoint)?; // state restored from the checkpoint
        // ANCHOR_END: restart
        Ok((first, second))
    })?;
    chapter.show("state_sizes", || Ok(state_sizes(&[&first, &second])))?;
    chapter.cell("checkpoint_layout", |out| {
        // ANCHOR: checkpoint_layout
        out.print(layout(&checkpoint)?);
        // ANCHOR_END: checkpoint_layout
        Ok(())
    })?;
    chapter.cell("aggregate_delta", |out| {
        // ANCHOR: aggregate_delta
        out.print(state_file(&checkpoint.join("state/0/1.delta"))?);
        // ANCHOR_END: aggregate_delta
        Ok(())
    })?;
    chapter.cell("dedup_delta", |out| {
        // ANCHOR: dedup_delta
        out.print(state_file(&checkpoint.join("state/1/1.delta"))?);
        // ANCHOR_END: dedup_delta
        Ok(())
    })?;
    chapter.show("static_windows", || Ok(previous_per_user(session, &input)?.show_string(20, 0)?))?;
    // The book marks this cell expect-error: its error is its output.
    let _refused = chapter.cell("streaming_lag", |_| Ok(lag_on_a_stream(session, &input)?));
    Ok(())
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
