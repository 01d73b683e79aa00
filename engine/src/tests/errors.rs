//! Bad input gets a clear error naming what and where, never a panic; a failed query stops
//! cleanly and leaves its checkpoint consistent.

use super::session;
use crate::{Session, Trigger};

const SCHEMA: &str = "id STRING, value DOUBLE";

fn err<T: std::fmt::Debug>(r: crate::Result<T>) -> String {
    r.expect_err("an error").to_string()
}

#[test]
fn reader_errors_name_the_path_format_option_and_schema() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let missing = err(s.read_stream().format("json").schema(SCHEMA).load("/no/such/dir"));
    assert_eq!(missing, "path does not exist or is not a directory: /no/such/dir");
    let format = err(s.read_stream().format("xml").schema(SCHEMA).load(dir.path()));
    assert_eq!(format, "option 'format': unknown format 'xml'; file formats are json, csv, text, parquet, avro");
    let option = err(s.read_stream().format("json").schema(SCHEMA).option("maxFilesPerTriger", 1).load(dir.path()));
    assert!(option.starts_with("option 'maxFilesPerTriger': unknown option for format 'json'"), "{option}");
    let value = err(s.read_stream().format("csv").schema(SCHEMA).option("header", "yes").load(dir.path()));
    assert_eq!(value, "option 'header': expected true or false, got 'yes'");
    let schema = err(s.read_stream().format("json").schema("id STRNG").load(dir.path()));
    assert_eq!(schema, "schema 'id STRNG': unknown type 'STRNG'");
    let no_schema = err(s.read_stream().format("json").load(dir.path()));
    assert!(
        no_schema.starts_with("Schema must be specified when creating a streaming source DataFrame"),
        "{no_schema}"
    );
}

#[test]
fn analysis_errors_name_the_column_and_the_action() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let df = s.read_stream().format("json").schema(SCHEMA).load(dir.path()).unwrap();
    let column = err(df.clone().filter("amount > 1"));
    assert!(column.contains("amount"), "{column}");
    let collect = err(df.collect());
    assert!(
        collect.starts_with("Queries with streaming sources must be executed with writeStream.start()"),
        "{collect}"
    );
    let sink = err(df.clone().write_stream().format("kafkaa").start());
    assert!(sink.starts_with("option 'format': unknown sink 'kafkaa'"), "{sink}");
    let mode = err(df.write_stream().output_mode("everything").start());
    assert_eq!(
        mode,
        "option 'outputMode': Unknown output mode everything. Accepted output modes are 'append', 'complete', 'update'"
    );
}

#[test]
fn a_failed_batch_stops_the_query_and_is_rerun_after_the_input_is_fixed() {
    let (s, recorder) = session();
    let (input, checkpoint) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = input.path().join("part-0.json");
    std::fs::write(&file, "{\"id\": \"a\", \"value\": 1}\n{\"id\": \"b\", \"value\": oops}\n").unwrap();
    let start = || {
        s.read_stream()
            .format("json")
            .schema(SCHEMA)
            .option("mode", "FAILFAST")
            .load(input.path())
            .unwrap()
            .write_stream()
            .format("memory")
            .query_name("strict")
            .option("checkpointLocation", checkpoint.path().display())
            .trigger(Trigger::AvailableNow)
            .start()
            .unwrap()
    };
    let query = start();
    let failure = err(query.await_termination());
    assert!(failure.starts_with("query 'strict' failed in batch 0: malformed record in "), "{failure}");
    assert!(failure.contains("part-0.json line 2"), "{failure}");
    assert!(!query.is_active());
    assert!(query.exception().is_some());
    assert!(checkpoint.path().join("offsets/0").exists(), "batch 0 was planned");
    assert!(!checkpoint.path().join("commits/0").exists(), "but not committed");

    std::fs::write(&file, "{\"id\": \"a\", \"value\": 1}\n{\"id\": \"b\", \"value\": 2}\n").unwrap();
    let query = start();
    query.await_termination().unwrap();
    let batches = recorder.batches("strict");
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].batch_id, 0, "the failed batch runs again with the same id");
    assert_eq!(batches[0].sorted().unwrap().num_rows(), 2);
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_the_file_never_a_reset() {
    let (s, _) = session();
    let (input, checkpoint) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir_all(checkpoint.path().join("offsets")).unwrap();
    std::fs::write(checkpoint.path().join("offsets/0"), "v1\n{\"batchWatermarkMs\":").unwrap();
    let started = s
        .read_stream()
        .format("json")
        .schema(SCHEMA)
        .load(input.path())
        .unwrap()
        .write_stream()
        .option("checkpointLocation", checkpoint.path().display())
        .start();
    let message = err(started);
    assert!(
        message.starts_with("checkpoint file ") && message.contains("offsets/0: corrupt batch metadata"),
        "{message}"
    );
}

#[test]
fn a_second_active_query_with_the_same_name_is_refused() {
    let (s, _) = session();
    let stream = crate::MemoryStream::new(&s, SCHEMA).unwrap();
    let first = stream.to_df().unwrap().write_stream().format("memory").query_name("same").start().unwrap();
    let second = err(stream.to_df().unwrap().write_stream().format("memory").query_name("same").start());
    assert!(
        second.starts_with("Cannot start query with name same as a query with that name is already active"),
        "{second}"
    );
    first.stop().unwrap();
}

/// Whatever step refuses the query — defining it or `start()` — its message.
fn refused(query: impl FnOnce() -> crate::Result<crate::StreamingQuery>) -> String {
    err(query())
}

#[test]
fn bad_event_time_definitions_are_refused_with_spark_messages() {
    use crate::functions::{col, session_window, sliding_window, window};
    let (s, _) = session();
    let events = crate::MemoryStream::new(&s, "id STRING, timestamp TIMESTAMP").unwrap();
    let df = || events.to_df();
    let count_by = |w: crate::functions::Expr, delay: &str, mode: &str| -> crate::Result<crate::StreamingQuery> {
        let grouped = df()?.with_watermark("timestamp", delay)?.group_by([w])?;
        grouped.count()?.write_stream().format("console").output_mode(mode).start()
    };
    let not_a_time = refused(|| df()?.with_watermark("id", "1 minute")?.write_stream().start());
    assert_eq!(not_a_time, "Event time must be defined on a window or a timestamp, but id is of type string");
    let negative = refused(|| count_by(window(col("timestamp"), "5 minutes"), "-1 minute", "append"));
    assert_eq!(negative, "delay threshold (-1 minute) should not be negative.");
    let bad_delay = refused(|| count_by(window(col("timestamp"), "5 minutes"), "ten minutes", "append"));
    assert!(bad_delay.contains("with_watermark: delay") && bad_delay.contains("ten minutes"), "{bad_delay}");
    let zero_size = refused(|| count_by(window(col("timestamp"), "0 seconds"), "1 minute", "append"));
    assert!(zero_size.contains("The window duration (0 us) must be greater than 0."), "{zero_size}");
    let negative_size = refused(|| count_by(window(col("timestamp"), "-5 minutes"), "1 minute", "append"));
    assert!(negative_size.contains("must be greater than 0"), "{negative_size}");
    let bad_size = refused(|| count_by(window(col("timestamp"), "5 minuets"), "1 minute", "append"));
    assert!(bad_size.contains("5 minuets"), "{bad_size}");
    let slide = refused(|| count_by(sliding_window(col("timestamp"), "5 minutes", "10 minutes"), "1 minute", "append"));
    assert!(
        slide.contains(
            "The slide duration (600000000 us) must be less than or equal to the windowDuration (300000000 us)."
        ),
        "{slide}"
    );
    let gap = refused(|| count_by(session_window(col("timestamp"), "0 seconds"), "1 minute", "append"));
    assert!(gap.contains("The session window gap duration (0 seconds) must be greater than 0."), "{gap}");
    let update = refused(|| count_by(session_window(col("timestamp"), "5 minutes"), "1 minute", "update"));
    assert_eq!(update, "Update output mode not supported for session window on streaming DataFrames/DataSets");
    assert!(s.streams().active().is_empty(), "no refused query runs");
}

#[test]
fn a_failed_query_keeps_its_temporary_checkpoint_until_the_session_is_dropped() {
    let s = Session::new();
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("part-0.json"), "{\"id\": \"a\", \"value\": oops}\n").unwrap();
    let start = |mode: &str| {
        s.read_stream()
            .format("json")
            .schema(SCHEMA)
            .option("mode", mode)
            .load(input.path())
            .unwrap()
            .write_stream()
            .format("console")
            .trigger(Trigger::AvailableNow)
            .start()
            .unwrap()
    };
    let temporary = |s: &Session| s.inner.temporary_checkpoints.lock().unwrap().clone();

    // A query that stops cleanly deletes its checkpoint as it stops.
    let clean_query = start("DROPMALFORMED");
    clean_query.await_termination().unwrap();
    clean_query.stop().unwrap(); // joins its thread: it holds the session until it ends
    let clean = temporary(&s);
    assert_eq!(clean.len(), 1);
    assert!(!clean[0].exists(), "{}", clean[0].display());

    // A failed query's stays, to be looked at, while the session lives.
    let query = start("FAILFAST");
    err(query.await_termination());
    let failed = temporary(&s)[1].clone();
    assert!(failed.join("offsets").join("0").exists(), "{}", failed.display());
    query.stop().unwrap(); // joins the query's thread, which holds the session too
    drop(s);
    assert!(!failed.exists(), "{}", failed.display());
}
