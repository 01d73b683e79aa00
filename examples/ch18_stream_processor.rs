//! Chapter 18 — The stream processor, a small project: a command-line job over CSV event
//! files, either aggregated per event type (`--mode csv-agg`) or filtered into a JSON log
//! (`--mode csv-log`); or over CSV lines from a TCP server (`--mode websocket --host H --port P`).
//!
//! Run: `cargo run --example ch18_stream_processor -- --mode csv-agg` (`--help` lists every
//! option). With no `--input`, it generates a few CSV files first; `cargo run --bin csv-events`
//! keeps writing more (or, with `--serve 9999`, serves lines for `--mode websocket`). The
//! book's recorded sample output is `cargo run -- run --chapter ch18_stream_processor`.

use std::path::{Path, PathBuf};

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use brooklet_book::sockets::{LineServer, read_lines};
use clap::{CommandFactory, Parser, ValueEnum};

// ANCHOR: cli
/// A small streaming job over a directory of CSV event files.
#[derive(Debug, Parser)]
#[command(name = "stream_processor", version)]
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
fn events(session: &Session, args: &Args, input: &Path) -> brooklet::Result<DataFrame> {
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
pub fn start(session: &Session, args: &Args, input: &Path) -> brooklet::Result<StreamingQuery> {
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

// ANCHOR: report
/// What `main` does with a job that ends (the file modes without `--every`): runs it to its
/// end and says what its last batch did.
pub fn run_to_end(session: &Session, args: &Args, input: &Path) -> brooklet::Result<String> {
    let query = start(session, args, input)?;
    query.await_termination()?;
    Ok(report(&query))
}

/// What the program prints when its query ends.
pub fn report(query: &StreamingQuery) -> String {
    match query.last_progress() {
        Some(p) => {
            format!("last batch {}: {} rows in, {} rows out", p.batch_id, p.num_input_rows, p.sink.num_output_rows)
        }
        None => "no new input: nothing to do".to_string(),
    }
}
// ANCHOR_END: report

/// The program's `Args` for the command line `words` (after the program's name).
fn args(words: &[&str]) -> Args {
    Args::parse_from(std::iter::once("stream_processor").chain(words.iter().copied()))
}

/// The book's sample output: each mode run as the command line shows, in the chapter's session.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let session = &chapter.session;
    let (input, log, checkpoints) = (chapter.path("input"), chapter.path("log"), chapter.path("checkpoints"));
    let (input, log) = (input.display().to_string(), log.display().to_string());
    let checkpoint = |mode: &str| checkpoints.join(mode).display().to_string();
    let mut generator = EventGenerator::new(11, "2024-01-01T09:00:00Z", 5);

    chapter.cell("help", |out| {
        // ANCHOR: help
        out.print(Args::command().render_help());
        // ANCHOR_END: help
        Ok(())
    })?;

    chapter.cell("generate", |out| {
        // ANCHOR: generate
        // What `cargo run --bin csv-events -- --files 3 --events-per-file 10` writes.
        let files = generator.write_csv_files(Path::new(&input), 3, 10)?;
        for file in &files {
            out.print(file.file_name().unwrap_or_default().to_string_lossy());
        }
        let first = std::fs::read_to_string(&files[0])?;
        out.print(first.lines().take(4).collect::<Vec<_>>().join("\n"));
        // ANCHOR_END: generate
        Ok(())
    })?;

    chapter.cell("csv_agg", |out| {
        // ANCHOR: csv_agg
        // $ stream_processor --mode csv-agg --input input --checkpoint checkpoints/csv-agg
        let args = args(&["--mode", "csv-agg", "--input", &input, "--checkpoint", &checkpoint("csv-agg")]);
        out.print(run_to_end(session, &args, input.as_ref())?);
        // ANCHOR_END: csv_agg
        Ok(())
    })?;

    chapter.cell("csv_agg_again", |out| {
        // ANCHOR: csv_agg_again
        // The same command again: every file is in the checkpoint already.
        let args = args(&["--mode", "csv-agg", "--input", &input, "--checkpoint", &checkpoint("csv-agg")]);
        out.print(run_to_end(session, &args, input.as_ref())?);
        // Meanwhile the generator writes two more files; the next run reads only those.
        generator.write_csv_files(Path::new(&input), 2, 10)?;
        out.print(run_to_end(session, &args, input.as_ref())?);
        // ANCHOR_END: csv_agg_again
        Ok(())
    })?;

    chapter.cell("csv_log", |out| {
        // ANCHOR: csv_log
        // $ stream_processor --mode csv-log --input input --output log --max-files-per-trigger 5
        let given = ["--mode", "csv-log", "--input", &input, "--output", &log, "--max-files-per-trigger", "5"];
        let args = args(&[&given[..], &["--checkpoint", &checkpoint("csv-log")]].concat());
        out.print(run_to_end(session, &args, input.as_ref())?);
        // The log, read back: one JSON object per line.
        let json = session.read().format("json").load(&log)?;
        let first = json.order_by(vec![col("event_id").sort(true, false)])?.limit(5)?;
        out.print(first.show_string(5, 0)?);
        // ANCHOR_END: csv_log
        Ok(())
    })?;

    chapter.cell("websocket", |out| {
        // ANCHOR: websocket
        // What `cargo run --bin csv-events -- --serve <port>` does, on a free port: CSV lines,
        // here three bursts of ten, each sent once the query has read the one before.
        let server = LineServer::start()?;
        let port = server.port.to_string();
        let mut lines = EventGenerator::new(3, "2024-01-01T09:00:00Z", 5).events(30).into_iter().map(|e| e.to_csv());
        // $ stream_processor --mode websocket --host 127.0.0.1 --port <port>
        let given = ["--mode", "websocket", "--host", "127.0.0.1", "--port", &port];
        let args = args(&[&given[..], &["--checkpoint", &checkpoint("websocket")]].concat());
        let query = start(session, &args, input.as_ref())?;
        for burst in 1..=3 {
            server.send(&lines.by_ref().take(10).map(|l| l + "\n").collect::<String>())?;
            read_lines(&query, 10 * burst)?;
        }
        query.stop()?;
        out.print(report(&query));
        // ANCHOR_END: websocket
        Ok(())
    })?;
    Ok(())
}

#[allow(dead_code)]
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
    let session = Session::new();
    if args.mode == Mode::Websocket || args.every.is_some() {
        // A job that keeps running: until Ctrl-C.
        return Ok(start(&session, &args, &input)?.await_termination()?);
    }
    println!("{}", run_to_end(&session, &args, &input)?);
    Ok(())
}
