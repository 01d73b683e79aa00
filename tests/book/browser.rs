//! The rendered book in a real browser: headless Chromium loads two chapters from `file://`
//! URLs, runs the pages' scripts, and the page text must hold a recorded micro-batch output
//! exactly as `snapshots/` has it — batch header, watermark and every row.
//!
//! Chromium is Debian's `chromium` package, installed by `scripts/test.sh`, which also sets
//! `BROOKLET_REQUIRE_BROWSER=1` so the test cannot pass by not running. Run alone without
//! Chromium, it says so and does nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::chapters::{notebook, project_copy};

/// `chromium`, from `$BROOKLET_CHROMIUM` or the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BROOKLET_CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("chromium")).find(|p| p.is_file())
}

/// The page's DOM after its scripts ran, as headless Chromium serialises it.
fn dump_dom(chromium: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium)
        // The flags this machine's closed network needs (no background connections, no
        // sandbox as root), and a fresh profile.
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    while child.try_wait().expect("chromium runs").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().expect("kill chromium");
            panic!("chromium did not load {} within 120 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium's output");
    assert!(out.status.success(), "chromium failed on {}", page.display());
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

/// The text a reader sees: tags removed, entities decoded.
fn page_text(dom: &str) -> String {
    let tags = regex::Regex::new(r"(?s)<[^>]*>").expect("a valid pattern");
    let text = tags.replace_all(dom, "");
    [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&nbsp;", " "), ("&amp;", "&")]
        .iter()
        .fold(text.into_owned(), |text, (entity, char)| text.replace(entity, char))
}

/// Batch `batch`'s block (header to the end of its table) in a recorded cell output.
fn recorded_batch(root: &Path, chapter: &str, cell: &str, batch: u64) -> String {
    let snapshot = brooklet_book::notebook::snapshot::Snapshot::read(root, chapter, cell)
        .expect("readable recording")
        .expect("a recording");
    let start = snapshot.body.find(&format!("Batch: {batch}")).expect("the batch was recorded");
    let block = &snapshot.body[start..];
    let end = block.find("\n\n").unwrap_or(block.len());
    block[..end].to_string()
}

#[test]
fn rendered_chapters_show_recorded_batches_in_chromium() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("BROOKLET_REQUIRE_BROWSER").is_none(),
            "BROOKLET_REQUIRE_BROWSER is set, but no chromium is on the PATH"
        );
        eprintln!("chromium not found: the browser check did not run (scripts/test.sh installs it)");
        return;
    };
    let copy = project_copy();
    let out = notebook(&["render"], copy.path());
    assert!(out.status.success(), "render: {}", String::from_utf8_lossy(&out.stderr));
    let build = copy.path().join("book/build");

    for (page, chapter, cell, batch, title) in [
        ("ch01-streams-are-tables.html", "ch01_streams_are_tables", "run", 2, "Streams are tables that never end"),
        ("ch05-watermarks.html", "ch05_watermarks", "append", 1, "Watermarks and late data"),
    ] {
        let dom = dump_dom(&chromium, &build.join(page));
        let text = page_text(&dom);
        let expected = recorded_batch(copy.path(), chapter, cell, batch);
        assert!(expected.lines().count() > 5, "{chapter}/{cell}: batch {batch} has rows");
        assert!(text.contains(&expected), "{page} does not show {chapter}/{cell} batch {batch}:\n{expected}");
        assert!(dom.contains(&format!("id=\"cell-{cell}\"")), "{page}: the output is linkable as #cell-{cell}");
        // The pages' scripts ran: the sidebar is filled in by JavaScript (the HTML file
        // holds an empty one), and highlight.js marked up the code.
        let chapters = dom.matches("class=\"chapter-item").count();
        assert!(chapters >= 10, "{page}: the sidebar lists {chapters} pages");
        assert!(text.contains(title), "{page}: its title");
        assert!(dom.contains("class=\"hljs"), "{page}: code highlighted");
    }
}
