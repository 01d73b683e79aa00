//! The layers of `engine/src` point one way (`lib.rs`, "Layout"): the API uses execution,
//! which uses plan and operators, which use state and the connectors (sources and sinks), which
//! use formats; no file imports a module of a higher layer. This test reads every file's
//! `crate::` paths.

use std::path::Path;

/// Each top-level module's layer, highest first.
const LAYERS: &[(&[&str], u8)] = &[
    (&["lib", "tests", "testing"], 7),
    (&["session", "reader", "writer", "dataframe", "join", "batch_writer", "memory_stream", "delta_table"], 6),
    (&["execution"], 5),
    (&["plan", "operator"], 4),
    (&["state", "source", "sink", "connector"], 3),
    (&["format", "checkpoint", "functions", "registry"], 2),
    (&["error", "options", "clock", "progress", "output_mode", "ddl", "display", "parallel", "fault"], 1),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(names, _)| names.contains(&module)).map(|&(_, l)| l)
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        let Some(own) = layer(&top) else { panic!("{rel}: module '{top}' has no layer in LAYERS") };
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if layer(&name).is_some_and(|l| l > own) {
                upward.push(format!("{rel} uses crate::{name}"));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(upward.is_empty(), "imports from a higher layer:\n{}", upward.join("\n"));
}
