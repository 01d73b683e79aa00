//! File sinks (`parquet`, `json`, `csv`): each batch's rows as new files, optionally in
//! Hive-style `column=value/` directories, made visible by a manifest.
//!
//! ```text
//! <path>/_spark_metadata/<N>            v1 + one {"path", "size", "batchId"} per file of batch N
//! <path>/event_type=click/part-00003-000.parquet
//! ```
//!
//! A batch's files are written first, its manifest entry last (atomically). Readers
//! (`session.read()` of the directory) list only files named in the manifest, so files of a
//! batch that crashed half-way are never seen, and a re-run batch (same id, same file names)
//! replaces them. A batch whose manifest entry exists is skipped: the sink is idempotent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};

use crate::checkpoint::log::{log_entries, read_log_file, write_log_file};
use crate::error::{Error, Result};
use crate::format::{AVRO_WRITE_OPTIONS as WRITE_OPTIONS, AvroWriteOptions};
use crate::sink::Sink;

/// The manifest directory, named as Spark names it so tools that know Spark's layout work.
pub const MANIFEST_DIR: &str = "_spark_metadata";

/// The value Spark writes for a null partition value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestEntry {
    path: String,
    size: u64,
    batch_id: u64,
}

/// The files a file sink committed under `dir`, in commit order; `None` when `dir` has no
/// manifest (it was not written by a streaming file sink).
pub fn committed_files(dir: &Path) -> Result<Option<Vec<PathBuf>>> {
    let manifest = dir.join(MANIFEST_DIR);
    if !manifest.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for n in log_entries(&manifest)? {
        let path = manifest.join(n.to_string());
        for line in read_log_file(&path)? {
            let entry: ManifestEntry = serde_json::from_str(&line)
                .map_err(|e| Error::checkpoint(&path, format!("bad manifest entry: {e}")))?;
            files.push(dir.join(entry.path));
        }
    }
    Ok(Some(files))
}

/// Hive-style partition values in `file`'s path below `root`: `a=1/b=x/part.parquet` gives
/// `[(a, 1), (b, x)]`; a null partition is `None`.
pub fn partition_values(root: &Path, file: &Path) -> Vec<(String, Option<String>)> {
    let Ok(rel) = file.strip_prefix(root) else { return Vec::new() };
    let Some(parent) = rel.parent() else { return Vec::new() };
    parent
        .components()
        .filter_map(|c| {
            let c = c.as_os_str().to_string_lossy();
            let (k, v) = c.split_once('=')?;
            Some((unescape_path_name(k), (v != NULL_PARTITION).then(|| unescape_path_name(v))))
        })
        .collect()
}

/// Characters Spark escapes as `%XX` in partition directory names (`ExternalCatalogUtils`).
fn needs_escape(c: char) -> bool {
    c.is_ascii_control() || "\"#%'*/:=?\\{[]^".contains(c)
}

/// A partition column or value as a directory name: `2024-01-01 10:00:00` becomes
/// `2024-01-01 10%3A00%3A00`, as Spark writes it.
pub(crate) fn escape_path_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`escape_path_name`]; a `%` not followed by two hex digits stays as it is.
pub(crate) fn unescape_path_name(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The format files are written in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WriteFormat {
    Parquet,
    Json,
    Csv,
    /// With its codec and schema names.
    Avro(Box<AvroWriteOptions>),
}

impl WriteFormat {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "parquet" => Some(WriteFormat::Parquet),
            "json" => Some(WriteFormat::Json),
            "csv" => Some(WriteFormat::Csv),
            "avro" => Some(WriteFormat::Avro(Box::default())),
            _ => None,
        }
    }

    /// The format with the writer options it takes: Avro's `compression` (Spark's names:
    /// `uncompressed`, `snappy`, the default, `deflate`, `bzip2`, `xz`, `zstandard`), `recordName`,
    /// `recordNamespace` and `avroSchema`. The other formats write as Spark does by default and
    /// refuse these options rather than ignore them.
    pub(crate) fn with_options(self, options: &crate::options::Options) -> Result<Self> {
        if let WriteFormat::Avro(_) = self {
            return Ok(WriteFormat::Avro(Box::new(AvroWriteOptions::from_options(options)?)));
        }
        match WRITE_OPTIONS.iter().find(|o| options.get(o).is_some()) {
            Some(option) => Err(Error::option(
                *option,
                format!("the {} writer has no {option} option: it writes Spark's default", self.extension()),
            )),
            None => Ok(self),
        }
    }

    fn extension(&self) -> &'static str {
        match self {
            WriteFormat::Parquet => "parquet",
            WriteFormat::Json => "json",
            WriteFormat::Csv => "csv",
            WriteFormat::Avro(_) => "avro",
        }
    }

    /// Writes `batches` (at least one, all of one schema) as one file.
    fn write(&self, path: &Path, batches: &[RecordBatch]) -> Result<()> {
        let io = |e: arrow::error::ArrowError| Error::io(path, std::io::Error::other(e));
        match self {
            WriteFormat::Parquet => crate::format::write_parquet(path, &batches[0].schema(), batches),
            WriteFormat::Avro(options) => crate::format::write_avro(path, batches, options),
            WriteFormat::Json => {
                let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
                let mut w = arrow::json::LineDelimitedWriter::new(file);
                w.write_batches(&batches.iter().collect::<Vec<_>>()).map_err(io)?;
                w.finish().map_err(io)
            }
            WriteFormat::Csv => {
                let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
                let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(file);
                batches.iter().try_for_each(|b| w.write(b)).map_err(io)
            }
        }
    }
}

pub(crate) struct FileSink {
    dir: PathBuf,
    format: WriteFormat,
    partition_by: Vec<String>,
}

/// A batch is cut into several files only when each gets at least this many rows.
const ROWS_PER_FILE_MIN: usize = 50_000;

impl FileSink {
    pub(crate) fn try_new(
        dir: PathBuf,
        format: WriteFormat,
        partition_by: Vec<String>,
        schema: &SchemaRef,
    ) -> Result<Self> {
        for column in &partition_by {
            if schema.index_of(column).is_err() {
                return Err(Error::Analysis(format!(
                    "partition column '{column}' is not a column of the query's output ({schema})"
                )));
            }
        }
        std::fs::create_dir_all(dir.join(MANIFEST_DIR)).map_err(|e| Error::io(&dir, e))?;
        Ok(FileSink { dir, format, partition_by })
    }

    /// Rows grouped by their partition directory (`a=1/b=x`), without the partition columns.
    fn split(&self, batch: &RecordBatch) -> Result<BTreeMap<String, RecordBatch>> {
        let schema = batch.schema();
        let mut out = BTreeMap::new();
        if self.partition_by.is_empty() {
            out.insert(String::new(), batch.clone());
            return Ok(out);
        }
        let options = FormatOptions::default().with_null(NULL_PARTITION);
        let keys: Vec<usize> =
            self.partition_by.iter().map(|c| schema.index_of(c)).collect::<std::result::Result<_, _>>()?;
        let formatters = keys
            .iter()
            .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut rows: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let dir: Vec<String> = keys
                .iter()
                .zip(&formatters)
                .map(|(&i, f)| {
                    format!(
                        "{}={}",
                        escape_path_name(schema.field(i).name()),
                        escape_path_name(&f.value(row).to_string())
                    )
                })
                .collect();
            rows.entry(dir.join("/")).or_default().push(row as u32);
        }
        let data_columns: Vec<usize> = (0..schema.fields().len()).filter(|i| !keys.contains(i)).collect();
        let data_schema =
            Arc::new(Schema::new(data_columns.iter().map(|&i| schema.field(i).clone()).collect::<Vec<_>>()));
        for (dir, indices) in rows {
            let part = take_record_batch(batch, &UInt32Array::from(indices))?;
            let columns = data_columns.iter().map(|&i| part.column(i).clone()).collect();
            out.insert(dir, RecordBatch::try_new(data_schema.clone(), columns)?);
        }
        Ok(out)
    }
}

impl FileSink {
    /// Writes one file; returns its manifest entry.
    fn write_file(&self, batch_id: u64, rel: &str, rows: &[RecordBatch]) -> Result<String> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        self.format.write(&path, rows)?;
        let size = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
        crate::fault::point("sink-file-written");
        Ok(serde_json::to_string(&ManifestEntry { path: rel.to_string(), size, batch_id })
            .expect("manifest entries serialize"))
    }
}

impl Sink for FileSink {
    fn add_batch(&mut self, batch_id: u64, _schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let manifest = self.dir.join(MANIFEST_DIR).join(batch_id.to_string());
        if manifest.exists() {
            return Ok(()); // committed before a restart
        }
        // Each partition directory's rows, cut into one file per core for large batches (as
        // Spark writes one file per task), written in parallel. No copy: files are written
        // from slices of the plan's output batches.
        let mut dirs: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            for (dir, part) in self.split(batch)? {
                dirs.entry(dir).or_default().push(part);
            }
        }
        let mut files = Vec::new();
        for (dir, parts) in dirs {
            let rows: usize = parts.iter().map(RecordBatch::num_rows).sum();
            let pieces = (rows / ROWS_PER_FILE_MIN).clamp(1, crate::parallel::cores());
            for (i, piece) in cut(&parts, rows.div_ceil(pieces)).into_iter().enumerate() {
                let name = format!("part-{batch_id:05}-{i:03}.{}", self.format.extension());
                let rel = if dir.is_empty() { name } else { format!("{dir}/{name}") };
                files.push((rel, piece));
            }
        }
        let entries = crate::parallel::map_ordered(&files, |(rel, rows)| self.write_file(batch_id, rel, rows))?;
        write_log_file(&manifest, &entries)
    }

    fn description(&self) -> String {
        format!("FileSink[{}]", self.dir.display())
    }
}

/// `batches` regrouped, in order, into pieces of `per_piece` rows (the last may be shorter).
fn cut(batches: &[RecordBatch], per_piece: usize) -> Vec<Vec<RecordBatch>> {
    let mut pieces = Vec::new();
    let (mut piece, mut room) = (Vec::new(), per_piece);
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = room.min(batch.num_rows() - offset);
            piece.push(batch.slice(offset, take));
            (offset, room) = (offset + take, room - take);
            if room == 0 {
                pieces.push(std::mem::take(&mut piece));
                room = per_piece;
            }
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_regroups_rows_in_order_into_equal_pieces() {
        let batch = |from: i64, n: i64| {
            RecordBatch::try_from_iter([(
                "v",
                Arc::new(arrow::array::Int64Array::from_iter_values(from..from + n)) as arrow::array::ArrayRef,
            )])
            .unwrap()
        };
        let pieces = cut(&[batch(0, 3), batch(3, 5), batch(8, 2)], 4);
        let values: Vec<Vec<i64>> = pieces
            .iter()
            .map(|p| {
                p.iter()
                    .flat_map(|b| {
                        b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().values().to_vec()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(values, [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        assert_eq!(pieces[0].len(), 2, "a piece spans a batch boundary without copying");
    }

    #[test]
    fn partition_names_escape_like_spark_and_round_trip() {
        assert_eq!(escape_path_name("2024-01-01 10:00:00"), "2024-01-01 10%3A00%3A00");
        assert_eq!(escape_path_name("a/b=c%"), "a%2Fb%3Dc%25");
        for text in ["2024-01-01 10:00:00", "a/b=c%", "plain", "100%", "%zz"] {
            assert_eq!(unescape_path_name(&escape_path_name(text)), text);
        }
        let values = partition_values(Path::new("/out"), Path::new("/out/ts=2024-01-01 10%3A00%3A00/x=%2F/p.parquet"));
        assert_eq!(
            values,
            [("ts".to_string(), Some("2024-01-01 10:00:00".to_string())), ("x".to_string(), Some("/".to_string()))]
        );
    }
}
