//! [`OutputMode`]: which rows of the result table each batch writes (append, update,
//! complete). A core type: sinks, operators and the plan's rules all read it.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which rows of the result table each batch writes (Spark's `OutputMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Only new rows, each written once and never changed.
    Append,
    /// The rows that changed in this batch.
    Update,
    /// The whole result table, every batch.
    Complete,
}

impl FromStr for OutputMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_lowercase().as_str() {
            "append" => Ok(OutputMode::Append),
            "update" => Ok(OutputMode::Update),
            "complete" => Ok(OutputMode::Complete),
            _ => Err(Error::option(
                "outputMode",
                format!("Unknown output mode {s}. Accepted output modes are 'append', 'complete', 'update'"),
            )),
        }
    }
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputMode::Append => "Append",
            OutputMode::Update => "Update",
            OutputMode::Complete => "Complete",
        })
    }
}
