//! The foundation benchmark: 2,000,000 generated JSON events in 20 files through Brooklet.
//!
//! ```text
//! cargo run --release --example bench_pipeline             # every scenario, one process each
//! cargo run --release --example bench_pipeline -- parquet-per-file --events 200000
//! ```
//!
//! Scenarios: JSON -> Parquet sink with all files in one batch and with one file per batch;
//! the same into a Delta table (each batch one commit, exactly once);
//! the same with each event left-joined to a static 10,000-row users table (CSV, read again
//! every batch, as Spark reads it) on `user_id`, both ways;
//! JSON -> group_by(event_type) count/avg/sum in complete mode to the memory sink, both ways;
//! JSON -> 5-minute tumbling windows with a 10-minute watermark in append mode, both ways;
//! and the per-batch overhead of a one-row batch with checkpointing on, to memory and to a Delta
//! table (the commit latency of a tiny batch: its `addBatch` time). `libraries-only` does
//! the JSON -> Parquet work with no engine at all (arrow-json, then Brooklet's parquet writer,
//! files on every core): the floor the engine's own overhead is measured against. Each scenario runs in
//! its own process, so peak RSS and the time from process start to the first batch's output
//! (measured by the parent, from spawn to the child's "first-output" line) are its own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brooklet::execution::listener::BatchOutput;
use brooklet::prelude::*;
use brooklet::{StreamingQueryListener, Trigger};
use brooklet_book::bench::rss_mb;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// One scenario, or `all`.
    #[arg(default_value = "all")]
    scenario: String,
    /// Events in the input.
    #[arg(long, default_value_t = 2_000_000)]
    events: usize,
    /// Files the events are spread over.
    #[arg(long, default_value_t = 20)]
    files: usize,
    /// Where inputs and outputs go.
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
    /// One-row batches to time in `tiny-batches`.
    #[arg(long, default_value_t = 1_000)]
    tiny_batches: u64,
}

const SCENARIOS: [&str; 13] = [
    "parquet-one-batch",
    "parquet-per-file",
    "delta-one-batch",
    "delta-per-file",
    "enrich-one-batch",
    "enrich-per-file",
    "aggregate-one-batch",
    "aggregate-per-file",
    "window-one-batch",
    "window-per-file",
    "tiny-batches",
    "delta-tiny-batches",
    "libraries-only",
];

/// Prints "first-output" on the first batch delivered to a sink, and counts batches.
#[derive(Default)]
struct Watch {
    batches: AtomicU64,
}

impl StreamingQueryListener for Watch {
    fn on_batch_output(&self, _output: &BatchOutput) {
        if self.batches.fetch_add(1, Ordering::SeqCst) == 0 {
            println!("first-output");
        }
    }
}

fn input_dir(args: &Args) -> PathBuf {
    args.dir.join(format!("input-{}-{}", args.events, args.files))
}

fn generate(args: &Args) -> anyhow::Result<()> {
    let dir = input_dir(args);
    if dir.is_dir() && std::fs::read_dir(&dir)?.count() == args.files {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut generator = EventGenerator::new(2024, "2024-01-01T00:00:00Z", 10_000);
    generator.write_json_files(&dir, args.files, args.events / args.files)?;
    Ok(())
}

/// The users table the `enrich-*` scenarios join with: one row per generated user (10,000),
/// as CSV.
fn users_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let dir = args.dir.join("users-10000");
    if !dir.join("users.csv").is_file() {
        std::fs::create_dir_all(&dir)?;
        let mut csv = String::from("user_id,name,tier\n");
        for u in 1..=10_000 {
            let tier = ["gold", "silver", "bronze"][u % 3];
            csv.push_str(&format!("user-{u:02},User {u},{tier}\n"));
        }
        std::fs::write(dir.join("users.csv"), csv)?;
    }
    Ok(dir)
}

fn run_scenario(args: &Args, scenario: &str) -> anyhow::Result<()> {
    let session = Session::new();
    let watch = Arc::new(Watch::default());
    session.streams().add_listener(watch.clone());
    let out = args.dir.join("out").join(scenario);
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let events = |per_batch: Option<usize>| {
        let mut reader = session.read_stream().format("json").schema(EVENT_SCHEMA);
        if let Some(n) = per_batch {
            reader = reader.option("maxFilesPerTrigger", n);
        }
        reader.load(input_dir(args))
    };
    let checkpoint = out.join("checkpoint");
    let per_batch = scenario.ends_with("-per-file").then_some(1);
    let writer = match scenario {
        "parquet-one-batch" | "parquet-per-file" => {
            events(per_batch)?.write_stream().format("parquet").option("path", out.join("data").display())
        }
        "delta-one-batch" | "delta-per-file" => {
            events(per_batch)?.write_stream().format("delta").option("path", out.join("table").display())
        }
        "enrich-one-batch" | "enrich-per-file" => {
            let users =
                session.read().format("csv").option("header", true).schema("user_id STRING, name STRING, tier STRING");
            let users = users.load(users_dir(args)?)?;
            let enriched = events(per_batch)?.join(users, "user_id", "left")?;
            enriched.write_stream().format("parquet").option("path", out.join("data").display())
        }
        "aggregate-one-batch" | "aggregate-per-file" => events(per_batch)?
            .group_by(["event_type"])?
            .agg(["count(*) AS events", "avg(value) AS avg_value", "sum(value) AS total"])?
            .write_stream()
            .format("memory")
            .query_name("totals")
            .output_mode("complete"),
        "window-one-batch" | "window-per-file" => events(per_batch)?
            .with_watermark("timestamp", "10 minutes")?
            .group_by([window(col("timestamp"), "5 minutes")])?
            .agg(["count(*) AS events", "avg(value) AS avg_value", "sum(value) AS total"])?
            .write_stream()
            .format("memory")
            .query_name("windows")
            .output_mode("append"),
        "tiny-batches" | "delta-tiny-batches" => {
            let rows = session
                .read_stream()
                .format("rate-micro-batch")
                .option("rowsPerBatch", 1)
                .load_source()?
                .select(["value", "value * 2 AS doubled"])?
                .write_stream();
            let writer = match scenario {
                "tiny-batches" => rows.format("memory").query_name("tiny"),
                _ => rows.format("delta").option("path", out.join("table").display()),
            };
            let q = writer.option("checkpointLocation", checkpoint.display()).start()?;
            // Warm up, then time `tiny_batches` batches back to back.
            while watch.batches.load(Ordering::SeqCst) < 20 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let (from, t) = (watch.batches.load(Ordering::SeqCst), Instant::now());
            while watch.batches.load(Ordering::SeqCst) < from + args.tiny_batches {
                std::thread::sleep(Duration::from_millis(1));
            }
            let done = watch.batches.load(Ordering::SeqCst) - from;
            let per_batch_ms = t.elapsed().as_secs_f64() * 1000.0 / done as f64;
            // The sink's part of each batch (for Delta: its files and its commit).
            let add_batch: Vec<f64> =
                q.recent_progress().iter().filter_map(|p| p.duration_ms.get("addBatch").map(|&v| v as f64)).collect();
            let add_batch_ms = brooklet_book::bench::median(add_batch);
            q.stop()?;
            println!(
                "result {{\"scenario\":\"{scenario}\",\"ms_per_batch\":{per_batch_ms:.3},\"add_batch_ms_median\":{add_batch_ms:.1},\"batches\":{done},\"peak_rss_mb\":{:.0}}}",
                rss_mb("VmHWM:")
            );
            return Ok(());
        }
        "libraries-only" => return libraries_only(args, &out, started),
        other => anyhow::bail!("unknown scenario '{other}'; scenarios: {}", SCENARIOS.join(", ")),
    };
    let q = writer.option("checkpointLocation", checkpoint.display()).trigger(Trigger::AvailableNow).start()?;
    q.await_termination()?;
    phases(&q);
    let rows: u64 = q.recent_progress().iter().map(|p| p.num_input_rows).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "result {{\"scenario\":\"{scenario}\",\"events\":{rows},\"seconds\":{seconds:.3},\"events_per_second\":{:.0},\"batches\":{},\"peak_rss_mb\":{:.0}}}",
        rows as f64 / seconds,
        watch.batches.load(Ordering::SeqCst),
        rss_mb("VmHWM:")
    );
    Ok(())
}

/// The JSON -> Parquet one-batch work without the engine: every file decoded by arrow-json
/// on one thread per core (timestamps as text, then cast, as the engine reads them), then the
/// rows written as one parquet file per core.
fn libraries_only(args: &Args, out: &Path, started: Instant) -> anyhow::Result<()> {
    use arrow::array::RecordBatch;
    use arrow::datatypes::{DataType, Field, Schema};

    let target = brooklet::ddl::parse_schema(EVENT_SCHEMA)?;
    let as_text: Vec<Field> = target
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(_, _) => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let as_text = Arc::new(Schema::new(as_text));
    let decode = |path: &Path| -> anyhow::Result<Vec<RecordBatch>> {
        let file = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let reader = arrow::json::ReaderBuilder::new(as_text.clone()).with_batch_size(8192).build(file)?;
        let mut batches = Vec::new();
        for batch in reader {
            let columns = batch?
                .columns()
                .iter()
                .zip(target.fields())
                .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            batches.push(RecordBatch::try_new(target.clone(), columns)?);
        }
        Ok(batches)
    };
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(input_dir(args))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    let cores = std::thread::available_parallelism()?.get();
    let next = AtomicU64::new(0);
    let decoded = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<(usize, Vec<RecordBatch>)>> {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(path) = files.get(i) else { return Ok(mine) };
                        mine.push((i, decode(path)?));
                    }
                })
            })
            .collect();
        workers.into_iter().map(joined).collect::<anyhow::Result<Vec<_>>>()
    })?;
    let mut decoded: Vec<_> = decoded.into_iter().flatten().collect();
    decoded.sort_by_key(|(i, _)| *i);
    let batches: Vec<RecordBatch> = decoded.into_iter().flat_map(|(_, b)| b).collect();
    std::fs::create_dir_all(out)?;
    let target = &target;
    std::thread::scope(|scope| {
        let writers: Vec<_> = batches
            .chunks(batches.len().div_ceil(cores).max(1))
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || -> anyhow::Result<()> {
                    let path = out.join(format!("part-{i}.parquet"));
                    Ok(brooklet::format::write_parquet(&path, target, part)?)
                })
            })
            .collect();
        writers.into_iter().try_for_each(joined)
    })?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "result {{\"scenario\":\"libraries-only\",\"events\":{rows},\"seconds\":{seconds:.3},\"events_per_second\":{:.0},\"batches\":1,\"peak_rss_mb\":{:.0}}}",
        rows as f64 / seconds,
        rss_mb("VmHWM:")
    );
    Ok(())
}

/// A scoped thread's result; a panic becomes an error.
fn joined<T>(worker: std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>) -> anyhow::Result<T> {
    worker.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
}

/// Prints milliseconds per phase, summed over the query's batches (to stderr).
fn phases(q: &StreamingQuery) {
    let mut total = std::collections::BTreeMap::new();
    for p in q.recent_progress() {
        for (k, v) in p.duration_ms {
            *total.entry(k).or_insert(0) += v;
        }
    }
    eprintln!("  phases (ms): {total:?}");
}

/// Runs each scenario in a child process and times spawn -> first output.
fn run_all(args: &Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    println!("{} events in {} files ({} MB)", args.events, args.files, dir_mb(&input_dir(args)));
    for scenario in SCENARIOS {
        let spawned = Instant::now();
        let mut child = Command::new(&exe)
            .args([scenario, "--events", &args.events.to_string(), "--files", &args.files.to_string()])
            .args(["--tiny-batches", &args.tiny_batches.to_string()])
            .arg("--dir")
            .arg(&args.dir)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut first_output_ms = None;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line == "first-output" && first_output_ms.is_none() {
                first_output_ms = Some(spawned.elapsed().as_secs_f64() * 1000.0);
            } else if let Some(result) = line.strip_prefix("result ") {
                println!("{result} first_output_ms={:.0}", first_output_ms.unwrap_or(f64::NAN));
            }
        }
        anyhow::ensure!(child.wait()?.success(), "scenario {scenario} failed");
    }
    Ok(())
}

fn dir_mb(dir: &Path) -> u64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    bytes / 1_000_000
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    generate(&args)?;
    if args.scenario == "all" { run_all(&args) } else { run_scenario(&args, &args.scenario) }
}
