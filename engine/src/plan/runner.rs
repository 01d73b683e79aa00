//! [`PlanRunner`]: plans and runs a DataFusion plan from synchronous code, on the session's
//! runtime. What the micro-batch loop and the operators run their plans with, without
//! reaching up to the session.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, collect_partitioned};

use crate::error::Result;

/// A DataFusion context and the runtime its futures run on.
#[derive(Clone)]
pub(crate) struct PlanRunner {
    pub ctx: SessionContext,
    pub runtime: tokio::runtime::Handle,
}

impl PlanRunner {
    /// The physical plan of `plan`, as it stands: no optimizer pass.
    pub(crate) fn physical(&self, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        let state = self.ctx.state();
        Ok(self.runtime.block_on(state.query_planner().create_physical_plan(plan, &state))?)
    }

    /// Every row of `plan`, partition by partition in order, so a batch's rows come out in the
    /// same order on every run.
    pub(crate) fn collect(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Vec<RecordBatch>> {
        let partitions = self.runtime.block_on(collect_partitioned(plan, self.ctx.task_ctx()))?;
        Ok(partitions.into_iter().flatten().collect())
    }

    /// Optimizes `plan`, plans it and runs it.
    pub(crate) fn run_optimized(&self, plan: &LogicalPlan) -> Result<Vec<RecordBatch>> {
        let state = self.ctx.state();
        let physical = self.runtime.block_on(state.create_physical_plan(plan))?;
        self.collect(physical)
    }
}
