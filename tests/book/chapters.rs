//! Every chapter verified by the notebook runner, exactly as `cargo run -- verify` does it:
//! each cell's output (text and every micro-batch) compared with `snapshots/<chapter>/`, the
//! book's cell options honoured, stale or missing recordings refused. One test per chapter,
//! so they run in parallel and a failure names its chapter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn notebook(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notebook"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("the notebook binary runs")
}

fn verify(chapter: &str) {
    let out = notebook(&["verify", "--chapter", chapter], Path::new(env!("CARGO_MANIFEST_DIR")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{chapter} drifted from its recorded outputs:\n{text}");
}

#[test]
fn ch01_streams_are_tables() {
    verify("ch01_streams_are_tables");
}

#[test]
fn ch02_output_modes() {
    verify("ch02_output_modes");
}

#[test]
fn ch03_file_sources() {
    verify("ch03_file_sources");
}

#[test]
fn ch04_windows() {
    verify("ch04_windows");
}

#[test]
fn ch05_watermarks() {
    verify("ch05_watermarks");
}

#[test]
fn ch06_deduplication() {
    verify("ch06_deduplication");
}

#[test]
fn ch07_sessions() {
    verify("ch07_sessions");
}

#[test]
fn ch08_state() {
    verify("ch08_state");
}

#[test]
fn ch12_joins() {
    verify("ch12_joins");
}

#[test]
fn ch13_avro_functions() {
    verify("ch13_avro_functions");
}

#[test]
fn ch15_sockets() {
    verify("ch15_sockets");
}

/// A chapter that needs something outside the project: verified where it is there,
/// skipped (with a note) where it is not, unless the environment variable `required` is set.
fn verify_or_skip(chapter: &str, required: &str) {
    let out = notebook(&["verify", "--chapter", chapter], Path::new(env!("CARGO_MANIFEST_DIR")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{chapter} drifted from its recorded outputs:\n{text}");
    if text.contains(&format!("skipped {chapter}")) {
        assert!(std::env::var_os(required).is_none(), "{required} is set:\n{text}");
        eprintln!("{text}");
    }
}

/// The REPL chapter runs in evcxr (`scripts/test.sh` installs evcxr and requires it).
#[test]
fn ch09_repl() {
    verify_or_skip("ch09_repl", "BROOKLET_REQUIRE_EVCXR");
}

/// The concepts chapter is an evcxr session too.
#[test]
fn ch16_concepts() {
    verify_or_skip("ch16_concepts", "BROOKLET_REQUIRE_EVCXR");
}

/// The Kafka chapter runs against the broker (`scripts/test.sh` starts it and requires it).
#[test]
fn ch10_kafka_json() {
    verify_or_skip("ch10_kafka_json", "BROOKLET_REQUIRE_KAFKA");
}

#[test]
fn ch11_kafka_batch() {
    verify_or_skip("ch11_kafka_batch", "BROOKLET_REQUIRE_KAFKA");
}

/// Kafka with Avro needs the schema registry too (`scripts/test.sh` starts both).
#[test]
fn ch14_kafka_avro() {
    verify_or_skip("ch14_kafka_avro", "BROOKLET_REQUIRE_REGISTRY");
}

/// Copies what the notebook reads (the book, the examples, every recording) so a test can
/// change it or render it without touching the project.
pub fn project_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recordings = std::fs::read_dir(root.join("snapshots")).expect("snapshots/");
    let recorded: Vec<PathBuf> =
        recordings.map(|e| Path::new("snapshots").join(e.expect("entry").file_name())).collect();
    let dirs = ["book", "book/src", "book/theme", "examples"].map(PathBuf::from);
    for dir in dirs.iter().chain(&recorded) {
        let (from, to) = (root.join(dir), copy.path().join(dir));
        std::fs::create_dir_all(&to).expect("mkdir");
        for entry in std::fs::read_dir(&from).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                std::fs::copy(&path, to.join(path.file_name().expect("a name"))).expect("copy");
            }
        }
    }
    copy
}

#[test]
fn a_changed_batch_fails_verify_naming_chapter_cell_and_batch() {
    let copy = project_copy();
    let snap = copy.path().join("snapshots/ch01_streams_are_tables/run.snap");
    let text = std::fs::read_to_string(&snap).expect("recorded");
    // Batch 2's count of clicks, recorded as something else.
    let (head, tail) = text.split_at(text.find("Batch: 2").expect("a batch 2"));
    let changed = tail.replacen("click|", "clack|", 1);
    std::fs::write(&snap, format!("{head}{changed}")).expect("write");
    let out = notebook(&["verify", "--chapter", "ch01"], copy.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "verify must fail on drift:\n{stdout}");
    assert!(stdout.contains("ch01_streams_are_tables: cell run: output changed in Batch: 2"), "{stdout}");
    assert!(stdout.contains("-|      clack|"), "a diff of the change:\n{stdout}");
}

#[test]
fn changed_code_makes_its_recording_stale() {
    let copy = project_copy();
    let example = copy.path().join("examples/ch01_streams_are_tables.rs");
    let text = std::fs::read_to_string(&example).expect("source");
    std::fs::write(&example, text.replace("// one file per micro-batch", "// one file per batch")).expect("write");
    let out = notebook(&["verify", "--chapter", "ch01"], copy.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("cell query: its code changed since its output was recorded"), "{stdout}");
}

#[test]
fn render_refuses_a_link_to_a_cell_output_the_book_does_not_show() {
    let copy = project_copy();
    let src = copy.path().join("book/src");
    let summary = "# Summary\n\n- [One](ch01-streams-are-tables.md)\n- [Links](links.md)\n";
    std::fs::write(src.join("SUMMARY.md"), summary).expect("write");
    let links = "# Links\n\n[counts](ch01-streams-are-tables.md#cell-run)\n";
    std::fs::write(src.join("links.md"), links).expect("write");
    let out = notebook(&["render"], copy.path());
    assert!(out.status.success(), "a link to a shown output renders: {}", String::from_utf8_lossy(&out.stderr));

    std::fs::write(src.join("links.md"), format!("{links}[events](ch01-streams-are-tables.md#cell-generate)\n"))
        .expect("write");
    let out = notebook(&["render"], copy.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "render must refuse the link");
    assert!(
        stderr.contains("links.md:4: links to the output of cell generate on ch01-streams-are-tables.md"),
        "{stderr}"
    );
}

#[test]
fn parameters_change_a_run_and_unknown_ones_are_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = notebook(&["run", "--chapter", "ch01", "--param", "files=5"], root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("── run ─") && stdout.contains("batches: 5, rows in the last batch: 20"), "{stdout}");
    assert!(stdout.contains("Batch: 4"), "one batch per file:\n{stdout}");

    let out = notebook(&["run", "--chapter", "ch01", "--param", "fils=5"], root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("no parameter 'fils'; parameters: events_per_file (default 20), files (default 3)"),
        "{stdout}"
    );

    let out = notebook(&["run", "--chapter", "ch01", "--param", "files=many"], root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("--param files=many: not a valid value (the default is 3)"), "{stdout}");
}

#[test]
fn ch17_pipeline() {
    verify("ch17_pipeline");
}

#[test]
fn ch18_stream_processor() {
    verify("ch18_stream_processor");
}
