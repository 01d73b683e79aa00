//! The state benchmark: does a batch cost what it changes, or what the state holds?
//!
//! ```text
//! cargo run --release --example bench_state                  # 10k, 100k and 1M groups, one process each
//! cargo run --release --example bench_state -- --groups 1000000 --batches 200
//! ```
//!
//! A streaming `group_by(key).agg(count, sum)` in update mode is filled with `--groups`
//! distinct keys (batches of 100,000 rows), then timed over `--batches` batches of
//! `--rows` rows, each row an existing key drawn at random (seeded), so each batch changes
//! about `--rows` groups of a state that holds `--groups`. Per timed batch it reports the wall
//! time from adding the rows to the query being idle again (median, p95, max), the state
//! checkpoint bytes that batch wrote (its delta, removal and snapshot files), the batches that
//! also wrote a snapshot (compaction; warm-up batches included) with their time, and the resident
//! memory of the process: at the end, at its peak, and at its peak while filling; and what a
//! group costs: the state's `memoryUsedBytes` per group and the process's growth while filling
//! per group, less the input rows the memory stream keeps.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use brooklet::prelude::*;
use brooklet_book::bench::rss_mb;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Groups in state; without it, runs 10k, 100k and 1M in child processes.
    #[arg(long)]
    groups: Option<usize>,
    /// Rows per timed batch.
    #[arg(long, default_value_t = 1_000)]
    rows: usize,
    /// Timed batches.
    #[arg(long, default_value_t = 200)]
    batches: usize,
    /// Where the checkpoint goes.
    #[arg(long, default_value = "target/bench/state")]
    dir: std::path::PathBuf,
}

fn key_batch(stream: &MemoryStream, keys: impl Iterator<Item = usize>) -> anyhow::Result<RecordBatch> {
    let keys: Vec<String> = keys.map(|k| format!("user-{k:07}")).collect();
    let values: Vec<f64> = (0..keys.len()).map(|i| (i % 100) as f64).collect();
    Ok(RecordBatch::try_new(
        stream.schema(),
        vec![Arc::new(StringArray::from(keys)) as ArrayRef, Arc::new(Float64Array::from(values)) as ArrayRef],
    )?)
}

/// A seeded xorshift: the same keys every run.
struct Keys(u64);

impl Keys {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// Bytes of the state files version `v` wrote.
fn state_bytes(state_dir: &Path, v: u64) -> u64 {
    ["delta", "removed", "snapshot"]
        .iter()
        .filter_map(|kind| std::fs::metadata(state_dir.join(format!("{v}.{kind}"))).ok())
        .map(|m| m.len())
        .sum()
}

fn run(args: &Args, groups: usize) -> anyhow::Result<()> {
    let session = Session::new();
    let stream = MemoryStream::new(&session, "key STRING, value DOUBLE")?;
    let checkpoint = args.dir.join(groups.to_string());
    let _ = std::fs::remove_dir_all(&checkpoint);
    let query = stream
        .to_df()?
        .group_by(["key"])?
        .agg(["count(*) AS events", "sum(value) AS total"])?
        .write_stream()
        .output_mode("update")
        .option("checkpointLocation", checkpoint.display())
        .foreach_batch(|_, _| Ok(()))
        .start()?;

    let rss_before_fill = rss_mb("VmRSS:");
    let fill = Instant::now();
    let mut input_bytes = 0;
    for start in (0..groups).step_by(100_000) {
        let rows = key_batch(&stream, start..(start + 100_000).min(groups))?;
        input_bytes += rows.get_array_memory_size();
        stream.add_batches(vec![rows])?;
        query.process_all_available()?;
    }
    let fill_s = fill.elapsed().as_secs_f64();
    let fill_peak = rss_mb("VmHWM:");
    // What one group costs: the state's own count, and the process's growth while filling,
    // less the input rows, which a memory stream keeps.
    let rss_growth = (rss_mb("VmRSS:") - rss_before_fill) * 1024.0 * 1024.0;
    let rss_per_group = (rss_growth - input_bytes as f64) / groups as f64;

    let mut keys = Keys(0x9E37_79B9_7F4A_7C15);
    let mut batch = |n: usize| key_batch(&stream, (0..n).map(|_| keys.next(groups)));
    // 20 warm-up batches, then the timed ones; each batch's (id, milliseconds).
    let mut timings = Vec::with_capacity(20 + args.batches);
    for _ in 0..20 + args.batches {
        let rows = batch(args.rows)?;
        let t = Instant::now();
        stream.add_batches(vec![rows])?;
        query.process_all_available()?;
        let id = query.last_progress().map_or(0, |p| p.batch_id);
        timings.push((id, t.elapsed().as_secs_f64() * 1000.0));
    }
    let progress = query.last_progress().ok_or_else(|| anyhow::anyhow!("no progress"))?;
    let state = &progress.state_operators[0];
    anyhow::ensure!(state.num_rows_total as usize == groups, "state holds {} groups", state.num_rows_total);
    query.stop()?;

    let state_dir = checkpoint.join("state").join("0");
    let timed = &timings[20..];
    let bytes: Vec<u64> = timed.iter().map(|&(v, _)| state_bytes(&state_dir, v)).collect();
    let mut ms: Vec<f64> = timed.iter().map(|&(_, ms)| ms).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let mean_bytes = bytes.iter().sum::<u64>() / bytes.len() as u64;
    // Batches that also wrote a snapshot (compaction), warm-up included.
    let snapshots: Vec<String> = timings
        .iter()
        .filter(|(v, _)| state_dir.join(format!("{v}.snapshot")).exists())
        .map(|&(v, ms)| format!("{{\"batch\":{v},\"ms\":{ms:.1},\"bytes\":{}}}", state_bytes(&state_dir, v)))
        .collect();
    println!(
        "result {{\"groups\":{groups},\"rows_per_batch\":{},\"batches\":{},\"ms_median\":{:.2},\"ms_p95\":{:.2},\"ms_max\":{:.2},\
         \"state_bytes_per_batch_mean\":{mean_bytes},\"state_bytes_per_batch_max\":{},\"snapshot_batches\":[{}],\
         \"memory_used_mb\":{:.0},\"memory_used_bytes_per_group\":{:.0},\"rss_growth_bytes_per_group\":{rss_per_group:.0},\"input_mb\":{:.0},\"rss_mb\":{:.0},\"peak_rss_mb\":{:.0},\"peak_rss_after_fill_mb\":{fill_peak:.0},\"fill_seconds\":{fill_s:.1}}}",
        args.rows,
        args.batches,
        at(0.5),
        at(0.95),
        at(1.0),
        bytes.iter().max().unwrap_or(&0),
        snapshots.join(","),
        state.memory_used_bytes as f64 / 1e6,
        state.memory_used_bytes as f64 / groups as f64,
        input_bytes as f64 / 1e6,
        rss_mb("VmRSS:"),
        rss_mb("VmHWM:"),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(groups) = args.groups {
        return run(&args, groups);
    }
    let exe = std::env::current_exe()?;
    for groups in [10_000, 100_000, 1_000_000] {
        let status = Command::new(&exe)
            .args(["--groups", &groups.to_string(), "--rows", &args.rows.to_string()])
            .args(["--batches", &args.batches.to_string()])
            .arg("--dir")
            .arg(&args.dir)
            .status()?;
        anyhow::ensure!(status.success(), "{groups} groups failed");
    }
    Ok(())
}
