//! Recorded cell outputs: `snapshots/<chapter>/<cell>.snap`, in insta's file layout (a
//! metadata header between `---` lines, then the output), one file per cell.
//!
//! ```text
//! ---
//! source: examples/ch01_streams_are_tables.rs
//! info:
//!   chapter: ch01_streams_are_tables
//!   cell: run
//!   source_hash: 3f1c0a9b2d4e5f60
//!   engine: 0.1.0
//! ---
//! -------------------------------------------
//! Batch: 0
//! ...
//! ```
//!
//! The hash is of the cell's source region, the engine is the `brooklet` version that
//! produced the output: rendering refuses an output recorded for other code or another engine.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// One cell's recorded output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The chapter, e.g. `ch01_streams_are_tables`.
    pub chapter: String,
    /// The cell (its anchor name).
    pub cell: String,
    /// [`super::source::source_hash`] of the cell's source when it was recorded.
    pub source_hash: String,
    /// The engine version that produced the output.
    pub engine: String,
    /// The output.
    pub body: String,
}

/// The directory of `chapter`'s snapshots under `root/snapshots`.
pub fn chapter_dir(root: &Path, chapter: &str) -> PathBuf {
    root.join("snapshots").join(chapter)
}

impl Snapshot {
    /// Where this snapshot lives under the project `root`.
    pub fn path(&self, root: &Path) -> PathBuf {
        chapter_dir(root, &self.chapter).join(format!("{}.snap", self.cell))
    }

    /// Writes the file.
    pub fn write(&self, root: &Path) -> anyhow::Result<()> {
        let path = self.path(root);
        std::fs::create_dir_all(path.parent().expect("a snapshot has a directory"))?;
        let source = super::source::example_path(root, &self.chapter);
        let source = source.strip_prefix(root).unwrap_or(&source).display().to_string();
        let text = format!(
            "---\nsource: {source}\ninfo:\n  chapter: {}\n  cell: {}\n  source_hash: {}\n  engine: {}\n---\n{}",
            self.chapter, self.cell, self.source_hash, self.engine, self.body
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads `chapter`'s snapshot of `cell`; `None` when it was never recorded.
    pub fn read(root: &Path, chapter: &str, cell: &str) -> anyhow::Result<Option<Snapshot>> {
        let path = chapter_dir(root, chapter).join(format!("{cell}.snap"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::parse(&text).map(Some).with_context(|| format!("{} is not a recorded cell output", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Snapshot> {
        let rest = text.strip_prefix("---\n").context("no '---' header")?;
        let (header, body) = rest.split_once("\n---\n").context("the header does not end with '---'")?;
        let field = |key: &str| {
            header
                .lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':').map(|v| v.trim().to_string()))
                .with_context(|| format!("no '{key}' in the header"))
        };
        Ok(Snapshot {
            chapter: field("chapter")?,
            cell: field("cell")?,
            source_hash: field("source_hash")?,
            engine: field("engine")?,
            body: body.to_string(),
        })
    }

    /// The cells recorded for `chapter`, by file name.
    pub fn recorded_cells(root: &Path, chapter: &str) -> anyhow::Result<Vec<String>> {
        let dir = chapter_dir(root, chapter);
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut cells = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(cell) = name.strip_suffix(".snap") {
                cells.push(cell.to_string());
            }
        }
        cells.sort();
        Ok(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = Snapshot {
            chapter: "ch01_x".into(),
            cell: "run".into(),
            source_hash: "00ff".into(),
            engine: "0.1.0".into(),
            body: "line\n---\nmore\n".into(),
        };
        snapshot.write(dir.path()).unwrap();
        assert_eq!(Snapshot::read(dir.path(), "ch01_x", "run").unwrap(), Some(snapshot));
        assert_eq!(Snapshot::read(dir.path(), "ch01_x", "other").unwrap(), None);
        assert_eq!(Snapshot::recorded_cells(dir.path(), "ch01_x").unwrap(), ["run"]);
    }
}
