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
