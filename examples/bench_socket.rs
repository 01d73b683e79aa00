//! The socket source benchmark: a line server in this process writes `--lines` log lines as
//! fast as the connection takes them; a stateless query (keep the lines with `ERROR`, to the
//! `noop` sink) reads them through Brooklet's socket source.
//!
//! ```text
//! cargo run --release --example bench_socket
//! cargo run --release --example bench_socket -- --lines 2000000 --runs 1
//! ```
//!
//! Timed from the query's start to the last line's batch; lines/s is lines over that time.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::bail;
use brooklet::Session;
use brooklet_book::bench::median;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Lines per run.
    #[arg(long, default_value_t = 5_000_000)]
    lines: u64,
    /// How many runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const LEVELS: [&str; 4] = ["INFO", "WARN", "ERROR", "DEBUG"];

/// Serves `lines` lines of about 50 bytes to the first client, then keeps the connection open
/// until the client goes.
fn serve(lines: u64) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let (client, _) = listener.accept()?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, client);
        for i in 0..lines {
            writeln!(out, "2024-01-01 09:00:00 {} service-{} request {i} done", LEVELS[i as usize % 4], i % 7)?;
        }
        out.flush()?;
        let mut client = out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        let _ = std::io::copy(&mut client, &mut std::io::sink()); // until the client closes
        Ok(())
    });
    Ok(port)
}

fn run(lines: u64) -> anyhow::Result<f64> {
    let port = serve(lines)?;
    let session = Session::new();
    let started = Instant::now();
    let query = session
        .read_stream()
        .format("socket")
        .option("host", "127.0.0.1")
        .option("port", port)
        .load_source()?
        .filter("value LIKE '%ERROR%'")?
        .write_stream()
        .format("noop")
        .start()?;
    let deadline = started + Duration::from_secs(600);
    loop {
        query.process_all_available()?;
        // The socket source's offset is the index of the last line a batch read.
        let last = query.last_progress().and_then(|p| p.sources[0].end_offset.as_ref().and_then(|o| o.as_u64()));
        let read = last.map_or(0, |l| l + 1);
        if read >= lines {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {read} of {lines} lines read in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let seconds = started.elapsed().as_secs_f64();
    let batches = query.last_progress().map_or(0, |p| p.batch_id + 1);
    query.stop()?;
    println!("{lines} lines in {seconds:.2} s, {batches} batches = {:.0} lines/s", lines as f64 / seconds);
    Ok(lines as f64 / seconds)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rates = (0..args.runs).map(|_| run(args.lines)).collect::<anyhow::Result<Vec<_>>>()?;
    println!("median: {:.0} lines/s", median(rates));
    Ok(())
}
