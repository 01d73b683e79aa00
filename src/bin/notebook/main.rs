//! `notebook`: the book's chapters as notebooks, without a kernel.
//!
//! ```text
//! cargo run -- run --chapter ch05_watermarks [--param delay="20 minutes"]   print every cell's output
//! cargo run -- verify --all          run and compare with snapshots/ (non-zero exit on drift)
//! cargo run -- record --chapter ch05  run and write snapshots/ch05_watermarks/*.snap
//! cargo run -- render                build book/build from the recorded outputs (runs no chapter)
//! cargo run -- list                  chapters, their cells and parameters
//! ```
//!
//! A chapter is `examples/<chapter>.rs`; its cells are its `// ANCHOR:` regions, run through
//! [`brooklet_book::Chapter::cell`]. All chapters are compiled into this binary, but for the
//! REPL chapter, `examples/ch09_repl.evcxr`, which the `evcxr` REPL runs (when installed).

mod chapters;
mod render;
mod repl;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use brooklet_book::Chapter;
use brooklet_book::notebook::Expectations;
use clap::{Args, Parser, Subcommand};

use chapters::{CHAPTERS, Kind};

#[derive(Debug, Parser)]
#[command(about = "Run, verify, record and render the Brooklet book's chapters")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The project: where `book/`, `examples/` and `snapshots/` are read and written
    /// [default: the nearest directory up from here that holds `book/book.toml`].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
}

impl Cli {
    /// The project root: `--root`, else the nearest directory from the current one upwards
    /// holding `book/book.toml`, else the directory this binary was built from.
    fn root(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        let cwd = std::env::current_dir().unwrap_or_default();
        let found = cwd.ancestors().find(|dir| dir.join("book/book.toml").is_file());
        found.map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), Path::to_path_buf)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run chapters, printing each cell's output (text and per-batch tables) in order.
    Run {
        #[command(flatten)]
        which: Which,
        /// Override a chapter parameter: `--param name=value` (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Run chapters and compare every cell's output with the recorded one.
    Verify {
        #[command(flatten)]
        which: Which,
    },
    /// Run chapters and record their outputs (on default parameters) in snapshots/.
    Record {
        #[command(flatten)]
        which: Which,
    },
    /// Render the book from the recorded outputs, without running any chapter.
    Render,
    /// List the chapters, their cells and their parameters.
    List,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// A chapter, by name (`ch05_watermarks`) or number (`ch05`); repeatable.
    #[arg(long = "chapter")]
    chapters: Vec<String>,
    /// Every chapter.
    #[arg(long)]
    all: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("expected name=value, got '{text}'"))?;
    Ok((name.trim().to_string(), value.to_string()))
}

impl Which {
    /// The chapters selected, in book order.
    fn resolve(&self) -> anyhow::Result<Vec<&'static str>> {
        if self.all {
            return Ok(CHAPTERS.iter().map(|(name, _)| *name).collect());
        }
        self.chapters
            .iter()
            .map(|wanted| {
                let found: Vec<&str> = CHAPTERS
                    .iter()
                    .map(|(name, _)| *name)
                    .filter(|name| {
                        *name == wanted || name.strip_prefix(wanted.as_str()).is_some_and(|r| r.starts_with('_'))
                    })
                    .collect();
                match found[..] {
                    [one] => Ok(one),
                    [] => bail!("no chapter '{wanted}'; chapters: {}", names()),
                    _ => bail!("'{wanted}' names several chapters ({}): give the full name", found.join(", ")),
                }
            })
            .collect()
    }
}

fn names() -> String {
    CHAPTERS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// One chapter's run.
struct Execution {
    /// The chapter, with its cells' outputs.
    context: Chapter,
    /// Why the chapter stopped early, if it did.
    failure: Option<String>,
    /// Why it was not run at all (a REPL chapter without evcxr, a Kafka chapter without a
    /// broker).
    skipped: Option<String>,
    /// Anything else to report (a REPL chapter's timings).
    note: Option<String>,
}

impl Execution {
    /// A failure that is not one of the cells' (those are reported per cell).
    fn outside_cells(&self) -> Option<String> {
        let failure = self.failure.as_ref()?;
        let in_a_cell = self.context.cells().iter().any(|c| c.error.as_ref() == Some(failure));
        (!in_a_cell).then(|| format!("the chapter stopped: {failure}"))
    }
}

/// Runs `chapter` of the project at `root` (an example the book only shows code from has no
/// cells to execute).
fn execute(root: &Path, chapter: &str, params: BTreeMap<String, String>, echo: bool) -> anyhow::Result<Execution> {
    let kind = CHAPTERS.iter().find(|(name, _)| *name == chapter).map_or(Kind::CodeOnly, |(_, kind)| *kind);
    let context = Chapter::with(params, echo)?;
    let (mut failure, mut skipped, mut note) = (None, None, None);
    match kind {
        Kind::Program(run) => failure = run(&context).err().map(|e| format!("{e:#}")),
        Kind::Kafka(run) => match brooklet_book::kafka::bootstrap() {
            None => skipped = Some(format!("{}; the book shows its recording", brooklet_book::kafka::NO_BROKER)),
            Some(_) => failure = run(&context).err().map(|e| format!("{e:#}")),
        },
        Kind::KafkaRegistry(run) => match (brooklet_book::kafka::bootstrap(), brooklet_book::registry::url()) {
            (None, _) => skipped = Some(format!("{}; the book shows its recording", brooklet_book::kafka::NO_BROKER)),
            (_, None) => {
                skipped = Some(format!("{}; the book shows its recording", brooklet_book::registry::NO_REGISTRY))
            }
            (Some(_), Some(_)) => failure = run(&context).err().map(|e| format!("{e:#}")),
        },
        Kind::CodeOnly => {}
        Kind::Repl => match repl::evcxr() {
            None => skipped = Some(format!("evcxr is not installed ({}); the book shows its recording", repl::INSTALL)),
            Some(evcxr) => match repl::run(root, chapter, &context, &evcxr) {
                Ok(timing) => note = Some(timing),
                Err(e) => failure = Some(format!("{e:#}")),
            },
        },
    }
    Ok(Execution { context, failure, skipped, note })
}

fn run(root: &Path, chapters: &[&str], params: &[(String, String)]) -> anyhow::Result<bool> {
    let overrides: BTreeMap<String, String> = params.iter().cloned().collect();
    let mut ok = true;
    for chapter in chapters {
        println!("\n# {chapter}\n");
        let done = execute(root, chapter, overrides.clone(), true)?;
        if let Some(why) = &done.skipped {
            println!("{chapter}: skipped: {why}");
        }
        if let Some(failure) = &done.failure {
            println!("\n{chapter}: {failure}");
            ok = false;
        }
        if let Some(note) = &done.note {
            println!("\n{note}");
        }
        let declared = done.context.params();
        for name in overrides.keys().filter(|n| !declared.contains_key(*n)) {
            let known: Vec<String> = declared.iter().map(|(k, v)| format!("{k} (default {v})")).collect();
            println!(
                "\n{chapter}: no parameter '{name}'; parameters: {}",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            );
            ok = false;
        }
    }
    Ok(ok)
}

fn verify(root: &Path, chapters: &[&str]) -> anyhow::Result<bool> {
    let mut failed = 0;
    for chapter in chapters {
        let started = Instant::now();
        let done = execute(root, chapter, BTreeMap::new(), false)?;
        if let Some(why) = &done.skipped {
            println!("skipped {chapter}: {why}");
            continue;
        }
        let cells = done.context.cells();
        let mut problems = Expectations::load(root, chapter)?.verify(root, &cells)?;
        problems.extend(done.outside_cells());
        let took = started.elapsed().as_secs_f64();
        if let Some(note) = &done.note {
            println!("        {note}");
        }
        if problems.is_empty() {
            println!("ok      {chapter} ({} cells run, {took:.2} s)", cells.len());
        } else {
            failed += 1;
            println!("FAILED  {chapter}");
            for p in problems {
                println!("  {chapter}: {}", p.replace('\n', "\n    "));
            }
        }
    }
    if failed > 0 {
        println!("\n{failed} chapter(s) drifted. If the change is intended: cargo run -- record --chapter <name>");
    }
    Ok(failed == 0)
}

fn record(root: &Path, chapters: &[&str]) -> anyhow::Result<bool> {
    for chapter in chapters {
        let done = execute(root, chapter, BTreeMap::new(), false)?;
        if let Some(problem) = done.skipped.as_ref().or(done.outside_cells().as_ref()) {
            bail!("{chapter}: not recorded: {problem}");
        }
        if let Some(note) = &done.note {
            println!("{note}");
        }
        let written = Expectations::load(root, chapter)?.record(root, &done.context.cells())?;
        println!("recorded {chapter}: {written} cells in snapshots/{chapter}/");
    }
    Ok(true)
}

fn list(root: &Path) -> anyhow::Result<bool> {
    for (chapter, kind) in CHAPTERS {
        let path = brooklet_book::notebook::source::example_path(root, chapter);
        let source = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let cells: Vec<String> = brooklet_book::notebook::source::anchors(&source).into_keys().collect();
        println!("{chapter}\n  cells: {}", cells.join(", "));
        if matches!(kind, Kind::Repl) {
            continue; // no parameters, and running it means running evcxr
        }
        let done = execute(root, chapter, BTreeMap::new(), false)?;
        for (name, default) in done.context.params() {
            println!("  --param {name}={default}");
        }
    }
    Ok(true)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = cli.root();
    let ok = match &cli.command {
        Command::Run { which, params } => run(&root, &which.resolve()?, params)?,
        Command::Verify { which } => verify(&root, &which.resolve()?)?,
        Command::Record { which } => record(&root, &which.resolve()?)?,
        Command::Render => {
            let started = Instant::now();
            let dir = render::render(&root).context("rendering the book")?;
            println!("book rendered in {:.2} s: {}", started.elapsed().as_secs_f64(), dir.join("index.html").display());
            true
        }
        Command::List => list(&root)?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_resolve_by_name_or_number() {
        let which = |c: &str| Which { chapters: vec![c.into()], all: false }.resolve();
        assert_eq!(which("ch05").unwrap(), ["ch05_watermarks"]);
        assert_eq!(which("ch05_watermarks").unwrap(), ["ch05_watermarks"]);
        assert_eq!(which("ch03").unwrap(), ["ch03_file_sources"]);
        assert!(which("ch1").is_err(), "a number is a whole one: ch1 is none of ch10 to ch18");
        assert!(which("ch99").is_err());
        assert_eq!(parse_param("delay=20 minutes").unwrap(), ("delay".into(), "20 minutes".into()));
    }
}
