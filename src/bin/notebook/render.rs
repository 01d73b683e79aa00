//! `render`: the HTML book, built in process by mdBook's library, with each cell's recorded
//! output right under its code. Rendering runs no chapter code ("freeze"): it reads the
//! snapshots, and fails on a shown cell whose output is missing or was recorded for other
//! code or another engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use brooklet_book::notebook::book::{ShownCell, place_outputs};
use brooklet_book::notebook::snapshot::Snapshot;
use brooklet_book::notebook::source;
use mdbook_driver::MDBook;
use mdbook_driver::book::Book;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

/// Builds `root/book` into its build directory.
pub fn render(root: &Path) -> anyhow::Result<PathBuf> {
    let mut book = MDBook::load(root.join("book")).map_err(|e| anyhow::anyhow!("loading the book: {e:#}"))?;
    // Named as book.toml names it, so it runs where book.toml puts it: before `links`
    // expands the includes (it needs to see which cell a code block includes).
    book.with_preprocessor(CellOutputs::new(root));
    book.build().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(book.build_dir_for("html"))
}

/// The preprocessor that places recorded outputs under the cells' code.
pub struct CellOutputs {
    root: PathBuf,
    /// Each chapter's current source regions, by cell.
    anchors: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl CellOutputs {
    /// Outputs read from `root/snapshots`, checked against `root/examples`.
    pub fn new(root: &Path) -> Self {
        CellOutputs { root: root.to_path_buf(), anchors: Mutex::default() }
    }

    /// The output shown under `cell`, or why it cannot be shown.
    fn output(&self, page: &str, cell: &ShownCell) -> anyhow::Result<Option<String>> {
        if cell.options.smoke {
            return Ok(None);
        }
        let (chapter, name) = (&cell.chapter, &cell.cell);
        let record = format!("run `cargo run -- record --chapter {chapter}`");
        let mut anchors = self.anchors.lock().expect("anchors lock poisoned");
        if !anchors.contains_key(chapter) {
            let path = source::example_path(&self.root, chapter);
            let text = std::fs::read_to_string(&path).with_context(|| format!("{page}: {}", path.display()))?;
            anchors.insert(chapter.clone(), source::anchors(&text));
        }
        let code = anchors[chapter]
            .get(name)
            .with_context(|| format!("{page} shows cell {name} of {chapter}, which has no ANCHOR region"))?;
        let snapshot = Snapshot::read(&self.root, chapter, name)?.with_context(|| {
            format!("{page} shows cell {name} of {chapter}, whose output was never recorded: {record}")
        })?;
        anyhow::ensure!(
            snapshot.source_hash == source::source_hash(code),
            "{page} shows cell {name} of {chapter}, whose code changed since its output was recorded: {record}"
        );
        anyhow::ensure!(
            snapshot.engine == brooklet::VERSION,
            "{page}: cell {name} of {chapter} was recorded with brooklet {}, this is {}: {record}",
            snapshot.engine,
            brooklet::VERSION
        );
        if snapshot.body.is_empty() {
            return Ok(None);
        }
        let note = if cell.options.ignore_output {
            "<p class=\"cell-note\">This output differs from run to run.</p>\n\n"
        } else {
            ""
        };
        let body = snapshot.body.trim_end_matches('\n');
        // `id`: the Q&A appendix and other pages link to a cell's output as `page.html#cell-name`.
        Ok(Some(format!("\n<div class=\"cell-output\" id=\"cell-{name}\">\n\n{note}```text\n{body}\n```\n\n</div>\n")))
    }
}

impl Preprocessor for CellOutputs {
    fn name(&self) -> &str {
        "brooklet"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> mdbook_preprocessor::errors::Result<Book> {
        let mut failure = None;
        book.for_each_chapter_mut(|page| {
            if failure.is_some() {
                return;
            }
            let name = page.source_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| page.name.clone());
            match place_outputs(&page.content, &name, |cell| self.output(&name, cell)) {
                Ok(content) => page.content = content,
                Err(e) => failure = Some(e),
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(book),
        }
    }
}
