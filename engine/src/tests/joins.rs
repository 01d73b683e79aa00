//! Stream-static joins, as Apache Spark 4.3 runs them (recorded with pyspark on the same
//! input): every join type name and alias, the columns a join on key names gives, null keys
//! that never match, duplicate static keys that multiply rows, a condition join, and the
//! combinations Spark refuses, with its messages (semantics appendix, §8).

use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::tests::session;
use crate::{DataFrame, MemoryStream, Session};

/// The stream: four events, one with a null user and one of a user the table lacks.
fn events(s: &Session) -> MemoryStream {
    let events = MemoryStream::new(s, "user STRING, n BIGINT").unwrap();
    events
        .add_json(r#"{"user": "u1", "n": 1} {"user": "u2", "n": 2} {"user": null, "n": 3} {"user": "u9", "n": 4}"#)
        .unwrap();
    events
}

/// The static table, read from CSV: `u2` twice, and a row with no user.
fn users(s: &Session, dir: &std::path::Path) -> DataFrame {
    std::fs::write(dir.join("users.csv"), "user,name\nu1,Ann\nu2,Bob\nu2,Bea\n,Nobody\n").unwrap();
    s.read().format("csv").option("header", true).schema("user STRING, name STRING").load(dir).unwrap()
}

/// The query's column names and its rows (`|`-separated, `null` for nulls), sorted; or its
/// error at `start()`.
fn run(recorder: &crate::testing::BatchRecorder, df: crate::Result<DataFrame>, name: &str) -> String {
    let started = df.and_then(|df| df.write_stream().format("memory").query_name(name).start());
    let q = match started {
        Ok(q) => q,
        Err(e) => return format!("ERROR {e}"),
    };
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let batches = recorder.batches(name);
    let schema = batches[0].schema.clone();
    let options = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    for batch in batches.iter().flat_map(|b| &b.batches) {
        let columns: Vec<_> =
            batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for r in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c.value(r).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    rows.sort();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    format!("[{}] {}", names.join(", "), rows.join(" "))
}

#[test]
fn a_stream_joins_a_static_table_by_key_names_with_every_spark_join_type() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let inner = "[user, n, name] u1|1|Ann u2|2|Bea u2|2|Bob";
    let left = "[user, n, name] null|3|null u1|1|Ann u2|2|Bea u2|2|Bob u9|4|null";
    let right = "ERROR RightOuter join with a streaming DataFrame/Dataset on the left and a static DataFrame/DataSet on the right not supported";
    let full = "ERROR FullOuter joins with streaming DataFrames/Datasets on the left and a static DataFrame/Dataset on the right is not supported";
    let semi = "[user, n] u1|1 u2|2";
    let anti = "[user, n] null|3 u9|4";
    let cases = [
        ("inner", inner),
        ("left", left),
        ("left_outer", left),
        ("leftouter", left),
        ("right", right),
        ("right_outer", right),
        ("full", full),
        ("outer", full),
        ("full_outer", full),
        ("left_semi", semi),
        ("semi", semi),
        ("left_anti", anti),
        ("anti", anti),
    ];
    for (i, (how, expected)) in cases.iter().enumerate() {
        let df = events(&s).to_df().unwrap().join(users(&s, dir.path()), "user", how);
        assert_eq!(run(&recorder, df, &format!("q{i}")), *expected, "{how}");
    }
    let cross = events(&s).to_df().unwrap().join(users(&s, dir.path()), Vec::<String>::new(), "cross");
    let cross = run(&recorder, cross, "cross");
    assert!(cross.starts_with("[user, n, user, name] null|3|null|Nobody null|3|u1|Ann"), "{cross}");
    assert_eq!(cross.split(' ').count() - 4, 16, "4 events x 4 users: {cross}");
}

#[test]
fn a_static_table_joins_a_stream_only_where_spark_can() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("inner", "[user, name, n] u1|Ann|1 u2|Bea|2 u2|Bob|2"),
        ("right", "[user, name, n] null|null|3 u1|Ann|1 u2|Bea|2 u2|Bob|2 u9|null|4"),
        (
            "left",
            "ERROR LeftOuter join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported",
        ),
        (
            "full",
            "ERROR FullOuter joins with streaming DataFrames/Datasets on the right and a static DataFrame/Dataset on the left is not supported",
        ),
        (
            "left_semi",
            "ERROR LeftSemi join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported",
        ),
        ("left_anti", "ERROR LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported"),
    ];
    for (i, (how, expected)) in cases.iter().enumerate() {
        let df = users(&s, dir.path()).join(events(&s).to_df().unwrap(), "user", how);
        assert_eq!(run(&recorder, df, &format!("q{i}")), *expected, "{how}");
    }
}

#[test]
fn a_condition_join_keeps_both_sides_columns_and_unknown_names_are_refused() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    let e = events(&s).to_df().unwrap().alias("e").unwrap();
    let u = users(&s, dir.path()).alias("u").unwrap();
    assert_eq!(
        run(&recorder, e.join(u, "e.user = u.user", "left"), "cond"),
        "[user, n, user, name] null|3|null|null u1|1|u1|Ann u2|2|u2|Bea u2|2|u2|Bob u9|4|null|null"
    );
    let err = events(&s).to_df().unwrap().join(users(&s, dir.path()), "id", "inner").err().unwrap().to_string();
    assert!(err.contains("USING column `id` cannot be resolved on the left side"), "{err}");
    let err = events(&s).to_df().unwrap().join(users(&s, dir.path()), "user", "sideways").err().unwrap().to_string();
    assert!(err.contains("Unsupported join type 'sideways'"), "{err}");
}

/// Spark 4.3 gives the same two rows: `(u1, 1, Ann)`, then `(u1, 2, Annie)`.
#[test]
fn the_static_side_is_read_again_for_every_batch() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "user,name\nu1,Ann\n").unwrap();
    let users = s.read().format("csv").option("header", true).schema("user STRING, name STRING").load(dir.path());
    let events = MemoryStream::new(&s, "user STRING, n BIGINT").unwrap();
    let joined = events.to_df().unwrap().join(users.unwrap(), "user", "left").unwrap();
    let q = joined.write_stream().format("memory").query_name("enriched").start().unwrap();
    events.add_json(r#"{"user": "u1", "n": 1}"#).unwrap();
    q.process_all_available().unwrap();
    // The file changes while the query runs: the next batch joins with what it holds now.
    std::fs::write(dir.path().join("users.csv"), "user,name\nu1,Annie\n").unwrap();
    events.add_json(r#"{"user": "u1", "n": 2}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let names: Vec<String> = recorder
        .batches("enriched")
        .iter()
        .map(|b| b.to_table().unwrap().lines().nth(3).unwrap().to_string())
        .collect();
    assert_eq!(names, ["|  u1|  1| Ann|", "|  u1|  2|Annie|"]);

    // Cached, the table keeps the rows it had when cached.
    let cached = s.read().format("csv").option("header", true).schema("user STRING, name STRING").load(dir.path());
    let cached = cached.unwrap().cache().unwrap();
    std::fs::write(dir.path().join("users.csv"), "user,name\nu1,Anna\n").unwrap();
    let joined = events.to_df().unwrap().join(cached, "user", "left").unwrap();
    let q = joined.write_stream().format("memory").query_name("cached").start().unwrap();
    events.add_json(r#"{"user": "u1", "n": 3}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let rows: Vec<String> = recorder.batches("cached").iter().map(|b| b.to_table().unwrap()).collect();
    assert!(rows.iter().all(|t| t.contains("Annie") && !t.contains("Anna|")), "{rows:?}");
}

#[test]
fn sql_joins_over_streaming_views_follow_the_same_rules() {
    let (s, recorder) = session();
    let dir = tempfile::tempdir().unwrap();
    events(&s).to_df().unwrap().create_or_replace_temp_view("events").unwrap();
    users(&s, dir.path()).create_or_replace_temp_view("users").unwrap();
    let using = s.sql("SELECT * FROM events LEFT JOIN users USING (user)");
    assert_eq!(run(&recorder, using, "using"), "[user, n, name] null|3|null u1|1|Ann u2|2|Bea u2|2|Bob u9|4|null");
    let refused = s.sql("SELECT * FROM events FULL JOIN users ON events.user = users.user");
    assert!(
        run(&recorder, refused, "full")
            .starts_with("ERROR FullOuter joins with streaming DataFrames/Datasets on the left")
    );
}
