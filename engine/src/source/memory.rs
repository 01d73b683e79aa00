//! [`MemoryStream`]: a stream fed by the program itself, one batch per `add`. For tests, the
//! book, and users' own tests of their pipelines.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Offset, ReadLimit, Source, SourceKind, SourceSpec, Waker};
use crate::dataframe::DataFrame;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::plan::tables::StreamingTable;
use crate::session::Session;

/// Rows added to a [`MemoryStream`], shared by every query that reads it.
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

/// A stream whose rows the program adds. Each `add_*` call becomes exactly one micro-batch.
///
/// ```
/// use brooklet::prelude::*;
///
/// let session = Session::new();
/// let words = MemoryStream::new(&session, "word STRING").unwrap();
/// let query = words.to_df().unwrap().group_by(["word"]).unwrap().count().unwrap()
///     .write_stream().format("memory").query_name("word_counts").output_mode("complete")
///     .start().unwrap();
/// words.add_json(r#"{"word": "stream"} {"word": "table"} {"word": "stream"}"#).unwrap();
/// query.process_all_available().unwrap();
/// let counts = session.sql("SELECT word, count FROM word_counts ORDER BY word").unwrap();
/// assert_eq!(counts.to_string_table(20).unwrap(), "\
/// +------+-----+
/// |  word|count|
/// +------+-----+
/// |stream|    2|
/// | table|    1|
/// +------+-----+
/// ");
/// query.stop().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStream {
    session: Session,
    data: Arc<MemoryData>,
}

impl MemoryStream {
    /// A stream of rows with `schema`: an Arrow schema or a DDL string like `"id STRING, n LONG"`.
    pub fn new(session: &Session, schema: impl crate::reader::IntoSchema) -> Result<Self> {
        let schema = schema.into_schema()?;
        Ok(MemoryStream {
            session: session.clone(),
            data: Arc::new(MemoryData { schema, adds: Mutex::default(), wakers: Mutex::default() }),
        })
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        self.data.schema.clone()
    }

    /// Adds record batches as the next micro-batch. Returns the new offset.
    pub fn add_batches(&self, batches: Vec<RecordBatch>) -> Result<u64> {
        for b in &batches {
            if b.schema().fields() != self.data.schema.fields() {
                return Err(Error::Analysis(format!(
                    "MemoryStream: added rows have schema {} but the stream's schema is {}",
                    b.schema(),
                    self.data.schema
                )));
            }
        }
        let offset = {
            let mut adds = self.data.adds.lock().expect("memory stream lock poisoned");
            adds.push(batches);
            adds.len() as u64
        };
        self.data.wakers.lock().expect("memory stream lock poisoned").retain(|wake| wake());
        Ok(offset)
    }

    /// Adds rows written as JSON objects (one or more, whitespace-separated) as the next
    /// micro-batch.
    pub fn add_json(&self, json: &str) -> Result<u64> {
        let mut decoder = arrow::json::ReaderBuilder::new(self.data.schema.clone()).build_decoder()?;
        decoder.decode(json.as_bytes())?;
        let batch = decoder.flush()?.into_iter().collect();
        self.add_batches(batch)
    }

    /// A streaming DataFrame over this stream.
    pub fn to_df(&self) -> Result<DataFrame> {
        let spec = SourceSpec {
            kind: SourceKind::Memory(self.data.clone()),
            schema: self.data.schema.clone(),
            options: Options::default(),
        };
        DataFrame::from_table(&self.session, "memory_stream", Arc::new(StreamingTable::new(spec)))
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

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let adds = self.data.adds.lock().expect("memory stream lock poisoned");
        let (from, to) = (position(start), position(Some(end)));
        let slice =
            adds.get(from..to).ok_or_else(|| Error::Internal(format!("memory stream has no offsets {from}..{to}")))?;
        Ok(slice.iter().flatten().cloned().collect())
    }

    fn set_waker(&mut self, waker: Waker) {
        self.data.wakers.lock().expect("memory stream lock poisoned").push(waker);
    }

    fn description(&self) -> String {
        "MemoryStream".into()
    }
}
