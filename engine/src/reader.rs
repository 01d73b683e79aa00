//! `session.read()` and `session.read_stream()`: Spark's `DataFrameReader` and
//! `DataStreamReader`, with the same option names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;

use crate::connector::files::table::{FileTable, TableFile};
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::format::FileFormat;
use crate::options::Options;
use crate::plan::tables::StreamingTable;
use crate::session::Session;
use crate::source::SourceSpec;

/// Something that names a schema: an Arrow schema or a DDL string such as
/// `"event_id STRING, timestamp TIMESTAMP"`.
pub trait IntoSchema {
    /// The Arrow schema.
    fn into_schema(self) -> Result<SchemaRef>;
}

impl IntoSchema for SchemaRef {
    fn into_schema(self) -> Result<SchemaRef> {
        Ok(self)
    }
}

impl IntoSchema for Schema {
    fn into_schema(self) -> Result<SchemaRef> {
        Ok(Arc::new(self))
    }
}

impl IntoSchema for &str {
    fn into_schema(self) -> Result<SchemaRef> {
        crate::ddl::parse_schema(self)
    }
}

impl IntoSchema for String {
    fn into_schema(self) -> Result<SchemaRef> {
        crate::ddl::parse_schema(&self)
    }
}

/// What both readers collect before `load`.
#[derive(Debug)]
struct ReaderSpec {
    session: Session,
    format: Option<String>,
    schema: Option<Result<SchemaRef>>,
    options: Options,
}

impl ReaderSpec {
    fn schema(&mut self) -> Result<Option<SchemaRef>> {
        self.schema.take().transpose()
    }

    fn format(&self) -> Result<&str> {
        self.format
            .as_deref()
            .ok_or_else(|| Error::option("format", "no format given: call .format(\"json\") or similar"))
    }
}

macro_rules! reader_builders {
    ($t:ty) => {
        impl $t {
            /// The source format: `json`, `csv`, `text`, `parquet` (and for streams `rate`,
            /// `rate-micro-batch`).
            pub fn format(mut self, format: &str) -> Self {
                self.spec.format = Some(format.to_lowercase());
                self
            }

            /// The schema, as an Arrow schema or a DDL string. A bad DDL string fails at `load`.
            pub fn schema(mut self, schema: impl IntoSchema) -> Self {
                self.spec.schema = Some(schema.into_schema());
                self
            }

            /// A source option, with Spark's name (case-insensitive).
            pub fn option(mut self, key: &str, value: impl ToString) -> Self {
                self.spec.options.set(key, value.to_string());
                self
            }

            /// Several options at once.
            pub fn options<'a>(mut self, options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
                for (k, v) in options {
                    self.spec.options.set(k, v);
                }
                self
            }

            /// `format("json").load(path)`.
            pub fn json(self, path: impl AsRef<Path>) -> Result<DataFrame> {
                self.format("json").load(path)
            }

            /// `format("csv").load(path)`.
            pub fn csv(self, path: impl AsRef<Path>) -> Result<DataFrame> {
                self.format("csv").load(path)
            }

            /// `format("text").load(path)`.
            pub fn text(self, path: impl AsRef<Path>) -> Result<DataFrame> {
                self.format("text").load(path)
            }

            /// `format("parquet").load(path)`.
            pub fn parquet(self, path: impl AsRef<Path>) -> Result<DataFrame> {
                self.format("parquet").load(path)
            }
        }
    };
}

/// Reads a stream: `session.read_stream()`.
#[derive(Debug)]
pub struct DataStreamReader {
    spec: ReaderSpec,
}

/// Reads static data: `session.read()`.
#[derive(Debug)]
pub struct DataFrameReader {
    spec: ReaderSpec,
}

reader_builders!(DataStreamReader);
reader_builders!(DataFrameReader);

impl DataStreamReader {
    pub(crate) fn new(session: Session) -> Self {
        DataStreamReader { spec: ReaderSpec { session, format: None, schema: None, options: Options::default() } }
    }

    /// A streaming DataFrame over a source that needs no path (`rate`, `rate-micro-batch`,
    /// `kafka`).
    pub fn load_source(mut self) -> Result<DataFrame> {
        let format = self.spec.format()?.to_string();
        let Some(source) = crate::connector::stream_source(&format) else {
            if FileFormat::is_file_format(&format) || crate::connector::table_format(&format).is_some() {
                return Err(Error::option("path", format!("format '{format}' reads files: call .load(path)")));
            }
            return Err(unknown_format(&format));
        };
        if self.spec.schema()?.is_some() {
            return Err(Error::Analysis(format!(
                "the {format} source has a fixed schema and does not take .schema(..)"
            )));
        }
        let schema = (source.schema)(&self.spec.options)?;
        self.spec.options.check_known(&format!("format '{format}'"), &(source.options)())?;
        let (create, options) = (source.create, self.spec.options);
        let spec = SourceSpec { schema, name: format.clone(), create: Arc::new(move |ctx| create(&options, ctx)) };
        DataFrame::from_table(&self.spec.session, &format.replace('-', "_"), Arc::new(StreamingTable::new(spec)))
    }

    /// A streaming DataFrame over the files that arrive in directory `path`.
    pub fn load(mut self, path: impl AsRef<Path>) -> Result<DataFrame> {
        let dir = path.as_ref().to_path_buf();
        let name = self.spec.format()?.to_string();
        if crate::connector::stream_source(&name).is_some() {
            return self.load_source();
        }
        if let Some(table) = crate::connector::table_format(&name) {
            refuse_a_schema(&mut self.spec, &name)?;
            self.spec.options.check_known(&format!("format '{name}'"), table.stream_options)?;
            let spec = (table.stream)(&dir, &self.spec.options)?;
            return DataFrame::from_table(&self.spec.session, &table_name(&dir), Arc::new(StreamingTable::new(spec)));
        }
        let format = FileFormat::try_new(&name, &self.spec.options)?;
        if !dir.is_dir() {
            return Err(Error::Analysis(format!("path does not exist or is not a directory: {}", dir.display())));
        }
        let schema = match (self.spec.schema()?, format.has_own_schema()) {
            (Some(schema), _) => schema,
            (None, true) if name == "text" => crate::format::text_schema(),
            (None, _) if self.spec.options.flag("inferSchema", false)? || name == "parquet" || name == "avro" => {
                let files = data_files(&dir)?;
                if files.is_empty() {
                    return Err(Error::Analysis(format!(
                        "unable to infer a schema for {name}: no files in {} yet; give .schema(..)",
                        dir.display()
                    )));
                }
                format.infer_schema(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>())?
            }
            (None, _) => {
                return Err(Error::Analysis(
                    "Schema must be specified when creating a streaming source DataFrame: give .schema(..) \
                     or set option inferSchema=true to infer it from the files already present"
                        .into(),
                ));
            }
        };
        let table_name = table_name(&dir);
        let spec = crate::connector::files::source::spec(dir, format, schema, self.spec.options);
        DataFrame::from_table(&self.spec.session, &table_name, Arc::new(StreamingTable::new(spec)))
    }
}

impl DataFrameReader {
    pub(crate) fn new(session: Session) -> Self {
        DataFrameReader { spec: ReaderSpec { session, format: None, schema: None, options: Options::default() } }
    }

    /// A static DataFrame over a source that needs no path: `kafka`, for an offset range
    /// (`startingOffsets` .. `endingOffsets`), read when this is called.
    pub fn load_source(mut self) -> Result<DataFrame> {
        let format = self.spec.format()?.to_string();
        if self.spec.schema()?.is_some() {
            return Err(Error::Analysis(format!(
                "the {format} source has a fixed schema and does not take .schema(..)"
            )));
        }
        if let Some(batch) = crate::connector::stream_source(&format).and_then(|s| s.batch.as_ref()) {
            self.spec.options.check_known(&format!("format '{format}'"), &(batch.options)())?;
            let (schema, mut partitions) = (batch.read)(&self.spec.options)?;
            if partitions.is_empty() {
                partitions.push(Vec::new());
            }
            let table = MemTable::try_new(schema, partitions)?;
            return DataFrame::from_table(&self.spec.session, &format.replace('-', "_"), Arc::new(table));
        }
        if FileFormat::is_file_format(&format) || crate::connector::table_format(&format).is_some() {
            return Err(Error::option("path", format!("format '{format}' reads files: call .load(path)")));
        }
        Err(unknown_format(&format))
    }

    /// A static DataFrame over a file or a directory of files.
    pub fn load(mut self, path: impl AsRef<Path>) -> Result<DataFrame> {
        let path = path.as_ref();
        let name = self.spec.format()?.to_string();
        if let Some(table) = crate::connector::table_format(&name) {
            refuse_a_schema(&mut self.spec, &name)?;
            self.spec.options.check_known(&format!("format '{name}'"), table.read_options)?;
            let (_, provider) = (table.read)(path, &self.spec.options)?;
            return DataFrame::from_table(&self.spec.session, &table_name(path), provider);
        }
        let format = FileFormat::try_new(&name, &self.spec.options)?;
        let files = if path.is_dir() {
            crate::connector::files::sink::committed_files(path)?.map_or_else(|| data_files(path), Ok)?
        } else if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            return Err(Error::Analysis(format!("path does not exist: {}", path.display())));
        };
        // Hive-style directories (`event_type=click/part-0.parquet`) become columns; every
        // file must sit under the same ones.
        let partitions: Vec<_> =
            files.iter().map(|f| crate::connector::files::sink::partition_values(path, f)).collect();
        let partition_columns: Vec<String> =
            partitions.first().map(|p| p.iter().map(|(k, _)| k.clone()).collect()).unwrap_or_default();
        for (f, values) in files.iter().zip(&partitions) {
            if values.iter().map(|(k, _)| k).ne(partition_columns.iter()) {
                return Err(Error::Analysis(format!(
                    "{} is not under the same partition directories ({}) as the other files",
                    f.display(),
                    partition_columns.join(", ")
                )));
            }
        }
        let given = self.spec.schema()?;
        let partition_types: Vec<DataType> = partition_columns
            .iter()
            .enumerate()
            .map(|(i, name)| match given.as_ref().and_then(|s| s.field_with_name(name).ok()) {
                Some(field) => field.data_type().clone(),
                None => infer_partition_type(partitions.iter().filter_map(|p| p[i].1.clone())),
            })
            .collect();
        let data_schema = match given {
            Some(schema) => {
                let fields: Vec<_> =
                    schema.fields().iter().filter(|f| !partition_columns.contains(f.name())).cloned().collect();
                Arc::new(Schema::new(fields))
            }
            None if name == "text" => crate::format::text_schema(),
            None if files.is_empty() => {
                return Err(Error::Analysis(format!(
                    "unable to infer a schema for {name}: no files in {}",
                    path.display()
                )));
            }
            None => format.infer_schema(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>())?,
        };
        let mut fields: Vec<_> = data_schema.fields().iter().cloned().collect();
        fields.extend(
            partition_columns.iter().zip(&partition_types).map(|(c, t)| Arc::new(Field::new(c, t.clone(), true))),
        );
        let schema = Arc::new(Schema::new(fields));
        // Listed now, read by every scan: a stream joined with it sees each file as it is then.
        let files = files
            .into_iter()
            .zip(partitions)
            .map(|(path, values)| TableFile { path, partition_values: values.into_iter().map(|(_, v)| v).collect() })
            .collect();
        let table = FileTable { files, format, data_schema, schema, partition_columns, partition_types };
        DataFrame::from_table(&self.spec.session, &table_name(path), Arc::new(table))
    }
}

/// Spark's partition column type inference (`PartitioningUtils.inferPartitionColumnValue`):
/// integer, long, decimal(38,0) for larger integers, double, date (`yyyy-MM-dd`), timestamp
/// (`yyyy-MM-dd HH:mm:ss[.fraction]`), else string; every value of the column must fit.
fn infer_partition_type(values: impl Iterator<Item = String>) -> DataType {
    let values: Vec<String> = values.collect();
    let all = |ok: fn(&str) -> bool| values.iter().all(|v| ok(v));
    let big_integer = |v: &str| {
        let digits = v.strip_prefix('-').unwrap_or(v);
        !digits.is_empty() && digits.len() <= 38 && digits.bytes().all(|b| b.is_ascii_digit())
    };
    let date = |v: &str| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() && v.len() == 10;
    let timestamp = |v: &str| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f").is_ok();
    if all(|v| v.parse::<i32>().is_ok()) {
        DataType::Int32
    } else if all(|v| v.parse::<i64>().is_ok()) {
        DataType::Int64
    } else if all(big_integer) {
        DataType::Decimal128(38, 0)
    } else if all(|v| v.parse::<f64>().is_ok()) {
        DataType::Float64
    } else if all(date) {
        DataType::Date32
    } else if all(timestamp) {
        crate::ddl::timestamp_type()
    } else {
        DataType::Utf8
    }
}

/// A plan's name for the table read from `path`: its last component, as an identifier.
fn table_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String = stem.chars().map(|c| if c.is_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) { format!("t_{name}") } else { name }
}

fn unknown_format(name: &str) -> Error {
    let note = crate::connector::kafka_note();
    let names = [
        &crate::format::FILE_FORMATS[..],
        &crate::connector::table_format_names(),
        &crate::connector::stream_source_names(),
    ]
    .concat();
    Error::option("format", format!("unknown format '{name}'; sources are {}{note}", names.join(", ")))
}

/// A table format (Delta) does not take a schema: the table has its own.
fn refuse_a_schema(spec: &mut ReaderSpec, name: &str) -> Result<()> {
    if spec.schema()?.is_some() {
        return Err(Error::Analysis(format!("the {name} format keeps its own schema and does not take .schema(..)")));
    }
    Ok(())
}

/// The data files in `dir` and its `column=value` subdirectories (hidden and `_`-prefixed
/// names skipped), sorted by path.
pub(crate) fn data_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            files.push(path);
        } else if path.is_dir() && name.contains('=') {
            files.extend(data_files(&path)?);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[&str]) -> DataType {
        infer_partition_type(values.iter().map(|v| v.to_string()))
    }

    #[test]
    fn partition_types_are_inferred_like_spark() {
        assert_eq!(infer(&["1", "-2"]), DataType::Int32);
        assert_eq!(infer(&["1", "3000000000"]), DataType::Int64);
        assert_eq!(infer(&["12345678901234567890"]), DataType::Decimal128(38, 0));
        assert_eq!(infer(&["1", "2.5"]), DataType::Float64);
        assert_eq!(infer(&["2024-01-01", "2024-02-29"]), DataType::Date32);
        assert_eq!(infer(&["2024-01-01 10:00:00", "2024-01-01 10:00:00.25"]), crate::ddl::timestamp_type());
        assert_eq!(infer(&["2024-01-01", "click"]), DataType::Utf8);
    }
}
