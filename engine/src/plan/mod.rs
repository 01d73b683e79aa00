//! From a DataFrame's logical plan to a plan the micro-batch loop can run.
//!
//! ```text
//!   DataFrame plan                         StreamingPlan
//!   ──────────────                         ─────────────
//!   Sort                                   above:      Sort
//!    Aggregate(event_type; count)    ==>                Projection  <- scan of `output`
//!     Filter                               aggregate:  Aggregate(event_type; count)
//!      TableScan(StreamingTable)                        Filter
//!                                                        TableScan(BatchTable)   <- source rows
//! ```
//!
//! Views are inlined, every streaming scan becomes a [`BatchTable`] the loop fills per batch,
//! and a streaming aggregation is cut out so the [`crate::operator::aggregate`] operator can
//! fold each batch into its state; what stands above it runs over the operator's output.
//! Query shapes Spark refuses are refused here, naming the operator.

pub(crate) mod dedup;
pub(crate) mod late;
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

use self::tables::{BatchTable, StreamingTable};
use crate::error::{Error, Result};
use crate::source::SourceSpec;

/// A query plan ready for micro-batches.
pub(crate) struct StreamingPlan {
    /// Each streaming source, with the table its batch rows go into.
    pub sources: Vec<(Arc<SourceSpec>, BatchTable)>,
    /// The streaming aggregation, when there is one.
    pub aggregate: Option<AggregatePart>,
    /// The plan whose result goes to the sink: the whole query when stateless; otherwise what
    /// stands above the aggregation, reading its output from `aggregate.output`.
    pub output: LogicalPlan,
    /// Facts that output-mode validation needs.
    pub facts: PlanFacts,
    /// Each `with_watermark` node, in plan order: what it observes per batch, and its delay.
    pub watermarks: Vec<(watermark::StatsCell, i64)>,
    /// Each deduplication, top down: its spec, input columns, and the cell its state goes in.
    pub dedups: Vec<DedupPart>,
}

/// A deduplication in a running query's plan.
pub(crate) struct DedupPart {
    pub spec: crate::operator::dedup::DedupSpec,
    pub input: arrow::datatypes::SchemaRef,
    pub cell: crate::operator::dedup::DedupCell,
}

/// A streaming aggregation, cut out of the plan.
pub(crate) struct AggregatePart {
    /// The `Aggregate` node over this batch's input rows.
    pub plan: LogicalPlan,
    /// Where the operator's emitted rows go for the plan above it.
    pub output: BatchTable,
    /// For session windows: the filter that drops late input rows before aggregating.
    pub late: Option<late::LateCell>,
    /// How to list the input rows it drops as late, when it drops any.
    pub late_rows: Option<late::LateRowsPlan>,
}

/// What the output-mode rules look at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PlanFacts {
    pub has_aggregate: bool,
    /// The aggregation groups by the watermark column or a window of it.
    pub aggregate_on_event_time: bool,
    /// The aggregation groups by a session window.
    pub session_window: bool,
    pub sort_after_aggregate: bool,
}

const AGGREGATE_OUTPUT: &str = "__brooklet_aggregate";

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

fn reads_batch(plan: &LogicalPlan) -> bool {
    plan.exists(|p| Ok(matches!(p, LogicalPlan::TableScan(scan) if is::<BatchTable>(scan)))).unwrap_or(false)
}

/// Plans a streaming DataFrame for micro-batch execution.
pub(crate) fn plan_stream(plan: LogicalPlan, partitions: usize) -> Result<StreamingPlan> {
    let plan = inline_views(plan)?;
    let mut sources = Vec::new();
    let plan = plan
        .transform_up(|p| {
            let LogicalPlan::TableScan(scan) = &p else { return Ok(Transformed::no(p)) };
            let Some(stream) = provider(scan).filter(|p| (p.as_ref() as &dyn Any).is::<StreamingTable>()) else {
                return Ok(Transformed::no(p));
            };
            let spec =
                (stream.as_ref() as &dyn Any).downcast_ref::<StreamingTable>().expect("checked above").spec.clone();
            let table = BatchTable::new(spec.schema.clone(), partitions);
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
    // Each running query keeps its own deduplication state.
    let mut dedups = Vec::new();
    let plan = plan
        .transform_down(|p| {
            let Some(node) = dedup::DeduplicateNode::of(&p) else { return Ok(Transformed::no(p)) };
            let node = node.with_fresh_state();
            let input = Arc::new(node.input.schema().as_arrow().clone());
            dedups.push(DedupPart { spec: node.spec.clone(), input, cell: node.cell.clone() });
            Ok(Transformed::yes(node.into_plan()))
        })?
        .data;
    let plan = distinct_as_aggregate(plan)?;
    check_supported(&plan)?;
    let facts = facts(&plan)?;

    let mut aggregate = None;
    let output_table = |schema: &datafusion::common::DFSchema| {
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| arrow::datatypes::Field::new(format!("__agg_{i}"), f.data_type().clone(), true))
            .collect();
        BatchTable::new(Arc::new(arrow::datatypes::Schema::new(fields)), 1)
    };
    let output = plan
        .transform_down(|p| {
            if !matches!(p, LogicalPlan::Aggregate(_)) || !reads_batch(&p) {
                return Ok(Transformed::no(p));
            }
            let table = output_table(p.schema());
            let scan = LogicalPlanBuilder::scan(
                AGGREGATE_OUTPUT,
                Arc::new(DefaultTableSource::new(Arc::new(table.clone()))),
                None,
            )?;
            let columns: Vec<Expr> = p
                .schema()
                .iter()
                .enumerate()
                .map(|(i, (qualifier, field))| {
                    Expr::Column(Column::new(Some(AGGREGATE_OUTPUT), format!("__agg_{i}")))
                        .alias_qualified(qualifier.cloned(), field.name())
                })
                .collect();
            let replacement = scan.project(columns)?.build()?;
            let late_rows = match &p {
                LogicalPlan::Aggregate(agg) => late::LateRowsPlan::of(agg),
                _ => None,
            };
            let (plan, late) = filter_late_sessions(p)?;
            aggregate = Some(AggregatePart { plan, output: table, late, late_rows });
            Ok(Transformed::new(replacement, true, TreeNodeRecursion::Jump))
        })?
        .data;
    Ok(StreamingPlan { sources, aggregate, output, facts, watermarks, dedups })
}

/// A session-window aggregation judges lateness per input row, before aggregating: its input
/// gets a late-row filter the operator drives (`late.rs`).
fn filter_late_sessions(plan: LogicalPlan) -> datafusion::error::Result<(LogicalPlan, Option<late::LateCell>)> {
    let LogicalPlan::Aggregate(agg) = plan else { return Ok((plan, None)) };
    let keys = agg.group_expr.len();
    if !agg.schema.fields().iter().take(keys).any(|f| is_session(f)) {
        return Ok((LogicalPlan::Aggregate(agg), None));
    }
    let end = datafusion::functions::core::expr_fn::get_field(datafusion::prelude::col(windows::SESSION_COLUMN), "end");
    let (predicate, cell) = late::not_late(end);
    let input = LogicalPlanBuilder::from(Arc::unwrap_or_clone(agg.input)).filter(predicate)?.build()?;
    let aggregate = datafusion::logical_expr::Aggregate::try_new(Arc::new(input), agg.group_expr, agg.aggr_expr)?;
    Ok((LogicalPlan::Aggregate(aggregate), Some(cell)))
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
                match (left, right, join.join_type) {
                    (true, true, _) => Some("stream-stream joins are not supported yet (planned with event-time joins)".into()),
                    (true, false, JoinType::Right | JoinType::Full | JoinType::RightSemi | JoinType::RightAnti) => {
                        Some(format!("{} join with a streaming DataFrame on the left and a static DataFrame on the right is not supported", join.join_type))
                    }
                    (false, true, JoinType::Left | JoinType::Full | JoinType::LeftSemi | JoinType::LeftAnti) => {
                        Some(format!("{} join with a static DataFrame on the left and a streaming DataFrame on the right is not supported", join.join_type))
                    }
                    _ => None,
                }
            }
            LogicalPlan::Distinct(_) if streaming => Some("DISTINCT ON is not supported on streaming DataFrames".into()),
            _ => None,
        };
        Ok(if problem.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    problem.map_or(Ok(()), |p| Err(Error::Analysis(p)))
}

fn facts(plan: &LogicalPlan) -> Result<PlanFacts> {
    let aggregates = count_nodes(plan, |p| matches!(p, LogicalPlan::Aggregate(_)));
    if aggregates > 1 {
        return Err(Error::Analysis(
            "Multiple streaming aggregations are not supported with streaming DataFrames/Datasets".into(),
        ));
    }
    // A sort is allowed only above the aggregation; find sorts below or without one.
    let mut sort_after_aggregate = false;
    let mut bad_sort = false;
    plan.apply(|p| {
        match p {
            LogicalPlan::Sort(_) if reads_batch(p) => {
                if count_nodes(p, |q| matches!(q, LogicalPlan::Aggregate(_))) == 1 {
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
    let mut aggregate_on_event_time = false;
    let mut session_window = false;
    plan.apply(|p| {
        if let LogicalPlan::Aggregate(agg) = p
            && reads_batch(p)
        {
            let keys = agg.group_expr.len();
            aggregate_on_event_time = p.schema().fields().iter().take(keys).any(|f| watermark::delay_of(f).is_some());
            session_window = p.schema().fields().iter().take(keys).any(|f| is_session(f));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(PlanFacts { has_aggregate: aggregates == 1, aggregate_on_event_time, session_window, sort_after_aggregate })
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
