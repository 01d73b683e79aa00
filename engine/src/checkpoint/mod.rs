//! The checkpoint: what a query writes so that a restart resumes exactly where it stopped.
//!
//! ```text
//! <checkpointLocation>/
//!   metadata          {"id":"<query id>"}                       written once, at first start
//!   offsets/<N>       v1 / batch metadata / one offset per source  written BEFORE batch N runs
//!   commits/<N>       v1 / {"nextBatchWatermarkMs":..}           written AFTER the sink took N
//!   sources/<i>/<n>   per-source logs (the file source's file lists)
//!   state/<op>/<N>.*  state store versions of stateful operator <op>
//! ```
//!
//! The protocol: batch N is *planned* when `offsets/N` exists and *done* when `commits/N`
//! exists. On restart, a planned-but-not-done batch is run again with exactly the offsets in
//! `offsets/N` (the sink is idempotent per batch id, so a half-delivered batch is not
//! duplicated); otherwise batch ids continue from the last commit. Every file is written to a
//! temporary name and renamed, and every file is text a person can read.
//!
//! Only the last [`MIN_BATCHES_TO_RETAIN`] batches are kept (Spark's
//! `spark.sql.streaming.minBatchesToRetain`): older offsets, commits and the state files no
//! retained version needs are deleted after each commit, so a long-running query's checkpoint
//! does not grow without bound.

pub(crate) mod log;
mod recovery;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::log::{log_entries, read_log_file, write_atomically, write_log_file};
use crate::error::{Error, Result};

/// A position in a source, as written to the offsets log.
pub type Offset = serde_json::Value;

/// How many recent batches a checkpoint keeps (Spark's default).
pub const MIN_BATCHES_TO_RETAIN: u64 = 100;

/// Batch-wide values recorded with the offsets, so a re-run batch sees the same ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OffsetSeqMetadata {
    /// The watermark used by this batch (`W_N`), milliseconds since the epoch.
    pub batch_watermark_ms: i64,
    /// The batch's processing time, milliseconds since the epoch.
    pub batch_timestamp_ms: i64,
    /// Settings that must not change across a restart.
    #[serde(default)]
    pub conf: BTreeMap<String, String>,
}

/// The content of `offsets/N`: where each source's batch N ends.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetSeq {
    /// Batch-wide values.
    pub metadata: OffsetSeqMetadata,
    /// One end offset per source, in source order; `None` for a source with no data yet.
    pub offsets: Vec<Option<Offset>>,
}

/// The content of `commits/N`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommitMetadata {
    /// The watermark the next batch will use.
    pub next_batch_watermark_ms: i64,
    /// Each `with_watermark` input's own watermark (`null` before its first row), so a restart
    /// combines them as the uninterrupted query would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_watermarks_ms: Vec<Option<i64>>,
}

/// A query's checkpoint directory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// Opens (creating if needed) the checkpoint at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        for sub in ["offsets", "commits"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        Ok(Checkpoint { dir })
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The query id stored in `metadata`, creating it on first use.
    pub fn query_id(&self) -> Result<Uuid> {
        #[derive(Serialize, Deserialize)]
        struct Metadata {
            id: Uuid,
        }
        let path = self.dir.join("metadata");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let m: Metadata = serde_json::from_str(text.trim())
                    .map_err(|e| Error::checkpoint(&path, format!("corrupt query metadata: {e}")))?;
                Ok(m.id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Uuid::new_v4();
                let text = serde_json::to_string(&Metadata { id }).expect("metadata serializes");
                write_atomically(&path, text.as_bytes())?;
                Ok(id)
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The highest planned batch and its offsets.
    pub fn latest_offsets(&self) -> Result<Option<(u64, OffsetSeq)>> {
        match log_entries(&self.dir.join("offsets"))?.last() {
            None => Ok(None),
            Some(&n) => Ok(Some((n, self.offsets(n)?))),
        }
    }

    /// The offsets of batch `n`.
    pub fn offsets(&self, n: u64) -> Result<OffsetSeq> {
        let path = self.dir.join("offsets").join(n.to_string());
        let lines = read_log_file(&path)?;
        let (first, rest) =
            lines.split_first().ok_or_else(|| Error::checkpoint(&path, "corrupt: no batch metadata line"))?;
        let metadata = serde_json::from_str(first)
            .map_err(|e| Error::checkpoint(&path, format!("corrupt batch metadata: {e}")))?;
        let offsets = rest
            .iter()
            .map(|line| match line.as_str() {
                "-" => Ok(None),
                json => serde_json::from_str(json)
                    .map(Some)
                    .map_err(|e| Error::checkpoint(&path, format!("corrupt offset '{json}': {e}"))),
            })
            .collect::<Result<_>>()?;
        Ok(OffsetSeq { metadata, offsets })
    }

    /// Records the offsets of batch `n` before it runs.
    pub fn write_offsets(&self, n: u64, seq: &OffsetSeq) -> Result<()> {
        let mut lines = vec![serde_json::to_string(&seq.metadata).expect("metadata serializes")];
        lines.extend(seq.offsets.iter().map(|o| o.as_ref().map_or_else(|| "-".to_string(), |o| o.to_string())));
        write_log_file(&self.dir.join("offsets").join(n.to_string()), &lines)
    }

    /// The highest committed batch and its commit record.
    pub fn latest_commit(&self) -> Result<Option<(u64, CommitMetadata)>> {
        let Some(&n) = log_entries(&self.dir.join("commits"))?.last() else { return Ok(None) };
        Ok(Some((n, self.commit(n)?)))
    }

    /// The commit record of batch `n`.
    pub fn commit(&self, n: u64) -> Result<CommitMetadata> {
        let path = self.dir.join("commits").join(n.to_string());
        let lines = read_log_file(&path)?;
        let first = lines.first().ok_or_else(|| Error::checkpoint(&path, "corrupt: no commit record"))?;
        serde_json::from_str(first).map_err(|e| Error::checkpoint(&path, format!("corrupt commit record: {e}")))
    }

    /// Marks batch `n` as done.
    pub fn write_commit(&self, n: u64, commit: &CommitMetadata) -> Result<()> {
        let line = serde_json::to_string(commit).expect("commit serializes");
        write_log_file(&self.dir.join("commits").join(n.to_string()), &[line])
    }

    /// The first batch kept once batch `n` is committed.
    pub fn first_retained(n: u64) -> u64 {
        (n + 1).saturating_sub(MIN_BATCHES_TO_RETAIN)
    }

    /// Deletes offsets and commits of batches before `first_retained`.
    pub fn purge(&self, first_retained: u64) -> Result<()> {
        for sub in ["offsets", "commits"] {
            let dir = self.dir.join(sub);
            for n in log_entries(&dir)?.into_iter().take_while(|&n| n < first_retained) {
                let path = dir.join(n.to_string());
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// The directory of source `i`'s own log.
    pub fn source_dir(&self, i: usize) -> PathBuf {
        self.dir.join("sources").join(i.to_string())
    }

    /// The sink's own files (the exactly-once Kafka sink's topic list).
    pub fn sink_dir(&self) -> PathBuf {
        self.dir.join("sinks")
    }

    /// The directory of stateful operator `op`'s state versions.
    pub fn state_dir(&self, op: usize) -> PathBuf {
        self.dir.join("state").join(op.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_commits_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cp = Checkpoint::open(dir.path()).unwrap();
        let id = cp.query_id().unwrap();
        assert_eq!(cp.query_id().unwrap(), id, "the id is stable across opens");
        let seq = OffsetSeq {
            metadata: OffsetSeqMetadata { batch_watermark_ms: 0, batch_timestamp_ms: 1_000, conf: BTreeMap::new() },
            offsets: vec![Some(serde_json::json!({"logOffset": 3})), None],
        };
        cp.write_offsets(0, &seq).unwrap();
        assert_eq!(cp.latest_offsets().unwrap(), Some((0, seq)));
        assert_eq!(cp.latest_commit().unwrap(), None);
        cp.write_commit(0, &CommitMetadata::default()).unwrap();
        assert_eq!(cp.latest_commit().unwrap().map(|c| c.0), Some(0));
        let text = std::fs::read_to_string(dir.path().join("offsets/0")).unwrap();
        assert_eq!(text, "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1000,\"conf\":{}}\n{\"logOffset\":3}\n-");
    }

    #[test]
    fn purge_keeps_the_last_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cp = Checkpoint::open(dir.path()).unwrap();
        let seq = OffsetSeq { metadata: OffsetSeqMetadata::default(), offsets: vec![None] };
        for n in 0..105 {
            cp.write_offsets(n, &seq).unwrap();
            cp.write_commit(n, &CommitMetadata::default()).unwrap();
        }
        assert_eq!(Checkpoint::first_retained(104), 5);
        cp.purge(Checkpoint::first_retained(104)).unwrap();
        assert_eq!(log_entries(&dir.path().join("offsets")).unwrap(), (5..105).collect::<Vec<_>>());
        assert_eq!(log_entries(&dir.path().join("commits")).unwrap(), (5..105).collect::<Vec<_>>());
        assert_eq!(cp.latest_offsets().unwrap().map(|o| o.0), Some(104));
    }

    #[test]
    fn a_corrupt_offsets_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cp = Checkpoint::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("offsets/0"), "v1\n{not json").unwrap();
        let err = cp.latest_offsets().unwrap_err().to_string();
        assert!(err.contains("offsets/0: corrupt batch metadata"), "{err}");
    }
}
