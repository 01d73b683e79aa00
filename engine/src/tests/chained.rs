//! Several stateful operators in one query (semantics appendix, §12): a 5-minute count rolled
//! up into hourly sums, batch by batch as Apache Spark 4.3 runs it, and the output modes Spark
//! allows for each combination.

use crate::functions::{col, count, lit, sum, window, window_time};
use crate::tests::session;
use crate::{DataFrame, MemoryStream, StreamingQueryProgress};

const SCHEMA: &str = "id STRING, timestamp TIMESTAMP";

/// `group_by(window(timestamp, 5 min)).agg(count(*))`, then
/// `group_by(window(window_time(window), 1 h))` summing the counts and counting the 5-minute
/// windows. The first aggregation has a SQL expression, so a projection stands between the two
/// and must carry the window's event-time marking.
fn hourly_rollup(events: &MemoryStream) -> DataFrame {
    let five = events
        .to_df()
        .unwrap()
        .with_watermark("timestamp", "10 minutes")
        .unwrap()
        .group_by([window(col("timestamp"), "5 minutes")])
        .unwrap()
        .agg(["count(*) AS n"])
        .unwrap();
    five.group_by([window(window_time(col("window")), "1 hour").alias("hour")])
        .unwrap()
        .agg([sum(col("n")).alias("events"), count(lit(1)).alias("windows")])
        .unwrap()
}

fn json(batch: usize, times: &[&str]) -> String {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| format!(r#"{{"id": "{batch}-{i}", "timestamp": "2024-01-01T{t}:00"}}"#))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Per operator, top down: (rows total, rows updated, rows dropped by watermark).
fn operators(p: &StreamingQueryProgress) -> Vec<(u64, u64, u64)> {
    p.state_operators.iter().map(|o| (o.num_rows_total, o.num_rows_updated, o.num_rows_dropped_by_watermark)).collect()
}

#[test]
fn a_five_minute_count_rolls_up_into_hourly_sums_as_spark_does() {
    let (s, recorder) = session();
    let events = MemoryStream::new(&s, SCHEMA).unwrap();
    let q = hourly_rollup(&events).write_stream().format("memory").query_name("hourly").start().unwrap();
    let batches: [&[&str]; 5] =
        [&["10:01", "10:02", "10:07"], &["10:31", "10:58"], &["11:20"], &["10:40", "11:03"], &["12:30"]];
    let mut last = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        events.add_json(&json(i, b)).unwrap();
        q.process_all_available().unwrap();
        let p = q.last_progress().unwrap();
        last.push((p.batch_id, p.event_time["watermark"].clone(), operators(&p)));
    }
    q.stop().unwrap();
    // Spark 4.3, local[2], the same rows one file per batch: after each file, the last batch's
    // id, watermark and state (the hourly operator first, as Spark lists them).
    assert_eq!(
        last,
        vec![
            (1, "2024-01-01T09:57:00.000Z".into(), vec![(0, 0, 0), (2, 0, 0)]),
            (3, "2024-01-01T10:48:00.000Z".into(), vec![(1, 1, 0), (1, 0, 0)]),
            (5, "2024-01-01T11:10:00.000Z".into(), vec![(0, 1, 0), (1, 0, 0)]),
            (6, "2024-01-01T11:10:00.000Z".into(), vec![(0, 0, 0), (1, 0, 2)]),
            (8, "2024-01-01T12:20:00.000Z".into(), vec![(0, 1, 0), (1, 0, 0)]),
        ],
        "10:40 and 11:03 arrive after their 5-minute windows were final (W = 11:10): dropped below"
    );
    let out: Vec<(u64, String)> = recorder
        .batches("hourly")
        .iter()
        .filter(|b| b.batches.iter().any(|r| r.num_rows() > 0))
        .map(|b| (b.batch_id, crate::display::format_table(&b.schema, &[b.sorted().unwrap()], 20, 0).unwrap()))
        .collect();
    let hour = |start: &str, end: &str, events: u64, windows: u64| {
        format!(
            "+------------------------------------------+------+-------+\n\
             |hour                                      |events|windows|\n\
             +------------------------------------------+------+-------+\n\
             |{{2024-01-01 {start}:00, 2024-01-01 {end}:00}}|{events:<6}|{windows:<7}|\n\
             +------------------------------------------+------+-------+\n"
        )
    };
    assert_eq!(
        out,
        vec![(5, hour("10:00", "11:00", 5, 4)), (8, hour("11:00", "12:00", 1, 1))],
        "an hour is final in the no-data batch whose watermark passes it: its last 5-minute \
         window comes out of the operator below in that same batch"
    );
}

#[test]
fn two_aggregations_need_append_mode_while_a_dedup_feeds_an_aggregation_in_complete_mode_too() {
    let (s, _) = session();
    let events = MemoryStream::new(&s, SCHEMA).unwrap();
    for mode in ["update", "complete"] {
        let err = hourly_rollup(&events).write_stream().format("memory").query_name("q").output_mode(mode).start();
        let err = err.unwrap_err().to_string();
        assert!(err.contains("possible 'correctness' issue due to global watermark"), "{mode}: {err}");
    }
    let plain = events.to_df().unwrap().group_by(["id"]).unwrap().count().unwrap();
    let twice = plain.group_by(["count"]).unwrap().agg([count(lit(1)).alias("ids")]).unwrap();
    let err = twice.write_stream().format("memory").query_name("q").start().unwrap_err().to_string();
    assert!(err.contains("without watermark"), "{err}");

    let deduped = events.to_df().unwrap().with_watermark("timestamp", "10 minutes").unwrap();
    let counts = deduped.drop_duplicates(&["id"]).unwrap().group_by([window(col("timestamp"), "5 minutes")]).unwrap();
    let q = counts.count().unwrap().write_stream().format("memory").query_name("q").output_mode("complete").start();
    let q = q.unwrap();
    let duplicate = r#"{"id": "0-0", "timestamp": "2024-01-01T10:03:00"}"#;
    events.add_json(&format!("{}\n{duplicate}", json(0, &["10:01", "10:02"]))).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let p = q.recent_progress()[0].clone();
    let names: Vec<&str> = p.state_operators.iter().map(|o| o.operator_name.as_str()).collect();
    assert_eq!(names, ["stateStoreSave", "dedupe"], "top down, as Spark numbers them");
    assert_eq!(p.state_operators[1].custom_metrics["numDroppedDuplicateRows"], 1);
    assert_eq!(operators(&p), vec![(1, 1, 0), (2, 2, 0)]);
}

#[test]
fn each_operator_knows_the_operators_it_reads_so_watermarks_flow_up_the_plan() {
    let (s, _) = session();
    let events = MemoryStream::new(&s, SCHEMA).unwrap();
    let deduped = events.to_df().unwrap().with_watermark("timestamp", "10 minutes").unwrap();
    let five = deduped.drop_duplicates(&["id"]).unwrap().group_by([window(col("timestamp"), "5 minutes")]).unwrap();
    let five = five.agg(["count(*) AS n"]).unwrap();
    let hourly = five.group_by([window(window_time(col("window")), "1 hour").alias("hour")]).unwrap();
    let hourly = hourly.agg([sum(col("n")).alias("events")]).unwrap();
    let plan = crate::plan::plan_stream(hourly.df.logical_plan().clone(), 1).unwrap();
    let inputs: Vec<Vec<usize>> = plan.operators.iter().map(|o| o.inputs.clone()).collect();
    assert_eq!(inputs, vec![vec![1], vec![2], vec![]], "hourly reads the 5-minute count, which reads the dedup");
}
