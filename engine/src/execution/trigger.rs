//! When micro-batches run.

use crate::error::{Error, Result};
use crate::options::parse_interval_ms;

/// When the next micro-batch starts (Spark's `Trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// The next batch starts as soon as the previous one ends and new data is there.
    #[default]
    Default,
    /// A batch every `interval_ms` of processing time; a late batch starts at once.
    ProcessingTime {
        /// The interval in milliseconds.
        interval_ms: i64,
    },
    /// One batch of everything available, rate limits ignored, then stop (deprecated in Spark;
    /// prefer `AvailableNow`, which keeps batches to their limits).
    Once,
    /// Everything available at start, in as many batches as the rate limits ask, then stop.
    AvailableNow,
}

impl Trigger {
    /// `Trigger::processing_time("10 seconds")`.
    pub fn processing_time(interval: &str) -> Result<Self> {
        let interval_ms = parse_interval_ms(interval).map_err(|m| Error::option("trigger", m))?;
        if interval_ms <= 0 {
            return Err(Error::option("trigger", format!("the interval must be positive, got '{interval}'")));
        }
        Ok(Trigger::ProcessingTime { interval_ms })
    }

    /// Whether the query stops by itself once the available data is processed.
    pub(crate) fn stops_when_drained(self) -> bool {
        matches!(self, Trigger::Once | Trigger::AvailableNow)
    }
}
