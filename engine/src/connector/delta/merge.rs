//! A table's history (one row per commit) and MERGE into it: what [`crate::DeltaTable`] (the
//! API's `DeltaTable.forPath`) runs. MERGE is how update-mode results reach a Delta table, as in
//! Spark: from `foreach_batch`, each batch's rows upserted by key.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::execution::context::SessionState;
use datafusion::prelude::{DataFrame, cast, col};
use deltalake::kernel::Action;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;

use super::table::{self, block_on, error};
use crate::error::Result;

/// The history's columns: a subset of Spark-Delta's `history()`, and what each commit's
/// actions hold.
fn history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("operation", DataType::Utf8, true),
        Field::new("operationParameters", DataType::Utf8, true),
        Field::new("addedFiles", DataType::Int64, false),
        Field::new("removedFiles", DataType::Int64, false),
        Field::new("txnAppId", DataType::Utf8, true),
        Field::new("txnVersion", DataType::Int64, true),
    ]))
}

/// One commit, as the history shows it.
struct HistoryRow {
    version: i64,
    /// Microseconds since the epoch.
    time: Option<i64>,
    operation: Option<String>,
    parameters: Option<String>,
    added: i64,
    removed: i64,
    app: Option<String>,
    txn_version: Option<i64>,
}

/// One row per commit of the table at `path`, newest first (as Spark-Delta lists them).
pub(crate) fn history(path: &Path) -> Result<(SchemaRef, RecordBatch)> {
    let delta = table::open(path, None)?;
    let latest = delta.version().unwrap_or(0);
    let mut rows: Vec<HistoryRow> = Vec::new();
    for version in (0..=latest).rev() {
        let Some(actions) = table::commit(path, &delta, version)? else { continue };
        let (mut time, mut operation, mut parameters, mut added, mut removed, mut txn) = (None, None, None, 0, 0, None);
        for action in actions {
            match action {
                Action::CommitInfo(info) => {
                    time = info.timestamp.map(|ms| ms * 1000);
                    operation = info.operation;
                    parameters = info.operation_parameters.map(|p| {
                        let sorted: std::collections::BTreeMap<_, _> = p.into_iter().collect();
                        serde_json::to_string(&sorted).unwrap_or_default()
                    });
                }
                Action::Add(_) => added += 1,
                Action::Remove(_) => removed += 1,
                Action::Txn(t) => txn = Some((t.app_id, t.version)),
                _ => {}
            }
        }
        let (app, txn_version) = txn.map_or((None, None), |(a, v)| (Some(a), Some(v)));
        rows.push(HistoryRow {
            version: version as i64,
            time,
            operation,
            parameters,
            added,
            removed,
            app,
            txn_version,
        });
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.version))),
        Arc::new(rows.iter().map(|r| r.time).collect::<TimestampMicrosecondArray>()),
        Arc::new(rows.iter().map(|r| r.operation.clone()).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| r.parameters.clone()).collect::<StringArray>()),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.added))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.removed))),
        Arc::new(rows.iter().map(|r| r.app.clone()).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| r.txn_version).collect::<Int64Array>()),
    ];
    let schema = history_schema();
    Ok((schema.clone(), RecordBatch::try_new(schema, columns)?))
}

/// What a MERGE does with source rows that match a target row, and with those that do not.
#[derive(Debug, Clone, Default)]
pub(crate) struct MergeSpec {
    /// Matched: set every target column to the source's value.
    pub update_all: bool,
    /// Matched: delete the target row.
    pub delete: bool,
    /// Not matched: insert the source row.
    pub insert_all: bool,
    /// An application transaction: skip the MERGE if the table already has `version` (or a
    /// later one) for `app id`, else record it in the commit (Spark-Delta's `txnAppId` and
    /// `txnVersion`, for idempotent writes from `foreach_batch`).
    pub txn: Option<(String, i64)>,
}

/// MERGE of `source` into the table at `path`, the target aliased `t` and the source `s` in
/// `condition`. Whether it ran (`false`: its transaction was already in the table).
pub(crate) fn merge(
    path: &Path,
    state: SessionState,
    source: DataFrame,
    condition: &str,
    spec: &MergeSpec,
) -> Result<bool> {
    let delta = table::open(path, None)?;
    if let Some((app, version)) = &spec.txn {
        let snapshot = delta.snapshot().map_err(|e| error(path, "merging", e))?;
        let done = block_on(snapshot.transaction_version(delta.log_store().as_ref(), app))
            .map_err(|e| error(path, "reading the application transactions", e))?;
        if done.is_some_and(|d| d >= *version) {
            return Ok(false);
        }
    }
    // The source's zone-less timestamps as the table's UTC ones, so keys compare as instants.
    let names: Vec<String> = source.schema().fields().iter().map(|f| f.name().clone()).collect();
    let projected: Vec<_> = source
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(unit, None) => {
                cast(col(format!("\"{}\"", f.name())), DataType::Timestamp(*unit, Some("UTC".into()))).alias(f.name())
            }
            _ => col(format!("\"{}\"", f.name())),
        })
        .collect();
    let source = source.select(projected).map_err(|e| error(path, "merging", e))?;
    let quoted = |c: &str| format!("s.`{c}`");
    let mut builder = delta
        .merge(source, condition.to_string())
        .with_source_alias("s")
        .with_target_alias("t")
        .with_session_state(Arc::new(state));
    let failed = |e: deltalake::DeltaTableError| error(path, "merging", e);
    if spec.update_all {
        let names = names.clone();
        builder = builder
            .when_matched_update(move |u| names.iter().fold(u, |u, c| u.update(c.as_str(), quoted(c))))
            .map_err(failed)?;
    }
    if spec.delete {
        builder = builder.when_matched_delete(|d| d).map_err(failed)?;
    }
    if spec.insert_all {
        builder = builder
            .when_not_matched_insert(move |i| names.iter().fold(i, |i, c| i.set(c.as_str(), quoted(c))))
            .map_err(failed)?;
    }
    if let Some((app, version)) = &spec.txn {
        builder = builder.with_commit_properties(
            CommitProperties::default().with_application_transaction(Transaction::new(app, *version)),
        );
    }
    block_on(builder.into_future()).map_err(failed)?;
    Ok(true)
}
