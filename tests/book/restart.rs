//! Restart equivalence, for every stateful query the chapters show: the query stopped after k
//! batches and restarted from its checkpoint writes exactly what an uninterrupted run writes,
//! for every k; and a batch that was planned but not committed (a crash between `offsets/N`
//! and `commits/N`) is re-run with the same offsets and the same result.

use std::collections::BTreeMap;
use std::path::Path;

use brooklet::{DataFrame, Session, StreamingQuery, Trigger};
use brooklet_book::Chapter;
use brooklet_book::events::{EventGenerator, write_with_mtime};

use crate::examples::{ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08};

const FILES: usize = 4;

type Start<'a> = dyn Fn(&Session, &Path, &Path) -> brooklet::Result<StreamingQuery> + 'a;

/// The events of input part `i`, four minutes after part `i - 1`, some late (so windows
/// close, and late rows drop, across parts), some delivered twice, and part `i - 1`'s first
/// two events delivered again (so deduplication state crosses parts): the same whatever the run.
fn part(i: usize) -> String {
    let events = |i: usize| {
        let start = format!("2024-01-01T09:{:02}:00Z", 4 * i);
        EventGenerator::new(7 + i as u64, &start, 5).with_late_events(20, 8 * 60_000).with_duplicates(20).events(15)
    };
    let again = if i == 0 { Vec::new() } else { events(i - 1)[..2].to_vec() };
    events(i).iter().chain(&again).map(|e| e.to_json() + "\n").collect()
}

/// Writes parts `from..to`, one file each, or all in one file (which appears atomically).
fn write_parts(input: &Path, from: usize, to: usize, one_file: bool) {
    std::fs::create_dir_all(input).expect("input dir");
    if one_file {
        let text: String = (from..to).map(part).collect();
        write_with_mtime(&input.join(format!("events-{from:04}.json")), &text, from).expect("write");
        return;
    }
    for i in from..to {
        write_with_mtime(&input.join(format!("events-{i:04}.json")), &part(i), i).expect("write");
    }
}

/// Runs `start` over FILES files, stopping (and optionally "crashing") after each count of
/// files in `stops`; returns each batch id's output (a re-run batch replaces its first output).
fn run(query: &str, start: &Start<'_>, stops: &[usize], crash: bool) -> BTreeMap<u64, String> {
    run_parts(query, start, stops, crash, false)
}

/// [`run`], optionally writing each group of parts between stops as one file.
fn run_parts(query: &str, start: &Start<'_>, stops: &[usize], crash: bool, one_file: bool) -> BTreeMap<u64, String> {
    let ch = Chapter::new().expect("chapter");
    let (input, checkpoints) = (ch.path("input"), ch.path("checkpoints"));
    ch.session.set_checkpoint_root(&checkpoints);
    let checkpoint = checkpoints.join(query);
    let mut written = 0;
    for &stop in stops.iter().chain(std::iter::once(&FILES)) {
        write_parts(&input, written, stop, one_file);
        written = stop;
        start(&ch.session, &input, &checkpoint).expect("query starts").await_termination().expect("query succeeds");
        if crash && stop < FILES {
            // The process "died" after the sink took the last batch, before its commit.
            let commits = checkpoint.join("commits");
            let last = std::fs::read_dir(&commits)
                .expect("commits")
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .expect("a commit");
            std::fs::remove_file(commits.join(last.to_string())).expect("remove commit");
        }
    }
    ch.recorder.batches(query).into_iter().map(|b| (b.batch_id, b.to_table().expect("renders"))).collect()
}

fn assert_restart_equivalent(query: &str, start: &Start<'_>) {
    let straight = run(query, start, &[], false);
    assert!(straight.len() >= FILES, "{query}: one batch per file, and no-data batches");
    for k in 1..FILES {
        assert_eq!(run(query, start, &[k], false), straight, "{query}: stopped after {k} batches");
        assert_eq!(run(query, start, &[k], true), straight, "{query}: crashed before committing batch {}", k - 1);
    }
    assert_eq!(run(query, start, &[1, 2, 3], false), straight, "{query}: stopped after every batch");
}

#[test]
fn ch01_counts_by_type() {
    assert_restart_equivalent("counts_by_type", &|s, input, _| ch01::count_by_event_type(s, input));
}

#[test]
fn ch02_totals_in_complete_mode() {
    assert_restart_equivalent("totals_complete", &|s, input, _| {
        ch02::totals(ch02::events(s, input)?, "complete", "totals_complete")
    });
}

#[test]
fn ch02_totals_in_update_mode() {
    assert_restart_equivalent("totals_update", &|s, input, _| {
        ch02::totals(ch02::events(s, input)?, "update", "totals_update")
    });
}

#[test]
fn ch03_checkpointed_counts() {
    assert_restart_equivalent("restartable", &|s, input, checkpoint| ch03::checkpointed_counts(s, input, checkpoint));
}

#[test]
fn ch04_tumbling_windows_in_update_mode() {
    assert_restart_equivalent("tumbling", &|s, input, _| ch04::tumbling(ch04::events(s, input)?));
}

/// With a watermark, where batch boundaries fall changes results (a no-data batch between two
/// files moves the late-row filter; semantics appendix, §5), and each `AvailableNow` run ends with one.
/// So a restarted query is compared with a query that ran all along while the input arrived
/// in the same groups, each group one file (so it appears at once and is one batch): the
/// restart itself must change nothing.
fn assert_restart_equivalent_with_watermark(query: &str, mode: &str, build: Build) {
    let start = |s: &Session, input: &Path, _: &Path| {
        let writer = build(s, input)?.write_stream().format("console").output_mode(mode).query_name(query);
        writer.trigger(Trigger::AvailableNow).start()
    };
    for stops in [&[1][..], &[2], &[3], &[1, 2, 3]] {
        let straight = run_continuously(query, mode, build, stops);
        assert!(straight.values().any(|t| t.matches('\n').count() > 4), "{query}: some batch writes rows");
        assert_eq!(run_parts(query, &start, stops, false, true), straight, "{query}: stopped at {stops:?}");
        assert_eq!(run_parts(query, &start, stops, true, true), straight, "{query}: crashed at {stops:?}");
    }
}

/// A chapter's streaming DataFrame over an input directory.
type Build = fn(&Session, &Path) -> brooklet::Result<DataFrame>;

/// One long-running query (default trigger) over files arriving in the groups `stops` cut.
fn run_continuously(query: &str, mode: &str, build: Build, stops: &[usize]) -> BTreeMap<u64, String> {
    let ch = Chapter::new().expect("chapter");
    let input = ch.path("input");
    std::fs::create_dir_all(&input).expect("input dir");
    let running = build(&ch.session, &input)
        .and_then(|df| df.write_stream().format("console").output_mode(mode).query_name(query).start())
        .expect("query starts");
    let mut written = 0;
    for &stop in stops.iter().chain(std::iter::once(&FILES)) {
        write_parts(&input, written, stop, true);
        written = stop;
        running.process_all_available().expect("query succeeds");
    }
    running.stop().expect("query stops");
    ch.recorder.batches(query).into_iter().map(|b| (b.batch_id, b.to_table().expect("renders"))).collect()
}

#[test]
fn ch05_watermarked_windows_in_append_mode() {
    assert_restart_equivalent_with_watermark("append", "append", |s, input| {
        ch05::windowed_counts(s, input, "5 minutes")
    });
}

#[test]
fn ch05_watermarked_windows_in_update_mode() {
    assert_restart_equivalent_with_watermark("update", "update", |s, input| {
        ch05::windowed_counts(s, input, "5 minutes")
    });
}

#[test]
fn ch05_two_aggregations_in_append_mode() {
    assert_restart_equivalent_with_watermark("rollup", "append", |s, input| {
        ch05::rollup(ch04::events(s, input)?.with_watermark("timestamp", "1 minute")?, "2 minutes", "10 minutes")
    });
}

#[test]
fn ch06_dedup_by_id() {
    assert_restart_equivalent("by_id", &|s, input, _| ch06::run_to_end(ch06::by_id(s, input)?, "by_id"));
}

#[test]
fn ch06_dedup_by_id_and_time() {
    assert_restart_equivalent_with_watermark("by_id_and_time", "append", |s, input| {
        ch06::by_id_and_time(s, input, "1 minute")
    });
}

#[test]
fn ch06_dedup_within_watermark() {
    assert_restart_equivalent_with_watermark("within_watermark", "append", |s, input| {
        ch06::within_watermark(s, input, "1 minute")
    });
}

#[test]
fn ch07_sessions_in_append_mode() {
    // Sessions that close within the test input's sixteen minutes.
    assert_restart_equivalent_with_watermark("sessions", "append", |s, input| ch07::sessions(s, input, "1 minute"));
}

#[test]
fn ch08_dedup_then_windows() {
    assert_restart_equivalent_with_watermark("counts", "append", ch08::counts);
}

#[test]
fn ch04_sliding_windows_in_complete_mode() {
    assert_restart_equivalent("sliding", &|s, input, _| ch04::sliding(ch04::events(s, input)?));
}

#[test]
fn ch04_tumbling_windows_in_sql() {
    assert_restart_equivalent("tumbling_sql", &|s, input, _| ch04::tumbling_sql(s, ch04::events(s, input)?));
}

#[test]
fn ch07_sessions_with_a_gap_per_tier_in_complete_mode() {
    assert_restart_equivalent_with_watermark("sessions_by_tier", "complete", ch07::sessions_by_tier);
}
