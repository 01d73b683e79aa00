//! The text format: one row per line in a `value` column; a blank line is the row `""`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// Bytes that are not UTF-8 become U+FFFD and the line is kept, as Spark's text source shows
/// them.
pub(super) fn read(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: StringArray = if text.is_empty() {
        StringArray::from(Vec::<&str>::new())
    } else {
        body.split('\n').map(|l| Some(l.strip_suffix('\r').unwrap_or(l))).collect()
    };
    Ok(vec![RecordBatch::try_new(schema.clone(), vec![Arc::new(lines)])?])
}
