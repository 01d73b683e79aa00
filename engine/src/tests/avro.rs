//! Avro object container files: written by the file sink and the batch writer, read back by a
//! static read and a stream with the schema from the file's header, and a file that is not
//! Avro named in the error.

use crate::tests::session;
use crate::{Session, Trigger};

fn lines(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    let mut rows = crate::tests::lines(batches);
    rows.sort();
    rows
}

/// Rows of every type Brooklet writes to Avro, with nulls and edge values.
fn sample(s: &Session) -> crate::DataFrame {
    s.sql(
        "SELECT * FROM (VALUES \
           ('a', CAST(1 AS BIGINT), CAST(7 AS INT), 1.5, true, TIMESTAMP '2024-01-01 10:00:00.123456', DATE '2024-01-01', make_array('x', 'y'), named_struct('k', 'v', 'n', CAST(1 AS BIGINT))), \
           ('é ü 😀', CAST(-9223372036854775808 AS BIGINT), CAST(-1 AS INT), CAST('NaN' AS DOUBLE), false, TIMESTAMP '1969-12-31 23:59:59', DATE '1970-01-01', make_array(), named_struct('k', NULL, 'n', CAST(NULL AS BIGINT))), \
           (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)\
         ) AS t(s, l, i, d, b, ts, day, tags, nested)",
    )
    .unwrap()
}

#[test]
fn avro_files_round_trip_every_type() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("static");
    let df = sample(&s);
    let expected = lines(&df.collect().unwrap());
    df.write().format("avro").save(&out).unwrap();
    let back = s.read().format("avro").load(&out).unwrap();
    assert_eq!(lines(&back.collect().unwrap()), expected);
    let fields: Vec<String> =
        back.schema().fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
    // Spark's types: INT stays INT, and `timestamp-micros` is a TIMESTAMP (UTC, no zone).
    assert_eq!(
        fields,
        [
            "s:Utf8",
            "l:Int64",
            "i:Int32",
            "d:Float64",
            "b:Boolean",
            "ts:Timestamp(µs)",
            "day:Date32",
            "tags:List(Utf8)",
            "nested:Struct(\"k\": Utf8, \"n\": Int64)"
        ]
    );
}

#[test]
fn a_stream_writes_and_reads_avro_files() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    sample(&s).write().format("avro").save(&input).unwrap();
    // The schema comes from the files' headers, as for Parquet.
    let stream = s.read_stream().format("avro").load(&input).unwrap();
    let q = stream
        .write_stream()
        .format("avro")
        .option("path", output.display())
        .option("checkpointLocation", dir.path().join("checkpoint").display())
        .trigger(Trigger::AvailableNow)
        .start()
        .unwrap();
    q.await_termination().unwrap();
    let written = s.read().format("avro").load(&output).unwrap();
    assert_eq!(lines(&written.collect().unwrap()), lines(&sample(&s).collect().unwrap()));
    let names: Vec<String> =
        crate::sink::committed_files(&output).unwrap().unwrap().iter().map(|p| p.display().to_string()).collect();
    assert!(names.iter().all(|n| n.ends_with(".avro")), "{names:?}");
}

#[test]
fn a_file_that_is_not_avro_is_named_in_the_error() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.avro"), b"Obj\x01 this is not an avro container").unwrap();
    let e = s.read().format("avro").schema("s STRING").load(dir.path()).and_then(|df| df.collect()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("broken.avro") && text.contains("Avro"), "{text}");
}

#[test]
fn the_compression_option_picks_the_codec_and_refuses_what_it_does_not_know() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let many = s
        .sql("SELECT 'the same words again' AS text, CAST(v AS BIGINT) AS n FROM generate_series(1, 5000) AS t(v)")
        .unwrap();
    let expected = lines(&many.collect().unwrap());
    let mut sizes = Vec::new();
    for codec in ["uncompressed", "snappy", "deflate", "bzip2", "xz", "zstandard"] {
        let out = dir.path().join(codec);
        many.clone().write().format("avro").option("compression", codec).save(&out).unwrap();
        assert_eq!(lines(&s.read().format("avro").load(&out).unwrap().collect().unwrap()), expected, "{codec}");
        let files = crate::sink::committed_files(&out).unwrap().unwrap();
        sizes.push(files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum::<u64>());
    }
    assert!(sizes[1..].iter().all(|&compressed| compressed < sizes[0] / 2), "compressed vs uncompressed: {sizes:?}");
    let e = many.clone().write().format("avro").option("compression", "lzo").save(dir.path().join("x")).unwrap_err();
    assert!(e.to_string().contains("unknown Avro codec 'lzo'"), "{e}");
    let e = many.write().format("parquet").option("compression", "gzip").save(dir.path().join("y")).unwrap_err();
    assert!(e.to_string().contains("option 'compression': the parquet writer has no compression option"), "{e}");
}

/// The writer schema in the header of the one file written under `dir`.
fn header_schema(dir: &std::path::Path) -> serde_json::Value {
    let files = crate::sink::committed_files(dir).unwrap().unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(&files[0]).unwrap());
    let reader = arrow_avro::reader::ReaderBuilder::new().build(file).unwrap();
    let text = reader.avro_header().get(arrow_avro::schema::SCHEMA_METADATA_KEY.as_bytes()).unwrap();
    serde_json::from_slice(text).unwrap()
}

#[test]
fn files_carry_sparks_schema_named_by_record_name_and_record_namespace() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let df = s
        .sql("SELECT * FROM (VALUES ('o1', CAST(2 AS BIGINT), named_struct('city', 'Oslo'), TIMESTAMP '2024-01-01 09:00:00'), ('o2', NULL, NULL, NULL)) AS t(id, qty, ship, at)")
        .unwrap();
    df.clone().write().format("avro").save(dir.path().join("default")).unwrap();
    let default = header_schema(&dir.path().join("default"));
    // Spark's toAvroType: `topLevelRecord`, nullable columns as [T, "null"] (`id` is never
    // null, so it is plain), a nested record
    // named after its column in the namespace of the record that holds it.
    assert_eq!(
        default,
        serde_json::json!({"type": "record", "name": "topLevelRecord", "fields": [
            {"name": "id", "type": "string"},
            {"name": "qty", "type": ["long", "null"]},
            {"name": "ship", "type": [{"type": "record", "name": "ship", "namespace": "topLevelRecord",
                "fields": [{"name": "city", "type": ["string", "null"]}]}, "null"]},
            {"name": "at", "type": [{"type": "long", "logicalType": "timestamp-micros"}, "null"]}]})
    );
    let named = dir.path().join("named");
    df.clone()
        .write()
        .format("avro")
        .option("recordName", "Order")
        .option("recordNamespace", "shop.v1")
        .save(&named)
        .unwrap();
    let schema = header_schema(&named);
    assert_eq!((&schema["name"], &schema["namespace"]), (&serde_json::json!("Order"), &serde_json::json!("shop.v1")));
    assert_eq!(schema["fields"][2]["type"][0]["namespace"], "shop.v1.Order");
    let back = s.read().format("avro").load(&named).unwrap();
    assert_eq!(lines(&back.collect().unwrap()), lines(&df.collect().unwrap()));
}

#[test]
fn the_avro_schema_option_writes_enums_and_names_of_its_own() {
    let (s, _) = session();
    let dir = tempfile::tempdir().unwrap();
    let df = s.sql("SELECT * FROM (VALUES ('c1', 'CLICK'), ('c2', 'BUY')) AS t(id, kind)").unwrap();
    let schema = r#"{"type": "record", "name": "Click", "namespace": "shop", "fields": [
        {"name": "id", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["VIEW", "CLICK", "BUY"]}}]}"#;
    let out = dir.path().join("clicks");
    df.clone().write().format("avro").option("avroSchema", schema).save(&out).unwrap();
    assert_eq!(header_schema(&out)["fields"][1]["type"]["type"], "enum");
    // Enums read back as strings, as Spark reads them.
    let back = s.read().format("avro").load(&out).unwrap();
    assert_eq!(lines(&back.collect().unwrap()), ["c1|CLICK", "c2|BUY"]);
    let e = s
        .sql("SELECT 'c3' AS id, 'SELL' AS kind")
        .unwrap()
        .write()
        .format("avro")
        .option("avroSchema", schema)
        .save(dir.path().join("bad"))
        .unwrap_err();
    assert!(e.to_string().contains("SELL"), "{e}");
    let e = df.write().format("json").option("recordName", "X").save(dir.path().join("json")).unwrap_err();
    assert!(e.to_string().contains("the json writer has no recordName option"), "{e}");
}
