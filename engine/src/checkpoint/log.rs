//! Versioned, human-readable log files: a `v1` line, then one JSON value per line. Written to a
//! temporary file and renamed, so a crash never leaves half a file behind.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The version line every log file starts with.
pub(crate) const VERSION: &str = "v1";

/// Writes `lines` after the version line, atomically.
pub(crate) fn write_log_file(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = String::from(VERSION);
    for line in lines {
        text.push('\n');
        text.push_str(line);
    }
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Internal(format!("{} has no parent directory", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The lines after the version line. A missing or unknown version is an error naming the
/// file: Brooklet never guesses at a checkpoint it cannot read.
pub(crate) fn read_log_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(VERSION) => Ok(lines.map(String::from).collect()),
        Some(v) if v.starts_with('v') => Err(Error::checkpoint(
            path,
            format!(
                "written in format {v}, but this Brooklet reads {VERSION}: upgrade Brooklet or start from a new checkpoint"
            ),
        )),
        _ => Err(Error::checkpoint(path, "corrupt: the file does not start with a version line")),
    }
}

/// The numbered entries of a log directory, in order. Other files are ignored.
pub(crate) fn log_entries(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(n) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("0");
        write_log_file(&path, &["{\"a\":1}".into()]).unwrap();
        assert_eq!(read_log_file(&path).unwrap(), vec!["{\"a\":1}".to_string()]);
        assert_eq!(log_entries(dir.path()).unwrap(), vec![0]);
        std::fs::write(&path, "v9\n{}").unwrap();
        let err = read_log_file(&path).unwrap_err().to_string();
        assert!(err.contains("written in format v9"), "{err}");
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            read_log_file(&path)
                .unwrap_err()
                .to_string()
                .ends_with("corrupt: the file does not start with a version line")
        );
    }
}
