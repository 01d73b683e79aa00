//! The stream-stream join benchmark: does a batch of a join cost what the batch brings, or
//! what the join keeps?
//!
//! ```text
//! cargo run --release --example bench_join
//! cargo run --release --example bench_join -- --impressions 1000000 --clicks 200000 --batches 100
//! ```
//!
//! Impressions and clicks arrive through two memory streams, one add of each per batch, and
//! are joined as in chapter 12: same ad, the click within an hour after the impression, a
//! 10-minute watermark on both sides, into the `noop` sink. Batch k covers 6 minutes of event
//! time; its clicks are on impressions of the five batches before it (seeded), so nearly every
//! click matches and the impressions kept reach a steady state of about 70 minutes' worth.
//! Reported: events per second over the run; per batch the wall time from adding the rows to
//! the query being idle again (no-data batches included), with the median and p95 over all
//! batches and the medians of the first and last quarter (flat means the cost does not grow
//! with the state); the peak of the state's rows and `memoryUsedBytes`; the rows joined.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use brooklet::prelude::*;
use brooklet_book::bench::rss_mb;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    impressions: usize,
    #[arg(long, default_value_t = 200_000)]
    clicks: usize,
    #[arg(long, default_value_t = 100)]
    batches: usize,
    /// Where the checkpoint goes.
    #[arg(long, default_value = "target/bench/join")]
    dir: std::path::PathBuf,
}

/// A seeded xorshift: the same rows every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn rows(stream: &MemoryStream, ids: Vec<String>, times_us: Vec<i64>) -> anyhow::Result<RecordBatch> {
    let columns: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from(ids)), Arc::new(TimestampMicrosecondArray::from(times_us))];
    Ok(RecordBatch::try_new(stream.schema(), columns)?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let session = Session::new();
    let impressions = MemoryStream::new(&session, "impressionAdId STRING, impressionTime TIMESTAMP")?;
    let clicks = MemoryStream::new(&session, "clickAdId STRING, clickTime TIMESTAMP")?;
    let joined = impressions.to_df()?.with_watermark("impressionTime", "10 minutes")?.join(
        clicks.to_df()?.with_watermark("clickTime", "10 minutes")?,
        "clickAdId = impressionAdId AND clickTime >= impressionTime AND clickTime <= impressionTime + interval 1 hour",
        "inner",
    )?;
    let _ = std::fs::remove_dir_all(&args.dir);
    let query = joined.write_stream().format("noop").option("checkpointLocation", args.dir.display()).start()?;

    let (per_imp, per_click) = (args.impressions / args.batches, args.clicks / args.batches);
    let window_us: i64 = 6 * 60 * 1_000_000;
    let start_us: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ms, mut state_rows) = (Vec::new(), Vec::new());
    let (mut peak_rows, mut peak_memory, mut output_rows) = (0u64, 0u64, 0u64);
    let mut seen: Option<u64> = None;
    let started = Instant::now();
    for k in 0..args.batches {
        let window = start_us + k as i64 * window_us;
        let first = k * per_imp;
        let imp_times: Vec<i64> = (0..per_imp).map(|_| window + rng.below(window_us as u64) as i64).collect();
        let imp_ids: Vec<String> = (first..first + per_imp).map(|i| format!("ad{i:08}")).collect();
        // Clicks on impressions of the five batches before this one, at this batch's times.
        let (mut click_ids, mut click_times) = (Vec::new(), Vec::new());
        if k > 0 {
            let from = k.saturating_sub(5) * per_imp;
            for _ in 0..per_click {
                click_ids.push(format!("ad{:08}", from + rng.below((first - from) as u64) as usize));
                click_times.push(window + rng.below(window_us as u64) as i64);
            }
        }
        let (imp_batch, click_batch) =
            (rows(&impressions, imp_ids, imp_times)?, rows(&clicks, click_ids, click_times)?);
        let t = Instant::now();
        impressions.add_batches(vec![imp_batch])?;
        clicks.add_batches(vec![click_batch])?;
        query.process_all_available()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        // The batches this step ran: its data batch and the no-data batch after it, if any.
        for p in query.recent_progress() {
            if seen.is_some_and(|s| p.batch_id <= s) {
                continue;
            }
            seen = Some(p.batch_id);
            output_rows += p.sink.num_output_rows.max(0) as u64;
            let s = &p.state_operators[0];
            peak_rows = peak_rows.max(s.num_rows_total);
            peak_memory = peak_memory.max(s.memory_used_bytes);
        }
        state_rows.push(query.last_progress().map_or(0, |p| p.state_operators[0].num_rows_total));
    }
    let seconds = started.elapsed().as_secs_f64();
    query.stop()?;

    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[(v.len() - 1) / 2]
    };
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = sorted[((sorted.len() - 1) as f64 * 0.95).round() as usize];
    let quarter = ms.len() / 4;
    for k in (0..args.batches).step_by((args.batches / 10).max(1)) {
        println!("batch {k:>4}: state {:>8} rows, {:>7.1} ms", state_rows[k], ms[k]);
    }
    println!(
        "result {{\"impressions\":{},\"clicks\":{},\"batches\":{},\"events_per_second\":{:.0},\"seconds\":{seconds:.2},\
         \"ms_median\":{:.2},\"ms_p95\":{p95:.2},\"ms_max\":{:.2},\"ms_median_first_quarter\":{:.2},\"ms_median_last_quarter\":{:.2},\
         \"peak_state_rows\":{peak_rows},\"peak_memory_used_mb\":{:.1},\"peak_rss_mb\":{:.0},\"rows_joined\":{output_rows}}}",
        args.impressions,
        args.clicks,
        args.batches,
        (args.impressions + args.clicks) as f64 / seconds,
        median(&ms),
        sorted[sorted.len() - 1],
        median(&ms[..quarter.max(1)]),
        median(&ms[ms.len() - quarter.max(1)..]),
        peak_memory as f64 / 1e6,
        rss_mb("VmHWM:"),
    );
    Ok(())
}
