//! `pipeline-events`: the pipeline chapter's input — the book's events as JSON files, about
//! 10% of them late (stamped up to 15 minutes before they arrive) and 2% delivered twice, at a
//! chosen rate, with a progress bar.
//!
//! ```text
//! cargo run --bin pipeline-events -- --dir target/pipeline/input --events 100000 --rate 5000
//! cargo run --example ch17_pipeline -- --input target/pipeline/input
//! ```
//!
//! Files are written under a hidden name and renamed into place, so a running query never
//! reads half a file. The same seed gives the same events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use brooklet_book::events::{EventGenerator, write_with_mtime};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Parser)]
#[command(about = "Generate the pipeline chapter's events (10% late, 2% duplicated) as JSON files")]
struct Args {
    /// The directory to write files into.
    #[arg(long, default_value = "target/pipeline/input")]
    dir: PathBuf,
    /// Events in all.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Events per second (0: as fast as the disk takes them).
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Events per file.
    #[arg(long, default_value_t = 500)]
    per_file: usize,
    /// Percent of events that are late.
    #[arg(long, default_value_t = 10)]
    late: u32,
    /// The generator's seed.
    #[arg(long, default_value_t = 2024)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.per_file > 0, "--per-file must be at least 1");
    std::fs::create_dir_all(&args.dir)?;
    let mut generator = EventGenerator::new(args.seed, "2024-01-01T09:00:00Z", 20)
        .with_late_events(args.late, 15 * 60_000)
        .with_duplicates(2);
    let bar = ProgressBar::new(args.events as u64)
        .with_style(ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  eta {eta}")?);
    let started = Instant::now();
    let (mut written, mut file) = (0, std::fs::read_dir(&args.dir)?.count());
    while written < args.events {
        let n = args.per_file.min(args.events - written);
        let lines: Vec<String> = generator.events(n).iter().map(|e| e.to_json()).collect();
        write_with_mtime(&args.dir.join(format!("events-{file:05}.json")), &(lines.join("\n") + "\n"), file)?;
        (written, file) = (written + n, file + 1);
        bar.set_position(written as u64);
        if args.rate > 0 {
            let due = Duration::from_secs_f64(written as f64 / args.rate as f64);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
    }
    bar.finish();
    println!("{written} events written; {file} files in {}", args.dir.display());
    Ok(())
}
