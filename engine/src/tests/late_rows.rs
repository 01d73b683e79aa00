//! The late-rows output: every row a stateful operator drops beyond the watermark, with the
//! operator, the reason, the judged time and the watermark, for windows, sessions and dedup.

use std::sync::{Arc, Mutex};

use crate::functions::{col, count, lit, session_window, sliding_window, window};
use crate::tests::session;
use crate::{DataFrame, MemoryStream, Session};

const SCHEMA: &str = "id STRING, timestamp TIMESTAMP";

/// Runs `build(events)` in `mode`, one JSON batch at a time, keeping late rows in table
/// `late`; returns that table, sorted, and the total `numRowsDroppedByWatermark`.
fn late_rows(mode: &str, batches: &[&str], build: impl Fn(DataFrame) -> DataFrame) -> (String, u64) {
    let (s, _) = session();
    let events = MemoryStream::new(&s, SCHEMA).unwrap();
    let df = build(events.to_df().unwrap().with_watermark("timestamp", "10 minutes").unwrap());
    let q =
        df.write_stream().format("memory").query_name("out").output_mode(mode).late_rows_table("late").start().unwrap();
    for b in batches {
        events.add_json(b).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    let dropped = q.recent_progress().iter().map(|p| p.state_operators[0].num_rows_dropped_by_watermark).sum();
    (table(&s, "SELECT * FROM late"), dropped)
}

fn table(s: &Session, sql: &str) -> String {
    let df = s.sql(sql).unwrap();
    let sorted = crate::testing::sort_all_columns(&df.schema(), &df.collect().unwrap()).unwrap();
    crate::display::format_table(&df.schema(), &[sorted], usize::MAX, 0).unwrap()
}

/// Batch 0 moves the watermark to 10:10; batch 1 (W_0 = 10:10 for late rows) brings late rows.
const BATCHES: [&str; 2] = [
    r#"{"id": "a", "timestamp": "2024-01-01T10:20:00"}"#,
    r#"{"id": "b", "timestamp": "2024-01-01T10:03:00"} {"id": "c", "timestamp": "2024-01-01T10:08:00"}
       {"id": "d", "timestamp": "2024-01-01T10:12:00"}"#,
];

#[test]
fn a_tumbling_window_lists_each_row_of_a_window_that_was_already_final() {
    let (late, dropped) = late_rows("append", &BATCHES, |df| {
        df.group_by([window(col("timestamp"), "5 minutes")]).unwrap().count().unwrap()
    });
    assert_eq!(
        late,
        "+--------+--------------+-----------------------+-------------------+-------------------+--------------------------------------------+\n\
         |batch_id|operator      |reason                 |time               |watermark          |row                                         |\n\
         +--------+--------------+-----------------------+-------------------+-------------------+--------------------------------------------+\n\
         |2       |stateStoreSave|window end <= watermark|2024-01-01 10:05:00|2024-01-01 10:10:00|{\"id\":\"b\",\"timestamp\":\"2024-01-01T10:03:00\"}|\n\
         |2       |stateStoreSave|window end <= watermark|2024-01-01 10:10:00|2024-01-01 10:10:00|{\"id\":\"c\",\"timestamp\":\"2024-01-01T10:08:00\"}|\n\
         +--------+--------------+-----------------------+-------------------+-------------------+--------------------------------------------+\n",
        "batch 1 is the no-data batch; 10:12 is in [10:10, 10:15), still open"
    );
    assert_eq!(dropped, 2, "two partial rows: one per late window");
}

#[test]
fn a_sliding_window_lists_a_row_once_per_window_it_was_too_late_for() {
    let (late, dropped) = late_rows("append", &BATCHES, |df| {
        df.group_by([sliding_window(col("timestamp"), "10 minutes", "5 minutes")]).unwrap().count().unwrap()
    });
    let rows: Vec<&str> = late.lines().filter(|l| l.starts_with("|2 ")).collect();
    assert_eq!(rows.len(), 3, "{late}");
    assert!(rows[0].contains("|2024-01-01 10:05:00|2024-01-01 10:10:00|{\"id\":\"b\""), "{late}");
    assert!(rows[1].contains("|2024-01-01 10:10:00|2024-01-01 10:10:00|{\"id\":\"b\""), "{late}");
    assert!(rows[2].contains("|2024-01-01 10:10:00|2024-01-01 10:10:00|{\"id\":\"c\""), "{late}");
    assert_eq!(dropped, 2, "progress counts partial rows: b and c share [10:00, 10:10)");
}

#[test]
fn a_session_lists_rows_whose_own_session_ended_before_the_watermark() {
    let (late, dropped) = late_rows("append", &BATCHES, |df| {
        df.group_by([session_window(col("timestamp"), "5 minutes"), col("id")]).unwrap().count().unwrap()
    });
    assert!(
        late.contains(
            "|2       |sessionWindowStateStoreSaveExec|session end <= watermark|2024-01-01 10:08:00|2024-01-01 10:10:00|{\"id\":\"b\""
        ),
        "{late}"
    );
    assert_eq!(late.lines().filter(|l| l.starts_with("|2 ")).count(), 1, "c's session ends 10:13: {late}");
    assert_eq!(dropped, 1);
}

#[test]
fn deduplication_lists_late_rows_with_its_operator_name() {
    let (late, dropped) = late_rows("append", &BATCHES, |df| df.drop_duplicates(&["id", "timestamp"]).unwrap());
    let rows: Vec<&str> = late.lines().filter(|l| l.starts_with("|2 ")).collect();
    assert_eq!(rows.len(), 2, "{late}");
    assert!(rows[0].contains("|dedupe  |event time <= watermark|2024-01-01 10:03:00|2024-01-01 10:10:00|"), "{late}");
    assert!(rows[1].contains("|2024-01-01 10:08:00|"), "{late}");
    assert_eq!(dropped, 2);
}

#[test]
fn late_rows_can_go_to_a_function_with_the_batch_id_and_need_a_watermark() {
    let (s, _) = session();
    let events = MemoryStream::new(&s, SCHEMA).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let df = events.to_df().unwrap().with_watermark("timestamp", "10 minutes").unwrap();
    let windows = df.group_by([window(col("timestamp"), "5 minutes")]).unwrap();
    let q = windows
        .agg([count(lit(1)).alias("n")])
        .unwrap()
        .write_stream()
        .format("memory")
        .query_name("out")
        .late_rows_foreach_batch(move |df, batch_id| {
            sink.lock().unwrap().push((batch_id, df.count()?));
            Ok(())
        })
        .start()
        .unwrap();
    for b in BATCHES {
        events.add_json(b).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![(2, 2)], "called only for the batch that dropped rows");

    let plain = events.to_df().unwrap().write_stream().format("memory").query_name("plain");
    let err = plain.late_rows_table("late").start().unwrap_err().to_string();
    assert!(err.contains("late rows need a watermark"), "{err}");
}

/// What one run of a query shows: every batch's output table and every batch's state counts
/// per operator (total, updated, removed, dropped by watermark, duplicates dropped).
type Run = (Vec<(u64, String)>, Vec<Vec<(u64, u64, u64, u64, u64)>>);

/// Runs `build(events)` over `batches` in append mode, with or without the late-rows output;
/// returns what the run shows and the late rows it kept.
fn run_with_late_rows(keep_late: bool, batches: &[&str], build: &dyn Fn(DataFrame) -> DataFrame) -> (Run, String) {
    let (s, recorder) = session();
    let events = MemoryStream::new(&s, SCHEMA).unwrap();
    let writer = build(events.to_df().unwrap()).write_stream().format("memory").query_name("out");
    let q = if keep_late { writer.late_rows_table("late") } else { writer }.start().unwrap();
    for b in batches {
        events.add_json(b).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    let outputs = recorder.batches("out").iter().map(|b| (b.batch_id, b.to_table().unwrap())).collect();
    let state = q
        .recent_progress()
        .iter()
        .map(|p| {
            let counts = |o: &crate::progress::StateOperatorProgress| {
                let duplicates = o.custom_metrics.get("numDroppedDuplicateRows").copied().unwrap_or(0);
                (o.num_rows_total, o.num_rows_updated, o.num_rows_removed, o.num_rows_dropped_by_watermark, duplicates)
            };
            p.state_operators.iter().map(counts).collect()
        })
        .collect();
    let late = if keep_late { table(&s, "SELECT batch_id, operator, time, row FROM late") } else { String::new() };
    ((outputs, state), late)
}

/// Batch 2 repeats `a` and brings `b` and `c`, which are late by W_1 = 10:10.
const WITH_DUPLICATE: [&str; 2] = [
    r#"{"id": "a", "timestamp": "2024-01-01T10:20:00"}"#,
    r#"{"id": "b", "timestamp": "2024-01-01T10:03:00"} {"id": "c", "timestamp": "2024-01-01T10:08:00"}
       {"id": "d", "timestamp": "2024-01-01T10:12:00"} {"id": "a", "timestamp": "2024-01-01T10:20:00"}"#,
];

fn sliding_count(df: DataFrame) -> DataFrame {
    df.group_by([sliding_window(col("timestamp"), "10 minutes", "5 minutes")]).unwrap().count().unwrap()
}

#[test]
fn keeping_late_rows_changes_no_output_and_no_count_and_lists_each_dropped_row() {
    // The deduplication has no watermark of its own: only the windows judge lateness.
    let dedup_first = |df: DataFrame| {
        sliding_count(df.drop_duplicates(&["id"]).unwrap().with_watermark("timestamp", "10 minutes").unwrap())
    };
    let (plain, _) = run_with_late_rows(false, &WITH_DUPLICATE, &dedup_first);
    let (kept, late) = run_with_late_rows(true, &WITH_DUPLICATE, &dedup_first);
    assert_eq!(plain, kept, "the late-rows output must not change what the query does");
    assert_eq!(kept.1[2][0].3, 2, "the windows drop two partial rows in batch 2: {:?}", kept.1);
    assert_eq!(kept.1[2][1].4, 1, "the dedup drops the second a: {:?}", kept.1);
    assert_eq!(
        late,
        "+--------+--------------+-------------------+--------------------------------------------+\n\
         |batch_id|operator      |time               |row                                         |\n\
         +--------+--------------+-------------------+--------------------------------------------+\n\
         |2       |stateStoreSave|2024-01-01 10:05:00|{\"id\":\"b\",\"timestamp\":\"2024-01-01T10:03:00\"}|\n\
         |2       |stateStoreSave|2024-01-01 10:10:00|{\"id\":\"b\",\"timestamp\":\"2024-01-01T10:03:00\"}|\n\
         |2       |stateStoreSave|2024-01-01 10:10:00|{\"id\":\"c\",\"timestamp\":\"2024-01-01T10:08:00\"}|\n\
         +--------+--------------+-------------------+--------------------------------------------+\n",
        "b is late for both of its windows, c for one"
    );

    // With the watermark first, the deduplication judges lateness itself and drops b and c.
    let watermark_first = |df: DataFrame| {
        sliding_count(df.with_watermark("timestamp", "10 minutes").unwrap().drop_duplicates(&["id"]).unwrap())
    };
    let (plain, _) = run_with_late_rows(false, &WITH_DUPLICATE, &watermark_first);
    let (kept, late) = run_with_late_rows(true, &WITH_DUPLICATE, &watermark_first);
    assert_eq!(plain, kept);
    assert_eq!((kept.1[2][0].3, kept.1[2][1].3, kept.1[2][1].4), (0, 2, 1), "{:?}", kept.1);
    assert_eq!(
        late,
        "+--------+--------+-------------------+--------------------------------------------+\n\
         |batch_id|operator|time               |row                                         |\n\
         +--------+--------+-------------------+--------------------------------------------+\n\
         |2       |dedupe  |2024-01-01 10:03:00|{\"id\":\"b\",\"timestamp\":\"2024-01-01T10:03:00\"}|\n\
         |2       |dedupe  |2024-01-01 10:08:00|{\"id\":\"c\",\"timestamp\":\"2024-01-01T10:08:00\"}|\n\
         +--------+--------+-------------------+--------------------------------------------+\n"
    );
}
