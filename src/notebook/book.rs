//! Cells as the book's chapters show them: a code block that includes one anchored region of
//! an example, optionally preceded by a Livebook-style options comment.
//!
//! ````markdown
//! <!-- cell: expect-error -->
//! ```rust,ignore
//! {{#include ../../examples/ch02_output_modes.rs:complete_without_aggregation}}
//! ```
//! ````
//!
//! Options: `expect-error` (the cell must fail; its error is the output), `ignore-output`
//! (the output varies: shown, never compared), `smoke` (executed only: no output recorded or
//! shown).

use std::path::Path;

use anyhow::{Context, bail};

/// How a cell's output is treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellOptions {
    /// The cell must fail; the error is its output.
    pub expect_error: bool,
    /// The output varies between runs: recorded and shown, not compared.
    pub ignore_output: bool,
    /// Executed only: no output is recorded or shown.
    pub smoke: bool,
}

impl CellOptions {
    fn parse(text: &str) -> Result<Self, String> {
        let mut options = CellOptions::default();
        for word in text.split([',', ' ']).filter(|w| !w.is_empty()) {
            match word {
                "expect-error" => options.expect_error = true,
                "ignore-output" => options.ignore_output = true,
                "smoke" => options.smoke = true,
                other => return Err(format!("unknown cell option '{other}' (expect-error, ignore-output, smoke)")),
            }
        }
        Ok(options)
    }
}

/// A cell a chapter page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownCell {
    /// The example the code comes from, e.g. `ch02_output_modes`.
    pub chapter: String,
    /// The anchor name.
    pub cell: String,
    /// Its options.
    pub options: CellOptions,
    /// The line (0-based) of the code block's closing fence: the output goes after it.
    closing_fence: usize,
}

/// The cells `markdown` shows, in page order; `file` names the page in errors.
pub fn shown_cells(markdown: &str, file: &str) -> anyhow::Result<Vec<ShownCell>> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut cells = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let close = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .with_context(|| format!("{file}:{}: a code block is not closed", i + 1))?;
        let body: Vec<&str> = lines[i + 1..close].iter().copied().filter(|l| !l.trim().is_empty()).collect();
        if let [only] = body[..]
            && let Some((chapter, cell)) = included_region(only)
        {
            let options = match i.checked_sub(1).map(|p| lines[p].trim()) {
                Some(comment) if comment.starts_with("<!-- cell:") => {
                    let text = comment.trim_start_matches("<!-- cell:").trim_end_matches("-->");
                    CellOptions::parse(text).map_err(|e| anyhow::anyhow!("{file}:{i}: {e}"))?
                }
                _ => CellOptions::default(),
            };
            cells.push(ShownCell { chapter, cell, options, closing_fence: close });
        }
        i = close + 1;
    }
    Ok(cells)
}

/// `{{#include ../../examples/<chapter>.rs:<cell>}}` → (chapter, cell).
fn included_region(line: &str) -> Option<(String, String)> {
    let inner = line.trim().strip_prefix("{{#include ")?.strip_suffix("}}")?;
    let (path, cell) = inner.trim().rsplit_once(':')?;
    let chapter = Path::new(path).file_stem()?.to_str()?;
    path.contains("examples/").then(|| (chapter.to_string(), cell.to_string()))
}

/// `markdown` with each shown cell's output (from `output`) placed right under its code
/// block; `output` returns `None` for a cell that shows no output.
pub fn place_outputs(
    markdown: &str,
    file: &str,
    mut output: impl FnMut(&ShownCell) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<String> {
    if let Some(old) = markdown.lines().position(|l| l.contains("{{#brooklet-")) {
        bail!("{file}:{}: outputs are placed under their cell's code now; remove the directive", old + 1);
    }
    let cells = shown_cells(markdown, file)?;
    let mut out = String::new();
    let mut next = cells.iter().peekable();
    for (i, line) in markdown.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if let Some(cell) = next.next_if(|c| c.closing_fence == i)
            && let Some(text) = output(cell)?
        {
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// A link to a cell's output, `[text](page.md#cell-name)`, as a page writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellLink {
    /// The line (1-based) it is on.
    pub line: usize,
    /// The page it points to, as written (empty: the same page).
    pub page: String,
    /// The cell's name.
    pub cell: String,
}

/// The links to cell outputs in `markdown`, in page order.
pub fn cell_links(markdown: &str) -> Vec<CellLink> {
    static LINK: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let link =
        LINK.get_or_init(|| regex::Regex::new(r"\]\(([^)\s#]*)#cell-([A-Za-z0-9_]+)\)").expect("a valid pattern"));
    let mut links = Vec::new();
    for (i, line) in markdown.lines().enumerate() {
        for found in link.captures_iter(line) {
            links.push(CellLink { line: i + 1, page: found[1].to_string(), cell: found[2].to_string() });
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "Text\n\n<!-- cell: expect-error -->\n```rust,ignore\n{{#include ../../examples/ch02_x.rs:bad}}\n```\n\n```rust,ignore\n{{#include ../../examples/ch02_x.rs:good}}\n```\n```toml\nx = 1\n```\n";

    #[test]
    fn finds_cells_and_their_options_and_places_outputs_under_them() {
        let cells = shown_cells(PAGE, "page.md").unwrap();
        let names: Vec<_> = cells.iter().map(|c| (c.cell.as_str(), c.options.expect_error)).collect();
        assert_eq!(names, [("bad", true), ("good", false)]);
        assert_eq!(cells[0].chapter, "ch02_x");
        let placed = place_outputs(PAGE, "page.md", |c| Ok(Some(format!("OUT {}\n", c.cell)))).unwrap();
        assert!(placed.contains("ch02_x.rs:bad}}\n```\nOUT bad\n"), "{placed}");
        assert!(placed.contains("ch02_x.rs:good}}\n```\nOUT good\n```toml"), "{placed}");
        assert!(shown_cells("<!-- cell: sometimes -->\n```\n{{#include ../../examples/a.rs:b}}\n```\n", "p").is_err());
        assert!(place_outputs("{{#brooklet-batches ch01 q}}", "p", |_| Ok(None)).is_err());
    }

    #[test]
    fn finds_links_to_cell_outputs() {
        let page =
            "See [this](ch05-watermarks.md#cell-timeline) and\n[that](#cell-run), not [a section](ch05.md#try-this).";
        let links: Vec<_> = cell_links(page).into_iter().map(|l| (l.line, l.page, l.cell)).collect();
        assert_eq!(links, [(1, "ch05-watermarks.md".into(), "timeline".into()), (2, String::new(), "run".into())]);
    }
}
