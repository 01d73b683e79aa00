//! Round trips over generated schemas and values: for seeded random Avro schemas (every type
//! Spark maps — primitives, date, timestamp-micros, enums, fixed, arrays, maps, nested
//! records, nullable and general unions — nested up to three deep) and random values of each
//! (nulls, empty arrays and maps, unicode and NUL in strings and keys, extreme and
//! non-finite numbers), apache-avro writes the bytes, `from_avro` decodes them, `to_avro`
//! encodes the struct again with the same schema, and apache-avro must read back exactly the
//! values it wrote.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::types::Value as Avro;
use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value as Json, json};

use crate::functions::{col, from_avro, to_avro_with_schema};

/// Draws schemas and values from one seeded stream.
struct Generator {
    rng: ChaCha8Rng,
    names: usize,
}

const STRINGS: [&str; 8] = ["", "a", "é", "😀", "\u{0}", "line\nbreak", "中文", "\"quoted\""];

impl Generator {
    fn name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names)
    }

    fn record(&mut self, depth: u32) -> Json {
        let fields: Vec<Json> = (0..self.rng.random_range(1..=5))
            .map(|i| json!({"name": format!("f{i}"), "type": self.schema(depth + 1)}))
            .collect();
        json!({"type": "record", "name": self.name("R"), "fields": fields})
    }

    /// Any schema but a union (a union may not hold one).
    fn non_union(&mut self, depth: u32) -> Json {
        loop {
            let schema = self.schema(depth);
            if !schema.is_array() {
                return schema;
            }
        }
    }

    fn schema(&mut self, depth: u32) -> Json {
        let kinds = if depth >= 3 { 11 } else { 16 };
        match self.rng.random_range(0..kinds) {
            i @ 0..=6 => json!(["boolean", "int", "long", "float", "double", "string", "bytes"][i]),
            7 => json!({"type": "int", "logicalType": "date"}),
            8 => json!({"type": "long", "logicalType": "timestamp-micros"}),
            9 => json!({"type": "enum", "name": self.name("E"), "symbols": ["A", "B", "C_3"]}),
            10 => json!({"type": "fixed", "name": self.name("F"), "size": 3}),
            11 => json!({"type": "array", "items": self.schema(depth + 1)}),
            12 => json!({"type": "map", "values": self.schema(depth + 1)}),
            13 => json!(["null", self.non_union(depth + 1)]),
            14 => self.record(depth + 1),
            _ => json!(["int", "string"]),
        }
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.rng.random_range(0..choices.len())]
    }

    fn string(&mut self) -> String {
        (0..self.rng.random_range(0..4)).map(|_| self.pick(&STRINGS)).collect()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.rng.random()).collect()
    }

    fn value(&mut self, schema: &Json) -> Avro {
        if let Some(branches) = schema.as_array() {
            let branch = self.rng.random_range(0..branches.len());
            return Avro::Union(branch as u32, Box::new(self.value(&branches[branch])));
        }
        let kind = schema.get("logicalType").or_else(|| schema.get("type")).unwrap_or(schema);
        match kind.as_str().expect("a type name") {
            "null" => Avro::Null,
            "boolean" => Avro::Boolean(self.rng.random()),
            "int" => {
                let any = self.rng.random();
                Avro::Int(self.pick(&[0, -1, 1, i32::MIN, i32::MAX, any]))
            }
            "long" => {
                let any = self.rng.random();
                Avro::Long(self.pick(&[0, -1, i64::MIN, i64::MAX, any]))
            }
            "float" => Avro::Float(self.pick(&[0.0, -0.0, f32::MAX, f32::MIN_POSITIVE, f32::INFINITY, 1.5e-7])),
            "double" => Avro::Double(self.pick(&[0.0, f64::MIN, f64::MAX, f64::NEG_INFINITY, f64::NAN, 1e-300])),
            "string" => Avro::String(self.string()),
            "bytes" => {
                let len = self.rng.random_range(0..5);
                Avro::Bytes(self.bytes(len))
            }
            "date" => Avro::Date(self.rng.random_range(-719_162..2_932_896)), // years 1 to 9999
            "timestamp-micros" => {
                Avro::TimestampMicros(self.rng.random_range(-62_135_596_800_000_000..253_402_300_799_999_999))
            }
            "enum" => {
                let symbol = self.rng.random_range(0..3usize);
                Avro::Enum(symbol as u32, ["A", "B", "C_3"][symbol].to_string())
            }
            "fixed" => Avro::Fixed(3, self.bytes(3)),
            "array" => Avro::Array((0..self.rng.random_range(0..3)).map(|_| self.value(&schema["items"])).collect()),
            "map" => {
                let entries: HashMap<String, Avro> =
                    (0..self.rng.random_range(0..3)).map(|_| (self.string(), self.value(&schema["values"]))).collect();
                Avro::Map(entries)
            }
            "record" => Avro::Record(
                schema["fields"]
                    .as_array()
                    .expect("fields")
                    .iter()
                    .map(|f| (f["name"].as_str().expect("a name").to_string(), self.value(&f["type"])))
                    .collect(),
            ),
            other => unreachable!("the generator makes no {other}"),
        }
    }
}

/// `value` as text that is the same for equal values: map entries sorted, floats by their
/// bits (so NaN equals NaN and -0.0 differs from 0.0).
fn canonical(value: &Avro) -> String {
    match value {
        Avro::Map(entries) => {
            let mut entries: Vec<String> = entries.iter().map(|(k, v)| format!("{k:?}: {}", canonical(v))).collect();
            entries.sort();
            format!("{{{}}}", entries.join(", "))
        }
        Avro::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(", ")),
        Avro::Record(fields) => {
            format!(
                "{{{}}}",
                fields.iter().map(|(k, v)| format!("{k}: {}", canonical(v))).collect::<Vec<_>>().join(", ")
            )
        }
        Avro::Union(branch, inner) => format!("#{branch} {}", canonical(inner)),
        Avro::Float(f) => format!("float {:#x}", f.to_bits()),
        Avro::Double(d) => format!("double {:#x}", d.to_bits()),
        other => format!("{other:?}"),
    }
}

#[test]
#[allow(deprecated)] // to_avro_datum / from_avro_datum are apache-avro 0.22's one-value codec
fn generated_schemas_and_values_survive_apache_avro_then_from_avro_then_to_avro() {
    let session = crate::Session::builder().build();
    let mut generator = Generator { rng: ChaCha8Rng::seed_from_u64(19), names: 0 };
    for case in 0..150 {
        let schema_json = generator.record(0);
        let schema = apache_avro::Schema::parse(&schema_json).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let values: Vec<Avro> = (0..12).map(|_| generator.value(&schema_json)).collect();
        let bytes: Vec<Vec<u8>> = values
            .iter()
            .map(|v| apache_avro::to_avro_datum(&schema, v.clone()).expect("apache-avro writes it"))
            .collect();
        let data: ArrayRef = Arc::new(BinaryArray::from_iter_values(&bytes));
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(vec![Field::new("data", DataType::Binary, false)])), vec![data])
                .unwrap();
        let text = schema_json.to_string();
        let df = crate::DataFrame::from_datafusion(session.clone(), session.datafusion().read_batch(batch).unwrap());
        let back = df
            .select(vec![from_avro(col("data"), &text).alias("v")])
            .and_then(|df| df.select(vec![to_avro_with_schema(col("v"), &text).alias("bytes")]))
            .and_then(|df| df.collect())
            .unwrap_or_else(|e| panic!("case {case}, schema {text}: {e}"));
        let written: Vec<Vec<u8>> = back
            .iter()
            .flat_map(|b| {
                b.column(0).as_binary::<i32>().iter().map(|v| v.expect("no null").to_vec()).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(written.len(), values.len(), "case {case}");
        for (row, (value, bytes)) in values.iter().zip(&written).enumerate() {
            let read = apache_avro::from_avro_datum(&schema, &mut bytes.as_slice(), None)
                .unwrap_or_else(|e| panic!("case {case} row {row}, schema {text}: apache-avro cannot read it: {e}"));
            assert_eq!(canonical(&read), canonical(value), "case {case} row {row}, schema {text}");
        }
        assert!(back.iter().all(|b| b.column(0).null_count() == 0));
    }
}
