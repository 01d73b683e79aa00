//! Column functions for building expressions in Rust rather than SQL strings: DataFusion's
//! (`col`, `lit`, `sum`, `avg`, `count`, `split_part`, ...) and Spark's event-time functions
//! (`window`, `sliding_window`, `window_time`, `session_window`).
//!
//! ```
//! use brooklet::functions::{col, window};
//! let five_minutes = window(col("timestamp"), "5 minutes");
//! ```

pub(crate) mod session;
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

/// Spark's `session_window(timeColumn, gapDuration)`: grouped on, rows of a key less than
/// `gap` apart form one session `session_window{start, end}` (start of its first row, end
/// `gap` after its last). The gap is a duration string (`"30 minutes"`) or an expression
/// giving one per row (rows with a null or non-positive gap are in no session).
pub fn session_window(time: Expr, gap: impl SessionGap) -> Expr {
    Arc::new(session::SessionWindowFunc::udf()).call(vec![time, gap.into_gap()])
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
    ]
}
