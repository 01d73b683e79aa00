//! [`DataFrame`]: one API for static and streaming data, as in Spark. Transformations build a
//! DataFusion logical plan; actions run it (static) or are refused (streaming: use
//! [`DataFrame::write_stream`]).

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::utils::find_aggregate_exprs;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, SortExpr};
use datafusion::prelude::lit;

use crate::error::Result;
use crate::error::streaming_action_error;
use crate::session::Session;
use crate::writer::DataStreamWriter;

/// A table of rows, static or streaming: Spark's `DataFrame`.
#[derive(Clone)]
pub struct DataFrame {
    pub(crate) session: Session,
    pub(crate) df: datafusion::dataframe::DataFrame,
}

/// Anything that can stand for a column expression: a DataFusion [`Expr`], or a SQL
/// expression string such as `"value * 2"` or `"upper(event_type) AS kind"`.
pub trait IntoExpr {
    /// The expression, resolved against `df`'s columns.
    fn into_expr(self, df: &DataFrame) -> Result<Expr>;
}

impl IntoExpr for Expr {
    fn into_expr(self, _df: &DataFrame) -> Result<Expr> {
        Ok(self)
    }
}

impl IntoExpr for &str {
    fn into_expr(self, df: &DataFrame) -> Result<Expr> {
        Ok(df.df.parse_sql_expr(self)?)
    }
}

impl IntoExpr for &String {
    fn into_expr(self, df: &DataFrame) -> Result<Expr> {
        self.as_str().into_expr(df)
    }
}

impl IntoExpr for String {
    fn into_expr(self, df: &DataFrame) -> Result<Expr> {
        self.as_str().into_expr(df)
    }
}

/// The expressions, a bare `window(...)` named `window` (and `session_window(...)`
/// `session_window`) as in Spark.
fn exprs<E: IntoExpr>(df: &DataFrame, items: impl IntoIterator<Item = E>) -> Result<Vec<Expr>> {
    items
        .into_iter()
        .map(|e| {
            let e = e.into_expr(df)?;
            Ok(match &e {
                Expr::ScalarFunction(f) if f.func.name() == crate::functions::window::WINDOW_UDF => e.alias("window"),
                Expr::ScalarFunction(f) if f.func.name() == crate::functions::session::SESSION_WINDOW_UDF => {
                    e.alias("session_window")
                }
                _ => e,
            })
        })
        .collect()
}

impl DataFrame {
    /// Wraps a DataFusion DataFrame built on this session's context (e.g. a join).
    pub fn from_datafusion(session: Session, df: datafusion::dataframe::DataFrame) -> Self {
        DataFrame { session, df }
    }

    /// Wraps a DataFusion DataFrame, planning `window(...)` calls as Spark does
    /// (`plan/windows.rs`).
    pub(crate) fn wrap(session: Session, df: datafusion::dataframe::DataFrame) -> Result<Self> {
        let (state, plan) = df.into_parts();
        let plan = crate::plan::windows::expand_windows(plan)?;
        Ok(DataFrame { session, df: datafusion::dataframe::DataFrame::new(state, plan) })
    }

    /// A DataFrame scanning `table`, its columns qualified by `name` (as in `EXPLAIN`).
    pub(crate) fn from_table(session: &Session, name: &str, table: Arc<dyn TableProvider>) -> Result<Self> {
        let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?.build()?;
        let df = datafusion::dataframe::DataFrame::new(session.inner.ctx.state(), plan);
        Ok(DataFrame::from_datafusion(session.clone(), df))
    }

    fn map(
        self,
        f: impl FnOnce(datafusion::dataframe::DataFrame) -> datafusion::error::Result<datafusion::dataframe::DataFrame>,
    ) -> Result<Self> {
        DataFrame::wrap(self.session, f(self.df)?)
    }

    /// Whether this DataFrame reads a stream (Spark's `isStreaming`).
    pub fn is_streaming(&self) -> bool {
        crate::plan::reads_stream(self.df.logical_plan())
    }

    /// The columns.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(self.df.schema().as_arrow().clone())
    }

    /// The schema as Spark's `printSchema()` prints it.
    pub fn schema_tree(&self) -> String {
        crate::ddl::schema_tree(&self.schema())
    }

    /// Prints the schema like Spark's `printSchema()`.
    pub fn print_schema(&self) {
        print!("{}", self.schema_tree());
    }

    /// The session this DataFrame belongs to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Projects expressions: `select(["event_type", "value * 2 AS doubled"])` or DataFusion
    /// `Expr`s.
    pub fn select<E: IntoExpr>(self, columns: impl IntoIterator<Item = E>) -> Result<Self> {
        let e = exprs(&self, columns)?;
        self.map(|df| df.select(e))
    }

    /// Spark's `withWatermark`: `column` is this stream's event time, and rows more than
    /// `delay` (an interval such as `"10 minutes"`) older than the newest event time seen are
    /// late. The watermark moves after each batch (semantics appendix, §1); stateful operators keyed on
    /// this column or a window of it drop late rows and finalise their groups by it.
    pub fn with_watermark(self, column: &str, delay: &str) -> Result<Self> {
        let delay_ms = crate::options::parse_interval_ms(delay)
            .map_err(|m| crate::Error::Analysis(format!("with_watermark: delay {m}")))?;
        if delay_ms < 0 {
            return Err(crate::Error::Analysis(format!("delay threshold ({delay}) should not be negative.")));
        }
        let (state, plan) = self.df.into_parts();
        let node = crate::plan::watermark::WatermarkNode::try_new(plan, column, delay_ms)?;
        DataFrame::wrap(self.session, datafusion::dataframe::DataFrame::new(state, node.into_plan()))
    }

    /// Spark's `selectExpr`: projects SQL expression strings.
    pub fn select_expr(self, columns: &[&str]) -> Result<Self> {
        self.select(columns.iter().copied())
    }

    /// Keeps rows where `condition` holds: an `Expr` or a SQL string such as `"value > 10"`.
    pub fn filter(self, condition: impl IntoExpr) -> Result<Self> {
        let e = condition.into_expr(&self)?;
        self.map(|df| df.filter(e))
    }

    /// Spark's `where`, a synonym of [`DataFrame::filter`].
    pub fn where_(self, condition: impl IntoExpr) -> Result<Self> {
        self.filter(condition)
    }

    /// Adds or replaces column `name`.
    pub fn with_column(self, name: &str, value: impl IntoExpr) -> Result<Self> {
        let e = value.into_expr(&self)?;
        self.map(|df| df.with_column(name, e))
    }

    /// Renames column `from` to `to` (a no-op when `from` does not exist, as in Spark).
    pub fn with_column_renamed(self, from: &str, to: &str) -> Result<Self> {
        self.map(|df| df.with_column_renamed(from, to))
    }

    /// Drops columns.
    pub fn drop(self, columns: &[&str]) -> Result<Self> {
        self.map(|df| df.drop_columns(columns))
    }

    /// Groups rows for an aggregation: `group_by(["event_type"])?.count()`.
    pub fn group_by<E: IntoExpr>(self, columns: impl IntoIterator<Item = E>) -> Result<GroupedData> {
        let keys = exprs(&self, columns)?;
        Ok(GroupedData { df: self, keys })
    }

    /// One row per element of the array column `column` (Spark's `explode`; an empty or null
    /// array gives no row).
    pub fn explode(self, column: &str) -> Result<Self> {
        self.map(|df| df.unnest_columns(&[column]))
    }

    /// Rows of both DataFrames (Spark's `union`: by position).
    pub fn union(self, other: DataFrame) -> Result<Self> {
        self.map(|df| df.union(other.df))
    }

    /// Sorts rows. On a stream, only allowed after an aggregation in complete mode.
    pub fn order_by(self, by: Vec<SortExpr>) -> Result<Self> {
        self.map(|df| df.sort(by))
    }

    /// The first `n` rows.
    pub fn limit(self, n: usize) -> Result<Self> {
        self.map(|df| df.limit(0, Some(n)))
    }

    /// Distinct rows: Spark's `distinct()`, which is `drop_duplicates(&[])`.
    pub fn distinct(self) -> Result<Self> {
        self.drop_duplicates(&[])
    }

    /// Spark's `dropDuplicates(cols)`: the first row of each key (every column when `columns`
    /// is empty), in input order. On a stream the operator remembers every key it has let
    /// through; with a watermark, late rows are dropped, and keys that include the event-time
    /// column are forgotten once the watermark passes them (semantics appendix, §7).
    pub fn drop_duplicates(self, columns: &[&str]) -> Result<Self> {
        self.deduplicate(columns, false)
    }

    /// Spark's `dropDuplicatesWithinWatermark(cols)`: like [`DataFrame::drop_duplicates`], but
    /// a key is remembered only until the watermark passes its first event time plus the
    /// watermark delay, so rows of one key with different timestamps still count as duplicates.
    /// A stream needs `with_watermark` first.
    pub fn drop_duplicates_within_watermark(self, columns: &[&str]) -> Result<Self> {
        self.deduplicate(columns, true)
    }

    fn deduplicate(self, columns: &[&str], within_watermark: bool) -> Result<Self> {
        let (state, plan) = self.df.into_parts();
        let node = crate::plan::dedup::DeduplicateNode::try_new(plan, columns, within_watermark)?;
        DataFrame::wrap(self.session, datafusion::dataframe::DataFrame::new(state, node.into_plan()))
    }

    /// Registers this DataFrame as a view for [`Session::sql`]. Works for streams too: SQL
    /// over a streaming view is a streaming DataFrame.
    pub fn create_or_replace_temp_view(&self, name: &str) -> Result<()> {
        let view = self.df.clone().into_view();
        self.session.inner.ctx.deregister_table(name)?;
        self.session.inner.ctx.register_table(name, view)?;
        Ok(())
    }

    /// Writes this (static) DataFrame to files or Kafka: `df.write().format("parquet").save(dir)`.
    pub fn write(&self) -> crate::batch_writer::DataFrameWriter {
        crate::batch_writer::DataFrameWriter::new(self.clone())
    }

    /// Starts describing a streaming query over this DataFrame (which stays usable: one
    /// DataFrame can feed several queries, as in Spark).
    pub fn write_stream(&self) -> DataStreamWriter {
        DataStreamWriter::new(self.clone())
    }

    /// Runs the query and returns all rows, partition by partition in order as Spark's
    /// `collect()` does, so the same data gives the same order. Refused on a stream.
    pub fn collect(&self) -> Result<Vec<RecordBatch>> {
        self.refuse_on_stream("collect")?;
        let partitions = self.session.block_on(self.df.clone().collect_partitioned())?;
        Ok(partitions.into_iter().flatten().collect())
    }

    /// Spark's `cache()`: the rows, computed now and kept in memory, as a DataFrame that reads
    /// them instead of its sources. A static table joined with a stream is otherwise read
    /// again for every batch; cached, every batch joins with these rows. (Spark fills its cache
    /// at the first action instead of at the call.) Refused on a stream.
    pub fn cache(self) -> Result<Self> {
        self.refuse_on_stream("cache")?;
        let cached = self.session.block_on(self.df.clone().cache())?;
        DataFrame::wrap(self.session, cached)
    }

    /// The number of rows. Refused on a stream.
    pub fn count(&self) -> Result<usize> {
        self.refuse_on_stream("count")?;
        Ok(self.session.block_on(self.df.clone().count())?)
    }

    /// The first `num_rows` rows as Spark's `show()` prints them.
    pub fn to_string_table(&self, num_rows: usize) -> Result<String> {
        self.show_string(num_rows, 20)
    }

    /// Shows the DataFrame in evcxr (evcxr calls this for the value of a cell): as `show()`
    /// prints it in the terminal REPL, as an HTML table in Jupyter-compatible front ends; a
    /// stream shows its schema.
    pub fn evcxr_display(&self) {
        let plain = self.to_string();
        let html = if self.is_streaming() {
            crate::display::html_pre(&plain)
        } else {
            self.head(20)
                .and_then(|rows| crate::display::html_table(&self.schema(), &rows, 20))
                .unwrap_or_else(|e| crate::display::html_pre(&format!("error: {e}")))
        };
        crate::display::evcxr_print(&plain, &html);
    }

    /// The first `num_rows` rows as Spark's `show(numRows, truncate)` prints them: cells cut
    /// to `truncate` characters (right-aligned), or whole and left-aligned when it is 0.
    pub fn show_string(&self, num_rows: usize, truncate: usize) -> Result<String> {
        self.refuse_on_stream("show")?;
        crate::display::format_table(&self.schema(), &self.head(num_rows + 1)?, num_rows, truncate)
    }

    /// At least the first `n` rows (if there are), in partition order, as Spark's `show()`
    /// takes them: the same rows on every run, where a limit over all partitions would take
    /// whichever partition finished first.
    fn head(&self, n: usize) -> Result<Vec<RecordBatch>> {
        let df = self.df.clone();
        Ok(self.session.block_on(async move {
            use futures::StreamExt;
            let mut batches = Vec::new();
            let mut rows = 0;
            for mut partition in df.execute_stream_partitioned().await? {
                while rows < n {
                    let Some(batch) = partition.next().await else { break };
                    let batch = batch?;
                    rows += batch.num_rows();
                    batches.push(batch);
                }
            }
            Ok::<_, datafusion::error::DataFusionError>(batches)
        })?)
    }

    /// Prints the first 20 rows, like Spark's `show()`.
    pub fn show(&self) -> Result<()> {
        print!("{}", self.to_string_table(20)?);
        Ok(())
    }

    /// Prints the plan, like Spark's `explain(true)`.
    pub fn explain(&self) -> Result<()> {
        print!("{}", self.explain_string()?);
        Ok(())
    }

    /// The logical plan, before and after DataFusion's optimizer.
    pub fn explain_string(&self) -> Result<String> {
        let plan = self.df.logical_plan();
        let mut out = format!("== Logical Plan ==\n{}\n", plan.display_indent());
        let optimized = self.session.inner.ctx.state().optimize(plan)?;
        out.push_str(&format!("== Optimized Logical Plan ==\n{}\n", optimized.display_indent()));
        if self.is_streaming() {
            out.push_str("== Streaming ==\nruns as micro-batches: call write_stream().start()\n");
        }
        Ok(out)
    }

    /// The underlying DataFusion DataFrame.
    pub fn into_datafusion(self) -> datafusion::dataframe::DataFrame {
        self.df
    }

    fn refuse_on_stream(&self, action: &str) -> Result<()> {
        if self.is_streaming() { Err(streaming_action_error(action)) } else { Ok(()) }
    }
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFrame").field("schema", &self.schema()).field("streaming", &self.is_streaming()).finish()
    }
}

impl fmt::Display for DataFrame {
    /// A static DataFrame shows its first 20 rows; a stream shows its schema.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_streaming() {
            let cols: Vec<String> =
                self.schema().fields().iter().map(|c| format!("{}: {}", c.name(), c.data_type())).collect();
            return write!(f, "streaming DataFrame[{}]", cols.join(", "));
        }
        match self.to_string_table(20) {
            Ok(table) => f.write_str(&table),
            Err(e) => write!(f, "<error: {e}>"),
        }
    }
}

/// A DataFrame grouped by key columns, waiting for its aggregates: Spark's
/// `RelationalGroupedDataset`.
#[derive(Debug)]
pub struct GroupedData {
    df: DataFrame,
    keys: Vec<Expr>,
}

impl GroupedData {
    /// Aggregates: `agg(["count(*) AS n", "avg(value) AS avg_value"])` or DataFusion aggregate
    /// `Expr`s.
    ///
    /// Aggregates may sit inside other expressions, as in Spark: `"round(sum(value), 2) AS
    /// total"` aggregates `sum(value)` and rounds the result in a projection above.
    pub fn agg<E: IntoExpr>(self, aggregates: impl IntoIterator<Item = E>) -> Result<DataFrame> {
        let wanted = exprs(&self.df, aggregates)?;
        let keys = self.keys;
        let is_plain = |e: &Expr| matches!(e.clone().unalias(), Expr::AggregateFunction(_));
        if wanted.iter().all(is_plain) {
            return self.df.map(|df| df.aggregate(keys, wanted));
        }
        // Aggregate the nested aggregate calls under generated names, then compute the
        // expressions over those columns.
        let inner = find_aggregate_exprs(&wanted);
        let inner_name = |i: usize| format!("__brooklet_agg_{i}");
        let mut projections = Vec::with_capacity(wanted.len());
        for e in &wanted {
            let name = e.name_for_alias()?;
            let rebased = e
                .clone()
                .unalias()
                .transform_up(|node| {
                    Ok(match inner.iter().position(|a| *a == node) {
                        Some(i) => Transformed::yes(Expr::Column(Column::from_name(inner_name(i)))),
                        None => Transformed::no(node),
                    })
                })?
                .data;
            projections.push(rebased.alias(name));
        }
        let num_keys = keys.len();
        let named: Vec<Expr> = inner.into_iter().enumerate().map(|(i, a)| a.alias(inner_name(i))).collect();
        self.df.map(|df| {
            let grouped = df.aggregate(keys, named)?;
            let schema = grouped.schema().clone();
            let mut outer: Vec<Expr> =
                (0..num_keys).map(|i| Expr::Column(Column::from(schema.qualified_field(i)))).collect();
            outer.extend(projections);
            grouped.select(outer)
        })
    }

    /// Rows per group, in a column named `count` (as Spark names it).
    pub fn count(self) -> Result<DataFrame> {
        self.agg([count(lit(1)).alias("count")])
    }
}
