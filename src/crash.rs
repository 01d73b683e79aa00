//! The crash harness: proves that a query killed at any moment, then restarted, loses and
//! duplicates nothing.
//!
//! Each [`Scenario`] is a stateful query over seeded input files, run in a child process (the
//! `crash` binary's `child` command) to the end of its input. The harness first runs it
//! uninterrupted for the reference output. Then, round after round on a fresh checkpoint, it
//! starts the child and kills it with `SIGKILL`, either at a seeded random moment or when the
//! child reports reaching a named fault point (`brooklet::fault`: after the offsets write,
//! during a source read, mid-sink, between sink and commit, after state writes, during a
//! background snapshot, after the commit); restarts it on the same checkpoint, kills it
//! again, and finally lets it finish. After every kill the committed output must be part of
//! the reference (nothing duplicated); after the finish it must equal it (nothing lost).
//!
//! ```text
//! cargo run --release --bin crash -- --kills 240        # the full count (about 4 minutes)
//! cargo run --release --bin crash -- --scenario sessions --kills 40 --seed 7
//! ```
//!
//! The same run with a small count is a test (`tests/book/crash.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use brooklet::fault::FAULT_ENV;
use brooklet::functions::{col, session_window, window, window_time};
use brooklet::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Input files per run; with one file per trigger, as many data batches.
const FILES: usize = 16;
/// Rows per input file.
const ROWS_PER_FILE: usize = 60;
const SCHEMA: &str = "id STRING, user STRING, ts TIMESTAMP, amount BIGINT";

/// The queries the harness kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// 10-second windows per user, append mode, Parquet sink.
    Aggregation,
    /// 2-second session windows per user (many close and leave state), append mode, JSON sink.
    Sessions,
    /// `drop_duplicates_within_watermark(id)`, JSON sink.
    Dedup,
    /// Deduplication, then 10-second window counts, rolled up into 30-second windows: three
    /// stateful operators, Parquet sink.
    Chained,
    /// A stream-stream left outer join of the even-amount events with the odd ones of the same
    /// user up to 2 seconds later (two sources, two join states), JSON sink.
    Join,
    /// The aggregation into Kafka with the exactly-once sink (needs a broker).
    Kafka,
    /// The aggregation into a Delta table: each batch one commit with its `txn`.
    Delta,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Aggregation,
        Scenario::Sessions,
        Scenario::Dedup,
        Scenario::Chained,
        Scenario::Join,
        Scenario::Kafka,
        Scenario::Delta,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Aggregation => "aggregation",
            Scenario::Sessions => "sessions",
            Scenario::Dedup => "dedup",
            Scenario::Chained => "chained",
            Scenario::Join => "join",
            Scenario::Kafka => "kafka",
            Scenario::Delta => "delta",
        }
    }

    pub fn parse(name: &str) -> anyhow::Result<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .with_context(|| format!("no scenario '{name}' (one of {})", Scenario::ALL.map(Scenario::name).join(", ")))
    }

    /// The fault points this scenario's batches pass.
    fn points(self) -> Vec<&'static str> {
        // The Delta sink's files and commit are one delta-rs operation: random kills fall
        // inside it, `sink-done` is right after its commit.
        let sink = match self {
            Scenario::Kafka => "kafka-sent",
            Scenario::Delta => "sink-done",
            _ => "sink-file-written",
        };
        let mut points = vec!["offsets-written", "source-read", sink, "sink-done", "state-written", "commit-written"];
        points.push("snapshot-writing");
        points
    }

    /// The query over `input`, ready to start into `output` (a directory, or a Kafka topic).
    fn query(
        self,
        session: &Session,
        input: &Path,
        output: &Output,
        checkpoint: &Path,
    ) -> anyhow::Result<brooklet::DataStreamWriter> {
        let read = || -> brooklet::Result<DataFrame> {
            session.read_stream().format("json").schema(SCHEMA).option("maxFilesPerTrigger", 1).load(input)
        };
        let events = read()?.with_watermark("ts", "10 seconds")?;
        let windows = |events: DataFrame| -> brooklet::Result<DataFrame> {
            events
                .group_by([window(col("ts"), "10 seconds"), col("user")])?
                .agg(["count(*) AS events", "sum(amount) AS total"])?
                .select(["window['start'] AS start", "user", "events", "total"])
        };
        let df = match self {
            Scenario::Aggregation | Scenario::Delta => windows(events)?,
            Scenario::Sessions => events
                .group_by([col("user"), session_window(col("ts"), "2 seconds")])?
                .agg(["count(*) AS events", "sum(amount) AS total"])?
                .select([
                    "user",
                    "session_window['start'] AS start",
                    "session_window['end'] AS end",
                    "events",
                    "total",
                ])?,
            Scenario::Dedup => {
                events.drop_duplicates_within_watermark(&["id"])?.select(["id", "user", "ts", "amount"])?
            }
            Scenario::Chained => events
                .drop_duplicates_within_watermark(&["id"])?
                .group_by([window(col("ts"), "10 seconds")])?
                .agg(["count(*) AS events"])?
                .group_by([window(window_time(col("window")), "30 seconds").alias("rollup")])?
                .agg(["sum(events) AS events", "count(*) AS windows"])?
                .select(["rollup['start'] AS start", "events", "windows"])?,
            Scenario::Join => {
                let side = |parity: i64, prefix: &str| -> brooklet::Result<DataFrame> {
                    read()?
                        .filter(format!("amount % 2 = {parity}").as_str())?
                        .select_expr(&[
                            &format!("id AS {prefix}_id"),
                            &format!("user AS {prefix}_user"),
                            &format!("ts AS {prefix}_ts"),
                        ])?
                        .with_watermark(&format!("{prefix}_ts"), "10 seconds")
                };
                side(0, "a")?
                    .join(
                        side(1, "b")?,
                        "a_user = b_user AND b_ts >= a_ts AND b_ts <= a_ts + interval 2 seconds",
                        "left_outer",
                    )?
                    .select(["a_id AS id", "a_user AS user", "a_ts AS ts", "b_id AS other"])?
            }
            Scenario::Kafka => windows(events)?.select_expr(&[
                "to_json(named_struct('start', start, 'user', user, 'events', events, 'total', total)) AS value",
            ])?,
        };
        let writer = df
            .write_stream()
            .output_mode("append")
            .trigger(Trigger::AvailableNow)
            .option("checkpointLocation", checkpoint.display());
        Ok(match output {
            Output::Files(dir) => writer.format(self.format()).option("path", dir.display()),
            Output::Delta(dir) => writer.format("delta").option("path", dir.display()),
            Output::Kafka { bootstrap, topic } => writer
                .format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("topic", topic)
                .option("deliveryGuarantee", "exactly-once"),
        })
    }

    fn format(self) -> &'static str {
        match self {
            Scenario::Sessions | Scenario::Dedup | Scenario::Join => "json",
            _ => "parquet",
        }
    }

    /// The schema to read a JSON output back with.
    fn output_schema(self) -> &'static str {
        match self {
            Scenario::Sessions => "user STRING, start TIMESTAMP, end TIMESTAMP, events BIGINT, total BIGINT",
            Scenario::Join => "id STRING, user STRING, ts TIMESTAMP, other STRING",
            _ => SCHEMA,
        }
    }
}

/// Where a scenario writes.
#[derive(Debug, Clone)]
pub enum Output {
    Files(PathBuf),
    Delta(PathBuf),
    Kafka { bootstrap: String, topic: String },
}

impl Output {
    /// The committed output, one line per row, sorted.
    fn rows(&self, scenario: Scenario) -> anyhow::Result<Vec<String>> {
        let mut rows = match self {
            Output::Files(dir) if brooklet::sink::committed_files(dir)?.is_none_or(|f| f.is_empty()) => Vec::new(),
            Output::Files(dir) => {
                let session = Session::new();
                let mut reader = session.read().format(scenario.format());
                if scenario.format() == "json" {
                    reader = reader.schema(scenario.output_schema());
                }
                lines(&reader.load(dir)?.collect()?)?
            }
            Output::Delta(dir) if !dir.join("_delta_log").is_dir() => Vec::new(),
            Output::Delta(dir) => {
                ensure_each_batch_once(dir)?;
                lines(&Session::new().read().format("delta").load(dir)?.collect()?)?
            }
            Output::Kafka { bootstrap, topic } => {
                crate::kafka::read_all(bootstrap, topic, "read_committed")?.into_iter().map(|r| r.value).collect()
            }
        };
        rows.sort();
        Ok(rows)
    }
}

/// A Delta table's log holds each batch id's `txn` at most once, in increasing order.
fn ensure_each_batch_once(table: &Path) -> anyhow::Result<()> {
    let mut logs: Vec<PathBuf> =
        std::fs::read_dir(table.join("_delta_log"))?.map(|e| Ok(e?.path())).collect::<std::io::Result<_>>()?;
    logs.retain(|p| p.extension().is_some_and(|e| e == "json"));
    logs.sort();
    let mut last: Option<i64> = None;
    for log in logs {
        for line in std::fs::read_to_string(&log)?.lines() {
            let action: serde_json::Value = serde_json::from_str(line)?;
            if let Some(version) = action.get("txn").and_then(|t| t["version"].as_i64()) {
                ensure!(last < Some(version), "{}: batch {version} committed again", log.display());
                last = Some(version);
            }
        }
    }
    Ok(())
}

fn lines(batches: &[RecordBatch]) -> anyhow::Result<Vec<String>> {
    let options = FormatOptions::default().with_null("null");
    let mut out = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    Ok(out)
}

/// Writes the seeded input: `FILES` (16) JSON files, each a 15-second slice of events with some
/// late ones and some repeated ids, in file-name and modification-time order.
pub fn write_input(dir: &Path, seed: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let epoch = chrono::DateTime::parse_from_rfc3339(crate::BOOK_EPOCH)?.timestamp();
    let mut ids = Vec::new();
    for file in 0..FILES {
        let mut text = String::new();
        for _ in 0..ROWS_PER_FILE {
            let mut ts = epoch + file as i64 * 15 + rng.random_range(0..15);
            if rng.random_bool(0.1) {
                ts -= rng.random_range(0..30); // late
            }
            let id = if !ids.is_empty() && rng.random_bool(0.1) {
                ids[rng.random_range(0..ids.len())]
            } else {
                ids.push(ids.len());
                ids.len() - 1
            };
            let time = chrono::DateTime::from_timestamp(ts, 0).context("time")?.format("%Y-%m-%dT%H:%M:%SZ");
            let user = rng.random_range(0..4);
            let amount = rng.random_range(1..100);
            text.push_str(&format!(
                "{{\"id\": \"e{id}\", \"user\": \"u{user}\", \"ts\": \"{time}\", \"amount\": {amount}}}\n"
            ));
        }
        let path = dir.join(format!("events-{file:03}.json"));
        std::fs::write(&path, text)?;
        let mtime = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + file as u64);
        std::fs::File::options().write(true).open(&path)?.set_modified(mtime)?;
    }
    Ok(())
}

/// The child process: runs `scenario` over `dir/input` to its end.
pub fn run_child(scenario: Scenario, dir: &Path, output: &Output) -> anyhow::Result<()> {
    let session = Session::new();
    let query = scenario.query(&session, &dir.join("input"), output, &dir.join("checkpoint"))?.start()?;
    query.await_termination()?;
    Ok(())
}

/// How a run of the harness goes.
pub struct Options {
    pub scenarios: Vec<Scenario>,
    /// Kills in all, shared among the scenarios.
    pub kills: usize,
    pub seed: u64,
    /// Where rounds run; each gets a fresh directory under it.
    pub work: PathBuf,
    /// The command that runs the `crash` binary (`child ...` arguments are added).
    pub binary: PathBuf,
    /// A Kafka broker for [`Scenario::Kafka`]; without one it is skipped.
    pub bootstrap: Option<String>,
}

/// What a run of the harness found.
#[derive(Debug, Default)]
pub struct Report {
    /// Per scenario: kills tried, kills survived, rounds (restarts to the end).
    pub scenarios: BTreeMap<&'static str, Tally>,
    /// Kills per moment: a fault point, or "random".
    pub moments: BTreeMap<String, usize>,
    /// What went wrong, with the seed and round to reproduce it.
    pub failures: Vec<String>,
    /// Scenarios not run, and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub tried: usize,
    pub survived: usize,
    pub rounds: usize,
    /// Rows of the uninterrupted run's output.
    pub reference_rows: usize,
}

impl Report {
    pub fn tried(&self) -> usize {
        self.scenarios.values().map(|t| t.tried).sum()
    }

    pub fn survived(&self) -> usize {
        self.scenarios.values().map(|t| t.survived).sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, t) in &self.scenarios {
            writeln!(
                f,
                "{name:<12} kills survived {:>4} / tried {:>4}   rounds {:>3}   reference rows {:>4}",
                t.survived, t.tried, t.rounds, t.reference_rows
            )?;
        }
        writeln!(f, "{:<12} kills survived {:>4} / tried {:>4}", "all", self.survived(), self.tried())?;
        let moments: Vec<String> = self.moments.iter().map(|(m, n)| format!("{m} {n}")).collect();
        writeln!(f, "kills by moment: {}", moments.join(", "))?;
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        for failure in &self.failures {
            writeln!(f, "FAILED: {failure}")?;
        }
        Ok(())
    }
}

/// How one child run ended.
enum Ending {
    /// Killed, at this moment.
    Killed(String),
    /// Ran to the end of its input.
    Finished,
}

/// Runs the harness.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let scenarios: Vec<Scenario> = options
        .scenarios
        .iter()
        .copied()
        .filter(|&s| {
            let runnable = s != Scenario::Kafka || options.bootstrap.is_some();
            if !runnable {
                report.skipped.push("kafka: no Kafka broker answers (scripts/kafka.sh start)".into());
            }
            runnable
        })
        .collect();
    ensure!(!scenarios.is_empty(), "no scenario to run");
    let per_scenario = options.kills.div_ceil(scenarios.len());
    for scenario in scenarios {
        let tally = kill_scenario(options, scenario, per_scenario, &mut rng, &mut report)?;
        report.scenarios.insert(scenario.name(), tally);
    }
    Ok(report)
}

fn kill_scenario(
    options: &Options,
    scenario: Scenario,
    kills: usize,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> anyhow::Result<Tally> {
    let base = options.work.join(scenario.name());
    let _ = std::fs::remove_dir_all(&base);
    let reference_dir = base.join("reference");
    let reference_output = output(options, scenario, &reference_dir, "reference")?;
    let started = Instant::now();
    match run_once(options, scenario, &reference_dir, &reference_output, None)? {
        Ending::Finished => {}
        Ending::Killed(_) => bail!("the reference run of {} was stopped", scenario.name()),
    }
    let run_time = started.elapsed();
    let reference = reference_output.rows(scenario)?;
    ensure!(!reference.is_empty(), "the reference run of {} wrote nothing", scenario.name());

    let mut tally = Tally { reference_rows: reference.len(), ..Tally::default() };
    while tally.tried < kills {
        let round = tally.rounds;
        tally.rounds += 1;
        let dir = base.join(format!("round-{round}"));
        let out = output(options, scenario, &dir, &format!("round-{round}"))?;
        let kills_this_round = rng.random_range(1..=6).min(kills - tally.tried);
        let mut killed = 0;
        let mut ok = true;
        let context = |what: &str| format!("{} seed {} round {round}: {what}", scenario.name(), options.seed);
        // Kills, each on the checkpoint the one before left; then a run to the end.
        loop {
            let kill = (killed < kills_this_round).then(|| pick_kill(scenario, run_time, rng));
            let ending = run_once(options, scenario, &dir, &out, kill.clone())
                .with_context(|| context(&format!("run after {killed} kills")))?;
            let rows = out.rows(scenario).with_context(|| context("reading the output"))?;
            match ending {
                Ending::Killed(moment) => {
                    killed += 1;
                    let moment = if moment == "random" {
                        format!("random {}", batch_phase(&dir.join("checkpoint")))
                    } else {
                        moment
                    };
                    *report.moments.entry(moment.clone()).or_default() += 1;
                    if let Some(problem) = not_part_of(&rows, &reference) {
                        report.failures.push(context(&format!("after a kill at {moment}: {problem}")));
                        ok = false;
                    }
                }
                Ending::Finished => {
                    if rows != reference {
                        let problem = not_part_of(&rows, &reference).unwrap_or_else(|| {
                            format!(
                                "{} of the reference's {} rows are missing",
                                reference.len() - rows.len(),
                                reference.len()
                            )
                        });
                        report.failures.push(context(&format!("at the end, after {killed} kills: {problem}")));
                        ok = false;
                    }
                    break;
                }
            }
        }
        tally.tried += killed;
        if ok {
            tally.survived += killed;
        }
    }
    Ok(tally)
}

/// Where a kill left the checkpoint: before the first batch, inside a batch (its offsets
/// written, not its commit), or between batches.
fn batch_phase(checkpoint: &Path) -> &'static str {
    let last = |log: &str| -> Option<u64> {
        let entries = std::fs::read_dir(checkpoint.join(log)).ok()?;
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).max()
    };
    match (last("offsets"), last("commits")) {
        (None, _) => "(starting)",
        (Some(o), Some(c)) if o == c => "(between batches)",
        _ => "(mid-batch)",
    }
}

/// `None` when every row of `rows` is in `reference` at most as often; else what is wrong.
fn not_part_of(rows: &[String], reference: &[String]) -> Option<String> {
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reference {
        *left.entry(r).or_default() += 1;
    }
    for r in rows {
        match left.get_mut(r.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            Some(_) => return Some(format!("row written twice: {r}")),
            None => return Some(format!("row not in the reference: {r}")),
        }
    }
    None
}

/// Where a round writes: a directory, or a fresh Kafka topic.
fn output(options: &Options, scenario: Scenario, dir: &Path, name: &str) -> anyhow::Result<Output> {
    std::fs::create_dir_all(dir)?;
    write_input(&dir.join("input"), options.seed)?;
    match scenario {
        Scenario::Kafka => {}
        Scenario::Delta => return Ok(Output::Delta(dir.join("output"))),
        _ => return Ok(Output::Files(dir.join("output"))),
    }
    let bootstrap = options.bootstrap.clone().context("a Kafka broker")?;
    let topic = format!("brooklet-crash-{}-{}-{name}", std::process::id(), options.seed);
    crate::kafka::recreate_topic(&bootstrap, &topic, 1)?;
    Ok(Output::Kafka { bootstrap, topic })
}

/// A kill: at a fault point's `n`-th pass, or after a random time.
#[derive(Debug, Clone)]
enum Kill {
    At(&'static str, u32),
    After(Duration),
}

fn pick_kill(scenario: Scenario, run_time: Duration, rng: &mut ChaCha8Rng) -> Kill {
    if rng.random_bool(0.5) {
        let points = scenario.points();
        Kill::At(points[rng.random_range(0..points.len())], rng.random_range(1..=6))
    } else {
        Kill::After(run_time.mul_f64(rng.random_range(0.0..1.0)))
    }
}

/// Runs the child once, killing it as `kill` says.
fn run_once(
    options: &Options,
    scenario: Scenario,
    dir: &Path,
    out: &Output,
    kill: Option<Kill>,
) -> anyhow::Result<Ending> {
    let mut command = Command::new(&options.binary);
    command.args(["child", "--scenario", scenario.name(), "--dir"]).arg(dir);
    if let Output::Kafka { bootstrap, topic } = out {
        command.args(["--bootstrap", bootstrap, "--topic", topic]);
    }
    command.stdout(Stdio::null()).stderr(Stdio::piped()).env_remove(FAULT_ENV);
    if let Some(Kill::At(point, n)) = &kill {
        command.env(FAULT_ENV, format!("{point}:{n}"));
    }
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("running {}", options.binary.display()))?;
    let stderr = child.stderr.take().context("the child's stderr")?;
    // The child's stderr, read on a thread: the fault marker, and the rest for errors.
    let (marker_tx, marker_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(point) = line.strip_prefix("brooklet-fault ") {
                let _ = marker_tx.send(point.to_string());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let deadline = started + Duration::from_secs(300);
    let moment = loop {
        if let Some(status) = child.try_wait()? {
            let text = reader.join().unwrap_or_default();
            ensure!(status.success(), "the child failed ({status}):\n{text}");
            return Ok(Ending::Finished);
        }
        match &kill {
            Some(Kill::At(..)) => {
                if let Ok(point) = marker_rx.recv_timeout(Duration::from_millis(1)) {
                    break point;
                }
            }
            Some(Kill::After(after)) if started.elapsed() >= *after => break "random".to_string(),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
        ensure!(Instant::now() < deadline, "the child ran for 300 s");
    };
    child.kill()?; // SIGKILL
    child.wait()?;
    let _ = reader.join();
    Ok(Ending::Killed(moment))
}
