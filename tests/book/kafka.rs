//! The Kafka source, batch reader and sink against a real Kafka-protocol broker on 127.0.0.1
//! (`scripts/kafka.sh start`; skipped without one unless `BROOKLET_REQUIRE_KAFKA` is set).
//! Every test uses its own topics, so the tests can share one broker.

use std::time::Duration;

use brooklet::functions::{col, from_json};
use brooklet::{Session, Trigger};
use brooklet_book::kafka::{
    Record, add_partitions, broker_for_test, delete_records_before, produce, producer, read_all, recreate_topic,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// A topic name no other test run uses.
pub(super) fn topic(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// `n` records `{"id": i, "kind": ...}` spread over `partitions` by key, one second apart.
pub(super) fn records(n: usize, partitions: i32) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: Some(format!("k{i}")),
            value: format!(r#"{{"id": {i}, "kind": "{}"}}"#, ["click", "view", "buy"][i % 3]),
            partition: Some(i as i32 % partitions),
            timestamp_ms: 1_704_067_200_000 + i as i64 * 1000,
        })
        .collect()
}

/// `read_stream().format("kafka")` of `topic`.
fn kafka_stream(session: &Session, bootstrap: &str, topic: &str) -> brooklet::reader::DataStreamReader {
    session.read_stream().format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
}

/// `read().format("kafka")` of `topic`.
fn kafka_read(session: &Session, bootstrap: &str, topic: &str) -> brooklet::reader::DataFrameReader {
    session.read().format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
}

/// Starts an `AvailableNow` query copying `key` and `value` of topic `from` to topic `to` from
/// the earliest offset, with `source` options on the reader and `sink` options on the writer
/// (`deliveryGuarantee` among them).
pub(super) fn start_copy(
    session: &Session,
    bootstrap: &str,
    (from, to): (&str, &str),
    checkpoint: &std::path::Path,
    source: &[(&str, &str)],
    sink: &[(&str, &str)],
) -> brooklet::StreamingQuery {
    let mut reader = kafka_stream(session, bootstrap, from).option("startingOffsets", "earliest");
    for (key, value) in source {
        reader = reader.option(key, value);
    }
    let mut writer = reader
        .load_source()
        .expect("source")
        .select_expr(&["key", "value"])
        .expect("select")
        .write_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", to)
        .option("checkpointLocation", checkpoint.display())
        .trigger(Trigger::AvailableNow);
    for (key, value) in sink {
        writer = writer.option(key, value);
    }
    writer.start().expect("start")
}

/// Each row of a query's result as its values joined by spaces, nothing truncated.
fn values(session: &Session, sql: &str) -> Vec<String> {
    let table = session.sql(sql).expect("sql").show_string(1000, 0).expect("table");
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>().join(" "))
        .collect()
}

fn rows(session: &Session, sql: &str) -> String {
    session.sql(sql).expect("sql").to_string_table(100).expect("table")
}

#[test]
fn source_reads_sparks_columns_in_rate_limited_batches_and_resumes_from_its_checkpoint() {
    let Some(bootstrap) = broker_for_test("kafka source") else { return };
    let t = topic("events");
    recreate_topic(&bootstrap, &t, 3).expect("topic");
    let p = producer(&bootstrap).expect("producer");
    produce(&p, &t, records(12, 3), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |session: &Session| {
        kafka_stream(session, &bootstrap, &t)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", 6)
            .load_source()
            .expect("source")
            .select_expr(&[
                "CAST(key AS STRING) AS key",
                "CAST(value AS STRING) AS value",
                "partition",
                "\"offset\"",
                "timestamp",
            ])
            .expect("select")
            .write_stream()
            .format("memory")
            .query_name("events")
            .option("checkpointLocation", dir.path().display())
            .trigger(Trigger::AvailableNow)
            .start()
            .expect("start")
    };
    let session = Session::new();
    let query = start(&session);
    query.await_termination().expect("query");
    let progress = query.recent_progress();
    assert_eq!(progress.iter().map(|p| p.num_input_rows).collect::<Vec<_>>(), [6, 6], "two batches of 6");
    assert_eq!(progress[0].sources[0].description, format!("KafkaV2[Subscribe[{t}]]"));
    let end = progress[1].sources[0].end_offset.clone().expect("end offset");
    assert_eq!(end, serde_json::json!({ &t: {"0": 4, "1": 4, "2": 4} }));
    assert_eq!(
        rows(
            &session,
            "SELECT key, get_json_object(value, '$.kind') AS kind, partition, \"offset\", timestamp FROM events ORDER BY partition, \"offset\" LIMIT 2"
        ),
        "\
+---+-----+---------+------+-------------------+
|key| kind|partition|offset|          timestamp|
+---+-----+---------+------+-------------------+
| k0|click|        0|     0|2024-01-01 00:00:00|
| k3|click|        0|     1|2024-01-01 00:00:03|
+---+-----+---------+------+-------------------+
"
    );
    // New records, a new session: the query goes on from its checkpoint, reading each once.
    produce(&p, &t, records(15, 3).into_iter().skip(12), || {}).expect("produce more");
    let session = Session::new();
    let query = start(&session);
    query.await_termination().expect("restarted query");
    assert_eq!(query.last_progress().expect("progress").batch_id, 2);
    assert_eq!(
        rows(&session, "SELECT count(*) AS n, min(\"offset\") AS first FROM events"),
        "\
+---+-----+
|  n|first|
+---+-----+
|  3|    4|
+---+-----+
"
    );
}

#[test]
fn batch_reads_an_offset_range_per_partition_and_refuses_a_latest_start() {
    let Some(bootstrap) = broker_for_test("kafka batch read") else { return };
    let t = topic("range");
    recreate_topic(&bootstrap, &t, 2).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &t, records(10, 2), || {}).expect("produce");
    let session = Session::new();
    let read = |start: &str, end: &str| {
        kafka_read(&session, &bootstrap, &t).option("startingOffsets", start).option("endingOffsets", end).load_source()
    };
    let range =
        read(&format!(r#"{{"{t}":{{"0":1,"1":-2}}}}"#), &format!(r#"{{"{t}":{{"0":3,"1":-1}}}}"#)).expect("read");
    range.create_or_replace_temp_view("range").expect("view");
    assert_eq!(
        rows(
            &session,
            "SELECT partition, count(*) AS n, min(\"offset\") AS first, max(\"offset\") AS last FROM range GROUP BY partition ORDER BY partition"
        ),
        "\
+---------+---+-----+----+
|partition|  n|first|last|
+---------+---+-----+----+
|        0|  2|    1|   2|
|        1|  5|    0|   4|
+---------+---+-----+----+
"
    );
    let e = read("latest", "latest").expect_err("latest start").to_string();
    assert!(e.contains("starting offset can't be latest for batch queries"), "{e}");
}

/// Writes `n` committed records and one aborted transaction of 3 into partition 0.
fn write_with_transactions(bootstrap: &str, topic: &str) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", format!("test-{topic}"))
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(10)).expect("init");
    for (value, commit) in [("a", true), ("aborted", false), ("b", true)] {
        p.begin_transaction().expect("begin");
        let n = if commit { 2 } else { 3 };
        for i in 0..n {
            p.send(BaseRecord::<str, str>::to(topic).payload(&format!("{value}{i}")).partition(0)).expect("send");
        }
        p.flush(Duration::from_secs(10)).expect("flush");
        if commit {
            p.commit_transaction(Duration::from_secs(10)).expect("commit");
        } else {
            p.abort_transaction(Duration::from_secs(10)).expect("abort");
        }
    }
}

#[test]
fn transaction_markers_take_offsets_and_read_committed_hides_aborted_records() {
    let Some(bootstrap) = broker_for_test("kafka transactions") else { return };
    let t = topic("txn");
    recreate_topic(&bootstrap, &t, 1).expect("topic");
    write_with_transactions(&bootstrap, &t);
    let session = Session::new();
    for isolation in ["read_committed", "read_uncommitted"] {
        let df = session
            .read()
            .format("kafka")
            .option("kafka.bootstrap.servers", &bootstrap)
            .option("kafka.isolation.level", isolation)
            .option("subscribe", &t)
            .option("kafkaConsumer.pollTimeoutMs", 5000)
            .load_source()
            .expect("read");
        df.create_or_replace_temp_view("txn").expect("view");
        let expected =
            if isolation == "read_committed" { "a0,a1,b0,b1" } else { "a0,a1,aborted0,aborted1,aborted2,b0,b1" };
        let sql =
            format!("SELECT string_agg(CAST(value AS STRING), ',' ORDER BY \"offset\") = '{expected}' AS ok FROM txn");
        assert!(rows(&session, &sql).contains("true"), "{isolation}: {}", rows(&session, "SELECT * FROM txn"));
    }
}

#[test]
fn from_json_parses_kafka_values_and_permissive_mode_survives_bad_messages() {
    let Some(bootstrap) = broker_for_test("kafka from_json") else { return };
    let t = topic("json");
    recreate_topic(&bootstrap, &t, 1).expect("topic");
    let mut input = records(3, 1);
    input[1].value = "{not json".into();
    input[2].value = r#"{"id": "seven", "kind": "buy"}"#.into();
    produce(&producer(&bootstrap).expect("producer"), &t, input, || {}).expect("produce");
    let session = Session::new();
    let raw = kafka_read(&session, &bootstrap, &t).load_source().expect("read");
    raw.create_or_replace_temp_view("raw").expect("view");
    let parsed = raw
        .select(vec![from_json(col("value"), "id INT, kind STRING, _corrupt_record STRING").alias("e")])
        .expect("from_json");
    parsed.create_or_replace_temp_view("parsed").expect("view");
    // As in Spark, a field of the wrong type makes the record corrupt, and the fields that
    // parse are kept.
    assert_eq!(
        rows(&session, "SELECT e.id AS id, e.kind AS kind, length(e._corrupt_record) AS bad_length FROM parsed"),
        "\
+----+-----+----------+
|  id| kind|bad_length|
+----+-----+----------+
|   0|click|      NULL|
|NULL| NULL|         9|
|NULL|  buy|        30|
+----+-----+----------+
"
    );
    let e = session
        .sql("SELECT from_json(CAST(value AS STRING), 'id INT, kind STRING', map('mode', 'FAILFAST')) AS e FROM raw")
        .and_then(|df| df.collect())
        .expect_err("FAILFAST stops at the bad message")
        .to_string();
    assert!(e.contains("FAILFAST") && e.contains("{not json"), "{e}");
}

#[test]
fn an_unreachable_broker_fails_after_the_configured_timeout_naming_the_servers_and_why() {
    let session = Session::new();
    let started = std::time::Instant::now();
    let e = session
        .read()
        .format("kafka")
        .option("kafka.bootstrap.servers", "127.0.0.1:1")
        .option("kafka.default.api.timeout.ms", 1500)
        .option(
            "kafka.sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"hunter2\";",
        )
        .option("subscribe", "events")
        .load_source()
        .expect_err("no broker")
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(e.contains("127.0.0.1:1") && e.contains("kafka.default.api.timeout.ms"), "{e}");
    assert!(e.contains("librdkafka reported") && e.contains("Connection refused"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// Copies `input` to `output` through a query with `guarantee`, "crashing" after batch 1
/// (its commit removed, as if the process died between the sink and `commits/1`), then
/// restarting; returns what a `read_committed` consumer sees in `output`.
fn copy_with_a_crash(bootstrap: &str, input: &str, output: &str, guarantee: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        let query = start_copy(
            &Session::new(),
            bootstrap,
            (input, output),
            dir.path(),
            &[("maxOffsetsPerTrigger", "5")],
            &[("deliveryGuarantee", guarantee)],
        );
        query.await_termination().expect("query");
        query.recent_progress().len()
    };
    assert_eq!(run(), 2, "{guarantee}: two batches of 5");
    std::fs::remove_file(dir.path().join("commits").join("1")).expect("remove commits/1");
    assert_eq!(run(), 1, "{guarantee}: batch 1 runs again");
    read_all(bootstrap, output, "read_committed").expect("read back").into_iter().map(|r| r.value).collect()
}

#[test]
fn exactly_once_sink_writes_a_rerun_batch_once_where_at_least_once_writes_it_twice() {
    let Some(bootstrap) = broker_for_test("kafka exactly-once sink") else { return };
    let input = topic("copy-in");
    recreate_topic(&bootstrap, &input, 1).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &input, records(10, 1), || {}).expect("produce");
    for (guarantee, expected) in [("exactly-once", 10), ("at-least-once", 15)] {
        let output = topic("copy-out");
        recreate_topic(&bootstrap, &output, 2).expect("topic");
        let values = copy_with_a_crash(&bootstrap, &input, &output, guarantee);
        assert_eq!(values.len(), expected, "{guarantee}: {values:?}");
        let mut distinct = values.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10, "{guarantee}: every input record arrived");
    }
}

#[test]
fn deleted_records_fail_the_query_unless_fail_on_data_loss_is_false() {
    let Some(bootstrap) = broker_for_test("kafka data loss") else { return };
    let t = topic("loss");
    recreate_topic(&bootstrap, &t, 1).expect("topic");
    let p = producer(&bootstrap).expect("producer");
    let all = records(10, 1);
    produce(&p, &t, all[..5].to_vec(), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |fail_on_data_loss: bool| {
        let session = Session::new();
        let query = kafka_stream(&session, &bootstrap, &t)
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", fail_on_data_loss)
            .load_source()
            .expect("source")
            .write_stream()
            .format("memory")
            .query_name("loss")
            .option("checkpointLocation", dir.path().display())
            .trigger(Trigger::AvailableNow)
            .start()
            .expect("start");
        let result = query.await_termination();
        (result, query.recent_progress().iter().map(|p| p.num_input_rows).collect::<Vec<_>>())
    };
    assert_eq!(run(true).1, [5]);
    // Five more records; retention deletes up to offset 8 before the query comes back.
    produce(&p, &t, all[5..].to_vec(), || {}).expect("produce more");
    delete_records_before(&bootstrap, &t, 0, 8).expect("delete records");
    let (result, _) = run(true);
    let e = result.expect_err("data loss").to_string();
    assert!(e.contains("from offset 5: its earliest available offset is 8") && e.contains("failOnDataLoss"), "{e}");
    let (result, rows) = run(false);
    result.expect("goes on");
    assert_eq!(rows, [2], "reads what is left, offsets 8 and 9");
}

#[test]
fn a_topic_that_does_not_exist_is_waited_for_by_a_stream_and_refused_by_a_batch_read() {
    let Some(bootstrap) = broker_for_test("kafka missing topic") else { return };
    let t = topic("missing");
    let session = Session::new();
    let query = kafka_stream(&session, &bootstrap, &t)
        .load_source()
        .expect("source")
        .write_stream()
        .format("memory")
        .query_name("missing")
        .trigger(Trigger::AvailableNow)
        .start()
        .expect("start");
    query.await_termination().expect("no data, no error");
    assert!(query.recent_progress().is_empty(), "no batch ran");
    let e = kafka_read(&session, &bootstrap, &t).load_source().expect_err("no such topic").to_string();
    assert!(e.contains(&format!("KafkaV2[Subscribe[{t}]] matches no partition")), "{e}");
}

/// A broker of this test's own on `port`, started by `scripts/kafka.sh` (so it can be paused
/// without disturbing the other tests), stopped when dropped.
struct OwnBroker {
    port: u16,
}

impl OwnBroker {
    fn script(&self, command: &str) -> String {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh"))
            .arg(command)
            .env("BROOKLET_KAFKA_PORT", self.port.to_string())
            .output()
            .expect("scripts/kafka.sh runs");
        assert!(out.status.success(), "kafka.sh {command}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn start(port: u16) -> (Self, String) {
        let broker = OwnBroker { port };
        let bootstrap = broker.script("start");
        (broker, bootstrap)
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the broker process: connections stay open, nothing
    /// answers, as with a broker that hangs or a network that drops everything.
    fn signal(&self, signal: &str) {
        let pid = self.script("pid");
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.signal("CONT");
        self.script("stop");
    }
}

/// Freezes the broker once batch 0 has committed.
struct FreezeAfterFirstBatch(std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl brooklet::StreamingQueryListener for FreezeAfterFirstBatch {
    fn on_query_progress(&self, _progress: &brooklet::StreamingQueryProgress) {
        if let Some(freeze) = self.0.lock().expect("lock").take() {
            freeze();
        }
    }
}

#[test]
fn a_query_fails_while_its_broker_hangs_and_a_restart_loses_and_duplicates_nothing() {
    if broker_for_test("kafka broker failure").is_none() {
        return; // the same condition as the other tests: the broker software is installed
    }
    let (broker, bootstrap) = OwnBroker::start(39094);
    let broker = std::sync::Arc::new(broker);
    let (input, output) = (topic("hang-in"), topic("hang-out"));
    recreate_topic(&bootstrap, &input, 1).expect("topic");
    recreate_topic(&bootstrap, &output, 1).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &input, records(10, 1), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |session: &Session| {
        let timeouts = [("kafka.default.api.timeout.ms", "3000"), ("kafkaConsumer.pollTimeoutMs", "3000")];
        start_copy(
            session,
            &bootstrap,
            (&input, &output),
            dir.path(),
            &[timeouts[0], timeouts[1], ("maxOffsetsPerTrigger", "5")],
            &[timeouts[0], ("kafka.message.timeout.ms", "3000"), ("deliveryGuarantee", "exactly-once")],
        )
    };
    let session = Session::new();
    let frozen = broker.clone();
    session.streams().add_listener(std::sync::Arc::new(FreezeAfterFirstBatch(std::sync::Mutex::new(Some(Box::new(
        move || frozen.signal("STOP"),
    ))))));
    let started = std::time::Instant::now();
    let e = start(&session).await_termination().expect_err("the broker hangs").to_string();
    assert!(started.elapsed() < Duration::from_secs(60), "failed after {:?}", started.elapsed());
    assert!(e.contains("kafka") && e.contains(&bootstrap), "{e}");
    assert!(dir.path().join("commits/0").exists() && !dir.path().join("commits/1").exists(), "only batch 0 committed");
    broker.signal("CONT");
    let query = start(&Session::new());
    query.await_termination().expect("after the broker is back");
    let values: Vec<String> =
        read_all(&bootstrap, &output, "read_committed").expect("read back").into_iter().map(|r| r.value).collect();
    let mut distinct = values.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((values.len(), distinct.len()), (10, 10), "{values:?}");
}

#[test]
fn a_pattern_subscription_picks_up_new_topics_and_new_partitions_from_their_beginning() {
    let Some(bootstrap) = broker_for_test("kafka new partitions") else { return };
    let prefix = topic("grow");
    let (first, second) = (format!("{prefix}-a"), format!("{prefix}-b"));
    recreate_topic(&bootstrap, &first, 1).expect("topic");
    let p = producer(&bootstrap).expect("producer");
    produce(&p, &first, records(3, 1), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        let session = Session::new();
        let query = session
            .read_stream()
            .format("kafka")
            .option("kafka.bootstrap.servers", &bootstrap)
            .option("subscribePattern", format!("{prefix}-.*"))
            .option("startingOffsets", "earliest")
            .load_source()
            .expect("source")
            .write_stream()
            .format("memory")
            .query_name("grow")
            .option("checkpointLocation", dir.path().display())
            .trigger(Trigger::AvailableNow)
            .start()
            .expect("start");
        query.await_termination().expect("query");
        values(
            &session,
            "SELECT topic, partition, count(*) AS n FROM grow GROUP BY topic, partition ORDER BY topic, partition",
        )
    };
    assert_eq!(run(), [format!("{first} 0 3")]);
    add_partitions(&bootstrap, &first, 2).expect("a second partition");
    recreate_topic(&bootstrap, &second, 1).expect("a second topic");
    let mut more = records(4, 2);
    more.iter_mut().for_each(|r| r.partition = Some(1));
    let p = producer(&bootstrap).expect("a producer that knows the new partition");
    produce(&p, &first, more[..2].to_vec(), || {}).expect("produce to the new partition");
    produce(&p, &second, records(2, 1), || {}).expect("produce to the new topic");
    assert_eq!(run(), [format!("{first} 1 2"), format!("{second} 0 2")]);
}

#[test]
fn headers_written_by_the_sink_are_read_back_with_include_headers() {
    let Some(bootstrap) = broker_for_test("kafka headers") else { return };
    let (input, output) = (topic("headers-in"), topic("headers-out"));
    recreate_topic(&bootstrap, &input, 1).expect("topic");
    recreate_topic(&bootstrap, &output, 1).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &input, records(2, 1), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let session = Session::new();
    kafka_stream(&session, &bootstrap, &input)
        .option("startingOffsets", "earliest")
        .load_source()
        .expect("source")
        .select_expr(&[
            "key",
            "value",
            "make_array(named_struct('key', 'origin', 'value', arrow_cast(concat(topic, '@', \"offset\"), 'Binary'))) AS headers",
        ])
        .expect("select")
        .write_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", &bootstrap)
        .option("topic", &output)
        .option("checkpointLocation", dir.path().display())
        .trigger(Trigger::AvailableNow)
        .start()
        .expect("start")
        .await_termination()
        .expect("copy");
    kafka_read(&session, &bootstrap, &output)
        .option("includeHeaders", true)
        .load_source()
        .expect("read")
        .create_or_replace_temp_view("copied")
        .expect("view");
    let shown = values(
        &session,
        "SELECT CAST(key AS STRING) AS key, headers[1]['key'] AS header, CAST(headers[1]['value'] AS STRING) AS origin \
         FROM copied ORDER BY key",
    );
    assert_eq!(shown, [format!("k0 origin {input}@0"), format!("k1 origin {input}@1")]);
}

#[test]
fn min_offsets_per_trigger_holds_a_batch_back_until_enough_records_or_the_delay() {
    let Some(bootstrap) = broker_for_test("kafka minOffsetsPerTrigger") else { return };
    let t = topic("min");
    recreate_topic(&bootstrap, &t, 1).expect("topic");
    let p = producer(&bootstrap).expect("producer");
    let all = records(7, 1);
    let clock = brooklet::clock::VirtualClock::at("2024-01-01T00:00:00Z");
    let session = Session::builder().clock(clock.clone()).build();
    let query = kafka_stream(&session, &bootstrap, &t)
        .option("startingOffsets", "earliest")
        .option("minOffsetsPerTrigger", 5)
        .option("maxTriggerDelay", "1 hour")
        .load_source()
        .expect("source")
        .write_stream()
        .format("memory")
        .query_name("min")
        .start()
        .expect("start");
    let batches = |query: &brooklet::StreamingQuery| {
        query.process_all_available().expect("process");
        query.recent_progress().iter().map(|p| p.num_input_rows).collect::<Vec<_>>()
    };
    produce(&p, &t, all[..3].to_vec(), || {}).expect("produce");
    assert_eq!(batches(&query), Vec::<u64>::new(), "3 of 5 waiting: no batch");
    produce(&p, &t, all[3..6].to_vec(), || {}).expect("produce");
    assert_eq!(batches(&query), [6], "6 waiting: one batch");
    produce(&p, &t, all[6..].to_vec(), || {}).expect("produce");
    assert_eq!(batches(&query), [6], "1 waiting, within the delay");
    clock.advance(Duration::from_secs(3601));
    assert_eq!(batches(&query), [6, 1], "the delay passed");
    query.stop().expect("stop");
}

#[test]
fn foreach_batch_writes_each_micro_batch_to_kafka_with_the_batch_writer() {
    let Some(bootstrap) = broker_for_test("kafka foreach_batch") else { return };
    let (input, output) = (topic("each-in"), topic("each-out"));
    recreate_topic(&bootstrap, &input, 2).expect("topic");
    recreate_topic(&bootstrap, &output, 1).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &input, records(6, 2), || {}).expect("produce");
    let session = Session::new();
    let (servers, target) = (bootstrap.clone(), output.clone());
    kafka_stream(&session, &bootstrap, &input)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 4)
        .load_source()
        .expect("source")
        .write_stream()
        .foreach_batch(move |df, batch_id| {
            df.select_expr(&["key", &format!("concat('batch {batch_id}: ', CAST(value AS STRING)) AS value")])?
                .write()
                .format("kafka")
                .option("kafka.bootstrap.servers", &servers)
                .option("topic", &target)
                .save_source()
        })
        .trigger(Trigger::AvailableNow)
        .start()
        .expect("start")
        .await_termination()
        .expect("query");
    let values: Vec<String> =
        read_all(&bootstrap, &output, "read_committed").expect("read back").into_iter().map(|r| r.value).collect();
    assert_eq!(values.len(), 6, "{values:?}");
    assert_eq!(values.iter().filter(|v| v.starts_with("batch 0: ")).count(), 4, "{values:?}");
    assert_eq!(values.iter().filter(|v| v.starts_with("batch 1: ")).count(), 2, "{values:?}");
}

#[test]
fn a_stream_can_start_at_a_timestamp_per_partition() {
    let Some(bootstrap) = broker_for_test("kafka startingOffsetsByTimestamp") else { return };
    let t = topic("by-time");
    recreate_topic(&bootstrap, &t, 2).expect("topic");
    // Partition i gets records i, i+2, ...: one second apart overall.
    produce(&producer(&bootstrap).expect("producer"), &t, records(10, 2), || {}).expect("produce");
    let session = Session::new();
    let query = kafka_stream(&session, &bootstrap, &t)
        // Partition 0 from 00:00:04 (record 4, its offset 2), partition 1 from 00:00:07
        // (record 7, offset 3).
        .option("startingOffsetsByTimestamp", format!(r#"{{"{t}": {{"0": 1704067204000, "1": 1704067207000}}}}"#))
        .load_source()
        .expect("source")
        .write_stream()
        .format("memory")
        .query_name("by_time")
        .trigger(Trigger::AvailableNow)
        .start()
        .expect("start");
    query.await_termination().expect("query");
    assert_eq!(
        values(
            &session,
            "SELECT partition, min(\"offset\") AS first, count(*) AS n FROM by_time GROUP BY partition ORDER BY partition"
        ),
        ["0 2 3", "1 3 2"]
    );
}
