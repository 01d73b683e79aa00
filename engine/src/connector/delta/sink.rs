//! The Delta sink: each micro-batch one commit to the table, exactly once.
//!
//! ```text
//! batch N ──► Parquet files (new names) ──► commit _delta_log/<v>.json:
//!                                             add …, add …, (remove … in complete mode),
//!                                             txn {appId: <query id>, version: N}
//! ```
//!
//! As Spark's Delta sink: a batch is one atomic commit that also records the application
//! transaction (`txn`: the query's id and the batch id). A batch re-run after a crash finds
//! its id already recorded and writes nothing; a crash before the commit leaves only files no
//! commit names, which no reader sees. Append mode adds the batch's files; complete mode
//! replaces the table's content with the batch's in the same commit. Every batch commits, an
//! empty one too, so the table's history shows each batch (semantics appendix, §13).

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::table::config::TablePropertiesExt;

use super::table::{self, block_on, error};
use crate::ddl::spark_type_name;
use crate::error::{Error, Result};
use crate::output_mode::OutputMode;
use crate::sink::Sink;

pub(crate) struct DeltaSink {
    path: PathBuf,
    /// The table as of our last commit (or as found when the query started).
    table: DeltaTable,
    /// The query's id: the `txn` action's application id.
    app_id: String,
    /// The last batch id this query committed to the table.
    committed: Option<u64>,
    complete: bool,
    partition_by: Vec<String>,
    schema_mode: Option<SchemaMode>,
}

impl DeltaSink {
    pub(crate) fn try_new(
        path: PathBuf,
        app_id: String,
        mode: OutputMode,
        partition_by: Vec<String>,
        schema_mode: Option<SchemaMode>,
    ) -> Result<Self> {
        let table = table::open_for_write(&path)?;
        let committed = match table.snapshot() {
            Ok(state) => block_on(state.transaction_version(table.log_store().as_ref(), &app_id))
                .map_err(|e| error(&path, "reading the application transactions", e))?
                .map(|v| v as u64),
            Err(_) => None,
        };
        Ok(DeltaSink {
            path,
            table,
            app_id,
            committed,
            complete: mode == OutputMode::Complete,
            partition_by,
            schema_mode,
        })
    }
}

impl Sink for DeltaSink {
    fn add_batch(&mut self, batch_id: u64, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        if self.committed.is_some_and(|c| c >= batch_id) {
            // Spark's "skipping already complete epoch": this batch's commit is in the table.
            return Ok(());
        }
        let txn = Transaction::new(&self.app_id, batch_id as i64);
        let mode = if self.complete { SaveMode::Overwrite } else { SaveMode::Append };
        let table = write(
            &self.path,
            self.table.clone(),
            schema,
            batches,
            mode,
            &self.partition_by,
            self.schema_mode,
            CommitProperties::default().with_application_transaction(txn),
        )?;
        // delta-rs keeps the table's file list as one piece per commit since it was opened, and
        // goes through all of them after every commit; opened again right after delta-rs writes a
        // checkpoint (every `delta.checkpointInterval` commits), the list is the checkpoint's,
        // one piece. A commit still costs in proportion to the table's files (delta-rs's
        // snapshot holds them all), no longer to the commits since the query started.
        let interval = table.snapshot().map_or(100, |s| s.table_config().checkpoint_interval().get());
        self.table = match table.version() {
            Some(v) if v > 0 && v.is_multiple_of(interval) => table::open_for_write(&self.path)?,
            _ => table,
        };
        self.committed = Some(batch_id);
        Ok(())
    }

    fn description(&self) -> String {
        format!("DeltaSink[{}]", self.path.display())
    }
}

/// One write to the table: `batches` (of `schema`) in one commit, with `properties`.
/// Schema enforcement as Spark-Delta's: a batch with columns the table does not have is
/// refused unless `schema_mode` merges them in (`mergeSchema`) or replaces the table's schema
/// (`overwriteSchema`, static overwrites only).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    path: &std::path::Path,
    table: DeltaTable,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    mode: SaveMode,
    partition_by: &[String],
    schema_mode: Option<SchemaMode>,
    properties: CommitProperties,
) -> Result<DeltaTable> {
    if table.snapshot().is_ok() && schema_mode.is_none() {
        check_schema(path, &table, schema)?;
    }
    let mut rows: Vec<RecordBatch> = batches.iter().map(table::to_delta).collect::<Result<_>>()?;
    if rows.is_empty() {
        rows.push(table::to_delta(&RecordBatch::new_empty(schema.clone()))?);
    }
    // Brooklet's Parquet settings (Snappy, as Spark-Delta writes), not delta-rs's default of
    // DataFusion's (zstd): the same files the Parquet sink writes, at its speed.
    let parquet = crate::format::writer_properties(&rows);
    let new_table = table.snapshot().is_err();
    let mut write =
        table.write(rows).with_save_mode(mode).with_commit_properties(properties).with_writer_properties(parquet);
    if new_table {
        // A new table checkpoints every 10 commits, as Spark-Delta's do (delta-rs's default:
        // 100), so a reader or a writer opening it replays at most 10 commits' JSON.
        write = write.with_configuration([("delta.checkpointInterval", Some("10"))]);
    }
    if !partition_by.is_empty() {
        write = write.with_partition_columns(partition_by.to_vec());
    }
    if let Some(schema_mode) = schema_mode {
        write = write.with_schema_mode(schema_mode);
    }
    block_on(write.into_future()).map_err(|e| error(path, "writing", e))
}

/// Spark-Delta's schema mismatch, said before anything is written.
fn check_schema(path: &std::path::Path, table: &DeltaTable, schema: &SchemaRef) -> Result<()> {
    let existing = table::schema(path, table)?;
    let same = |a: &arrow::datatypes::Field, b: &arrow::datatypes::Field| {
        a.name().eq_ignore_ascii_case(b.name()) && spark_type_name(a.data_type()) == spark_type_name(b.data_type())
    };
    let ddl = |s: &SchemaRef| {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), spark_type_name(f.data_type())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let extra: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| !existing.fields().iter().any(|e| same(e, f)))
        .map(|f| f.name().as_str())
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    Err(Error::Analysis(format!(
        "A schema mismatch detected when writing to the Delta table at {}: the data's column(s) {} are not in \
         the table's schema with that type. To add new columns, set .option(\"mergeSchema\", \"true\").\n\
         Table schema: {}\nData schema: {}",
        path.display(),
        extra.join(", "),
        ddl(&existing),
        ddl(schema),
    )))
}
