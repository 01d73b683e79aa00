//! [`Session`]: the entry point. It owns the DataFusion context, a tokio runtime (so that every
//! Brooklet call is synchronous, pleasant in a REPL), the clock and the running queries.

pub use crate::connector::console::ConsoleOutput;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::OptimizerRule;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::clock::{Clock, SystemClock};
use crate::dataframe::DataFrame;
use crate::error::Result;
use crate::execution::manager::StreamingQueryManager;
use crate::reader::{DataFrameReader, DataStreamReader};

/// A Brooklet session: Spark's `SparkSession`.
///
/// Cheap to clone; clones share everything.
///
/// ```
/// let session = brooklet::Session::new();
/// let df = session.sql("SELECT 1 + 1 AS two").unwrap();
/// assert_eq!(df.to_string_table(20).unwrap().lines().nth(3), Some("|  2|"));
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    pub(crate) ctx: SessionContext,
    /// Owned so that the public API needs no `.await`: DataFusion's futures run here.
    runtime: tokio::runtime::Runtime,
    pub(crate) clock: Arc<dyn Clock>,
    /// `spark.sql.streaming.checkpointLocation`: queries without their own
    /// `checkpointLocation` get `<root>/<query name or id>`.
    pub(crate) checkpoint_root: Mutex<Option<PathBuf>>,
    pub(crate) streams: Arc<StreamingQueryManager>,
    pub(crate) conf: RuntimeConfig,
    /// Where the console sink's text goes (stdout unless the builder says otherwise).
    pub(crate) console: ConsoleOutput,
    /// Checkpoints made up for queries that were given none. A query that stops cleanly
    /// deletes its own; the rest (a query that failed, or failed to start) stay for a look
    /// until the session is dropped, as Spark deletes them when the JVM exits.
    pub(crate) temporary_checkpoints: Mutex<Vec<PathBuf>>,
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        let dirs = self.temporary_checkpoints.get_mut().map(std::mem::take).unwrap_or_default();
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Spark's `spark.conf`: named settings, read when a query starts (and then kept in its
/// checkpoint, as Spark keeps them, so a restart runs with the same values).
#[derive(Debug, Default)]
pub struct RuntimeConfig {
    values: Mutex<std::collections::BTreeMap<String, String>>,
}

impl RuntimeConfig {
    /// Sets `key`, e.g. `spark.sql.streaming.multipleWatermarkPolicy` to `max`.
    pub fn set(&self, key: &str, value: impl ToString) {
        self.values.lock().expect("conf lock poisoned").insert(key.to_string(), value.to_string());
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        self.values.lock().expect("conf lock poisoned").get(key).cloned()
    }

    /// Removes `key`.
    pub fn unset(&self, key: &str) {
        self.values.lock().expect("conf lock poisoned").remove(key);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("clock", &self.inner.clock).finish_non_exhaustive()
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures a [`Session`] before it is built.
pub struct SessionBuilder {
    clock: Arc<dyn Clock>,
    checkpoint_root: Option<PathBuf>,
    target_partitions: usize,
    console: Option<ConsoleOutput>,
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("clock", &self.clock)
            .field("checkpoint_root", &self.checkpoint_root)
            .field("target_partitions", &self.target_partitions)
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// Uses `clock` for processing time (batch timestamps, triggers, the `rate` source).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The default parent directory of query checkpoints
    /// (`spark.sql.streaming.checkpointLocation`).
    pub fn checkpoint_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoint_root = Some(dir.into());
        self
    }

    /// How many partitions DataFusion splits work into (default: the number of cores).
    pub fn target_partitions(mut self, n: usize) -> Self {
        self.target_partitions = n.max(1);
        self
    }

    /// Sends the console sink's text to `output` instead of stdout: an application with its
    /// own display (a notebook, a TUI, a log) decides where batches are shown.
    pub fn console_output(mut self, output: impl Fn(&str) -> std::io::Result<()> + Send + Sync + 'static) -> Self {
        self.console = Some(Arc::new(output));
        self
    }

    /// Builds the session.
    ///
    /// # Panics
    /// When the operating system refuses to start the runtime's threads.
    pub fn build(self) -> Session {
        let config = SessionConfig::new()
            .with_target_partitions(self.target_partitions)
            .with_information_schema(true)
            .set_str("datafusion.execution.time_zone", "UTC")
            // Column names keep their case in SQL strings, so `eventType` means `eventType`.
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features().build();
        // Streaming aggregation merges partial states across batches, so the plan of an aggregate
        // must stay one aggregate: the rule that splits `count(DISTINCT x)` in two is left out.
        let rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = state
            .optimizers()
            .iter()
            .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
            .cloned()
            .collect();
        // The rule that answers `count(*)` from statistics would see only the current batch.
        let mut physical: Vec<_> =
            state.physical_optimizers().iter().filter(|r| r.name() != "aggregate_statistics").cloned().collect();
        // `spark_partition_id()` is answered per partition once the partitions are final.
        let last =
            physical.len().saturating_sub(usize::from(physical.last().is_some_and(|r| r.name() == "SanityCheckPlan")));
        physical.insert(last, Arc::new(crate::plan::partition_id::PartitionIdRule));
        state = SessionStateBuilder::new_from_existing(state)
            .with_query_planner(Arc::new(crate::plan::watermark::BrookletQueryPlanner))
            .with_optimizer_rules(rules)
            .with_physical_optimizer_rules(physical)
            .build();
        let ctx = SessionContext::new_with_state(state);
        for udf in crate::functions::udfs() {
            ctx.register_udf(udf);
        }
        // Spark's names for DataFusion's aggregates.
        use datafusion::functions_aggregate::{approx_distinct, array_agg, first_last};
        for (udaf, spark_name) in [
            (array_agg::array_agg_udaf(), "collect_list"),
            (approx_distinct::approx_distinct_udaf(), "approx_count_distinct"),
            (first_last::first_value_udaf(), "first"),
            (first_last::last_value_udaf(), "last"),
        ] {
            ctx.register_udaf(udaf.as_ref().clone().with_aliases([spark_name]));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.target_partitions)
            .thread_name("brooklet-worker")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime");
        Session {
            inner: Arc::new(SessionInner {
                ctx,
                runtime,
                clock: self.clock,
                checkpoint_root: Mutex::new(self.checkpoint_root),
                streams: Arc::default(),
                conf: RuntimeConfig::default(),
                console: self.console.unwrap_or_else(|| Arc::new(print_to_stdout)),
                temporary_checkpoints: Mutex::default(),
            }),
        }
    }
}

fn print_to_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush())
}

impl Session {
    /// A session with the system clock and default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a session: clock, checkpoint root, parallelism.
    pub fn builder() -> SessionBuilder {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        SessionBuilder { clock: Arc::new(SystemClock), checkpoint_root: None, target_partitions: cores, console: None }
    }

    /// Reads static data: `session.read().format("json").load(dir)`.
    pub fn read(&self) -> DataFrameReader {
        DataFrameReader::new(self.clone())
    }

    /// Reads a stream: `session.read_stream().format("json").schema(..).load(dir)`.
    pub fn read_stream(&self) -> DataStreamReader {
        DataStreamReader::new(self.clone())
    }

    /// Runs SQL over registered tables and views, streaming or static.
    pub fn sql(&self, sql: &str) -> Result<DataFrame> {
        let df = self.block_on(self.inner.ctx.sql(sql))?;
        DataFrame::wrap(self.clone(), df)
    }

    /// A registered table or view as a DataFrame.
    pub fn table(&self, name: &str) -> Result<DataFrame> {
        let df = self.block_on(self.inner.ctx.table(name))?;
        DataFrame::wrap(self.clone(), df)
    }

    /// Settings (Spark's `spark.conf`).
    pub fn conf(&self) -> &RuntimeConfig {
        &self.inner.conf
    }

    /// The running and finished streaming queries of this session.
    pub fn streams(&self) -> &StreamingQueryManager {
        &self.inner.streams
    }

    /// The clock this session reads processing time from.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Sets the default parent directory of checkpoints
    /// (`spark.sql.streaming.checkpointLocation`).
    pub fn set_checkpoint_root(&self, dir: impl Into<PathBuf>) {
        *self.inner.checkpoint_root.lock().expect("checkpoint root lock poisoned") = Some(dir.into());
    }

    /// The underlying DataFusion context, for registering functions or tables.
    pub fn datafusion(&self) -> &SessionContext {
        &self.inner.ctx
    }

    /// Runs a future on the session's runtime, from synchronous code.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.inner.runtime.block_on(f)
    }

    /// What the loop and the operators of a query run their plans with.
    /// What a query started in this session needs of it.
    pub(crate) fn query_env(&self) -> crate::execution::QueryEnv {
        crate::execution::QueryEnv {
            clock: self.clock(),
            streams: self.inner.streams.clone(),
            runner: self.runner(),
            watermark_policy: self.conf().get(crate::execution::watermark::MULTIPLE_WATERMARK_POLICY),
            _session: self.inner.clone(),
        }
    }

    pub(crate) fn runner(&self) -> crate::plan::runner::PlanRunner {
        crate::plan::runner::PlanRunner { ctx: self.inner.ctx.clone(), runtime: self.inner.runtime.handle().clone() }
    }

    pub(crate) fn checkpoint_root(&self) -> Option<PathBuf> {
        self.inner.checkpoint_root.lock().expect("checkpoint root lock poisoned").clone()
    }
}
