//! Apache Parquet files, read and written with the `parquet` crate.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::{conform, open, parquet_dictionary};
use crate::error::{Error, Result};

pub(super) fn read(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let malformed =
        |e: parquet::errors::ParquetError| Error::Malformed { file: path.into(), line: None, message: e.to_string() };
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(open(path)?).map_err(malformed)?.build().map_err(malformed)?;
    let mut out = Vec::new();
    for batch in reader {
        out.push(conform(path, &batch?, schema, "column")?);
    }
    Ok(out)
}

pub(super) fn infer_schema(files: &[&Path]) -> Result<SchemaRef> {
    let first = files.first().ok_or_else(|| Error::Analysis("cannot infer a parquet schema: no files".into()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(open(first)?).map_err(|e| Error::Malformed {
        file: first.to_path_buf(),
        line: None,
        message: e.to_string(),
    })?;
    Ok(builder.schema().clone())
}

/// How Brooklet writes Parquet, for its file sink and its Delta tables alike: Snappy, as Spark
/// writes by default; a dictionary only where it pays, as parquet-java decides on the first
/// page.
pub fn writer_properties(batches: &[RecordBatch]) -> WriterProperties {
    let mut props = WriterProperties::builder().set_compression(Compression::SNAPPY);
    for name in parquet_dictionary::columns_without_dictionary(batches) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    props.build()
}

/// Writes `batches` to a new parquet file at `path`.
pub fn write_parquet(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let failed = |e: parquet::errors::ParquetError| Error::io(path, std::io::Error::other(e));
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties(batches))).map_err(failed)?;
    for b in batches {
        writer.write(b).map_err(failed)?;
    }
    writer.close().map_err(failed)?;
    Ok(())
}
