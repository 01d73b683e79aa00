//! The kernel-free notebook: a chapter's program runs once, cell by cell; each cell's output
//! (what it printed and every micro-batch that finished in it) is recorded next to the hash
//! of the cell's source, verified on every test run, and rendered under the cell's code.
//!
//! ```text
//!  examples/ch05_watermarks.rs        // ANCHOR: name … // ANCHOR_END: name   (cells)
//!        │ Chapter::cell("name", ..)  text + batches (query listener) → transcript
//!        ▼
//!  snapshots/ch05_watermarks/name.snap      record: written   verify: compared (diff)
//!        │
//!  book/src/ch05-watermarks.md        {{#include ..:name}} + <!-- cell: options -->
//!        ▼ render (mdBook, in process)
//!  book/build/…html                   the recorded output right under the code
//! ```
//!
//! [`source`] finds cells in the examples, [`snapshot`] reads and writes recorded outputs,
//! [`book`] finds the cells a page shows and their options; this module compares a run with
//! what was recorded.

pub mod book;
mod cell;
pub mod repl;
pub mod snapshot;
pub mod source;

use std::collections::BTreeMap;
use std::path::Path;

pub use cell::Cell;
pub(crate) use cell::CellLog;

use book::CellOptions;
use snapshot::Snapshot;

/// One cell's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRun {
    /// The cell's name (its anchor).
    pub name: String,
    /// Its output, as recorded and shown.
    pub output: String,
    /// The error it ended with, if any.
    pub error: Option<String>,
}

/// Makes run-to-run differences stable: the chapter's scratch directory becomes `$CHAPTER`,
/// durations `[duration]`, query ids `[id]`.
pub fn redact(text: &str, scratch: &Path) -> String {
    static PATTERNS: std::sync::OnceLock<Vec<(regex::Regex, &str)>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            (r"\b\d+(\.\d+)? ?(ms|µs|s)\b", "[duration]"),
            // Query and run ids, alone or in names (the exactly-once sink's transactional id).
            (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "[id]"),
            (
                r#""(batchDuration|addBatch|commitOffsets|getBatch|latestOffset|queryPlanning|triggerExecution|walCommit|allUpdatesTimeMs|allRemovalsTimeMs|commitTimeMs|processedRowsPerSecond)": [0-9.e+-]+"#,
                r#""$1": "[duration]""#,
            ),
        ]
        .into_iter()
        .map(|(p, with)| (regex::Regex::new(p).expect("a valid pattern"), with))
        .collect()
    });
    let mut text = text.replace(&scratch.display().to_string(), "$CHAPTER");
    for (pattern, with) in patterns {
        text = pattern.replace_all(&text, *with).into_owned();
    }
    text
}

/// The options the book gives each of `chapter`'s cells (from every page under `book_src`).
pub fn cell_options(book_src: &Path, chapter: &str) -> anyhow::Result<BTreeMap<String, CellOptions>> {
    let mut options = BTreeMap::new();
    for entry in std::fs::read_dir(book_src)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path)?;
            for cell in book::shown_cells(&text, &path.display().to_string())? {
                if cell.chapter == chapter {
                    options.insert(cell.cell, cell.options);
                }
            }
        }
    }
    Ok(options)
}

/// What a chapter run is checked against: its source, the book's options, the recordings.
pub struct Expectations {
    chapter: String,
    anchors: BTreeMap<String, String>,
    options: BTreeMap<String, CellOptions>,
}

impl Expectations {
    /// Loads `chapter`'s source and book options under the project `root`.
    pub fn load(root: &Path, chapter: &str) -> anyhow::Result<Self> {
        let path = source::example_path(root, chapter);
        let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Expectations {
            chapter: chapter.to_string(),
            anchors: source::anchors(&text),
            options: cell_options(&root.join("book/src"), chapter)?,
        })
    }

    fn options(&self, cell: &str) -> CellOptions {
        self.options.get(cell).copied().unwrap_or_default()
    }

    /// What is wrong with `cells` as a run of this chapter, before any comparison: cells
    /// without a source region, cells run twice, errors not expected, expected errors missing.
    fn run_problems(&self, cells: &[CellRun]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for run in cells {
            let name = &run.name;
            if !seen.insert(name) {
                problems.push(format!("cell {name} ran twice: cell names must be unique"));
            }
            if !self.anchors.contains_key(name) {
                problems
                    .push(format!("cell {name} has no `// ANCHOR: {name}` region in its example ({})", self.chapter));
            }
            match (&run.error, self.options(name).expect_error) {
                (Some(e), false) => problems.push(format!("cell {name} failed: {e}")),
                (None, true) => problems.push(format!("cell {name} is marked expect-error but succeeded")),
                _ => {}
            }
        }
        problems
    }

    /// The snapshots a run records: every executed cell, plus an empty output for every
    /// region that only defines code (so each region the book shows has a recorded hash).
    fn snapshots(&self, cells: &[CellRun]) -> Vec<Snapshot> {
        let mut outputs: BTreeMap<&str, String> = BTreeMap::new();
        for run in cells {
            let smoke = self.options(&run.name).smoke;
            outputs.insert(&run.name, if smoke { String::new() } else { run.output.clone() });
        }
        self.anchors
            .iter()
            .map(|(name, text)| Snapshot {
                chapter: self.chapter.clone(),
                cell: name.clone(),
                source_hash: source::source_hash(text),
                engine: brooklet::VERSION.to_string(),
                body: outputs.get(name.as_str()).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Compares a run with the recordings under `root`: each problem names the chapter, the
    /// cell and, for a changed output, the first batch that differs, with a diff.
    pub fn verify(&self, root: &Path, cells: &[CellRun]) -> anyhow::Result<Vec<String>> {
        let mut problems = self.run_problems(cells);
        let record = format!("cargo run -- record --chapter {}", self.chapter);
        for now in self.snapshots(cells) {
            let cell = &now.cell;
            let Some(recorded) = Snapshot::read(root, &self.chapter, cell)? else {
                problems.push(format!("cell {cell}: no recorded output (record it: {record})"));
                continue;
            };
            if recorded.source_hash != now.source_hash {
                problems.push(format!("cell {cell}: its code changed since its output was recorded ({record})"));
            } else if recorded.engine != now.engine {
                problems
                    .push(format!("cell {cell}: recorded with brooklet {}, this is {}", recorded.engine, now.engine));
            } else if recorded.body != now.body && !self.options(cell).ignore_output {
                problems.push(format!("cell {cell}: {}", describe_drift(&recorded.body, &now.body)));
            }
        }
        for stale in Snapshot::recorded_cells(root, &self.chapter)? {
            if !self.anchors.contains_key(&stale) {
                problems.push(format!("snapshots/{}/{stale}.snap: no such cell any more (delete it)", self.chapter));
            }
        }
        Ok(problems)
    }

    /// Records the run under `root` (replacing what was there); refuses a run with problems.
    pub fn record(&self, root: &Path, cells: &[CellRun]) -> anyhow::Result<usize> {
        let problems = self.run_problems(cells);
        anyhow::ensure!(problems.is_empty(), "{}: not recorded:\n  {}", self.chapter, problems.join("\n  "));
        let dir = snapshot::chapter_dir(root, &self.chapter);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let snapshots = self.snapshots(cells);
        for s in &snapshots {
            s.write(root)?;
        }
        Ok(snapshots.len())
    }
}

/// A readable account of how `now` differs from `recorded`: the batch the first change is
/// in (when it is in a batch) and a unified diff.
fn describe_drift(recorded: &str, now: &str) -> String {
    let first_change = recorded
        .lines()
        .zip(now.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| recorded.lines().count().min(now.lines().count()));
    let batch = recorded.lines().take(first_change + 1).filter(|l| l.starts_with("Batch: ")).last();
    let place = match batch {
        Some(header) => format!("output changed in {}", header.trim()),
        None => "output changed".to_string(),
    };
    let diff = similar::TextDiff::from_lines(recorded, now);
    format!("{place}\n{}", diff.unified_diff().context_radius(3).header("recorded", "now"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_names_the_batch_it_starts_in() {
        let recorded = "x\n---\nBatch: 0\n---\n|a|\n---\nBatch: 1\n---\n|b|\n";
        let now = recorded.replace("|b|", "|c|");
        let text = describe_drift(recorded, &now);
        assert!(text.starts_with("output changed in Batch: 1\n"), "{text}");
        assert!(text.contains("-|b|\n+|c|"), "{text}");
    }

    #[test]
    fn redaction_hides_what_differs_between_runs() {
        let text =
            redact("/tmp/x/out took 12 ms, \"runId\": \"0d4f5c9e-1234-4abc-9def-0123456789ab\"", Path::new("/tmp/x"));
        assert_eq!(text, "$CHAPTER/out took [duration], \"runId\": \"[id]\"");
    }
}
