//! The crash harness at CI size: every stateful scenario (and the exactly-once Kafka sink when
//! a broker runs) killed with `SIGKILL` at seeded moments and named fault points, restarted
//! each time; the committed output never holds a row twice, and at the end equals an
//! uninterrupted run's; the Delta scenario on its own with 50 kills. The full count:
//! `cargo run --release --bin crash -- --kills 300`.

use brooklet_book::crash::{self, Options, Scenario};
use brooklet_book::kafka::broker_for_test;

/// Kills in CI, shared among the scenarios (the full run uses 300).
const KILLS: usize = 60;

#[test]
fn killed_and_restarted_queries_lose_and_duplicate_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let bootstrap = broker_for_test("the crash harness's Kafka scenario");
    let options = Options {
        scenarios: Scenario::ALL.into_iter().filter(|s| *s != Scenario::Delta).collect(),
        kills: KILLS,
        seed: 11,
        work: work.path().to_path_buf(),
        binary: env!("CARGO_BIN_EXE_crash").into(),
        bootstrap,
    };
    let report = crash::run(&options).expect("the harness runs");
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.tried() >= KILLS * 4 / 5, "{} kills tried", report.tried());
    assert_eq!(report.survived(), report.tried(), "{report}");
    for (name, tally) in &report.scenarios {
        assert!(tally.reference_rows > 0 && tally.rounds > 0, "{name}: {tally:?}");
    }
}

/// Kills of the Delta scenario (the "at least 50").
const DELTA_KILLS: usize = 50;

#[test]
fn a_query_killed_while_writing_a_delta_table_commits_each_batch_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let options = Options {
        scenarios: vec![Scenario::Delta],
        kills: DELTA_KILLS,
        seed: 23,
        work: work.path().to_path_buf(),
        binary: env!("CARGO_BIN_EXE_crash").into(),
        bootstrap: None,
    };
    let report = crash::run(&options).expect("the harness runs");
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.tried(), DELTA_KILLS, "{report}");
    assert_eq!(report.survived(), DELTA_KILLS, "{report}");
    assert!(report.scenarios["delta"].reference_rows > 0, "{report}");
}
