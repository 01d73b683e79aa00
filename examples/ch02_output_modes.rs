//! Chapter 2 — Output modes: append, update and complete on the same input, which query shapes
//! and sinks allow which mode, and what each mode costs in state.
//!
//! Run: `cargo run --example ch02_output_modes`

use std::fmt::Write as _;
use std::path::Path;

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// The same three files for every query in this chapter, read one per batch.
pub fn events(session: &Session, input: &Path) -> brooklet::Result<DataFrame> {
    session.read_stream().format("json").schema(EVENT_SCHEMA).option("maxFilesPerTrigger", 1).load(input)
}

// ANCHOR: append
/// Append: each purchase is written once, in the batch it arrives in.
pub fn purchases(events: DataFrame) -> brooklet::Result<StreamingQuery> {
    events
        .filter("event_type = 'purchase'")?
        .select(["event_id", "user_id", "value"])?
        .write_stream()
        .format("console")
        .output_mode("append")
        .query_name("purchases_append")
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: append

// ANCHOR: aggregate
/// Counts and totals per event type, written in the given output mode.
pub fn totals(events: DataFrame, mode: &str, name: &str) -> brooklet::Result<StreamingQuery> {
    events
        .group_by(["event_type"])?
        .agg(["count(*) AS events", "round(sum(value), 2) AS total"])?
        .write_stream()
        .format("console")
        .output_mode(mode)
        .query_name(name)
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: aggregate

// ANCHOR: validity
/// Tries each query shape in each output mode and reports what `start()` says. The probes
/// read an empty directory: only the verdict matters, no batch runs.
pub fn validity_matrix(session: &Session, empty: &Path) -> brooklet::Result<String> {
    type Shape = fn(DataFrame) -> brooklet::Result<DataFrame>;
    let shapes: [(&str, Shape); 3] = [
        ("select + filter", |df| df.filter("value > 100")),
        ("group_by + count", |df| df.group_by(["event_type"])?.count()),
        ("group_by + count + order_by", |df| {
            df.group_by(["event_type"])?.count()?.order_by(vec![col("count").sort(false, false)])
        }),
    ];
    let mut out = String::new();
    for (shape, build) in shapes {
        for mode in ["append", "update", "complete"] {
            let query = build(events(session, empty)?)?.write_stream().foreach_batch(|_rows, _batch_id| Ok(()));
            let verdict = match query.output_mode(mode).trigger(Trigger::AvailableNow).start() {
                Ok(q) => q.await_termination().map(|_| "ok".to_string())?,
                Err(e) => format!("error: {e}"),
            };
            writeln!(out, "{shape:<28} {mode:<9} {verdict}").expect("writing to a String");
        }
    }
    Ok(out)
}
// ANCHOR_END: validity

// ANCHOR: sinks
/// Which sinks take which output mode, for an aggregation (update, complete) and a
/// projection (append). Probes read an empty directory, as above.
pub fn sink_matrix(session: &Session, empty: &Path, scratch: &Path) -> brooklet::Result<String> {
    let mut out = String::new();
    for sink in ["console", "memory", "parquet", "json", "csv"] {
        let mut verdicts = Vec::new();
        for mode in ["append", "update", "complete"] {
            let df = events(session, empty)?;
            let df =
                if mode == "append" { df.select(["event_type"])? } else { df.group_by(["event_type"])?.count()? };
            let dir = scratch.join(format!("{sink}-{mode}"));
            let mut writer = df
                .write_stream()
                .format(sink)
                .output_mode(mode)
                .query_name(&format!("probe_{sink}_{mode}"))
                .option("checkpointLocation", dir.join("checkpoint").display())
                .trigger(Trigger::AvailableNow);
            if ["parquet", "json", "csv"].contains(&sink) {
                writer = writer.option("path", dir.join("out").display());
            }
            verdicts.push(match writer.start() {
                Ok(q) => q.await_termination().map(|_| format!("{mode}: ok"))?,
                Err(e) => format!("{mode}: {e}"),
            });
        }
        writeln!(out, "{sink:<8} {}", verdicts.join("\n         ")).expect("writing to a String");
    }
    Ok(out)
}
// ANCHOR_END: sinks

/// State size per batch, from each query's progress reports.
pub fn state_report(queries: &[&StreamingQuery]) -> String {
    let mut out = String::from("query            batch  input rows  output rows  state rows  state bytes\n");
    for q in queries {
        for p in q.recent_progress() {
            let (rows, bytes) = p.state_operators.first().map_or((0, 0), |s| (s.num_rows_total, s.memory_used_bytes));
            let name = q.name().unwrap_or_default();
            writeln!(
                out,
                "{name:<16} {:>5}  {:>10}  {:>11}  {rows:>10}  {bytes:>11}",
                p.batch_id, p.num_input_rows, p.sink.num_output_rows
            )
            .expect("writing to a String");
        }
    }
    out
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let input = chapter.path("events");
    let seed = chapter.param("seed", 2)?;
    EventGenerator::new(seed, "2024-01-01T09:00:00Z", 6).write_json_files(&input, 3, 12)?;
    let session = &chapter.session;

    let append = chapter.cell("append", |_| {
        let query = purchases(events(session, &input)?)?;
        query.await_termination()?;
        Ok(query)
    })?;
    let complete = chapter.cell("complete", |_| {
        // ANCHOR: complete
        let complete = totals(events(session, &input)?, "complete", "totals_complete")?;
        complete.await_termination()?;
        // ANCHOR_END: complete
        Ok(complete)
    })?;
    let update = chapter.cell("update", |_| {
        // ANCHOR: update
        let update = totals(events(session, &input)?, "update", "totals_update")?;
        update.await_termination()?;
        // ANCHOR_END: update
        Ok(update)
    })?;

    let empty = chapter.path("empty");
    std::fs::create_dir_all(&empty)?;
    chapter.show("validity", || Ok(validity_matrix(session, &empty)?))?;
    chapter.show("sinks", || Ok(sink_matrix(session, &empty, &chapter.path("sinks"))?))?;
    chapter.cell("state", |out| {
        // ANCHOR: state
        out.print(state_report(&[&append, &complete, &update]));
        // ANCHOR_END: state
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
