//! `kafka-events`: produces the book's generated events to a Kafka topic.
//!
//! ```text
//! cargo run --bin kafka-events -- --topic events --events 100000 --rate 5000
//! cargo run --bin kafka-events -- --topic events --partitions 4 --recreate --seed 7
//! ```
//!
//! Each event is one record: key the user id, value the JSON line, CreateTime the event's
//! timestamp. The same seed gives the same records. The broker is `--bootstrap`, else
//! `BROOKLET_KAFKA_BOOTSTRAP`, else the one `scripts/kafka.sh start` runs.

use anyhow::Context;
use brooklet_book::events::EventGenerator;
use brooklet_book::kafka::{DEFAULT_BOOTSTRAP, Pacer, event_records, produce, producer, recreate_topic};
use clap::Parser;
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
    produce(&producer(&args.bootstrap)?, &args.topic, event_records(events), || {
        pacer.tick();
        bar.inc(1);
    })?;
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
