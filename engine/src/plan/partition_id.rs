//! Where `spark_partition_id()` gets its value: each partition's own number, put in place of
//! the call when that partition runs (semantics appendix, §10).
//!
//! ```text
//!   ProjectionExec [value, spark_partition_id()]      PerPartitionExec
//!     RepartitionExec (round robin)           ──▶        ProjectionExec [value, <partition>]
//!       DataSourceExec: the source's partitions            DataSourceExec: the source's partitions
//! ```
//!
//! Spark numbers a row by the task that evaluates it: the input partition it was read in,
//! until a shuffle (an aggregation, a join, a sort) moves rows to partitions of its own. So
//! the call is answered in a projection or a filter that sits on the source's partitions
//! through only projections, filters and watermarks; the round-robin repartitioning
//! DataFusion adds for parallelism there is taken out again, since it would renumber the
//! rows. Anywhere else the call is refused (`WHERE_IT_WORKS`), where Spark would number
//! partitions Brooklet does not have.

use std::fmt;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, replace_children_if_necessary,
};

use crate::error::{Error, Result};
use crate::functions::partition_id::NAME;
pub(crate) use crate::functions::partition_id::WHERE_IT_WORKS;

/// Whether `expr` calls `spark_partition_id()`.
fn calls_it(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if f.name() == NAME))).unwrap_or(false)
}

/// Whether `plan` calls `spark_partition_id()` anywhere.
pub(crate) fn used_in(plan: &LogicalPlan) -> bool {
    plan.exists(|p| Ok(p.expressions().iter().any(calls_it))).unwrap_or(false)
}

/// The streaming check, made before the plan is cut at its stateful operators: every call sits
/// on the source's rows through projections, filters and watermarks only.
pub(crate) fn check_stream(plan: &LogicalPlan) -> Result<()> {
    let mut problem = None;
    plan.apply(|p| {
        if !p.expressions().iter().any(calls_it) {
            return Ok(TreeNodeRecursion::Continue);
        }
        for input in p.inputs() {
            input.apply(|below| {
                let narrow = match below {
                    LogicalPlan::Projection(_)
                    | LogicalPlan::Filter(_)
                    | LogicalPlan::SubqueryAlias(_)
                    | LogicalPlan::TableScan(_) => true,
                    LogicalPlan::Extension(e) => e.node.name() == "WatermarkNode",
                    _ => false,
                };
                if !narrow {
                    problem = Some(below.display().to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if problem.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    match problem {
        None => Ok(()),
        Some(node) => Err(Error::Analysis(format!("{WHERE_IT_WORKS}; here it is above {node}"))),
    }
}

fn is_call(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.downcast_ref::<ScalarFunctionExpr>().is_some_and(|f| f.name() == NAME)
}

fn calls_in(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.exists(|e| Ok(is_call(e))).unwrap_or(false)
}

/// Whether `node` evaluates `spark_partition_id()` itself (not only below it).
fn evaluates_it(node: &Arc<dyn ExecutionPlan>) -> bool {
    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        return p.expr().iter().any(|e| calls_in(&e.expr));
    }
    if let Some(f) = node.downcast_ref::<FilterExec>() {
        return calls_in(f.predicate());
    }
    false
}

/// `node`'s input with DataFusion's round-robin repartitioning taken out, or an error if
/// something below renumbers the rows' partitions.
fn on_source_partitions(node: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    if let Some(r) = node.downcast_ref::<RepartitionExec>()
        && matches!(r.partitioning(), Partitioning::RoundRobinBatch(_))
    {
        return on_source_partitions(r.input().clone());
    }
    let narrow = matches!(
        node.name(),
        "ProjectionExec"
            | "FilterExec"
            | "CoalesceBatchesExec"
            | "CooperativeExec"
            | "WatermarkExec"
            | "PerPartitionExec"
            | "DataSourceExec"
            | "EmptyExec"
            | "PlaceholderRowExec"
    );
    if !narrow {
        return Err(DataFusionError::Plan(format!("{WHERE_IT_WORKS}; here it is above {}", node.name())));
    }
    let children: Vec<_> = node.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(node);
    }
    let children = children.into_iter().map(on_source_partitions).collect::<DfResult<Vec<_>>>()?;
    replace_children_if_necessary(node, children)
}

/// The physical rule: wraps every node that evaluates `spark_partition_id()` in a
/// [`PerPartitionExec`].
#[derive(Debug, Default)]
pub(crate) struct PartitionIdRule;

impl PhysicalOptimizerRule for PartitionIdRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = plan
            .transform_up(|node| {
                if !evaluates_it(&node) {
                    return Ok(Transformed::no(node));
                }
                let children: Vec<_> = node.children().into_iter().cloned().collect();
                let children = children.into_iter().map(on_source_partitions).collect::<DfResult<Vec<_>>>()?;
                let node = replace_children_if_necessary(node, children)?;
                Ok(Transformed::yes(Arc::new(PerPartitionExec { template: node }) as Arc<dyn ExecutionPlan>))
            })?
            .data;
        // A union numbers its partitions after one another: a call below it would see its
        // branch's numbers, where Spark's tasks see the union's.
        let mut under_union = false;
        plan.apply(|node| {
            if node.name() == "UnionExec" {
                under_union |= node.exists(|n| Ok(n.name() == "PerPartitionExec"))?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if under_union {
            return Err(DataFusionError::Plan(format!("{WHERE_IT_WORKS}; here it is below a union: call it after")));
        }
        Ok(plan)
    }

    fn name(&self) -> &str {
        "spark_partition_id"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A projection or filter that evaluates `spark_partition_id()`: each partition runs a copy
/// with the partition's number in place of the call.
#[derive(Debug)]
struct PerPartitionExec {
    template: Arc<dyn ExecutionPlan>,
}

impl PerPartitionExec {
    /// The template with `partition` in place of every call.
    fn numbered(&self, partition: usize) -> DfResult<Arc<dyn ExecutionPlan>> {
        let number: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(ScalarValue::Int32(Some(partition as i32))));
        let put = |e: &Arc<dyn PhysicalExpr>| {
            e.clone().transform(|e| Ok(if is_call(&e) { Transformed::yes(number.clone()) } else { Transformed::no(e) }))
        };
        let node = &self.template;
        if let Some(p) = node.downcast_ref::<ProjectionExec>() {
            let exprs = p
                .expr()
                .iter()
                .map(|e| Ok(ProjectionExpr { expr: put(&e.expr)?.data, alias: e.alias.clone() }))
                .collect::<DfResult<Vec<_>>>()?;
            return Ok(Arc::new(ProjectionExec::try_new(exprs, p.input().clone())?));
        }
        if let Some(f) = node.downcast_ref::<FilterExec>() {
            let filter = FilterExecBuilder::from(f).with_predicate(put(f.predicate())?.data).build()?;
            return Ok(Arc::new(filter));
        }
        Err(DataFusionError::Internal(format!("PerPartitionExec over {}", self.template.name())))
    }
}

impl DisplayAs for PerPartitionExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PerPartitionExec: {} with spark_partition_id() numbered", self.template.name())
    }
}

impl ExecutionPlan for PerPartitionExec {
    fn name(&self) -> &str {
        "PerPartitionExec"
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        self.template.apply_expressions(f)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.template.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.template.children()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PerPartitionExec { template: replace_children_if_necessary(self.template.clone(), children)? }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        self.numbered(partition)?.execute(partition, context)
    }
}
