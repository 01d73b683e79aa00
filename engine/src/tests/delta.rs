//! Delta Lake tables (feature `delta`, semantics appendix §13): the sink in append and
//! complete mode, exactly once by the `txn` action, partitioning, schema enforcement and
//! `mergeSchema`, reads at a version or a time, static writes with save modes, and the stream
//! source with its rate limit, starting version and change policies. Every table is a real
//! delta-rs table on disk, read back both by Brooklet and by delta-rs itself.

use std::path::Path;

use crate::tests::{lines, session};
use crate::{MemoryStream, Session};

/// Every row of the table at `path` (latest version), sorted, as `a|b|c`.
fn table_rows(s: &Session, path: &Path) -> Vec<String> {
    rows_with(s, path, &[])
}

fn rows_with(s: &Session, path: &Path, options: &[(&str, &str)]) -> Vec<String> {
    let df = s.read().format("delta").options(options.iter().copied()).load(path).unwrap();
    let mut rows = lines(&df.collect().unwrap());
    rows.sort();
    rows
}

/// The commit files of the table at `path`.
fn versions(path: &Path) -> usize {
    std::fs::read_dir(path.join("_delta_log"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json"))
        .count()
}

/// Each `txn` action in the table's log: (appId, version).
fn transactions(path: &Path) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(path.join("_delta_log")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(txn) = v.get("txn") {
                out.push((txn["appId"].as_str().unwrap().to_string(), txn["version"].as_i64().unwrap()));
            }
        }
    }
    out
}

#[test]
fn an_append_stream_commits_each_batch_once_with_its_query_id_and_batch_id() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let (table, checkpoint) = (dir.path().join("events"), dir.path().join("cp"));
    let events = MemoryStream::new(&s, "id BIGINT, name STRING").unwrap();
    let q = events
        .to_df()
        .unwrap()
        .write_stream()
        .format("delta")
        .option("path", table.display())
        .option("checkpointLocation", checkpoint.display())
        .start()
        .unwrap();
    events.add_json("{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2, \"name\": \"b\"}").unwrap();
    q.process_all_available().unwrap();
    events.add_json("{\"id\": 3, \"name\": \"c\"}").unwrap();
    q.process_all_available().unwrap();
    let id = q.id().to_string();
    q.stop().unwrap();
    assert_eq!(table_rows(&s, &table), ["1|a", "2|b", "3|c"]);
    assert_eq!(transactions(&table), [(id.clone(), 0), (id.clone(), 1)]);
    assert_eq!(versions(&table), 2);

    // A batch handed again (a re-run after a crash) finds its txn in the table: no commit.
    let mut sink = crate::connector::delta::sink_for_tests(&table, &id);
    let schema = events.to_df().unwrap().schema();
    let batch = arrow::array::RecordBatch::new_empty(schema.clone());
    sink.add_batch(1, &schema, &[batch]).unwrap();
    assert_eq!(versions(&table), 2, "batch 1 is already in the table");
    assert_eq!(table_rows(&s, &table), ["1|a", "2|b", "3|c"]);

    // delta-rs itself reads the same table.
    let delta = crate::connector::delta::rows_by_delta_rs(&table);
    assert_eq!(delta, 3);
}

#[test]
fn complete_mode_replaces_the_table_in_each_batch_and_time_travel_reads_every_version() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let (table, checkpoint) = (dir.path().join("counts"), dir.path().join("cp"));
    let events = MemoryStream::new(&s, "kind STRING").unwrap();
    let q = events
        .to_df()
        .unwrap()
        .group_by([crate::functions::col("kind")])
        .unwrap()
        .agg(["count(*) AS n"])
        .unwrap()
        .write_stream()
        .format("delta")
        .output_mode("complete")
        .option("path", table.display())
        .option("checkpointLocation", checkpoint.display())
        .start()
        .unwrap();
    for batch in ["{\"kind\": \"click\"}\n{\"kind\": \"view\"}", "{\"kind\": \"click\"}", "{\"kind\": \"buy\"}"] {
        events.add_json(batch).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    assert_eq!(table_rows(&s, &table), ["buy|1", "click|2", "view|1"]);
    assert_eq!(rows_with(&s, &table, &[("versionAsOf", "0")]), ["click|1", "view|1"]);
    assert_eq!(rows_with(&s, &table, &[("versionAsOf", "1")]), ["click|2", "view|1"]);
    let e = s.read().format("delta").option("versionAsOf", "7").load(&table).unwrap_err().to_string();
    assert!(e.contains("version 7"), "{e}");
    let e = s
        .read()
        .format("delta")
        .option("versionAsOf", "0")
        .option("timestampAsOf", "2024-01-01")
        .load(&table)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Cannot specify both version and timestamp"), "{e}");
    // Commit times are the log files' times: now. Before the first commit is refused; a time
    // after the last commit too (Spark-Delta's errors); the time of the last commit reads it.
    let e = s.read().format("delta").option("timestampAsOf", "2001-01-01").load(&table).unwrap_err().to_string();
    assert!(e.contains("before the earliest version"), "{e}");
    let e = s.read().format("delta").option("timestampAsOf", "2999-01-01").load(&table).unwrap_err().to_string();
    assert!(e.contains("after the latest version"), "{e}");
    let last = std::fs::metadata(table.join("_delta_log/00000000000000000002.json")).unwrap().modified().unwrap();
    let last = chrono::DateTime::<chrono::Utc>::from(last).to_rfc3339();
    assert_eq!(rows_with(&s, &table, &[("timestampAsOf", &last)]), ["buy|1", "click|2", "view|1"]);
    let e = events.to_df().unwrap().write_stream().format("delta").output_mode("update").option("path", "x").start();
    assert!(e.unwrap_err().to_string().contains("does not support Update output mode"));
}

#[test]
fn partitioned_tables_keep_each_value_and_type_and_schema_changes_need_merge_schema() {
    let s = Session::new();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t");
    let first = s
        .sql(
            "SELECT * FROM (VALUES (1, 'a', DATE '2024-01-01', TIMESTAMP '2024-01-01 10:30:00'), \
              (2, 'b/c', DATE '2024-01-02', TIMESTAMP '2024-01-02 00:00:00')) AS t(id, k, day, ts)",
        )
        .unwrap();
    first.write().format("delta").partition_by(&["day", "k"]).save(&table).unwrap();
    assert!(table.join("day=2024-01-01").is_dir(), "Hive-style partition directories");
    let df = s.read().format("delta").load(&table).unwrap();
    assert_eq!(crate::ddl::schema_tree(&df.schema()).lines().count(), 5, "{}", crate::ddl::schema_tree(&df.schema()));
    assert_eq!(
        df.schema().fields().iter().map(|f| f.data_type().to_string()).collect::<Vec<_>>(),
        ["Int64", "Utf8", "Date32", "Timestamp(µs)"],
        "the table's column order and types, timestamps zone-less as Brooklet's"
    );
    assert_eq!(table_rows(&s, &table), ["1|a|2024-01-01|2024-01-01T10:30:00", "2|b/c|2024-01-02|2024-01-02T00:00:00"]);

    let wider = s
        .sql("SELECT 3 AS id, 'a' AS k, DATE '2024-01-03' AS day, TIMESTAMP '2024-01-03 00:00:00' AS ts, 9 AS extra")
        .unwrap();
    let e = wider.clone().write().format("delta").mode("append").save(&table).unwrap_err().to_string();
    assert!(e.contains("schema mismatch") && e.contains("extra") && e.contains("mergeSchema"), "{e}");
    assert_eq!(table_rows(&s, &table).len(), 2, "nothing written");
    wider.write().format("delta").mode("append").option("mergeSchema", "true").save(&table).unwrap();
    // delta-rs's merged schema lists the partition columns after the others: select by name.
    let merged = s.read().format("delta").load(&table).unwrap().select(["id", "k", "day", "ts", "extra"]).unwrap();
    let mut rows = lines(&merged.collect().unwrap());
    rows.sort();
    assert_eq!(rows[0], "1|a|2024-01-01|2024-01-01T10:30:00|null", "older files read the new column as null");
    assert_eq!(rows[2], "3|a|2024-01-03|2024-01-03T00:00:00|9");
}

#[test]
fn save_modes_refuse_add_to_replace_or_leave_a_table() {
    let s = Session::new();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t");
    let write = |sql: &str, mode: &str| s.sql(sql).unwrap().write().format("delta").mode(mode).save(&table);
    write("SELECT 1 AS id", "errorifexists").unwrap();
    let e = write("SELECT 2 AS id", "errorifexists").unwrap_err().to_string();
    assert!(e.contains("already existent path"), "{e}");
    write("SELECT 2 AS id", "append").unwrap();
    write("SELECT 3 AS id", "ignore").unwrap();
    assert_eq!(table_rows(&s, &table), ["1", "2"]);
    write("SELECT 4 AS id", "overwrite").unwrap();
    assert_eq!(table_rows(&s, &table), ["4"]);
    assert_eq!(rows_with(&s, &table, &[("versionAsOf", "1")]), ["1", "2"], "older versions stay readable");
    let e = write("SELECT 'x' AS name", "overwrite").unwrap_err().to_string();
    assert!(e.contains("schema mismatch"), "{e}");
    s.sql("SELECT 'x' AS name")
        .unwrap()
        .write()
        .format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .save(&table)
        .unwrap();
    assert_eq!(table_rows(&s, &table), ["x"]);
    let e = s.read().format("delta").load(dir.path().join("nothing")).unwrap_err().to_string();
    assert!(e.contains("is not a Delta table"), "{e}");
}

/// Appends `ids` to the table at `path` as one commit of one file.
fn append(s: &Session, path: &Path, ids: &[i64]) {
    let values: Vec<String> = ids.iter().map(|i| format!("({i})")).collect();
    let sql = format!("SELECT CAST(id AS BIGINT) AS id FROM (VALUES {}) AS t(id)", values.join(", "));
    s.sql(&sql).unwrap().write().format("delta").mode("append").save(path).unwrap();
}

#[test]
fn a_stream_reads_the_snapshot_then_each_new_commit_and_resumes_after_a_restart() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let (table, checkpoint) = (dir.path().join("src"), dir.path().join("cp"));
    append(&s, &table, &[1, 2]);
    append(&s, &table, &[3]);
    append(&s, &table, &[4, 5]);
    let start = || {
        s.read_stream()
            .format("delta")
            .option("maxFilesPerTrigger", 2)
            .load(&table)
            .unwrap()
            .write_stream()
            .format("memory")
            .query_name("out")
            .option("checkpointLocation", checkpoint.display())
            .start()
            .unwrap()
    };
    let q = start();
    q.process_all_available().unwrap();
    let batches: Vec<Vec<String>> = recorder
        .batches("out")
        .iter()
        .map(|b| {
            let mut rows = lines(&b.batches);
            rows.sort();
            rows
        })
        .collect();
    assert_eq!(batches, [vec!["1", "2", "3"], vec!["4", "5"]], "three files, two per batch");
    q.stop().unwrap();
    append(&s, &table, &[6]);
    recorder.clear();
    let q = start();
    q.process_all_available().unwrap();
    let rows: Vec<Vec<String>> = recorder.batches("out").iter().map(|b| lines(&b.batches)).collect();
    assert_eq!(rows, [vec!["6"]], "after the restart: only the new commit");
    q.stop().unwrap();

    // startingVersion: commits from that version, no snapshot.
    let from_two = s.read_stream().format("delta").option("startingVersion", 2).load(&table).unwrap();
    let q = from_two.write_stream().format("memory").query_name("from_two").start().unwrap();
    q.process_all_available().unwrap();
    let mut rows: Vec<String> = recorder.batches("from_two").iter().flat_map(|b| lines(&b.batches)).collect();
    rows.sort();
    assert_eq!(rows, ["4", "5", "6"]);
    q.stop().unwrap();
}

#[test]
fn a_commit_that_removes_data_stops_the_stream_unless_skip_change_commits() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("src");
    append(&s, &table, &[1]);
    let stream = |skip: bool, name: &str| {
        s.read_stream()
            .format("delta")
            .option("startingVersion", 0)
            .option("skipChangeCommits", skip)
            .load(&table)
            .unwrap()
            .write_stream()
            .format("memory")
            .query_name(name)
            .start()
            .unwrap()
    };
    s.sql("SELECT CAST(9 AS BIGINT) AS id").unwrap().write().format("delta").mode("overwrite").save(&table).unwrap();
    append(&s, &table, &[2]);
    let failing = stream(false, "strict");
    let e = failing.process_all_available().unwrap_err().to_string();
    assert!(e.contains("Detected a data update") && e.contains("version 1") && e.contains("skipChangeCommits"), "{e}");
    let skipping = stream(true, "skipping");
    skipping.process_all_available().unwrap();
    let mut rows: Vec<String> = recorder.batches("skipping").iter().flat_map(|b| lines(&b.batches)).collect();
    rows.sort();
    assert_eq!(rows, ["1", "2"], "the overwrite's commit is skipped, 9 with it");
    skipping.stop().unwrap();
    let e = s.read_stream().format("delta").option("maxFilesPerTrigger", 0).load(&table).unwrap_err().to_string();
    assert!(e.contains("maxFilesPerTrigger"), "{e}");
    let e = s.read_stream().format("delta").option("startingTimestamp", "x").load(&table).unwrap_err().to_string();
    assert!(e.contains("startingTimestamp") && e.contains("'x'"), "{e}");
}

#[test]
fn starting_timestamp_starts_at_the_first_commit_at_or_after_it() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("src");
    for (v, ids) in [[1], [2], [3]].iter().enumerate() {
        append(&s, &table, ids);
        // Commit v at 10:0v: the commit's time is its log file's modification time.
        let log = table.join(format!("_delta_log/{v:020}.json"));
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2024-01-01T10:0{v}:00Z")).unwrap();
        let file = std::fs::File::options().write(true).open(&log).unwrap();
        file.set_modified(std::time::SystemTime::from(at)).unwrap();
    }
    let read_from = |at: &str, name: &str| {
        let q = s
            .read_stream()
            .format("delta")
            .option("startingTimestamp", at)
            .load(&table)
            .unwrap()
            .write_stream()
            .format("memory")
            .query_name(name)
            .start()
            .unwrap();
        q.process_all_available().unwrap();
        q.stop().unwrap();
        let mut rows: Vec<String> = recorder.batches(name).iter().flat_map(|b| lines(&b.batches)).collect();
        rows.sort();
        rows
    };
    assert_eq!(read_from("2024-01-01 10:00:30", "between"), ["2", "3"], "from commit 1, the first after 10:00:30");
    assert_eq!(read_from("2024-01-01 10:01:00", "exact"), ["2", "3"], "a commit at the time itself is read");
    assert_eq!(read_from("2023-12-31", "before"), ["1", "2", "3"], "before every commit: from the first");
    assert!(read_from("2024-01-01 11:00:00", "after").is_empty(), "after the last: only commits still to come");
    let e = s
        .read_stream()
        .format("delta")
        .option("startingVersion", 0)
        .option("startingTimestamp", "2024-01-01")
        .load(&table)
        .unwrap_err()
        .to_string();
    assert!(e.contains("either provide 'startingVersion' or 'startingTimestamp'"), "{e}");
}

#[test]
fn update_mode_rows_merge_into_a_table_once_per_batch_and_the_history_shows_each_commit() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("counts");
    s.sql("SELECT 'seed' AS kind, CAST(0 AS BIGINT) AS n WHERE false")
        .unwrap()
        .write()
        .format("delta")
        .save(&table)
        .unwrap();
    let events = MemoryStream::new(&s, "kind STRING").unwrap();
    let target = table.clone();
    let q = events
        .to_df()
        .unwrap()
        .group_by([crate::functions::col("kind")])
        .unwrap()
        .agg(["count(*) AS n"])
        .unwrap()
        .write_stream()
        .output_mode("update")
        .foreach_batch(move |batch, batch_id| {
            let delta = crate::DeltaTable::for_path(batch.session(), &target)?;
            let merge = || {
                delta
                    .merge(&batch, "t.kind = s.kind")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .idempotent("counts", batch_id)
                    .execute()
            };
            assert!(merge()?, "the first MERGE of batch {batch_id} runs");
            assert!(!merge()?, "a second MERGE of batch {batch_id} is skipped");
            Ok(())
        })
        .start()
        .unwrap();
    for batch in ["{\"kind\": \"click\"}\n{\"kind\": \"view\"}", "{\"kind\": \"click\"}"] {
        events.add_json(batch).unwrap();
        q.process_all_available().unwrap();
    }
    q.stop().unwrap();
    assert_eq!(table_rows(&s, &table), ["click|2", "view|1"]);
    let delta = crate::DeltaTable::for_path(&s, &table).unwrap();
    let history = delta.history().unwrap().select(["version", "operation", "txnAppId", "txnVersion"]).unwrap();
    assert_eq!(
        lines(&history.collect().unwrap()),
        ["2|MERGE|counts|1", "1|MERGE|counts|0", "0|WRITE|null|null"],
        "newest first; each batch's MERGE carries its txn"
    );
}
