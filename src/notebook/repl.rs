//! A REPL chapter: an evcxr session (`examples/<chapter>.evcxr`), fed to `evcxr` through
//! its standard input, its transcript cut back into cells.
//!
//! A piped evcxr reads one input per line. So the session file is a list of inputs grouped
//! into `// ANCHOR:` cells, and the driver sends a marker after each input (an `:env`
//! command, which evcxr answers with a line naming it and compiles nothing); input *i*'s
//! output is what came between markers *i* and *i + 1*. With `:timing` on, evcxr also says
//! how long each input took (not for one that failed to compile).

use std::time::Duration;

use anyhow::{bail, ensure};

/// One cell of a session: its name and its inputs, one evcxr input each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplCell {
    /// The anchor name.
    pub name: String,
    /// The lines evcxr reads, in order.
    pub inputs: Vec<String>,
}

/// The cells of a session file, in order. Every input must be inside a cell (the book shows
/// all the session ran), and comments must be whole lines (an input is one line, so a
/// trailing `//` would comment out nothing but still confuse a reader).
pub fn session_cells(source: &str, file: &str) -> anyhow::Result<Vec<ReplCell>> {
    let mut cells: Vec<ReplCell> = Vec::new();
    let mut open: Option<ReplCell> = None;
    for (i, line) in source.lines().enumerate() {
        let text = line.trim();
        let at = || format!("{file}:{}", i + 1);
        if let Some(name) = text.strip_prefix("// ANCHOR:") {
            ensure!(open.is_none(), "{}: cells of a REPL session do not nest", at());
            open = Some(ReplCell { name: name.trim().to_string(), inputs: Vec::new() });
        } else if let Some(name) = text.strip_prefix("// ANCHOR_END:") {
            match open.take() {
                Some(cell) if cell.name == name.trim() => cells.push(cell),
                _ => bail!("{}: ANCHOR_END: {} closes no open cell", at(), name.trim()),
            }
        } else if text.is_empty() || text.starts_with("//") {
            continue;
        } else if let Some(cell) = &mut open {
            cell.inputs.push(line.to_string());
        } else {
            bail!("{}: an input outside any cell: the book would not show it", at());
        }
    }
    if let Some(cell) = open {
        bail!("{file}: cell {} is not closed", cell.name);
    }
    Ok(cells)
}

/// What evcxr printed for one input (cargo's build progress left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplOutput {
    /// The text, colours removed, timing lines left out.
    pub text: String,
    /// Whether evcxr reported an error (it prints them in red).
    pub error: bool,
    /// What `:timing` reported (an input that fails to compile reports nothing).
    pub took: Option<Duration>,
}

/// The environment variable the driver sets between inputs: `:env` prints
/// `Set BROOKLET_INPUT=<n> ...`, a line no input's output contains, compiles nothing, and
/// changes nothing the session sees.
pub const MARKER: &str = "BROOKLET_INPUT";

/// What to send evcxr for `inputs`: `:timing` on, then each input followed by a marker.
pub fn session_script(inputs: &[&str]) -> String {
    let mut script = format!(":timing\n:env {MARKER}=0\n");
    for (i, input) in inputs.iter().enumerate() {
        script.push_str(&format!("{input}\n:env {MARKER}={}\n", i + 1));
    }
    script
}

/// Cuts the transcript of a [`session_script`] into one output per input: what came between
/// the markers before and after it.
pub fn split_transcript(transcript: &str) -> Vec<ReplOutput> {
    static PATTERNS: std::sync::OnceLock<[regex::Regex; 4]> = std::sync::OnceLock::new();
    let [marker, took, colour, noise] = PATTERNS.get_or_init(|| {
        [
            // Anywhere in a line: output without a final newline runs into it.
            format!(r"Set {MARKER}=\d+ \(use :restart command to reload child process\)$"),
            r"^Took (\d+)ms$".to_string(),
            "\x1b\\[[0-9;]*m".to_string(),
            // Timing phases, and cargo's progress while evcxr builds the `:dep` crates (only on
            // a cold build).
            r"^(  [A-Za-z][A-Za-z ]*: \d+ms|\s+(Compiling|Checking|Downloaded|Downloading|Updating|Locking|Adding|Blocking|Finished|Building)\s.*)$"
                .to_string(),
        ]
        .map(|p| regex::Regex::new(&p).expect("a valid pattern"))
    });
    let mut outputs = Vec::new();
    // Before the first marker: the banner and `:timing`'s answer, not an input's.
    let mut current: Option<ReplOutput> = None;
    let mut after_marker = false;
    for raw in transcript.lines() {
        let line = colour.replace_all(raw, "");
        if let Some(found) = marker.find(&line) {
            let before = &line[..found.start()];
            if let Some(output) = current.as_mut().filter(|_| !before.is_empty()) {
                output.text.push_str(before);
            }
            if let Some(mut done) = current.take() {
                done.text = done.text.trim_end().to_string();
                outputs.push(done);
            }
            current = Some(ReplOutput { text: String::new(), error: false, took: None });
            after_marker = true;
            continue;
        }
        let Some(output) = current.as_mut() else { continue };
        if let Some(found) = took.captures(&line) {
            // The marker's own `Took 0ms` comes first after it.
            if !std::mem::take(&mut after_marker) {
                output.took = found[1].parse().ok().map(Duration::from_millis);
            }
        } else if after_marker && line.is_empty() || noise.is_match(&line) {
            continue;
        } else {
            after_marker = false;
            // evcxr prints errors in red.
            output.error |= raw.contains("\x1b[31m") || raw.contains("\x1b[91m");
            output.text.push_str(&line);
            output.text.push('\n');
        }
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_cells_of_one_line_inputs() {
        let source = "// a header\n// ANCHOR: a\n:dep x = \"1\"\n\nlet y = 2;\n// ANCHOR_END: a\n// ANCHOR: b\ny\n// ANCHOR_END: b\n";
        let cells = session_cells(source, "s.evcxr").unwrap();
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].inputs, [":dep x = \"1\"", "let y = 2;"]);
        assert_eq!(cells[1], ReplCell { name: "b".into(), inputs: vec!["y".into()] });
        let outside = session_cells("let z = 1;\n", "s.evcxr").unwrap_err().to_string();
        assert!(outside.contains("s.evcxr:1: an input outside any cell"), "{outside}");
        assert!(session_cells("// ANCHOR: a\nx\n", "s").is_err());
    }

    #[test]
    fn a_transcript_is_cut_at_the_markers() {
        let script = session_script(&["let a = 2;", "a", "nope"]);
        assert_eq!(
            script,
            ":timing\n:env BROOKLET_INPUT=0\nlet a = 2;\n:env BROOKLET_INPUT=1\na\n:env BROOKLET_INPUT=2\nnope\n:env BROOKLET_INPUT=3\n"
        );
        let set = |n| {
            format!(
                "Set BROOKLET_INPUT={n} (use :restart command to reload child process)\n\n\x1b[34mTook 0ms\x1b[0m\n"
            )
        };
        let transcript = format!(
            "Welcome to evcxr. For help, type :help\nTiming: true\n\n\x1b[34mTook 0ms\x1b[0m\n{}   Compiling syn v2.0.1\n\x1b[34mTook 4185ms\x1b[0m\n\x1b[34m  Final compile: 4184ms\x1b[0m\n{}2\n\x1b[34mTook 688ms\x1b[0m\nno newline{}\x1b[31m[E0425] Error:\x1b[0m cannot find value `nope`\n{}",
            set(0),
            set(1),
            set(2),
            set(3)
        );
        let outputs = split_transcript(&transcript);
        let got: Vec<_> = outputs.iter().map(|o| (o.text.as_str(), o.error, o.took.map(|t| t.as_millis()))).collect();
        assert_eq!(
            got,
            [
                ("", false, Some(4185)),
                ("2\nno newline", false, Some(688)),
                ("[E0425] Error: cannot find value `nope`", true, None)
            ]
        );
    }
}
