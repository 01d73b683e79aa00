//! The source behind `MemoryStream` (the API type, in `memory_stream.rs`): rows the program
//! adds, one micro-batch (and one input partition) per add, shared by every query that reads the stream.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::source::{InputPartitions, Offset, ReadLimit, Source, Waker};

/// Rows added to a `MemoryStream`, shared by every query that reads it.
pub(crate) struct MemoryData {
    schema: SchemaRef,
    /// One entry per `add`; entry k is the data of offset k + 1.
    adds: Mutex<Vec<Vec<RecordBatch>>>,
    /// The queries reading this stream, woken on every add.
    wakers: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for MemoryData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryData").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl MemoryData {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        MemoryData { schema, adds: Mutex::default(), wakers: Mutex::default() }
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Adds `batches` as the next offset, which it returns, and wakes the queries reading.
    pub(crate) fn add(&self, batches: Vec<RecordBatch>) -> Result<u64> {
        for b in &batches {
            if b.schema().fields() != self.schema.fields() {
                return Err(Error::Analysis(format!(
                    "MemoryStream: added rows have schema {} but the stream's schema is {}",
                    b.schema(),
                    self.schema
                )));
            }
        }
        let offset = {
            let mut adds = self.adds.lock().expect("memory stream lock poisoned");
            adds.push(batches);
            adds.len() as u64
        };
        self.wakers.lock().expect("memory stream lock poisoned").retain(|wake| wake());
        Ok(offset)
    }
}

pub(crate) struct MemorySource {
    data: Arc<MemoryData>,
}

impl MemorySource {
    pub(crate) fn new(data: Arc<MemoryData>) -> Self {
        MemorySource { data }
    }
}

fn position(offset: Option<&Offset>) -> usize {
    offset.and_then(|o| o.get("memory")).and_then(|v| v.as_u64()).unwrap_or(0) as usize
}

impl Source for MemorySource {
    fn latest_offset(&mut self, start: Option<&Offset>, limit: ReadLimit) -> Result<Option<Offset>> {
        let added = self.data.adds.lock().expect("memory stream lock poisoned").len();
        // One add per batch, so that each add is one micro-batch whatever the timing.
        let end = if limit == ReadLimit::All { added } else { added.min(position(start) + 1) };
        Ok((end > 0).then(|| serde_json::json!({ "memory": end })))
    }

    /// Each add is one input partition, as in Spark's `MemoryStream`.
    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions> {
        let adds = self.data.adds.lock().expect("memory stream lock poisoned");
        let (from, to) = (position(start), position(Some(end)));
        let slice =
            adds.get(from..to).ok_or_else(|| Error::Internal(format!("memory stream has no offsets {from}..{to}")))?;
        Ok(slice.to_vec())
    }

    fn set_waker(&mut self, waker: Waker) {
        self.data.wakers.lock().expect("memory stream lock poisoned").push(waker);
    }

    fn description(&self) -> String {
        "MemoryStream".into()
    }
}
