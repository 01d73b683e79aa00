//! Session windows (semantics appendix, §6): merges at exact gap distance, per-row gaps, static and
//! streaming, late rows, bridging, output modes.

use crate::Session;
use crate::functions::{col, session_window};

fn table(df: &crate::DataFrame) -> String {
    let sorted = crate::testing::sort_all_columns(&df.schema(), &df.collect().unwrap()).unwrap();
    crate::display::format_table(&df.schema(), &[sorted], usize::MAX, 0).unwrap()
}

const ROWS: &str = "SELECT CAST(t AS TIMESTAMP) AS timestamp, u, tier FROM (VALUES \
     ('2024-01-01 10:00:00', 'a', 'gold'), ('2024-01-01 10:20:00', 'a', 'gold'), \
     ('2024-01-01 10:50:00', 'a', 'gold'), ('2024-01-01 10:00:00', 'b', 'free'), \
     ('2024-01-01 11:00:00', 'b', 'free'), (NULL, 'b', 'free')) AS v(t, u, tier)";

#[test]
fn static_sessions_merge_rows_up_to_one_gap_apart() {
    let s = Session::new();
    let df = s.sql(ROWS).unwrap().group_by([session_window(col("timestamp"), "30 minutes"), col("u")]).unwrap();
    let df = df.count().unwrap().select(["u", "session_window['start'] AS s", "session_window['end'] AS e", "count"]);
    assert_eq!(
        table(&df.unwrap()),
        "+---+-------------------+-------------------+-----+\n\
         |u  |s                  |e                  |count|\n\
         +---+-------------------+-------------------+-----+\n\
         |a  |2024-01-01 10:00:00|2024-01-01 11:20:00|3    |\n\
         |b  |2024-01-01 10:00:00|2024-01-01 10:30:00|1    |\n\
         |b  |2024-01-01 11:00:00|2024-01-01 11:30:00|1    |\n\
         +---+-------------------+-------------------+-----+\n",
        "10:50 starts exactly at the end of [10:00, 10:50): it joins; the null time is in no session"
    );
}

#[test]
fn a_gap_can_be_computed_per_row_and_sql_can_group_by_sessions() {
    let s = Session::new();
    s.sql(ROWS).unwrap().create_or_replace_temp_view("visits").unwrap();
    let df = s
        .sql(
            "SELECT u, session_window(timestamp, CASE WHEN tier = 'gold' THEN '10 minutes' ELSE '2 hours' END) AS w, \
             count(*) AS n FROM visits \
             GROUP BY u, session_window(timestamp, CASE WHEN tier = 'gold' THEN '10 minutes' ELSE '2 hours' END)",
        )
        .unwrap()
        .select(["u", "w['start'] AS s", "w['end'] AS e", "n"])
        .unwrap();
    assert_eq!(
        table(&df),
        "+---+-------------------+-------------------+---+\n\
         |u  |s                  |e                  |n  |\n\
         +---+-------------------+-------------------+---+\n\
         |a  |2024-01-01 10:00:00|2024-01-01 10:10:00|1  |\n\
         |a  |2024-01-01 10:20:00|2024-01-01 10:30:00|1  |\n\
         |a  |2024-01-01 10:50:00|2024-01-01 11:00:00|1  |\n\
         |b  |2024-01-01 10:00:00|2024-01-01 13:00:00|2  |\n\
         +---+-------------------+-------------------+---+\n"
    );
    let bad = s.sql("SELECT count(*) FROM visits GROUP BY session_window(timestamp, '0 seconds')");
    let err = bad.and_then(|df| df.collect()).unwrap_err().to_string();
    assert!(err.contains("gap duration (0 seconds) must be greater than 0"), "{err}");
}

mod streaming {
    use crate::functions::{col, session_window};
    use crate::tests::session;
    use crate::{MemoryStream, StreamingQuery};

    fn sessions(events: &MemoryStream, mode: &str, checkpoint: &std::path::Path) -> StreamingQuery {
        events
            .to_df()
            .unwrap()
            .with_watermark("timestamp", "20 minutes")
            .unwrap()
            .group_by([col("u"), session_window(col("timestamp"), "5 minutes")])
            .unwrap()
            .count()
            .unwrap()
            .select(["u", "session_window['start'] AS start", "session_window['end'] AS end", "count"])
            .unwrap()
            .write_stream()
            .format("memory")
            .query_name("s")
            .output_mode(mode)
            .option("checkpointLocation", checkpoint.display())
            .start()
            .unwrap()
    }

    fn add(events: &MemoryStream, q: &StreamingQuery, rows: &[(&str, &str)]) {
        let json: String =
            rows.iter().map(|(u, t)| format!(r#"{{"u": "{u}", "timestamp": "2024-01-01 {t}:00"}} "#)).collect();
        events.add_json(&json).unwrap();
        q.process_all_available().unwrap();
    }

    fn rows(recorder: &crate::testing::BatchRecorder) -> Vec<Vec<String>> {
        let tables = recorder.batches("s").iter().map(|b| b.to_table().unwrap()).collect::<Vec<_>>();
        tables.iter().map(|t| t.lines().skip(3).filter(|l| l.starts_with('|')).map(str::to_string).collect()).collect()
    }

    #[test]
    fn append_emits_final_sessions_and_a_late_row_bridges_two_across_a_restart() {
        let (s, recorder) = session();
        let dir = tempfile::tempdir().unwrap();
        let events = MemoryStream::new(&s, "u STRING, timestamp TIMESTAMP").unwrap();
        let q = sessions(&events, "append", dir.path());
        add(&events, &q, &[("a", "10:00"), ("a", "10:03"), ("b", "10:00")]); // W -> 09:43
        add(&events, &q, &[("a", "10:12"), ("a", "10:25")]); // W -> 10:05
        q.stop().unwrap();
        let q = sessions(&events, "append", dir.path());
        // 10:07 is on time (its session ends 10:12 > 10:05) and joins [10:00, 10:08) and
        // [10:12, 10:17); 09:50's session ended at 09:55: late.
        add(&events, &q, &[("a", "10:07"), ("a", "09:50")]);
        add(&events, &q, &[("z", "10:50")]); // W -> 10:30
        q.stop().unwrap();
        let out = rows(&recorder);
        let batches: Vec<u64> = recorder.batches("s").iter().map(|b| b.batch_id).collect();
        assert_eq!(batches, [0, 1, 2, 3, 4, 5, 6], "no-data batches after 0, 2 and 5");
        assert_eq!(out[3], ["|  b|2024-01-01 10:00:00|2024-01-01 10:05:00|    1|"]);
        assert_eq!(
            out[6],
            [
                "|  a|2024-01-01 10:00:00|2024-01-01 10:17:00|    4|",
                "|  a|2024-01-01 10:25:00|2024-01-01 10:30:00|    1|"
            ]
        );
        assert!([0, 1, 2, 4, 5].iter().all(|&i| out[i].is_empty()), "{out:?}");
        let progress = q.recent_progress();
        let late: Vec<u64> = progress.iter().map(|p| p.state_operators[0].num_rows_dropped_by_watermark).collect();
        assert_eq!(late, [1, 0, 0], "batches 4, 5 and 6 of the second run: one input row late");
        let totals: Vec<u64> = progress.iter().map(|p| p.state_operators[0].num_rows_total).collect();
        assert_eq!(totals, [2, 3, 1], "the bridge leaves a's two sessions; z opens one; a's leave");
    }

    #[test]
    fn complete_mode_keeps_sessions_but_drops_late_rows_and_update_is_refused() {
        let (s, recorder) = session();
        let dir = tempfile::tempdir().unwrap();
        let events = MemoryStream::new(&s, "u STRING, timestamp TIMESTAMP").unwrap();
        let q = sessions(&events, "complete", dir.path());
        add(&events, &q, &[("a", "10:00"), ("a", "10:40")]); // W -> 10:20
        add(&events, &q, &[("a", "10:41")]); // late rows judged by W_0 = 0 still
        add(&events, &q, &[("a", "10:04")]); // its session ends 10:09 <= W_1 = 10:20: late
        q.stop().unwrap();
        let out = rows(&recorder);
        assert_eq!(out.len(), 3, "no no-data batches in complete mode");
        assert_eq!(
            out[2],
            [
                "|  a|2024-01-01 10:00:00|2024-01-01 10:05:00|    1|",
                "|  a|2024-01-01 10:40:00|2024-01-01 10:46:00|    2|"
            ],
            "[10:00, 10:05) stays in state though the watermark passed it"
        );
        assert_eq!(q.recent_progress()[2].state_operators[0].num_rows_dropped_by_watermark, 1);

        let other = tempfile::tempdir().unwrap();
        let df = events.to_df().unwrap().group_by([session_window(col("timestamp"), "5 minutes")]).unwrap();
        let writer = df.count().unwrap().write_stream().format("console").output_mode("update");
        let err = writer.option("checkpointLocation", other.path().display()).start().unwrap_err().to_string();
        assert!(err.contains("Update output mode not supported for session window"), "{err}");
    }
}

/// The same four files through Apache Spark 4.3 (local[2]), one file per batch: per batch,
/// (batch id, input rows, watermark, rows total, updated, removed, dropped by watermark).
#[test]
fn session_state_metrics_count_as_sparks_do() {
    let (s, _) = crate::tests::session();
    let events = crate::MemoryStream::new(&s, "user STRING, timestamp TIMESTAMP").unwrap();
    let df = events.to_df().unwrap().with_watermark("timestamp", "10 minutes").unwrap();
    let df = df.group_by([session_window(col("timestamp"), "5 minutes"), col("user")]).unwrap();
    let q = df.count().unwrap().write_stream().format("memory").query_name("s").start().unwrap();
    let batches: [&[(&str, &str)]; 4] = [
        &[("a", "10:00"), ("a", "10:03"), ("b", "10:01"), ("a", "10:20")],
        &[("a", "10:10"), ("b", "10:30"), ("c", "10:31")],
        &[("a", "10:06"), ("b", "11:00")],
        &[("c", "12:00")],
    ];
    for rows in batches {
        let json: Vec<String> =
            rows.iter().map(|(u, t)| format!(r#"{{"user": "{u}", "timestamp": "2024-01-01T{t}:00"}}"#)).collect();
        events.add_json(&json.join("\n")).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    let seen: Vec<_> = q
        .recent_progress()
        .iter()
        .map(|p| {
            let o = &p.state_operators[0];
            assert_eq!(o.operator_name, "sessionWindowStateStoreSaveExec");
            let w = p.event_time["watermark"][11..16].to_string();
            let counts = (o.num_rows_total, o.num_rows_updated, o.num_rows_removed, o.num_rows_dropped_by_watermark);
            (p.batch_id, p.num_input_rows, w, counts)
        })
        .collect();
    let spark = [
        (0, 4, "00:00", (3, 3, 0, 0)),
        (1, 0, "10:10", (1, 0, 2, 0)),
        (2, 3, "10:10", (4, 4, 0, 0)),
        (3, 0, "10:21", (3, 0, 1, 0)),
        (4, 2, "10:21", (4, 2, 0, 1)),
        (5, 0, "10:50", (1, 0, 3, 0)),
        (6, 1, "10:50", (2, 1, 0, 0)),
        (7, 0, "11:50", (1, 0, 1, 0)),
    ];
    let spark: Vec<_> = spark.iter().map(|(b, n, w, c)| (*b, *n, w.to_string(), *c)).collect();
    assert_eq!(seen, spark, "updated: every session of each key written back; removed: only evictions");
}
