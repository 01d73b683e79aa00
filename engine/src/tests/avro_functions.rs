//! `from_avro` and `to_avro`: round trips of every type, Spark's type mapping (enums, unions,
//! fixed, logical types), schema evolution with `avroSchema`, FAILFAST and PERMISSIVE on bad
//! bytes, and the bytes themselves against Avro's binary encoding (apache-avro writes and reads
//! the other side); and Spark's `length`/`octet_length` of the binary values they make.

use std::sync::Arc;

use apache_avro::types::Value as AvroValue;
use arrow::array::{ArrayRef, BinaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use crate::Session;
use crate::tests::session;

/// The rows of a query's one column, as text.
fn column(s: &Session, sql: &str) -> Vec<String> {
    crate::tests::lines(&s.sql(sql).unwrap().collect().unwrap())
}

/// A table `t(id, data)` of the given Avro values (None: a null value).
fn table_of(s: &Session, values: Vec<Option<Vec<u8>>>) {
    let ids: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(0..values.len() as i64));
    let data: ArrayRef = Arc::new(values.iter().map(|v| v.as_deref()).collect::<BinaryArray>());
    let schema =
        Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("data", DataType::Binary, true)]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![ids, data]).unwrap();
    let _ = s.datafusion().deregister_table("t");
    s.datafusion().register_batch("t", batch).unwrap();
}

/// `value` encoded with `schema` by apache-avro (Avro's binary encoding, no framing).
#[allow(deprecated)] // to_avro_datum is apache-avro 0.22's one-value writer
fn avro_bytes(schema: &str, value: AvroValue) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    apache_avro::to_avro_datum(&schema, value).unwrap()
}

const EVENT: &str = r#"{"type": "record", "name": "Event", "namespace": "shop.events", "fields": [
    {"name": "id", "type": "string"},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["VIEW", "CLICK", "BUY"]}},
    {"name": "amount", "type": ["null", "double"], "default": null},
    {"name": "customer", "type": {"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "payload", "type": ["null", "int", "string"]},
    {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 2}},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}}
]}"#;

fn event(id: &str, kind: (u32, &str), amount: Option<f64>, payload: AvroValue) -> AvroValue {
    AvroValue::Record(vec![
        ("id".into(), AvroValue::String(id.into())),
        ("kind".into(), AvroValue::Enum(kind.0, kind.1.into())),
        (
            "amount".into(),
            AvroValue::Union(u32::from(amount.is_some()), Box::new(amount.map_or(AvroValue::Null, AvroValue::Double))),
        ),
        (
            "customer".into(),
            AvroValue::Record(vec![
                ("name".into(), AvroValue::String("ana".into())),
                ("age".into(), AvroValue::Int(31)),
            ]),
        ),
        ("tags".into(), AvroValue::Array(vec![AvroValue::String("a".into()), AvroValue::String("é😀".into())])),
        ("attrs".into(), AvroValue::Map([("n".to_string(), AvroValue::Long(i64::MIN))].into())),
        ("at".into(), AvroValue::TimestampMillis(1_704_103_200_123)),
        ("day".into(), AvroValue::Date(19_723)),
        ("ref".into(), AvroValue::String("6f1c6f4e-0d3a-4f44-9b53-8d7a9c3b1e2f".into())),
        ("payload".into(), payload),
        ("code".into(), AvroValue::Fixed(2, vec![0xca, 0xfe])),
        ("price".into(), AvroValue::Decimal(apache_avro::Decimal::from(12_345i64.to_be_bytes().to_vec()))),
    ])
}

#[test]
fn from_avro_reads_what_avro_wrote_in_sparks_types() {
    let (s, _) = session();
    let values = vec![
        Some(avro_bytes(EVENT, event("e1", (1, "CLICK"), Some(2.5), AvroValue::Union(1, Box::new(AvroValue::Int(7)))))),
        None,
        Some(avro_bytes(
            EVENT,
            event("e2", (2, "BUY"), None, AvroValue::Union(2, Box::new(AvroValue::String("x".into())))),
        )),
        Some(avro_bytes(EVENT, event("e3", (0, "VIEW"), None, AvroValue::Union(0, Box::new(AvroValue::Null))))),
    ];
    table_of(&s, values);
    let sql = format!("SELECT from_avro(data, '{EVENT}') AS e FROM t");
    let df = s.sql(&sql).unwrap();
    // Spark's types: the enum and the uuid are strings, the fixed is binary, the union of
    // int and string a struct of members, the timestamp Brooklet's (UTC microseconds).
    assert_eq!(
        crate::ddl::spark_type_name(df.schema().field(0).data_type()),
        "struct<id:string,kind:string,amount:double,customer:struct<name:string,age:integer>,tags:array<string>,\
         attrs:map<string,long>,at:timestamp,day:date,ref:string,payload:struct<member0:integer,member1:string>,\
         code:binary,price:decimal(9,2)>"
    );
    let rows = column(
        &s,
        &format!(
            "SELECT id, e.kind, e.amount, e.customer.age, e.tags, e.attrs, e.at, e.day, e.ref, e.payload, e.code, e.price \
             FROM (SELECT id, from_avro(data, '{EVENT}') AS e FROM t) ORDER BY id"
        ),
    );
    assert_eq!(
        rows,
        [
            "0|CLICK|2.5|31|[a, é😀]|{n: -9223372036854775808}|2024-01-01T10:00:00.123|2024-01-01|6f1c6f4e-0d3a-4f44-9b53-8d7a9c3b1e2f|{member0: 7, member1: null}|cafe|123.45",
            "1|null|null|null|null|null|null|null|null|null|null|null",
            "2|BUY|null|31|[a, é😀]|{n: -9223372036854775808}|2024-01-01T10:00:00.123|2024-01-01|6f1c6f4e-0d3a-4f44-9b53-8d7a9c3b1e2f|{member0: null, member1: x}|cafe|123.45",
            "3|VIEW|null|31|[a, é😀]|{n: -9223372036854775808}|2024-01-01T10:00:00.123|2024-01-01|6f1c6f4e-0d3a-4f44-9b53-8d7a9c3b1e2f|null|cafe|123.45",
        ]
    );
}

#[test]
fn to_avro_writes_what_from_avro_and_avro_read_back() {
    let (s, _) = session();
    let sample = "SELECT * FROM (VALUES \
        ('a', CAST(1 AS BIGINT), CAST(7 AS INT), 1.5, true, TIMESTAMP '2024-01-01 10:00:00.123456', DATE '2024-01-01', make_array('x', 'y'), named_struct('k', 'v', 'n', CAST(1 AS BIGINT)), CAST(3.14 AS DECIMAL(5,2))), \
        ('é ü 😀', CAST(-9223372036854775808 AS BIGINT), CAST(-1 AS INT), CAST('NaN' AS DOUBLE), false, TIMESTAMP '1969-12-31 23:59:59', DATE '1970-01-01', make_array(), named_struct('k', NULL, 'n', CAST(NULL AS BIGINT)), CAST(-0.01 AS DECIMAL(5,2))), \
        (NULL, NULL, NULL, CAST('-Infinity' AS DOUBLE), NULL, NULL, NULL, NULL, NULL, NULL)\
      ) AS v(s, l, i, d, b, ts, day, tags, nested, price)";
    s.sql(sample).unwrap().create_or_replace_temp_view("sample").unwrap();
    let row = "named_struct('s', s, 'l', l, 'i', i, 'd', d, 'b', b, 'ts', ts, 'day', day, 'tags', tags, 'nested', nested, 'price', price)";
    let original = s.sql(&format!("SELECT {row} FROM sample")).unwrap();
    // The schema to_avro derives for the struct: every field nullable, so `[T, "null"]`.
    let schema =
        crate::format::avro_schema::avro_type_of(original.schema().field(0).data_type(), false, "topLevelRecord", "")
            .unwrap()
            .to_string();
    let original = crate::tests::lines(&original.collect().unwrap());
    let back = column(&s, &format!("SELECT from_avro(to_avro({row}), '{schema}') FROM sample"));
    assert_eq!(back, original);
    assert_eq!(original.len(), 3);

    // The bytes are Avro's: apache-avro reads them with the same schema.
    let bytes = s.sql(&format!("SELECT to_avro({row}) AS a FROM sample")).unwrap();
    let batches = bytes.collect().unwrap();
    let parsed = apache_avro::Schema::parse_str(&schema).unwrap();
    let column = arrow::array::AsArray::as_binary::<i32>(batches[0].column(0));
    #[allow(deprecated)] // from_avro_datum is apache-avro 0.22's one-value reader
    let first = apache_avro::from_avro_datum(&parsed, &mut column.value(0), None).unwrap();
    let AvroValue::Record(fields) = first else { panic!("a record: {first:?}") };
    assert_eq!(fields[0], ("s".to_string(), AvroValue::Union(0, Box::new(AvroValue::String("a".into())))));
    assert_eq!(
        fields[5],
        ("ts".to_string(), AvroValue::Union(0, Box::new(AvroValue::TimestampMicros(1_704_103_200_123_456))))
    );
}

#[test]
fn a_column_that_is_not_a_struct_is_one_value_and_a_null_stays_null() {
    let (s, _) = session();
    let rows = column(
        &s,
        "SELECT encode(to_avro(x), 'hex'), from_avro(to_avro(x), '[\"long\", \"null\"]') FROM (VALUES (CAST(1 AS BIGINT)), (NULL), (CAST(-64 AS BIGINT))) AS v(x)",
    );
    // A nullable long is the union [long, null]: branch 0, then the zig-zag varint.
    assert_eq!(rows, ["0002|1", "null|null", "007f|-64"]);
}

#[test]
fn to_avro_with_a_schema_writes_enums_and_named_records() {
    let (s, _) = session();
    let schema = r#"{"type":"record","name":"Click","namespace":"shop","fields":[{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["VIEW","CLICK"]}},{"name":"n","type":"long"}]}"#;
    let bytes = s
        .sql(&format!("SELECT to_avro(named_struct('kind', k, 'n', n), '{schema}') AS a FROM (VALUES ('CLICK', CAST(5 AS BIGINT))) AS v(k, n)"))
        .unwrap()
        .collect()
        .unwrap();
    let column = arrow::array::AsArray::as_binary::<i32>(bytes[0].column(0));
    assert_eq!(column.value(0), [2, 10], "enum index 1, then 5 as a zig-zag varint");
    let bad = s
        .sql(&format!("SELECT to_avro(named_struct('kind', 'SCROLL', 'n', CAST(1 AS BIGINT)), '{schema}')"))
        .and_then(|df| df.collect());
    let message = bad.unwrap_err().to_string();
    assert!(
        message.contains("cannot write \"SCROLL\" as the Avro enum shop.Kind: its symbols are VIEW, CLICK"),
        "{message}"
    );
    let missing = s.sql(&format!("SELECT to_avro(named_struct('kind', 'VIEW'), '{schema}')")).map(|_| ()).unwrap_err();
    assert!(missing.to_string().contains("it has no field n"), "{missing}");
}

#[test]
fn a_reader_schema_reads_old_and_new_values_alike() {
    let (s, _) = session();
    let v1 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"},{"name":"n","type":"int"}]}"#;
    let v2 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"},{"name":"n","type":"long"},{"name":"source","type":"string","default":"web"}]}"#;
    let old = avro_bytes(
        v1,
        AvroValue::Record(vec![("id".into(), AvroValue::String("a".into())), ("n".into(), AvroValue::Int(3))]),
    );
    table_of(&s, vec![Some(old)]);
    let read = s
        .table("t")
        .unwrap()
        .select(vec![crate::functions::from_avro_with(crate::functions::col("data"), v1, &[("avroSchema", v2)])])
        .unwrap();
    let rows = crate::tests::lines(&read.collect().unwrap());
    // The int widens to a long and the added field takes its default.
    assert_eq!(rows, ["{id: a, n: 3, source: web}"]);
    // A field the writer lacks with no default to take: refused when the query is planned.
    let no_default =
        r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"},{"name":"source","type":"string"}]}"#;
    let refused = s
        .table("t")
        .unwrap()
        .select(vec![crate::functions::from_avro_with(
            crate::functions::col("data"),
            v1,
            &[("avroSchema", no_default)],
        )])
        .map(|_| ())
        .unwrap_err();
    assert!(refused.to_string().contains("source"), "{refused}");
}

#[test]
fn failfast_names_the_row_and_permissive_gives_null() {
    let (s, _) = session();
    let schema = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"},{"name":"n","type":"long"}]}"#;
    let good = |id: &str, n: i64| {
        avro_bytes(
            schema,
            AvroValue::Record(vec![("id".into(), AvroValue::String(id.into())), ("n".into(), AvroValue::Long(n))]),
        )
    };
    let mut truncated = good("abcdef", 1);
    truncated.truncate(4);
    let mut trailing = good("t", 9);
    trailing.extend_from_slice(&[0xff, 0xff]);
    table_of(
        &s,
        vec![
            Some(good("a", 1)),
            Some(truncated),
            Some(vec![0x7f]),
            Some(good("b", 2)),
            Some(trailing),
            Some(vec![]),
            Some(good("c", 3)),
        ],
    );
    let permissive =
        column(&s, &format!("SELECT id, from_avro(data, '{schema}', map('mode', 'PERMISSIVE')) FROM t ORDER BY id"));
    // Bytes after a whole value are ignored, as Spark ignores them; a value cut short, a
    // negative string length and no bytes at all are null.
    assert_eq!(
        permissive,
        ["0|{id: a, n: 1}", "1|null", "2|null", "3|{id: b, n: 2}", "4|{id: t, n: 9}", "5|null", "6|{id: c, n: 3}"]
    );
    let failfast =
        s.sql(&format!("SELECT from_avro(data, '{schema}') FROM t")).unwrap().collect().unwrap_err().to_string();
    assert!(
        failfast.contains("from_avro: malformed Avro value in row 1 of the batch: 4 bytes do not decode"),
        "{failfast}"
    );
    assert!(failfast.contains("Parse Mode: FAILFAST"), "{failfast}");
    // SQL's map(...) is a literal only once DataFusion folds it: the mode is checked then.
    let dropmalformed = s
        .sql(&format!("SELECT from_avro(data, '{schema}', map('mode', 'DROPMALFORMED')) FROM t"))
        .and_then(|d| d.collect());
    assert!(dropmalformed.unwrap_err().to_string().contains("doesn't support the DROPMALFORMED mode"));
    let invalid = s.sql("SELECT from_avro(data, '{\"type\": \"record\"}') FROM t").map(|_| ()).unwrap_err().to_string();
    assert!(invalid.contains("from_avro's schema is not a valid Avro schema"), "{invalid}");
}

#[test]
fn unions_of_int_and_long_read_as_long() {
    let (s, _) = session();
    let schema = r#"["int", "long"]"#;
    table_of(
        &s,
        vec![
            Some(avro_bytes(schema, AvroValue::Union(0, Box::new(AvroValue::Int(5))))),
            Some(avro_bytes(schema, AvroValue::Union(1, Box::new(AvroValue::Long(1 << 40))))),
        ],
    );
    let rows = column(&s, &format!("SELECT from_avro(data, '{schema}') FROM t"));
    assert_eq!(rows, ["5", "1099511627776"]);
}

#[test]
fn a_struct_of_members_writes_a_union() {
    let (s, _) = session();
    let schema = r#"["null", "int", "string"]"#;
    let rows = column(
        &s,
        &format!(
            "SELECT encode(to_avro(m, '{schema}'), 'hex'), from_avro(to_avro(m, '{schema}'), '{schema}') FROM (VALUES \
             (named_struct('member0', CAST(7 AS INT), 'member1', CAST(NULL AS STRING))), \
             (named_struct('member0', CAST(NULL AS INT), 'member1', 'x'))) AS v(m)"
        ),
    );
    assert_eq!(rows, ["020e|{member0: 7, member1: null}", "040278|{member0: null, member1: x}"]);
}

#[test]
fn length_and_octet_length_measure_binary_values_in_bytes_and_strings_as_before() {
    let (s, _) = session();
    let rows = column(
        &s,
        "SELECT length(X'00FF10'), octet_length(X'00FF10'), length('héllo'), octet_length('héllo'), \
         length(CAST(NULL AS BYTEA)), length(12345)",
    );
    assert_eq!(rows, ["3|3|5|6|null|5"]);
}
