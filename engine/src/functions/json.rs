//! Spark's JSON functions, as DataFusion functions usable from SQL and the DataFrame API:
//! `from_json`, `to_json`, `schema_of_json`, `get_json_object`, `json_tuple`.
//!
//! `from_json` parses with the JSON reader's rules (semantics appendix, §9, `format/json.rs`): in
//! PERMISSIVE mode (the default) a malformed value becomes a struct whose unparsable fields are
//! null, with the raw text in the `columnNameOfCorruptRecord` column when the schema has one,
//! and never stops the query; FAILFAST fails the batch. A null or blank value gives null.
//!
//! `json_tuple` is a generator in Spark (one column per field, `c0`, `c1`, ...); here it is a
//! scalar function returning a struct with those fields: select `json_tuple(..).c0` or
//! unnest it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray, StringBuilder, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::format::{JsonOptions, decode_documents};
use crate::options::Options;

/// The literal text of argument `i`, if it is a string literal.
pub(super) fn literal_text(args: &[Option<&ScalarValue>], i: usize) -> Option<String> {
    match args.get(i) {
        Some(Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)))) => {
            Some(s.clone())
        }
        _ => None,
    }
}

pub(super) fn scalars(args: &[ColumnarValue]) -> Vec<Option<ScalarValue>> {
    args.iter()
        .map(|a| match a {
            ColumnarValue::Scalar(s) => Some(s.clone()),
            ColumnarValue::Array(_) => None,
        })
        .collect()
}

/// A column of text or bytes as bytes per row.
fn bytes_of(array: &ArrayRef) -> DfResult<BinaryArray> {
    Ok(arrow::compute::cast(array, &DataType::Binary)?.as_binary::<i32>().clone())
}

fn texts_of(array: &ArrayRef) -> DfResult<StringArray> {
    Ok(arrow::compute::cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn check_text(function: &str, field: &Field) -> DfResult<()> {
    match field.data_type() {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::Null => Ok(()),
        other => plan_err!(
            "{function}: the JSON column must be a string (or binary), but {} is {}",
            field.name(),
            crate::ddl::spark_type_name(other)
        ),
    }
}

/// `from_json(json, schema[, options])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FromJson {
    signature: Signature,
}

impl FromJson {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(FromJson { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

/// The schema literal of a `from_json` call.
fn from_json_schema(args: &[Option<&ScalarValue>]) -> DfResult<SchemaRef> {
    let Some(text) = literal_text(args, 1) else {
        return plan_err!("from_json: the schema must be a literal string such as 'id STRING, ts TIMESTAMP'");
    };
    crate::ddl::parse_schema(&text).or_else(|e| plan_err!("from_json: {e}"))
}

/// The options of a call such as `from_json(json, schema, map('mode', 'FAILFAST'))`: its map
/// argument (a literal), read as reader options.
pub(super) fn options_of(function: &str, arg: Option<&ScalarValue>) -> DfResult<Options> {
    let mut options = Options::default();
    match arg {
        None => {}
        Some(ScalarValue::Map(map)) => {
            let entries = map.value(0);
            let keys = texts_of(entries.column(0))?;
            let values = texts_of(entries.column(1))?;
            for i in 0..keys.len() {
                options.set(keys.value(i), values.value(i));
            }
        }
        Some(other) => {
            return plan_err!("{function}: options must be a map such as map('mode', 'FAILFAST'), got {other}");
        }
    }
    Ok(options)
}

/// The options map of a `from_json(json, schema, map('mode', 'FAILFAST'))` call.
fn from_json_options(arg: Option<&ScalarValue>) -> DfResult<JsonOptions> {
    let options = options_of("from_json", arg)?;
    if options.get("mode").is_some_and(|m| m.eq_ignore_ascii_case("DROPMALFORMED")) {
        return plan_err!(
            "from_json() doesn't support the DROPMALFORMED mode. Acceptable modes are PERMISSIVE and FAILFAST."
        );
    }
    options
        .check_known("from_json", &["mode", "columnNameOfCorruptRecord", "timestampFormat"])
        .and_then(|()| JsonOptions::try_new(&options))
        .or_else(|e| plan_err!("from_json: {e}"))
}

impl ScalarUDFImpl for FromJson {
    fn name(&self) -> &str {
        "from_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        plan_err!("from_json's type depends on its schema argument")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if !(2..=3).contains(&args.arg_fields.len()) {
            return plan_err!("from_json takes a JSON column, a schema and optionally options");
        }
        check_text("from_json", &args.arg_fields[0])?;
        let schema = from_json_schema(args.scalar_arguments)?;
        Ok(Arc::new(Field::new("from_json", DataType::Struct(schema.fields().clone()), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let literals = scalars(&args.args);
        let refs: Vec<Option<&ScalarValue>> = literals.iter().map(Option::as_ref).collect();
        let schema = from_json_schema(&refs)?;
        let options = from_json_options(refs.get(2).copied().flatten())?;
        let json = bytes_of(&args.args[0].to_array(args.number_rows)?)?;
        let values: Vec<Option<&[u8]>> = json.iter().collect();
        let (batch, present) = decode_documents(&values, &schema, &options, "from_json")?;
        let nulls = arrow::buffer::NullBuffer::from(present);
        let out = StructArray::try_new(schema.fields().clone(), batch.columns().to_vec(), Some(nulls))?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `to_json(struct)`: a struct as one JSON object per row; null fields left out, timestamps
/// as ISO-8601 UTC with milliseconds (Spark's defaults).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ToJson {
    signature: Signature,
}

impl ToJson {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(ToJson { signature: Signature::any(1, Volatility::Immutable) })
    }
}

/// Timestamps (also inside structs) as Spark writes them in JSON: `2024-01-01T09:00:00.000Z`.
fn timestamps_as_text(array: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(match array.data_type() {
        DataType::Timestamp(_, _) => {
            let micros = crate::functions::window::micros(array)?;
            let text: StringArray = micros
                .iter()
                .map(|t| {
                    t.and_then(chrono::DateTime::from_timestamp_micros)
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                })
                .collect();
            Arc::new(text)
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            let columns = s.columns().iter().map(timestamps_as_text).collect::<DfResult<Vec<_>>>()?;
            let fields: Fields = s
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| Arc::new(Field::new(f.name(), c.data_type().clone(), true)))
                .collect();
            Arc::new(StructArray::try_new(fields, columns, s.nulls().cloned())?)
        }
        _ => array.clone(),
    })
}

impl ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        "to_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first() {
            Some(DataType::Struct(_)) => Ok(DataType::Utf8),
            other => plan_err!("to_json takes a struct (e.g. named_struct('a', a) or struct(a, b)), got {other:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = timestamps_as_text(&args.args[0].to_array(args.number_rows)?)?;
        let s = array.as_struct();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(s.fields().clone())), s.columns().to_vec())?;
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        writer.write(&batch)?;
        writer.finish()?;
        let text = writer.into_inner();
        let lines = text.split(|b| *b == b'\n');
        let mut out = StringBuilder::with_capacity(s.len(), text.len());
        for (i, line) in lines.take(s.len()).enumerate() {
            if s.is_valid(i) {
                out.append_value(String::from_utf8_lossy(line));
            } else {
                out.append_null();
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `schema_of_json(json)`: the schema Spark infers for one JSON document, as a DDL string
/// (`STRUCT<a: BIGINT, b: STRING>`), ready for `from_json`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SchemaOfJson {
    signature: Signature,
}

impl SchemaOfJson {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(SchemaOfJson { signature: Signature::any(1, Volatility::Immutable) })
    }
}

/// Spark's DDL name of an inferred type.
fn ddl_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::List(f) => format!("ARRAY<{}>", ddl_type(f.data_type())),
        DataType::Struct(fields) => format!(
            "STRUCT<{}>",
            fields.iter().map(|f| format!("{}: {}", f.name(), ddl_type(f.data_type()))).collect::<Vec<_>>().join(", ")
        ),
        _ => "STRING".into(),
    }
}

/// The DDL of one JSON document's inferred schema, fields in name order (as Spark).
pub(crate) fn schema_of_json(json: &str) -> Result<String, String> {
    let (schema, _) = arrow::json::reader::infer_json_schema(std::io::Cursor::new(json.as_bytes()), Some(1))
        .map_err(|e| format!("cannot infer a schema from '{json}': {e}"))?;
    fn sorted(fields: &Fields) -> Fields {
        let mut fields: Vec<Field> = fields
            .iter()
            .map(|f| match f.data_type() {
                DataType::Struct(inner) => Field::new(f.name(), DataType::Struct(sorted(inner)), true),
                _ => f.as_ref().clone(),
            })
            .collect();
        fields.sort_by(|a, b| a.name().cmp(b.name()));
        fields.into()
    }
    Ok(ddl_type(&DataType::Struct(sorted(schema.fields()))))
}

impl ScalarUDFImpl for SchemaOfJson {
    fn name(&self) -> &str {
        "schema_of_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let literals = scalars(&args.args);
        let refs: Vec<Option<&ScalarValue>> = literals.iter().map(Option::as_ref).collect();
        let Some(json) = literal_text(&refs, 0) else {
            return exec_err!("schema_of_json: the JSON must be a literal string, e.g. '{{\"a\": 1}}'");
        };
        let ddl = schema_of_json(&json).or_else(|e| exec_err!("schema_of_json: {e}"))?;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(ddl))))
    }
}

/// One step of a JSON path: `.name` / `['name']`, `[n]`, or `[*]`.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
}

/// Parses Spark's JSON path subset: `$`, then `.name`, `['name']`, `[n]`, `[*]`.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            let name = &r[..end];
            steps.push(if name == "*" { Step::All } else { Step::Field(name.to_string()) });
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            steps.push(Step::Field(r[..end].to_string()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            steps.push(if inner == "*" { Step::All } else { Step::Index(inner.parse().ok()?) });
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn follow<'a>(value: &'a serde_json::Value, steps: &[Step], out: &mut Vec<&'a serde_json::Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(value);
        return;
    };
    match (step, value) {
        (Step::Field(name), serde_json::Value::Object(map)) => {
            if let Some(v) = map.get(name) {
                follow(v, rest, out);
            }
        }
        (Step::Index(i), serde_json::Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                follow(v, rest, out);
            }
        }
        (Step::All, serde_json::Value::Array(items)) => items.iter().for_each(|v| follow(v, rest, out)),
        (Step::All, serde_json::Value::Object(map)) => map.values().for_each(|v| follow(v, rest, out)),
        _ => {}
    }
}

/// A JSON value as Spark returns it: strings without quotes, anything else as JSON text.
fn as_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `get_json_object(json, path)` for one row: null for invalid JSON, a bad path, or no match.
pub(crate) fn get_json_object(json: &str, path: &str) -> Option<String> {
    let steps = parse_path(path)?;
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut found = Vec::new();
    follow(&value, &steps, &mut found);
    let wildcard = steps.contains(&Step::All);
    match (found.as_slice(), wildcard) {
        ([], _) => None,
        ([one], false) => as_text(one),
        (many, _) => Some(serde_json::Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string()),
    }
}

/// `get_json_object(json, path)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct GetJsonObject {
    signature: Signature,
}

impl GetJsonObject {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(GetJsonObject { signature: Signature::any(2, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for GetJsonObject {
    fn name(&self) -> &str {
        "get_json_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let json = texts_of(&args.args[0].to_array(args.number_rows)?)?;
        let paths = texts_of(&args.args[1].to_array(args.number_rows)?)?;
        let out: StringArray = json
            .iter()
            .zip(paths.iter())
            .map(|(j, p)| match (j, p) {
                (Some(j), Some(p)) => get_json_object(j, p),
                _ => None,
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `json_tuple(json, 'a', 'b', ...)`: the named top-level fields as text, in a struct
/// `{c0, c1, ...}`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JsonTuple {
    signature: Signature,
}

impl JsonTuple {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(JsonTuple { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

fn tuple_fields(n: usize) -> Fields {
    (0..n).map(|i| Field::new(format!("c{i}"), DataType::Utf8, true)).collect()
}

impl ScalarUDFImpl for JsonTuple {
    fn name(&self) -> &str {
        "json_tuple"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        if arg_types.len() < 2 {
            return plan_err!("json_tuple takes a JSON column and at least one field name");
        }
        Ok(DataType::Struct(tuple_fields(arg_types.len() - 1)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let json = texts_of(&args.args[0].to_array(n)?)?;
        let names =
            args.args[1..].iter().map(|a| a.to_array(n).and_then(|a| texts_of(&a))).collect::<DfResult<Vec<_>>>()?;
        let mut columns: Vec<StringBuilder> = names.iter().map(|_| StringBuilder::new()).collect();
        for row in 0..n {
            let object = json.is_valid(row).then(|| serde_json::from_str::<serde_json::Value>(json.value(row)).ok());
            for (names, out) in names.iter().zip(&mut columns) {
                let value =
                    object.as_ref().and_then(|o| o.as_ref()).and_then(|o| o.get(names.value(row))).and_then(as_text);
                out.append_option(value);
            }
        }
        let columns: Vec<ArrayRef> = columns.into_iter().map(|mut c| Arc::new(c.finish()) as ArrayRef).collect();
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(tuple_fields(names.len()), columns, None)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_follow_sparks_get_json_object() {
        let doc = r#"{"a": {"b": [10, {"c": "x"}]}, "s": "text", "n": null}"#;
        assert_eq!(get_json_object(doc, "$.a.b[0]").as_deref(), Some("10"));
        assert_eq!(get_json_object(doc, "$.a.b[1].c").as_deref(), Some("x"));
        assert_eq!(get_json_object(doc, "$['s']").as_deref(), Some("text"));
        assert_eq!(get_json_object(doc, "$.a").as_deref(), Some(r#"{"b":[10,{"c":"x"}]}"#));
        assert_eq!(get_json_object(doc, "$.a.b[*]").as_deref(), Some(r#"[10,{"c":"x"}]"#));
        assert_eq!(get_json_object(doc, "$.n"), None);
        assert_eq!(get_json_object(doc, "$.missing"), None);
        assert_eq!(get_json_object("{bad", "$.a"), None);
        assert_eq!(get_json_object(doc, "a.b"), None);
    }

    #[test]
    fn schema_of_json_gives_sparks_ddl() {
        assert_eq!(
            schema_of_json(r#"{"b": "x", "a": 1, "c": [1.5], "d": {"z": true}}"#).unwrap(),
            "STRUCT<a: BIGINT, b: STRING, c: ARRAY<DOUBLE>, d: STRUCT<z: BOOLEAN>>"
        );
    }
}
