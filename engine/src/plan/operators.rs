//! Cuts a streaming plan at its stateful operators, so that state lives in operators the
//! micro-batch loop owns and no plan node keeps anything between runs.
//!
//! ```text
//!   DataFrame plan                          cut into
//!   ──────────────                          ────────
//!   Projection                              output:      Projection
//!    Aggregate(window; count)      <- 0                    scan(rows out of operator 0)
//!     Projection                            operator 0:  input  Projection
//!      Deduplicate(id)             <- 1                          scan(rows out of operator 1)
//!       WatermarkNode(timestamp)                         Aggregate(window; count) over its input rows
//!        TableScan(source)                  operator 1:  input  WatermarkNode
//!                                                                TableScan(BatchTable of the source)
//!                                                        Deduplicate(id), rows in -> rows out
//! ```
//!
//! Operators are numbered top down (pre-order), as Spark numbers its stateful operators: the
//! number is the operator's state directory and its place in progress. The loop runs them
//! bottom up: each one's input plan reads only sources and the outputs of operators below it,
//! and holds no state, so running it again changes nothing.
//!
//! Every cut is a [`BatchTable`] whose columns are named `__col_<i>` and carry the type and
//! metadata (the watermark's event-time marking) of the column they stand for; a projection
//! over it gives back the original names and qualifiers, so the plan above finds its columns.

use std::sync::Arc;

use datafusion::catalog::default_table_source::DefaultTableSource;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, LogicalPlanBuilder};

use super::dedup::{DedupSpec, DeduplicateNode};
use super::reads_batch;
use super::stream_join::StreamJoinSpec;
use super::tables::BatchTable;
use crate::error::Result;

/// One stateful operator of a running query's plan.
pub(crate) struct OperatorPart {
    /// The plans of the rows the operator reads in each batch, one per input (a join has
    /// two): stateless, over the sources and the outputs of the operators below it.
    pub input: Vec<LogicalPlan>,
    pub kind: OperatorKind,
    /// Where the operator's rows go, for the plan above it.
    pub output: BatchTable,
    /// The operators whose outputs its input reads (their numbers): its watermark comes from
    /// theirs.
    pub inputs: Vec<usize>,
}

/// What an operator does with its input rows.
pub(crate) enum OperatorKind {
    /// A streaming aggregation: `plan` is the `Aggregate` over `rows`, the table the loop's
    /// input rows are put in.
    Aggregate { plan: LogicalPlan, rows: BatchTable },
    /// `drop_duplicates` / `drop_duplicates_within_watermark`.
    Deduplicate { spec: DedupSpec, input_schema: arrow::datatypes::SchemaRef },
    /// A join of two streams: inputs 0 (left) and 1 (right).
    StreamJoin { spec: StreamJoinSpec },
}

/// The rows of a plan cut at a stateful operator: the table that holds them, and the plan that
/// reads them back under their original names.
pub(crate) fn cut_table(schema: &DFSchema, name: &str, partitions: usize) -> Result<(BatchTable, LogicalPlan)> {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| f.as_ref().clone().with_name(format!("__col_{i}")).with_nullable(true))
        .collect();
    let table = BatchTable::new(Arc::new(arrow::datatypes::Schema::new(fields)), partitions);
    let scan = LogicalPlanBuilder::scan(name, Arc::new(DefaultTableSource::new(Arc::new(table.clone()))), None)?;
    let columns: Vec<Expr> = schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name), format!("__col_{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    Ok((table, scan.project(columns)?.build()?))
}

/// Replaces every stateful operator of `plan` by a scan of its output; returns what is left
/// (the plan whose rows go to the sink) and the operators, numbered top down.
pub(crate) fn cut_operators(plan: LogicalPlan, partitions: usize) -> Result<(LogicalPlan, Vec<OperatorPart>)> {
    let mut operators = Vec::new();
    let output = cut(plan, partitions, &mut operators, &mut Vec::new())?;
    let operators = operators.into_iter().map(|o| o.expect("every reserved operator is filled")).collect();
    Ok((output, operators))
}

/// Cuts the operators out of `plan`, numbering them into `operators`; the numbers of those
/// directly in `plan` (not below another operator) go into `cut_here`.
fn cut(
    plan: LogicalPlan,
    partitions: usize,
    operators: &mut Vec<Option<OperatorPart>>,
    cut_here: &mut Vec<usize>,
) -> Result<LogicalPlan> {
    let mut failure = None;
    let plan = plan
        .transform_down(|p| {
            let is_aggregate = matches!(p, LogicalPlan::Aggregate(_)) && reads_batch(&p);
            let is_join = matches!(&p, LogicalPlan::Join(j) if reads_batch(&j.left) && reads_batch(&j.right));
            let dedup = DeduplicateNode::of(&p).map(|d| (d.spec.clone(), d.input.clone()));
            if !is_aggregate && !is_join && dedup.is_none() {
                return Ok(Transformed::no(p));
            }
            // Reserve this operator's number before the ones below it: pre-order, as Spark.
            let id = operators.len();
            operators.push(None);
            cut_here.push(id);
            let mut inputs = Vec::new();
            let part = match (p.clone(), dedup) {
                (_, Some((spec, input))) => cut(input, partitions, operators, &mut inputs).map(|input| {
                    let input_schema = Arc::new(input.schema().as_arrow().clone());
                    (vec![input], OperatorKind::Deduplicate { spec, input_schema })
                }),
                (LogicalPlan::Aggregate(agg), None) => {
                    cut_aggregate(agg, id, partitions, operators, &mut inputs).map(|(input, kind)| (vec![input], kind))
                }
                (LogicalPlan::Join(join), None) => cut_join(join, partitions, operators, &mut inputs),
                _ => unreachable!("only aggregates, deduplications and stream-stream joins are cut"),
            };
            let (input, kind) = match part {
                Ok(part) => part,
                Err(e) => {
                    failure = Some(e);
                    return Ok(Transformed::new(p, false, TreeNodeRecursion::Stop));
                }
            };
            let (output, replacement) = cut_table(p.schema(), &format!("__brooklet_operator_{id}"), 1)?;
            operators[id] = Some(OperatorPart { input, kind, output, inputs });
            Ok(Transformed::new(replacement, true, TreeNodeRecursion::Jump))
        })?
        .data;
    failure.map_or(Ok(plan), Err)
}

/// A stream-stream join's two inputs, each cut below it, and its plan.
fn cut_join(
    join: datafusion::logical_expr::Join,
    partitions: usize,
    operators: &mut Vec<Option<OperatorPart>>,
    inputs: &mut Vec<usize>,
) -> Result<(Vec<LogicalPlan>, OperatorKind)> {
    let spec = super::stream_join::plan(&join)?;
    let left = cut(Arc::unwrap_or_clone(join.left), partitions, operators, inputs)?;
    let right = cut(Arc::unwrap_or_clone(join.right), partitions, operators, inputs)?;
    Ok((vec![left, right], OperatorKind::StreamJoin { spec }))
}

/// An aggregation's input, cut below it, and the `Aggregate` rebuilt over a table of its rows.
fn cut_aggregate(
    agg: Aggregate,
    id: usize,
    partitions: usize,
    operators: &mut Vec<Option<OperatorPart>>,
    inputs: &mut Vec<usize>,
) -> Result<(LogicalPlan, OperatorKind)> {
    let input = cut(Arc::unwrap_or_clone(agg.input), partitions, operators, inputs)?;
    let (rows, rows_plan) = cut_table(input.schema(), &format!("__brooklet_operator_{id}_input"), partitions)?;
    let plan = LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(rows_plan), agg.group_expr, agg.aggr_expr)?);
    Ok((input, OperatorKind::Aggregate { plan, rows }))
}
