//! Shared pieces of the book's chapter programs: the seeded event generator and the
//! [`Chapter`] context every example and snapshot test runs in.
//!
//! Examples live in `examples/chNN_topic.rs`; each exposes `pub fn run(chapter: &Chapter)` so
//! that `cargo run --example chNN_topic` and the snapshot tests in `tests/book/` run exactly
//! the code the book shows.

pub mod bench;
pub mod events;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use brooklet::Session;
use brooklet::clock::VirtualClock;
use brooklet::testing::BatchRecorder;

/// The instant every chapter's virtual clock starts at.
pub const BOOK_EPOCH: &str = "2024-01-01T00:00:00Z";

/// Where a chapter runs: a session on a virtual clock, a scratch directory, and a recorder of
/// every micro-batch's output (what the snapshot tests and the book show).
pub struct Chapter {
    /// The session, on a virtual clock starting at [`BOOK_EPOCH`].
    pub session: Session,
    /// Records every batch of every query in this session.
    pub recorder: Arc<BatchRecorder>,
    /// Named text outputs ([`Chapter::output`]), in name order.
    outputs: Mutex<BTreeMap<String, String>>,
    dir: tempfile::TempDir,
}

impl Chapter {
    /// A fresh session and scratch directory for a chapter.
    pub fn new() -> anyhow::Result<Self> {
        let session = Session::builder().clock(VirtualClock::at(BOOK_EPOCH)).target_partitions(2).build();
        let recorder = Arc::new(BatchRecorder::default());
        session.streams().add_listener(recorder.clone());
        let dir = tempfile::Builder::new().prefix("brooklet-book-").tempdir()?;
        Ok(Chapter { session, recorder, outputs: Mutex::default(), dir })
    }

    /// Prints `text` and records it under `name`: the snapshot tests assert it and the book
    /// shows it with `{{#brooklet-output <chapter> <name>}}`. The scratch directory's path,
    /// different on every run, is written `$CHAPTER`.
    pub fn output(&self, name: &str, text: impl Display) {
        let text = text.to_string().replace(&self.dir.path().display().to_string(), "$CHAPTER");
        println!("{text}");
        self.outputs.lock().expect("outputs lock poisoned").insert(name.to_string(), text);
    }

    /// The recorded text outputs, by name.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        self.outputs.lock().expect("outputs lock poisoned").clone()
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
