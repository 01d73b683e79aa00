//! [`DataStreamWriter`]: how a streaming DataFrame becomes a running query
//! (`df.write_stream()...start()`), with Spark's validation of output modes and sinks.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::checkpoint::Checkpoint;
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::execution::MicroBatchExecution;
use crate::execution::query::{QueryShared, StreamingQuery};
use crate::execution::trigger::Trigger;
use crate::execution::watermark::{MULTIPLE_WATERMARK_POLICY, WatermarkPolicy, WatermarkTracker};
use crate::operator::aggregate::StatefulAggregate;
use crate::operator::dedup::{Deduplicate, Deduplication};
use crate::operator::late_rows::{LateRowsBuffer, late_rows_schema};
use crate::options::Options;
use crate::plan::{PlanFacts, plan_stream};
use crate::sink::file::{FileSink, WriteFormat};
use crate::sink::foreach::{ForeachBatchFn, ForeachBatchSink};
use crate::sink::{Sink, console, memory, supported_modes};
use crate::source::SourceContext;

/// Which rows of the result table each batch writes (Spark's `OutputMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Only new rows, each written once and never changed.
    Append,
    /// The rows that changed in this batch.
    Update,
    /// The whole result table, every batch.
    Complete,
}

impl FromStr for OutputMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_lowercase().as_str() {
            "append" => Ok(OutputMode::Append),
            "update" => Ok(OutputMode::Update),
            "complete" => Ok(OutputMode::Complete),
            _ => Err(Error::option(
                "outputMode",
                format!("Unknown output mode {s}. Accepted output modes are 'append', 'complete', 'update'"),
            )),
        }
    }
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputMode::Append => "Append",
            OutputMode::Update => "Update",
            OutputMode::Complete => "Complete",
        })
    }
}

/// Describes a streaming query before it starts: sink, options, output mode, trigger.
pub struct DataStreamWriter {
    df: DataFrame,
    format: String,
    options: Options,
    mode: std::result::Result<OutputMode, String>,
    trigger: Trigger,
    query_name: Option<String>,
    partition_by: Vec<String>,
    foreach_batch: Option<ForeachBatchFn>,
    late_rows: Option<LateRowsTarget>,
}

/// Where the late-rows output goes.
enum LateRowsTarget {
    Table(String),
    Foreach(ForeachBatchFn),
}

impl fmt::Debug for DataStreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataStreamWriter")
            .field("format", &self.format)
            .field("mode", &self.mode)
            .field("trigger", &self.trigger)
            .finish()
    }
}

impl DataStreamWriter {
    pub(crate) fn new(df: DataFrame) -> Self {
        DataStreamWriter {
            df,
            format: "console".into(),
            options: Options::default(),
            mode: Ok(OutputMode::Append),
            trigger: Trigger::Default,
            query_name: None,
            partition_by: Vec::new(),
            foreach_batch: None,
            late_rows: None,
        }
    }

    /// The sink: `console`, `memory`, `parquet`, `json` or `csv`.
    pub fn format(mut self, format: &str) -> Self {
        self.format = format.to_lowercase();
        self
    }

    /// A sink option (`checkpointLocation`, `path`, `numRows`, `truncate`, ...).
    pub fn option(mut self, key: &str, value: impl ToString) -> Self {
        self.options.set(key, value.to_string());
        self
    }

    /// `append` (the default), `update` or `complete`; checked at `start()`.
    pub fn output_mode(mut self, mode: &str) -> Self {
        self.mode = mode.parse::<OutputMode>().map_err(|_| mode.to_string());
        self
    }

    /// When batches run (default: as soon as the previous one ends).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Names the query; the memory sink's table takes this name.
    pub fn query_name(mut self, name: &str) -> Self {
        self.query_name = Some(name.into());
        self
    }

    /// File sinks: write rows under `column=value/` directories.
    pub fn partition_by(mut self, columns: &[&str]) -> Self {
        self.partition_by = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Hands each batch to `f` as a static DataFrame with its batch id.
    pub fn foreach_batch(mut self, f: impl FnMut(DataFrame, u64) -> Result<()> + Send + 'static) -> Self {
        self.format = "foreachbatch".into();
        self.foreach_batch = Some(Box::new(f));
        self
    }

    /// Keeps every row a stateful operator drops as late (beyond the watermark) in the memory
    /// table `name`, with the operator, the reason and the watermark (see
    /// [`late_rows_schema`]). Spark only
    /// counts such rows.
    pub fn late_rows_table(mut self, name: &str) -> Self {
        self.late_rows = Some(LateRowsTarget::Table(name.into()));
        self
    }

    /// Hands the rows each batch drops as late to `f`, as [`late_rows_table`](Self::late_rows_table)
    /// describes, with the batch id; called only for batches that dropped rows.
    pub fn late_rows_foreach_batch(mut self, f: impl FnMut(DataFrame, u64) -> Result<()> + Send + 'static) -> Self {
        self.late_rows = Some(LateRowsTarget::Foreach(Box::new(f)));
        self
    }

    /// Validates the query and starts it on its own thread.
    pub fn start(mut self) -> Result<StreamingQuery> {
        let session = self.df.session.clone();
        if !self.df.is_streaming() {
            return Err(Error::Analysis("'writeStream' can be called only on streaming Dataset/DataFrame".into()));
        }
        let mode = self.mode.clone().map_err(|m| {
            Error::option(
                "outputMode",
                format!("Unknown output mode {m}. Accepted output modes are 'append', 'complete', 'update'"),
            )
        })?;
        let partitions = session.inner.ctx.state().config().target_partitions();
        let plan = plan_stream(self.df.df.logical_plan().clone(), partitions)?;
        check_output_mode(plan.facts, mode)?;
        const SINKS: [&str; 7] = ["console", "memory", "parquet", "json", "csv", "foreachbatch", "kafka"];
        if !SINKS.contains(&self.format.as_str()) {
            return Err(unknown_sink(&self.format));
        }
        if !supported_modes(&self.format).contains(&mode) {
            return Err(Error::Analysis(format!("Data source {} does not support {mode} output mode", self.format)));
        }

        let (checkpoint_dir, temporary) = self.checkpoint_location()?;
        if temporary {
            session
                .inner
                .temporary_checkpoints
                .lock()
                .expect("temporary checkpoints lock poisoned")
                .push(checkpoint_dir.clone());
        }
        let checkpoint = Checkpoint::open(&checkpoint_dir)?;
        let id = checkpoint.query_id()?;
        session.streams().check_unique(id, self.query_name.as_deref())?;

        let shared = Arc::new(QueryShared::new(id, self.query_name.clone()));
        let mut sources = plan
            .sources
            .iter()
            .enumerate()
            .map(|(i, (spec, _))| spec.create(SourceContext { dir: checkpoint.source_dir(i), clock: session.clock() }))
            .collect::<Result<Vec<_>>>()?;
        for source in &mut sources {
            let query = Arc::downgrade(&shared);
            source.set_waker(Arc::new(move || query.upgrade().map(|q| q.wake()).is_some()));
        }
        let source_tables = plan.sources.iter().map(|(_, t)| t.clone()).collect();
        let mut aggregate = plan
            .aggregate
            .map(|part| StatefulAggregate::try_new(&session, part, mode, checkpoint.state_dir(0)))
            .transpose()?;
        let first_dedup_id = usize::from(aggregate.is_some());
        let dedups = plan
            .dedups
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let op = Deduplicate::try_new(part.spec, &part.input, checkpoint.state_dir(first_dedup_id + i))?;
                *part.cell.lock().expect("dedup state lock poisoned") = Some(op);
                Ok(Deduplication { cell: part.cell })
            })
            .collect::<Result<Vec<_>>>()?;
        let late_rows = match self.late_rows.take() {
            None => None,
            Some(_) if plan.watermarks.is_empty() => {
                return Err(Error::Analysis(
                    "late rows need a watermark: without with_watermark no row is ever dropped as late".into(),
                ));
            }
            Some(target) => {
                let sink: Box<dyn Sink> = match target {
                    LateRowsTarget::Table(name) => {
                        Box::new(memory::MemorySink::try_new(&session, &name, OutputMode::Append, late_rows_schema())?)
                    }
                    LateRowsTarget::Foreach(f) => Box::new(ForeachBatchSink { session: session.clone(), f }),
                };
                let buffer = LateRowsBuffer::default();
                if let Some(agg) = &mut aggregate {
                    agg.send_late_rows_to(buffer.clone());
                }
                for d in &dedups {
                    d.send_late_rows_to(buffer.clone())?;
                }
                Some((buffer, sink))
            }
        };
        let output = session.inner.ctx.state().optimize(&plan.output)?;
        let schema = Arc::new(output.schema().as_arrow().clone());
        let sink = self.sink(mode, schema, id, checkpoint.sink_dir())?;

        // Resume from the checkpoint: continue after the last commit, re-running a batch that
        // was planned but not committed with exactly its recorded offsets.
        let latest = checkpoint.latest_offsets()?;
        let last_commit = checkpoint.latest_commit()?.map(|(n, _)| n);
        // The watermark policy is fixed by the first run (kept in the offsets log), as in Spark.
        let recorded_policy =
            latest.as_ref().and_then(|(_, seq)| seq.metadata.conf.get(MULTIPLE_WATERMARK_POLICY).cloned());
        let policy = WatermarkPolicy::parse(
            recorded_policy.or_else(|| session.conf().get(MULTIPLE_WATERMARK_POLICY)).as_deref(),
        )?;
        let mut watermark = WatermarkTracker::new(plan.watermarks, policy);
        let mut previous_watermark_ms = 0;
        let mut needs_another_batch = false;
        let (next_batch, committed, pending) = match latest {
            None => (0, vec![None; sources.len()], None),
            Some((n, seq)) => {
                if seq.offsets.len() != sources.len() {
                    return Err(Error::checkpoint(
                        checkpoint.dir().join("offsets").join(n.to_string()),
                        format!(
                            "records {} sources but the query reads {}: the query changed; use a new checkpoint",
                            seq.offsets.len(),
                            sources.len()
                        ),
                    ));
                }
                if last_commit == Some(n) {
                    (n + 1, seq.offsets, None)
                } else if last_commit == n.checked_sub(1) {
                    let committed = match n.checked_sub(1) {
                        Some(prev) => checkpoint.offsets(prev)?.offsets,
                        None => vec![None; sources.len()],
                    };
                    (n, committed, Some(seq))
                } else {
                    return Err(Error::checkpoint(
                        checkpoint.dir().join("commits"),
                        format!(
                            "last commit is {last_commit:?} but offsets go up to batch {n}: the checkpoint is inconsistent"
                        ),
                    ));
                }
            }
        };
        if let Some(agg) = &mut aggregate {
            agg.restore(last_commit)?;
        }
        for d in &dedups {
            d.restore(last_commit)?;
        }
        // The watermarks: the next batch's (from the last commit) and the last batch's (for the
        // late-row filter); a re-run batch uses the one in its offsets.
        if let Some(n) = last_commit {
            let commit = checkpoint.commit(n)?;
            let ran_with = checkpoint.offsets(n)?.metadata.batch_watermark_ms;
            previous_watermark_ms = ran_with;
            watermark.restore(ran_with.max(commit.next_batch_watermark_ms), &commit.input_watermarks_ms);
            needs_another_batch = pending.is_none();
        }
        let mut execution = MicroBatchExecution {
            session: session.clone(),
            shared: shared.clone(),
            sources,
            source_tables,
            aggregate,
            dedups,
            output,
            sink,
            late_rows,
            checkpoint,
            temporary_checkpoint: temporary,
            trigger: self.trigger,
            committed,
            next_batch,
            pending,
            previous_start_ms: None,
            watermark,
            previous_watermark_ms,
            needs_another_batch,
        };
        // A restart after a batch that moved the watermark runs the no-data batch it was owed.
        execution.needs_another_batch = needs_another_batch
            && execution.should_run_another_batch(execution.previous_watermark_ms, execution.watermark.current_ms());
        let thread_name = format!("stream execution thread for {}", shared.name_or_id());
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || execution.run())
            .map_err(|e| Error::Internal(format!("cannot start the query thread: {e}")))?;
        let query = StreamingQuery { shared, thread: Arc::new(Mutex::new(Some(handle))) };
        session.streams().register(query.clone());
        Ok(query)
    }

    fn checkpoint_location(&self) -> Result<(PathBuf, bool)> {
        if let Some(dir) = self.options.get("checkpointLocation") {
            return Ok((PathBuf::from(dir), false));
        }
        if let Some(root) = self.df.session.checkpoint_root() {
            let name = self.query_name.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            return Ok((root.join(name), false));
        }
        if matches!(self.format.as_str(), "console" | "memory" | "foreachbatch") {
            let dir = std::env::temp_dir().join(format!("brooklet-temporary-{}", uuid::Uuid::new_v4()));
            return Ok((dir, true));
        }
        Err(Error::option(
            "checkpointLocation",
            "must be specified either through option(\"checkpointLocation\", ...) or Session::set_checkpoint_root(...)",
        ))
    }

    #[cfg_attr(not(feature = "kafka"), allow(unused_variables))]
    fn sink(
        &mut self,
        mode: OutputMode,
        schema: arrow::datatypes::SchemaRef,
        query_id: uuid::Uuid,
        sink_dir: PathBuf,
    ) -> Result<Box<dyn Sink>> {
        let session = &self.df.session;
        let format = self.format.as_str();
        let known: &[&str] = match format {
            "console" => console::OPTIONS,
            "parquet" | "json" | "csv" => &["path", "checkpointLocation"],
            #[cfg(feature = "kafka")]
            "kafka" => crate::kafka::sink::SINK_OPTIONS,
            _ => &["checkpointLocation"],
        };
        self.options.check_known(&format!("sink '{format}'"), known)?;
        Ok(match format {
            "console" => Box::new(console::ConsoleSink::try_new(&self.options, session.inner.console.clone())?),
            "memory" => {
                let name = self
                    .query_name
                    .as_deref()
                    .ok_or_else(|| Error::Analysis("queryName must be specified for memory sink".into()))?;
                Box::new(memory::MemorySink::try_new(session, name, mode, schema)?)
            }
            #[cfg(feature = "kafka")]
            "kafka" => Box::new(crate::kafka::sink::KafkaSink::try_new(&self.options, query_id, sink_dir)?),
            "foreachbatch" => {
                let f = self
                    .foreach_batch
                    .take()
                    .ok_or_else(|| Error::Internal("foreach_batch without a function".into()))?;
                Box::new(ForeachBatchSink { session: session.clone(), f })
            }
            name => match WriteFormat::from_name(name) {
                Some(write_format) => {
                    let path = self.options.get("path").ok_or_else(|| {
                        Error::option("path", format!("the {name} sink needs option(\"path\", <directory>)"))
                    })?;
                    Box::new(FileSink::try_new(PathBuf::from(path), write_format, self.partition_by.clone(), &schema)?)
                }
                None => return Err(unknown_sink(name)),
            },
        })
    }
}

fn unknown_sink(name: &str) -> Error {
    let kafka = if cfg!(feature = "kafka") { ", kafka" } else { " (kafka needs the crate feature `kafka`)" };
    Error::option(
        "format",
        format!("unknown sink '{name}'; sinks are console, memory, parquet, json, csv, foreach_batch{kafka}"),
    )
}

fn check_output_mode(facts: PlanFacts, mode: OutputMode) -> Result<()> {
    let message = match (facts.has_aggregate, mode) {
        (false, OutputMode::Complete) => Some(
            "Complete output mode not supported when there are no streaming aggregations on streaming DataFrames/Datasets",
        ),
        (true, OutputMode::Append) if !facts.aggregate_on_event_time => Some(
            "Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark",
        ),
        (true, OutputMode::Update) if facts.session_window => {
            Some("Update output mode not supported for session window on streaming DataFrames/DataSets")
        }
        _ if facts.sort_after_aggregate && mode != OutputMode::Complete => Some(
            "Sorting is not supported on streaming DataFrames/Datasets, unless it is on aggregated DataFrame/Dataset in Complete output mode",
        ),
        _ => None,
    };
    message.map_or(Ok(()), |m| Err(Error::Analysis(m.into())))
}
