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
    /// `Trigger::processing_time("10 seconds")`. An interval of 0 runs batches as fast as
    /// possible, as Spark's does: the same as [`Trigger::Default`].
    pub fn processing_time(interval: &str) -> Result<Self> {
        let interval_ms = parse_interval_ms(interval).map_err(|m| Error::option("trigger", m))?;
        match interval_ms {
            ..0 => Err(Error::option(
                "trigger",
                format!("the interval of trigger should not be negative, got '{interval}'"),
            )),
            0 => Ok(Trigger::Default),
            _ => Ok(Trigger::ProcessingTime { interval_ms }),
        }
    }

    /// Whether the query stops by itself once the available data is processed.
    pub(crate) fn stops_when_drained(self) -> bool {
        matches!(self, Trigger::Once | Trigger::AvailableNow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_processing_time_of_zero_is_as_fast_as_possible_and_a_negative_one_is_refused() {
        assert_eq!(Trigger::processing_time("0 seconds").unwrap(), Trigger::Default);
        assert_eq!(Trigger::processing_time("2 seconds").unwrap(), Trigger::ProcessingTime { interval_ms: 2_000 });
        let err = Trigger::processing_time("-1 second").unwrap_err().to_string();
        assert!(err.contains("should not be negative"), "{err}");
    }
}
