//! Avro object container files (`.format("avro")`), read and written column-wise with
//! `arrow-avro`. A file carries its own schema in its header, so reading infers it from there;
//! written files are snappy-compressed, as Spark writes Avro by default (the `compression`
//! option picks another codec), with Spark's schema for their columns: a record named
//! `topLevelRecord` (`recordName`, `recordNamespace`), nullable columns as `[T, "null"]`, or
//! the `avroSchema` option's schema.
//!
//! Types as Spark maps them: records are structs, `["null", T]` is a nullable T, arrays and
//! maps are lists and maps, `timestamp-micros`/`-millis` are timestamps (UTC), `date` is a
//! date. Brooklet's timestamps are written as `timestamp-micros`, Spark's type for them.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_avro::compression::CompressionCodec;
use arrow_avro::reader::ReaderBuilder;
use arrow_avro::schema::SCHEMA_METADATA_KEY;
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroOcfFormat;

use super::avro_schema::{TOP_LEVEL_RECORD, avro_type_of, parse, spark_logical_types};
use super::avro_types::{names_of, to_avro_shape};
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

/// How Avro files are written: Spark's `compression`, `recordName`, `recordNamespace` and
/// `avroSchema` options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AvroWriteOptions {
    /// The block codec (`None`: uncompressed); snappy by default, as Spark.
    pub(crate) codec: Option<CompressionCodec>,
    /// The top-level record's name (Spark's default `topLevelRecord`).
    pub(crate) record_name: String,
    /// Its namespace (none by default); nested records are named in `namespace.record_name`.
    pub(crate) record_namespace: String,
    /// A schema to write with instead of the one derived from the columns.
    pub(crate) schema: Option<serde_json::Value>,
}

impl Default for AvroWriteOptions {
    fn default() -> Self {
        AvroWriteOptions {
            codec: Some(CompressionCodec::Snappy),
            record_name: TOP_LEVEL_RECORD.to_string(),
            record_namespace: String::new(),
            schema: None,
        }
    }
}

/// The options the Avro writer takes.
pub(crate) const WRITE_OPTIONS: &[&str] = &["compression", "recordName", "recordNamespace", "avroSchema"];

impl AvroWriteOptions {
    /// The writer options in `options` (those of [`WRITE_OPTIONS`]).
    pub(crate) fn from_options(options: &crate::options::Options) -> Result<Self> {
        let mut out = AvroWriteOptions::default();
        if let Some(codec) = options.get("compression") {
            out.codec = match codec.to_ascii_lowercase().as_str() {
                "uncompressed" | "none" => None,
                "snappy" => Some(CompressionCodec::Snappy),
                "deflate" => Some(CompressionCodec::Deflate),
                "zstandard" | "zstd" => Some(CompressionCodec::ZStandard),
                "bzip2" => Some(CompressionCodec::Bzip2),
                "xz" => Some(CompressionCodec::Xz),
                other => {
                    return Err(Error::option(
                        "compression",
                        format!(
                            "unknown Avro codec '{other}'; use uncompressed, snappy, deflate, bzip2, xz or zstandard"
                        ),
                    ));
                }
            };
        }
        if let Some(name) = options.get("recordName") {
            out.record_name = name.to_string();
        }
        if let Some(namespace) = options.get("recordNamespace") {
            out.record_namespace = namespace.to_string();
        }
        if let Some(schema) = options.get("avroSchema") {
            out.schema =
                Some(parse(schema, "the avroSchema option").map_err(|e| Error::option("avroSchema", e.to_string()))?);
        }
        Ok(out)
    }

    /// The schema files of `schema`'s columns are written with: `avroSchema`, else Spark's for
    /// the columns (a record `recordName` in `recordNamespace`, nullable columns as
    /// `[T, "null"]`).
    fn avro_schema(&self, schema: &Schema) -> Result<serde_json::Value> {
        match &self.schema {
            Some(given) => Ok(spark_logical_types(given)),
            None => avro_type_of(
                &DataType::Struct(schema.fields().clone()),
                false,
                &self.record_name,
                &self.record_namespace,
            ),
        }
    }
}

/// Writes `batches` (one schema) as a new Avro file at `path`, with the schema and codec of
/// `options`: each batch shaped for that schema as `to_avro` shapes a struct.
pub(crate) fn write_avro(path: &Path, batches: &[RecordBatch], options: &AvroWriteOptions) -> Result<()> {
    let Some(first) = batches.first() else { return Ok(()) };
    let failed = |e: arrow_avro::errors::AvroError| Error::io(path, std::io::Error::other(e));
    let avro = options.avro_schema(&first.schema())?;
    let parsed = apache_avro::Schema::parse(&avro).map_err(|e| Error::option("avroSchema", e.to_string()))?;
    let names = names_of(&parsed)?;
    let shape = |batch: &RecordBatch| -> Result<RecordBatch> {
        let record: ArrayRef = Arc::new(StructArray::from(batch.clone()));
        let shaped = to_avro_shape(&record, &parsed, &names)?;
        Ok(RecordBatch::from(shaped.as_struct()))
    };
    let mut shaped = batches.iter().map(shape);
    let head = shaped.next().expect("one batch")?;
    let metadata = [(SCHEMA_METADATA_KEY.to_string(), avro.to_string())].into();
    let schema = Arc::new(Schema::new_with_metadata(head.schema().fields().clone(), metadata));
    let mut writer = WriterBuilder::new(schema.as_ref().clone())
        .with_compression(options.codec)
        .build::<_, AvroOcfFormat>(Vec::new())
        .map_err(failed)?;
    for batch in std::iter::once(Ok(head)).chain(shaped) {
        writer.write(&batch?.with_schema(schema.clone())?).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    // The header names the schema as given (with its logical types), else Spark's.
    let header = options.schema.as_ref().unwrap_or(&avro).to_string();
    let file = super::avro_header::replace_schema(&writer.into_inner(), &header)?;
    std::fs::write(path, file).map_err(|e| Error::io(path, e))
}
