//! Chapter 14 — Kafka with Avro and a schema registry: register the events' schema, produce
//! Avro events in the Confluent wire format, stream them with `from_avro` reading each
//! record's schema from the registry, evolve the schema while the stream runs, see the
//! registry refuse an incompatible change, and every compatibility mode's decisions.
//!
//! Needs a broker and a registry: `scripts/kafka.sh start && scripts/registry.sh start`, then
//! `cargo run --example ch14_kafka_avro`.

use anyhow::Context;
use brooklet::functions::{AvroOptions, from_avro_registry, struct_of, to_avro_registry};
use brooklet::prelude::*;
use brooklet::registry::SchemaRegistry;
use brooklet_book::Chapter;
use brooklet_book::avro_events::EVENT_AVRO_SCHEMA;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};
use brooklet_book::kafka::{avro_event_records, bootstrap, produce, producer, recreate_topic};

const TOPIC: &str = "ch14-events";
const SUBJECT: &str = "ch14-events-value";

/// Version 2 of the events' schema: version 1 with `country` added, with a default, so
/// BACKWARD allows it.
fn event_v2() -> anyhow::Result<String> {
    let mut schema: serde_json::Value = serde_json::from_str(EVENT_AVRO_SCHEMA)?;
    let fields = schema["fields"].as_array_mut().context("the schema's fields")?;
    fields.push(serde_json::json!({"name": "country", "type": ["null", "string"], "default": null}));
    Ok(schema.to_string())
}

/// Events from 09:00 by 12 users.
fn generator() -> EventGenerator {
    EventGenerator::new(14, "2024-01-01T09:00:00Z", 12)
}

// ANCHOR: stream
/// Purchases from `TOPIC`, each value decoded with the schema its id names, read as the
/// subject's latest version when the query starts; shown whole, as JSON, in the console.
pub fn start_purchases(
    session: &Session,
    bootstrap: &str,
    registry: &str,
    checkpoint: &std::path::Path,
) -> brooklet::Result<StreamingQuery> {
    let avro = AvroOptions::registry(registry).subject(SUBJECT);
    session
        .read_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", TOPIC)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 120)
        .load_source()?
        .select(vec![col("partition"), col("offset"), from_avro_registry(col("value"), &avro).alias("event")])?
        .filter("event.event_type = 'purchase'")?
        .select_expr(&["partition", "\"offset\"", "to_json(event) AS event"])?
        .write_stream()
        .format("console")
        .option("truncate", false)
        .option("checkpointLocation", checkpoint.display())
        .trigger(Trigger::AvailableNow)
        .start()
}
// ANCHOR_END: stream

/// The eight schema changes of the compatibility table: the subject's history (two versions)
/// and the candidate, as lists of fields of a record `Order`.
fn changes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("add a field with a default", r#"{"name": "country", "type": "string", "default": "NO"}"#),
        ("add a field without a default", r#"{"name": "country", "type": "string"}"#),
        ("remove a field (no default)", "-amount"),
        ("rename a field, with an alias", "amount->total"),
        ("widen int to long", "amount:long"),
        ("change int to string", "amount:string"),
        ("add an enum symbol", "kind:+C"),
        ("remove a field's default", "note:nodefault"),
    ]
}

/// The record `Order` with `fields`.
fn order(fields: &[String]) -> serde_json::Value {
    let text = format!(r#"{{"type": "record", "name": "Order", "fields": [{}]}}"#, fields.join(", "));
    serde_json::from_str(&text).expect("a valid schema")
}

/// Version 1, version 2 (version 1 and `note` with a default), and version 2 changed by
/// `change`.
fn history(change: &str) -> [serde_json::Value; 3] {
    let field = |name: &str, ty: &str| format!(r#"{{"name": "{name}", "type": {ty}}}"#);
    let kind = |symbols: &str| format!(r#"{{"type": "enum", "name": "Kind", "symbols": [{symbols}]}}"#);
    let v1 = vec![field("id", r#""string""#), field("kind", &kind(r#""A", "B""#)), field("amount", r#""int""#)];
    let mut v2 = v1.clone();
    v2.push(r#"{"name": "note", "type": "string", "default": ""}"#.to_string());
    let mut next = v2.clone();
    match change {
        "-amount" => next.retain(|f| !f.contains("\"amount\"")),
        "amount->total" => next[2] = r#"{"name": "total", "type": "int", "aliases": ["amount"]}"#.to_string(),
        "amount:long" => next[2] = field("amount", r#""long""#),
        "amount:string" => next[2] = field("amount", r#""string""#),
        "kind:+C" => next[1] = field("kind", &kind(r#""A", "B", "C""#)),
        "note:nodefault" => next[3] = field("note", r#""string""#),
        added => next.push(added.to_string()),
    }
    [order(&v1), order(&v2), order(&next)]
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let bootstrap = bootstrap().context("no Kafka broker answers: run scripts/kafka.sh start")?;
    let url = brooklet_book::registry::url().context("no schema registry answers: run scripts/registry.sh start")?;
    let n: usize = chapter.param("events", 240)?;
    let session = &chapter.session;
    let checkpoint = chapter.path("checkpoint");

    let v1 = chapter.cell("register", |out| {
        // ANCHOR: register
        let registry = SchemaRegistry::new(&url);
        registry.delete_subject(SUBJECT)?; // every run of the chapter starts from nothing
        registry.set_compatibility(SUBJECT, "BACKWARD")?;
        let id = registry.register(SUBJECT, &serde_json::from_str(EVENT_AVRO_SCHEMA)?)?;
        let latest = registry.latest(SUBJECT)?;
        out.print(format!(
            "{SUBJECT}: version {}, schema id {}",
            latest.version,
            if latest.id == id { "as registered" } else { "?" }
        ));
        // ANCHOR_END: register
        Ok(id)
    })?;

    chapter.cell("produce", |out| {
        // ANCHOR: produce
        recreate_topic(&bootstrap, TOPIC, 3)?;
        let records = avro_event_records(generator().events(n), v1)?.collect::<anyhow::Result<Vec<_>>>()?;
        let first = &records[0].value;
        let id = u32::from_be_bytes([first[1], first[2], first[3], first[4]]);
        out.print(format!(
            "first value: magic byte {}, schema id {} (version 1's), then {} bytes of Avro",
            first[0],
            if id == v1 { "= registered" } else { "?" },
            first.len() - 5
        ));
        produce(&producer(&bootstrap)?, TOPIC, records, || {})?;
        out.print(format!("{n} events in {TOPIC} (3 partitions)"));
        // ANCHOR_END: produce
        Ok(())
    })?;

    chapter.cell("start", |_| {
        // ANCHOR: start
        start_purchases(session, &bootstrap, &url, &checkpoint)?.await_termination()?;
        // ANCHOR_END: start
        Ok(())
    })?;

    chapter.cell("evolve", |out| {
        // ANCHOR: evolve
        // A producer upgraded to version 2: Brooklet itself, writing 60 more events with a
        // country, `to_avro` registering the schema under the subject (BACKWARD allows it).
        let later = chapter.path("later");
        let events = generator().events(n + 60).split_off(n);
        let lines: String = events.iter().map(|e| e.to_json() + "\n").collect();
        std::fs::create_dir_all(&later)?;
        std::fs::write(later.join("events.json"), lines)?;
        let columns = ["event_id", "timestamp", "user_id", "event_type", "value", "session_id", "country"];
        let v2 = AvroOptions::registry(&url).subject(SUBJECT).option("avroSchema", &event_v2()?);
        session
            .read()
            .schema(EVENT_SCHEMA)
            .json(&later)?
            .with_column("country", "CASE WHEN user_id < 'user-06' THEN 'NO' ELSE 'SE' END")?
            .select(vec![col("user_id").alias("key"), to_avro_registry(struct_of(&columns), &v2).alias("value")])?
            .write()
            .format("kafka")
            .option("kafka.bootstrap.servers", &bootstrap)
            .option("topic", TOPIC)
            .save_source()?;
        let latest = SchemaRegistry::new(&url).latest(SUBJECT)?;
        out.print(format!("{SUBJECT}: version {} is now the latest", latest.version));
        // ANCHOR_END: evolve
        Ok(())
    })?;

    chapter.cell("restart", |_| {
        // ANCHOR: restart
        start_purchases(session, &bootstrap, &url, &checkpoint)?.await_termination()?;
        // ANCHOR_END: restart
        Ok(())
    })?;

    chapter.show("whole_topic", || {
        // ANCHOR: whole_topic
        let avro = AvroOptions::registry(&url).subject(SUBJECT);
        let all = session
            .read()
            .format("kafka")
            .option("kafka.bootstrap.servers", &bootstrap)
            .option("subscribe", TOPIC)
            .load_source()?
            .select(vec![from_avro_registry(col("value"), &avro).alias("event")])?;
        all.create_or_replace_temp_view("all_events")?;
        let by_country = session.sql(
            "SELECT event.country AS country, count(*) AS events, round(sum(event.value), 2) AS total \
             FROM all_events GROUP BY event.country ORDER BY country NULLS FIRST",
        )?;
        // ANCHOR_END: whole_topic
        Ok(by_country.show_string(10, 0)?)
    })?;

    let _refused = chapter.cell("refused", |_| {
        // ANCHOR: refused
        // Version 3 would make `value` a string: a reader of version 2 cannot read that.
        let v3 = event_v2()?.replace(r#"{"name":"value","type":"double"}"#, r#"{"name":"value","type":"string"}"#);
        let options = AvroOptions::registry(&url).subject(SUBJECT).option("avroSchema", &v3);
        session
            .sql(
                "SELECT 'evt-x' AS event_id, TIMESTAMP '2024-01-01 10:00:00' AS timestamp, 'user-01' AS user_id, \
                  'view' AS event_type, '12.50' AS value, 'user-01-s1' AS session_id, 'NO' AS country",
            )?
            .select(vec![to_avro_registry(
                struct_of(&["event_id", "timestamp", "user_id", "event_type", "value", "session_id", "country"]),
                &options,
            )])?;
        // ANCHOR_END: refused
        Ok(())
    });

    chapter.cell("compatibility", |out| {
        // ANCHOR: compatibility
        let registry = SchemaRegistry::new(&url);
        let modes =
            ["NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"];
        out.print(format!("{:<31}{}", "change to version 2", modes.map(|m| format!("{m:>20}")).join("")));
        for (i, (name, change)) in changes().into_iter().enumerate() {
            let mut row = format!("{name:<31}");
            for mode in modes {
                // A subject with versions 1 and 2, then `mode`, then the changed schema.
                let subject = format!("ch14-compat-{i}-{}", mode.to_ascii_lowercase());
                registry.delete_subject(&subject)?;
                let [v1, v2, next] = history(change);
                registry.set_compatibility(&subject, "NONE")?;
                registry.register(&subject, &v1)?;
                registry.register(&subject, &v2)?;
                registry.set_compatibility(&subject, mode)?;
                let allowed = registry.register(&subject, &next).is_ok();
                row.push_str(&format!("{:>20}", if allowed { "yes" } else { "no" }));
            }
            out.print(row);
        }
        // ANCHOR_END: compatibility
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
