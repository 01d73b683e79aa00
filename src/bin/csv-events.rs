//! `csv-events`: the stream processor's input, generated for as long as it runs — the book's
//! events as CSV files dropped into a directory (for `--mode csv-agg` and `csv-log`), or as
//! CSV lines served over TCP (for `--mode websocket`).
//!
//! ```text
//! cargo run --bin csv-events -- --dir target/stream-processor/input --every-ms 2000
//! cargo run --bin csv-events -- --serve 9999 --rate 50
//! ```
//!
//! Files are written under a hidden name and renamed into place, so a running query never
//! reads half a file; each continues the numbering of the files already there. The same seed
//! gives the same events.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use brooklet_book::events::EventGenerator;
use brooklet_book::kafka::Pacer;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Parser)]
#[command(about = "Keep generating the book's events as CSV files, or serve them as CSV lines over TCP")]
struct Args {
    /// The directory to write files into.
    #[arg(long, default_value = "target/stream-processor/input")]
    dir: PathBuf,
    /// How many files (0: until stopped).
    #[arg(long, default_value_t = 0)]
    files: u64,
    /// Events per file.
    #[arg(long, default_value_t = 20)]
    events_per_file: usize,
    /// Milliseconds between two files.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
    /// Instead of files: serve CSV lines to each client that connects to this port (127.0.0.1).
    #[arg(long)]
    serve: Option<u16>,
    /// Lines per second when serving (0: as fast as the client reads).
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// The generator's seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn progress(len: u64, what: &str) -> anyhow::Result<ProgressBar> {
    let bar = if len == 0 { ProgressBar::new_spinner() } else { ProgressBar::new(len) };
    Ok(bar.with_style(ProgressStyle::with_template(&format!("{{bar:40}} {{pos}} {what}  {{per_sec}}"))?))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut generator = EventGenerator::new(args.seed, "2024-01-01T09:00:00Z", 50);
    if let Some(port) = args.serve {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        println!("serving CSV lines on 127.0.0.1:{port}; connect with --mode websocket --port {port}");
        for client in listener.incoming() {
            let mut client = std::io::BufWriter::new(client?);
            let bar = progress(0, "lines")?;
            let mut pacer = Pacer::new(args.rate);
            loop {
                let line = generator.next_event().to_csv() + "\n";
                if client.write_all(line.as_bytes()).and_then(|()| client.flush()).is_err() {
                    break; // the client went away: wait for the next one
                }
                pacer.tick();
                bar.inc(1);
            }
            bar.finish();
        }
        return Ok(());
    }
    let bar = progress(args.files, "files")?;
    let mut written = 0;
    while args.files == 0 || written < args.files {
        generator.write_csv_files(&args.dir, 1, args.events_per_file)?;
        written += 1;
        bar.inc(1);
        std::thread::sleep(Duration::from_millis(args.every_ms));
    }
    bar.finish();
    println!("{written} files of {} events in {}", args.events_per_file, args.dir.display());
    Ok(())
}
