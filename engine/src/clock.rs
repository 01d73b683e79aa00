//! Processing time comes from a [`Clock`]: the real one, or a virtual one that makes every run
//! of an example print the same batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The source of processing time for triggers, batch timestamps and time-based sources.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Waits until `now_ms() >= deadline_ms`.
    fn sleep_until(&self, deadline_ms: i64);
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn sleep_until(&self, deadline_ms: i64) {
        let wait = deadline_ms - self.now_ms();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
    }
}

/// A clock that only moves when told to, or when a trigger waits on it.
///
/// Waiting never blocks: `sleep_until` jumps straight to the deadline. A `ProcessingTime("1
/// second")` trigger over a `rate` source therefore sees exactly one second pass per batch, and
/// every run of a program prints the same batches with the same timestamps.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now_ms: Arc<AtomicI64>,
}

impl VirtualClock {
    /// A virtual clock that reads `start_ms` (milliseconds since the Unix epoch).
    pub fn new(start_ms: i64) -> Self {
        VirtualClock { now_ms: Arc::new(AtomicI64::new(start_ms)) }
    }

    /// A virtual clock starting at an ISO-8601 instant such as `"2024-01-01T00:00:00Z"`.
    ///
    /// # Panics
    /// When `instant` is not a valid RFC 3339 timestamp (a programming error in the caller).
    pub fn at(instant: &str) -> Self {
        let t = chrono::DateTime::parse_from_rfc3339(instant)
            .expect("VirtualClock::at takes an RFC 3339 instant such as 2024-01-01T00:00:00Z");
        Self::new(t.timestamp_millis())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ms: i64) {
        self.now_ms.fetch_max(deadline_ms, Ordering::SeqCst);
    }
}

/// Formats epoch milliseconds the way Spark's progress JSON does: `2024-01-01T00:00:00.000Z`.
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_jumps_to_deadlines_and_never_goes_back() {
        let clock = VirtualClock::at("2024-01-01T00:00:00Z");
        let t0 = clock.now_ms();
        clock.sleep_until(t0 + 1_000);
        assert_eq!(clock.now_ms(), t0 + 1_000);
        clock.sleep_until(t0);
        assert_eq!(clock.now_ms(), t0 + 1_000);
        clock.advance(Duration::from_millis(500));
        assert_eq!(iso_millis(clock.now_ms()), "2024-01-01T00:00:01.500Z");
    }
}
