//! `mdbook-brooklet`: an mdBook preprocessor that puts recorded outputs under the code.
//!
//! Two directives, each replaced by recorded output read from the insta snapshots in
//! `snapshots/` — the same files the tests assert, so the book shows exactly what CI checked:
//!
//! - `{{#brooklet-batches ch01 counts_by_type}}`: every micro-batch of a query
//!   (`ch01__counts_by_type@batch-000.snap`, ...), framed like Spark's console sink;
//! - `{{#brooklet-output ch02 validity}}`: a named text output (`ch02__validity.snap`).
//!
//! Rendering never runs code. A directive without snapshots fails the build.
//!
//! mdBook calls `mdbook-brooklet supports <renderer>` and then `mdbook-brooklet` with
//! `[context, book]` as JSON on stdin, expecting the book back on stdout.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

const DIRECTIVES: [&str; 2] = ["{{#brooklet-batches ", "{{#brooklet-output "];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("supports") {
        return; // every renderer: the output is plain markdown
    }
    if let Err(e) = run() {
        eprintln!("mdbook-brooklet: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| e.to_string())?;
    let [context, mut book]: [Value; 2] =
        serde_json::from_str(&input).map_err(|e| format!("cannot read mdBook's input: {e}"))?;
    let root = context.get("root").and_then(Value::as_str).ok_or("no book root in mdBook's context")?;
    let snapshots = Path::new(root).join("../snapshots");
    rewrite(&mut book, &snapshots)?;
    println!("{book}");
    Ok(())
}

/// Expands directives in every chapter's `content`, wherever it sits in the book tree.
fn rewrite(value: &mut Value, snapshots: &Path) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(content)) = map.get_mut("content") {
                *content = expand(content, snapshots)?;
            }
            for v in map.values_mut() {
                rewrite(v, snapshots)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                rewrite(v, snapshots)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(content: &str, snapshots: &Path) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = content;
    while let Some((start, directive)) =
        DIRECTIVES.iter().filter_map(|d| rest.find(d).map(|i| (i, *d))).min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..start]);
        let after = &rest[start + directive.len()..];
        let end = after.find("}}").ok_or_else(|| format!("unclosed {}", directive.trim()))?;
        let args: Vec<&str> = after[..end].split_whitespace().collect();
        let [chapter, name] = args[..] else {
            return Err(format!("expected {}<chapter> <name>}}}}, got '{}'", directive, &after[..end]));
        };
        if directive == DIRECTIVES[0] {
            out.push_str(&render(chapter, name, snapshots)?);
        } else {
            out.push_str(&render_output(chapter, name, snapshots)?);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every batch's table, as Spark's console sink would print it.
fn render(chapter: &str, query: &str, snapshots: &Path) -> Result<String, String> {
    let prefix = format!("{chapter}__{query}@batch-");
    let mut files: Vec<PathBuf> = std::fs::read_dir(snapshots)
        .map_err(|e| format!("{}: {e}", snapshots.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no recorded output for query '{query}' of {chapter}: run the tests to record snapshots"));
    }
    let line = "-------------------------------------------";
    let mut out = String::from("```text\n");
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let batch = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".snap"));
        let batch: u64 =
            batch.and_then(|b| b.parse().ok()).ok_or_else(|| format!("bad snapshot name {}", file.display()))?;
        let header = match snapshot_watermark(&text) {
            Some(w) => format!("Batch: {batch}    (watermark {w})"),
            None => format!("Batch: {batch}"),
        };
        out.push_str(&format!("{line}\n{header}\n{line}\n{}\n", snapshot_body(&text)));
    }
    out.push_str("```\n");
    Ok(out)
}

/// A named text output.
fn render_output(chapter: &str, name: &str, snapshots: &Path) -> Result<String, String> {
    let file = snapshots.join(format!("{chapter}__{name}.snap"));
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!("no recorded output '{name}' of {chapter} ({}): {e}; run the tests to record it", file.display())
    })?;
    Ok(format!("```text\n{}\n```\n", snapshot_body(&text).trim_end()))
}

/// The `watermark:` recorded in the snapshot's metadata, as `2024-01-01 10:10:00`.
fn snapshot_watermark(text: &str) -> Option<String> {
    let header = text.strip_prefix("---\n")?.split("\n---\n").next()?;
    let value = header.lines().find_map(|l| l.trim().strip_prefix("watermark: "))?;
    let value = value.trim_matches('"').trim_end_matches('Z').replace('T', " ");
    Some(value.strip_suffix(".000").unwrap_or(&value).to_string())
}

/// The snapshot's content: what follows insta's `---` metadata header.
fn snapshot_body(text: &str) -> &str {
    match text.strip_prefix("---\n").and_then(|t| t.find("\n---\n").map(|i| &t[i + 5..])) {
        Some(body) => body,
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_a_directive_from_snapshots() {
        let dir = std::env::temp_dir().join(format!("mdbook-brooklet-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ch01__q@batch-000.snap"), "---\nsource: x\n---\n+---+\n|  a|\n+---+\n").unwrap();
        let out = expand("before\n{{#brooklet-batches ch01 q}}\nafter", &dir).unwrap();
        assert!(out.contains("Batch: 0\n-------------------------------------------\n+---+\n|  a|\n+---+\n"), "{out}");
        let with_watermark = "---\nsource: x\ninfo:\n  watermark: \"2024-01-01T10:10:00.000Z\"\n---\n+---+\n";
        assert_eq!(snapshot_watermark(with_watermark).as_deref(), Some("2024-01-01 10:10:00"));
        assert!(out.starts_with("before\n```text\n") && out.ends_with("```\n\nafter"), "{out}");
        assert!(expand("{{#brooklet-batches ch09 missing}}", &dir).is_err());
        std::fs::write(dir.join("ch02__validity.snap"), "---\nsource: x\n---\nok\n").unwrap();
        assert_eq!(expand("{{#brooklet-output ch02 validity}}", &dir).unwrap(), "```text\nok\n```\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
