//! Plans `group_by(session_window(time, gap), ...)`.
//!
//! ```text
//!   Aggregate: groupBy=[session_window(timestamp, '30 minutes'), user_id]
//!     Input
//! ==>                                                   (both: static and streaming)
//!   Aggregate: groupBy=[__brooklet_session AS session_window, user_id]
//!     Filter: __brooklet_session IS NOT NULL           rows without a session drop out
//!       Projection: *, session_window(timestamp, '30 minutes') AS __brooklet_session
//!         Input
//! ```
//!
//! On a stream that aggregate groups rows by their *own* session, and the stateful operator
//! merges those into sessions across batches. On static data, [`merge`] finds the sessions
//! with two window functions: a row starts a new session when its start is after every end
//! before it (in start order, per key), and a running count of those starts numbers the
//! sessions.

use std::sync::Arc;

use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::functions::core::expr_fn::{get_field, named_struct};
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionDefinition};
use datafusion::logical_expr::{
    Aggregate, Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, WindowFrame, WindowFrameBound,
    WindowFrameUnits, when,
};
use datafusion::prelude::{col, lit};

use crate::functions::session::SESSION_WINDOW_UDF;

/// The column holding each input row's own session, `[time, time + gap)`.
pub(crate) const SESSION_COLUMN: &str = "__brooklet_session";

/// `input` with each row's own session in a column (rows without one dropped); that column,
/// named `session_window` and marked as a session (and as event time, when it is).
pub(super) fn expand(input: LogicalPlan, call: &Expr) -> DfResult<(LogicalPlan, Expr)> {
    let (_, field) = call.to_field(input.schema())?;
    let mut columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
    columns.push(call.clone().alias(SESSION_COLUMN));
    let expanded =
        LogicalPlanBuilder::from(input).project(columns)?.filter(col(SESSION_COLUMN).is_not_null())?.build()?;
    let metadata: std::collections::BTreeMap<String, String> =
        field.metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let column =
        Expr::Column(Column::from_name(SESSION_COLUMN)).alias_with_metadata(SESSION_WINDOW_UDF, Some(metadata.into()));
    Ok((expanded, column))
}

/// Merges static rows' sessions: `aggregate` groups by each row's own session (see
/// [`expand`]; its key `session_at`); the result groups by whole sessions, with the same
/// columns.
pub(super) fn merge(aggregate: Aggregate, session_at: usize) -> DfResult<LogicalPlan> {
    let keys: Vec<Expr> =
        aggregate.group_expr.iter().enumerate().filter(|(i, _)| *i != session_at).map(|(_, e)| e.clone()).collect();
    // Plain columns for the session's bounds, so the window functions sort by columns.
    let input = Arc::unwrap_or_clone(aggregate.input);
    let mut columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
    columns.push(get_field(col(SESSION_COLUMN), "start").alias("__brooklet_row_start"));
    columns.push(get_field(col(SESSION_COLUMN), "end").alias("__brooklet_row_end"));
    let input = LogicalPlanBuilder::from(input).project(columns)?.build()?;
    let (start, end) = (col("__brooklet_row_start"), col("__brooklet_row_end"));
    let before = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::Preceding(ScalarValue::UInt64(Some(1))),
    );
    let upto = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::CurrentRow,
    );
    // Ties in start are ordered by end, then arbitrarily: any order merges them alike.
    let order = vec![start.clone().sort(true, false), end.clone().sort(true, false)];
    let over = |f: Arc<datafusion::logical_expr::AggregateUDF>, arg: Expr| {
        Expr::from(WindowFunction::new(WindowFunctionDefinition::AggregateUDF(f), vec![arg]))
    };
    let previous_end = over(datafusion::functions_aggregate::min_max::max_udaf(), end.clone())
        .partition_by(keys.clone())
        .order_by(order.clone())
        .window_frame(before)
        .build()?
        .alias("__brooklet_previous_end");
    let starts_session =
        when(col("__brooklet_previous_end").is_null().or(start.clone().gt(col("__brooklet_previous_end"))), lit(1i64))
            .otherwise(lit(0i64))?
            .alias("__brooklet_starts");
    let session_number = over(datafusion::functions_aggregate::sum::sum_udaf(), col("__brooklet_starts"))
        .partition_by(keys.clone())
        .order_by(order)
        .window_frame(upto)
        .build()?
        .alias("__brooklet_session_number");
    let mut columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
    let numbered = LogicalPlanBuilder::from(input).window(vec![previous_end])?;
    columns.push(col("__brooklet_previous_end"));
    columns.push(starts_session);
    let numbered = numbered.project(columns)?.window(vec![session_number])?;
    let mut group = keys;
    group.push(col("__brooklet_session_number"));
    let mut aggregates = aggregate.aggr_expr.clone();
    aggregates.push(min(start).alias("__brooklet_session_start"));
    aggregates.push(max(end).alias("__brooklet_session_end"));
    let merged = numbered.aggregate(group.clone(), aggregates)?.build()?;
    // Back to the original columns, in order: the keys, the session as a struct, the aggregates.
    let schema = merged.schema().clone();
    let column = |i: usize| Expr::Column(Column::from(schema.qualified_field(i)));
    let n_keys = group.len() - 1;
    let original = aggregate.schema.clone();
    let mut out = Vec::new();
    let mut key = 0;
    for (i, (qualifier, field)) in original.iter().enumerate() {
        let e = if i == session_at {
            let total = schema.fields().len();
            named_struct(vec![lit("start"), column(total - 2), lit("end"), column(total - 1)])
        } else if i < aggregate.group_expr.len() {
            key += 1;
            column(key - 1)
        } else {
            column(n_keys + 1 + (i - aggregate.group_expr.len()))
        };
        if i != session_at && e.qualified_name() == (qualifier.cloned(), field.name().clone()) {
            out.push(e);
            continue;
        }
        let metadata = (i == session_at).then(|| {
            field
                .metadata()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into()
        });
        out.push(Expr::Alias(
            datafusion::logical_expr::expr::Alias::new(e, qualifier.cloned(), field.name()).with_metadata(metadata),
        ));
    }
    LogicalPlanBuilder::from(merged).project(out)?.build()
}
