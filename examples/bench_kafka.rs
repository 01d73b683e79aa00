//! The Kafka benchmark: 1,000,000 generated JSON events (~150 B each) in a 4-partition topic
//! on the local broker (`scripts/kafka.sh start`).
//!
//! ```text
//! cargo run --release --example bench_kafka                  # produce once, then every scenario
//! cargo run --release --example bench_kafka -- --events 200000
//! ```
//!
//! Scenarios, each timed from start to the last record handled:
//! - `raw`: rdkafka consumers with no parsing, one per core with the partitions split between
//!   them as Brooklet splits them: the limit for Brooklet's source.
//! - `source`: Brooklet's Kafka source -> `from_json` -> count per event_type (complete mode,
//!   memory sink), all available records in one batch (`Trigger::AvailableNow`).
//! - `exactly-once`: Brooklet's Kafka source -> the exactly-once Kafka sink (one transaction).
//!
//! The input topic is reused when it already holds `--events` records.

use std::time::Instant;

use brooklet::functions::{col, from_json};
use brooklet::prelude::*;
use brooklet::{Session, Trigger};
use brooklet_book::bench::{Scenario, count_event_types, end_offsets, raw_consume, run_scenarios};
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use brooklet_book::kafka::{DEFAULT_BOOTSTRAP, event_records, produce, producer, recreate_topic};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Events in the input topic.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Its partitions.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Bootstrap servers.
    #[arg(long, env = "BROOKLET_KAFKA_BOOTSTRAP", default_value = DEFAULT_BOOTSTRAP)]
    bootstrap: String,
    /// How many times each scenario runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const INPUT: &str = "bench-events";

fn prepare_input(args: &Args) -> anyhow::Result<()> {
    if let Ok(ends) = end_offsets(&args.bootstrap, INPUT, args.partitions)
        && ends.iter().sum::<i64>() == args.events as i64
    {
        println!("input: {INPUT} already holds {} events", args.events);
        return Ok(());
    }
    recreate_topic(&args.bootstrap, INPUT, args.partitions)?;
    let mut generator = EventGenerator::new(1, "2024-01-01T00:00:00Z", 1000);
    let events = (0..args.events).map(|_| generator.next_event());
    let started = Instant::now();
    let mut bytes = 0usize;
    let records = event_records(events).inspect(|r| bytes += r.value.len());
    produce(&producer(&args.bootstrap)?, INPUT, records, || {})?;
    let s = started.elapsed().as_secs_f64();
    println!(
        "input: produced {} events ({:.0} B each on average) in {s:.2} s ({:.0} events/s)",
        args.events,
        bytes as f64 / args.events as f64,
        args.events as f64 / s
    );
    Ok(())
}

fn source(args: &Args, session: &Session) -> anyhow::Result<DataFrame> {
    Ok(session
        .read_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", &args.bootstrap)
        .option("subscribe", INPUT)
        .option("startingOffsets", "earliest")
        .load_source()?)
}

/// Brooklet: from_json, then count per event_type.
fn brooklet_count(args: &Args) -> anyhow::Result<usize> {
    let session = Session::new();
    count_event_types(
        source(args, &session)?
            .select(vec![from_json(col("value"), EVENT_SCHEMA).alias("e")])?
            .select_expr(&["e.event_type AS event_type"])?,
    )
}

/// Brooklet: copy to another topic with the exactly-once sink.
fn brooklet_exactly_once(args: &Args, run: usize) -> anyhow::Result<usize> {
    let output = format!("bench-out-{run}");
    recreate_topic(&args.bootstrap, &output, args.partitions)?;
    let session = Session::new();
    let dir = tempfile::tempdir()?;
    let query = source(args, &session)?
        .select_expr(&["key", "value"])?
        .write_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", &args.bootstrap)
        .option("topic", &output)
        .option("deliveryGuarantee", "exactly-once")
        .option("checkpointLocation", dir.path().display())
        .trigger(Trigger::AvailableNow)
        .start()?;
    query.await_termination()?;
    let rows = query.recent_progress().iter().map(|p| p.num_input_rows as usize).sum();
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    prepare_input(&args)?;
    let scenarios: [(&str, Scenario<'_>); 3] = [
        ("raw", &|_| raw_consume(&args.bootstrap, INPUT, args.partitions)),
        ("source", &|_| brooklet_count(&args)),
        ("exactly-once", &|r| brooklet_exactly_once(&args, r)),
    ];
    let rates = run_scenarios(&scenarios, args.runs, args.events)?;
    println!("(b)/(a) = source/raw = {:.2}", rates[1] / rates[0]);
    println!("(c)/(a) = exactly-once/raw = {:.2}", rates[2] / rates[0]);
    Ok(())
}
