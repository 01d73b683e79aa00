//! The versioned state of stateful operators, checkpointed as Arrow IPC files:
//! [`groups`]: a streaming aggregation's groups (keys in a [`key_index`], partial-state rows
//! in [`rows`], merged by [`accumulate`]); [`sessions`]: session windows' sessions (rows and
//! merging alike); [`keys`]: deduplication's set of keys. All of them write the same files
//! through [`files`]:
//!
//! ```text
//! state/<op>/<N>.delta      the groups batch N changed: key columns + accumulator state columns
//! state/<op>/<N>.removed    the keys batch N removed (evicted by the watermark), if any
//! state/<op>/<N>.snapshot   every group, when compaction is due (written in the background)
//! ```
//!
//! Version N is the state after batch N. Restoring version N reads the newest snapshot at or
//! before N, then replays each later version in order: its delta (a row *replaces* its group),
//! then its removals. A batch writes only what it changed, so checkpoint bytes scale with the
//! change, not with the state.
//!
//! When the aggregation is keyed on event time (a window of the watermark column, or the column
//! itself), each group's event time (a window's end) is indexed in order, so finding the groups
//! a watermark has passed costs what they are, not what the state is.

mod accumulate;
mod files;
mod groups;
pub(crate) mod join_side;
mod key_index;
pub(crate) mod keys;
mod rows;
pub(crate) mod sessions;

pub(crate) use groups::AggregateState;

use arrow::array::{ArrayRef, RecordBatch};

use crate::error::Result;

/// Which key column holds event time, and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventTimeKey {
    /// A `window{start, end}` struct: its `end`.
    WindowEnd(usize),
    /// A timestamp column: its value.
    Time(usize),
}

/// What a streaming aggregation needs of its state, whether groups are fixed keys
/// ([`AggregateState`]) or sessions that merge ([`sessions::SessionState`]). A group is a slot
/// number, valid until the group is removed.
pub(crate) trait GroupStore: Send {
    /// Folds a batch of partial aggregates in, except rows whose event time is at or before
    /// `late_until` (microseconds); returns how many were dropped as late.
    fn merge(&mut self, partial: &RecordBatch, late_until: Option<i64>) -> Result<u64>;
    /// Groups changed since the last commit, in first-change order.
    fn touched(&self) -> Vec<usize>;
    /// Rows this batch wrote to state, for progress's `numRowsUpdated`: by default the groups
    /// it changed.
    fn updated_count(&self) -> usize {
        self.touched().len()
    }
    /// Every live group.
    fn all_groups(&self) -> Vec<usize>;
    /// Groups whose event time (a window's or session's end) is at or before `watermark`.
    fn expired(&self, watermark: i64) -> Vec<usize>;
    /// The earliest event time in state, and how many groups have one.
    fn open_event_times(&self) -> (Option<i64>, usize);
    /// Removes `groups` (recorded in this version's removals).
    fn remove(&mut self, groups: &[usize]);
    /// Groups the watermark removed since the last commit (`numRowsRemoved`).
    fn removed_count(&self) -> usize;
    /// Key columns and final aggregate values of `groups`.
    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>>;
    /// Writes version `version`.
    fn commit(&mut self, version: u64) -> Result<()>;
    /// Deletes files versions from `keep_from` on no longer need.
    fn purge(&self, keep_from: u64) -> Result<()>;
    /// Rebuilds `version`, or empty.
    fn restore(&mut self, version: Option<u64>) -> Result<()>;
    /// Groups in state.
    fn len(&self) -> usize;
    /// Approximate bytes held.
    fn memory_bytes(&self) -> usize;
}
