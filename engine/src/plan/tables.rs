//! The two table providers that put a stream into a DataFusion plan.
//!
//! A streaming DataFrame's plan scans a [`StreamingTable`]: a placeholder that knows how to
//! create its source but holds no data, so a batch action on it fails with Spark's message.
//! When a query starts, every such scan is swapped for a [`BatchTable`]: a slot the
//! micro-batch loop fills with the rows of the current batch before each plan run.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session as DfSession;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::source::{InputPartitions, SourceSpec};

/// A streaming source in a logical plan. Scanning it directly is an error: streams run
/// through `write_stream().start()`.
#[derive(Debug)]
pub struct StreamingTable {
    pub(crate) spec: Arc<SourceSpec>,
}

impl StreamingTable {
    pub(crate) fn new(spec: SourceSpec) -> Self {
        StreamingTable { spec: Arc::new(spec) }
    }
}

#[async_trait]
impl TableProvider for StreamingTable {
    fn schema(&self) -> SchemaRef {
        self.spec.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(crate::error::streaming_action_error("scan").into())
    }
}

/// The rows of the current micro-batch for one source (or for one operator's output), shared
/// between the micro-batch loop, which fills it, and the plan, which scans it.
#[derive(Debug, Clone)]
pub struct BatchTable {
    schema: SchemaRef,
    rows: Arc<Mutex<InputPartitions>>,
    partitions: usize,
    /// Scan the source's own partitions, unsplit: the plan asks `spark_partition_id()`.
    exact: bool,
}

impl BatchTable {
    pub(crate) fn new(schema: SchemaRef, partitions: usize) -> Self {
        BatchTable { schema, rows: Arc::default(), partitions: partitions.max(1), exact: false }
    }

    /// A source's table whose scans keep the source's partitions as they are, so each row is
    /// in the partition `spark_partition_id()` numbers.
    pub(crate) fn exact_partitions(mut self) -> Self {
        self.exact = true;
        self
    }

    /// Replaces the rows the next plan run will see. Rows a plan produced under other column
    /// names (an operator's input or output) take the table's names; their types must match.
    pub(crate) fn set(&self, batches: Vec<RecordBatch>) -> crate::error::Result<()> {
        self.set_partitions(vec![batches])
    }

    /// [`BatchTable::set`] for a source's rows, partition by partition.
    pub(crate) fn set_partitions(&self, partitions: InputPartitions) -> crate::error::Result<()> {
        let rename = |b: RecordBatch| {
            if b.schema() == self.schema {
                return Ok(b);
            }
            RecordBatch::try_new_with_options(
                self.schema.clone(),
                b.columns().to_vec(),
                &arrow::array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
            )
        };
        let partitions = partitions
            .into_iter()
            .map(|p| p.into_iter().map(rename).collect::<std::result::Result<Vec<_>, _>>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        *self.rows.lock().expect("batch table lock poisoned") = partitions;
        Ok(())
    }
}

#[async_trait]
impl TableProvider for BatchTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let rows = self.rows.lock().expect("batch table lock poisoned").clone();
        let mut partitions = if self.exact {
            rows
        } else {
            // Split the record batches into contiguous runs, one per partition, so every core
            // works on a large batch and reading the partitions in order reads the rows in
            // input order.
            let batches: Vec<RecordBatch> = rows.into_iter().flatten().collect();
            let n = self.partitions.min(batches.len()).max(1);
            let per_partition = batches.len().div_ceil(n).max(1);
            let mut runs: Vec<Vec<RecordBatch>> = batches.chunks(per_partition).map(<[_]>::to_vec).collect();
            runs.resize(n, Vec::new());
            runs
        };
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        let exec = MemorySourceConfig::try_new_exec(&partitions, self.schema.clone(), projection.cloned())?;
        Ok(exec)
    }
}
