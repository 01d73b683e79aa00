//! Avro schemas as Spark reads and writes them (semantics appendix, §9).
//!
//! Reading: of Avro's logical types Spark maps `date`, `timestamp-millis`/`-micros`,
//! `local-timestamp-millis`/`-micros` and `decimal` to its own types; every other one (a
//! `uuid`, a `time-millis`, ...) is read as its underlying type, a string or an int. Writing:
//! a Spark type becomes the Avro type Spark's `to_avro` and Avro files give it — a struct is a
//! record named `topLevelRecord` (the `recordName` option) whose nested records are named after
//! their fields, a nullable type is the union `[T, "null"]`, a timestamp is `timestamp-micros`,
//! a decimal is a `fixed` of the fewest bytes its precision needs.
//!
//! The encoders and decoders work on records, so a value's schema is wrapped as the one field
//! of a record ([`wrapped`]): a record of one field is encoded as that field alone, so the
//! bytes are the value's own.

use arrow::datatypes::DataType;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The logical types Spark maps to its own types.
const SPARK_LOGICAL_TYPES: [&str; 6] =
    ["date", "timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros", "decimal"];

/// The name of the record [`wrapped`] puts a value's schema in.
const VALUE_RECORD: &str = "brooklet_avro_value";

/// Spark's default name for the top-level record it writes (the `recordName` option).
pub(crate) const TOP_LEVEL_RECORD: &str = "topLevelRecord";

/// An Avro schema given as JSON text, checked: `what` names it in the error.
pub(crate) fn parse(text: &str, what: &str) -> Result<Value> {
    let invalid = |e: &dyn std::fmt::Display| Error::Analysis(format!("{what} is not a valid Avro schema: {e}"));
    apache_avro::Schema::parse_str(text).map_err(|e| invalid(&e))?;
    serde_json::from_str(text).map_err(|e| invalid(&e))
}

/// `schema` with the logical types Spark does not map taken off, so a `uuid` reads as the
/// string it is and a `time-millis` as its int.
pub(crate) fn spark_logical_types(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| *k != "logicalType" || v.as_str().is_some_and(|t| SPARK_LOGICAL_TYPES.contains(&t)))
                .map(|(k, v)| (k.clone(), if k == "default" { v.clone() } else { spark_logical_types(v) }))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(spark_logical_types).collect()),
        other => other.clone(),
    }
}

/// `schema` as the one field `value` of a record: the text the encoders and decoders take.
pub(crate) fn wrapped(schema: &Value) -> String {
    json!({"type": "record", "name": VALUE_RECORD, "fields": [{"name": "value", "type": schema}]}).to_string()
}

/// The Avro schema Spark writes a value of `data_type` with (its `SchemaConverters.toAvroType`):
/// `record_name` and `namespace` name a struct's record, and its nested records are named after
/// their fields in the namespace `namespace.record_name`.
pub(crate) fn avro_type_of(data_type: &DataType, nullable: bool, record_name: &str, namespace: &str) -> Result<Value> {
    let avro = match data_type {
        DataType::Null => return Ok(json!("null")),
        DataType::Boolean => json!("boolean"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => json!("int"),
        DataType::Int64 => json!("long"),
        DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            json!("bytes")
        }
        DataType::Date32 | DataType::Date64 => json!({"type": "int", "logicalType": "date"}),
        DataType::Timestamp(_, _) => json!({"type": "long", "logicalType": "timestamp-micros"}),
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            let name = if namespace.is_empty() {
                format!("{record_name}.fixed")
            } else {
                format!("{namespace}.{record_name}.fixed")
            };
            json!({"type": "fixed", "name": name, "size": min_bytes_for_precision(*precision),
                   "logicalType": "decimal", "precision": precision, "scale": scale})
        }
        DataType::List(item) | DataType::LargeList(item) => json!({"type": "array",
            "items": avro_type_of(item.data_type(), item.is_nullable(), record_name, namespace)?}),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else { unreachable!("a map's entries are a struct") };
            if !matches!(kv[0].data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return Err(cannot_write(data_type, "Avro maps have string keys"));
            }
            json!({"type": "map",
                   "values": avro_type_of(kv[1].data_type(), kv[1].is_nullable(), record_name, namespace)?})
        }
        DataType::Struct(fields) => {
            let child_namespace =
                if namespace.is_empty() { record_name.to_string() } else { format!("{namespace}.{record_name}") };
            let fields = fields
                .iter()
                .map(|f| {
                    Ok(json!({"name": f.name(),
                              "type": avro_type_of(f.data_type(), f.is_nullable(), f.name(), &child_namespace)?}))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut record = json!({"type": "record", "name": record_name, "fields": fields});
            if !namespace.is_empty() {
                record["namespace"] = json!(namespace);
            }
            record
        }
        other => return Err(cannot_write(other, "Avro has no such type")),
    };
    Ok(if nullable { json!([avro, "null"]) } else { avro })
}

fn cannot_write(data_type: &DataType, why: &str) -> Error {
    Error::Analysis(format!("cannot write a {} as Avro: {why}", crate::ddl::spark_type_name(data_type)))
}

/// The fewest bytes whose two's complement holds every decimal of `precision` digits.
fn min_bytes_for_precision(precision: u8) -> usize {
    let mut bytes = 1;
    while 2f64.powi(8 * bytes as i32 - 1) < 10f64.powi(i32::from(precision)) {
        bytes += 1;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Fields};

    use super::*;

    #[test]
    fn a_struct_is_written_as_spark_names_it() {
        let inner = Fields::from(vec![Field::new("amount", DataType::Decimal128(10, 2), false)]);
        let fields = Fields::from(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("at", crate::ddl::timestamp_type(), false),
            Field::new("order", DataType::Struct(inner), false),
        ]);
        let schema = avro_type_of(&DataType::Struct(fields), false, TOP_LEVEL_RECORD, "").unwrap();
        assert_eq!(
            schema.to_string(),
            r#"{"fields":[{"name":"id","type":["string","null"]},{"name":"at","type":{"logicalType":"timestamp-micros","type":"long"}},{"name":"order","type":{"fields":[{"name":"amount","type":{"logicalType":"decimal","name":"topLevelRecord.order.amount.fixed","precision":10,"scale":2,"size":5,"type":"fixed"}}],"name":"order","namespace":"topLevelRecord","type":"record"}}],"name":"topLevelRecord","type":"record"}"#
        );
        apache_avro::Schema::parse_str(&schema.to_string()).unwrap();
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(
            avro_type_of(&list, true, "r", "").unwrap().to_string(),
            r#"[{"items":["long","null"],"type":"array"},"null"]"#
        );
    }

    #[test]
    fn logical_types_spark_does_not_map_are_taken_off() {
        let schema: Value = serde_json::from_str(
            r#"{"type":"record","name":"r","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}},
               {"name":"d","type":{"type":"int","logicalType":"date"}}]}"#,
        )
        .unwrap();
        let plain = spark_logical_types(&schema);
        assert_eq!(plain["fields"][0]["type"], json!({"type": "string"}));
        assert_eq!(plain["fields"][1]["type"], json!({"type": "int", "logicalType": "date"}));
    }
}
