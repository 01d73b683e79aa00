//! The Avro benchmark: 1,000,000 generated events as JSON, Avro and Parquet.
//!
//! ```text
//! cargo run --release --example bench_avro                      # formats in memory
//! scripts/kafka.sh start && scripts/registry.sh start && cargo run --release --example bench_avro
//! cargo run --release --example bench_avro -- --events 200000 --runs 1
//! ```
//!
//! Formats, in memory, the same events in batches of `--batch` rows (as a Kafka source hands
//! them over):
//! - bytes per event: the JSON line, the bare Avro value, the Confluent-framed value (5 bytes
//!   more), an Avro container file (snappy) and a Parquet file of the decoded columns;
//! - decode events/s: `from_json` against `from_avro` (bare, schema given) and
//!   `from_avro_registry` (Confluent framed, writer schema looked up once), each to the six
//!   columns;
//! - encode events/s: `to_json` against `to_avro` of the six columns as a struct.
//!
//! Kafka, when a broker and a registry answer: the events produced Confluent-framed to a
//! 4-partition topic, then read by raw rdkafka consumers (values only touched) and by Brooklet's
//! Kafka source -> `from_avro_registry` -> count per event_type (`Trigger::AvailableNow`); the
//! ratio is the source's share of raw consumption. The topic is reused when it already holds
//! `--events` records.

use std::time::Instant;

use anyhow::bail;
use arrow::array::{ArrayRef, BinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use brooklet::functions::{AvroOptions, col, from_avro, from_avro_registry, from_json, struct_of, to_avro, to_json};
use brooklet::{DataFrame, Session};
use brooklet_book::avro_events::{AvroEvents, EVENT_AVRO_SCHEMA};
use brooklet_book::bench::{
    Scenario, bytes_of_files, count_event_types, end_offsets, median, raw_consume, run_scenarios,
};
use brooklet_book::events::{EVENT_SCHEMA, Event, EventGenerator};
use brooklet_book::kafka::{avro_event_records, produce, producer, recreate_topic};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// How many events.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Rows per input batch.
    #[arg(long, default_value_t = 100_000)]
    batch: usize,
    /// How many times each measurement runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Partitions of the Kafka topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
}

const TOPIC: &str = "bench-events-avro";
const COLUMNS: [&str; 6] = ["event_id", "timestamp", "user_id", "event_type", "value", "session_id"];

/// `values` as a one-column table `value` of `data_type`, in batches of `batch` rows.
fn values_table(session: &Session, values: ArrayRef, batch: usize) -> anyhow::Result<DataFrame> {
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new("value", values.data_type().clone(), false)]));
    let batches = (0..values.len())
        .step_by(batch)
        .map(|start| {
            let len = batch.min(values.len() - start);
            RecordBatch::try_new(schema.clone(), vec![values.slice(start, len)])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DataFrame::from_datafusion(session.clone(), session.datafusion().read_batches(batches)?))
}

/// Runs `df` `runs` times; the median events/s and the rows of the last run.
fn time(df: &DataFrame, runs: usize, events: usize) -> anyhow::Result<(f64, Vec<RecordBatch>)> {
    let mut rates = Vec::new();
    let mut last = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        last = df.collect()?;
        rates.push(events as f64 / started.elapsed().as_secs_f64());
        let rows: usize = last.iter().map(RecordBatch::num_rows).sum();
        if rows != events {
            bail!("{rows} rows, expected {events}");
        }
    }
    Ok((median(rates), last))
}

/// The decoded struct column `e` as the six event columns.
fn columns(df: DataFrame) -> anyhow::Result<DataFrame> {
    let exprs: Vec<String> = COLUMNS.iter().map(|c| format!("e.{c} AS {c}")).collect();
    Ok(df.select_expr(&exprs.iter().map(String::as_str).collect::<Vec<_>>())?)
}

fn formats(args: &Args, events: &[Event], registry: Option<&str>) -> anyhow::Result<()> {
    let session = Session::new();
    let n = events.len();
    let per_event = |bytes: u64| bytes as f64 / n as f64;
    let avro = AvroEvents::new()?;
    let json: ArrayRef = std::sync::Arc::new(StringArray::from_iter_values(events.iter().map(Event::to_json)));
    let bare: Vec<Vec<u8>> = events.iter().map(|e| avro.encode(e)).collect::<anyhow::Result<_>>()?;
    let json_bytes = json.to_data().buffers()[1].len() as u64;
    let avro_bytes: u64 = bare.iter().map(|v| v.len() as u64).sum();
    let bare: ArrayRef = std::sync::Arc::new(BinaryArray::from_iter_values(bare.iter()));

    println!("decode ({n} events, batches of {}, median of {} runs):", args.batch, args.runs);
    let json_table = values_table(&session, json, args.batch)?;
    let (json_rate, _) =
        time(&columns(json_table.select(vec![from_json(col("value"), EVENT_SCHEMA).alias("e")])?)?, args.runs, n)?;
    println!("  from_json                 {json_rate:>12.0} events/s");
    let avro_table = values_table(&session, bare, args.batch)?;
    let decoded = columns(avro_table.select(vec![from_avro(col("value"), EVENT_AVRO_SCHEMA).alias("e")])?)?;
    let (avro_rate, rows) = time(&decoded, args.runs, n)?;
    println!("  from_avro (bare)          {avro_rate:>12.0} events/s  = {:.2} x from_json", avro_rate / json_rate);
    if let Some(url) = registry {
        let subject = format!("{TOPIC}-value");
        let id = brooklet::registry::SchemaRegistry::new(url)
            .register(&subject, &serde_json::from_str(EVENT_AVRO_SCHEMA)?)?;
        let framed: Vec<Vec<u8>> = events.iter().map(|e| avro.encode_framed(e, id)).collect::<anyhow::Result<_>>()?;
        let framed: ArrayRef = std::sync::Arc::new(BinaryArray::from_iter_values(framed.iter()));
        let options = AvroOptions::registry(url).subject(&subject);
        let table = values_table(&session, framed, args.batch)?;
        let (rate, _) =
            time(&columns(table.select(vec![from_avro_registry(col("value"), &options).alias("e")])?)?, args.runs, n)?;
        println!("  from_avro (Confluent)     {rate:>12.0} events/s  = {:.2} x from_json", rate / json_rate);
    } else {
        println!("  from_avro (Confluent)     skipped: no schema registry (scripts/registry.sh start)");
    }

    let event_columns = DataFrame::from_datafusion(session.clone(), session.datafusion().read_batches(rows)?);
    println!("encode:");
    let (json_rate, _) =
        time(&event_columns.clone().select(vec![to_json(struct_of(&COLUMNS)).alias("v")])?, args.runs, n)?;
    println!("  to_json                   {json_rate:>12.0} events/s");
    let (avro_rate, _) =
        time(&event_columns.clone().select(vec![to_avro(struct_of(&COLUMNS)).alias("v")])?, args.runs, n)?;
    println!("  to_avro                   {avro_rate:>12.0} events/s  = {:.2} x to_json", avro_rate / json_rate);

    let dir = tempfile::tempdir()?;
    event_columns.write().format("parquet").save(dir.path().join("parquet"))?;
    event_columns.write().format("avro").save(dir.path().join("avro"))?;
    println!("bytes per event:");
    println!("  JSON line                 {:>8.1}", per_event(json_bytes));
    println!("  Avro value (bare)         {:>8.1}", per_event(avro_bytes));
    println!("  Avro value (Confluent)    {:>8.1}", per_event(avro_bytes + 5 * n as u64));
    println!("  Avro file (snappy)        {:>8.1}", per_event(bytes_of_files(&dir.path().join("avro"), "avro")?));
    println!("  Parquet file              {:>8.1}", per_event(bytes_of_files(&dir.path().join("parquet"), "parquet")?));
    Ok(())
}

fn prepare_topic(args: &Args, bootstrap: &str, url: &str, events: Vec<Event>) -> anyhow::Result<()> {
    if let Ok(ends) = end_offsets(bootstrap, TOPIC, args.partitions)
        && ends.iter().sum::<i64>() == args.events as i64
    {
        println!("input: {TOPIC} already holds {} events", args.events);
        return Ok(());
    }
    recreate_topic(bootstrap, TOPIC, args.partitions)?;
    let subject = format!("{TOPIC}-value");
    let id =
        brooklet::registry::SchemaRegistry::new(url).register(&subject, &serde_json::from_str(EVENT_AVRO_SCHEMA)?)?;
    let records = avro_event_records(events, id)?.collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    produce(&producer(bootstrap)?, TOPIC, records, || {})?;
    println!("input: produced {} Avro events in {:.2} s", args.events, started.elapsed().as_secs_f64());
    Ok(())
}

/// Brooklet: the Kafka source, `from_avro_registry`, a count per event_type.
fn brooklet_count(bootstrap: &str, url: &str) -> anyhow::Result<usize> {
    let session = Session::new();
    let options = AvroOptions::registry(url).subject(&format!("{TOPIC}-value"));
    count_event_types(
        session
            .read_stream()
            .format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", TOPIC)
            .option("startingOffsets", "earliest")
            .load_source()?
            .select(vec![from_avro_registry(col("value"), &options).alias("e")])?
            .select_expr(&["e.event_type AS event_type"])?,
    )
}

fn kafka(args: &Args, bootstrap: &str, url: &str, events: Vec<Event>) -> anyhow::Result<()> {
    prepare_topic(args, bootstrap, url, events)?;
    let scenarios: [(&str, Scenario<'_>); 2] = [
        ("raw", &|_| raw_consume(bootstrap, TOPIC, args.partitions)),
        ("source+avro", &|_| brooklet_count(bootstrap, url)),
    ];
    let rates = run_scenarios(&scenarios, args.runs, args.events)?;
    println!("source+avro/raw = {:.2}", rates[1] / rates[0]);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut generator = EventGenerator::new(1, "2024-01-01T00:00:00Z", 1000);
    let events = generator.events(args.events);
    let registry = brooklet_book::registry::url();
    formats(&args, &events, registry.as_deref())?;
    match (brooklet_book::kafka::bootstrap(), registry) {
        (Some(bootstrap), Some(url)) => kafka(&args, &bootstrap, &url, events)?,
        _ => println!("kafka: skipped (needs scripts/kafka.sh start and scripts/registry.sh start)"),
    }
    Ok(())
}
