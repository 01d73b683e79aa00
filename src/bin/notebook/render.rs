//! `render`: the HTML book, built in process by mdBook's library, with each cell's recorded
//! output right under its code. Rendering runs no chapter code ("freeze"): it reads the
//! snapshots, and fails on a shown cell whose output is missing or was recorded for other
//! code or another engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use brooklet_book::notebook::book::{ShownCell, cell_links, place_outputs};
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
        // Each page's cells that got an output (and so an `id="cell-NAME"` to link to).
        let mut shown: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        book.for_each_chapter_mut(|page| {
            if failure.is_some() {
                return;
            }
            let path = page.source_path.clone().unwrap_or_else(|| PathBuf::from(&page.name));
            let name = path.display().to_string();
            let cells = shown.entry(path).or_default();
            let placed = place_outputs(&page.content, &name, |cell| {
                let output = self.output(&name, cell)?;
                if output.is_some() {
                    cells.insert(cell.cell.clone());
                }
                Ok(output)
            });
            match placed {
                Ok(content) => page.content = content,
                Err(e) => failure = Some(e),
            }
        });
        if failure.is_none() {
            book.for_each_chapter_mut(|page| {
                let Some(path) = &page.source_path else { return };
                if let Err(e) = check_links(path, &page.content, &shown) {
                    failure.get_or_insert(e);
                }
            });
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(book),
        }
    }
}

/// Fails on a link to a cell output that `page` (at `path`) points at but no page shows:
/// the Q&A and Concepts pages link to outputs, and an output that moved or was renamed
/// must not leave them pointing nowhere.
fn check_links(path: &Path, page: &str, shown: &BTreeMap<PathBuf, BTreeSet<String>>) -> anyhow::Result<()> {
    for link in cell_links(page) {
        let target = if link.page.is_empty() { path.to_path_buf() } else { path.with_file_name(&link.page) };
        let cells = shown.get(&target);
        anyhow::ensure!(
            cells.is_some_and(|cells| cells.contains(&link.cell)),
            "{}:{}: links to the output of cell {} on {}, which {}",
            path.display(),
            link.line,
            link.cell,
            target.display(),
            match cells {
                None => "is not a page of the book".to_string(),
                Some(cells) => format!(
                    "shows no output of that cell (its cell outputs: {})",
                    cells.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        );
    }
    Ok(())
}
