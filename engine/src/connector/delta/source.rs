//! The Delta source: a table's files as a stream, as Spark's Delta source reads them.
//!
//! ```text
//! first start, no startingVersion:  the snapshot at the latest version v (its files by
//!                                    modification time, then path), then commits v+1, v+2, …
//! startingVersion = s:               commits s, s+1, … (no snapshot); `latest`: after the
//!                                    latest commit
//! startingTimestamp = t:             commits from the first committed at or after t
//! each commit:                       its `add` actions with dataChange, in the order written
//! ```
//!
//! An offset is a position in that sequence, written as Spark writes it:
//! `{"sourceVersion":1,"reservoirId":<table id>,"reservoirVersion":v,"index":i,
//! "isStartingVersion":b}` — everything up to file `i` of version `v` (of the snapshot at `v`
//! when `isStartingVersion`) has been read; `index` -1 is "nothing of `v` yet". A batch takes
//! at most `maxFilesPerTrigger` files (1000) and `maxBytesPerTrigger` bytes (at least one
//! file). A commit that removes data (`remove` with dataChange: an overwrite, a complete-mode
//! sink's batch) stops the stream with Spark's error unless `skipChangeCommits` skips such
//! commits, `ignoreDeletes` allows commits that only remove, or `ignoreChanges` re-reads the
//! files such a commit adds. Work per batch is the batch's commits, never the table's history.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::Action;
use serde_json::json;

use super::table::{self, DataFile, error};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::source::{InputPartitions, Offset, ReadLimit, Source};

/// A place in the stream of files: after file `index` of version `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    version: u64,
    index: i64,
    /// In the snapshot at `version` rather than in commit `version`.
    starting: bool,
}

/// What to do with commits that remove data.
#[derive(Debug, Clone, Copy)]
struct ChangePolicy {
    ignore_deletes: bool,
    ignore_changes: bool,
    skip_change_commits: bool,
}

/// Where a stream with no offsets yet begins.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// The snapshot at the table's version when the stream first looks.
    Snapshot,
    /// Commit `s` onwards.
    Version(u64),
    /// After the latest commit when the stream first looks.
    Latest,
}

pub(crate) struct DeltaSource {
    path: PathBuf,
    table: DeltaTable,
    table_id: String,
    schema: SchemaRef,
    partition_columns: Vec<String>,
    parallelism: usize,
    max_files: usize,
    max_bytes: Option<u64>,
    start: Start,
    policy: ChangePolicy,
    /// The first position, once fixed (with no offsets yet, at the first look).
    first: Option<Position>,
    /// The snapshot read first: its version and files in reading order.
    snapshot: Option<(u64, Vec<DataFile>)>,
    /// The data files of each commit read so far, from the earliest one still needed.
    commits: BTreeMap<u64, Vec<DataFile>>,
    /// Under `AvailableNow`: where this run stops.
    available_now_end: Option<Position>,
}

/// The options the Delta source reads.
pub(crate) const OPTIONS: &[&str] = &[
    "maxFilesPerTrigger",
    "maxBytesPerTrigger",
    "startingVersion",
    "startingTimestamp",
    "ignoreDeletes",
    "ignoreChanges",
    "skipChangeCommits",
];

impl DeltaSource {
    pub(crate) fn try_new(path: PathBuf, schema: SchemaRef, options: &Options, parallelism: usize) -> Result<Self> {
        let table = table::open(&path, None)?;
        let table_id = table.snapshot().map_err(|e| error(&path, "opening", e))?.metadata().id().to_string();
        let partition_columns = table::partition_columns(&path, &table)?;
        let max_files = match options.get("maxFilesPerTrigger") {
            None => 1000,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::option("maxFilesPerTrigger", format!("'{v}' is not a positive integer")))?,
        };
        let max_bytes = options.get("maxBytesPerTrigger").map(parse_bytes).transpose()?;
        let start = match (options.get("startingVersion"), options.get("startingTimestamp")) {
            (Some(_), Some(_)) => {
                return Err(Error::Analysis("Please either provide 'startingVersion' or 'startingTimestamp'.".into()));
            }
            (None, Some(t)) => Start::Version(super::read::first_version_from(&path, t)?),
            (None, None) => Start::Snapshot,
            (Some("latest"), None) => Start::Latest,
            (Some(v), None) => Start::Version(v.parse().map_err(|_| {
                Error::option("startingVersion", format!("'{v}' is neither a version number nor 'latest'"))
            })?),
        };
        let policy = ChangePolicy {
            ignore_deletes: options.flag("ignoreDeletes", false)?,
            ignore_changes: options.flag("ignoreChanges", false)?,
            skip_change_commits: options.flag("skipChangeCommits", false)?,
        };
        Ok(DeltaSource {
            path,
            table,
            table_id,
            schema,
            partition_columns,
            parallelism,
            max_files,
            max_bytes,
            start,
            policy,
            first: None,
            snapshot: None,
            commits: BTreeMap::new(),
            available_now_end: None,
        })
    }

    fn offset(&self, p: Position) -> Offset {
        json!({
            "sourceVersion": 1,
            "reservoirId": self.table_id,
            "reservoirVersion": p.version,
            "index": p.index,
            "isStartingVersion": p.starting,
        })
    }

    fn position(&self, offset: &Offset) -> Result<Position> {
        let bad = || Error::checkpoint(&self.path, format!("not a Delta source offset: {offset}"));
        let id = offset.get("reservoirId").and_then(|v| v.as_str()).ok_or_else(bad)?;
        if id != self.table_id {
            return Err(error(
                &self.path,
                "resuming the stream",
                format!(
                    "the checkpoint is of table id {id}, this table's id is {}: the table was replaced",
                    self.table_id
                ),
            ));
        }
        Ok(Position {
            version: offset.get("reservoirVersion").and_then(|v| v.as_u64()).ok_or_else(bad)?,
            index: offset.get("index").and_then(|v| v.as_i64()).ok_or_else(bad)?,
            starting: offset.get("isStartingVersion").and_then(|v| v.as_bool()).ok_or_else(bad)?,
        })
    }

    /// Where reading continues from: after `start`, or at the stream's first position.
    fn from(&mut self, start: Option<&Offset>) -> Result<Position> {
        if let Some(offset) = start {
            return self.position(offset);
        }
        if let Some(first) = self.first {
            return Ok(first);
        }
        let latest = self.latest_version()?;
        let first = match self.start {
            Start::Snapshot => Position { version: latest, index: -1, starting: true },
            Start::Version(v) => Position { version: v, index: -1, starting: false },
            Start::Latest => Position { version: latest + 1, index: -1, starting: false },
        };
        self.first = Some(first);
        Ok(first)
    }

    fn latest_version(&mut self) -> Result<u64> {
        table::block_on(self.table.update_state()).map_err(|e| error(&self.path, "reading the latest version", e))?;
        self.table.version().ok_or_else(|| Error::Analysis(format!("{} is not a Delta table", self.path.display())))
    }

    /// The files of the snapshot at `version`, by modification time then path.
    fn snapshot_files(&mut self, version: u64) -> Result<&[DataFile]> {
        if self.snapshot.as_ref().is_none_or(|(v, _)| *v != version) {
            let at = table::open(&self.path, Some(version))?;
            let mut adds = table::snapshot_files(&self.path, &at)?;
            adds.sort_by(|a, b| (a.modification_time, &a.path).cmp(&(b.modification_time, &b.path)));
            self.snapshot = Some((version, adds));
        }
        Ok(self.snapshot.as_ref().map(|(_, a)| a.as_slice()).unwrap_or_default())
    }

    /// The data files commit `version` adds, or `None` when it is not committed yet.
    fn commit_files(&mut self, version: u64) -> Result<Option<&[DataFile]>> {
        if !self.commits.contains_key(&version) {
            let Some(actions) = table::commit(&self.path, &self.table, version)? else { return Ok(None) };
            let files = self.data_files(version, actions)?;
            self.commits.insert(version, files);
        }
        Ok(self.commits.get(&version).map(Vec::as_slice))
    }

    /// A commit's added files, after the change policy and the schema check.
    fn data_files(&self, version: u64, actions: Vec<Action>) -> Result<Vec<DataFile>> {
        let mut adds = Vec::new();
        let mut removes = false;
        for action in actions {
            match action {
                Action::Add(add) if add.data_change => adds.push(DataFile::from_add(add)),
                Action::Remove(remove) if remove.data_change => removes = true,
                Action::Metadata(metadata) => {
                    let changed = metadata
                        .parse_schema()
                        .ok()
                        .and_then(|s| {
                            deltalake::kernel::engine::arrow_conversion::TryIntoArrow::try_into_arrow(&s).ok()
                        })
                        .map(|s: arrow::datatypes::Schema| table::from_delta(&s))
                        .is_none_or(|s| s.fields() != self.schema.fields());
                    if changed {
                        return Err(error(
                            &self.path,
                            "streaming",
                            format!(
                                "the table's schema changed in version {version}; restart the query to read \
                                 with the new schema"
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        if !removes {
            return Ok(adds);
        }
        let p = self.policy;
        if p.skip_change_commits {
            return Ok(Vec::new());
        }
        if p.ignore_changes || (p.ignore_deletes && adds.is_empty()) {
            return Ok(adds);
        }
        Err(error(
            &self.path,
            "streaming",
            format!(
                "Detected a data update (for example an overwrite or a delete) in the source table at version \
                 {version}. This is currently not supported. If this is going to happen regularly and you are \
                 okay to skip changes, set the option 'skipChangeCommits' to 'true'."
            ),
        ))
    }

    /// The files after `from`, up to `until` (inclusive) and at most `cap` of them (by count
    /// and bytes; at least one), with each file's position.
    fn files_after(
        &mut self,
        from: Position,
        until: Option<Position>,
        cap: Option<(usize, Option<u64>)>,
    ) -> Result<Vec<(Position, DataFile)>> {
        let mut out: Vec<(Position, DataFile)> = Vec::new();
        let mut bytes = 0u64;
        let full = |out: &Vec<(Position, DataFile)>, bytes: u64| {
            cap.is_some_and(|(files, max_bytes)| out.len() >= files || max_bytes.is_some_and(|b| bytes >= b))
        };
        let past = |p: Position| until.is_some_and(|u| after(p, u));
        if from.starting {
            let files = self.snapshot_files(from.version)?.to_vec();
            for (i, add) in files.into_iter().enumerate().skip((from.index + 1) as usize) {
                let p = Position { version: from.version, index: i as i64, starting: true };
                if full(&out, bytes) || past(p) {
                    return Ok(out);
                }
                bytes += add.size.max(0) as u64;
                out.push((p, add));
            }
        }
        let mut version = if from.starting { from.version + 1 } else { from.version };
        loop {
            let skip = if !from.starting && version == from.version { (from.index + 1) as usize } else { 0 };
            let Some(files) = self.commit_files(version)? else { return Ok(out) };
            let files = files.to_vec();
            for (i, add) in files.into_iter().enumerate().skip(skip) {
                let p = Position { version, index: i as i64, starting: false };
                if full(&out, bytes) || past(p) {
                    return Ok(out);
                }
                bytes += add.size.max(0) as u64;
                out.push((p, add));
            }
            if until.is_some_and(|u| u.version <= version && !u.starting) {
                return Ok(out);
            }
            version += 1;
        }
    }

    /// Forgets the commits before `from`'s: they are read.
    fn forget_before(&mut self, from: Position) {
        self.commits = self.commits.split_off(&from.version);
        if !from.starting {
            self.snapshot = None;
        }
    }
}

/// Whether `a` comes after `b` in the stream.
fn after(a: Position, b: Position) -> bool {
    // The snapshot at v comes before commit v+1, and holds commit v itself.
    let key = |p: Position| if p.starting { (p.version, 0, p.index) } else { (p.version, 1, p.index) };
    key(a) > key(b)
}

/// `maxBytesPerTrigger`: a number of bytes, or with Spark's suffixes (`10k`, `64m`, `1g`).
fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim().to_ascii_lowercase();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let scale: u64 = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if scale > 0 && n > 0 => Ok(n * scale),
        _ => Err(Error::option("maxBytesPerTrigger", format!("'{text}' is not a size such as 1048576, 512k or 64m"))),
    }
}

impl Source for DeltaSource {
    fn latest_offset(&mut self, start: Option<&Offset>, limit: ReadLimit) -> Result<Option<Offset>> {
        let from = self.from(start)?;
        self.forget_before(from);
        let cap = (limit == ReadLimit::Default).then_some((self.max_files, self.max_bytes));
        let files = self.files_after(from, self.available_now_end, cap)?;
        Ok(match files.last() {
            Some((p, _)) => Some(self.offset(*p)),
            None => start.cloned(),
        })
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions> {
        let from = self.from(start)?;
        let until = self.position(end)?;
        let files = self.files_after(from, Some(until), None)?;
        let adds: Vec<&DataFile> = files.iter().map(|(_, a)| a).collect();
        table::read_files(&self.path, &adds, &self.schema, &self.partition_columns, self.parallelism)
    }

    fn prepare_for_available_now(&mut self, start: Option<&Offset>) -> Result<()> {
        let from = self.from(start)?;
        self.available_now_end = Some(self.files_after(from, None, None)?.last().map_or(from, |(p, _)| *p));
        Ok(())
    }

    fn description(&self) -> String {
        format!("DeltaSource[{}]", self.path.display())
    }
}
