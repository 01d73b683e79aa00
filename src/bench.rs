//! Helpers the benchmark examples share: memory figures, a median, file sizes, timed
//! scenarios, the count per event type the Kafka benchmarks run, and the raw rdkafka
//! consumption they measure Brooklet's source against.

use std::time::Duration;

use anyhow::{Context, bail};
use brooklet::{DataFrame, Trigger};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// A memory figure of this process from `/proc/self/status`, in MB: `"VmHWM:"` (peak
/// resident) or `"VmRSS:"` (resident now); 0 where the file is not there.
pub fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

/// The median of `xs` (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn consumer(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("receive.message.max.bytes", "1000000000")
        .create()?)
}

/// The end offset of each of `topic`'s `partitions` (an error if the topic does not exist).
pub fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<Vec<i64>> {
    let c = consumer(bootstrap)?;
    (0..partitions).map(|p| Ok(c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1)).collect()
}

/// Raw rdkafka: all of `topic` read by one consumer per core, the partitions split between
/// them as Brooklet splits them, values only touched. How many records it read.
pub fn raw_consume(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<usize> {
    let ends = end_offsets(bootstrap, topic, partitions)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(ends.len());
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<(i32, i64)> =
                    ends.iter().enumerate().skip(t).step_by(threads).map(|(p, e)| (p as i32, *e)).collect();
                scope.spawn(move || -> anyhow::Result<usize> {
                    let c = consumer(bootstrap)?;
                    let mut tpl = TopicPartitionList::new();
                    for (p, _) in &mine {
                        tpl.add_partition_offset(topic, *p, Offset::Offset(0))?;
                    }
                    c.assign(&tpl)?;
                    let (mut n, mut bytes) = (0usize, 0usize);
                    let mut done: Vec<bool> = mine.iter().map(|(_, end)| *end == 0).collect();
                    while done.iter().any(|d| !d) {
                        let Some(m) = c.poll(Duration::from_secs(10)) else { bail!("raw consumer timed out") };
                        let m = m?;
                        n += 1;
                        bytes += m.payload().map_or(0, <[u8]>::len);
                        if let Some(i) = mine.iter().position(|(p, _)| *p == m.partition())
                            && m.offset() + 1 >= mine[i].1
                        {
                            done[i] = true;
                        }
                    }
                    std::hint::black_box(bytes);
                    Ok(n)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("raw consumer thread")).collect::<anyhow::Result<Vec<_>>>()
    })?;
    Ok(counts.iter().sum())
}

/// The total size of the files named `*.<extension>` directly under `dir`.
pub fn bytes_of_files(dir: &std::path::Path, extension: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == extension) {
            total += std::fs::metadata(&path)?.len();
        }
    }
    Ok(total)
}

/// A scenario: given the run number, how many records it handled.
pub type Scenario<'a> = &'a dyn Fn(usize) -> anyhow::Result<usize>;

/// Runs each scenario `runs` times, printing every run's rate; each one's median records/s.
/// A run that handles other than `expected` records is an error.
pub fn run_scenarios(scenarios: &[(&str, Scenario<'_>)], runs: usize, expected: usize) -> anyhow::Result<Vec<f64>> {
    let mut medians = Vec::new();
    for (name, scenario) in scenarios {
        let mut per_run = Vec::new();
        for run in 0..runs {
            let started = std::time::Instant::now();
            let n = scenario(run)?;
            let s = started.elapsed().as_secs_f64();
            if n != expected {
                bail!("{name}: handled {n} records, expected {expected}");
            }
            per_run.push(n as f64 / s);
            println!("{name:>13} run {run}: {n} records in {s:.2} s = {:.0} msgs/s", n as f64 / s);
        }
        let m = median(per_run);
        println!("{name:>13} median: {m:.0} msgs/s");
        medians.push(m);
    }
    Ok(medians)
}

/// Counts the rows of `decoded` (a stream with an `event_type` column) per event type, to the
/// memory sink in complete mode, all available input in one run; how many rows it counted.
pub fn count_event_types(decoded: DataFrame) -> anyhow::Result<usize> {
    let session = decoded.session().clone();
    let query = decoded
        .group_by(["event_type"])?
        .count()?
        .write_stream()
        .format("memory")
        .query_name("counts")
        .output_mode("complete")
        .trigger(Trigger::AvailableNow)
        .start()?;
    query.await_termination()?;
    let total = session.sql("SELECT CAST(sum(count) AS BIGINT) AS n FROM counts")?.collect()?;
    let n = total[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().context("sum")?.value(0);
    Ok(n as usize)
}
