//! Plans `window(...)` in a `select` or `group_by` as Spark's `TimeWindowing` rule does: each
//! row is expanded into one row per window it belongs to.
//!
//! ```text
//!   Aggregate: groupBy=[window(timestamp, '10 minutes', '5 minutes') AS window, event_type]
//!     Input
//! ==>
//!   Aggregate: groupBy=[__brooklet_window_0 AS window, event_type]
//!     Unnest: __brooklet_window_0                   one row per window
//!       Projection: *, __brooklet_windows(timestamp, 600000000, 300000000, 0) AS __brooklet_window_0
//!         Input
//! ```
//!
//! Names are kept, so whatever stands above still finds its columns. When the time column is
//! the watermark's, the window column inherits the event-time marking
//! ([`super::watermark::DELAY_KEY`]), which is how a stateful operator knows its key is a
//! window it may finalise.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue, UnnestOptions};
use datafusion::logical_expr::expr::{Alias, ScalarFunction};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Projection};
use datafusion::prelude::lit;

use super::watermark::DELAY_KEY;

mod sessions;
use crate::error::{Error, Result};
use crate::functions::session::SESSION_WINDOW_UDF;
use crate::functions::window::{WINDOW_UDF, WindowsFunc, spec_from_literals};
pub(crate) use sessions::SESSION_COLUMN;

fn is_window_call(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.name() == WINDOW_UDF || f.func.name() == SESSION_WINDOW_UDF)
}

fn is_session_call(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.name() == SESSION_WINDOW_UDF)
}

fn window_calls(exprs: &[Expr]) -> Vec<Expr> {
    let mut calls: Vec<Expr> = Vec::new();
    for e in exprs {
        let _ = e.apply(|node| {
            if is_window_call(node) && !calls.contains(node) {
                calls.push(node.clone());
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
    }
    calls
}

/// Whether `e` contains `call`.
fn contains(e: &Expr, call: &Expr) -> bool {
    e.exists(|node| Ok(node == call)).unwrap_or(false)
}

/// Whether any node of `plan` calls `window`.
fn has_window_call(plan: &LogicalPlan) -> bool {
    plan.exists(|p| Ok(!window_calls(&p.expressions()).is_empty())).unwrap_or(false)
}

/// Rewrites every `window(...)` in a projection or aggregation into a window list + unnest.
/// Every node above is derived again from its new inputs, so the window column's event-time
/// marking reaches whatever reads it (a second aggregation over `window_time(window)`).
pub(crate) fn expand_windows(plan: LogicalPlan) -> Result<LogicalPlan> {
    if !has_window_call(&plan) {
        return Ok(plan);
    }
    Ok(plan
        .transform_up(|p| match p {
            LogicalPlan::Aggregate(agg) => {
                let Some(window) = single_window(&agg.group_expr)? else {
                    return Ok(Transformed::no(LogicalPlan::Aggregate(agg).recompute_schema()?));
                };
                if is_session_call(&window) {
                    let streaming = super::reads_stream(&agg.input);
                    let session_at = agg.group_expr.iter().position(|e| contains(e, &window)).unwrap_or(0);
                    let (input, replacement) = sessions::expand(Arc::unwrap_or_clone(agg.input), &window)?;
                    let group = replace_all(agg.group_expr, &window, &replacement)?;
                    let aggregate = Aggregate::try_new(Arc::new(input), group, agg.aggr_expr)?;
                    // A stream's sessions are merged by the stateful operator, across batches;
                    // static rows are merged here.
                    let plan = if streaming {
                        LogicalPlan::Aggregate(aggregate)
                    } else {
                        sessions::merge(aggregate, session_at)?
                    };
                    return Ok(Transformed::yes(plan));
                }
                let (input, replacement) = expand(Arc::unwrap_or_clone(agg.input), &window)?;
                let group = replace_all(agg.group_expr, &window, &replacement)?;
                let aggregate = Aggregate::try_new(Arc::new(input), group, agg.aggr_expr)?;
                Ok(Transformed::yes(LogicalPlan::Aggregate(aggregate)))
            }
            LogicalPlan::Projection(proj) => {
                let window = match single_window(&proj.expr)? {
                    // A row's own session needs no expansion: the function gives it.
                    Some(w) if !is_session_call(&w) => w,
                    _ => return Ok(Transformed::no(LogicalPlan::Projection(proj).recompute_schema()?)),
                };
                let (input, replacement) = expand(Arc::unwrap_or_clone(proj.input), &window)?;
                let exprs = replace_all(proj.expr, &window, &replacement)?;
                Ok(Transformed::yes(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?)))
            }
            other => Ok(Transformed::no(other.recompute_schema()?)),
        })?
        .data)
}

fn single_window(exprs: &[Expr]) -> datafusion::error::Result<Option<Expr>> {
    let calls = window_calls(exprs);
    if calls.len() > 1 {
        return Err(Error::Analysis(
            "Multiple time/session window expressions would result in a cartesian product of rows, therefore they are currently not supported.".into(),
        )
        .into());
    }
    Ok(calls.into_iter().next())
}

/// `input` with one row per (row, window) and the window in a new column; that column.
fn expand(input: LogicalPlan, window: &Expr) -> datafusion::error::Result<(LogicalPlan, Expr)> {
    let Expr::ScalarFunction(ScalarFunction { args, .. }) = window else {
        return Err(datafusion::error::DataFusionError::Internal("not a window call".into()));
    };
    let literals: Vec<Option<ScalarValue>> = args
        .iter()
        .map(|a| match a {
            Expr::Literal(v, _) => Some(v.clone()),
            _ => None,
        })
        .collect();
    let spec = spec_from_literals(&literals.iter().map(Option::as_ref).collect::<Vec<_>>())?;
    let time = args[0].clone();
    let (_, time_field) = time.to_field(input.schema())?;
    let n = input.schema().fields().iter().filter(|f| f.name().starts_with("__brooklet_window_")).count();
    let name = format!("__brooklet_window_{n}");
    let windows = Arc::new(WindowsFunc::udf()).call(vec![time, lit(spec.size), lit(spec.slide), lit(spec.start)]);
    let mut columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
    columns.push(windows.alias(&name));
    let expanded = LogicalPlanBuilder::from(input)
        .project(columns)?
        .unnest_column_with_options(name.as_str(), UnnestOptions::new().with_preserve_nulls(false))?
        .build()?;
    let mut column = Expr::Column(Column::from_name(name));
    if let Some(delay) = time_field.metadata().get(DELAY_KEY) {
        let metadata = std::collections::BTreeMap::from([(DELAY_KEY.to_string(), delay.clone())]);
        column = column.alias_with_metadata(WINDOW_UDF, Some(metadata.into()));
    }
    Ok((expanded, column))
}

/// Replaces the window call in each expression, keeping each expression's output name; the
/// window itself keeps the event-time marking `replacement` carries.
fn replace_all(exprs: Vec<Expr>, window: &Expr, replacement: &Expr) -> datafusion::error::Result<Vec<Expr>> {
    let metadata = match replacement {
        Expr::Alias(a) => a.metadata.clone(),
        _ => None,
    };
    let plain = replacement.clone().unalias();
    exprs
        .into_iter()
        .map(|e| {
            let mut found = false;
            e.apply(|node| {
                found |= node == window;
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })?;
            if !found {
                return Ok(e);
            }
            let (relation, name) = e.qualified_name();
            let is_window = is_window_call(&e) || matches!(&e, Expr::Alias(a) if is_window_call(&a.expr));
            let replaced = e
                .unalias()
                .transform_up(|node| {
                    Ok(if &node == window { Transformed::yes(plain.clone()) } else { Transformed::no(node) })
                })?
                .data;
            let alias =
                Alias::new(replaced, relation, name).with_metadata(if is_window { metadata.clone() } else { None });
            Ok(Expr::Alias(alias))
        })
        .collect()
}
