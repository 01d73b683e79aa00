//! Column functions for building expressions in Rust rather than SQL strings: DataFusion's
//! (`col`, `lit`, `sum`, `avg`, `count`, `split_part`, ...) and Spark's event-time functions
//! (`window`, `sliding_window`, `window_time`).
//!
//! ```
//! use brooklet::functions::{col, window};
//! let five_minutes = window(col("timestamp"), "5 minutes");
//! ```

pub(crate) mod window;

use std::sync::Arc;

pub use datafusion::functions_aggregate::expr_fn::*;

pub use datafusion::prelude::*;

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

/// Spark's `window_time(window)`: the window's last instant (`end` minus one microsecond).
pub fn window_time(window: Expr) -> Expr {
    Arc::new(window::WindowTimeFunc::udf()).call(vec![window])
}

/// The functions a session registers for SQL.
pub(crate) fn udfs() -> Vec<datafusion::logical_expr::ScalarUDF> {
    vec![window::WindowFunc::udf(), window::WindowsFunc::udf(), window::WindowTimeFunc::udf()]
}
