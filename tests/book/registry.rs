//! The schema registry and the Confluent wire format, checked with confluent-kafka's own
//! Python clients (`tests/clients/confluent_client.py`): its `SchemaRegistryClient` against the
//! project's registry, its `AvroSerializer`'s records read by Brooklet's `from_avro`, and
//! Brooklet's `to_avro` records read by its `AvroDeserializer`, through the test broker.
//! Skipped without a registry (`scripts/registry.sh start`) or broker, unless
//! `BROOKLET_REQUIRE_REGISTRY` / `BROOKLET_REQUIRE_KAFKA` are set.

use std::path::Path;
use std::process::Command;

use brooklet::Session;
use brooklet::functions::{AvroOptions, col, from_avro_registry, lit, named_struct, to_avro_registry};
use brooklet_book::kafka::{broker_for_test, recreate_topic};
use brooklet_book::registry::url_for_test;
use serde_json::Value;

/// Runs the Python client with `args`; the JSON lines it prints.
fn client(args: &[&str]) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python =
        Command::new(root.join("scripts/registry.sh")).arg("python").output().expect("scripts/registry.sh python");
    assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));
    let python = String::from_utf8(python.stdout).unwrap();
    let out = Command::new(python.trim())
        .arg(root.join("tests/clients/confluent_client.py"))
        .args(args)
        .output()
        .expect("the Python client runs");
    assert!(out.status.success(), "confluent_client.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn step<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines.iter().find(|l| l["step"] == name).unwrap_or_else(|| panic!("no step {name} in {lines:?}"))
}

/// A subject or topic name no earlier run used.
fn fresh(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

#[test]
fn confluents_registry_client_registers_checks_and_deletes() {
    let Some(url) = url_for_test("registry client") else { return };
    let subject = fresh("clicks-value");
    let lines = client(&["registry", &url, &subject]);
    assert_eq!(step(&lines, "register")["same_id_again"], true);
    assert_eq!(step(&lines, "compatibility")["level"], "BACKWARD");
    let test = step(&lines, "test");
    assert_eq!((&test["v2"], &test["no_default"]), (&Value::Bool(true), &Value::Bool(false)));
    let refused = step(&lines, "refused");
    assert_eq!((&refused["code"], &refused["status"]), (&Value::from(409), &Value::from(409)));
    let versions = step(&lines, "versions");
    assert_eq!(versions["latest_version"], 2);
    assert_eq!(versions["latest_id"], versions["v2"]);
    assert_eq!(versions["lookup_version"], 1);
    assert_eq!(versions["versions"], serde_json::json!([1, 2]));
    assert_eq!(versions["subject_listed"], true);
    assert_eq!(step(&lines, "by_id")["fields"], serde_json::json!(["id", "kind", "amount", "customer"]));
    assert_eq!(step(&lines, "unknown_id")["code"], 40403);
    let deleted = step(&lines, "delete");
    assert_eq!(deleted["soft"], serde_json::json!([1, 2]));
    assert_eq!(deleted["gone"], true);
    assert_eq!(deleted["permanent"], serde_json::json!([1, 2]));
}

#[test]
fn records_confluents_serializer_wrote_are_read_by_from_avro() {
    let Some(url) = url_for_test("from_avro of AvroSerializer records") else { return };
    let Some(bootstrap) = broker_for_test("from_avro of AvroSerializer records") else { return };
    let topic = fresh("clicks");
    recreate_topic(&bootstrap, &topic, 1).unwrap();
    let produced = client(&["produce", &url, &bootstrap, &topic, "6"]);
    let id = step(&produced, "produced")["schema_id"].as_u64().unwrap();
    let session = Session::builder().build();
    let records = session
        .read()
        .format("kafka")
        .option("kafka.bootstrap.servers", &bootstrap)
        .option("subscribe", &topic)
        .load_source()
        .unwrap();
    let options = AvroOptions::registry(&url).subject(&format!("{topic}-value"));
    let clicks = records.clone().select(vec![from_avro_registry(col("value"), &options).alias("c")]).unwrap();
    clicks.create_or_replace_temp_view("clicks").unwrap();
    let rows = session
        .sql("SELECT c.id AS id, c.kind AS kind, c.amount AS amount, c.customer.name AS name, c.customer.age AS age FROM clicks ORDER BY id")
        .unwrap()
        .to_string_table(100)
        .unwrap();
    assert_eq!(
        rows,
        "\
+---+-----+------+----+---+
| id| kind|amount|name|age|
+---+-----+------+----+---+
| c0| VIEW|  NULL|  u0| 20|
| c1|CLICK|   1.5|  u1| 21|
| c2|  BUY|   3.0|  u2| 22|
| c3| VIEW|   4.5|  u3| 23|
| c4|CLICK|  NULL|  u4| 24|
| c5|  BUY|   7.5|  u0| 25|
+---+-----+------+----+---+
"
    );
    // Each value: magic byte 0, then the id the serializer registered.
    for batch in records.collect().unwrap() {
        let values = arrow::array::AsArray::as_binary::<i32>(batch.column_by_name("value").unwrap());
        for v in values.iter().flatten() {
            assert_eq!((v[0], u64::from(u32::from_be_bytes([v[1], v[2], v[3], v[4]]))), (0, id));
        }
    }
}

#[test]
fn records_to_avro_wrote_are_read_by_confluents_deserializer() {
    let Some(url) = url_for_test("AvroDeserializer of to_avro records") else { return };
    let Some(bootstrap) = broker_for_test("AvroDeserializer of to_avro records") else { return };
    let topic = fresh("orders");
    recreate_topic(&bootstrap, &topic, 1).unwrap();
    let session = Session::builder().build();
    let orders = session
        .sql(
            "SELECT * FROM (VALUES ('o1', CAST(3 AS BIGINT), 'é', TIMESTAMP '2024-01-01 09:00:00'), \
             ('o2', CAST(-1 AS BIGINT), NULL, TIMESTAMP '2024-01-01 09:00:01')) AS t(id, qty, note, at)",
        )
        .unwrap();
    let options = AvroOptions::registry(&url).subject(&format!("{topic}-value"));
    orders
        .select(vec![
            col("id").alias("key"),
            to_avro_registry(
                named_struct(vec![
                    lit("id"),
                    col("id"),
                    lit("qty"),
                    col("qty"),
                    lit("note"),
                    col("note"),
                    lit("at"),
                    col("at"),
                ]),
                &options,
            )
            .alias("value"),
        ])
        .unwrap()
        .write()
        .format("kafka")
        .option("kafka.bootstrap.servers", &bootstrap)
        .option("topic", &topic)
        .save_source()
        .unwrap();
    let lines = client(&["consume", &url, &bootstrap, &topic, "2"]);
    let values: Vec<String> = lines.iter().map(|l| l["value"].to_string()).collect();
    // fastavro gives a timestamp-micros as a datetime; the client prints it through json's
    // default of str. Names, nulls and unicode arrive as written.
    assert_eq!(
        values,
        [
            r#"{"at":"2024-01-01 09:00:00+00:00","id":"o1","note":"é","qty":3}"#,
            r#"{"at":"2024-01-01 09:00:01+00:00","id":"o2","note":null,"qty":-1}"#
        ]
    );
}

/// A registry of this test's own: the `schema-registry` binary on `port`, keeping its schemas
/// in `dir`, so it can be killed and restarted without disturbing the other tests.
struct OwnRegistry {
    child: std::process::Child,
}

impl OwnRegistry {
    fn start(port: u16, dir: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_schema-registry"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("schema-registry starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "schema-registry did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        OwnRegistry { child }
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the registry once batch 0 has committed.
struct KillAfterFirstBatch(std::sync::Mutex<Option<OwnRegistry>>);

impl brooklet::StreamingQueryListener for KillAfterFirstBatch {
    fn on_query_progress(&self, _progress: &brooklet::StreamingQueryProgress) {
        drop(self.0.lock().expect("lock").take());
    }
}

const CLICK_V1: &str = r#"{"type": "record", "name": "Click", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"}, {"name": "kind", "type": "string"}]}"#;
const CLICK_V2: &str = r#"{"type": "record", "name": "Click", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"}, {"name": "kind", "type": "string"},
    {"name": "amount", "type": ["null", "double"], "default": null}]}"#;

/// Record `i` in the Confluent wire format: magic byte 0, schema id `id`, the Avro body
/// (apache-avro's encoder), written with v1 or, if `amount` is given, v2.
fn framed_click(id: u32, i: i64, amount: Option<f64>) -> Vec<u8> {
    use apache_avro::types::Value;
    let mut fields = vec![("id".to_string(), Value::Long(i)), ("kind".to_string(), Value::String(format!("k{i}")))];
    let schema = match amount {
        None => CLICK_V1,
        Some(a) => {
            fields.push(("amount".to_string(), Value::Union(1, Box::new(Value::Double(a)))));
            CLICK_V2
        }
    };
    let schema = apache_avro::Schema::parse_str(schema).expect("schema");
    let mut framed = vec![0];
    framed.extend(id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build().expect("writer");
    framed.extend(writer.write_value_to_vec(Value::Record(fields)).expect("encodes"));
    framed
}

#[test]
fn a_query_fails_when_its_registry_stops_and_a_restart_reads_each_record_once() {
    if url_for_test("registry stopped mid-query").is_none() {
        return; // the same condition as the other tests: the registry is part of this run
    }
    let Some(bootstrap) = broker_for_test("registry stopped mid-query") else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (registry_dir, checkpoint, out) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let registry = OwnRegistry::start(port, registry_dir.path());
    // The producer's registrations go through `localhost`: the engine caches schemas per
    // registry URL, and the query below (on `127.0.0.1`) must fetch them itself, as a query in
    // another process than its producer would.
    let producer_side = brooklet::registry::SchemaRegistry::new(format!("http://localhost:{port}"));
    let topic = fresh("clicks");
    let subject = format!("{topic}-value");
    let v1 = producer_side.register(&subject, &serde_json::from_str(CLICK_V1).unwrap()).expect("v1");
    let v2 = producer_side.register(&subject, &serde_json::from_str(CLICK_V2).unwrap()).expect("v2");
    assert_ne!(v1, v2);
    recreate_topic(&bootstrap, &topic, 1).unwrap();
    let producer = brooklet_book::kafka::producer(&bootstrap).unwrap();
    for i in 0..10 {
        let value = if i < 5 { framed_click(v1, i, None) } else { framed_click(v2, i, Some(i as f64 / 2.0)) };
        let record = rdkafka::producer::BaseRecord::<(), _>::to(&topic).payload(&value);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(10)).expect("flush");

    let url = format!("http://127.0.0.1:{port}");
    let options = AvroOptions::registry(&url).subject(&subject).option("avroSchema", CLICK_V2);
    let start = |session: &Session| {
        session
            .read_stream()
            .format("kafka")
            .option("kafka.bootstrap.servers", &bootstrap)
            .option("subscribe", &topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", "5")
            .load_source()
            .unwrap()
            .select(vec![from_avro_registry(col("value"), &options).alias("c")])
            .unwrap()
            .select_expr(&["c.id AS id", "c.kind AS kind", "c.amount AS amount"])
            .unwrap()
            .write_stream()
            .format("parquet")
            .option("path", out.path().display())
            .option("checkpointLocation", checkpoint.path().display())
            .trigger(brooklet::Trigger::AvailableNow)
            .start()
            .expect("start")
    };
    let session = Session::new();
    session.streams().add_listener(std::sync::Arc::new(KillAfterFirstBatch(std::sync::Mutex::new(Some(registry)))));
    let e = start(&session).await_termination().expect_err("the registry is gone").to_string();
    assert!(e.contains(&url) && e.contains(&format!("schema id {v2}")) && e.contains("batch 1"), "{e}");
    assert!(checkpoint.path().join("commits/0").exists(), "batch 0 committed");
    assert!(!checkpoint.path().join("commits/1").exists(), "batch 1 committed nothing");

    let _registry = OwnRegistry::start(port, registry_dir.path());
    start(&Session::new()).await_termination().expect("with the registry back");
    let session = Session::new();
    session.read().format("parquet").load(out.path()).unwrap().create_or_replace_temp_view("clicks").unwrap();
    let rows = session.sql("SELECT id, kind, amount FROM clicks ORDER BY id").unwrap().to_string_table(100).unwrap();
    assert_eq!(
        rows,
        "\
+---+----+------+
| id|kind|amount|
+---+----+------+
|  0|  k0|  NULL|
|  1|  k1|  NULL|
|  2|  k2|  NULL|
|  3|  k3|  NULL|
|  4|  k4|  NULL|
|  5|  k5|   2.5|
|  6|  k6|   3.0|
|  7|  k7|   3.5|
|  8|  k8|   4.0|
|  9|  k9|   4.5|
+---+----+------+
"
    );
}

#[test]
fn a_query_reads_as_the_latest_version_when_it_starts_whatever_is_registered_later() {
    let Some(url) = url_for_test("reader schema fixed at the start") else { return };
    let registry = brooklet::registry::SchemaRegistry::new(&url);
    let subject = fresh("clicks-value");
    let v1 = registry.register(&subject, &serde_json::from_str(CLICK_V1).unwrap()).expect("v1");
    let session = Session::builder().build();
    let values: arrow::array::ArrayRef =
        std::sync::Arc::new(arrow::array::BinaryArray::from_iter_values((0..3).map(|i| framed_click(v1, i, None))));
    let batch = arrow::array::RecordBatch::try_from_iter([("value", values)]).unwrap();
    let table = brooklet::DataFrame::from_datafusion(session.clone(), session.datafusion().read_batch(batch).unwrap());
    let query = table
        .select(vec![from_avro_registry(col("value"), &AvroOptions::registry(&url).subject(&subject)).alias("c")])
        .unwrap();
    // Version 2 arrives after the query was made: the query still reads as version 1.
    registry.register(&subject, &serde_json::from_str(CLICK_V2).unwrap()).expect("v2");
    let rows = query.to_string_table(10).unwrap();
    assert!(rows.contains("{0, k0}") && !rows.contains("NULL"), "{rows}");
    let fields = query.schema().field(0).data_type().to_string();
    assert!(!fields.contains("amount"), "{fields}");
}
