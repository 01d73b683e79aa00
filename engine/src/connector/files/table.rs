//! A static DataFrame over files (`session.read()...load(path)`): the files are listed when it
//! is loaded and read every time a plan scans it, as Spark reads them for every action. A
//! stream joined with it therefore sees what a file holds at each batch.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session as DfSession;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::error::Result;
use crate::format::FileFormat;
use crate::source::InputPartitions;

/// One file and the values of its Hive-style partition directories (`k=v/`).
pub(crate) struct TableFile {
    pub path: PathBuf,
    pub partition_values: Vec<Option<String>>,
}

/// Files read on every scan, with their partition columns.
pub(crate) struct FileTable {
    pub files: Vec<TableFile>,
    pub format: FileFormat,
    /// The files' own columns.
    pub data_schema: SchemaRef,
    /// The table's columns: the files' own and the partition columns, in any order (a
    /// directory of files puts the partition columns last; a Delta table says where).
    pub schema: SchemaRef,
    /// The partition columns, in the order of each file's `partition_values`.
    pub partition_columns: Vec<String>,
    pub partition_types: Vec<DataType>,
}

impl std::fmt::Debug for FileTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTable").field("files", &self.files.len()).field("schema", &self.schema).finish()
    }
}

impl FileTable {
    /// Every row of every file, each file's rows in order, the files in the input partitions
    /// Spark's file scan packs them into over `parallelism` cores (`partitions.rs`).
    pub(crate) fn read(&self, parallelism: usize) -> Result<InputPartitions> {
        // Where each of the table's columns comes from, among the files' own then the partitions'.
        let data = self.data_schema.fields().len();
        let order: Vec<usize> = self
            .schema
            .fields()
            .iter()
            .map(|f| match self.data_schema.index_of(f.name()) {
                Ok(i) => Ok(i),
                Err(_) => {
                    self.partition_columns.iter().position(|p| p == f.name()).map(|p| data + p).ok_or_else(|| {
                        crate::error::Error::Internal(format!(
                            "column '{}' is neither in the files nor a partition",
                            f.name()
                        ))
                    })
                }
            })
            .collect::<Result<_>>()?;
        let per_file = crate::parallel::map_ordered(&self.files, |file| {
            let mut batches = Vec::new();
            for batch in self.format.read(&file.path, &self.data_schema)? {
                let mut columns = batch.columns().to_vec();
                for (value, data_type) in file.partition_values.iter().zip(&self.partition_types) {
                    let text = StringArray::from(vec![value.as_deref(); batch.num_rows()]);
                    columns.push(arrow::compute::cast(&text, data_type)?);
                }
                let columns = order.iter().map(|&i| columns[i].clone()).collect();
                batches.push(RecordBatch::try_new(self.schema.clone(), columns)?);
            }
            Ok(batches)
        })?;
        let paths: Vec<&std::path::Path> = self.files.iter().map(|f| f.path.as_path()).collect();
        super::partitions::group(&paths, per_file, parallelism)
    }
}

#[async_trait]
impl TableProvider for FileTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut partitions = self.read(state.config().target_partitions())?;
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        Ok(MemorySourceConfig::try_new_exec(&partitions, self.schema.clone(), projection.cloned())?)
    }
}
