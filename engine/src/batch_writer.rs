//! [`DataFrameWriter`]: `df.write()...save(..)`, Spark's writer for static DataFrames — to
//! files (`parquet`, `json`, `csv`, with the same manifest the streaming file sink keeps) or
//! to Kafka. Inside `foreach_batch` it writes each micro-batch's DataFrame somewhere a
//! streaming sink does not go.

use std::path::Path;

use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::sink::Sink;
use crate::sink::file::{FileSink, WriteFormat};

/// What to do when the destination directory already has data (Spark's `SaveMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveMode {
    ErrorIfExists,
    Overwrite,
}

/// Writes a static DataFrame: `df.write().format("parquet").save(dir)`.
#[derive(Debug)]
pub struct DataFrameWriter {
    df: DataFrame,
    format: String,
    mode: String,
    options: Options,
    partition_by: Vec<String>,
}

impl DataFrameWriter {
    pub(crate) fn new(df: DataFrame) -> Self {
        DataFrameWriter {
            df,
            format: "parquet".into(),
            mode: "errorifexists".into(),
            options: Options::default(),
            partition_by: Vec::new(),
        }
    }

    /// `parquet` (the default), `json`, `csv`, or `kafka`.
    pub fn format(mut self, format: &str) -> Self {
        self.format = format.to_lowercase();
        self
    }

    /// For files: `errorifexists` (the default) or `overwrite`.
    pub fn mode(mut self, mode: &str) -> Self {
        self.mode = mode.to_lowercase();
        self
    }

    /// Sets an option (for Kafka: `kafka.bootstrap.servers`, `topic`, any `kafka.*`).
    pub fn option(mut self, key: &str, value: impl ToString) -> Self {
        self.options.set(key, value.to_string());
        self
    }

    /// Files under Hive-style `column=value/` directories.
    pub fn partition_by(mut self, columns: &[&str]) -> Self {
        self.partition_by = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    fn refuse_a_stream(&self) -> Result<()> {
        if self.df.is_streaming() {
            return Err(Error::Analysis("'write' can not be called on streaming Dataset/DataFrame".into()));
        }
        Ok(())
    }

    /// Writes files into directory `path`.
    pub fn save(self, path: impl AsRef<Path>) -> Result<()> {
        self.refuse_a_stream()?;
        let dir = path.as_ref();
        let format = WriteFormat::from_name(&self.format).ok_or_else(|| {
            Error::option(
                "format",
                format!("'{}' writes no files: parquet, json or csv (kafka: save_source)", self.format),
            )
        })?;
        let mode = match self.mode.as_str() {
            "errorifexists" | "error" => SaveMode::ErrorIfExists,
            "overwrite" => SaveMode::Overwrite,
            other => return Err(Error::option("mode", format!("'{other}': use errorifexists or overwrite"))),
        };
        let exists = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        match (exists, mode) {
            (true, SaveMode::ErrorIfExists) => {
                return Err(Error::Analysis(format!(
                    "path {} already exists: write with mode(\"overwrite\") to replace it",
                    dir.display()
                )));
            }
            (true, SaveMode::Overwrite) => std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?,
            (false, _) => {}
        }
        self.options.check_known(&format!("writer '{}'", self.format), &[])?;
        let schema = self.df.schema();
        let batches = self.df.collect()?;
        FileSink::try_new(dir.to_path_buf(), format, self.partition_by, &schema)?.add_batch(0, &schema, &batches)
    }

    /// Writes to a destination that is not a path: `kafka`, each row one record (columns
    /// `value`, and optionally `key`, `topic`, `partition`, `headers`), at least once.
    pub fn save_source(self) -> Result<()> {
        self.refuse_a_stream()?;
        match self.format.as_str() {
            #[cfg(feature = "kafka")]
            "kafka" => {
                self.options.check_known("writer 'kafka'", &["kafka.*", "topic"])?;
                let schema = self.df.schema();
                let batches = self.df.collect()?;
                let mut sink =
                    crate::kafka::sink::KafkaSink::try_new(&self.options, uuid::Uuid::nil(), std::env::temp_dir())?;
                sink.add_batch(0, &schema, &batches)
            }
            other => Err(Error::option("format", format!("'{other}' writes to a path: call save(path)"))),
        }
    }
}
