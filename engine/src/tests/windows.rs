//! Event-time windows on static data: the window arithmetic, names and SQL.

use crate::Session;
use crate::functions::{col, count, lit, sliding_window, window};

fn events(s: &Session) -> crate::DataFrame {
    s.sql(
        "SELECT CAST(t AS TIMESTAMP) AS timestamp, k FROM (VALUES \
         ('2024-01-01 10:02:00', 'a'), ('2024-01-01 10:04:59', 'b'), ('2024-01-01 10:07:00', 'a'), \
         (NULL, 'a')) AS v(t, k)",
    )
    .unwrap()
}

#[test]
fn tumbling_and_sliding_windows_group_like_spark() {
    let s = Session::new();
    let tumbling = events(&s).group_by([window(col("timestamp"), "5 minutes")]).unwrap().count().unwrap();
    let sorted = tumbling.order_by(vec![col("window").sort(true, true)]).unwrap();
    assert_eq!(
        sorted.to_string_table(20).unwrap(),
        "+--------------------+-----+\n|              window|count|\n+--------------------+-----+\n|{2024-01-01 10:00...|    2|\n|{2024-01-01 10:05...|    1|\n+--------------------+-----+\n",
        "show() truncates long cells to 20 characters, as Spark does"
    );
    let sliding = events(&s)
        .group_by([sliding_window(col("timestamp"), "10 minutes", "5 minutes")])
        .unwrap()
        .agg([count(lit(1)).alias("n")])
        .unwrap()
        .order_by(vec![col("window").sort(true, true)])
        .unwrap();
    let text = crate::display::format_table(&sliding.schema(), &sliding.collect().unwrap(), 20, 0).unwrap();
    assert_eq!(
        text,
        "+------------------------------------------+---+\n\
         |window                                    |n  |\n\
         +------------------------------------------+---+\n\
         |{2024-01-01 09:55:00, 2024-01-01 10:05:00}|2  |\n\
         |{2024-01-01 10:00:00, 2024-01-01 10:10:00}|3  |\n\
         |{2024-01-01 10:05:00, 2024-01-01 10:15:00}|1  |\n\
         +------------------------------------------+---+\n",
        "each row is in both 10-minute windows that hold it; the null time is in none"
    );
}

#[test]
fn window_time_is_the_last_instant_of_the_window() {
    let s = Session::new();
    let df = events(&s)
        .filter("k = 'b'")
        .unwrap()
        .select([window(col("timestamp"), "5 minutes")])
        .unwrap()
        .select([crate::functions::window_time(col("window")).alias("t")])
        .unwrap();
    assert_eq!(
        df.to_string_table(20).unwrap(),
        "+--------------------+\n|                   t|\n+--------------------+\n|2024-01-01 10:04:...|\n+--------------------+\n"
    );
    let full = crate::display::format_table(&df.schema(), &df.collect().unwrap(), 20, 0).unwrap();
    assert!(full.contains("|2024-01-01 10:04:59.999999|"), "{full}");
}

#[test]
fn sql_group_by_window() {
    let s = Session::new();
    events(&s).create_or_replace_temp_view("events").unwrap();
    let df = s
        .sql(
            "SELECT window(timestamp, '5 minutes') AS w, k, count(*) AS n FROM events \
             GROUP BY window(timestamp, '5 minutes'), k",
        )
        .unwrap()
        .select(["w['start'] AS start", "k", "n"])
        .unwrap()
        .order_by(vec![col("start").sort(true, true), col("k").sort(true, true)])
        .unwrap();
    let text = df.to_string_table(20).unwrap();
    assert!(text.contains("|2024-01-01 10:00:00|  a|  1|"), "{text}");
    assert!(text.contains("|2024-01-01 10:05:00|  a|  1|"), "{text}");
}

#[test]
fn the_watermark_marks_the_window_it_groups_by() {
    let s = Session::new();
    let df = events(&s)
        .with_watermark("timestamp", "10 minutes")
        .unwrap()
        .group_by([window(col("timestamp"), "5 minutes"), col("k")])
        .unwrap()
        .count()
        .unwrap();
    let schema = df.schema();
    assert_eq!(schema.field(0).name(), "window");
    assert_eq!(schema.field(0).metadata().get(crate::plan::watermark::DELAY_KEY).map(String::as_str), Some("600000"));
    assert!(schema.field(1).metadata().is_empty());
    assert_eq!(df.count().unwrap(), 3, "a static query ignores the watermark");
}

mod streaming {
    use crate::MemoryStream;
    use crate::functions::{col, window};
    use crate::tests::session;

    fn rows(recorder: &crate::testing::BatchRecorder, name: &str) -> Vec<Vec<String>> {
        recorder
            .batches(name)
            .iter()
            .map(|b| {
                let table = b.to_table().unwrap();
                table.lines().skip(3).filter(|l| l.starts_with('|')).map(str::to_string).collect()
            })
            .collect()
    }

    #[test]
    fn append_emits_each_window_once_when_the_watermark_passes_its_end() {
        let (s, recorder) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP, k STRING").unwrap();
        let counts = events
            .to_df()
            .unwrap()
            .with_watermark("timestamp", "10 minutes")
            .unwrap()
            .group_by([window(col("timestamp"), "5 minutes"), col("k")])
            .unwrap()
            .count()
            .unwrap()
            .select(["window['start'] AS start", "k", "count"])
            .unwrap();
        let q = counts.write_stream().format("memory").query_name("w").output_mode("append").start().unwrap();
        events
            .add_json(
                r#"{"timestamp": "2024-01-01 10:02:00", "k": "a"} {"timestamp": "2024-01-01 10:07:00", "k": "a"}"#,
            )
            .unwrap();
        q.process_all_available().unwrap();
        events.add_json(r#"{"timestamp": "2024-01-01 10:20:00", "k": "b"}"#).unwrap();
        q.process_all_available().unwrap();
        events
            .add_json(
                r#"{"timestamp": "2024-01-01 10:03:00", "k": "a"} {"timestamp": "2024-01-01 10:21:00", "k": "b"}"#,
            )
            .unwrap();
        q.process_all_available().unwrap();
        q.stop().unwrap();
        let progress = q.recent_progress();
        let summary: Vec<(u64, String, u64, u64)> = progress
            .iter()
            .map(|p| {
                let op = &p.state_operators[0];
                (
                    p.num_input_rows,
                    p.event_time["watermark"].clone(),
                    op.num_rows_dropped_by_watermark,
                    op.num_rows_total,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (2, "1970-01-01T00:00:00.000Z".to_string(), 0, 2),
                (0, "2024-01-01T09:57:00.000Z".to_string(), 0, 2), // no-data batch: nothing final yet
                (1, "2024-01-01T09:57:00.000Z".to_string(), 0, 3),
                (0, "2024-01-01T10:10:00.000Z".to_string(), 0, 1), // no-data batch: two windows final
                (2, "2024-01-01T10:10:00.000Z".to_string(), 1, 1), // 10:03 is late: its window ended at 10:05
                (0, "2024-01-01T10:11:00.000Z".to_string(), 0, 1),
            ]
        );
        let out = rows(&recorder, "w");
        assert_eq!(out[3], ["|2024-01-01 10:00:00|  a|    1|", "|2024-01-01 10:05:00|  a|    1|"]);
        assert!(out.iter().enumerate().all(|(i, r)| i == 3 || r.is_empty()), "{out:?}");
        assert_eq!(progress[4].event_time["max"], "2024-01-01T10:21:00.000Z");
        let timeline = progress[4].watermark_timeline.clone().unwrap();
        assert_eq!(timeline.late_rows_watermark, "2024-01-01T10:10:00.000Z", "W_3, from the no-data batch");
        assert_eq!(timeline.eviction_watermark, "2024-01-01T10:10:00.000Z");
        assert_eq!(timeline.next_watermark, "2024-01-01T10:11:00.000Z");
        assert_eq!(timeline.inputs[0].max_event_time.as_deref(), Some("2024-01-01T10:21:00.000Z"));
        assert_eq!(timeline.open_windows, 1);
        assert_eq!(timeline.earliest_open_window_end.as_deref(), Some("2024-01-01T10:25:00.000Z"));
    }

    /// Starts `df` into a memory sink named `name`, then feeds each JSON batch and drains.
    fn run(
        s: &crate::Session,
        events: &MemoryStream,
        df: crate::DataFrame,
        mode: &str,
        batches: &[&str],
    ) -> Vec<crate::StreamingQueryProgress> {
        // The memory sink refuses update mode, as in Spark; the recorder sees every batch anyway.
        let format = if mode == "update" { "console" } else { "memory" };
        let q = df.write_stream().format(format).query_name("out").output_mode(mode).start().unwrap();
        for b in batches {
            events.add_json(b).unwrap();
            q.process_all_available().unwrap();
        }
        q.stop().unwrap();
        let _ = s;
        q.recent_progress()
    }

    fn windowed(events: &MemoryStream, size: &str, slide: &str) -> crate::DataFrame {
        events
            .to_df()
            .unwrap()
            .with_watermark("timestamp", "10 minutes")
            .unwrap()
            .group_by([crate::functions::sliding_window(col("timestamp"), size, slide)])
            .unwrap()
            .count()
            .unwrap()
            .select(["window['start'] AS start", "count"])
            .unwrap()
    }

    const B0: &str = r#"{"timestamp": "2024-01-01 10:02:00"} {"timestamp": "2024-01-01 10:30:00"}"#;
    const B1: &str = r#"{"timestamp": "2024-01-01 10:07:00"} {"timestamp": "2024-01-01 10:31:00"}"#;

    #[test]
    fn update_emits_changed_windows_and_evicts_final_ones_silently() {
        let (s, recorder) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP").unwrap();
        let progress = run(&s, &events, windowed(&events, "5 minutes", "5 minutes"), "update", &[B0, B1]);
        let out = rows(&recorder, "out");
        assert_eq!(out[0], ["|2024-01-01 10:00:00|    1|", "|2024-01-01 10:30:00|    1|"]);
        assert!(out[1].is_empty(), "the no-data batch changes nothing: {out:?}");
        // W = 10:20: 10:07 is late (its window ended 10:10), 10:31 counts.
        assert_eq!(out[2], ["|2024-01-01 10:30:00|    2|"]);
        let ops: Vec<(u64, u64, u64)> = progress
            .iter()
            .map(|p| {
                let o = &p.state_operators[0];
                (o.num_rows_total, o.num_rows_removed, o.num_rows_dropped_by_watermark)
            })
            .collect();
        // Batch 1 is the no-data batch that evicts [10:00, 10:05); batch 3 another (W moved to 10:21).
        assert_eq!(ops, [(2, 0, 0), (1, 1, 0), (1, 0, 1), (1, 0, 0)]);
    }

    #[test]
    fn complete_mode_neither_drops_nor_evicts() {
        let (s, recorder) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP").unwrap();
        let progress = run(&s, &events, windowed(&events, "5 minutes", "5 minutes"), "complete", &[B0, B1]);
        let out = rows(&recorder, "out");
        assert_eq!(out.len(), 2, "no no-data batch in complete mode");
        assert_eq!(
            out[1],
            ["|2024-01-01 10:00:00|    1|", "|2024-01-01 10:05:00|    1|", "|2024-01-01 10:30:00|    2|"]
        );
        assert_eq!(progress[1].state_operators[0].num_rows_dropped_by_watermark, 0);
        assert_eq!(progress[1].event_time["watermark"], "2024-01-01T10:20:00.000Z", "the watermark is still reported");
    }

    #[test]
    fn a_sliding_window_row_can_be_partly_late() {
        let (s, recorder) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP").unwrap();
        let late = r#"{"timestamp": "2024-01-01 10:12:00"}"#;
        let df = windowed(&events, "10 minutes", "5 minutes");
        let progress = run(&s, &events, df, "update", &[r#"{"timestamp": "2024-01-01 10:32:00"}"#, late]);
        // W = 10:22 after the first batch: of 10:12's windows [10:05, 10:15) and [10:10, 10:20)
        // are late; none survives. Nothing was dropped in batch 0 (W_{-1} = 0).
        assert_eq!(progress[2].state_operators[0].num_rows_dropped_by_watermark, 2, "partial rows, not events");
        assert!(rows(&recorder, "out")[2].is_empty());
        let edge = r#"{"timestamp": "2024-01-01 10:18:00"}"#;
        let (s, recorder) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP").unwrap();
        let df = windowed(&events, "10 minutes", "5 minutes");
        let progress = run(&s, &events, df, "update", &[r#"{"timestamp": "2024-01-01 10:32:00"}"#, edge]);
        // 10:18 is in [10:10, 10:20) (late) and [10:15, 10:25) (kept).
        assert_eq!(progress[2].state_operators[0].num_rows_dropped_by_watermark, 1);
        assert_eq!(rows(&recorder, "out")[2], ["|2024-01-01 10:15:00|    1|"]);
    }

    #[test]
    fn a_stateless_query_reports_the_watermark_and_drops_nothing() {
        let (s, recorder) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP").unwrap();
        let df = events.to_df().unwrap().with_watermark("timestamp", "1 minute").unwrap();
        let progress = run(&s, &events, df, "append", &[B0, B1]);
        assert_eq!(progress.len(), 2, "no no-data batches without state");
        assert_eq!(rows(&recorder, "out")[1].len(), 2, "10:07 is behind the watermark but kept");
        assert_eq!(progress[1].event_time["watermark"], "2024-01-01T10:29:00.000Z");
        assert_eq!(progress[1].event_time["min"], "2024-01-01T10:07:00.000Z");
    }

    #[test]
    fn append_without_a_watermark_is_refused_naming_the_reason() {
        let (s, _) = session();
        let events = MemoryStream::new(&s, "timestamp TIMESTAMP").unwrap();
        let df = events.to_df().unwrap().group_by([window(col("timestamp"), "5 minutes")]).unwrap().count().unwrap();
        let err = df.write_stream().format("memory").query_name("x").output_mode("append").start().unwrap_err();
        assert!(err.to_string().contains("without watermark"), "{err}");
        let bad = events.to_df().unwrap().with_watermark("nope", "1 minute").unwrap_err().to_string();
        assert!(bad.contains("cannot resolve column 'nope'"), "{bad}");
        let text = MemoryStream::new(&s, "t STRING").unwrap();
        let bad = text.to_df().unwrap().with_watermark("t", "1 minute").unwrap_err().to_string();
        assert!(
            bad.contains("Event time must be defined on a window or a timestamp, but t is of type string"),
            "{bad}"
        );
    }
}

#[test]
fn a_cast_of_the_watermark_column_is_not_event_time() {
    // Spark: only the column itself (and windows of it) carries the watermark, so grouping by
    // a cast of it is an aggregation without watermark, refused in append mode.
    let (s, _) = crate::tests::session();
    let events = crate::MemoryStream::new(&s, "ts TIMESTAMP, v BIGINT").unwrap();
    let df = events.to_df().unwrap().with_watermark("ts", "10 minutes").unwrap();
    let by_day =
        df.clone().select_expr(&["cast(ts AS DATE) AS day", "v"]).unwrap().group_by(["day"]).unwrap().count().unwrap();
    let e = by_day.write_stream().format("memory").query_name("by_day").output_mode("append").start().unwrap_err();
    assert!(e.to_string().contains("without watermark"), "{e}");
    let grouped = df.group_by(["cast(ts AS DATE)"]).unwrap().count().unwrap();
    let e = grouped.write_stream().format("memory").query_name("grouped").output_mode("append").start().unwrap_err();
    assert!(e.to_string().contains("without watermark"), "{e}");
}
