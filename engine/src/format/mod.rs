//! File formats: JSON lines, CSV, text, Parquet and Avro, decoded by arrow-json, arrow-csv,
//! parquet and arrow-avro, with Spark's rules for bad records (`mode` = PERMISSIVE, DROPMALFORMED,
//! FAILFAST; semantics appendix, §9).

mod avro;
pub(crate) mod avro_binary;
mod avro_header;
pub(crate) mod avro_schema;
mod avro_types;
mod csv;
pub mod datetime;
mod json;
mod json_scan;
mod parquet;
mod parquet_dictionary;
mod text;

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::options::Options;

pub(crate) use self::avro::{AvroWriteOptions, WRITE_OPTIONS as AVRO_WRITE_OPTIONS, write_avro};
pub use self::parquet::{write_parquet, writer_properties};
pub(crate) use json::{JsonOptions, decode_documents};

/// What to do with a record that does not fit the schema (Spark's `mode` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// Keep the record: bad fields become null; the raw text goes to the corrupt-record
    /// column when the schema has one.
    Permissive,
    /// Drop the record.
    DropMalformed,
    /// Fail the query, naming file and line.
    FailFast,
}

/// A file format with its reader options, validated.
#[derive(Debug, Clone)]
pub enum FileFormat {
    /// JSON lines.
    Json(json::JsonOptions),
    /// Delimited text with an optional header.
    Csv(csv::CsvOptions),
    /// One row per line in a `value` column.
    Text,
    /// Apache Parquet.
    Parquet,
    /// Avro object container files.
    Avro,
}

/// Options every file source takes, whatever the format.
pub(crate) const FILE_SOURCE_OPTIONS: &[&str] = &[
    "maxFilesPerTrigger",
    "latestFirst",
    "maxFileAge",
    "pathGlobFilter",
    "recursiveFileLookup",
    "inferSchema",
    "path",
];

/// The names of the file formats.
pub(crate) const FILE_FORMATS: [&str; 5] = ["json", "csv", "text", "parquet", "avro"];

impl FileFormat {
    /// Whether `name` is a file format's.
    pub(crate) fn is_file_format(name: &str) -> bool {
        FILE_FORMATS.contains(&name)
    }

    /// The format named `name` with `options`; unknown options are errors.
    pub fn try_new(name: &str, options: &Options) -> Result<Self> {
        let (format, known): (FileFormat, &[&str]) = match name {
            "json" => (FileFormat::Json(json::JsonOptions::try_new(options)?), json::OPTIONS),
            "csv" => (FileFormat::Csv(csv::CsvOptions::try_new(options)?), csv::OPTIONS),
            "text" => (FileFormat::Text, &[]),
            "parquet" => (FileFormat::Parquet, &[]),
            "avro" => (FileFormat::Avro, &[]),
            other => {
                return Err(Error::option(
                    "format",
                    format!("unknown format '{other}'; file formats are {}", FILE_FORMATS.join(", ")),
                ));
            }
        };
        let all: Vec<&str> = known.iter().chain(FILE_SOURCE_OPTIONS).copied().collect();
        options.check_known(&format!("format '{name}'"), &all)?;
        Ok(format)
    }

    /// Reads one whole file into batches of `schema`.
    pub fn read(&self, path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        match self {
            FileFormat::Json(o) => json::read(path, schema, o),
            FileFormat::Csv(o) => csv::read(path, schema, o),
            FileFormat::Text => text::read(path, schema),
            FileFormat::Parquet => parquet::read(path, schema),
            FileFormat::Avro => avro::read(path, schema),
        }
    }

    /// Infers a schema from sample files (Spark's `inferSchema`).
    pub fn infer_schema(&self, files: &[&Path]) -> Result<SchemaRef> {
        match self {
            FileFormat::Json(_) => json::infer_schema(files),
            FileFormat::Csv(o) => csv::infer_schema(files, o),
            FileFormat::Text => Ok(text_schema()),
            FileFormat::Parquet => parquet::infer_schema(files),
            FileFormat::Avro => avro::infer_schema(files),
        }
    }

    /// Whether the format has a fixed schema (text) or carries its own (parquet, avro).
    pub fn has_own_schema(&self) -> bool {
        matches!(self, FileFormat::Text | FileFormat::Parquet | FileFormat::Avro)
    }
}

/// The schema of the text format: one `value STRING` column.
pub fn text_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]))
}

fn parse_mode(options: &Options) -> Result<ParseMode> {
    match options.get("mode").map(str::to_uppercase).as_deref() {
        None | Some("PERMISSIVE") => Ok(ParseMode::Permissive),
        Some("DROPMALFORMED") => Ok(ParseMode::DropMalformed),
        Some("FAILFAST") => Ok(ParseMode::FailFast),
        Some(other) => {
            Err(Error::option("mode", format!("unknown mode '{other}'; use PERMISSIVE, DROPMALFORMED or FAILFAST")))
        }
    }
}

/// Spark's types for inferred schemas: integers are LONG, decimals DOUBLE.
fn widen_inferred(schema: Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int64,
                DataType::Float16 | DataType::Float32 => DataType::Float64,
                DataType::Timestamp(_, _) => crate::ddl::timestamp_type(),
                t => t.clone(),
            };
            Field::new(f.name(), t, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` (decoded from the file at `path`) in `schema`'s columns: each found by name and
/// cast to its type, since a self-describing file may hold more columns or narrower types than
/// the query asks for. `what` says where a missing column was looked for.
/// `batch` as `schema`'s columns, each cast to its type. A nullable column the file lacks is
/// all nulls, as Spark's readers give a column added to a table after the file was written
/// (Delta's `mergeSchema`); a non-nullable one is an error naming the file.
fn conform(path: &Path, batch: &RecordBatch, schema: &SchemaRef, what: &str) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) => arrow::compute::kernels::cast::cast(column, field.data_type())?,
            None if field.is_nullable() => arrow::array::new_null_array(field.data_type(), batch.num_rows()),
            None => {
                return Err(Error::Malformed {
                    file: path.into(),
                    line: None,
                    message: format!("no {what} '{}' in the file", field.name()),
                });
            }
        };
        columns.push(column);
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(schema.clone(), columns, &options)?)
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

/// The schema without the corrupt-record column, and that column's index in `schema`.
fn split_corrupt_column(schema: &SchemaRef, name: Option<&str>) -> Result<(SchemaRef, Option<usize>)> {
    let Some(name) = name else { return Ok((schema.clone(), None)) };
    let Ok(idx) = schema.index_of(name) else { return Ok((schema.clone(), None)) };
    if schema.field(idx).data_type() != &DataType::Utf8 {
        return Err(Error::option("columnNameOfCorruptRecord", format!("column '{name}' must be STRING")));
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.remove(idx);
    Ok((Arc::new(Schema::new(fields)), Some(idx)))
}
