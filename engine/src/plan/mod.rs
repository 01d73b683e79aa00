//! From a DataFrame's logical plan to a plan the micro-batch loop can run.
//!
//! ```text
//!   DataFrame plan                         StreamingPlan
//!   ──────────────                         ─────────────
//!   Sort                                   output:       Sort
//!    Aggregate(event_type; count)    ==>                  scan of operator 0's rows
//!     Filter                               operators[0]: input  Filter
//!      TableScan(StreamingTable)                                TableScan(BatchTable)  <- source rows
//!                                                        Aggregate(event_type; count)
//! ```
//!
//! Views are inlined, every streaming scan becomes a [`BatchTable`] the loop fills per batch,
//! and every stateful operator (aggregation, deduplication) is cut out ([`operators`]) so that
//! an operator the loop owns folds each batch into its state; what stands above an operator
//! runs over its output. Query shapes Spark refuses are refused here, naming the operator.

pub(crate) mod dedup;
pub(crate) mod operators;
pub(crate) mod partition_id;
pub(crate) mod runner;
pub(crate) mod stream_join;
pub mod tables;
pub(crate) mod watermark;
pub(crate) mod windows;

use std::any::Any;
use std::sync::Arc;

use datafusion::catalog::default_table_source::{DefaultTableSource, source_as_provider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, JoinType};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan, LogicalPlanBuilder, TableScan};

use self::operators::OperatorPart;
use self::tables::{BatchTable, StreamingTable};
use crate::error::{Error, Result};
use crate::output_mode::OutputMode;
use crate::source::SourceSpec;

/// A query plan ready for micro-batches.
pub(crate) struct StreamingPlan {
    /// Each streaming source, with the table its batch rows go into.
    pub sources: Vec<(Arc<SourceSpec>, BatchTable)>,
    /// The stateful operators, numbered top down (their state directories); each reads its
    /// rows from the sources and the operators below it (`operators.rs`).
    pub operators: Vec<OperatorPart>,
    /// The plan whose result goes to the sink: the whole query when stateless; otherwise what
    /// stands above the top operators, reading their output tables.
    pub output: LogicalPlan,
    /// Facts that output-mode validation needs.
    pub facts: PlanFacts,
    /// Each `with_watermark` node, in plan order: what it observes per batch, and its delay.
    pub watermarks: Vec<(watermark::StatsCell, i64)>,
}

/// What the output-mode rules look at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PlanFacts {
    /// Streaming aggregations in the query.
    pub aggregates: usize,
    /// Every aggregation groups by the watermark column or a window of it.
    pub aggregate_on_event_time: bool,
    /// Some aggregation groups by a session window.
    pub session_window: bool,
    pub sort_after_aggregate: bool,
    /// The outermost join between two streams that is not inner (Spark allows those in append
    /// mode only), and whether there is an inner one (append or update).
    pub outer_stream_join: Option<JoinType>,
    pub inner_stream_join: bool,
}

fn provider(scan: &TableScan) -> Option<Arc<dyn TableProvider>> {
    source_as_provider(&scan.source).ok()
}

fn is<T: 'static>(scan: &TableScan) -> bool {
    provider(scan).is_some_and(|p| (p.as_ref() as &dyn Any).downcast_ref::<T>().is_some())
}

/// Whether `plan` reads a stream, through views too.
pub(crate) fn reads_stream(plan: &LogicalPlan) -> bool {
    plan.exists(|p| {
        Ok(match p {
            LogicalPlan::TableScan(scan) => {
                is::<StreamingTable>(scan)
                    || provider(scan).and_then(|p| p.get_logical_plan().map(|v| reads_stream(&v))).unwrap_or(false)
            }
            _ => false,
        })
    })
    .unwrap_or(false)
}

pub(crate) fn reads_batch(plan: &LogicalPlan) -> bool {
    plan.exists(|p| Ok(matches!(p, LogicalPlan::TableScan(scan) if is::<BatchTable>(scan)))).unwrap_or(false)
}

/// Plans a streaming DataFrame for micro-batch execution.
pub(crate) fn plan_stream(plan: LogicalPlan, partitions: usize) -> Result<StreamingPlan> {
    let plan = watermark::unmark_casts(inline_views(plan)?)?;
    let exact_partitions = partition_id::used_in(&plan);
    if exact_partitions {
        partition_id::check_stream(&plan)?;
    }
    let mut sources = Vec::new();
    let plan = plan
        .transform_up(|p| {
            let LogicalPlan::TableScan(scan) = &p else { return Ok(Transformed::no(p)) };
            let Some(stream) = provider(scan).filter(|p| (p.as_ref() as &dyn Any).is::<StreamingTable>()) else {
                return Ok(Transformed::no(p));
            };
            let spec =
                (stream.as_ref() as &dyn Any).downcast_ref::<StreamingTable>().expect("checked above").spec.clone();
            let mut table = BatchTable::new(spec.schema.clone(), partitions);
            if exact_partitions {
                table = table.exact_partitions();
            }
            sources.push((spec, table.clone()));
            let source = Arc::new(DefaultTableSource::new(Arc::new(table)));
            Ok(Transformed::yes(LogicalPlan::TableScan(TableScan { source, ..scan.clone() })))
        })?
        .data;
    // Each running query observes event time through its own watermark nodes.
    let mut watermarks = Vec::new();
    let plan = plan
        .transform_up(|p| {
            let Some(node) = watermark::WatermarkNode::of(&p) else { return Ok(Transformed::no(p)) };
            let node = node.with_fresh_stats();
            watermarks.push((node.stats.clone(), node.delay_ms));
            Ok(Transformed::yes(node.into_plan()))
        })?
        .data;
    if plan.exists(|p| {
        Ok(dedup::DeduplicateNode::of(p).is_some_and(|d| d.spec.within_watermark && d.spec.event_time.is_none()))
    })? {
        return Err(Error::Analysis(
            "dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark".into(),
        ));
    }
    let plan = distinct_as_aggregate(plan)?;
    check_supported(&plan)?;
    let facts = facts(&plan)?;
    let (output, operators) = operators::cut_operators(plan, partitions)?;
    Ok(StreamingPlan { sources, operators, output, facts, watermarks })
}

fn inline_views(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(plan
        .transform_up(|p| {
            let LogicalPlan::TableScan(scan) = &p else { return Ok(Transformed::no(p)) };
            let Some(view) = provider(scan).and_then(|t| t.get_logical_plan().map(|v| v.into_owned())) else {
                return Ok(Transformed::no(p));
            };
            let view = inline_views(view).map_err(datafusion::error::DataFusionError::from)?;
            let mut builder = LogicalPlanBuilder::from(view).alias(scan.table_name.clone())?;
            if let Some(projection) = &scan.projection {
                let schema = builder.schema().clone();
                let columns: Vec<Expr> =
                    projection.iter().map(|&i| Expr::Column(Column::from(schema.qualified_field(i)))).collect();
                builder = builder.project(columns)?;
            }
            Ok(Transformed::yes(builder.build()?))
        })?
        .data)
}

/// `distinct()` on a stream is an aggregation grouping by every column.
fn distinct_as_aggregate(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(plan
        .transform_up(|p| match p {
            LogicalPlan::Distinct(Distinct::All(input)) if reads_batch(&input) => {
                let keys: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
                Ok(Transformed::yes(
                    LogicalPlanBuilder::from(Arc::unwrap_or_clone(input))
                        .aggregate(keys, Vec::<Expr>::new())?
                        .build()?,
                ))
            }
            p => Ok(Transformed::no(p)),
        })?
        .data)
}

/// Spark's refusal of a join between a stream and a static DataFrame that it cannot run
/// (semantics appendix, §8): an outer join must keep the stream's unmatched rows, never the
/// static side's, which a stream could match at any later batch.
fn stream_static_join_problem(left_streams: bool, right_streams: bool, kind: JoinType) -> Option<String> {
    let message = match (left_streams, right_streams, kind) {
        (true, false, JoinType::Right) => {
            "RightOuter join with a streaming DataFrame/Dataset on the left and a static DataFrame/DataSet on the right not supported"
        }
        (true, false, JoinType::Full) => {
            "FullOuter joins with streaming DataFrames/Datasets on the left and a static DataFrame/Dataset on the right is not supported"
        }
        (true, false, JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark) => {
            "Right semi and anti joins with a streaming DataFrame/Dataset on the left are not supported"
        }
        (false, true, JoinType::Left) => {
            "LeftOuter join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported"
        }
        (false, true, JoinType::Full) => {
            "FullOuter joins with streaming DataFrames/Datasets on the right and a static DataFrame/Dataset on the left is not supported"
        }
        (false, true, JoinType::LeftSemi) => {
            "LeftSemi join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported"
        }
        (false, true, JoinType::LeftAnti | JoinType::LeftMark) => {
            "LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported"
        }
        _ => return None,
    };
    Some(message.into())
}

fn check_supported(plan: &LogicalPlan) -> Result<()> {
    let mut problem = None;
    plan.apply(|p| {
        let streaming = reads_batch(p);
        problem = match p {
            LogicalPlan::Window(_) if streaming => {
                Some("Non-time-based windows are not supported on streaming DataFrames/Datasets".to_string())
            }
            LogicalPlan::Join(join) if streaming => {
                let (left, right) = (reads_batch(&join.left), reads_batch(&join.right));
                stream_static_join_problem(left, right, join.join_type)
            }
            LogicalPlan::Distinct(_) if streaming => {
                Some("DISTINCT ON is not supported on streaming DataFrames".into())
            }
            _ => None,
        };
        Ok(if problem.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    problem.map_or(Ok(()), |p| Err(Error::Analysis(p)))
}

fn facts(plan: &LogicalPlan) -> Result<PlanFacts> {
    let aggregates = count_nodes(plan, |p| matches!(p, LogicalPlan::Aggregate(_)));
    // A sort is allowed only above the aggregation; find sorts below or without one.
    let mut sort_after_aggregate = false;
    let mut bad_sort = false;
    plan.apply(|p| {
        match p {
            LogicalPlan::Sort(_) if reads_batch(p) => {
                if count_nodes(p, |q| matches!(q, LogicalPlan::Aggregate(_))) > 0 {
                    sort_after_aggregate = true;
                } else {
                    bad_sort = true;
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if bad_sort {
        return Err(Error::Analysis(
            "Sorting is not supported on streaming DataFrames/Datasets, unless it is on aggregated DataFrame/Dataset in Complete output mode".into(),
        ));
    }
    let mut aggregate_on_event_time = true;
    let mut session_window = false;
    plan.apply(|p| {
        if let LogicalPlan::Aggregate(agg) = p
            && reads_batch(p)
        {
            let keys = &p.schema().fields()[..agg.group_expr.len()];
            aggregate_on_event_time &= keys.iter().any(|f| watermark::delay_of(f).is_some());
            session_window |= keys.iter().any(|f| is_session(f));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let (mut outer_stream_join, mut inner_stream_join) = (None, false);
    plan.apply(|p| {
        if let LogicalPlan::Join(j) = p
            && reads_batch(&j.left)
            && reads_batch(&j.right)
        {
            match j.join_type {
                JoinType::Inner => inner_stream_join = true,
                other => outer_stream_join = outer_stream_join.or(Some(other)),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(PlanFacts {
        aggregates,
        aggregate_on_event_time,
        session_window,
        sort_after_aggregate,
        outer_stream_join,
        inner_stream_join,
    })
}

/// Spark's output-mode rules for the query's shape (semantics appendix, §4 and §12).
pub(crate) fn check_output_mode(facts: PlanFacts, mode: OutputMode) -> Result<()> {
    let message = match (facts.aggregates, mode) {
        (0, OutputMode::Complete) => Some(
            "Complete output mode not supported when there are no streaming aggregations on streaming DataFrames/Datasets"
                .to_string(),
        ),
        // Spark's rules for joins of two streams: inner in append or update, the others in
        // append only (semantics appendix, §8).
        (_, OutputMode::Update | OutputMode::Complete) if facts.outer_stream_join.is_some() => {
            let name = match facts.outer_stream_join {
                Some(JoinType::Left) => "LeftOuter",
                Some(JoinType::Right) => "RightOuter",
                Some(JoinType::Full) => "FullOuter",
                Some(JoinType::LeftSemi) => "LeftSemi",
                _ => "Outer",
            };
            Some(format!(
                "{name} join between two streaming DataFrames/Datasets is not supported in {mode} output mode, only in Append output mode"
            ))
        }
        (_, OutputMode::Complete) if facts.inner_stream_join => Some(
            "Inner join between two streaming DataFrames/Datasets is not supported in Complete output mode, only in Append and Update output modes"
                .to_string(),
        ),
        // An aggregation in update or complete mode emits rows the watermark has passed; a
        // second aggregation above it would drop them as late.
        (2.., OutputMode::Update | OutputMode::Complete) => Some(
            "Detected pattern of possible 'correctness' issue due to global watermark. The query contains stateful operation which can emit rows older than the current watermark plus allowed late record delay, which are \"late rows\" in downstream stateful operations and these rows can be discarded. Several streaming aggregations in one query need append output mode"
                .to_string(),
        ),
        (1.., OutputMode::Append) if !facts.aggregate_on_event_time => Some(
            "Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark"
                .to_string(),
        ),
        (1.., OutputMode::Update) if facts.session_window => {
            Some("Update output mode not supported for session window on streaming DataFrames/DataSets".to_string())
        }
        _ if facts.sort_after_aggregate && mode != OutputMode::Complete => Some(
            "Sorting is not supported on streaming DataFrames/Datasets, unless it is on aggregated DataFrame/Dataset in Complete output mode"
                .to_string(),
        ),
        _ => None,
    };
    message.map_or(Ok(()), |m| Err(Error::Analysis(m)))
}

/// Whether `field` is a session window (Spark's `SessionWindow.marker`).
pub(crate) fn is_session(field: &arrow::datatypes::Field) -> bool {
    field.metadata().contains_key(crate::functions::session::SESSION_MARKER)
}

/// Streaming nodes matching `pred` in `plan`.
fn count_nodes(plan: &LogicalPlan, pred: impl Fn(&LogicalPlan) -> bool) -> usize {
    let mut n = 0;
    let _ = plan.apply(|p| {
        if pred(p) && reads_batch(p) {
            n += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    n
}
