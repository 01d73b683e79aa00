//! [`DataStreamWriter`]: how a streaming DataFrame becomes a running query
//! (`df.write_stream()...start()`), with Spark's validation of output modes and sinks.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::connector::foreach_batch::{BatchFn, ForeachBatchSink};
use crate::connector::{self, SinkArgs};
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::execution::query::StreamingQuery;
use crate::execution::start::{QuerySpec, start};
use crate::execution::trigger::Trigger;
use crate::operator::late_rows::late_rows_schema;
use crate::options::Options;
pub use crate::output_mode::OutputMode;
use crate::plan::{check_output_mode, plan_stream};
use crate::session::Session;

/// The function `foreach_batch` takes: the batch's rows as a static DataFrame, and its id.
pub type ForeachBatchFn = Box<dyn FnMut(DataFrame, u64) -> Result<()> + Send>;

/// `f` as the foreach sink calls it: the rows become a DataFrame of `session`.
fn over_dataframes(session: &Session, mut f: ForeachBatchFn) -> BatchFn {
    let session = session.clone();
    Box::new(move |batch_id, schema, batches| {
        let table = datafusion::datasource::MemTable::try_new(schema.clone(), vec![batches.to_vec()])?;
        f(DataFrame::from_table(&session, "batch", Arc::new(table))?, batch_id)
    })
}
use crate::connector::memory::sink as memory;
use crate::sink::Sink;

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

    /// The sink: `console`, `memory`, `parquet`, `json`, `csv`, `kafka` or `noop`.
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
        let connector = connector::sink(&self.format)?;
        connector.check_mode(&self.format, mode)?;

        let (checkpoint_dir, temporary) = self.checkpoint_location(connector.temporary_checkpoint)?;
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
        let late_rows = match self.late_rows.take() {
            None => None,
            Some(_) if plan.watermarks.is_empty() => {
                return Err(Error::Analysis(
                    "late rows need a watermark: without with_watermark no row is ever dropped as late".into(),
                ));
            }
            Some(LateRowsTarget::Table(name)) => {
                let sink =
                    memory::MemorySink::try_new(&session.inner.ctx, &name, OutputMode::Append, late_rows_schema())?;
                Some(Box::new(sink) as Box<dyn Sink>)
            }
            Some(LateRowsTarget::Foreach(f)) => {
                Some(Box::new(ForeachBatchSink { f: over_dataframes(&session, f) }) as _)
            }
        };
        let output = session.inner.ctx.state().optimize(&plan.output)?;
        let schema = Arc::new(output.schema().as_arrow().clone());
        let sink = connector.build(SinkArgs {
            format: &self.format,
            ctx: &session.inner.ctx,
            console: session.inner.console.clone(),
            options: &self.options,
            mode,
            schema,
            query_id: id,
            query_name: self.query_name.as_deref(),
            sink_dir: checkpoint.sink_dir(),
            partition_by: &self.partition_by,
            foreach_batch: self.foreach_batch.take().map(|f| over_dataframes(&session, f)),
        })?;
        let spec = QuerySpec {
            id,
            name: self.query_name.clone(),
            mode,
            trigger: self.trigger,
            checkpoint,
            temporary_checkpoint: temporary,
            sink,
            late_rows,
        };
        start(session.query_env(), plan, output, spec)
    }

    /// Where the checkpoint goes; `temporary_allowed` when the sink may run on a made-up one.
    fn checkpoint_location(&self, temporary_allowed: bool) -> Result<(PathBuf, bool)> {
        if let Some(dir) = self.options.get("checkpointLocation") {
            return Ok((PathBuf::from(dir), false));
        }
        if let Some(root) = self.df.session.checkpoint_root() {
            let name = self.query_name.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            return Ok((root.join(name), false));
        }
        if temporary_allowed {
            let dir = std::env::temp_dir().join(format!("brooklet-temporary-{}", uuid::Uuid::new_v4()));
            return Ok((dir, true));
        }
        Err(Error::option(
            "checkpointLocation",
            "must be specified either through option(\"checkpointLocation\", ...) or Session::set_checkpoint_root(...)",
        ))
    }
}
