//! Shared pieces of the book's chapter programs: the seeded event generator, the
//! [`Chapter`] context every example runs in, and the kernel-free notebook that runs,
//! verifies and renders chapters cell by cell ([`notebook`], CLI in `src/bin/notebook`).
//!
//! Examples live in `examples/chNN_topic.rs`; each exposes `pub fn run(chapter: &Chapter)` so
//! that `cargo run --example chNN_topic`, the notebook runner and the tests in `tests/book/`
//! run exactly the code the book shows. A chapter's code runs in cells:
//!
//! ```no_run
//! # let chapter = brooklet_book::Chapter::new().unwrap();
//! let rows_per_file = chapter.param("rows_per_file", 20)?; // `--param rows_per_file=50`
//! chapter.cell("run", |out| {
//!     // ANCHOR: run   (the region the book shows; its output goes right under it)
//!     out.print(format!("{rows_per_file} rows per file"));
//!     // ANCHOR_END: run
//!     Ok(())
//! })?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod avro_events;
pub mod bench;
pub mod crash;
pub mod events;
pub mod kafka;
pub mod notebook;
pub mod registry;
pub mod sockets;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use brooklet::Session;
use brooklet::clock::VirtualClock;
use brooklet::testing::BatchRecorder;

use notebook::{Cell, CellLog, CellRun};

/// The instant every chapter's virtual clock starts at.
pub const BOOK_EPOCH: &str = "2024-01-01T00:00:00Z";

/// Where a chapter runs: a session on a virtual clock, a scratch directory, its parameters,
/// and the outputs of its cells (what the runner verifies and the book shows).
pub struct Chapter {
    /// The session, on a virtual clock starting at [`BOOK_EPOCH`]. Its console sinks write
    /// nowhere: batches are shown under the cell they finished in.
    pub session: Session,
    /// Records every batch of every query in this session, by query.
    pub recorder: Arc<BatchRecorder>,
    log: Arc<CellLog>,
    cells: Mutex<Vec<CellRun>>,
    /// `--param name=value` overrides, and the parameters the chapter declared (with defaults).
    overrides: BTreeMap<String, String>,
    declared: Mutex<BTreeMap<String, String>>,
    /// Print each cell's output when it finishes (`cargo run --example`, `notebook run`).
    echo: bool,
    dir: tempfile::TempDir,
}

impl Chapter {
    /// A chapter that prints each cell's output as it finishes, on default parameters.
    pub fn new() -> anyhow::Result<Self> {
        Self::with(BTreeMap::new(), true)
    }

    /// A chapter with parameter `overrides` (`name -> value`), printing cells when `echo`.
    pub fn with(overrides: BTreeMap<String, String>, echo: bool) -> anyhow::Result<Self> {
        let session = Session::builder()
            .clock(VirtualClock::at(BOOK_EPOCH))
            .target_partitions(2)
            .console_output(|_| Ok(()))
            .build();
        let recorder = Arc::new(BatchRecorder::default());
        session.streams().add_listener(recorder.clone());
        let log = Arc::new(CellLog::default());
        session.streams().add_listener(log.clone());
        let dir = tempfile::Builder::new().prefix("brooklet-book-").tempdir()?;
        Ok(Chapter {
            session,
            recorder,
            log,
            cells: Mutex::default(),
            overrides,
            declared: Mutex::default(),
            echo,
            dir,
        })
    }

    /// Runs one cell: `body` prints through its [`Cell`], and every micro-batch that finishes
    /// meanwhile is part of the cell's output too. An error is the cell's output as well
    /// (`error: ...`) and is returned: a cell the book marks `expect-error` is one whose
    /// error the chapter shows and goes past.
    pub fn cell<T>(&self, name: &str, body: impl FnOnce(&Cell<'_>) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let start = self.log.len();
        let result = body(&Cell { log: &self.log });
        let mut output = self.log.transcript_since(start);
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(e) = &error {
            output.push_str(&format!("error: {e}\n"));
        }
        if self.echo {
            // What this run really printed (durations and ids included); only the recording
            // is redacted.
            println!("── {name} {}", "─".repeat(60usize.saturating_sub(name.len())));
            print!("{}", output.replace(&self.dir.path().display().to_string(), "$CHAPTER"));
        }
        let output = notebook::redact(&output, self.dir.path());
        self.cells.lock().expect("cells lock poisoned").push(CellRun { name: name.to_string(), output, error });
        result
    }

    /// A cell whose output is what `body` returns (shown with `Display`).
    pub fn show<T: Display>(&self, name: &str, body: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<()> {
        self.cell(name, |out| body().map(|value| out.print(value)))
    }

    /// The cells run so far, in order.
    pub fn cells(&self) -> Vec<CellRun> {
        self.cells.lock().expect("cells lock poisoned").clone()
    }

    /// A parameter of the chapter: `default`, unless the runner was given
    /// `--param name=value`. The book's recorded outputs use the defaults.
    pub fn param<T: FromStr + Display>(&self, name: &str, default: T) -> anyhow::Result<T> {
        self.declared.lock().expect("params lock poisoned").insert(name.to_string(), default.to_string());
        match self.overrides.get(name) {
            Some(text) => text
                .parse()
                .map_err(|_| anyhow::anyhow!("--param {name}={text}: not a valid value (the default is {default})")),
            None => Ok(default),
        }
    }

    /// The parameters the chapter declared so far, with their defaults.
    pub fn params(&self) -> BTreeMap<String, String> {
        self.declared.lock().expect("params lock poisoned").clone()
    }

    /// A path inside the chapter's scratch directory (created on first use for directories
    /// the chapter reads from).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
