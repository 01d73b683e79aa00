//! Chapter 3's command-line stream processor: CSV event files in, either aggregated per event
//! type (`--mode csv-agg`) or filtered into a JSON log (`--mode csv-log`); or CSV lines from a
//! TCP server, aggregated (`--mode websocket --host H --port P`).
//!
//! Run: `cargo run --example ch03_stream_processor -- --mode csv-agg`
//! With no `--input`, it generates a few CSV files first; `cargo run --bin csv-events` keeps
//! writing more (or, with `--serve 9999`, serves lines for `--mode websocket`); `--help` lists
//! every option.

use std::path::PathBuf;

use brooklet::prelude::*;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use clap::{Parser, ValueEnum};

// ANCHOR: cli
/// A small streaming job over a directory of CSV event files.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// What to do with the events.
    #[arg(long, value_enum, default_value_t = Mode::CsvAgg)]
    pub mode: Mode,
    /// Directory the CSV files arrive in (default: a generated one).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Where csv-log writes its JSON files.
    #[arg(long, default_value = "target/stream-processor/log")]
    pub output: PathBuf,
    /// The query's checkpoint directory: rerun with the same one to continue where it stopped
    /// (default: one per mode under target/stream-processor).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// New files per micro-batch.
    #[arg(long, default_value_t = 1)]
    pub max_files_per_trigger: usize,
    /// Keep running and pick up new files every interval (e.g. "5 seconds") instead of
    /// processing what is there and stopping (`websocket` always keeps running, every second
    /// unless this says otherwise).
    #[arg(long)]
    pub every: Option<String>,
    /// The server `websocket` reads lines from.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Its port.
    #[arg(long, default_value_t = 9999)]
    pub port: u16,
}

/// The three jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Count events and average value per event type; print the table after every batch.
    CsvAgg,
    /// Keep purchases and cart events, append them to a JSON-lines log.
    CsvLog,
    /// `csv-agg` over CSV lines read from a TCP server (`--host`, `--port`; the seed project's
    /// name for it: it is Spark's plain-TCP `socket` source, not the WebSocket protocol).
    Websocket,
}

/// The events, from CSV files in `input` or, for `websocket`, CSV lines from the server.
fn events(session: &Session, args: &Args, input: &std::path::Path) -> brooklet::Result<DataFrame> {
    if args.mode == Mode::Websocket {
        // Each line is one event in EVENT_SCHEMA's column order.
        return session
            .read_stream()
            .format("socket")
            .option("host", &args.host)
            .option("port", args.port)
            .load_source()?
            .select_expr(&[
                "split_part(value, ',', 1) AS event_id",
                "split_part(value, ',', 4) AS event_type",
                "CAST(split_part(value, ',', 5) AS DOUBLE) AS value",
            ]);
    }
    session
        .read_stream()
        .format("csv")
        .option("header", true)
        .option("maxFilesPerTrigger", args.max_files_per_trigger)
        .schema(EVENT_SCHEMA)
        .load(input)
}

/// Starts the job `args` describe.
pub fn start(session: &Session, args: &Args, input: &std::path::Path) -> brooklet::Result<StreamingQuery> {
    let events = events(session, args, input)?;
    let trigger = match (&args.every, args.mode) {
        (Some(interval), _) => Trigger::processing_time(interval)?,
        (None, Mode::Websocket) => Trigger::processing_time("1 second")?,
        (None, _) => Trigger::AvailableNow,
    };
    let writer = match args.mode {
        Mode::CsvAgg | Mode::Websocket => events
            .group_by(["event_type"])?
            .agg(["count(*) AS events", "round(avg(value), 2) AS avg_value"])?
            .write_stream()
            .format("console")
            .output_mode("complete"),
        Mode::CsvLog => events
            .filter("event_type IN ('purchase', 'add_to_cart')")?
            .write_stream()
            .format("json")
            .option("path", args.output.display()),
    };
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "target/stream-processor/checkpoint-{}",
            args.mode.to_possible_value().expect("no skipped modes").get_name()
        ))
    });
    writer.query_name("stream-processor").option("checkpointLocation", checkpoint.display()).trigger(trigger).start()
}
// ANCHOR_END: cli

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let input = match &args.input {
        Some(dir) => dir.clone(),
        None => {
            let dir = PathBuf::from("target/stream-processor/input");
            if !dir.exists() {
                EventGenerator::new(11, "2024-01-01T09:00:00Z", 5).write_csv_files(&dir, 3, 10)?;
            }
            dir
        }
    };
    let query = start(&Session::new(), &args, &input)?;
    query.await_termination()?;
    if let Some(p) = query.last_progress() {
        println!("last batch {}: {} rows in, {} rows out", p.batch_id, p.num_input_rows, p.sink.num_output_rows);
    }
    Ok(())
}
