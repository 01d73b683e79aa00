//! One error type for the whole engine: every failure names what went wrong and where.

use std::path::PathBuf;

/// The result type used throughout Brooklet.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Brooklet.
///
/// Messages are lowercase and specific: they name the option, file, line, operator or batch
/// involved, so that a reader of a failed query knows where to look without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query is not valid for streaming (Spark's `AnalysisException`), e.g. an output mode
    /// the query shape does not allow. Raised at `start()`, before any batch runs.
    #[error("{0}")]
    Analysis(String),

    /// An option is missing, unknown or has a value that does not parse.
    #[error("option '{option}': {message}")]
    Option {
        /// The option's name, as the user wrote it.
        option: String,
        /// What is wrong with it.
        message: String,
    },

    /// A schema string (`"id STRING, ts TIMESTAMP"`) that does not parse.
    #[error("schema '{schema}': {message}")]
    Schema {
        /// The schema text as given.
        schema: String,
        /// What is wrong with it.
        message: String,
    },

    /// Input data that does not fit the schema under `mode=FAILFAST`, or a file that cannot be
    /// decoded at all.
    #[error("malformed record in {file}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Malformed {
        /// The file being read.
        file: PathBuf,
        /// The 1-based line, where known.
        line: Option<usize>,
        /// What is wrong with the record.
        message: String,
    },

    /// A checkpoint file that is missing, corrupt or written by an incompatible version.
    /// Brooklet never silently resets a checkpoint.
    #[error("checkpoint file {path}: {message}")]
    Checkpoint {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A schema registry refused a request or could not be reached. Never shows credentials.
    #[error("schema registry {url}: {message}")]
    Registry {
        /// The registry's URL.
        url: String,
        /// The request and what went wrong.
        message: String,
    },

    /// The socket source could not connect, lost its connection, or was asked for lines it
    /// no longer has.
    #[error("socket source {address}: {message}")]
    Socket {
        /// `host:port`.
        address: String,
        /// What went wrong.
        message: String,
    },

    /// A Delta Lake table could not be read, written or committed to (feature `delta`).
    #[error("delta table {table}: {message}")]
    Delta {
        /// The table's path.
        table: String,
        /// What was being done and what went wrong.
        message: String,
    },

    /// A streaming query failed while running a batch.
    #[error("query '{query}' failed in batch {batch_id}: {source}")]
    Query {
        /// The query's name, or its id when unnamed.
        query: String,
        /// The batch that failed.
        batch_id: u64,
        /// The underlying failure.
        #[source]
        source: Box<Error>,
    },

    /// A query that ended with an error, as `await_termination` and `exception` report it
    /// (Spark's `StreamingQueryException`).
    #[error("{0}")]
    Terminated(std::sync::Arc<Error>),

    /// An I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A Kafka client or broker error, saying what was being done and with which brokers.
    /// Secret option values never appear in it.
    #[error("kafka: {0}")]
    Kafka(String),

    /// An error from DataFusion: planning, expressions, SQL or execution.
    #[error(transparent)]
    DataFusion(datafusion::error::DataFusionError),

    /// An error from Arrow.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    /// An invariant of the engine did not hold. This is a bug in Brooklet: please report it.
    #[error("internal error (this is a bug in Brooklet): {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An [`Error::Option`] for `option`.
    pub fn option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Option { option: option.into(), message: message.into() }
    }

    /// An [`Error::Checkpoint`] for the file at `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), message: message.into() }
    }
}

/// A DataFusion error; one that carries a Brooklet error (a file read inside a scan, say) is
/// that error again, so its message names the file and line, not "External error".
impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        match e {
            datafusion::error::DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(own) => *own,
                Err(other) => Error::DataFusion(datafusion::error::DataFusionError::External(other)),
            },
            other => Error::DataFusion(other),
        }
    }
}

impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(e) => e,
            other => datafusion::error::DataFusionError::External(Box::new(other)),
        }
    }
}

/// Spark's message for a batch-only action on a streaming DataFrame.
pub(crate) fn streaming_action_error(action: &str) -> Error {
    Error::Analysis(format!(
        "Queries with streaming sources must be executed with writeStream.start(); `{action}` is a batch action"
    ))
}
