//! The text format: one row per line in a `value` column; a blank line is the row `""`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

pub(super) fn read(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: StringArray = if text.is_empty() {
        StringArray::from(Vec::<&str>::new())
    } else {
        body.split('\n').map(|l| Some(l.strip_suffix('\r').unwrap_or(l))).collect()
    };
    Ok(vec![RecordBatch::try_new(schema.clone(), vec![Arc::new(lines)])?])
}
