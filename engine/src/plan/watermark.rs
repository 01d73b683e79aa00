//! `with_watermark(column, delay)`: Spark's `EventTimeWatermark`, as a DataFusion extension
//! node.
//!
//! ```text
//!   logical:   WatermarkNode(timestamp, 10 minutes)     the column gets `spark.watermarkDelayMs`
//!   physical:  WatermarkExec                            rows pass through untouched; the max,
//!                                                       min and mean event time are observed
//! ```
//!
//! The node drops nothing. The micro-batch loop reads what each node observed after a batch
//! and moves the watermark (`execution/watermark.rs`); stateful operators recognise their
//! event-time key by the metadata the node puts on the column (and that `window()` carries over
//! to the window it makes), as Spark does.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, TimeUnit};
use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DFSchema, DFSchemaRef};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;

use crate::error::{Error, Result};

pub use crate::functions::DELAY_KEY;

/// The event time observed in one batch by one watermark node, in milliseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct EventTimeStats {
    pub max: i64,
    pub min: i64,
    pub sum: f64,
    pub count: u64,
}

impl EventTimeStats {
    fn add(&mut self, ms: i64) {
        if self.count == 0 {
            (self.max, self.min) = (ms, ms);
        } else {
            self.max = self.max.max(ms);
            self.min = self.min.min(ms);
        }
        self.sum += ms as f64;
        self.count += 1;
    }

    /// Both observations together (Spark's `EventTimeStats.merge`).
    pub(crate) fn merge(&mut self, other: &EventTimeStats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        self.max = self.max.max(other.max);
        self.min = self.min.min(other.min);
        self.sum += other.sum;
        self.count += other.count;
    }

    pub(crate) fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Where one node's observations go; shared by the node, its physical plan and the loop.
pub(crate) type StatsCell = Arc<Mutex<EventTimeStats>>;

/// `EventTimeWatermark(column, delay)` over `input`.
#[derive(Debug, Clone)]
pub(crate) struct WatermarkNode {
    pub input: LogicalPlan,
    pub column: Column,
    pub delay_ms: i64,
    schema: DFSchemaRef,
    pub stats: StatsCell,
}

impl WatermarkNode {
    /// Checks that `column` is a timestamp of `input` and marks it as the event time.
    pub(crate) fn try_new(input: LogicalPlan, column: &str, delay_ms: i64) -> Result<Self> {
        let column = input.schema().qualified_field_with_unqualified_name(column).map(Column::from).map_err(|_| {
            Error::Analysis(format!(
                "with_watermark: cannot resolve column '{column}' among [{}]",
                input.schema().field_names().join(", ")
            ))
        })?;
        let (_, field) = input.schema().qualified_field_from_column(&column)?;
        if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
            return Err(Error::Analysis(format!(
                "Event time must be defined on a window or a timestamp, but {} is of type {}",
                column.name,
                crate::ddl::spark_type_name(field.data_type())
            )));
        }
        if delay_ms < 0 {
            return Err(Error::Analysis(format!("with_watermark: the delay must not be negative, got {delay_ms} ms")));
        }
        let schema = marked_schema(input.schema(), &column, delay_ms)?;
        Ok(WatermarkNode { input, column, delay_ms, schema, stats: StatsCell::default() })
    }

    /// The same node with its own, fresh observations (one per running query).
    pub(crate) fn with_fresh_stats(&self) -> Self {
        WatermarkNode { stats: StatsCell::default(), ..self.clone() }
    }

    pub(crate) fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension { node: Arc::new(self) })
    }

    /// The node behind `plan`, when `plan` is one.
    pub(crate) fn of(plan: &LogicalPlan) -> Option<&WatermarkNode> {
        match plan {
            LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<WatermarkNode>(),
            _ => None,
        }
    }
}

/// `input`'s schema with the event-time metadata on `column` only (a newer watermark replaces
/// an older one, as in Spark).
fn marked_schema(input: &DFSchema, column: &Column, delay_ms: i64) -> Result<DFSchemaRef> {
    let fields: Vec<_> = input
        .iter()
        .map(|(qualifier, field)| {
            let mut metadata: HashMap<String, String> = field.metadata().clone();
            metadata.remove(DELAY_KEY);
            if field.name() == &column.name && qualifier == column.relation.as_ref() {
                metadata.insert(DELAY_KEY.to_string(), delay_ms.to_string());
            }
            (qualifier.cloned(), Arc::new(Field::clone(field).with_metadata(metadata)))
        })
        .collect();
    Ok(Arc::new(
        DFSchema::new_with_metadata(fields, input.metadata().clone())?
            .with_functional_dependencies(input.functional_dependencies().clone())?,
    ))
}

impl PartialEq for WatermarkNode {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.column == other.column && self.delay_ms == other.delay_ms
    }
}

impl Eq for WatermarkNode {}

impl PartialOrd for WatermarkNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.column.partial_cmp(&other.column)? {
            Ordering::Equal => self.delay_ms.partial_cmp(&other.delay_ms),
            o => Some(o),
        }
    }
}

impl Hash for WatermarkNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.column.hash(state);
        self.delay_ms.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for WatermarkNode {
    fn name(&self) -> &str {
        "EventTimeWatermark"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "EventTimeWatermark: {}, {} ms", self.column, self.delay_ms)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let input =
            inputs.pop().ok_or_else(|| DataFusionError::Internal("EventTimeWatermark needs an input".into()))?;
        let schema = marked_schema(input.schema(), &self.column, self.delay_ms).map_err(DataFusionError::from)?;
        Ok(WatermarkNode { input, schema, ..self.clone() })
    }

    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        // A filter below the watermark would change what it observes: keep filters above.
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }
}

/// Passes rows through, observing the event-time column.
#[derive(Debug)]
pub(crate) struct WatermarkExec {
    input: Arc<dyn ExecutionPlan>,
    column: usize,
    stats: StatsCell,
}

impl DisplayAs for WatermarkExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "EventTimeWatermarkExec: column={}", self.column)
    }
}

impl ExecutionPlan for WatermarkExec {
    fn name(&self) -> &str {
        "EventTimeWatermarkExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input =
            children.pop().ok_or_else(|| DataFusionError::Internal("EventTimeWatermarkExec needs an input".into()))?;
        Ok(Arc::new(WatermarkExec { input, column: self.column, stats: self.stats.clone() }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (column, stats) = (self.column, self.stats.clone());
        let schema = input.schema();
        let observed = input.map(move |batch| {
            let batch = batch?;
            observe(&batch, column, &stats)?;
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, observed)))
    }
}

/// Adds the batch's event times (milliseconds, as Spark truncates them) to `stats`.
fn observe(batch: &RecordBatch, column: usize, stats: &StatsCell) -> DfResult<()> {
    let array = batch.column(column);
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return Err(DataFusionError::Internal(format!("event time column is {}", array.data_type())));
    };
    let to_ms = |v: i64| match unit {
        TimeUnit::Second => v * 1_000,
        TimeUnit::Millisecond => v,
        TimeUnit::Microsecond => v.div_euclid(1_000),
        TimeUnit::Nanosecond => v.div_euclid(1_000_000),
    };
    let values = arrow::compute::cast(array, &DataType::Int64)?;
    let values = values.as_primitive::<arrow::datatypes::Int64Type>();
    let mut local = EventTimeStats::default();
    for v in values.iter().flatten() {
        local.add(to_ms(v));
    }
    stats.lock().expect("event time stats lock poisoned").merge(&local);
    Ok(())
}

/// Plans [`WatermarkNode`]s into [`WatermarkExec`]s.
#[derive(Debug)]
struct WatermarkPlanner;

#[async_trait]
impl ExtensionPlanner for WatermarkPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<WatermarkNode>() else { return Ok(None) };
        let input = physical_inputs[0].clone();
        let column = node.input.schema().index_of_column(&node.column)?;
        Ok(Some(Arc::new(WatermarkExec { input, column, stats: node.stats.clone() })))
    }
}

/// DataFusion's planner, plus Brooklet's own nodes.
#[derive(Debug)]
pub(crate) struct BrookletQueryPlanner;

#[async_trait]
impl datafusion::execution::context::QueryPlanner for BrookletQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn datafusion::catalog::Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(WatermarkPlanner),
            Arc::new(super::dedup::DedupPlanner),
        ])
        .create_physical_plan(logical_plan, session_state)
        .await
    }
}

/// Takes the watermark mark off every cast of a marked column in a projection or a grouping
/// (`functions/unmarked.rs`): in Spark only the column itself is event time.
pub(crate) fn unmark_casts(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    let plan = plan.transform_up(|p| {
        if !matches!(p, LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_)) {
            return Ok(Transformed::no(p));
        }
        let input = p.inputs()[0].schema().clone();
        let changed = p.map_expressions(|e| unmark(e, &input))?;
        if !changed.transformed {
            return Ok(changed);
        }
        changed.map_data(|p| p.recompute_schema())
    })?;
    if !plan.transformed {
        return Ok(plan.data);
    }
    // The nodes above a changed one still hold the marked fields in their schemas.
    Ok(plan.data.transform_up(|p| Ok(Transformed::yes(p.recompute_schema()?)))?.data)
}

fn unmark(e: Expr, input: &DFSchema) -> DfResult<datafusion::common::tree_node::Transformed<Expr>> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::ExprSchemable;
    let marked = |e: &Expr| e.to_field(input).is_ok_and(|(_, f)| f.metadata().contains_key(DELAY_KEY));
    let wrap = |e: Expr| Arc::new(crate::functions::unmarked::Unmarked::udf()).call(vec![e]);
    match e {
        Expr::Alias(alias) if matches!(*alias.expr, Expr::Cast(_) | Expr::TryCast(_)) && marked(&alias.expr) => {
            let datafusion::logical_expr::expr::Alias { expr, relation, name, metadata } = alias;
            Ok(Transformed::yes(Expr::Alias(datafusion::logical_expr::expr::Alias {
                expr: Box::new(wrap(*expr)),
                relation,
                name,
                metadata,
            })))
        }
        Expr::Cast(_) | Expr::TryCast(_) if marked(&e) => {
            let name = e.schema_name().to_string();
            Ok(Transformed::yes(wrap(e).alias(name)))
        }
        e => Ok(Transformed::no(e)),
    }
}

/// The watermark column of `field`, when it carries one: its delay.
pub(crate) fn delay_of(field: &Field) -> Option<i64> {
    field.metadata().get(DELAY_KEY).and_then(|d| d.parse().ok())
}
