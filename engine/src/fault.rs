//! Named fault points: the places in a micro-batch where the crash harness (`cargo run --bin
//! crash`) stops a process, because a kill at a random moment cannot reach them reliably.
//!
//! With `BROOKLET_FAULT=<point>:<n>` in the environment, the `n`-th time the process passes
//! `point` it writes `brooklet-fault <point>` to stderr and waits there to be killed
//! (`SIGKILL`, by the harness that reads stderr). Without the variable a point costs one
//! atomic load. The points, in a batch's order:
//!
//! ```text
//! offsets-written        offsets/N is on disk, nothing else of batch N
//! source-read            a file source has read one of batch N's files
//! sink-file-written      a file sink has written one data file, not yet its manifest entry
//! kafka-sent             the Kafka sink has sent batch N's records, its transaction still open
//! sink-done              the sink has batch N, no state or commit is written yet
//! state-written          an operator has written state version N (delta and removals)
//! snapshot-writing       a background snapshot is about to write its file
//! commit-written         commits/N is on disk, older files not yet purged
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The environment variable that arms one point.
pub const FAULT_ENV: &str = "BROOKLET_FAULT";

/// Every point, for the harness.
pub const POINTS: [&str; 8] = [
    "offsets-written",
    "source-read",
    "sink-file-written",
    "kafka-sent",
    "sink-done",
    "state-written",
    "snapshot-writing",
    "commit-written",
];

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn armed() -> Option<&'static (String, u64)> {
    ARMED
        .get_or_init(|| {
            let value = std::env::var(FAULT_ENV).ok()?;
            let (point, n) = value.rsplit_once(':')?;
            Some((point.to_string(), n.parse().ok()?))
        })
        .as_ref()
}

/// Passes point `name`: waits to be killed if this is the armed point's `n`-th pass.
pub(crate) fn point(name: &str) {
    let Some((point, n)) = armed() else { return };
    if point != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    eprintln!("brooklet-fault {name}");
    // The harness kills the process now; if nobody does, a crash is still a crash.
    std::thread::sleep(Duration::from_secs(60));
    std::process::abort();
}
