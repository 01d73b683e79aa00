//! [`DataFrameWriter`]: `df.write()...save(..)`, Spark's writer for static DataFrames — to
//! files (`parquet`, `json`, `csv`, with the same manifest the streaming file sink keeps) or
//! to Kafka. Inside `foreach_batch` it writes each micro-batch's DataFrame somewhere a
//! streaming sink does not go.

use std::path::Path;

use crate::checkpoint::log::log_entries;
use crate::connector::SaveMode;
use crate::connector::files::sink::{FileSink, MANIFEST_DIR, WriteFormat};
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::sink::Sink;

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

    /// When the directory already has data: `errorifexists` (the default), `overwrite`,
    /// `append` or `ignore`.
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

    /// Writes files into directory `path`, or the table there (`delta`).
    pub fn save(self, path: impl AsRef<Path>) -> Result<()> {
        self.refuse_a_stream()?;
        let dir = path.as_ref();
        if let Some(table) = crate::connector::table_format(&self.format) {
            let mode = SaveMode::from_name(&self.mode)?;
            self.options.check_known(&format!("writer '{}'", self.format), table.write_options)?;
            let schema = self.df.schema();
            let batches = self.df.collect()?;
            return (table.write)(dir, mode, &self.options, &self.partition_by, &schema, &batches);
        }
        let format = WriteFormat::from_name(&self.format).ok_or_else(|| {
            Error::option(
                "format",
                format!("'{}' writes no files: parquet, json, csv or avro (kafka: save_source)", self.format),
            )
        })?;
        let mode = SaveMode::from_name(&self.mode)?;
        self.options.check_known(&format!("writer '{}'", self.format), crate::format::AVRO_WRITE_OPTIONS)?;
        let format = format.with_options(&self.options)?;
        let exists = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        let batch_id = match (exists, mode) {
            (false, _) | (true, SaveMode::Overwrite) => 0,
            (true, SaveMode::ErrorIfExists) => {
                return Err(Error::Analysis(format!(
                    "path {} already exists: write with mode(\"overwrite\") to replace it or mode(\"append\") to add to it",
                    dir.display()
                )));
            }
            (true, SaveMode::Ignore) => return Ok(()),
            (true, SaveMode::Append) => next_manifest_entry(dir)?,
        };
        // The query runs before an overwrite deletes anything, so a query that fails leaves
        // the old data in place.
        let schema = self.df.schema();
        let batches = self.df.collect()?;
        if exists && mode == SaveMode::Overwrite {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        FileSink::try_new(dir.to_path_buf(), format, self.partition_by, &schema)?.add_batch(batch_id, &schema, &batches)
    }

    /// Writes to a destination that is not a path: `kafka`, each row one record (columns
    /// `value`, and optionally `key`, `topic`, `partition`, `headers`), at least once.
    pub fn save_source(self) -> Result<()> {
        self.refuse_a_stream()?;
        let format = self.format.as_str();
        let Some(batch) = crate::connector::sink(format).ok().and_then(|s| s.batch.as_ref()) else {
            return Err(Error::option("format", format!("'{format}' writes to a path: call save(path)")));
        };
        self.options.check_known(&format!("writer '{format}'"), batch.options)?;
        let schema = self.df.schema();
        let batches = self.df.collect()?;
        (batch.write)(&self.options, &schema, &batches)
    }
}

/// The manifest entry an append to `dir` writes: one past the last. A directory with files
/// but no manifest is refused, because adding a manifest would hide the files already there
/// from every reader.
fn next_manifest_entry(dir: &Path) -> Result<u64> {
    let manifest = dir.join(MANIFEST_DIR);
    if !manifest.is_dir() {
        return Err(Error::Analysis(format!(
            "cannot append to {}: it has files but no {MANIFEST_DIR} manifest, and appending would hide them \
             from readers; write to a new directory",
            dir.display()
        )));
    }
    Ok(log_entries(&manifest)?.last().map_or(0, |last| last + 1))
}

#[cfg(test)]
mod tests {
    use crate::Session;

    /// The ids in `dir`, read back through its manifest, sorted.
    fn ids(session: &Session, dir: &std::path::Path) -> Vec<String> {
        let df = session.read().format("json").schema("id BIGINT").load(dir).expect("read back");
        df.create_or_replace_temp_view("written").expect("view");
        let table = session.sql("SELECT id FROM written ORDER BY id").unwrap().to_string_table(100).unwrap();
        table.lines().filter(|l| l.starts_with('|')).skip(1).map(|l| l.trim_matches(['|', ' ']).to_string()).collect()
    }

    #[test]
    fn save_modes_refuse_replace_add_to_or_leave_what_is_there() {
        let session = Session::new();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let write = |range: &str, mode: &str| {
            session.sql(&format!("SELECT id FROM {range}")).unwrap().write().format("json").mode(mode).save(&out)
        };
        write("(VALUES (1), (2)) AS t(id)", "errorifexists").unwrap();
        let e = write("(VALUES (3)) AS t(id)", "errorifexists").unwrap_err().to_string();
        assert!(e.contains("already exists") && e.contains("append"), "{e}");
        write("(VALUES (3)) AS t(id)", "append").unwrap();
        assert_eq!(ids(&session, &out), ["1", "2", "3"]);
        write("(VALUES (4)) AS t(id)", "ignore").unwrap();
        assert_eq!(ids(&session, &out), ["1", "2", "3"]);
        let failing = session.sql("SELECT CAST(s AS BIGINT) AS id FROM (VALUES ('x')) AS t(s)").unwrap();
        let e = failing.write().format("json").mode("overwrite").save(&out).unwrap_err().to_string();
        assert!(e.contains("'x'"), "{e}");
        assert_eq!(ids(&session, &out), ["1", "2", "3"], "a failed overwrite deletes nothing");
        write("(VALUES (5)) AS t(id)", "overwrite").unwrap();
        assert_eq!(ids(&session, &out), ["5"]);
        let e = write("(VALUES (6)) AS t(id)", "upsert").unwrap_err().to_string();
        assert!(e.contains("'upsert'") && e.contains("ignore"), "{e}");
    }

    #[test]
    fn append_refuses_a_directory_without_a_manifest() {
        let session = Session::new();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.json"), "{\"id\": 1}\n").unwrap();
        let e = session.sql("SELECT 2 AS id").unwrap().write().format("json").mode("append").save(dir.path());
        let e = e.unwrap_err().to_string();
        assert!(e.contains("no _spark_metadata manifest") && e.contains("hide"), "{e}");
        assert_eq!(ids(&session, dir.path()), ["1"]);
    }
}
