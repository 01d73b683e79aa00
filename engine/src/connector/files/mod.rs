//! The file connector (`json`, `csv`, `text`, `parquet`, `avro`): a stream of the files arriving in a
//! directory ([`source`]), and the file sink that writes each batch as new files made visible
//! by a manifest ([`sink`]). Reading and writing the formats themselves is `format/`'s.

pub(crate) mod partitions;
pub mod sink;
pub(crate) mod source;
pub(crate) mod table;

use std::path::PathBuf;

use super::{SinkArgs, SinkConnector};
use crate::error::{Error, Result};
use crate::output_mode::OutputMode;
use crate::sink::Sink;

pub(crate) static SINK: SinkConnector = SinkConnector {
    names: &["parquet", "json", "csv", "avro"],
    options: &["path", "compression", "recordName", "recordNamespace", "avroSchema"],
    modes: &[OutputMode::Append],
    temporary_checkpoint: false,
    create,
    batch: None,
};

fn create(a: SinkArgs) -> Result<Box<dyn Sink>> {
    let format = sink::WriteFormat::from_name(a.format)
        .ok_or_else(|| Error::Internal(format!("the file sink was chosen for '{}'", a.format)))?
        .with_options(a.options)?;
    let path = a
        .options
        .get("path")
        .ok_or_else(|| Error::option("path", format!("the {} sink needs option(\"path\", <directory>)", a.format)))?;
    Ok(Box::new(sink::FileSink::try_new(PathBuf::from(path), format, a.partition_by.to_vec(), &a.schema)?))
}
