//! Stream-stream joins, batch by batch, as Apache Spark 4.3 runs them (recorded with pyspark on
//! the same files, `maxFilesPerTrigger` 1 on each side, 10-minute watermarks, a one-hour
//! range): matches in the batch their second side arrives, inclusive range ends, null keys,
//! late rows on both sides, outer rows padded with nulls when the state watermark passes them,
//! the final no-data batch, state metrics, the late-rows output, a window aggregation fed by
//! the join (its output watermark), and the combinations Spark refuses (semantics
//! appendix, §8).

use crate::tests::{lines_with, session};
use crate::{DataFrame, Session, Trigger};

const IMPRESSIONS: [&[(Option<&str>, &str)]; 4] = [
    &[(Some("ad1"), "10:00"), (Some("ad2"), "10:05"), (Some("ad3"), "10:10"), (Some("ad1"), "10:02")],
    &[(Some("ad4"), "11:00"), (None, "11:00")],
    &[(Some("ad5"), "12:30")],
    &[(Some("ad6"), "13:00"), (Some("ad7"), "10:45")],
];
const CLICKS: [&[(Option<&str>, &str)]; 4] = [
    &[(Some("ad1"), "10:20")],
    &[(Some("ad2"), "11:05"), (Some("ad3"), "11:11"), (None, "11:01")],
    &[(Some("ad4"), "11:30"), (Some("ad4"), "11:40")],
    &[(Some("ad9"), "13:00"), (Some("ad7"), "10:50")],
];

/// One file per batch for a side, oldest first.
fn write(dir: &std::path::Path, id: &str, time: &str, files: &[&[(Option<&str>, &str)]]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, rows) in files.iter().enumerate() {
        let lines: String = rows
            .iter()
            .map(|(ad, t)| {
                let ad = ad.map_or("null".to_string(), |a| format!("\"{a}\""));
                format!("{{\"{id}\": {ad}, \"{time}\": \"2024-01-01 {t}:00\"}}\n")
            })
            .collect();
        let path = dir.join(format!("{i:02}.json"));
        std::fs::write(&path, lines).unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + i as u64);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
    }
}

fn sides(s: &Session, root: &std::path::Path, watermarks: (bool, bool)) -> (DataFrame, DataFrame) {
    let (imp, clk) = (root.join("imp"), root.join("clk"));
    if !imp.exists() {
        write(&imp, "impressionAdId", "impressionTime", &IMPRESSIONS);
        write(&clk, "clickAdId", "clickTime", &CLICKS);
    }
    let read = |dir: &std::path::Path, schema: &str| {
        s.read_stream().format("json").schema(schema).option("maxFilesPerTrigger", 1).load(dir).unwrap()
    };
    let mut i = read(&imp, "impressionAdId STRING, impressionTime TIMESTAMP");
    let mut c = read(&clk, "clickAdId STRING, clickTime TIMESTAMP");
    if watermarks.0 {
        i = i.with_watermark("impressionTime", "10 minutes").unwrap();
    }
    if watermarks.1 {
        c = c.with_watermark("clickTime", "10 minutes").unwrap();
    }
    (i, c)
}

const RANGE: &str =
    "clickAdId = impressionAdId AND clickTime >= impressionTime AND clickTime <= impressionTime + interval 1 hour";

/// Runs `df` to the end of its input into a memory table; per batch: its recording and its
/// progress.
fn to_end(
    recorder: &crate::testing::BatchRecorder,
    df: crate::Result<DataFrame>,
    name: &str,
) -> crate::Result<Vec<(crate::testing::RecordedBatch, crate::StreamingQueryProgress)>> {
    let q = df?.write_stream().format("memory").query_name(name).trigger(Trigger::AvailableNow).start()?;
    q.await_termination()?;
    Ok(recorder.batches(name).into_iter().zip(q.recent_progress()).collect())
}

/// The first state operator's `(total, updated, removed, dropped)`.
fn counts(p: &crate::StreamingQueryProgress) -> (u64, u64, u64, u64) {
    let o = &p.state_operators[0];
    (o.num_rows_total, o.num_rows_updated, o.num_rows_removed, o.num_rows_dropped_by_watermark)
}

/// Each batch: `id (total, updated, removed, dropped)` and its rows sorted, or the error.
fn run(how: &str, watermarks: (bool, bool), condition: &str) -> Vec<String> {
    let (s, recorder) = session();
    let root = tempfile::tempdir().unwrap();
    let (i, c) = sides(&s, root.path(), watermarks);
    let batches = match to_end(&recorder, i.join(c, condition, how), &format!("join_{how}")) {
        Ok(batches) => batches,
        Err(e) => return vec![format!("ERROR {e}")],
    };
    batches
        .iter()
        .map(|(b, p)| {
            let mut rows: Vec<String> = lines_with(&b.batches, "null")
                .into_iter()
                .map(|row| row.replace("2024-01-01T", "").replace(":00|", "|"))
                .collect();
            rows.sort();
            format!("{} {:?} {}", b.batch_id, counts(p), rows.join(" "))
        })
        .collect()
}

#[test]
fn inner_join_matches_when_the_second_side_arrives_and_state_leaves_by_the_range() {
    assert_eq!(
        run("inner", (true, true), RANGE),
        [
            "0 (5, 5, 0, 0) ad1|10:00|ad1|10:20:00 ad1|10:02|ad1|10:20:00",
            "1 (8, 3, 0, 0) ad2|10:05|ad2|11:05:00",
            "2 (10, 3, 1, 0) ad4|11:00|ad4|11:30:00 ad4|11:00|ad4|11:40:00",
            "3 (6, 2, 6, 2) ",
            "4 (3, 0, 3, 0) ",
        ]
    );
}

#[test]
fn outer_joins_pad_unmatched_rows_once_the_state_watermark_passes_them() {
    assert_eq!(
        run("left_outer", (true, true), RANGE),
        [
            "0 (5, 5, 0, 0) ad1|10:00|ad1|10:20:00 ad1|10:02|ad1|10:20:00",
            "1 (9, 4, 0, 0) ad2|10:05|ad2|11:05:00",
            "2 (11, 3, 1, 0) ad4|11:00|ad4|11:30:00 ad4|11:00|ad4|11:40:00",
            "3 (7, 2, 6, 2) ad3|10:10|null|null",
            "4 (3, 0, 4, 0) null|11:00|null|null",
        ]
    );
    assert_eq!(
        run("right_outer", (true, true), RANGE),
        [
            "0 (5, 5, 0, 0) ad1|10:00|ad1|10:20:00 ad1|10:02|ad1|10:20:00",
            "1 (9, 4, 0, 0) ad2|10:05|ad2|11:05:00",
            "2 (11, 3, 1, 0) ad4|11:00|ad4|11:30:00 ad4|11:00|ad4|11:40:00",
            "3 (6, 2, 7, 2) null|null|ad3|11:11:00 null|null|null|11:01:00",
            "4 (3, 0, 3, 0) ",
        ]
    );
    // Null keys of the two sides match in a full outer join, as in Spark's join state.
    assert_eq!(
        run("full_outer", (true, true), RANGE),
        [
            "0 (5, 5, 0, 0) ad1|10:00|ad1|10:20:00 ad1|10:02|ad1|10:20:00",
            "1 (10, 5, 0, 0) ad2|10:05|ad2|11:05:00 null|11:00|null|11:01:00",
            "2 (12, 3, 1, 0) ad4|11:00|ad4|11:30:00 ad4|11:00|ad4|11:40:00",
            "3 (7, 2, 7, 2) ad3|10:10|null|null null|null|ad3|11:11:00",
            "4 (3, 0, 4, 0) ",
        ]
    );
}

#[test]
fn a_left_semi_join_emits_each_left_row_once_at_its_first_match() {
    assert_eq!(
        run("left_semi", (true, true), RANGE),
        [
            "0 (3, 3, 0, 0) ad1|10:00:00 ad1|10:02:00",
            "1 (5, 3, 1, 0) ad2|10:05:00",
            "2 (6, 3, 2, 0) ad4|11:00:00",
            "3 (5, 2, 3, 2) ",
            "4 (3, 0, 2, 0) ",
        ]
    );
}

#[test]
fn without_watermarks_an_inner_join_keeps_everything() {
    let batches = run("inner", (false, false), RANGE);
    assert_eq!(batches.len(), 4, "no watermark, no no-data batch");
    assert_eq!(batches[3], "3 (15, 4, 0, 0) ad7|10:45|ad7|10:50:00", "nothing is late");
}

#[test]
fn joins_spark_refuses_are_refused_with_its_messages() {
    let left = "ERROR Stream-stream LeftOuter join between two streaming DataFrame/Datasets is not supported without a watermark in the join keys, or a watermark on the nullable side and an appropriate range condition";
    assert_eq!(run("left_outer", (true, false), RANGE), [left]);
    assert_eq!(run("left_outer", (true, true), "clickAdId = impressionAdId"), [left]);
    assert_eq!(run("left_outer", (true, true), "clickAdId = impressionAdId AND clickTime >= impressionTime"), [left]);
    assert_eq!(
        run("left_anti", (true, true), RANGE),
        ["ERROR LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported"]
    );
    assert_eq!(
        run("inner", (true, true), "clickTime >= impressionTime AND clickTime <= impressionTime + interval 1 hour"),
        ["ERROR Stream-stream join without equality predicate is not supported"]
    );
}

#[test]
fn the_late_rows_output_lists_what_the_join_dropped() {
    let (s, _) = session();
    let root = tempfile::tempdir().unwrap();
    let (i, c) = sides(&s, root.path(), (true, true));
    let writer = i.join(c, RANGE, "inner").unwrap().write_stream().format("memory").query_name("joined");
    let q = writer.late_rows_table("late").trigger(Trigger::AvailableNow).start().unwrap();
    q.await_termination().unwrap();
    let late = s.sql("SELECT batch_id, operator, time, watermark, row FROM late ORDER BY time").unwrap();
    let late = late.collect().unwrap();
    let rows = crate::display::format_table(&late[0].schema(), &late, 10, 0).unwrap();
    assert!(rows.contains("symmetricHashJoin"), "{rows}");
    assert!(rows.contains(r#"{"impressionAdId":"ad7","impressionTime":"2024-01-01T10:45:00"}"#), "{rows}");
    assert!(rows.contains(r#"{"clickAdId":"ad7","clickTime":"2024-01-01T10:50:00"}"#), "{rows}");
    assert_eq!(late.iter().map(|b| b.num_rows()).sum::<usize>(), 2, "{rows}");
}

/// Each batch of a join feeding a 30-minute window count (append): its rows and both
/// operators' `(total, updated, removed, dropped)`.
fn join_then_count(how: &str) -> Vec<String> {
    let (s, recorder) = session();
    let root = tempfile::tempdir().unwrap();
    let (i, c) = sides(&s, root.path(), (true, true));
    let counts = i.join(c, RANGE, how).and_then(|j| j.group_by(["window(impressionTime, '30 minutes')"])?.count());
    to_end(&recorder, counts, &format!("counts_{how}"))
        .unwrap()
        .iter()
        .map(|(b, p)| {
            let mut rows = lines_with(&b.batches, "null");
            rows.sort();
            let ops: Vec<_> = p
                .state_operators
                .iter()
                .map(|o| {
                    (
                        o.operator_name.clone(),
                        o.num_rows_total,
                        o.num_rows_updated,
                        o.num_rows_removed,
                        o.num_rows_dropped_by_watermark,
                    )
                })
                .collect();
            format!("{} {:?} {ops:?} {}", b.batch_id, b.watermark, rows.join(" "))
        })
        .collect()
}

#[test]
fn a_join_feeds_a_window_aggregation_with_the_joins_output_watermark() {
    // Spark 4.3: the join holds its output watermark back to its impressions' state watermark
    // (W - 1 hour - 1 ms), so both windows come out only in the no-data batch 4.
    let ops = |agg: (u64, u64, u64), join: (u64, u64, u64, u64)| {
        format!(
            "[(\"stateStoreSave\", {}, {}, {}, 0), (\"symmetricHashJoin\", {}, {}, {}, {})]",
            agg.0, agg.1, agg.2, join.0, join.1, join.2, join.3
        )
    };
    let windows = |a: u64, b: u64| {
        format!(
            "{{start: 2024-01-01T10:00:00, end: 2024-01-01T10:30:00}}|{a} {{start: 2024-01-01T11:00:00, end: 2024-01-01T11:30:00}}|{b}"
        )
    };
    let expected = |left: bool| {
        let (l, n) = (u64::from(left), u64::from(left));
        vec![
            format!("0 Some(\"1970-01-01T00:00:00.000Z\") {} ", ops((1, 1, 0), (5, 5, 0, 0))),
            format!("1 Some(\"2024-01-01T10:00:00.000Z\") {} ", ops((1, 1, 0), (8 + l, 3 + l, 0, 0))),
            format!("2 Some(\"2024-01-01T10:50:00.000Z\") {} ", ops((2, 1, 0), (10 + l, 3, 1, 0))),
            format!("3 Some(\"2024-01-01T11:30:00.000Z\") {} ", ops((2, n, 0), (6 + l, 2, 6, 2))),
            format!(
                "4 Some(\"2024-01-01T12:50:00.000Z\") {} {}",
                ops((0, n, 2), (3, 0, 3 + l, 0)),
                windows(3 + l, 2 + l)
            ),
        ]
    };
    assert_eq!(join_then_count("inner"), expected(false));
    assert_eq!(join_then_count("left_outer"), expected(true));
}

/// Each batch of a join on the ad and the hour window (`window(time, '1 hour')` on both
/// sides, the watermark in the join keys).
fn window_join(how: &str) -> Vec<String> {
    let (s, recorder) = session();
    let root = tempfile::tempdir().unwrap();
    let (i, c) = sides(&s, root.path(), (true, true));
    let i = i
        .select_expr(&[
            "impressionAdId",
            "window(impressionTime, '1 hour') AS iw",
            "to_char(impressionTime, '%Y-%m-%d %H:%M:%S') AS it",
        ])
        .unwrap();
    let c = c
        .select_expr(&[
            "clickAdId",
            "window(clickTime, '1 hour') AS cw",
            "to_char(clickTime, '%Y-%m-%d %H:%M:%S') AS ct",
        ])
        .unwrap();
    let joined = i
        .join(c, "impressionAdId = clickAdId AND iw = cw", how)
        .and_then(|j| j.select(["impressionAdId", "it", "clickAdId", "ct"]));
    to_end(&recorder, joined, &format!("window_{how}"))
        .unwrap()
        .iter()
        .map(|(b, p)| {
            let mut rows = lines_with(&b.batches, "None");
            rows.sort();
            format!("{} {:?} {}", b.batch_id, counts(p), rows.join(" "))
        })
        .collect()
}

#[test]
fn a_join_on_a_window_evicts_by_the_window_end() {
    // Spark 4.3. The watermark is in the join keys: rows leave when their window's end is at or
    // before W, and a row is late only when its window's end is at or before W_{N-1}, so
    // batch 3's ad7 pair (window 10:00-11:00, W_2 = 10:50) is not late and matches.
    let t = |hm: &str| format!("2024-01-01 {hm}:00");
    let pair = |a: &str, i: &str, c: &str| format!("{a}|{}|{a}|{}", t(i), t(c));
    let b0 = format!("0 (5, 5, 0, 0) {} {}", pair("ad1", "10:00", "10:20"), pair("ad1", "10:02", "10:20"));
    let ad4 = format!("{} {}", pair("ad4", "11:00", "11:30"), pair("ad4", "11:00", "11:40"));
    let ad7 = pair("ad7", "10:45", "10:50");
    let unclicked = format!("ad2|{}|None|None ad3|{}|None|None", t("10:05"), t("10:10"));
    assert_eq!(
        window_join("inner"),
        [
            b0.clone(),
            "1 (8, 3, 0, 0) ".into(),
            format!("2 (11, 3, 0, 0) {ad4}"),
            format!("3 (8, 3, 6, 0) {ad7}"),
            "4 (3, 0, 5, 0) ".into()
        ]
    );
    assert_eq!(
        window_join("left_outer"),
        [
            b0.clone(),
            "1 (9, 4, 0, 0) ".into(),
            format!("2 (12, 3, 0, 0) {ad4}"),
            format!("3 (9, 3, 6, 0) {unclicked} {ad7}"),
            format!("4 (3, 0, 6, 0) None|{}|None|None", t("11:00")),
        ]
    );
    assert_eq!(
        window_join("full_outer"),
        [
            b0,
            format!("1 (10, 5, 0, 0) None|{}|None|{}", t("11:00"), t("11:01")),
            format!("2 (13, 3, 0, 0) {ad4}"),
            format!("3 (10, 3, 6, 0) {unclicked} {ad7}"),
            format!("4 (3, 0, 7, 0) None|None|ad2|{} None|None|ad3|{}", t("11:05"), t("11:11")),
        ]
    );
}

#[test]
fn a_click_that_arrives_before_its_impression_matches_when_the_impression_comes() {
    let (s, recorder) = session();
    let imps = crate::MemoryStream::new(&s, "impressionAdId STRING, impressionTime TIMESTAMP").unwrap();
    let clks = crate::MemoryStream::new(&s, "clickAdId STRING, clickTime TIMESTAMP").unwrap();
    let i = imps.to_df().unwrap().with_watermark("impressionTime", "10 minutes").unwrap();
    let c = clks.to_df().unwrap().with_watermark("clickTime", "10 minutes").unwrap();
    let q = i.join(c, RANGE, "inner").unwrap().write_stream().format("memory").query_name("early").start().unwrap();
    // Batch 0: clicks only, one at the very instant of its (later-arriving) impression.
    clks.add_json(r#"{"clickAdId": "ad1", "clickTime": "2024-01-01 10:30:00"} {"clickAdId": "ad2", "clickTime": "2024-01-01 10:00:00"}"#)
        .unwrap();
    q.process_all_available().unwrap();
    // Batch 1: the impressions: both clicks were kept, and both match now.
    imps.add_json(r#"{"impressionAdId": "ad1", "impressionTime": "2024-01-01 10:00:00"} {"impressionAdId": "ad2", "impressionTime": "2024-01-01 10:00:00"}"#)
        .unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let rows: Vec<usize> =
        recorder.batches("early").iter().map(|b| b.batches.iter().map(|r| r.num_rows()).sum()).collect();
    assert_eq!(rows[0], 0, "nothing to match yet");
    assert_eq!(rows[1], 2, "the lower bound includes its end: ad2's click at the impression's instant matches");
}

#[test]
fn output_modes_follow_sparks_rules_for_joins_of_two_streams() {
    // Spark 4.3: an inner join runs in append and update mode, an outer one in append only;
    // with an aggregation after it, complete mode is refused too.
    let (s, _) = session();
    let root = tempfile::tempdir().unwrap();
    let start = |how: &str, aggregate: bool, mode: &str| {
        let (i, c) = sides(&s, root.path(), (true, true));
        let mut df = i.join(c, RANGE, how).unwrap();
        if aggregate {
            df = df.group_by(["window(impressionTime, '30 minutes')"]).unwrap().count().unwrap();
        }
        match df.write_stream().format("noop").output_mode(mode).start() {
            Ok(q) => {
                q.stop().unwrap();
                "runs".to_string()
            }
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(start("inner", false, "update"), "runs");
    assert_eq!(start("inner", true, "update"), "runs");
    assert_eq!(start("inner", true, "append"), "runs");
    assert_eq!(
        start("inner", true, "complete"),
        "Inner join between two streaming DataFrames/Datasets is not supported in Complete output mode, only in Append and Update output modes"
    );
    assert_eq!(start("left_outer", true, "append"), "runs");
    for (aggregate, mode) in [(false, "update"), (true, "update"), (true, "complete")] {
        let expected = format!(
            "LeftOuter join between two streaming DataFrames/Datasets is not supported in {} output mode, only in Append output mode",
            if mode == "update" { "Update" } else { "Complete" }
        );
        assert_eq!(start("left_outer", aggregate, mode), expected, "{aggregate} {mode}");
    }
}

#[test]
fn sql_joins_two_streaming_views_the_same_way() {
    let (s, recorder) = session();
    let root = tempfile::tempdir().unwrap();
    let (i, c) = sides(&s, root.path(), (true, true));
    i.create_or_replace_temp_view("impressions").unwrap();
    c.create_or_replace_temp_view("clicks").unwrap();
    let joined =
        s.sql(&format!("SELECT impressionAdId, clickTime FROM impressions LEFT JOIN clicks ON {RANGE}")).unwrap();
    let q = joined.write_stream().format("memory").query_name("sql").trigger(Trigger::AvailableNow).start().unwrap();
    q.await_termination().unwrap();
    let per_batch: Vec<usize> =
        recorder.batches("sql").iter().map(|b| b.batches.iter().map(|r| r.num_rows()).sum()).collect();
    // As the DataFrame join: 2 matches, 1, 2, then ad3 padded, then the impression without an ad.
    assert_eq!(per_batch, [2, 1, 2, 1, 1]);
    assert_eq!(q.last_progress().unwrap().state_operators[0].operator_name, "symmetricHashJoin");
}

#[test]
fn col_keeps_the_case_of_a_name() {
    let (s, _) = session();
    let root = tempfile::tempdir().unwrap();
    let (i, _) = sides(&s, root.path(), (true, true));
    let by_window = i.group_by([crate::functions::window(crate::functions::col("impressionTime"), "30 minutes")]);
    assert!(by_window.is_ok(), "{:?}", by_window.err());
}
