//! Restart equivalence: a stateful query stopped after k batches and restarted from its
//! checkpoint writes exactly what an uninterrupted run writes, for every k; and a batch that
//! was planned but not committed (a crash between `offsets/N` and `commits/N`) is re-run with
//! the same offsets.

use std::path::Path;

use brooklet::Trigger;
use brooklet::testing::BatchRecorder;
use brooklet_book::Chapter;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

const FILES: usize = 4;

/// Chapter 1's aggregation, writing to memory with a checkpoint, one file per batch.
fn start(ch: &Chapter, input: &Path, checkpoint: &Path) -> brooklet::StreamingQuery {
    ch.session
        .read_stream()
        .format("json")
        .schema(EVENT_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .load(input)
        .and_then(|df| df.group_by(["event_type"]))
        .and_then(|g| g.agg(["count(*) AS n", "round(sum(value), 2) AS total"]))
        .and_then(|df| {
            df.write_stream()
                .format("memory")
                .query_name("totals")
                .output_mode("complete")
                .option("checkpointLocation", checkpoint.display())
                .trigger(Trigger::AvailableNow)
                .start()
        })
        .expect("query starts")
}

/// Per batch id, the rendered output (a re-run batch replaces its earlier output).
fn outputs(recorder: &BatchRecorder) -> Vec<(u64, String)> {
    let mut by_id = std::collections::BTreeMap::new();
    for b in recorder.batches("totals") {
        by_id.insert(b.batch_id, b.to_table().expect("renders"));
    }
    by_id.into_iter().collect()
}

/// Writes file `i` of the input: the same events whatever the run.
fn write_file(input: &Path, i: usize) {
    let mut generator = EventGenerator::new(7 + i as u64, "2024-01-01T09:00:00Z", 5);
    let text: String = generator.events(15).iter().map(|e| e.to_json() + "\n").collect();
    std::fs::create_dir_all(input).expect("input dir");
    brooklet_book::events::write_with_mtime(&input.join(format!("events-{i:04}.json")), &text, i).expect("write");
}

fn run_with_stops(stops: &[usize], crash_before_commit: bool) -> Vec<(u64, String)> {
    let ch = Chapter::new().expect("chapter");
    let (input, checkpoint) = (ch.path("input"), ch.path("checkpoint"));
    let mut written = 0;
    for &stop in stops.iter().chain(std::iter::once(&FILES)) {
        while written < stop {
            write_file(&input, written);
            written += 1;
        }
        let query = start(&ch, &input, &checkpoint);
        query.await_termination().expect("query succeeds");
        if crash_before_commit && stop < FILES {
            // Pretend the process died after the sink, before the commit of the last batch.
            let last = std::fs::read_dir(checkpoint.join("commits"))
                .expect("commits")
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .expect("a commit");
            std::fs::remove_file(checkpoint.join("commits").join(last.to_string())).expect("remove commit");
        }
    }
    outputs(&ch.recorder)
}

#[test]
fn stopping_and_restarting_at_every_batch_changes_nothing() {
    let straight = run_with_stops(&[], false);
    assert_eq!(straight.len(), FILES);
    for k in 1..FILES {
        assert_eq!(run_with_stops(&[k], false), straight, "stopped after {k} batches");
    }
    assert_eq!(run_with_stops(&[1, 2, 3], false), straight, "stopped after every batch");
}

#[test]
fn a_batch_planned_but_not_committed_is_rerun_with_the_same_offsets() {
    let straight = run_with_stops(&[], false);
    for k in 1..FILES {
        assert_eq!(run_with_stops(&[k], true), straight, "crashed before committing batch {}", k - 1);
    }
}
