//! Deduplication, static and streaming, per the semantics appendix, §7: what is dropped, what state keeps
//! and when it lets go.

use arrow::array::RecordBatch;

use crate::testing::BatchRecorder;
use crate::tests::session;
use crate::{MemoryStream, Session, StreamingQueryProgress};

/// The table rows (`|..|` lines) of each recorded batch of `name`.
fn rows(recorder: &BatchRecorder, name: &str) -> Vec<Vec<String>> {
    recorder
        .batches(name)
        .iter()
        .map(|b| b.to_table().unwrap().lines().skip(3).filter(|l| l.starts_with('|')).map(str::to_string).collect())
        .collect()
}

/// Feeds each JSON batch to `df`'s query and drains it; returns every batch's progress.
fn run(events: &MemoryStream, df: crate::DataFrame, batches: &[&str]) -> Vec<StreamingQueryProgress> {
    let q = df.write_stream().format("memory").query_name("out").start().unwrap();
    for b in batches {
        events.add_json(b).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    q.recent_progress()
}

/// Per batch: (input rows, keys in state, keys removed, late rows, duplicates).
fn state(progress: &[StreamingQueryProgress]) -> Vec<(u64, u64, u64, u64, u64)> {
    progress
        .iter()
        .map(|p| {
            let o = &p.state_operators[0];
            let dups = o.custom_metrics["numDroppedDuplicateRows"];
            (p.num_input_rows, o.num_rows_total, o.num_rows_removed, o.num_rows_dropped_by_watermark, dups)
        })
        .collect()
}

fn json_batch(schema: &arrow::datatypes::SchemaRef, json: &str) -> RecordBatch {
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone()).build_decoder().unwrap();
    decoder.decode(json.as_bytes()).unwrap();
    decoder.flush().unwrap().unwrap()
}

#[test]
fn static_drop_duplicates_keeps_the_first_row_of_each_key() {
    let s = Session::new();
    let df = s.sql("SELECT * FROM (VALUES ('a', 1), ('b', 2), ('a', 3), (NULL, 4), (NULL, 5)) AS v(k, n)").unwrap();
    let first = df.clone().drop_duplicates(&["k"]).unwrap();
    let text = crate::display::format_table(&first.schema(), &first.collect().unwrap(), 20, 0).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("|") && !l.contains('k')).count(), 3, "{text}");
    assert!(text.contains("|a   |1  |") && text.contains("|NULL|4  |"), "first of each key, null a key: {text}");
    assert_eq!(first.count().unwrap(), 3, "a second run starts with no keys");
    assert_eq!(df.clone().distinct().unwrap().count().unwrap(), 5);
    let err = df.drop_duplicates(&["nope"]).unwrap_err().to_string();
    assert!(err.contains("cannot resolve column name \"nope\" among (k, n)"), "{err}");
}

#[test]
fn without_watermark_every_key_is_kept_and_the_first_row_in_input_order_wins() {
    let (s, recorder) = session();
    let events = MemoryStream::new(&s, "id STRING, n BIGINT").unwrap();
    let q = events.to_df().unwrap().drop_duplicates(&["id"]).unwrap();
    let q = q.write_stream().format("memory").query_name("out").start().unwrap();
    // One micro-batch of three record batches: input order runs across them.
    let schema = events.schema();
    events
        .add_batches(vec![
            json_batch(&schema, r#"{"id": "a", "n": 1}"#),
            json_batch(&schema, r#"{"id": "b", "n": 2} {"id": "a", "n": 3}"#),
            json_batch(&schema, r#"{"id": "b", "n": 4} {"id": null, "n": 5} {"id": null, "n": 6}"#),
        ])
        .unwrap();
    q.process_all_available().unwrap();
    events.add_json(r#"{"id": "a", "n": 7} {"id": "c", "n": 8}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let out = rows(&recorder, "out");
    // b's first row is in the second record batch, its second in the third.
    assert_eq!(out[0], ["|NULL|  5|", "|   a|  1|", "|   b|  2|"]);
    assert_eq!(out[1], ["|  c|  8|"]);
    let progress = q.recent_progress();
    assert_eq!(state(&progress), [(6, 3, 0, 0, 3), (2, 4, 0, 0, 1)]);
    assert_eq!(progress[0].state_operators[0].operator_name, "dedupe");
    assert_eq!(progress[0].state_operators[0].num_rows_updated, 3);
}

const B0: &str = r#"{"id": "a", "t": "2024-01-01 10:00:00"} {"id": "b", "t": "2024-01-01 10:20:00"}"#;
const B1: &str = r#"{"id": "a", "t": "2024-01-01 10:00:00"} {"id": "b", "t": "2024-01-01 10:20:00"} {"id": "c", "t": "2024-01-01 10:12:00"}"#;

fn watermarked(s: &Session) -> (MemoryStream, crate::DataFrame) {
    let events = MemoryStream::new(s, "id STRING, t TIMESTAMP").unwrap();
    let df = events.to_df().unwrap().with_watermark("t", "10 minutes").unwrap();
    (events, df)
}

#[test]
fn keys_with_the_event_time_are_purged_once_the_watermark_passes_them() {
    let (s, recorder) = session();
    let (events, df) = watermarked(&s);
    let progress = run(&events, df.drop_duplicates(&["id", "t"]).unwrap(), &[B0, B1]);
    // Batch 0 keeps both; W becomes 10:10 and the no-data batch 1 purges (a, 10:00).
    // Batch 2 (late rows: t <= 10:10): (a, 10:00) is late, (b, 10:20) a duplicate, c new.
    assert_eq!(state(&progress), [(2, 2, 0, 0, 0), (0, 1, 1, 0, 0), (3, 2, 0, 1, 1)]);
    assert_eq!(rows(&recorder, "out")[2], ["|  c|2024-01-01 10:12:00|"]);
}

#[test]
fn keys_without_the_event_time_drop_late_rows_but_are_never_purged() {
    let (s, recorder) = session();
    let (events, df) = watermarked(&s);
    let progress = run(&events, df.drop_duplicates(&["id"]).unwrap(), &[B0, B1]);
    // Spark runs the no-data batch whenever the watermark moved, even with nothing to purge.
    assert_eq!(state(&progress), [(2, 2, 0, 0, 0), (0, 2, 0, 0, 0), (3, 3, 0, 1, 1)]);
    assert_eq!(rows(&recorder, "out")[2], ["|  c|2024-01-01 10:12:00|"]);
}

#[test]
fn within_watermark_a_key_is_a_duplicate_until_first_time_plus_delay_passes() {
    let (s, recorder) = session();
    let (events, df) = watermarked(&s);
    let df = df.drop_duplicates_within_watermark(&["id"]).unwrap();
    let progress = run(
        &events,
        df,
        &[
            // a expires at 10:10; its second row is a duplicate despite another time.
            r#"{"id": "a", "t": "2024-01-01 10:00:00"} {"id": "a", "t": "2024-01-01 10:05:00"} {"id": "z", "t": "2024-01-01 10:19:00"}"#,
            // W = 10:09: a is still held (10:10 > 10:09), so a at 10:15 is a duplicate.
            r#"{"id": "a", "t": "2024-01-01 10:15:00"} {"id": "z", "t": "2024-01-01 10:25:00"}"#,
            // W = 10:15 purged a (10:10 <= 10:15) after batch 2; a is new again.
            r#"{"id": "a", "t": "2024-01-01 10:16:00"}"#,
        ],
    );
    assert_eq!(progress[0].state_operators[0].operator_name, "dedupeWithinWatermark");
    let summary: Vec<_> = progress.iter().map(|p| (p.batch_id, p.event_time["watermark"].clone())).collect();
    assert_eq!(summary[1], (1, "2024-01-01T10:09:00.000Z".to_string()), "{summary:?}");
    assert_eq!(
        state(&progress),
        [
            (3, 2, 0, 0, 1),
            (0, 2, 0, 0, 0), // no-data batch at W = 10:09: a (10:10) stays
            (2, 2, 0, 0, 2),
            (0, 1, 1, 0, 0), // W = 10:15 purges a
            (1, 2, 0, 0, 0),
        ]
    );
    let out = rows(&recorder, "out");
    assert_eq!(out[4], ["|  a|2024-01-01 10:16:00|"]);
}

#[test]
fn within_watermark_needs_a_watermark_on_a_stream() {
    let (s, _) = session();
    let events = MemoryStream::new(&s, "id STRING, t TIMESTAMP").unwrap();
    let df = events.to_df().unwrap().drop_duplicates_within_watermark(&["id"]).unwrap();
    let err = df.write_stream().format("memory").query_name("x").start().unwrap_err().to_string();
    assert!(err.contains("dropDuplicatesWithinWatermark is not supported"), "{err}");
    assert!(err.contains("without watermark"), "{err}");
}

#[test]
fn keys_survive_a_restart() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let events = MemoryStream::new(&s, "id STRING").unwrap();
    let start = || {
        let df = events.to_df().unwrap().drop_duplicates(&["id"]).unwrap();
        let w = df.write_stream().format("memory").query_name("out").option("checkpointLocation", dir.path().display());
        w.start().unwrap()
    };
    let q = start();
    events.add_json(r#"{"id": "a"} {"id": "b"}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let q = start();
    events.add_json(r#"{"id": "a"} {"id": "c"}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let out = rows(&recorder, "out");
    assert_eq!(out.last().unwrap(), &["|  c|"]);
}
