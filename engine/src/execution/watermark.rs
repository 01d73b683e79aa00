//! The event-time watermark of a query (semantics appendix, §1): Spark's `WatermarkTracker`.
//!
//! ```text
//!  batch N runs with W_N ──► each with_watermark node saw max event time m_i in batch N
//!                            input watermark  w_i = max(w_i, m_i - delay_i)   (never backwards)
//!                            W_{N+1} = max(W_N, min_i w_i)   (policy "min"; "max" takes the max)
//! ```
//!
//! An input that has not seen a row yet counts as 0, so with the `min` policy the watermark
//! waits for every input. The per-input values are kept in the commit log, so a restarted
//! query moves its watermark exactly as an uninterrupted one would.

use crate::error::{Error, Result};
use crate::plan::watermark::{EventTimeStats, StatsCell};

/// `spark.sql.streaming.multipleWatermarkPolicy`.
pub const MULTIPLE_WATERMARK_POLICY: &str = "spark.sql.streaming.multipleWatermarkPolicy";

/// How several inputs' watermarks combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatermarkPolicy {
    /// The slowest input decides (Spark's default): no input's on-time rows are dropped.
    Min,
    /// The fastest input decides: results come sooner, the slower inputs' rows may be late.
    Max,
}

impl WatermarkPolicy {
    pub(crate) fn parse(value: Option<&str>) -> Result<Self> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("min") => Ok(WatermarkPolicy::Min),
            Some("max") => Ok(WatermarkPolicy::Max),
            Some(other) => {
                Err(Error::option(MULTIPLE_WATERMARK_POLICY, format!("must be 'min' or 'max', got '{other}'")))
            }
        }
    }
}

/// The watermark state of one running query.
pub(crate) struct WatermarkTracker {
    /// Each `with_watermark` node's observations and delay, in plan order.
    nodes: Vec<(StatsCell, i64)>,
    /// Each node's own watermark; `None` until it sees a row.
    inputs: Vec<Option<i64>>,
    policy: WatermarkPolicy,
    /// The watermark the next batch uses.
    current_ms: i64,
    /// What each input observed in the last batch.
    observed: Vec<EventTimeStats>,
}

impl WatermarkTracker {
    pub(crate) fn new(nodes: Vec<(StatsCell, i64)>, policy: WatermarkPolicy) -> Self {
        let inputs = vec![None; nodes.len()];
        let observed = vec![EventTimeStats::default(); nodes.len()];
        WatermarkTracker { nodes, inputs, policy, current_ms: 0, observed }
    }

    /// The policy's name, as recorded in the offsets log.
    pub(crate) fn policy_name(&self) -> &'static str {
        match self.policy {
            WatermarkPolicy::Min => "min",
            WatermarkPolicy::Max => "max",
        }
    }

    /// Each input's newest event time in the last batch and its own watermark now.
    pub(crate) fn per_input(&self) -> impl Iterator<Item = (Option<i64>, Option<i64>)> + '_ {
        self.observed.iter().zip(&self.inputs).map(|(o, w)| ((o.count > 0).then_some(o.max), *w))
    }

    /// Whether the query has a watermark at all.
    pub(crate) fn is_defined(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// The watermark the next batch uses, in milliseconds.
    pub(crate) fn current_ms(&self) -> i64 {
        self.current_ms
    }

    /// Each input's watermark, for the commit log.
    pub(crate) fn inputs(&self) -> &[Option<i64>] {
        &self.inputs
    }

    /// Resumes from a checkpoint: the next batch's watermark and the inputs' values.
    pub(crate) fn restore(&mut self, current_ms: i64, inputs: &[Option<i64>]) {
        self.current_ms = current_ms;
        if inputs.len() == self.inputs.len() {
            self.inputs = inputs.to_vec();
        }
    }

    /// Forgets the observations of the last batch, before a new one runs.
    pub(crate) fn reset_observations(&self) {
        for (cell, _) in &self.nodes {
            *cell.lock().expect("event time stats lock poisoned") = EventTimeStats::default();
        }
    }

    /// Moves the watermark by what the batch that just ran observed; returns the batch's
    /// event-time statistics over all inputs.
    pub(crate) fn advance(&mut self) -> EventTimeStats {
        let mut all = EventTimeStats::default();
        for (i, (cell, delay)) in self.nodes.iter().enumerate() {
            let stats = *cell.lock().expect("event time stats lock poisoned");
            all.merge(&stats);
            self.observed[i] = stats;
            if stats.count > 0 {
                let candidate = stats.max - delay;
                self.inputs[i] = Some(self.inputs[i].map_or(candidate, |w| w.max(candidate)));
            }
        }
        let values = self.inputs.iter().map(|w| w.unwrap_or(0));
        let chosen = match self.policy {
            WatermarkPolicy::Min => values.min(),
            WatermarkPolicy::Max => values.max(),
        };
        if let Some(chosen) = chosen
            && chosen > self.current_ms
        {
            tracing::info!(from = self.current_ms, to = chosen, "event-time watermark moved");
            self.current_ms = chosen;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(cell: &StatsCell, max: i64) {
        *cell.lock().unwrap() = EventTimeStats { max, min: max, sum: max as f64, count: 1 };
    }

    #[test]
    fn the_watermark_trails_the_max_event_time_and_never_goes_back() {
        let cell = StatsCell::default();
        let mut t = WatermarkTracker::new(vec![(cell.clone(), 10)], WatermarkPolicy::Min);
        observe(&cell, 100);
        t.advance();
        assert_eq!(t.current_ms(), 90);
        t.reset_observations();
        observe(&cell, 50);
        t.advance();
        assert_eq!(t.current_ms(), 90, "an older max does not move it back");
        t.reset_observations();
        t.advance();
        assert_eq!(t.current_ms(), 90, "a batch without rows leaves it");
    }

    #[test]
    fn several_inputs_combine_by_policy() {
        let (a, b) = (StatsCell::default(), StatsCell::default());
        let mut min = WatermarkTracker::new(vec![(a.clone(), 0), (b.clone(), 0)], WatermarkPolicy::Min);
        observe(&a, 100);
        min.advance();
        assert_eq!(min.current_ms(), 0, "input b has seen nothing: the min waits for it");
        observe(&b, 40);
        min.advance();
        assert_eq!(min.current_ms(), 40);
        let mut max = WatermarkTracker::new(vec![(a.clone(), 0), (b.clone(), 0)], WatermarkPolicy::Max);
        max.advance();
        assert_eq!(max.current_ms(), 100);
        assert!(WatermarkPolicy::parse(Some("avg")).is_err());
    }
}
