//! Runs a REPL chapter: its evcxr session (`examples/<chapter>.evcxr`) is piped to the
//! `evcxr` REPL (crate `evcxr_repl`), and each cell's share of the transcript becomes the
//! cell's output, recorded and verified like any other chapter's.
//!
//! evcxr compiles every input as a small crate against the session's dependencies; its build
//! directory (`$BROOKLET_EVCXR_DIR/build`, default `<temp>/brooklet-evcxr/build`), shared by the
//! REPL chapters one session at a time, is kept between runs, so only the first session pays
//! for building brooklet (minutes: DataFusion).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use brooklet_book::Chapter;
use brooklet_book::notebook::repl::{ReplOutput, session_cells, session_script, split_transcript};
use brooklet_book::notebook::source;

/// How to get `evcxr` when it is missing.
pub const INSTALL: &str = "cargo install evcxr_repl --locked (about 4 minutes; scripts/test.sh does it)";

/// The `evcxr` binary: `$BROOKLET_EVCXR_BIN`, else `evcxr` on the `PATH` or in `~/.cargo/bin`.
pub fn evcxr() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BROOKLET_EVCXR_BIN") {
        return Some(path.into());
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin")));
    dirs.into_iter().map(|dir| dir.join("evcxr")).find(|p| p.is_file())
}

/// Runs `chapter`'s session from the project `root` and records its cells in `context`.
/// Returns a line on how long evcxr took.
pub fn run(root: &Path, chapter: &str, context: &Chapter, evcxr: &Path) -> anyhow::Result<String> {
    let path = source::example_path(root, chapter);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let cells = session_cells(&text, &path.display().to_string())?;
    let inputs: Vec<&str> = cells.iter().flat_map(|c| c.inputs.iter().map(String::as_str)).collect();

    let (transcript, saved) = converse(root, chapter, evcxr, &inputs)?;
    let mut outputs = split_transcript(&transcript).into_iter();
    ensure!(
        outputs.len() == inputs.len(),
        "evcxr answered {} of {} inputs (its transcript: {})",
        outputs.len(),
        inputs.len(),
        saved.display()
    );
    let mut took = Vec::new();
    for cell in &cells {
        let answers: Vec<ReplOutput> = outputs.by_ref().take(cell.inputs.len()).collect();
        took.extend(cell.inputs.iter().cloned().zip(answers.iter().map(|a| a.took.unwrap_or_default())));
        let text: Vec<&str> = answers.iter().map(|a| a.text.as_str()).filter(|t| !t.is_empty()).collect();
        let text = text.join("\n");
        // An error is the cell's output (`expect-error` in the book says which may fail).
        let _ = context.cell(&cell.name, |out| {
            ensure!(!answers.iter().any(|a| a.error), "{text}");
            if !text.is_empty() {
                out.print(text);
            }
            Ok(())
        });
    }
    Ok(timing(&took))
}

/// Pipes `inputs` to evcxr (as a [`session_script`]) in `root`, so `:dep x = { path = "engine" }`
/// means the project's engine; returns stdout and stderr as one transcript, in order, and
/// where it is kept (`last-transcript-<chapter>.txt` in evcxr's build directory).
fn converse(root: &Path, chapter: &str, evcxr: &Path, inputs: &[&str]) -> anyhow::Result<(String, PathBuf)> {
    // One build directory for every REPL chapter, so brooklet is built for evcxr once, not
    // once per chapter. Two evcxr sessions must not use it at the same time, and the chapters
    // are verified in parallel: a session holds the directory's lock while it runs.
    let build_dir = std::env::var_os("BROOKLET_EVCXR_DIR")
        .map_or_else(|| std::env::temp_dir().join("brooklet-evcxr"), PathBuf::from)
        .join("build");
    std::fs::create_dir_all(&build_dir).with_context(|| format!("creating {}", build_dir.display()))?;
    let lock_path = build_dir.join(".session-lock");
    let lock = std::fs::File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    let saved = build_dir.join(format!("last-transcript-{chapter}.txt"));
    let log = std::fs::File::create(&saved).with_context(|| format!("creating {}", saved.display()))?;
    let mut child = Command::new(evcxr)
        .current_dir(root)
        .env("EVCXR_TMPDIR", &build_dir)
        // evcxr builds in its own directory; the project's target directory is not its.
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", evcxr.display()))?;
    child.stdin.take().context("evcxr's stdin")?.write_all(session_script(inputs).as_bytes())?;
    let status = child.wait()?;
    let transcript = std::fs::read_to_string(&saved)?;
    ensure!(status.success(), "evcxr exited with {status}; its transcript ends:\n{}", tail(&transcript, 15));
    Ok((transcript, saved))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `evcxr: ...` — the `:dep` inputs (they build the dependencies, cached after the first
/// run), and the other inputs' median and slowest.
fn timing(took: &[(String, Duration)]) -> String {
    let (deps, mut rest): (Vec<_>, Vec<_>) = took.iter().partition(|(input, _)| input.starts_with(":dep"));
    let deps: Duration = deps.iter().map(|(_, t)| *t).sum();
    rest.sort_by_key(|(_, t)| *t);
    let median = rest.get(rest.len() / 2).map(|(_, t)| *t).unwrap_or_default();
    let (slowest, slowest_took) = rest.last().map(|(i, t)| (i.as_str(), *t)).unwrap_or_default();
    format!(
        "evcxr: :dep {:.1} s; the other {} inputs: median {} ms, slowest {} ms (`{}`)",
        deps.as_secs_f64(),
        rest.len(),
        median.as_millis(),
        slowest_took.as_millis(),
        slowest.chars().take(50).collect::<String>()
    )
}
