//! Avro values one per row of a binary column, decoded and encoded column-wise with arrow-avro:
//! bare (the bytes of one value, as Spark's `from_avro`/`to_avro` read and write them) or in
//! the Confluent wire format (a magic byte 0, the writer schema's 4-byte big-endian registry
//! id, then the value).
//!
//! A batch of messages goes through one decoder, each value into the same column builders.
//! A value that does not decode leaves those builders part-way through a row, so the rows
//! decoded before it are decoded again by a fresh decoder, and decoding goes on after it: a
//! batch with `b` bad values costs at most `b` extra decoder builds and one extra pass.
//! Bytes after a complete value are ignored, as Spark's decoder ignores them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, UInt32Array};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::compute::{concat, take};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{
    AvroSchema, Fingerprint, FingerprintAlgorithm, FingerprintStrategy, SCHEMA_METADATA_KEY, SchemaStore,
};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::{AvroBinaryFormat, AvroSoeFormat};
use serde_json::Value;

use super::avro_schema::{spark_logical_types, wrapped};
use super::avro_types::{names_of, spark_type, to_avro_shape, to_spark};
use crate::error::{Error, Result};

/// The Confluent wire format's magic byte.
pub(crate) const CONFLUENT_MAGIC: u8 = 0;

/// The id bare values are decoded under (the decoder wants a framed id before each value).
const BARE_ID: u32 = u32::MAX;

/// How the values of a column are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The value's bytes alone.
    Bare,
    /// Magic byte 0, the schema id (4 bytes, big-endian), the value.
    Confluent,
}

/// A value that did not decode: its row and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadValue {
    /// The row in the column.
    pub row: usize,
    /// What went wrong, with the value's length.
    pub message: String,
}

/// Decodes columns of Avro values written with known schemas, optionally read as another
/// (the reader schema of Avro's schema resolution: fields added with defaults, removed,
/// widened).
#[derive(Debug, Clone)]
pub(crate) struct AvroDecoding {
    framing: Framing,
    /// The writer schemas by id, each wrapped ([`wrapped`]).
    writers: BTreeMap<u32, String>,
    reader: Option<String>,
    data_type: DataType,
}

impl AvroDecoding {
    /// Bare values written with `writer`, read as `reader` when given.
    pub(crate) fn bare(writer: &Value, reader: Option<&Value>) -> Result<Self> {
        Self::try_new(Framing::Bare, [(BARE_ID, writer)].into_iter(), reader)
    }

    /// Confluent-framed values written with the `writers` (by registry id), read as `reader`
    /// (required when several writers could give different types; with no writers yet, it
    /// gives the type).
    pub(crate) fn confluent<'a>(
        writers: impl Iterator<Item = (u32, &'a Value)>,
        reader: Option<&Value>,
    ) -> Result<Self> {
        Self::try_new(Framing::Confluent, writers, reader)
    }

    fn try_new<'a>(
        framing: Framing,
        writers: impl Iterator<Item = (u32, &'a Value)>,
        reader: Option<&Value>,
    ) -> Result<Self> {
        let writers: BTreeMap<u32, String> = writers.map(|(id, s)| (id, wrapped(&spark_logical_types(s)))).collect();
        let reader = reader.map(|r| wrapped(&spark_logical_types(r)));
        // The values' type is the reader schema's, else the (one) writer schema's.
        let Some(shape) = reader.clone().or_else(|| writers.values().next().cloned()) else {
            return Err(Error::Analysis("cannot read Avro values without a schema".into()));
        };
        let probe =
            AvroDecoding { framing, writers: [(BARE_ID, shape)].into(), reader: None, data_type: DataType::Null };
        let data_type = spark_type(probe.decoder(1)?.schema().field(0).data_type());
        let decoding = AvroDecoding { framing, writers, reader, data_type };
        if !decoding.writers.is_empty() {
            decoding.decoder(1)?; // each writer schema resolves against the reader's
        }
        Ok(decoding)
    }

    /// The Spark type of the decoded values.
    pub(crate) fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// The ids of the writer schemas this decoding knows.
    pub(crate) fn knows(&self, id: u32) -> bool {
        self.writers.contains_key(&id)
    }

    fn decoder(&self, capacity: usize) -> Result<Decoder> {
        let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
        for (id, schema) in &self.writers {
            store.set(Fingerprint::Id(*id), AvroSchema::new(schema.clone()))?;
        }
        let mut builder = ReaderBuilder::new().with_batch_size(capacity.max(1)).with_writer_schema_store(store);
        // A reader schema every writer already is needs no resolution, which costs per value.
        let resolves = self.writers.values().any(|w| Some(w) != self.reader.as_ref());
        if let Some(reader) = self.reader.as_ref().filter(|_| resolves) {
            builder = builder.with_reader_schema(AvroSchema::new(reader.clone()));
        }
        builder.build_decoder().map_err(|e| Error::Analysis(format!("cannot read Avro with this schema: {e}")))
    }

    /// Decodes every non-null value of `messages`: the values as a column of
    /// [`data_type`](Self::data_type) (null where the message is null or bad) and the bad
    /// ones; with `stop_at_bad`, returns at the first bad value.
    pub(crate) fn decode(&self, messages: &BinaryArray, stop_at_bad: bool) -> Result<(ArrayRef, Vec<BadValue>)> {
        if self.writers.is_empty() {
            // No schema any value names is known: every value is bad.
            let nulls = arrow::array::new_null_array(&self.data_type, messages.len());
            let bad = (0..messages.len())
                .filter(|row| messages.is_valid(*row))
                .map(|row| BadValue { row, message: unknown_schema(messages.value(row)) })
                .take(if stop_at_bad { 1 } else { usize::MAX })
                .collect();
            return Ok((nulls, bad));
        }
        let mut run = Run {
            decoding: self,
            messages,
            decoder: self.decoder(messages.len())?,
            pending: Vec::new(),
            done: Vec::new(),
            bad: Vec::new(),
        };
        for row in 0..messages.len() {
            if messages.is_null(row) {
                continue;
            }
            if let Err(message) = run.decode(row)? {
                run.bad.push(BadValue { row, message });
                if stop_at_bad {
                    return Ok((arrow::array::new_null_array(&self.data_type, messages.len()), run.bad));
                }
            }
        }
        run.flush_segment()?;
        let values = run.assemble()?;
        Ok((values, run.bad))
    }
}

/// The schema id of a Confluent-framed value, or why it has none.
pub(crate) fn confluent_id(bytes: &[u8]) -> std::result::Result<u32, String> {
    if bytes.len() < 5 {
        return Err(format!(
            "{} bytes are too short for the Confluent wire format (a magic byte 0 and a 4-byte schema id first)",
            bytes.len()
        ));
    }
    if bytes[0] != CONFLUENT_MAGIC {
        return Err(format!("the first byte is {:#04x}, not the Confluent wire format's magic byte 0x00", bytes[0]));
    }
    Ok(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
}

/// Why a framed value has no known schema.
fn unknown_schema(bytes: &[u8]) -> String {
    match confluent_id(bytes) {
        Ok(id) => format!("schema id {id} is not in the registry"),
        Err(why) => why,
    }
}

/// The prefix and body of message `row`, or why it is not framed as it should be.
fn split<'m>(
    decoding: &AvroDecoding,
    messages: &'m BinaryArray,
    row: usize,
) -> std::result::Result<([u8; 5], &'m [u8]), String> {
    let bytes = messages.value(row);
    match decoding.framing {
        Framing::Bare => {
            let mut prefix = [CONFLUENT_MAGIC; 5];
            prefix[1..].copy_from_slice(&BARE_ID.to_be_bytes());
            Ok((prefix, bytes))
        }
        Framing::Confluent => match confluent_id(bytes) {
            Ok(id) if decoding.knows(id) => Ok((bytes[..5].try_into().expect("five bytes"), &bytes[5..])),
            _ => Err(unknown_schema(bytes)),
        },
    }
}

/// One column being decoded: rows decoded into the current decoder (`pending`), flushed
/// segments (`done`) and the bad rows.
struct Run<'a> {
    decoding: &'a AvroDecoding,
    messages: &'a BinaryArray,
    decoder: Decoder,
    pending: Vec<usize>,
    done: Vec<(Vec<usize>, ArrayRef)>,
    bad: Vec<BadValue>,
}

impl Run<'_> {
    /// Decodes message `row` into the current decoder; `Ok(Err(why))` if it is bad.
    fn decode(&mut self, row: usize) -> Result<std::result::Result<(), String>> {
        let (prefix, body) = match split(self.decoding, self.messages, row) {
            Ok(parts) => parts,
            Err(why) => return Ok(Err(why)),
        };
        if self.decode_one(&prefix, body)? {
            self.pending.push(row);
            return Ok(Ok(()));
        }
        // The decoder may hold part of this row: start again from the good rows, then try the
        // row alone, as a value followed by bytes it does not need (which Spark reads).
        self.redecode_pending()?;
        self.flush_segment()?;
        let before = self.decoder.capacity();
        let outcome = match self.decoder.decode(&prefix) {
            Ok(_) => self.decoder.decode(body),
            Err(e) => Err(e),
        };
        let decoded = self.decoder.capacity() + 1 == before;
        if decoded {
            self.pending.push(row);
            self.flush_segment()?;
        }
        // The bytes after the value may have left the decoder waiting for another one.
        self.decoder = self.decoding.decoder(self.messages.len())?;
        if decoded {
            return Ok(Ok(()));
        }
        let why = match outcome {
            Err(e) => e.to_string(),
            Ok(_) => "the bytes end before the value does".to_string(),
        };
        Ok(Err(format!("{} bytes do not decode: {why}", self.messages.value(row).len())))
    }

    /// Decodes one framed value; whether exactly its bytes made exactly one row.
    fn decode_one(&mut self, prefix: &[u8], body: &[u8]) -> Result<bool> {
        let framed = self.decoder.decode(prefix);
        if framed.is_ok() && self.decoder.batch_is_full() {
            // A new writer schema: the rows so far are flushed before it applies.
            self.flush_segment()?;
        }
        let before = self.decoder.capacity();
        let outcome = framed.and_then(|_| self.decoder.decode(body));
        Ok(matches!(outcome, Ok(n) if n == body.len()) && self.decoder.capacity() + 1 == before)
    }

    /// Replaces the decoder with a fresh one holding only the pending (good) rows.
    fn redecode_pending(&mut self) -> Result<()> {
        self.decoder = self.decoding.decoder(self.messages.len())?;
        for row in std::mem::take(&mut self.pending) {
            let (prefix, body) = split(self.decoding, self.messages, row).expect("it was split before");
            self.decode_one(&prefix, body)?;
            self.pending.push(row);
        }
        Ok(())
    }

    /// Moves the pending rows out of the decoder into a finished segment.
    fn flush_segment(&mut self) -> Result<()> {
        if let Some(batch) = self.decoder.flush().map_err(ArrowError::from)? {
            let rows = std::mem::take(&mut self.pending);
            self.done.push((rows, to_spark(batch.column(0))?));
        }
        Ok(())
    }

    /// The segments as one column in row order, null where nothing decoded.
    fn assemble(&self) -> Result<ArrayRef> {
        let len = self.messages.len();
        let decoded: usize = self.done.iter().map(|(rows, _)| rows.len()).sum();
        let all = match self.done.as_slice() {
            [] => return Ok(arrow::array::new_null_array(&self.decoding.data_type, len)),
            [(_, one)] => one.clone(),
            many => concat(&many.iter().map(|(_, a)| a.as_ref()).collect::<Vec<_>>())?,
        };
        if decoded == len {
            return Ok(all);
        }
        let mut at: Vec<Option<u32>> = vec![None; len];
        let mut next = 0u32;
        for (rows, _) in &self.done {
            for &row in rows {
                at[row] = Some(next);
                next += 1;
            }
        }
        Ok(take(all.as_ref(), &UInt32Array::from(at), None)?)
    }
}

/// Encodes a column as Avro values of `schema`, bare or framed with a registry id.
#[derive(Debug, Clone)]
pub(crate) struct AvroEncoding {
    schema: apache_avro::Schema,
    names: super::avro_types::Names,
    /// The wrapped schema text the encoder takes.
    wrapped: String,
    /// The registry id written before each value (the Confluent wire format), if any.
    id: Option<u32>,
}

impl AvroEncoding {
    /// Values of `schema`, bare.
    pub(crate) fn bare(schema: &Value) -> Result<Self> {
        Self::try_new(schema, None)
    }

    /// Values of `schema` in the Confluent wire format with the registry's `id` for it.
    pub(crate) fn confluent(schema: &Value, id: u32) -> Result<Self> {
        Self::try_new(schema, Some(id))
    }

    fn try_new(schema: &Value, id: Option<u32>) -> Result<Self> {
        let plain = spark_logical_types(schema);
        let parsed =
            apache_avro::Schema::parse(&plain).map_err(|e| Error::Analysis(format!("invalid Avro schema: {e}")))?;
        let names = names_of(&parsed)?;
        Ok(AvroEncoding { schema: parsed, names, wrapped: wrapped(&plain), id })
    }

    /// Checks that columns of `data_type` can be written with this schema.
    pub(crate) fn check(&self, data_type: &DataType) -> Result<()> {
        self.encode(&arrow::array::new_empty_array(data_type)).map(|_| ())
    }

    /// Each row of `values` as one Avro value, null where the row is null (as Spark, which
    /// never writes a null at the top).
    pub(crate) fn encode(&self, values: &ArrayRef) -> Result<BinaryArray> {
        let nulls = values.logical_nulls().filter(|n| n.null_count() > 0);
        let present = match &nulls {
            None => values.clone(),
            Some(nulls) => {
                let rows: UInt32Array = nulls.valid_indices().map(|r| r as u32).collect();
                take(values.as_ref(), &rows, None)?
            }
        };
        let rows = self.encode_rows(&present)?;
        let mut offsets = Vec::with_capacity(values.len() + 1);
        offsets.push(0i32);
        let mut next = rows.offsets().iter().skip(1);
        for row in 0..values.len() {
            let end = match &nulls {
                Some(n) if n.is_null(row) => *offsets.last().expect("one offset"),
                _ => *next.next().expect("one encoded value per present row") as i32,
            };
            offsets.push(end);
        }
        let data = Buffer::from(rows.bytes().to_vec());
        Ok(BinaryArray::try_new(OffsetBuffer::new(offsets.into()), data, nulls)?)
    }

    fn encode_rows(&self, values: &ArrayRef) -> Result<arrow_avro::writer::EncodedRows> {
        let shaped = to_avro_shape(values, &self.schema, &self.names)?;
        let field = Field::new("value", shaped.data_type().clone(), true);
        let metadata = [(SCHEMA_METADATA_KEY.to_string(), self.wrapped.clone())].into();
        let schema = Arc::new(Schema::new_with_metadata(vec![field], metadata));
        let batch = RecordBatch::try_new(schema.clone(), vec![shaped])?;
        let builder = WriterBuilder::new(schema.as_ref().clone());
        let failed = |e: arrow_avro::errors::AvroError| Error::Analysis(format!("cannot write Avro: {e}"));
        let mut encoder = match self.id {
            None => builder.build_encoder::<AvroBinaryFormat>(),
            Some(id) => builder.with_fingerprint_strategy(FingerprintStrategy::Id(id)).build_encoder::<AvroSoeFormat>(),
        }
        .map_err(failed)?;
        encoder.encode(&batch).map_err(failed)?;
        Ok(encoder.flush())
    }
}

/// The bytes of a binary or string column.
pub(crate) fn binary_of(array: &ArrayRef) -> Result<BinaryArray> {
    Ok(arrow::compute::cast(array, &DataType::Binary)?.as_binary::<i32>().clone())
}
