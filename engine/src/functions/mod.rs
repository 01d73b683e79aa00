//! Column functions for building expressions in Rust rather than SQL strings: DataFusion's
//! (`col`, `lit`, `sum`, `avg`, `count`, `split_part`, ...) and Spark's event-time functions
//! (`window`, `sliding_window`, `window_time`, `session_window`) and JSON functions
//! (`from_json`, `to_json`, `schema_of_json`, `get_json_object`, `json_tuple`), and
//! `spark_partition_id`.
//!
//! ```
//! use brooklet::functions::{col, window};
//! let five_minutes = window(col("timestamp"), "5 minutes");
//! ```

/// The field metadata key that marks an event-time column, with its delay in milliseconds
/// (Spark's `EventTimeWatermark.delayKey`); `with_watermark` sets it.
pub const DELAY_KEY: &str = "spark.watermarkDelayMs";

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
    let keys = options.iter().map(|(k, _)| lit(*k)).collect();
    let values = options.iter().map(|(_, v)| lit(*v)).collect();
    let options = datafusion::functions_nested::map::map(keys, values);
    Arc::new(json::FromJson::udf()).call(vec![json, lit(schema), options])
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
        json::FromJson::udf(),
        json::ToJson::udf(),
        json::SchemaOfJson::udf(),
        json::GetJsonObject::udf(),
        json::JsonTuple::udf(),
        split::SplitFunc::udf(),
        partition_id::SparkPartitionId::udf(),
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
