//! `kafka-events`: produces the book's generated events to a Kafka topic.
//!
//! ```text
//! cargo run --bin kafka-events -- --topic events --events 100000 --rate 5000
//! cargo run --bin kafka-events -- --topic events --partitions 4 --recreate --seed 7
//! cargo run --bin kafka-events -- --topic events-avro --format avro --registry http://127.0.0.1:38081
//! ```
//!
//! Each event is one record: key the user id, value the JSON line (or, with `--format avro`,
//! the Avro value in the Confluent wire format, its schema registered under `<topic>-value`),
//! CreateTime the event's timestamp. The same seed gives the same records. The broker is
//! `--bootstrap`, else `BROOKLET_KAFKA_BOOTSTRAP`, else the one `scripts/kafka.sh start` runs.

use anyhow::Context;
use brooklet_book::avro_events::EVENT_AVRO_SCHEMA;
use brooklet_book::events::EventGenerator;
use brooklet_book::kafka::{
    DEFAULT_BOOTSTRAP, Pacer, avro_event_records, event_records, produce, producer, recreate_topic,
};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Parser)]
#[command(about = "Produce the book's generated events to a Kafka topic")]
struct Args {
    /// The topic to write to.
    #[arg(long, default_value = "events")]
    topic: String,
    /// How many events.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Events per second; 0 for as fast as the broker takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The generator's seed: the same seed, the same events.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The first event's time (RFC 3339).
    #[arg(long, default_value = "2024-01-01T09:00:00Z")]
    start: String,
    /// How many users the events come from.
    #[arg(long, default_value_t = 50)]
    users: u32,
    /// Delete and create the topic first, with `--partitions` partitions.
    #[arg(long)]
    recreate: bool,
    /// Partitions of a recreated topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Bootstrap servers.
    #[arg(long, env = "BROOKLET_KAFKA_BOOTSTRAP", default_value = DEFAULT_BOOTSTRAP)]
    bootstrap: String,
    /// The values' format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// The schema registry `--format avro` registers the events' schema with.
    #[arg(long, env = "BROOKLET_SCHEMA_REGISTRY_URL", default_value = brooklet_book::registry::DEFAULT_URL)]
    registry: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON line per event.
    Json,
    /// Avro in the Confluent wire format.
    Avro,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.recreate {
        recreate_topic(&args.bootstrap, &args.topic, args.partitions)
            .with_context(|| format!("cannot recreate topic {} on {}", args.topic, args.bootstrap))?;
    }
    let bar = ProgressBar::new(args.events as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  eta {eta}")
            .context("progress bar template")?,
    );
    let mut generator = EventGenerator::new(args.seed, &args.start, args.users);
    let events = (0..args.events).map(|_| generator.next_event());
    let mut pacer = Pacer::new(args.rate);
    let started = std::time::Instant::now();
    let mut tick = || {
        pacer.tick();
        bar.inc(1);
    };
    let producer = producer(&args.bootstrap)?;
    match args.format {
        Format::Json => produce(&producer, &args.topic, event_records(events), tick)?,
        Format::Avro => {
            let subject = format!("{}-value", args.topic);
            let schema = serde_json::from_str(EVENT_AVRO_SCHEMA)?;
            let id = brooklet::registry::SchemaRegistry::new(&args.registry)
                .register(&subject, &schema)
                .with_context(|| format!("cannot register the events' schema under {subject}"))?;
            let records = avro_event_records(events, id)?.collect::<anyhow::Result<Vec<_>>>()?;
            produce(&producer, &args.topic, records, &mut tick)?;
        }
    }
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} events to {} in {seconds:.2} s ({:.0} events/s)",
        args.events,
        args.topic,
        args.events as f64 / seconds
    );
    Ok(())
}
