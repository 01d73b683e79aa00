//! Query shapes and triggers, end to end on MemoryStream and the rate sources.

use std::sync::Arc;

use super::session;
use crate::{MemoryStream, Trigger};

fn tables(recorder: &crate::testing::BatchRecorder, name: &str) -> Vec<String> {
    recorder.batches(name).iter().map(|b| b.to_table().unwrap()).collect()
}

#[test]
fn update_mode_emits_only_the_groups_a_batch_changed() {
    let (s, recorder) = session();
    let words = MemoryStream::new(&s, "word STRING").unwrap();
    let counts = words.to_df().unwrap().group_by(["word"]).unwrap().count().unwrap();
    let q = counts.write_stream().format("console").query_name("wc").output_mode("update");
    let q = q.format("console").start().unwrap();
    words.add_json(r#"{"word": "a"} {"word": "b"} {"word": "a"}"#).unwrap();
    words.add_json(r#"{"word": "b"}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    assert_eq!(
        tables(&recorder, "wc"),
        [
            "+----+-----+\n|word|count|\n+----+-----+\n|   a|    2|\n|   b|    1|\n+----+-----+\n",
            "+----+-----+\n|word|count|\n+----+-----+\n|   b|    2|\n+----+-----+\n",
        ]
    );
    let progress = q.recent_progress();
    assert_eq!(progress.len(), 2);
    assert_eq!(progress[1].state_operators[0].num_rows_total, 2);
    assert_eq!(progress[1].state_operators[0].num_rows_updated, 1);
    assert_eq!(progress[1].num_input_rows, 1);
}

#[test]
fn sql_over_a_streaming_view_is_a_stream() {
    let (s, recorder) = session();
    let events = MemoryStream::new(&s, "kind STRING, value DOUBLE").unwrap();
    events.to_df().unwrap().create_or_replace_temp_view("events").unwrap();
    let df = s.sql("SELECT kind, sum(value) AS total FROM events WHERE value > 0 GROUP BY kind").unwrap();
    assert!(df.is_streaming());
    let q = df.write_stream().format("memory").query_name("totals").output_mode("complete").start().unwrap();
    events.add_json(r#"{"kind": "x", "value": 1.5} {"kind": "x", "value": -9} {"kind": "y", "value": 2}"#).unwrap();
    events.add_json(r#"{"kind": "x", "value": 1}"#).unwrap();
    q.process_all_available().unwrap();
    let table = s.sql("SELECT kind, total FROM totals ORDER BY kind").unwrap().to_string_table(10).unwrap();
    assert_eq!(table, "+----+-----+\n|kind|total|\n+----+-----+\n|   x|  2.5|\n|   y|  2.0|\n+----+-----+\n");
    q.stop().unwrap();
    assert_eq!(recorder.batches("totals").len(), 2);
}

#[test]
fn a_stream_joins_a_static_table() {
    let (s, recorder) = session();
    let users = s.sql("SELECT * FROM (VALUES ('u1', 'gold'), ('u2', 'free')) AS t(user_id, tier)").unwrap();
    let clicks = MemoryStream::new(&s, "user_id STRING, page STRING").unwrap();
    let joined = clicks.to_df().unwrap().into_datafusion().join(
        users.into_datafusion(),
        datafusion::common::JoinType::Inner,
        &["user_id"],
        &["user_id"],
        None,
    );
    let joined = crate::DataFrame::from_datafusion(s.clone(), joined.unwrap()).select(["page", "tier"]).unwrap();
    let q = joined.write_stream().query_name("enriched").start().unwrap();
    clicks
        .add_json(r#"{"user_id": "u1", "page": "/a"} {"user_id": "u3", "page": "/b"} {"user_id": "u2", "page": "/c"}"#)
        .unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    assert_eq!(
        tables(&recorder, "enriched"),
        ["+----+----+\n|page|tier|\n+----+----+\n|  /a|gold|\n|  /c|free|\n+----+----+\n"]
    );
}

#[test]
fn a_global_aggregate_counts_from_zero() {
    let (s, recorder) = session();
    let events = MemoryStream::new(&s, "n LONG").unwrap();
    let total = events
        .to_df()
        .unwrap()
        .group_by(Vec::<&str>::new())
        .unwrap()
        .agg(["count(*) AS rows", "sum(n) AS total"])
        .unwrap();
    let q = total.write_stream().query_name("total").output_mode("complete").start().unwrap();
    events.add_json(r#"{"n": 1} {"n": 2}"#).unwrap();
    events.add_json(r#"{"n": 4}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    assert_eq!(
        tables(&recorder, "total"),
        [
            "+----+-----+\n|rows|total|\n+----+-----+\n|   2|    3|\n+----+-----+\n",
            "+----+-----+\n|rows|total|\n+----+-----+\n|   3|    7|\n+----+-----+\n",
        ]
    );
}

#[test]
fn rate_micro_batch_is_deterministic_and_available_now_runs_one_batch() {
    let (s, recorder) = session();
    let df = s
        .read_stream()
        .format("rate-micro-batch")
        .option("rowsPerBatch", 3)
        .option("startTimestamp", 1_704_067_200_000i64)
        .load_source()
        .unwrap();
    let q = df.write_stream().query_name("rate").trigger(Trigger::AvailableNow).start().unwrap();
    q.await_termination().unwrap();
    assert_eq!(
        tables(&recorder, "rate"),
        [
            "+-------------------+-----+\n|          timestamp|value|\n+-------------------+-----+\n|2024-01-01 00:00:00|    0|\n|2024-01-01 00:00:00|    1|\n|2024-01-01 00:00:00|    2|\n+-------------------+-----+\n"
        ]
    );
}

#[test]
fn rate_on_a_virtual_clock_gives_rows_per_second_per_trigger() {
    let (s, recorder) = session();
    let df = s.read_stream().format("rate").option("rowsPerSecond", 2).load_source().unwrap();
    let q =
        df.write_stream().query_name("rate").trigger(Trigger::processing_time("1 second").unwrap()).start().unwrap();
    while recorder.batches("rate").len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    q.stop().unwrap();
    let batches = recorder.batches("rate");
    assert_eq!(batches[0].sorted().unwrap().num_rows(), 0, "the first batch is empty, as in Spark");
    let second = crate::display::format_table(&batches[1].schema, &[batches[1].sorted().unwrap()], 10, 0).unwrap();
    assert_eq!(
        second,
        "+-----------------------+-----+\n|timestamp              |value|\n+-----------------------+-----+\n|2024-01-01 00:00:00    |0    |\n|2024-01-01 00:00:00.500|1    |\n+-----------------------+-----+\n"
    );
    let progress = q.recent_progress();
    assert_eq!(progress[0].timestamp, "2024-01-01T00:00:00.000Z");
    assert_eq!(progress[1].timestamp, "2024-01-01T00:00:01.000Z");
    assert_eq!(progress[2].timestamp, "2024-01-01T00:00:02.000Z");
    assert_eq!(progress[2].num_input_rows, 2);
}

#[test]
fn foreach_batch_sees_each_batch_as_a_static_dataframe() {
    let (s, _) = session();
    let stream = MemoryStream::new(&s, "n LONG").unwrap();
    let seen: crate::testing::Shared<(u64, usize)> = Arc::default();
    let sink = seen.clone();
    let q = stream
        .to_df()
        .unwrap()
        .write_stream()
        .foreach_batch(move |df, id| {
            sink.lock().unwrap().push((id, df.count()?));
            Ok(())
        })
        .start()
        .unwrap();
    stream.add_json(r#"{"n": 1} {"n": 2}"#).unwrap();
    stream.add_json(r#"{"n": 3}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    assert_eq!(*seen.lock().unwrap(), [(0, 2), (1, 1)]);
}

#[test]
fn static_reads_honour_the_file_sink_manifest() {
    let (s, _) = session();
    let out = tempfile::tempdir().unwrap();
    let stream = MemoryStream::new(&s, "k STRING, n LONG").unwrap();
    let q = stream
        .to_df()
        .unwrap()
        .write_stream()
        .format("json")
        .partition_by(&["k"])
        .option("path", out.path().display())
        .option("checkpointLocation", out.path().join("_checkpoint").display())
        .start()
        .unwrap();
    stream.add_json(r#"{"k": "a", "n": 1} {"k": "b", "n": 2}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    // A file no batch committed (a crashed attempt) must stay invisible.
    std::fs::write(out.path().join("k=a/part-00099-000.json"), "{\"n\": 100}\n").unwrap();
    let df = s.read().format("json").schema("n LONG").load(out.path()).unwrap();
    let table = df.order_by(vec![crate::functions::col("k").sort(true, false)]).unwrap().to_string_table(10).unwrap();
    assert_eq!(table, "+---+---+\n|  n|  k|\n+---+---+\n|  1|  a|\n|  2|  b|\n+---+---+\n");
}

#[test]
fn explain_shows_the_plan() {
    let (s, _) = session();
    let stream = MemoryStream::new(&s, "n LONG").unwrap();
    let text = stream.to_df().unwrap().filter("n > 1").unwrap().explain_string().unwrap();
    assert!(text.contains("== Logical Plan ==") && text.contains("Filter: memory_stream.n > Int64(1)"), "{text}");
    assert!(text.contains("== Streaming =="), "{text}");
}

#[test]
fn word_count_splits_explodes_and_keeps_empty_strings() {
    let (s, recorder) = session();
    let lines = MemoryStream::new(&s, "value STRING").unwrap();
    let words = lines.to_df().unwrap().select(["split(value, ' ') AS word"]).unwrap().explode("word").unwrap();
    let q = words
        .group_by(["word"])
        .unwrap()
        .count()
        .unwrap()
        .write_stream()
        .query_name("wc")
        .output_mode("complete")
        .start()
        .unwrap();
    lines.add_json(r#"{"value": "to be  or"} {"value": "be"}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    // Two spaces in a row leave an empty word between them, as Spark's split does.
    assert_eq!(
        tables(&recorder, "wc"),
        [
            "+----+-----+\n|word|count|\n+----+-----+\n|    |    1|\n|  be|    2|\n|  or|    1|\n|  to|    1|\n+----+-----+\n"
        ]
    );
}

#[test]
fn await_any_termination_sees_a_query_end() {
    let (s, _) = session();
    let stream = MemoryStream::new(&s, "n LONG").unwrap();
    let q = stream.to_df().unwrap().write_stream().start().unwrap();
    assert_eq!(s.streams().active().len(), 1);
    let stopper = q.clone();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        stopper.stop().unwrap();
    });
    assert!(s.streams().await_any_termination(std::time::Duration::from_secs(10)));
    handle.join().unwrap();
    assert!(s.streams().active().is_empty());
    assert_eq!(q.status().message, "Stopped");
}

#[test]
fn state_is_rebuilt_from_a_snapshot_and_the_deltas_after_it() {
    let (s, recorder) = session();
    let checkpoint = tempfile::tempdir().unwrap();
    let words = MemoryStream::new(&s, "word STRING").unwrap();
    let start = || {
        let counts = words.to_df().unwrap().group_by(["word"]).unwrap().count().unwrap();
        let q = counts.write_stream().format("console").query_name("wc").output_mode("update");
        q.option("checkpointLocation", checkpoint.path().display()).start().unwrap()
    };
    let q = start();
    for i in 0..12 {
        words.add_json(&format!(r#"{{"word": "w{}"}} {{"word": "common"}}"#, i % 3)).unwrap();
    }
    q.process_all_available().unwrap();
    q.stop().unwrap();
    assert!(checkpoint.path().join("state/0/10.snapshot").exists());
    let q = start();
    words.add_json(r#"{"word": "common"} {"word": "w0"}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let last = recorder.batches("wc").pop().unwrap();
    assert_eq!(last.batch_id, 12);
    assert_eq!(
        last.to_table().unwrap(),
        "+------+-----+\n|  word|count|\n+------+-----+\n|common|   13|\n|    w0|    5|\n+------+-----+\n"
    );
}

#[test]
fn once_takes_everything_in_one_batch_and_available_now_keeps_the_limit() {
    let (s, recorder) = session();
    let input = tempfile::tempdir().unwrap();
    for i in 0..3 {
        std::fs::write(input.path().join(format!("part-{i}.json")), format!("{{\"n\": {i}}}\n")).unwrap();
    }
    for (name, trigger) in [("once", Trigger::Once), ("available_now", Trigger::AvailableNow)] {
        let df =
            s.read_stream().format("json").schema("n LONG").option("maxFilesPerTrigger", 1).load(input.path()).unwrap();
        df.write_stream().query_name(name).trigger(trigger).start().unwrap().await_termination().unwrap();
    }
    let rows =
        |name: &str| -> Vec<usize> { recorder.batches(name).iter().map(|b| b.sorted().unwrap().num_rows()).collect() };
    assert_eq!(rows("once"), [3]);
    assert_eq!(rows("available_now"), [1, 1, 1]);
}

#[test]
fn partition_columns_read_back_with_inferred_types() {
    let (s, _) = session();
    let out = tempfile::tempdir().unwrap();
    for (year, kind) in [("2023", "a"), ("2024", "b")] {
        let dir = out.path().join(format!("year={year}/kind={kind}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("part-0.json"), "{\"n\": 1}\n").unwrap();
    }
    let df = s.read().format("json").schema("n LONG").load(out.path()).unwrap();
    assert_eq!(
        df.schema_tree(),
        "root\n |-- n: long (nullable = true)\n |-- year: integer (nullable = true)\n |-- kind: string (nullable = true)\n"
    );
    assert_eq!(df.filter("year > 2023").unwrap().count().unwrap(), 1);
}

#[test]
fn every_kind_of_aggregate_folds_batch_by_batch_and_across_a_restart() {
    let (s, _) = session();
    let checkpoint = tempfile::tempdir().unwrap();
    let rows = [
        r#"{"k": "a", "v": 3, "t": "2024-01-01T10:00:05"} {"k": "b", "v": null, "t": "2024-01-01T10:00:01"}"#,
        r#"{"k": "a", "v": 1, "t": "2024-01-01T10:00:01"} {"k": "a", "v": 3, "t": "2024-01-01T10:00:09"}"#,
        r#"{"k": "b", "v": 7, "t": "2024-01-01T10:00:02"} {"k": "a", "v": 5, "t": "2024-01-01T10:00:07"}"#,
    ];
    // Spark's names (collect_list, first, last, approx_count_distinct) and DataFusion's.
    let query = "SELECT k, count(*) AS n, count(v) AS n_v, sum(v) AS total, avg(v) AS mean, min(v) AS lo, \
                 max(v) AS hi, first_value(v ORDER BY t) AS first_v, last(v ORDER BY t) AS last_v, \
                 array_sort(collect_list(v)) AS all_v, count(DISTINCT v) AS distinct_v, \
                 approx_count_distinct(v) AS approx_v \
                 FROM events GROUP BY k";
    let events = MemoryStream::new(&s, "k STRING, v BIGINT, t TIMESTAMP").unwrap();
    events.to_df().unwrap().create_or_replace_temp_view("events").unwrap();
    let start = || {
        let writer = s.sql(query).unwrap().write_stream().format("memory").query_name("out");
        writer.output_mode("complete").option("checkpointLocation", checkpoint.path().display()).start().unwrap()
    };
    let q = start();
    events.add_json(rows[0]).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let q = start(); // state restored from the checkpoint
    for batch in &rows[1..] {
        events.add_json(batch).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    let out = s.table("out").unwrap();
    let streamed = crate::testing::sort_all_columns(&out.schema(), &out.collect().unwrap()).unwrap();

    // The same rows as static data, in one file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.json"), rows.join("\n").replace("} {", "}\n{")).unwrap();
    let static_rows = s.read().format("json").schema("k STRING, v BIGINT, t TIMESTAMP").load(dir.path()).unwrap();
    static_rows.create_or_replace_temp_view("events").unwrap();
    let expected = s.sql(query).unwrap();
    let expected = crate::testing::sort_all_columns(&expected.schema(), &expected.collect().unwrap()).unwrap();
    let show = |b: &arrow::array::RecordBatch| {
        crate::display::format_table(&b.schema(), std::slice::from_ref(b), 10, 0).unwrap()
    };
    assert_eq!(show(&streamed), show(&expected));
    assert!(
        show(&streamed).contains("|a  |4  |4  |12   |3.0 |1  |5  |1      |3     |[1, 3, 3, 5]|3         |3       |"),
        "{}",
        show(&streamed)
    );
}

/// DataFusion's string `count(DISTINCT)` accumulator hands its set over in `state()` (made for
/// a batch query's one call); the state must still hold every group's set after each batch's
/// checkpoint and output, or later batches count from empty (`/home` would show 0 users).
#[test]
fn count_distinct_keeps_every_groups_set_across_batches() {
    let (s, recorder) = session();
    let clicks = MemoryStream::new(&s, "user STRING, page STRING").unwrap();
    clicks
        .add_json(
            r#"{"user": "ana", "page": "/home"} {"user": "bo", "page": "/home"} {"user": "ana", "page": "/docs"}"#,
        )
        .unwrap();
    clicks.add_json(r#"{"user": "cy", "page": "/docs"} {"user": "ana", "page": "/docs"}"#).unwrap();
    clicks.add_json(r#"{"user": "bo", "page": "/pricing"}"#).unwrap();
    let per_page = clicks.to_df().unwrap().group_by(["page"]).unwrap();
    let per_page = per_page.agg(["count(*) AS clicks", "count(DISTINCT user) AS users"]).unwrap();
    let q = per_page.write_stream().format("console").query_name("pages").output_mode("complete").start().unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let last = tables(&recorder, "pages").pop().unwrap();
    assert!(last.contains("|   /docs|     3|    2|"), "{last}");
    assert!(last.contains("|   /home|     2|    2|"), "{last}");
}

#[test]
fn an_idle_query_says_it_is_waiting_from_process_all_available_on_without_flickering() {
    let (s, _) = session();
    let stream = MemoryStream::new(&s, "n LONG").unwrap();
    let q = stream.to_df().unwrap().write_stream().start().unwrap();
    q.process_all_available().unwrap();
    // The query re-polls its source every 10 ms; over 30 polls the status stays the same.
    for _ in 0..100 {
        let status = q.status();
        assert_eq!((status.message.as_str(), status.is_trigger_active), ("Waiting for data to arrive", false));
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    stream.add_json(r#"{"n": 1}"#).unwrap();
    q.process_all_available().unwrap();
    assert_eq!(q.status().message, "Waiting for data to arrive");
    assert_eq!(q.recent_progress().len(), 1);
    q.stop().unwrap();
}

/// Apache Spark 4.3 with rowsPerBatch 3, startTimestamp 1000, advanceMillisPerBatch 500:
/// end offsets {3, 1500}, {6, 2000}, {9, 2500}: each batch's end is where the next starts.
#[test]
fn rate_micro_batch_offsets_end_at_the_next_batch_and_noop_takes_every_mode() {
    let (s, _) = session();
    let df = s
        .read_stream()
        .format("rate-micro-batch")
        .option("rowsPerBatch", 3)
        .option("startTimestamp", 1000)
        .option("advanceMillisPerBatch", 500)
        .load_source()
        .unwrap();
    let q = df.write_stream().format("noop").start().unwrap();
    while q.recent_progress().len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    q.stop().unwrap();
    let progress = q.recent_progress();
    let ends: Vec<String> =
        progress[..3].iter().map(|p| serde_json::to_string(&p.sources[0].end_offset).unwrap()).collect();
    assert_eq!(
        ends,
        [r#"{"offset":3,"timestamp":1500}"#, r#"{"offset":6,"timestamp":2000}"#, r#"{"offset":9,"timestamp":2500}"#]
    );
    assert_eq!(progress[0].sink.description, "NoopTable");
    let events = MemoryStream::new(&s, "k STRING").unwrap();
    for mode in ["update", "complete"] {
        let counts = events.to_df().unwrap().group_by(["k"]).unwrap().count().unwrap();
        let q = counts.write_stream().format("noop").output_mode(mode).start().unwrap();
        events.add_json(r#"{"k": "a"}"#).unwrap();
        q.process_all_available().unwrap();
        q.stop().unwrap();
        assert_eq!(q.last_progress().unwrap().sink.num_output_rows, 1, "{mode}");
    }
}
