//! A chapter's cells in its source: the `// ANCHOR: name` … `// ANCHOR_END: name` regions of
//! `examples/<chapter>.rs` (or of `examples/<chapter>.evcxr`, a REPL session), and the hash of each region recorded with its output (so an
//! output recorded for other code is known to be stale).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The example program of `chapter` (`ch01_streams_are_tables`) under the project `root`,
/// or its evcxr session (`ch09_repl.evcxr`) when it has no program.
pub fn example_path(root: &Path, chapter: &str) -> PathBuf {
    let program = root.join("examples").join(format!("{chapter}.rs"));
    let session = program.with_extension("evcxr");
    if !program.exists() && session.exists() { session } else { program }
}

/// Every anchored region of `source`, by name: the lines between its markers, without the
/// marker lines of regions nested in it (as mdBook's `{{#include file:name}}` shows it).
pub fn anchors(source: &str) -> BTreeMap<String, String> {
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    let mut done = BTreeMap::new();
    for line in source.lines() {
        if let Some(name) = marker(line, "ANCHOR:") {
            open.insert(name.to_string(), String::new());
        } else if let Some(name) = marker(line, "ANCHOR_END:") {
            if let Some(text) = open.remove(name) {
                done.insert(name.to_string(), text);
            }
        } else {
            for text in open.values_mut() {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    done
}

fn marker<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix("//")?.trim_start().strip_prefix(tag)?;
    Some(rest.trim())
}

/// A short, stable hash of a cell's source text.
pub fn source_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_nest_without_their_markers_and_hash_by_content() {
        let source =
            "a\n// ANCHOR: outer\nb\n    // ANCHOR: inner\nc\n    // ANCHOR_END: inner\nd\n// ANCHOR_END: outer\n";
        let found = anchors(source);
        assert_eq!(found["outer"], "b\nc\nd\n");
        assert_eq!(found["inner"], "c\n");
        assert_eq!(source_hash("c\n"), source_hash("c\n"));
        assert_ne!(source_hash("c\n"), source_hash("c \n"));
        assert_eq!(source_hash("c\n").len(), 16);
    }
}
