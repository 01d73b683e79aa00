//! `drop_duplicates(cols)` / `drop_duplicates_within_watermark(cols)`: Spark's `Deduplicate`
//! and `DeduplicateWithinWatermark`, as a DataFusion extension node.
//!
//! ```text
//!   logical:   DeduplicateNode(keys)        same columns as its input
//!   physical:  DeduplicateExec              one output partition: the input's partitions are
//!                                           read in order, so the first row in input order wins
//! ```
//!
//! The node holds no state. On a static DataFrame each run of the `Exec` starts with no keys
//! and keeps the first row of each. A running query never plans this node: the planner cuts it
//! out of the plan ([`super::operators`]) and [`crate::operator::dedup`] deduplicates the rows
//! between batches, with its keys in versioned state.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DFSchemaRef};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::{StreamExt, TryStreamExt};

use super::watermark::delay_of;
use crate::error::{Error, Result};
use crate::state::keys::KeyStore;

/// How keys leave state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Eviction {
    /// Never: the keys do not include event time.
    Never,
    /// When the watermark passes the key's event time (the key column at this position).
    KeyTime(usize),
    /// When the watermark passes the first event time plus the delay (within watermark).
    Expiry { delay_us: i64 },
}

/// What one deduplication does, resolved against its input's columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DedupSpec {
    /// Input columns that make the key.
    pub keys: Vec<usize>,
    /// The input's event-time column, when it has one.
    pub event_time: Option<usize>,
    pub eviction: Eviction,
    pub within_watermark: bool,
}

/// `Deduplicate(keys)` over `input`.
#[derive(Debug, Clone)]
pub(crate) struct DeduplicateNode {
    pub input: LogicalPlan,
    pub spec: DedupSpec,
    /// The keys, by name, for EXPLAIN.
    key_names: Vec<String>,
}

impl DeduplicateNode {
    /// Resolves `keys` (every column when empty, as Spark's `dropDuplicates()`) against `input`.
    pub(crate) fn try_new(input: LogicalPlan, keys: &[&str], within_watermark: bool) -> Result<Self> {
        let schema = input.schema();
        let operator = if within_watermark { "drop_duplicates_within_watermark" } else { "drop_duplicates" };
        let keys: Vec<usize> = if keys.is_empty() {
            (0..schema.fields().len()).collect()
        } else {
            keys.iter()
                .map(|k| {
                    schema.index_of_column_by_name(None, k).ok_or_else(|| {
                        Error::Analysis(format!(
                            "{operator}: cannot resolve column name \"{k}\" among ({})",
                            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        let event_time = schema.fields().iter().position(|f| delay_of(f).is_some());
        let eviction = match event_time {
            Some(t) if within_watermark => {
                Eviction::Expiry { delay_us: delay_of(schema.field(t)).unwrap_or_default() * 1_000 }
            }
            Some(t) => keys.iter().position(|&k| k == t).map_or(Eviction::Never, Eviction::KeyTime),
            None => Eviction::Never,
        };
        let key_names = keys.iter().map(|&k| schema.field(k).name().clone()).collect();
        let spec = DedupSpec { keys, event_time, eviction, within_watermark };
        Ok(DeduplicateNode { input, spec, key_names })
    }

    pub(crate) fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension { node: Arc::new(self) })
    }

    /// The node behind `plan`, when `plan` is one.
    pub(crate) fn of(plan: &LogicalPlan) -> Option<&DeduplicateNode> {
        match plan {
            LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<DeduplicateNode>(),
            _ => None,
        }
    }
}

impl PartialEq for DeduplicateNode {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.spec == other.spec
    }
}

impl Eq for DeduplicateNode {}

impl PartialOrd for DeduplicateNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.key_names.partial_cmp(&other.key_names)
    }
}

impl Hash for DeduplicateNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.spec.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for DeduplicateNode {
    fn name(&self) -> &str {
        if self.spec.within_watermark { "DeduplicateWithinWatermark" } else { "Deduplicate" }
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: [{}]", UserDefinedLogicalNodeCore::name(self), self.key_names.join(", "))
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Internal("Deduplicate needs an input".into()))?;
        Ok(DeduplicateNode { input, ..self.clone() })
    }

    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        // Filtering before deduplicating keeps different rows: keep filters above.
        self.input.schema().columns().iter().map(Column::flat_name).chain(self.key_names.iter().cloned()).collect()
    }
}

/// Lets through the first row of each key, in input order (a static run: no watermark, no
/// state kept after the run).
#[derive(Debug)]
pub(crate) struct DeduplicateExec {
    input: Arc<dyn ExecutionPlan>,
    spec: DedupSpec,
    properties: Arc<PlanProperties>,
}

impl DeduplicateExec {
    fn new(input: Arc<dyn ExecutionPlan>, spec: DedupSpec) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        DeduplicateExec { input, spec, properties }
    }
}

impl DisplayAs for DeduplicateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeduplicateExec: keys={:?}, eviction={:?}", self.spec.keys, self.spec.eviction)
    }
}

impl ExecutionPlan for DeduplicateExec {
    fn name(&self) -> &str {
        "DeduplicateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
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

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| DataFusionError::Internal("DeduplicateExec needs an input".into()))?;
        Ok(Arc::new(DeduplicateExec::new(input, self.spec.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("DeduplicateExec has one partition, not {partition}")));
        }
        let schema = self.input.schema();
        let fields = self.spec.keys.iter().map(|&i| Arc::new(schema.field(i).clone())).collect();
        let mut keys = KeyStore::try_new(fields, None, Default::default())?;
        let key_columns = self.spec.keys.clone();
        let input = self.input.clone();
        let partitions = input.output_partitioning().partition_count();
        let rows = futures::stream::iter((0..partitions).map(move |p| input.execute(p, context.clone())))
            .try_flatten()
            .map(move |batch| {
                let batch = batch?;
                let columns: Vec<_> = key_columns.iter().map(|&i| batch.column(i).clone()).collect();
                let new: BooleanArray = keys
                    .keys(&columns)?
                    .into_iter()
                    .map(|key| {
                        let first = !keys.contains(&key);
                        if first {
                            keys.insert(key, None)?;
                        }
                        Ok(Some(first))
                    })
                    .collect::<crate::error::Result<_>>()?;
                Ok(filter_record_batch(&batch, &new)?)
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), rows)))
    }
}

/// Plans [`DeduplicateNode`]s into [`DeduplicateExec`]s.
#[derive(Debug)]
pub(crate) struct DedupPlanner;

#[async_trait]
impl ExtensionPlanner for DedupPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<DeduplicateNode>() else { return Ok(None) };
        Ok(Some(Arc::new(DeduplicateExec::new(physical_inputs[0].clone(), node.spec.clone()))))
    }
}
