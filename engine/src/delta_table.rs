//! [`DeltaTable`]: Spark-Delta's `DeltaTable.forPath(spark, path)` (feature `delta`) — a
//! table's content and history as DataFrames, and MERGE, the way an update-mode query's rows
//! reach a Delta table: each batch upserted by key from `foreach_batch`.
//!
//! ```no_run
//! use brooklet::prelude::*;
//! use brooklet::DeltaTable;
//!
//! let session = Session::new();
//! # let counts: DataFrame = todo!();
//! let query = counts
//!     .write_stream()
//!     .output_mode("update")
//!     .foreach_batch(|batch, batch_id| {
//!         let table = DeltaTable::for_path(batch.session(), "tables/counts")?;
//!         table
//!             .merge(&batch, "t.start = s.start AND t.user_id = s.user_id")
//!             .when_matched_update_all()
//!             .when_not_matched_insert_all()
//!             .idempotent("counts-query", batch_id)
//!             .execute()
//!             .map(|_| ())
//!     })
//!     .start()?;
//! # Ok::<(), brooklet::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::MemTable;

use crate::connector::delta::{MergeSpec, history, merge};
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::session::Session;

/// A Delta table at a path.
#[derive(Debug, Clone)]
pub struct DeltaTable {
    session: Session,
    path: PathBuf,
}

impl DeltaTable {
    /// The table at `path`; an error if there is none.
    pub fn for_path(session: &Session, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !crate::connector::delta::is_table(&path) {
            return Err(Error::Analysis(format!("{} is not a Delta table", path.display())));
        }
        Ok(DeltaTable { session: session.clone(), path })
    }

    /// Whether `path` holds a Delta table (Spark-Delta's `DeltaTable.isDeltaTable`).
    pub fn is_delta_table(path: impl AsRef<Path>) -> bool {
        crate::connector::delta::is_table(path.as_ref())
    }

    /// The table's latest version as a static DataFrame.
    pub fn to_df(&self) -> Result<DataFrame> {
        self.session.read().format("delta").load(&self.path)
    }

    /// One row per commit, newest first: `version`, `timestamp`, `operation`,
    /// `operationParameters` (JSON), `addedFiles`, `removedFiles`, and the application
    /// transaction (`txnAppId`, `txnVersion`) a streaming sink records for each batch.
    pub fn history(&self) -> Result<DataFrame> {
        let (schema, batch) = history(&self.path)?;
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        DataFrame::from_table(&self.session, "history", Arc::new(table))
    }

    /// MERGE `source` into this table: `condition` names the table's columns `t.` and the
    /// source's `s.` (`"t.id = s.id"`). Say what to do with matches and non-matches, then
    /// [`DeltaMerge::execute`].
    pub fn merge(&self, source: &DataFrame, condition: &str) -> DeltaMerge {
        DeltaMerge {
            table: self.clone(),
            source: source.clone(),
            condition: condition.into(),
            spec: MergeSpec::default(),
        }
    }
}

/// A MERGE being described: Spark-Delta's `DeltaMergeBuilder`.
#[derive(Debug)]
pub struct DeltaMerge {
    table: DeltaTable,
    source: DataFrame,
    condition: String,
    spec: MergeSpec,
}

impl DeltaMerge {
    /// A matched row takes every column's value from the source (`whenMatched().updateAll()`).
    pub fn when_matched_update_all(mut self) -> Self {
        self.spec.update_all = true;
        self
    }

    /// A matched row is deleted (`whenMatched().delete()`).
    pub fn when_matched_delete(mut self) -> Self {
        self.spec.delete = true;
        self
    }

    /// A source row with no match is inserted (`whenNotMatched().insertAll()`).
    pub fn when_not_matched_insert_all(mut self) -> Self {
        self.spec.insert_all = true;
        self
    }

    /// Runs once per `(app_id, version)`: skipped when the table already holds that version
    /// (or a later one) for `app_id`, else recorded in the commit. In `foreach_batch`, pass a
    /// name of the query and the batch id, and a re-run batch merges nothing twice.
    pub fn idempotent(mut self, app_id: &str, version: u64) -> Self {
        self.spec.txn = Some((app_id.into(), version as i64));
        self
    }

    /// Runs the MERGE as one commit; `false` when [`DeltaMerge::idempotent`] found it done.
    pub fn execute(self) -> Result<bool> {
        if self.source.is_streaming() {
            return Err(Error::Analysis("MERGE takes a static DataFrame (in foreach_batch, the batch's)".into()));
        }
        let state = self.table.session.datafusion().state();
        merge(&self.table.path, state, self.source.df.clone(), &self.condition, &self.spec)
    }
}
