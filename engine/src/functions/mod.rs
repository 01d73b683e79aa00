//! Column functions for building expressions in Rust rather than SQL strings: DataFusion's
//! (`col`, `lit`, `sum`, `avg`, `count`, `split_part`, ...) and Spark's event-time functions
//! (`window`, `sliding_window`, `window_time`, `session_window`) and JSON functions
//! (`from_json`, `to_json`, `schema_of_json`, `get_json_object`, `json_tuple`), Avro functions
//! (`from_avro`, `to_avro`) and `spark_partition_id`.
//!
//! ```
//! use brooklet::functions::{col, window};
//! let five_minutes = window(col("timestamp"), "5 minutes");
//! ```

/// The field metadata key that marks an event-time column, with its delay in milliseconds
/// (Spark's `EventTimeWatermark.delayKey`); `with_watermark` sets it.
pub const DELAY_KEY: &str = "spark.watermarkDelayMs";

pub(crate) mod avro;
pub(crate) mod binary_length;
pub(crate) mod json;
pub(crate) mod partition_id;
pub(crate) mod session;
pub(crate) mod split;
pub(crate) mod unmarked;
pub(crate) mod window;

use std::sync::Arc;

pub use datafusion::functions_aggregate::expr_fn::*;

pub use datafusion::prelude::*;

/// A column by name, as Spark's `col`: `"eventType"` is `eventType` (DataFusion's own `col`
/// would read an unquoted name as lower case, `eventtype`), and `"e.user_id"` is `user_id` of
/// the side aliased `e`.
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Column(datafusion::common::Column::from_qualified_name_ignore_case(name))
}

/// Spark's `window(timeColumn, windowDuration)`: the tumbling window holding each row, a
/// `window{start, end}` struct. Durations are interval strings such as `"5 minutes"`.
pub fn window(time: Expr, duration: &str) -> Expr {
    Arc::new(window::WindowFunc::udf()).call(vec![time, lit(duration)])
}

/// Spark's `window(timeColumn, windowDuration, slideDuration)`: every window of
/// `duration` starting each `slide` that holds the row (a row may be in several).
pub fn sliding_window(time: Expr, duration: &str, slide: &str) -> Expr {
    Arc::new(window::WindowFunc::udf()).call(vec![time, lit(duration), lit(slide)])
}

/// Spark's `window(timeColumn, windowDuration, slideDuration, startTime)`: windows shifted
/// by `start` from the epoch (e.g. hourly windows starting at a quarter past).
pub fn window_with_start(time: Expr, duration: &str, slide: &str, start: &str) -> Expr {
    Arc::new(window::WindowFunc::udf()).call(vec![time, lit(duration), lit(slide), lit(start)])
}

/// Spark's `split(str, pattern)`: the parts of `str` around the matches of the regular
/// expression `pattern`, trailing empty strings kept (`split("", " ")` is `[""]`).
pub fn split(text: Expr, pattern: &str) -> Expr {
    Arc::new(split::SplitFunc::udf()).call(vec![text, lit(pattern)])
}

/// Spark's `window_time(window)`: the window's last instant (`end` minus one microsecond).
pub fn window_time(window: Expr) -> Expr {
    Arc::new(window::WindowTimeFunc::udf()).call(vec![window])
}

/// Spark's `session_window(timeColumn, gapDuration)`: grouped on, rows of a key less than
/// `gap` apart form one session `session_window{start, end}` (start of its first row, end
/// `gap` after its last). The gap is a duration string (`"30 minutes"`) or an expression
/// giving one per row (rows with a null or non-positive gap are in no session).
pub fn session_window(time: Expr, gap: impl SessionGap) -> Expr {
    Arc::new(session::SessionWindowFunc::udf()).call(vec![time, gap.into_gap()])
}

/// Spark's `from_json(col, schema)`: parses each JSON text (string or binary) into a struct
/// of `schema`, a DDL string such as `"event_id STRING, timestamp TIMESTAMP"`. Malformed
/// values keep the fields that parse (PERMISSIVE); see [`from_json_with`] for options.
pub fn from_json(json: Expr, schema: &str) -> Expr {
    Arc::new(json::FromJson::udf()).call(vec![json, lit(schema)])
}

/// `from_json` with reader options: `mode` (`PERMISSIVE` or `FAILFAST`),
/// `columnNameOfCorruptRecord` (a STRING field of `schema` that receives malformed text),
/// `timestampFormat`.
pub fn from_json_with(json: Expr, schema: &str, options: &[(&str, &str)]) -> Expr {
    Arc::new(json::FromJson::udf()).call(vec![json, lit(schema), options_map(options)])
}

/// Spark's `from_avro(data, jsonFormatSchema)`: each binary value, an Avro value written with
/// the schema (Avro's JSON form), as Spark's type for it — a record is a struct, an enum a
/// string, `["null", T]` a nullable T, another union a struct of `member0, member1, ...`. A
/// Spark's `struct("a", "b")`: the named columns as one struct whose fields have their
/// names, as `to_json` and `to_avro` take a row.
pub fn struct_of(columns: &[&str]) -> Expr {
    named_struct(columns.iter().flat_map(|c| [lit(*c), col(*c)]).collect())
}

/// value that does not decode fails the batch (FAILFAST); see [`from_avro_with`] for options.
pub fn from_avro(data: Expr, json_format_schema: &str) -> Expr {
    Arc::new(avro::FromAvro::udf()).call(vec![data, lit(json_format_schema)])
}

/// `from_avro` with Spark's options: `mode` (`FAILFAST`, or `PERMISSIVE` where a value that
/// does not decode is null) and `avroSchema` (the schema to read the values as, resolved
/// against the one they were written with: fields added with defaults, removed, widened).
pub fn from_avro_with(data: Expr, json_format_schema: &str, options: &[(&str, &str)]) -> Expr {
    Arc::new(avro::FromAvro::udf()).call(vec![data, lit(json_format_schema), options_map(options)])
}

/// Spark's `to_avro(data)`: each value as the bytes of one Avro value, with the schema Spark
/// derives from the column's type (a struct is a record `topLevelRecord`, a nullable column
/// the union `[T, "null"]`).
pub fn to_avro(data: Expr) -> Expr {
    Arc::new(avro::ToAvro::udf()).call(vec![data])
}

/// Spark's `to_avro(data, jsonFormatSchema)`: each value written with the given schema (for
/// an enum's symbols, records' names and namespaces, a union's branches).
pub fn to_avro_with_schema(data: Expr, json_format_schema: &str) -> Expr {
    Arc::new(avro::ToAvro::udf()).call(vec![data, lit(json_format_schema)])
}

/// Options of `from_avro_registry`/`to_avro_registry`: the registry's URL (Confluent's
/// `schema.registry.url`, Databricks' `schemaRegistryAddress`), the subject, and Spark's
/// `mode` and `avroSchema`. Credentials are not options: register them once with
/// [`SchemaRegistry::with_basic_auth`](crate::registry::SchemaRegistry::with_basic_auth).
#[derive(Debug, Clone)]
pub struct AvroOptions {
    entries: Vec<(String, String)>,
}

impl AvroOptions {
    /// Values in the Confluent wire format, schemas in the registry at `url`.
    pub fn registry(url: &str) -> Self {
        AvroOptions { entries: vec![("schemaRegistryAddress".into(), url.into())] }
    }

    /// The subject (`<topic>-value` in Confluent's default naming): `from_avro` reads as its
    /// latest version, `to_avro` registers under it.
    pub fn subject(self, subject: &str) -> Self {
        self.option("subject", subject)
    }

    /// Another option: `mode` (`FAILFAST`, `PERMISSIVE`), `avroSchema`.
    pub fn option(mut self, key: &str, value: &str) -> Self {
        self.entries.push((key.into(), value.into()));
        self
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// These options with the reader schema fixed: `avroSchema` if given, else the subject's
    /// latest version now, so a query reads as one schema for its life and asks the registry
    /// for it once, not every batch. If the registry cannot be asked, the options stay as
    /// they are and planning the query fails naming it.
    fn with_fixed_reader(&self) -> AvroOptions {
        let (Some(url), Some(subject), None) =
            (self.get("schemaRegistryAddress"), self.get("subject"), self.get("avroSchema"))
        else {
            return self.clone();
        };
        match crate::registry::SchemaRegistry::new(url).latest(subject) {
            Ok(latest) => self.clone().option("avroSchema", &latest.schema.to_string()),
            Err(_) => self.clone(),
        }
    }

    fn to_map(&self) -> Expr {
        let pairs: Vec<(&str, &str)> = self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        options_map(&pairs)
    }
}

/// `from_avro` of values in the Confluent wire format: each value's writer schema looked up
/// by its id in the registry (cached), read as the subject's latest version when this
/// expression is made — the query's start — (or `avroSchema`). A value with an id the registry lacks is bad (FAILFAST fails the
/// batch; PERMISSIVE makes it null); a registry that cannot be reached fails the batch.
pub fn from_avro_registry(data: Expr, options: &AvroOptions) -> Expr {
    Arc::new(avro::FromAvro::udf()).call(vec![data, options.with_fixed_reader().to_map()])
}

/// `to_avro` in the Confluent wire format: the column's schema (Spark's for its type, or
/// `avroSchema`) registered under the subject — refused if the subject's compatibility mode
/// does not allow it — and its id written before each value.
pub fn to_avro_registry(data: Expr, options: &AvroOptions) -> Expr {
    Arc::new(avro::ToAvro::udf()).call(vec![data, options.to_map()])
}

/// Options as the map Spark's functions take, as a literal: a function's type may depend on
/// them (`avroSchema`), and DataFusion reads only literal arguments when it plans a type.
fn options_map(options: &[(&str, &str)]) -> Expr {
    use arrow::array::{MapBuilder, StringBuilder};
    let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for (k, v) in options {
        map.keys().append_value(k);
        map.values().append_value(v);
    }
    map.append(true).expect("keys and values match");
    lit(datafusion::common::ScalarValue::Map(Arc::new(map.finish())))
}

/// Spark's `to_json(struct)`: one JSON object per row (null fields left out).
pub fn to_json(value: Expr) -> Expr {
    Arc::new(json::ToJson::udf()).call(vec![value])
}

/// Spark's `schema_of_json(json)`: the DDL of the schema inferred from one JSON document.
pub fn schema_of_json(json: &str) -> Expr {
    Arc::new(json::SchemaOfJson::udf()).call(vec![lit(json)])
}

/// Spark's `get_json_object(json, path)`: the value at a JSON path (`$.a.b[0]`) as text.
pub fn get_json_object(json: Expr, path: &str) -> Expr {
    Arc::new(json::GetJsonObject::udf()).call(vec![json, lit(path)])
}

/// Spark's `json_tuple(json, fields...)`: the named top-level fields as text, here as a struct
/// with fields `c0`, `c1`, ... (Spark makes them columns).
pub fn json_tuple(json: Expr, fields: &[&str]) -> Expr {
    let mut args = vec![json];
    args.extend(fields.iter().map(|f| lit(*f)));
    Arc::new(json::JsonTuple::udf()).call(args)
}

/// Spark's `spark_partition_id()`: the number of the input partition each row was read in,
/// from 0. A batch's partitions are the source's own (semantics appendix, §10): a rate
/// source's `numPartitions`, one per `MemoryStream` add, files packed by size. Answered in a
/// select or filter over the source's rows; refused above an aggregation, join or union.
pub fn spark_partition_id() -> Expr {
    Arc::new(partition_id::SparkPartitionId::udf()).call(vec![])
}

/// A session window's gap: a duration string, or an expression of them.
pub trait SessionGap {
    /// The gap as an expression.
    fn into_gap(self) -> Expr;
}

impl SessionGap for &str {
    fn into_gap(self) -> Expr {
        lit(self)
    }
}

impl SessionGap for Expr {
    fn into_gap(self) -> Expr {
        self
    }
}

/// The functions a session registers for SQL.
pub(crate) fn udfs() -> Vec<datafusion::logical_expr::ScalarUDF> {
    vec![
        window::WindowFunc::udf(),
        window::WindowsFunc::udf(),
        window::WindowTimeFunc::udf(),
        session::SessionWindowFunc::udf(),
        avro::FromAvro::udf(),
        avro::ToAvro::udf(),
        json::FromJson::udf(),
        json::ToJson::udf(),
        json::SchemaOfJson::udf(),
        json::GetJsonObject::udf(),
        json::JsonTuple::udf(),
        split::SplitFunc::udf(),
        partition_id::SparkPartitionId::udf(),
        binary_length::BinaryLength::length(),
        binary_length::BinaryLength::octet_length(),
    ]
}

pub use datafusion::functions_window::expr_fn::{dense_rank, lag, lead, rank, row_number};

/// Spark's `Window`: which rows a window function (`lag`, `lead`, `row_number`, `rank`, ...)
/// sees — those of its partition, in order. For static DataFrames: a stream refuses window
/// functions, as Spark does.
///
/// ```
/// use brooklet::functions::{Over, Window, col, lag, row_number};
/// let by_user = Window::partition_by(&["user_id"]).order_by(&["timestamp"]);
/// let previous = lag(col("value"), Some(1), None).over(&by_user).unwrap().alias("previous");
/// let n = row_number().over(&by_user).unwrap().alias("n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Window {
    partition_by: Vec<Expr>,
    order_by: Vec<datafusion::logical_expr::SortExpr>,
}

impl Window {
    /// Rows are grouped by these columns.
    pub fn partition_by(columns: &[&str]) -> Self {
        Window { partition_by: columns.iter().map(|c| col(*c)).collect(), order_by: Vec::new() }
    }

    /// Within a partition, rows are ordered by these columns, ascending with nulls first
    /// (Spark's default).
    pub fn order_by(mut self, columns: &[&str]) -> Self {
        self.order_by = columns.iter().map(|c| col(*c).sort(true, true)).collect();
        self
    }
}

/// `.over(&window)` on a window function, as in Spark.
pub trait Over {
    /// The function evaluated over `window`.
    fn over(self, window: &Window) -> crate::Result<Expr>;
}

impl Over for Expr {
    fn over(self, window: &Window) -> crate::Result<Expr> {
        use datafusion::logical_expr::ExprFunctionExt;
        Ok(self.partition_by(window.partition_by.clone()).order_by(window.order_by.clone()).build()?)
    }
}
