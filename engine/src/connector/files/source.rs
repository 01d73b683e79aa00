//! The file stream source: a directory watched for new files, each read exactly once.
//!
//! Every trigger lists the directory; files not seen before are sorted by modification time
//! (ties by name), capped at `maxFilesPerTrigger`, and written as one entry of this source's
//! log (`sources/<i>/<n>` in the checkpoint) *before* the batch that reads them is planned.
//! The offset is the log entry number, so a restarted query reads the very same files.
//!
//! Every ten entries (`COMPACT_INTERVAL`) the log is compacted, as Spark's `FileStreamSourceLog`
//! is: entry `N` is written as `N.compact`, holding every file logged so far, and the entries
//! it replaces are deleted, so a restart reads one compact file plus at most nine entries.
//!
//! A batch's files are read in the input partitions Spark's file scan packs them into
//! (`partitions.rs`): largest first, so that is also the order of the rows.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::checkpoint::log::{log_entries, read_log_file, write_log_file};
use crate::error::{Error, Result};
use crate::format::FileFormat;
use crate::options::{Options, parse_interval_ms};
use crate::source::{InputPartitions, Offset, ReadLimit, Source, SourceContext, SourceSpec};

/// Entries between compactions (Spark's `spark.sql.streaming.fileSource.log.compactInterval`).
const COMPACT_INTERVAL: u64 = 10;

/// One file in the source log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct FileEntry {
    path: PathBuf,
    /// Modification time, milliseconds since the epoch.
    timestamp: i64,
    batch_id: u64,
}

/// The spec of a stream over the files arriving in `dir`.
pub(crate) fn spec(dir: PathBuf, format: FileFormat, schema: SchemaRef, options: Options) -> SourceSpec {
    let name = format!("FileStreamSource[{}]", dir.display());
    let rows = schema.clone();
    let create = move |ctx| -> Result<Box<dyn Source>> {
        Ok(Box::new(FileStreamSource::try_new(dir.clone(), format.clone(), rows.clone(), &options, ctx)?))
    };
    SourceSpec { schema, name, create: Arc::new(create) }
}

pub(crate) struct FileStreamSource {
    dir: PathBuf,
    format: FileFormat,
    schema: SchemaRef,
    max_files_per_trigger: Option<usize>,
    latest_first: bool,
    max_file_age_ms: i64,
    glob: Option<glob::Pattern>,
    recursive: bool,
    /// `sources/<i>` in the checkpoint.
    log_dir: PathBuf,
    /// Files already assigned to a log entry.
    seen: HashSet<PathBuf>,
    /// The newest modification time seen, for `maxFileAge`.
    max_seen_ms: i64,
    /// The last log entry written.
    last_entry: Option<u64>,
    /// Under `AvailableNow`: the only files this run may read.
    available_now: Option<HashSet<PathBuf>>,
    /// Spark's default parallelism, which the packing of files into partitions divides by.
    parallelism: usize,
}

impl FileStreamSource {
    pub(crate) fn try_new(
        dir: PathBuf,
        format: FileFormat,
        schema: SchemaRef,
        o: &Options,
        ctx: SourceContext,
    ) -> Result<Self> {
        let max_files_per_trigger = o.parse::<usize>("maxFilesPerTrigger")?;
        if max_files_per_trigger == Some(0) {
            return Err(Error::option("maxFilesPerTrigger", "must be a positive number"));
        }
        let max_file_age_ms = match o.get("maxFileAge") {
            None => 7 * 24 * 3_600_000,
            Some(v) => parse_interval_ms(v).map_err(|m| Error::option("maxFileAge", m))?,
        };
        let glob = match o.get("pathGlobFilter") {
            None => None,
            Some(p) => Some(glob::Pattern::new(p).map_err(|e| Error::option("pathGlobFilter", e.to_string()))?),
        };
        std::fs::create_dir_all(&ctx.dir).map_err(|e| Error::io(&ctx.dir, e))?;
        let mut source = FileStreamSource {
            dir,
            format,
            schema,
            max_files_per_trigger,
            latest_first: o.flag("latestFirst", false)?,
            max_file_age_ms,
            glob,
            recursive: o.flag("recursiveFileLookup", false)?,
            log_dir: ctx.dir,
            seen: HashSet::new(),
            max_seen_ms: i64::MIN,
            last_entry: None,
            available_now: None,
            parallelism: ctx.parallelism,
        };
        for e in source.logged_files()? {
            source.max_seen_ms = source.max_seen_ms.max(e.timestamp);
            source.last_entry = source.last_entry.max(Some(e.batch_id));
            source.seen.insert(e.path);
        }
        Ok(source)
    }

    fn compact_path(&self, n: u64) -> PathBuf {
        self.log_dir.join(format!("{n}.compact"))
    }

    /// The newest `N.compact` file's number.
    fn latest_compact(&self) -> Result<Option<u64>> {
        let entries = std::fs::read_dir(&self.log_dir).map_err(|e| Error::io(&self.log_dir, e))?;
        let mut latest = None;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.log_dir, e))?;
            let name = entry.file_name();
            if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".compact")).and_then(|n| n.parse().ok()) {
                latest = latest.max(Some(n));
            }
        }
        Ok(latest)
    }

    /// Every file in the log: the newest compact file, then the entries after it.
    fn logged_files(&self) -> Result<Vec<FileEntry>> {
        let compact = self.latest_compact()?;
        let mut out = match compact {
            Some(c) => read_entries(&self.compact_path(c))?,
            None => Vec::new(),
        };
        for n in log_entries(&self.log_dir)?.into_iter().filter(|&n| compact.is_none_or(|c| n > c)) {
            out.extend(read_entries(&self.log_dir.join(n.to_string()))?);
        }
        Ok(out)
    }

    /// The files of entry `n`, from its own file or from the compact file that replaced it.
    fn read_entry(&self, n: u64) -> Result<Vec<FileEntry>> {
        let path = self.log_dir.join(n.to_string());
        if path.exists() {
            return read_entries(&path);
        }
        match self.latest_compact()? {
            Some(c) if c >= n => {
                Ok(read_entries(&self.compact_path(c))?.into_iter().filter(|e| e.batch_id == n).collect())
            }
            _ => Err(Error::checkpoint(path, "missing: the file source log has no such entry")),
        }
    }

    /// Logs `files` as entry `n`, compacting the log when `n` closes an interval.
    fn write_entry(&self, n: u64, files: &[FileEntry]) -> Result<()> {
        let lines = |files: &[FileEntry]| -> Vec<String> {
            files.iter().map(|f| serde_json::to_string(f).expect("file entries serialize")).collect()
        };
        if !(n + 1).is_multiple_of(COMPACT_INTERVAL) {
            return write_log_file(&self.log_dir.join(n.to_string()), &lines(files));
        }
        let previous = self.latest_compact()?;
        let mut all = self.logged_files()?;
        all.extend_from_slice(files);
        write_log_file(&self.compact_path(n), &lines(&all))?;
        // The compact file is in place; what it replaces can go (a crash here leaves files
        // that the next start ignores and the next compaction removes).
        let replaced =
            log_entries(&self.log_dir)?.into_iter().filter(|&e| e < n).map(|e| self.log_dir.join(e.to_string()));
        for path in replaced.chain(previous.map(|c| self.compact_path(c))) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// New files, oldest first (or newest first with `latestFirst`), capped per trigger.
    fn new_files(&self, limit: ReadLimit) -> Result<Vec<FileEntry>> {
        let mut found = Vec::new();
        list_files(&self.dir, self.recursive, &mut found)?;
        let mut fresh: Vec<(i64, PathBuf)> = found
            .into_iter()
            .filter(|(_, p)| !self.seen.contains(p))
            .filter(|(_, p)| self.available_now.as_ref().is_none_or(|allowed| allowed.contains(p)))
            .filter(|(_, p)| {
                self.glob.as_ref().is_none_or(|g| p.file_name().is_some_and(|n| g.matches(&n.to_string_lossy())))
            })
            .collect();
        // maxFileAge is measured from the newest file seen, and ignored with latestFirst +
        // maxFilesPerTrigger (as in Spark).
        if !(self.latest_first && self.max_files_per_trigger.is_some()) {
            let newest = fresh.iter().map(|(t, _)| *t).max().unwrap_or(i64::MIN).max(self.max_seen_ms);
            fresh.retain(|(t, _)| *t >= newest.saturating_sub(self.max_file_age_ms));
        }
        fresh.sort();
        if self.latest_first {
            fresh.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        }
        if let (Some(max), ReadLimit::Default) = (self.max_files_per_trigger, limit) {
            fresh.truncate(max);
        }
        Ok(fresh.into_iter().map(|(timestamp, path)| FileEntry { path, timestamp, batch_id: 0 }).collect())
    }
}

fn read_entries(path: &Path) -> Result<Vec<FileEntry>> {
    read_log_file(path)?
        .into_iter()
        .map(|line| serde_json::from_str(&line).map_err(|e| Error::checkpoint(path, format!("bad file entry: {e}"))))
        .collect()
}

fn list_files(dir: &Path, recursive: bool, out: &mut Vec<(i64, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue; // hidden and metadata files (`_SUCCESS`, `_spark_metadata`), as in Spark
        }
        let meta = entry.metadata().map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            if recursive {
                list_files(&path, recursive, out)?;
            }
        } else {
            let modified = meta.modified().map_err(|e| Error::io(&path, e))?;
            let ms = modified.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            out.push((ms, path));
        }
    }
    Ok(())
}

fn entry_number(offset: &Offset) -> Result<u64> {
    offset
        .get("logOffset")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| Error::Internal(format!("bad file source offset {offset}")))
}

impl Source for FileStreamSource {
    fn latest_offset(&mut self, start: Option<&Offset>, limit: ReadLimit) -> Result<Option<Offset>> {
        // Files logged before a crash, whose batch never got its offsets, are the next batch
        // on their own, as an uninterrupted run had them (semantics appendix, §10).
        let next = start.map(entry_number).transpose()?.map_or(0, |n| n + 1);
        let capped = limit == ReadLimit::Default && self.max_files_per_trigger.is_some();
        if capped && self.last_entry.is_some_and(|last| last >= next) {
            return Ok(Some(serde_json::json!({ "logOffset": next })));
        }
        let mut files = self.new_files(limit)?;
        if !files.is_empty() {
            let n = self.last_entry.map_or(0, |n| n + 1);
            for f in &mut files {
                f.batch_id = n;
            }
            self.write_entry(n, &files)?;
            for f in files {
                self.max_seen_ms = self.max_seen_ms.max(f.timestamp);
                self.seen.insert(f.path);
            }
            self.last_entry = Some(n);
        }
        Ok(self.last_entry.map(|n| serde_json::json!({ "logOffset": n })))
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions> {
        let first = match start {
            Some(s) => entry_number(s)? + 1,
            None => 0,
        };
        let mut files = Vec::new();
        for n in first..=entry_number(end)? {
            files.extend(self.read_entry(n)?);
        }
        // Files decoded in parallel, then grouped into the partitions Spark would read.
        let decoded = crate::parallel::map_ordered(&files, |entry| {
            let rows = self.format.read(&entry.path, &self.schema);
            crate::fault::point("source-read");
            rows
        })?;
        let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
        super::partitions::group(&paths, decoded, self.parallelism)
    }

    fn prepare_for_available_now(&mut self, _start: Option<&Offset>) -> Result<()> {
        let mut found = Vec::new();
        list_files(&self.dir, self.recursive, &mut found)?;
        self.available_now = Some(found.into_iter().map(|(_, p)| p).collect());
        Ok(())
    }

    fn description(&self) -> String {
        format!("FileStreamSource[{}]", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::clock::SystemClock;

    fn write(dir: &Path, name: &str, age_index: u64) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, "{\"v\": 1}\n").unwrap();
        let mtime = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + age_index * 3600);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        path
    }

    fn source(dir: &Path, log: &Path, options: &[(&str, &str)]) -> FileStreamSource {
        let mut o = Options::default();
        for (k, v) in options {
            o.set(*k, *v);
        }
        let format = FileFormat::try_new("json", &Options::default()).unwrap();
        let schema = crate::ddl::parse_schema("v LONG").unwrap();
        let ctx = SourceContext { dir: log.to_path_buf(), clock: Arc::new(SystemClock), parallelism: 2 };
        FileStreamSource::try_new(dir.to_path_buf(), format, schema, &o, ctx).unwrap()
    }

    fn names(s: &FileStreamSource) -> Vec<String> {
        s.new_files(ReadLimit::Default)
            .unwrap()
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn oldest_first_ties_by_name_and_capped_per_trigger() {
        let (dir, log) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(dir.path(), "b.json", 1);
        write(dir.path(), "a.json", 1);
        write(dir.path(), "c.json", 0);
        write(dir.path(), ".hidden.json", 0);
        write(dir.path(), "_SUCCESS", 0);
        assert_eq!(names(&source(dir.path(), log.path(), &[])), ["c.json", "a.json", "b.json"]);
        assert_eq!(names(&source(dir.path(), log.path(), &[("maxFilesPerTrigger", "2")])), ["c.json", "a.json"]);
        let latest = source(dir.path(), log.path(), &[("latestFirst", "true"), ("maxFilesPerTrigger", "2")]);
        assert_eq!(names(&latest), ["a.json", "b.json"]);
    }

    #[test]
    fn glob_recursive_and_max_file_age() {
        let (dir, log) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(dir.path(), "old.json", 0);
        write(dir.path(), "new.json", 48);
        write(dir.path(), "notes.txt", 48);
        write(dir.path(), "sub/deep.json", 48);
        let glob = source(dir.path(), log.path(), &[("pathGlobFilter", "*.json")]);
        assert_eq!(names(&glob), ["old.json", "new.json"]);
        let young = source(dir.path(), log.path(), &[("pathGlobFilter", "*.json"), ("maxFileAge", "1 day")]);
        assert_eq!(names(&young), ["new.json"]);
        let deep = source(dir.path(), log.path(), &[("pathGlobFilter", "*.json"), ("recursiveFileLookup", "true")]);
        assert_eq!(names(&deep), ["old.json", "new.json", "deep.json"]);
    }

    #[test]
    fn each_file_is_logged_once_and_remembered_across_restarts() {
        let (dir, log) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(dir.path(), "a.json", 0);
        let mut s = source(dir.path(), log.path(), &[]);
        assert_eq!(s.latest_offset(None, ReadLimit::Default).unwrap(), Some(serde_json::json!({"logOffset": 0})));
        assert_eq!(
            s.latest_offset(None, ReadLimit::Default).unwrap(),
            Some(serde_json::json!({"logOffset": 0})),
            "no new file, same offset"
        );
        write(dir.path(), "b.json", 1);
        let restarted = source(dir.path(), log.path(), &[]);
        assert_eq!(names(&restarted), ["b.json"], "a.json is in the log");
    }

    #[test]
    fn files_logged_before_a_crash_are_the_next_batch_on_their_own() {
        let (dir, log) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (i, name) in ["a.json", "b.json", "c.json"].iter().enumerate() {
            write(dir.path(), name, i as u64);
        }
        let capped = [("maxFilesPerTrigger", "1")];
        let mut s = source(dir.path(), log.path(), &capped);
        let first = s.latest_offset(None, ReadLimit::Default).unwrap();
        assert_eq!(first, Some(serde_json::json!({"logOffset": 0})));
        // Logged a.json as entry 0, then died before batch 0's offsets were written: the
        // restart starts from nothing committed and plans entry 0 alone, as the first run did.
        let mut restarted = source(dir.path(), log.path(), &capped);
        assert_eq!(restarted.latest_offset(None, ReadLimit::Default).unwrap(), first);
        let rows = restarted.get_batch(None, first.as_ref().unwrap()).unwrap();
        assert_eq!(rows.iter().flatten().map(|b| b.num_rows()).sum::<usize>(), 1, "a.json only");
        let next = restarted.latest_offset(first.as_ref(), ReadLimit::Default).unwrap();
        assert_eq!(next, Some(serde_json::json!({"logOffset": 1})), "then b.json");
        // Trigger.Once takes everything: the logged entry and the files after it.
        let mut once = source(dir.path(), log.path(), &capped);
        assert_eq!(
            once.latest_offset(first.as_ref(), ReadLimit::All).unwrap(),
            Some(serde_json::json!({"logOffset": 2}))
        );
    }

    #[test]
    fn the_log_compacts_every_ten_entries_and_still_answers_every_batch() {
        let (dir, log) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut s = source(dir.path(), log.path(), &[]);
        for i in 0..12 {
            write(dir.path(), &format!("f{i:02}.json"), i);
            s.latest_offset(None, ReadLimit::Default).unwrap();
        }
        let mut left: Vec<String> =
            std::fs::read_dir(log.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["10", "11", "9.compact"]);
        let restarted = source(dir.path(), log.path(), &[]);
        assert_eq!(restarted.last_entry, Some(11));
        assert_eq!(restarted.seen.len(), 12);
        let entry_3: Vec<_> = restarted.read_entry(3).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(entry_3, [dir.path().join("f03.json")]);
        assert_eq!(restarted.read_entry(11).unwrap().len(), 1);
        write(dir.path(), "f12.json", 12);
        assert_eq!(names(&restarted), ["f12.json"]);
    }
}
