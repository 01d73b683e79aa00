//! Avro object container files (`.format("avro")`), read and written column-wise with
//! `arrow-avro`. A file carries its own schema in its header, so reading infers it from there;
//! written files are snappy-compressed, as Spark writes Avro by default (the `compression`
//! option picks another codec).
//!
//! Types as Spark maps them: records are structs, `["null", T]` is a nullable T, arrays and
//! maps are lists and maps, `timestamp-micros`/`-millis` are timestamps (UTC), `date` is a
//! date. Brooklet's timestamps are written as `timestamp-micros`, Spark's type for them.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::kernels::cast::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_avro::compression::CompressionCodec;
use arrow_avro::reader::ReaderBuilder;
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroOcfFormat;

use super::{conform, open};
use crate::error::{Error, Result};

fn malformed(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Malformed { file: path.into(), line: None, message: format!("not a readable Avro file: {e}") }
}

/// Every row of the file, in `schema`'s columns (by name, cast to its types).
pub(super) fn read(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let reader = ReaderBuilder::new().build(BufReader::new(open(path)?)).map_err(|e| malformed(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        out.push(conform(path, &batch.map_err(|e| malformed(path, e))?, schema, "field of the Avro schema")?);
    }
    Ok(out)
}

/// The schema in the first file's header, timestamps as Brooklet's (UTC microseconds).
pub(super) fn infer_schema(files: &[&Path]) -> Result<SchemaRef> {
    let first = files.first().ok_or_else(|| Error::Analysis("cannot infer an Avro schema: no files".into()))?;
    let reader = ReaderBuilder::new().build(BufReader::new(open(first)?)).map_err(|e| malformed(first, e))?;
    let fields: Vec<Field> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(_, _) => f.as_ref().clone().with_data_type(crate::ddl::timestamp_type()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Writes `batches` (one schema) as a new Avro file at `path`, its blocks compressed with
/// `codec` (snappy by default, as Spark).
pub(crate) fn write_avro(path: &Path, batches: &[RecordBatch], codec: Option<CompressionCodec>) -> Result<()> {
    let Some(first) = batches.first() else { return Ok(()) };
    let failed = |e: arrow_avro::errors::AvroError| Error::io(path, std::io::Error::other(e));
    // UTC timestamps, so the file says `timestamp-micros` (an instant), not a local time.
    let utc = |t: &DataType| match t {
        DataType::Timestamp(_, None) => Some(DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))),
        _ => None,
    };
    let schema = first.schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| utc(f.data_type()).map_or_else(|| f.as_ref().clone(), |t| f.as_ref().clone().with_data_type(t)))
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = WriterBuilder::new(schema.as_ref().clone())
        .with_compression(codec)
        .build::<_, AvroOcfFormat>(std::io::BufWriter::new(file))
        .map_err(failed)?;
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(|c| match utc(c.data_type()) {
                Some(t) => cast(c, &t),
                None => Ok(c.clone()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?).map_err(failed)?;
    }
    writer.finish().map_err(failed)
}
