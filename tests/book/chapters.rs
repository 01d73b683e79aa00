//! One test per chapter: run the chapter's program exactly as `cargo run --example` does and
//! snapshot every batch of every query it started.

use brooklet_book::Chapter;

use crate::support::assert_batches;

#[path = "../../examples/ch01_streams_are_tables.rs"]
#[allow(dead_code)]
pub mod ch01;

#[path = "../../examples/ch02_output_modes.rs"]
#[allow(dead_code)]
pub mod ch02;

#[path = "../../examples/ch03_file_sources.rs"]
#[allow(dead_code)]
pub mod ch03;

#[path = "../../examples/ch04_windows.rs"]
#[allow(dead_code)]
pub mod ch04;

#[path = "../../examples/ch05_watermarks.rs"]
#[allow(dead_code)]
pub mod ch05;

#[path = "../../examples/ch06_deduplication.rs"]
#[allow(dead_code)]
pub mod ch06;

#[path = "../../examples/ch07_sessions.rs"]
#[allow(dead_code)]
pub mod ch07;

#[path = "../../examples/ch08_state.rs"]
#[allow(dead_code)]
pub mod ch08;

#[test]
fn ch01_streams_are_tables() {
    let ch = Chapter::new().expect("chapter context");
    ch01::run(&ch).expect("chapter 1 runs");
    assert_batches("ch01", &ch, &["counts_by_type"]);
    assert_eq!(ch.recorder.batches("counts_by_type").len(), 3, "one batch per file");
}

#[test]
fn ch02_output_modes() {
    let ch = Chapter::new().expect("chapter context");
    ch02::run(&ch).expect("chapter 2 runs");
    assert_batches("ch02", &ch, &["purchases_append", "totals_complete", "totals_update"]);
}

#[test]
fn ch03_file_sources() {
    let ch = Chapter::new().expect("chapter context");
    ch03::run(&ch).expect("chapter 3 runs");
    assert_batches(
        "ch03",
        &ch,
        &["enriched", "csv_counts", "restartable", "permissive", "dropmalformed", "to_parquet"],
    );
    let restarted: Vec<u64> = ch.recorder.batches("restartable").iter().map(|b| b.batch_id).collect();
    assert_eq!(restarted, [0, 1, 2, 3], "batch ids continue across the restart");
}

#[test]
fn ch04_windows() {
    let ch = Chapter::new().expect("chapter context");
    ch04::run(&ch).expect("chapter 4 runs");
    assert_batches("ch04", &ch, &["tumbling", "sliding", "tumbling_sql"]);
}

#[test]
fn ch05_watermarks() {
    let ch = Chapter::new().expect("chapter context");
    ch05::run(&ch).expect("chapter 5 runs");
    assert_batches("ch05", &ch, &["append", "update", "two_watermarks"]);
}

#[test]
fn ch06_deduplication() {
    let ch = Chapter::new().expect("chapter context");
    ch06::run(&ch).expect("chapter 6 runs");
    assert_batches("ch06", &ch, &["by_id", "by_id_and_time", "within_watermark"]);
}

#[test]
fn ch07_sessions() {
    let ch = Chapter::new().expect("chapter context");
    ch07::run(&ch).expect("chapter 7 runs");
    assert_batches("ch07", &ch, &["sessions", "sessions_by_tier", "bridge"]);
}

#[test]
fn ch08_state() {
    let ch = Chapter::new().expect("chapter context");
    ch08::run(&ch).expect("chapter 8 runs");
    assert_batches("ch08", &ch, &["counts"]);
}
