//! The memory connector: the source behind `MemoryStream` ([`source`]: rows the program adds,
//! one batch per add) and the memory sink ([`sink`]: results as a table for `session.sql`).

pub(crate) mod sink;
pub(crate) mod source;

use super::SinkConnector;
use crate::error::Error;
use crate::output_mode::OutputMode;

pub(crate) static SINK: SinkConnector = SinkConnector {
    names: &["memory"],
    options: &[],
    modes: &[OutputMode::Append, OutputMode::Complete],
    temporary_checkpoint: true,
    create: |a| {
        let name = a.query_name.ok_or_else(|| Error::Analysis("queryName must be specified for memory sink".into()))?;
        Ok(Box::new(sink::MemorySink::try_new(a.ctx, name, a.mode, a.schema)?))
    },
    batch: None,
};
