//! `crash`: the crash harness (see `brooklet_book::crash`). Kills stateful queries with
//! `SIGKILL` at seeded moments, restarts them, and checks that nothing is lost or duplicated.
//!
//! ```text
//! cargo run --release --bin crash -- --kills 240            # every scenario, the full count
//! cargo run --release --bin crash -- --scenario chained --kills 50 --seed 3
//! ```
//!
//! It prints kills survived / kills tried per scenario and exits non-zero on any failure. The
//! Kafka scenario runs when a broker answers (`--bootstrap`, else `BROOKLET_KAFKA_BOOTSTRAP`,
//! else the one `scripts/kafka.sh start` runs).

use std::path::PathBuf;

use brooklet_book::crash::{self, Options, Output, Scenario};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Kill stateful queries at seeded moments and check exactly-once output")]
struct Args {
    #[command(subcommand)]
    child: Option<Child>,
    /// Kills in all, shared among the scenarios.
    #[arg(long, default_value_t = 240)]
    kills: usize,
    /// The seed of the input and of the kill moments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scenarios to run (all when none): aggregation, sessions, dedup, chained, kafka.
    #[arg(long)]
    scenario: Vec<String>,
    /// Where the rounds run.
    #[arg(long, default_value = "target/crash")]
    work: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Child {
    /// Runs one scenario to the end of its input (what the harness kills).
    Child {
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        bootstrap: Option<String>,
        #[arg(long)]
        topic: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Child::Child { scenario, dir, bootstrap, topic }) = args.child {
        let scenario = Scenario::parse(&scenario)?;
        let output = match (bootstrap, topic) {
            (Some(bootstrap), Some(topic)) => Output::Kafka { bootstrap, topic },
            _ if scenario == Scenario::Delta => Output::Delta(dir.join("output")),
            _ => Output::Files(dir.join("output")),
        };
        return crash::run_child(scenario, &dir, &output);
    }
    let scenarios = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.iter().map(|s| Scenario::parse(s)).collect::<anyhow::Result<_>>()?
    };
    let options = Options {
        scenarios,
        kills: args.kills,
        seed: args.seed,
        work: args.work,
        binary: std::env::current_exe()?,
        bootstrap: brooklet_book::kafka::bootstrap(),
    };
    let report = crash::run(&options)?;
    print!("{report}");
    anyhow::ensure!(report.failures.is_empty(), "{} failure(s)", report.failures.len());
    Ok(())
}
