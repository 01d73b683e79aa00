//! [`MemoryStream`]: a stream fed by the program itself, one batch per `add`. For tests, the
//! book, and users' own tests of their pipelines. (Its source is `source/memory.rs`.)

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::connector::memory::source::{MemoryData, MemorySource};
use crate::dataframe::DataFrame;
use crate::error::Result;
use crate::plan::tables::StreamingTable;
use crate::session::Session;
use crate::source::SourceSpec;

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
        Ok(MemoryStream { session: session.clone(), data: Arc::new(MemoryData::new(schema.into_schema()?)) })
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        self.data.schema()
    }

    /// Adds record batches as the next micro-batch. Returns the new offset.
    pub fn add_batches(&self, batches: Vec<RecordBatch>) -> Result<u64> {
        self.data.add(batches)
    }

    /// Adds rows written as JSON objects (one or more, whitespace-separated) as the next
    /// micro-batch.
    pub fn add_json(&self, json: &str) -> Result<u64> {
        let mut decoder = arrow::json::ReaderBuilder::new(self.data.schema()).build_decoder()?;
        decoder.decode(json.as_bytes())?;
        let batch = decoder.flush()?.into_iter().collect();
        self.add_batches(batch)
    }

    /// A streaming DataFrame over this stream.
    pub fn to_df(&self) -> Result<DataFrame> {
        let data = self.data.clone();
        let spec = SourceSpec {
            schema: self.data.schema(),
            name: "MemoryStream".into(),
            create: Arc::new(move |_| Ok(Box::new(MemorySource::new(data.clone())))),
        };
        DataFrame::from_table(&self.session, "memory_stream", Arc::new(StreamingTable::new(spec)))
    }
}
