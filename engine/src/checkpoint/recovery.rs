//! Where a restarted query resumes: the restart protocol of [`super`], read back.
//!
//! | checkpoint holds | the query |
//! |---|---|
//! | no offsets | starts at batch 0 |
//! | `offsets/N` and `commits/N` | continues with batch N+1 after N's offsets |
//! | `offsets/N`, commits up to N-1 | re-runs batch N with exactly `offsets/N` |
//! | anything else | refuses to start: the checkpoint is inconsistent |

use super::Offset;
use super::{Checkpoint, OffsetSeq};
use crate::error::{Error, Result};

/// What a (re)started query needs to know about its previous runs.
#[derive(Debug)]
pub(crate) struct Recovery {
    /// The id of the next batch to plan.
    pub next_batch: u64,
    /// End offsets of the last committed batch, per source.
    pub committed: Vec<Option<Offset>>,
    /// A batch planned but not committed before the last stop: re-run first.
    pub pending: Option<OffsetSeq>,
    /// The last committed batch, whose state version the operators restore.
    pub last_commit: Option<u64>,
    /// Batch-wide settings the first run recorded (e.g. the watermark policy).
    pub recorded_conf: std::collections::BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads where a query of `num_sources` sources resumes.
    pub(crate) fn recover(&self, num_sources: usize) -> Result<Recovery> {
        let latest = self.latest_offsets()?;
        let last_commit = self.latest_commit()?.map(|(n, _)| n);
        let Some((n, seq)) = latest else {
            let committed = vec![None; num_sources];
            return Ok(Recovery {
                next_batch: 0,
                committed,
                pending: None,
                last_commit,
                recorded_conf: Default::default(),
            });
        };
        if seq.offsets.len() != num_sources {
            return Err(Error::checkpoint(
                self.dir().join("offsets").join(n.to_string()),
                format!(
                    "records {} sources but the query reads {num_sources}: the query changed; use a new checkpoint",
                    seq.offsets.len()
                ),
            ));
        }
        let recorded_conf = seq.metadata.conf.clone();
        if last_commit == Some(n) {
            return Ok(Recovery {
                next_batch: n + 1,
                committed: seq.offsets,
                pending: None,
                last_commit,
                recorded_conf,
            });
        }
        if last_commit != n.checked_sub(1) {
            return Err(Error::checkpoint(
                self.dir().join("commits"),
                format!(
                    "last commit is {last_commit:?} but offsets go up to batch {n}: the checkpoint is inconsistent"
                ),
            ));
        }
        let committed = match n.checked_sub(1) {
            Some(previous) => self.offsets(previous)?.offsets,
            None => vec![None; num_sources],
        };
        Ok(Recovery { next_batch: n, committed, pending: Some(seq), last_commit, recorded_conf })
    }
}
