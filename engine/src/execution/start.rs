//! Query assembly: from a planned query, its checkpoint and its sink to a running query
//! thread. Sources and operators are built in plan order, the checkpoint says where to resume
//! (`checkpoint/recovery.rs`), every operator restores the last committed version of
//! its state, and the watermarks come back as the uninterrupted query had them.

use std::sync::{Arc, Mutex};

use datafusion::logical_expr::LogicalPlan;

use super::query::{QueryShared, StreamingQuery};
use super::trigger::Trigger;
use super::watermark::{MULTIPLE_WATERMARK_POLICY, WatermarkPolicy, WatermarkTracker};
use super::{MicroBatchExecution, OperatorStage, QueryEnv};
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::operator::{self, OperatorContext};
use crate::output_mode::OutputMode;
use crate::plan::StreamingPlan;
use crate::sink::Sink;
use crate::source::SourceContext;

/// Everything about a query that is not its plan.
pub(crate) struct QuerySpec {
    pub id: uuid::Uuid,
    pub name: Option<String>,
    pub mode: OutputMode,
    pub trigger: Trigger,
    pub checkpoint: Checkpoint,
    /// Delete the checkpoint when the query stops cleanly (no `checkpointLocation` given).
    pub temporary_checkpoint: bool,
    pub sink: Box<dyn Sink>,
    /// Where rows dropped as late go, when the query asked for them.
    pub late_rows: Option<Box<dyn Sink>>,
}

/// Builds the query and starts its thread. `output` is `plan.output`, optimized.
pub(crate) fn start(
    env: QueryEnv,
    plan: StreamingPlan,
    output: LogicalPlan,
    spec: QuerySpec,
) -> Result<StreamingQuery> {
    let QuerySpec { id, name, mode, trigger, checkpoint, temporary_checkpoint, sink, late_rows } = spec;
    let shared = Arc::new(QueryShared::new(id, name));
    let parallelism = env.runner.ctx.state().config().target_partitions();
    let mut sources = plan
        .sources
        .iter()
        .enumerate()
        .map(|(i, (spec, _))| {
            spec.create(SourceContext { dir: checkpoint.source_dir(i), clock: env.clock.clone(), parallelism })
        })
        .collect::<Result<Vec<_>>>()?;
    for source in &mut sources {
        let query = Arc::downgrade(&shared);
        source.set_waker(Arc::new(move || query.upgrade().map(|q| q.wake()).is_some()));
    }
    let source_tables = plan.sources.iter().map(|(_, t)| t.clone()).collect();
    let df_state = env.runner.ctx.state();
    let mut operators = plan
        .operators
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let context = OperatorContext {
                runner: env.runner.clone(),
                mode,
                dir: checkpoint.state_dir(i),
                late_rows: late_rows.is_some(),
            };
            Ok(OperatorStage {
                input: part.input.iter().map(|p| df_state.optimize(p)).collect::<std::result::Result<_, _>>()?,
                operator: operator::build(part, context)?,
                output: part.output.clone(),
                inputs: part.inputs.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    // Resume from the checkpoint: continue after the last commit, re-running a batch that
    // was planned but not committed with exactly its recorded offsets.
    let recovery = checkpoint.recover(sources.len())?;
    // The watermark policy is fixed by the first run (kept in the offsets log), as in Spark.
    let recorded_policy = recovery.recorded_conf.get(MULTIPLE_WATERMARK_POLICY).cloned();
    let policy = WatermarkPolicy::parse(recorded_policy.or_else(|| env.watermark_policy.clone()).as_deref())?;
    let mut watermark = WatermarkTracker::new(plan.watermarks, policy);
    for stage in &mut operators {
        stage.operator.restore(recovery.last_commit)?;
    }
    // The watermarks: the next batch's (from the last commit) and the last batch's (for the
    // late-row filter); a re-run batch uses the one in its offsets.
    let mut previous_watermark_ms = 0;
    let mut owed_no_data_batch = false;
    if let Some(n) = recovery.last_commit {
        let commit = checkpoint.commit(n)?;
        let ran_with = checkpoint.offsets(n)?.metadata.batch_watermark_ms;
        previous_watermark_ms = ran_with;
        watermark.restore(ran_with.max(commit.next_batch_watermark_ms), &commit.input_watermarks_ms);
        owed_no_data_batch = recovery.pending.is_none();
    }
    let streams = env.streams.clone();
    let mut execution = MicroBatchExecution {
        runner: env.runner.clone(),
        env,
        shared: shared.clone(),
        sources,
        source_tables,
        operators,
        output,
        sink,
        late_rows,
        checkpoint,
        temporary_checkpoint,
        trigger,
        committed: recovery.committed,
        next_batch: recovery.next_batch,
        pending: recovery.pending,
        previous_start_ms: None,
        watermark,
        previous_watermark_ms,
        needs_another_batch: false,
    };
    // A restart after a batch that moved the watermark runs the no-data batch it was owed.
    execution.needs_another_batch = owed_no_data_batch
        && execution.should_run_another_batch(execution.previous_watermark_ms, execution.watermark.current_ms());
    let thread_name = format!("stream execution thread for {}", shared.name_or_id());
    let handle = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || execution.run())
        .map_err(|e| Error::Internal(format!("cannot start the query thread: {e}")))?;
    let query = StreamingQuery { shared, thread: Arc::new(Mutex::new(Some(handle))) };
    streams.register(query.clone());
    Ok(query)
}
