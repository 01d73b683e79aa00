//! Chapter 13 — Avro column functions: `to_avro` and `from_avro` on the book's events, a round
//! trip checked row by row, complex types, FAILFAST against PERMISSIVE on corrupt bytes, a
//! reader schema for evolution, Avro to Parquet, and JSON, Avro and Parquet compared in bytes
//! and speed.
//!
//! Needs nothing outside the project: `cargo run --example ch13_avro_functions`.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, AsArray, BinaryArray, RecordBatch};
use brooklet::functions::{Expr, from_avro, from_avro_with, struct_of, to_avro, to_avro_with_schema};
use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::avro_events::EVENT_AVRO_SCHEMA;
use brooklet_book::bench::bytes_of_files;
use brooklet_book::events::{EVENT_SCHEMA, EventGenerator};

/// The six event columns as one struct, as `to_avro` takes them.
fn event_struct() -> Expr {
    struct_of(&["event_id", "timestamp", "user_id", "event_type", "value", "session_id"])
}

/// The decoded struct `e` as the six event columns again.
fn columns(df: DataFrame) -> brooklet::Result<DataFrame> {
    df.select_expr(&[
        "e.event_id AS event_id",
        "e.timestamp AS timestamp",
        "e.user_id AS user_id",
        "e.event_type AS event_type",
        "e.value AS value",
        "e.session_id AS session_id",
    ])
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    let n: usize = chapter.param("events", 2000)?;
    let session = &chapter.session;
    let input = chapter.path("events");
    EventGenerator::new(13, "2024-01-01T09:00:00Z", 20).write_json_files(&input, 4, n / 4)?;
    let events = session.read().schema(EVENT_SCHEMA).json(&input)?;
    events.create_or_replace_temp_view("events")?;

    chapter.show("encode", || {
        // ANCHOR: encode
        // Spark's schema for the struct's type: a record `topLevelRecord`, nullable fields as
        // ["type", "null"], the timestamp a `timestamp-micros`.
        let derived = events.clone().select(vec![col("event_id"), to_avro(event_struct()).alias("avro")])?;
        // The events' own schema: `event_type` an enum of five symbols (written as its index).
        let own = events.clone().select(vec![
            col("event_id"),
            to_avro_with_schema(event_struct(), EVENT_AVRO_SCHEMA).alias("avro"),
            to_json(event_struct()).alias("json"),
        ])?;
        derived.create_or_replace_temp_view("derived")?;
        own.create_or_replace_temp_view("own")?;
        let sizes = session.sql(
            "SELECT own.event_id, octet_length(json) AS json_bytes, octet_length(derived.avro) AS derived_bytes, \
                    octet_length(own.avro) AS avro_bytes, substr(encode(own.avro, 'hex'), 1, 24) AS first_bytes \
             FROM own JOIN derived ON own.event_id = derived.event_id ORDER BY own.event_id LIMIT 4",
        )?;
        // ANCHOR_END: encode
        Ok(sizes.show_string(10, 0)?)
    })?;

    chapter.show("round_trip", || {
        // ANCHOR: round_trip
        let back = columns(session.table("own")?.select(vec![from_avro(col("avro"), EVENT_AVRO_SCHEMA).alias("e")])?)?;
        back.create_or_replace_temp_view("back")?;
        // Row by row, both ways: what is in one and not in the other.
        let check = session.sql(
            "SELECT (SELECT count(*) FROM events) AS events, \
                    (SELECT count(*) FROM (SELECT * FROM events EXCEPT ALL SELECT * FROM back)) AS lost, \
                    (SELECT count(*) FROM (SELECT * FROM back EXCEPT ALL SELECT * FROM events)) AS added",
        )?;
        // ANCHOR_END: round_trip
        Ok(check.show_string(10, 0)?)
    })?;

    chapter.show("edge_cases", || {
        // ANCHOR: edge_cases
        let edges = session.sql(
            "SELECT * FROM (VALUES \
               (1, CAST('NaN' AS DOUBLE), CAST(-9223372036854775808 AS BIGINT), 'naïve café 😀', TIMESTAMP '1969-12-31 23:59:59.999999'), \
               (2, CAST('Infinity' AS DOUBLE), CAST(9223372036854775807 AS BIGINT), '', TIMESTAMP '2262-04-11 23:47:16.854775'), \
               (3, CAST('-Infinity' AS DOUBLE), CAST(0 AS BIGINT), NULL, NULL), \
               (4, CAST(-0.0 AS DOUBLE), NULL, 'quote \" and \\\\ backslash', TIMESTAMP '1970-01-01 00:00:00')\
             ) AS t(id, x, big, text, at)",
        )?;
        // The schema to_avro derives for a struct of these columns, written out to read them
        // back: every field of a struct is nullable here (see the box below).
        let schema = r#"{"type": "record", "name": "topLevelRecord", "fields": [
            {"name": "id", "type": ["long", "null"]}, {"name": "x", "type": ["double", "null"]},
            {"name": "big", "type": ["long", "null"]}, {"name": "text", "type": ["string", "null"]},
            {"name": "at", "type": [{"type": "long", "logicalType": "timestamp-micros"}, "null"]}]}"#;
        let back = edges
            .select(vec![to_avro(struct_of(&["id", "x", "big", "text", "at"])).alias("avro")])?
            .select(vec![from_avro(col("avro"), schema).alias("e")])?
            .select_expr(&["e.id AS id", "e.x AS x", "e.big AS big", "e.text AS text", "e.at AS at"])?;
        // ANCHOR_END: edge_cases
        Ok(back.show_string(10, 0)?)
    })?;

    chapter.show("complex", || {
        // ANCHOR: complex
        let schema = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "id", "type": "string"},
            {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
            {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
                "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
            {"name": "attributes", "type": {"type": "map", "values": "string"}},
            {"name": "coupon", "type": ["null", "string"], "default": null},
            {"name": "ref", "type": ["string", "long"]}]}"#;
        let orders = session.sql(
            "SELECT * FROM (VALUES \
               ('o1', 'PAID', [named_struct('sku', 'A-1', 'qty', CAST(2 AS INT)), named_struct('sku', 'B-7', 'qty', CAST(1 AS INT))], \
                map(['channel', 'gift'], ['web', 'yes']), 'WELCOME10', named_struct('member0', 'PO-77', 'member1', CAST(NULL AS BIGINT))), \
               ('o2', 'NEW', [named_struct('sku', 'C-3', 'qty', CAST(5 AS INT))], map(['channel'], ['app']), NULL, \
                named_struct('member0', CAST(NULL AS STRING), 'member1', CAST(4711 AS BIGINT)))\
             ) AS t(id, status, lines, attributes, coupon, ref)",
        )?;
        let decoded = orders
            .select(vec![to_avro_with_schema(struct_of(&["id", "status", "lines", "attributes", "coupon", "ref"]), schema).alias("avro")])?
            .select(vec![from_avro(col("avro"), schema).alias("order")])?;
        // ANCHOR_END: complex
        Ok(format!("{}\n{}", decoded.schema_tree(), decoded.show_string(10, 0)?))
    })?;

    chapter.cell("corrupt", |out| {
        // ANCHOR: corrupt
        // The first six values, three of them broken as values break in practice: cut short,
        // overwritten, emptied.
        let own = session.sql("SELECT event_id, avro FROM own ORDER BY event_id LIMIT 6")?.collect()?;
        let ids = own[0].column(0).as_string::<i32>().clone();
        let mut values: Vec<Vec<u8>> =
            own[0].column(1).as_binary::<i32>().iter().flatten().map(<[u8]>::to_vec).collect();
        values[1].truncate(10);
        values[2] = vec![0xFF; 10];
        values[4].clear();
        let batch = RecordBatch::try_from_iter([
            ("event_id", Arc::new(ids) as ArrayRef),
            ("avro", Arc::new(BinaryArray::from_iter_values(&values)) as ArrayRef),
        ])?;
        DataFrame::from_datafusion(session.clone(), session.datafusion().read_batch(batch)?)
            .create_or_replace_temp_view("corrupt")?;
        out.print("6 values, 3 of them corrupt: evt-000002 cut short, evt-000003 overwritten, evt-000005 empty");
        // ANCHOR_END: corrupt
        Ok(())
    })?;
    let _fails = chapter.show("failfast", || {
        // ANCHOR: failfast
        let strict = session.table("corrupt")?.select(vec![from_avro(col("avro"), EVENT_AVRO_SCHEMA).alias("e")])?;
        // ANCHOR_END: failfast
        Ok(strict.collect().map(|_| "decoded")?)
    });
    chapter.show("permissive", || {
        // ANCHOR: permissive
        let lenient = session.table("corrupt")?.select(vec![
            col("event_id"),
            from_avro_with(col("avro"), EVENT_AVRO_SCHEMA, &[("mode", "PERMISSIVE")]).alias("e"),
        ])?;
        let shown =
            lenient.select_expr(&["event_id", "e.event_type AS event_type", "e.value AS value", "e IS NULL AS bad"])?;
        // ANCHOR_END: permissive
        Ok(shown.show_string(10, 0)?)
    })?;

    chapter.show("evolution", || {
        // ANCHOR: evolution
        // Version 2 of the events' schema: a field added with a default, `value` dropped.
        let v2 = r#"{"type": "record", "name": "Event", "namespace": "brooklet.events", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "event_type", "type": {"type": "enum", "name": "EventType",
              "symbols": ["view", "click", "add_to_cart", "search", "purchase"]}},
            {"name": "country", "type": "string", "default": "unknown"}]}"#;
        // Bytes written with version 1, read as version 2.
        let read = session
            .table("own")?
            .select(vec![from_avro_with(col("avro"), EVENT_AVRO_SCHEMA, &[("avroSchema", v2)]).alias("e")])?;
        let shown = read
            .select_expr(&["e.event_id AS event_id", "e.event_type AS event_type", "e.country AS country"])?
            .order_by(vec![col("event_id").sort(true, true)])?
            .limit(3)?;
        // ANCHOR_END: evolution
        Ok(format!("{}\n{}", shown.schema_tree(), shown.show_string(10, 0)?))
    })?;

    chapter.show("to_parquet", || {
        // ANCHOR: to_parquet
        let decoded =
            columns(session.table("own")?.select(vec![from_avro(col("avro"), EVENT_AVRO_SCHEMA).alias("e")])?)?;
        let dir = chapter.path("analytics");
        decoded.write().format("parquet").save(&dir)?;
        session.read().parquet(&dir)?.create_or_replace_temp_view("analytics")?;
        let summary = session.sql(
            "SELECT event_type, count(*) AS events, round(sum(value), 2) AS total, min(timestamp) AS first \
             FROM analytics GROUP BY event_type ORDER BY events DESC",
        )?;
        // ANCHOR_END: to_parquet
        Ok(summary.show_string(10, 0)?)
    })?;

    chapter.cell("sizes", |out| {
        // ANCHOR: sizes
        let dir = chapter.path("sizes");
        events.write().format("json").save(dir.join("json"))?;
        events.write().format("avro").save(dir.join("avro"))?;
        events.write().format("parquet").save(dir.join("parquet"))?;
        let values = session
            .sql("SELECT CAST(sum(octet_length(json)) AS BIGINT) AS json, CAST(sum(octet_length(avro)) AS BIGINT) AS avro FROM own")?
            .collect()?;
        let column = |i: usize| values[0].column(i).as_any().downcast_ref::<arrow::array::Int64Array>().map(|a| a.value(0));
        let per_event = |bytes: u64| format!("{:>6.1}", bytes as f64 / n as f64);
        out.print(format!("bytes per event, {n} events"));
        out.print(format!("  JSON value      {}", per_event(column(0).unwrap_or(0) as u64)));
        out.print(format!("  Avro value      {}   (+5 in the Confluent wire format)", per_event(column(1).unwrap_or(0) as u64)));
        out.print(format!("  JSON file       {}", per_event(bytes_of_files(&dir.join("json"), "json")?)));
        out.print(format!("  Avro file       {}   (snappy)", per_event(bytes_of_files(&dir.join("avro"), "avro")?)));
        out.print(format!("  Parquet file    {}", per_event(bytes_of_files(&dir.join("parquet"), "parquet")?)));
        // ANCHOR_END: sizes
        Ok(())
    })?;

    let speed_events: usize = chapter.param("speed_events", 200_000)?;
    chapter.cell("speeds", |out| {
        // ANCHOR: speeds
        let many = chapter.path("many");
        EventGenerator::new(1, "2024-01-01T00:00:00Z", 1000).write_json_files(&many, 4, speed_events / 4)?;
        let events = session.read().schema(EVENT_SCHEMA).json(&many)?.cache()?;
        let encoded = events
            .clone()
            .select(vec![
                to_json(event_struct()).alias("json"),
                to_avro_with_schema(event_struct(), EVENT_AVRO_SCHEMA).alias("avro"),
            ])?
            .cache()?;
        let rate = |df: DataFrame| -> anyhow::Result<String> {
            let started = Instant::now();
            let rows: usize = df.collect()?.iter().map(|b| b.num_rows()).sum();
            Ok(format!("{:>10.0} events/s", rows as f64 / started.elapsed().as_secs_f64()))
        };
        out.print(format!("{speed_events} events, one run each"));
        out.print(format!("  to_json    {}", rate(events.clone().select(vec![to_json(event_struct())])?)?));
        out.print(format!(
            "  to_avro    {}",
            rate(events.select(vec![to_avro_with_schema(event_struct(), EVENT_AVRO_SCHEMA)])?)?
        ));
        out.print(format!(
            "  from_json  {}",
            rate(encoded.clone().select(vec![from_json(col("json"), EVENT_SCHEMA)])?)?
        ));
        out.print(format!("  from_avro  {}", rate(encoded.select(vec![from_avro(col("avro"), EVENT_AVRO_SCHEMA)])?)?));
        // ANCHOR_END: speeds
        Ok(())
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
