//! JSON lines, decoded by arrow-json. A file that decodes cleanly takes the fast path (one
//! decoder per core over line-aligned chunks); a file with a bad record is decoded line by
//! line so each record meets Spark's `mode` rules alone (semantics appendix, §9).
//!
//! Spark's JSON reader differs from arrow-json's in two places, handled here: a number or
//! boolean in a STRING column is kept as its text, and a number in a TIMESTAMP column is epoch
//! *seconds*. Timestamp columns are therefore decoded as text and converted afterwards.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array};
use arrow::compute::concat_batches;
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;

use super::datetime::TimestampFormat;
use super::json_scan::{QuotedNumbers, has_control_bytes, may_nest_too_deep, quote_non_numeric, refused};
use super::{ParseMode, open, parse_mode, split_corrupt_column, widen_inferred};
use crate::error::{Error, Result};
use crate::options::Options;

pub(super) const OPTIONS: &[&str] = &["mode", "columnNameOfCorruptRecord", "timestampFormat"];

const BATCH_ROWS: usize = 8192;

/// JSON reader options.
#[derive(Debug, Clone)]
pub struct JsonOptions {
    mode: ParseMode,
    corrupt_column: Option<String>,
    timestamp_format: Option<TimestampFormat>,
}

impl JsonOptions {
    pub(crate) fn try_new(options: &Options) -> Result<Self> {
        Ok(JsonOptions {
            mode: parse_mode(options)?,
            // Spark's default (spark.sql.columnNameOfCorruptRecord): a schema field of this
            // name receives malformed records without the option being set.
            corrupt_column: Some(options.get("columnNameOfCorruptRecord").unwrap_or("_corrupt_record").to_string()),
            timestamp_format: options.get("timestampFormat").map(TimestampFormat::try_new).transpose()?,
        })
    }
}

pub(super) fn read(path: &Path, schema: &SchemaRef, o: &JsonOptions) -> Result<Vec<RecordBatch>> {
    let (data_schema, corrupt_idx) = split_corrupt_column(schema, o.corrupt_column.as_deref())?;
    let ts = o.timestamp_format.as_ref();
    let (batches, corrupt) = match decode_file(path, &data_schema, ts) {
        Ok(batches) => {
            let n = batches.iter().map(RecordBatch::num_rows).sum();
            (batches, CorruptColumn::AllNull(n))
        }
        Err(_) => {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let (batch, corrupt) = decode_lines(path, &bytes, &data_schema, ts, o.mode)?;
            (vec![batch], CorruptColumn::Values(corrupt))
        }
    };
    let Some(idx) = corrupt_idx else { return Ok(batches) };
    // Put the corrupt-record column back where the user's schema has it.
    let batch = concat_batches(&data_schema, &batches)?;
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let corrupt: ArrayRef = match corrupt {
        CorruptColumn::AllNull(n) => new_null_array(&arrow::datatypes::DataType::Utf8, n),
        CorruptColumn::Values(v) => Arc::new(StringArray::from(v)),
    };
    columns.insert(idx, corrupt);
    Ok(vec![RecordBatch::try_new(schema.clone(), columns)?])
}

/// Spark's `from_json`: one JSON document per value. Returns the rows of `schema` and, per
/// value, whether it gave a row at all (a null or blank value gives a null struct, as in
/// Spark). `what` names the caller for FAILFAST errors.
///
/// All values go through one decoder when each is exactly one well-typed object; otherwise
/// each is decoded alone with the `mode` rules (PERMISSIVE keeps the fields that fit).
pub(crate) fn decode_documents(
    values: &[Option<&[u8]>],
    schema: &SchemaRef,
    o: &JsonOptions,
    what: &str,
) -> Result<(RecordBatch, Vec<bool>)> {
    let (data_schema, corrupt_idx) = split_corrupt_column(schema, o.corrupt_column.as_deref())?;
    let ts = o.timestamp_format.as_ref();
    let present: Vec<bool> = values.iter().map(|v| v.is_some_and(|v| !v.iter().all(u8::is_ascii_whitespace))).collect();
    let strings_in_numbers = QuotedNumbers::new(&data_schema);
    let fast = || -> Result<Option<RecordBatch>> {
        let mut decoder = decoder_with_batch(&data_schema, ts, values.len().max(1))?;
        for (value, _) in values.iter().zip(&present).filter(|(_, p)| **p) {
            let value = value.unwrap_or_default();
            if refused(value).is_some() || strings_in_numbers.in_text(value) {
                return Ok(None);
            }
            let before = decoder.inner.len();
            decoder.decode(value)?;
            if decoder.inner.has_partial_record() || decoder.inner.len() != before + 1 {
                return Ok(None);
            }
        }
        decoder.flush()
    };
    let mut corrupt: Vec<Option<String>> = vec![None; values.len()];
    let batch = match fast() {
        Ok(Some(batch)) if batch.num_rows() == values.len() => batch,
        Ok(Some(batch)) => {
            // Spread the decoded rows over the values, with null rows for absent ones.
            let mut next = 0u32;
            let indices: arrow::array::UInt32Array = present
                .iter()
                .map(|p| {
                    p.then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect();
            arrow::compute::take_record_batch(&batch, &indices)?
        }
        Ok(None) if !present.contains(&true) => RecordBatch::try_new(
            data_schema.clone(),
            data_schema.fields().iter().map(|f| new_null_array(f.data_type(), values.len())).collect(),
        )?,
        Ok(None) | Err(_) => {
            let mut rows = Vec::with_capacity(values.len());
            for (i, (value, p)) in values.iter().zip(&present).enumerate() {
                let Some(value) = value.filter(|_| *p) else {
                    let nulls = data_schema.fields().iter().map(|f| new_null_array(f.data_type(), 1)).collect();
                    rows.push(RecordBatch::try_new(data_schema.clone(), nulls)?);
                    continue;
                };
                let raw = value;
                let quoted = quote_non_numeric(raw);
                let value = quoted.as_deref().unwrap_or(raw);
                let mut d = decoder(&data_schema, ts)?;
                let one = if let Some(reason) = refused(value) {
                    Err(malformed(reason))
                } else if strings_in_numbers.in_text(raw) {
                    Err(malformed("a numeric field holds a string".into()))
                } else {
                    d.decode(value)
                }
                .and_then(|_| {
                    if d.inner.has_partial_record() || d.inner.len() != 1 {
                        return Err(Error::Internal("not exactly one JSON object".into()));
                    }
                    d.flush()?.ok_or_else(|| Error::Internal("a JSON value decoded to no row".into()))
                });
                match (one, o.mode) {
                    (Ok(row), _) => rows.push(row),
                    (Err(e), ParseMode::FailFast) => {
                        let text = String::from_utf8_lossy(raw);
                        let shown: String = text.chars().take(200).collect();
                        return Err(Error::Analysis(format!(
                            "{what}: malformed record (mode FAILFAST) in row {i}: {e}: {shown}"
                        )));
                    }
                    (Err(_), _) => {
                        rows.push(partial_row(value, quoted.is_some(), &data_schema, ts)?);
                        corrupt[i] = Some(String::from_utf8_lossy(raw).into_owned());
                    }
                }
            }
            concat_batches(&data_schema, &rows)?
        }
    };
    let Some(idx) = corrupt_idx else { return Ok((batch, present)) };
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.insert(idx, Arc::new(StringArray::from(corrupt)));
    Ok((RecordBatch::try_new(schema.clone(), columns)?, present))
}

enum CorruptColumn {
    AllNull(usize),
    Values(Vec<Option<String>>),
}

/// arrow-json's decoder, with timestamp columns read as text and converted on flush.
struct JsonDecoder {
    inner: Decoder,
    target: SchemaRef,
    timestamps: Option<TimestampFormat>,
}

impl JsonDecoder {
    fn decode(&mut self, buf: &[u8]) -> Result<usize> {
        Ok(self.inner.decode(buf)?)
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.inner.flush()?.map(|raw| to_target(&raw, &self.target, self.timestamps.as_ref())).transpose()
    }
}

fn decoder(schema: &SchemaRef, timestamps: Option<&TimestampFormat>) -> Result<JsonDecoder> {
    decoder_with_batch(schema, timestamps, BATCH_ROWS)
}

fn decoder_with_batch(schema: &SchemaRef, timestamps: Option<&TimestampFormat>, rows: usize) -> Result<JsonDecoder> {
    let raw_fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            // Decoded as text and converted on flush: timestamps by Spark's formats, integers
            // strictly (arrow-json would truncate 8.7 and overflow into floats).
            DataType::Timestamp(_, _) => Field::new(f.name(), DataType::Utf8, true),
            t if t.is_integer() => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let inner = ReaderBuilder::new(Arc::new(Schema::new(raw_fields)))
        .with_batch_size(rows)
        .with_coerce_primitive(true)
        .build_decoder()?;
    Ok(JsonDecoder { inner, target: schema.clone(), timestamps: timestamps.cloned() })
}

/// Converts the text of timestamp columns: ISO-8601 with `T` or a space (offsets to UTC), or a
/// number of epoch seconds. A value that is neither fails the batch, like any wrong type.
fn to_target(raw: &RecordBatch, target: &SchemaRef, timestamps: Option<&TimestampFormat>) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(raw.num_columns());
    for (column, field) in raw.columns().iter().zip(target.fields()) {
        if column.data_type() == field.data_type() {
            columns.push(column.clone());
            continue;
        }
        if field.data_type().is_integer() {
            columns.push(strict_integers(column, field)?);
            continue;
        }
        let parsed = match (timestamps, column.as_any().downcast_ref::<StringArray>()) {
            (Some(format), Some(text)) => Arc::new(format.parse_array(text)) as ArrayRef,
            _ => cast_with_options(column, field.data_type(), &CastOptions::default())?,
        };
        if parsed.null_count() == column.null_count() {
            columns.push(parsed);
            continue;
        }
        let text = column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Internal("timestamp text is not Utf8".into()))?;
        let micros = parsed.as_any().downcast_ref::<TimestampMicrosecondArray>();
        let mut values = Vec::with_capacity(text.len());
        for i in 0..text.len() {
            values.push(if text.is_null(i) {
                None
            } else if let Some(v) = micros.filter(|m| m.is_valid(i)).map(|m| m.value(i)) {
                Some(v)
            } else {
                let seconds: f64 = text.value(i).trim().parse().map_err(|_| {
                    arrow::error::ArrowError::ParseError(format!(
                        "cannot parse '{}' as a timestamp for column '{}'",
                        text.value(i),
                        field.name()
                    ))
                })?;
                Some((seconds * 1e6).round() as i64)
            });
        }
        columns.push(cast_with_options(
            &TimestampMicrosecondArray::from(values),
            field.data_type(),
            &CastOptions::default(),
        )?);
    }
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

/// An integer column from the text of its JSON numbers, as Spark reads them: only an
/// integral number in the type's range is a value; `8.7`, `1e3` or one too large fail the
/// record (PERMISSIVE then makes that field null alone).
fn strict_integers(text: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("integer text is not Utf8".into()))?;
    let mut values = Vec::with_capacity(text.len());
    for v in text.iter() {
        values.push(match v {
            None => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|_| !v.starts_with('+')).ok_or_else(|| {
                arrow::error::ArrowError::ParseError(format!(
                    "cannot parse {v} as {} for column '{}'",
                    field.data_type(),
                    field.name()
                ))
            })?),
        });
    }
    let wide = arrow::array::Int64Array::from(values);
    // A value outside the narrower type's range fails here, as it fails in Spark.
    Ok(cast_with_options(&wide, field.data_type(), &CastOptions { safe: false, ..Default::default() })?)
}

/// The fast path's decoder over whole lines: each piece is first scanned for what arrow-json
/// would get wrong by Spark's rules (`json_scan.rs`), and the fast path gives up (for the
/// line-by-line path) on the first piece with such a line.
struct FastLines {
    decoder: JsonDecoder,
    quoted: QuotedNumbers,
    out: Vec<RecordBatch>,
}

impl FastLines {
    fn new(schema: &SchemaRef, ts: Option<&TimestampFormat>) -> Result<Self> {
        Ok(FastLines { decoder: decoder(schema, ts)?, quoted: QuotedNumbers::new(schema), out: Vec::new() })
    }

    /// Decodes `lines`, whole lines only.
    fn decode(&mut self, lines: &[u8]) -> Result<()> {
        if may_nest_too_deep(lines) || self.quoted.in_text(lines) || has_control_bytes(lines) {
            return Err(line_by_line());
        }
        let mut at = 0;
        while at < lines.len() {
            at += self.decoder.decode(&lines[at..])?;
            if at < lines.len() {
                self.out.extend(self.decoder.flush()?); // the decoder's batch is full
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<RecordBatch>> {
        self.out.extend(self.decoder.flush()?);
        Ok(self.out)
    }
}

/// Decodes the JSON lines of `input` on this thread, a buffer of whole lines at a time.
fn decode_stream(
    mut input: impl Read,
    path: &Path,
    schema: &SchemaRef,
    ts: Option<&TimestampFormat>,
) -> Result<Vec<RecordBatch>> {
    let mut fast = FastLines::new(schema, ts)?;
    let mut buf = vec![0u8; READ_BUFFER];
    // `buf[..end]` holds read bytes not decoded yet, from the start of a line.
    let mut end = 0;
    loop {
        if end == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        let read = input.read(&mut buf[end..]).map_err(|e| Error::io(path, e))?;
        end += read;
        if read == 0 {
            fast.decode(&buf[..end])?;
            return fast.finish();
        }
        let Some(newline) = memchr::memrchr(b'\n', &buf[..end]) else { continue };
        fast.decode(&buf[..=newline])?;
        buf.copy_within(newline + 1..end, 0);
        end -= newline + 1;
    }
}

/// Decodes `lines` (whole lines) on this thread.
fn decode_slice(lines: &[u8], schema: &SchemaRef, ts: Option<&TimestampFormat>) -> Result<Vec<RecordBatch>> {
    let mut fast = FastLines::new(schema, ts)?;
    fast.decode(lines)?;
    fast.finish()
}

/// Below this size a file is decoded on one thread.
const PARALLEL_BYTES: u64 = 4 << 20;

/// How much of a file is read at a time when it is decoded on one thread: small enough to
/// stay in cache between the read and the decoder, large enough to make few reads.
const READ_BUFFER: usize = 1 << 20;

/// The fast path, which fails on the first bad record: the whole file through arrow-json.
/// A large file, when the cores are free, is decoded in line-aligned chunks, one per core,
/// keeping row order; otherwise the file streams through a buffer on this thread, so a
/// source decoding many files at once holds only a buffer per file, not the files.
fn decode_file(path: &Path, schema: &SchemaRef, ts: Option<&TimestampFormat>) -> Result<Vec<RecordBatch>> {
    let mut file = open(path)?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if size < PARALLEL_BYTES || crate::parallel::cores_busy() {
        return decode_stream(file, path, schema, ts);
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    let decoded = crate::parallel::map_ordered(&line_chunks(&bytes, crate::parallel::cores()), |chunk| {
        decode_slice(chunk, schema, ts)
    })?;
    Ok(decoded.into_iter().flatten().collect())
}

/// Splits `bytes` into about `n` pieces, each ending after a newline.
fn line_chunks(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..n {
        let target = (bytes.len() * i / n).max(start);
        let Some(newline) = bytes[target..].iter().position(|b| *b == b'\n') else { break };
        let end = target + newline + 1;
        chunks.push(&bytes[start..end]);
        start = end;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// Decodes line by line; returns the rows and, per row, the raw text of a malformed record.
fn decode_lines(
    path: &Path,
    bytes: &[u8],
    schema: &SchemaRef,
    ts: Option<&TimestampFormat>,
    mode: ParseMode,
) -> Result<(RecordBatch, Vec<Option<String>>)> {
    let mut rows = Vec::new();
    let mut corrupt = Vec::new();
    let mut line_decoder = decoder(schema, ts)?;
    let strings_in_numbers = QuotedNumbers::new(schema);
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // Spark skips blank lines
        }
        let raw = line;
        let quoted = quote_non_numeric(raw);
        let line = quoted.as_deref().unwrap_or(raw);
        let decoded = if let Some(reason) = refused(line) {
            Err(malformed(reason))
        } else if strings_in_numbers.in_text(raw) {
            Err(malformed("a numeric field holds a string".into()))
        } else {
            line_decoder.decode(line).and_then(|_| {
                line_decoder.flush()?.ok_or_else(|| Error::Internal("a JSON line decoded to no row".into()))
            })
        };
        match decoded {
            Ok(row) => {
                rows.push(row);
                corrupt.push(None);
            }
            Err(e) => {
                line_decoder = decoder(schema, ts)?; // a failed decoder may hold half a record
                match mode {
                    ParseMode::FailFast => {
                        return Err(Error::Malformed { file: path.into(), line: Some(i + 1), message: e.to_string() });
                    }
                    ParseMode::DropMalformed => {}
                    ParseMode::Permissive => {
                        rows.push(partial_row(line, quoted.is_some(), schema, ts)?);
                        corrupt.push(Some(String::from_utf8_lossy(raw).into_owned()));
                    }
                }
            }
        }
    }
    Ok((concat_batches(schema, &rows)?, corrupt))
}

/// Why the fast path gave up: some line needs Spark's rules one by one (`json_scan.rs`).
fn line_by_line() -> Error {
    Error::Internal("a line needs Spark's rules one by one".into())
}

/// A record Spark's parser refuses, or one whose numeric field holds a string: malformed.
fn malformed(reason: String) -> Error {
    Error::Arrow(arrow::error::ArrowError::JsonError(reason))
}

/// The JSON value Spark would read into `field`, or `None` for null: a string is no number,
/// except the spellings of NaN and the infinities in a floating-point field.
fn spark_value(field: &Field, v: &serde_json::Value, rewritten: bool) -> Option<serde_json::Value> {
    let serde_json::Value::String(text) = v else { return Some(v.clone()) };
    if !field.data_type().is_numeric() {
        return Some(v.clone());
    }
    if !field.data_type().is_floating() {
        return None;
    }
    let canonical = match text.as_str() {
        "NaN" | "+NaN" | "-NaN" => "NaN",
        "Infinity" | "+Infinity" | "Inf" | "+Inf" => "inf",
        "-Infinity" | "-Inf" => "-inf",
        "inf" | "-inf" if rewritten => text,
        _ => return None,
    };
    Some(serde_json::Value::String(canonical.into()))
}

/// PERMISSIVE: a record that is an object keeps every field that decodes alone; a field of
/// the wrong type is null. A line that is not a JSON object is a row of nulls.
/// `rewritten`: the line's bare `NaN` and infinities were turned into strings
/// ([`quote_non_numeric`]), which count as the numbers they were.
fn partial_row(line: &[u8], rewritten: bool, schema: &SchemaRef, ts: Option<&TimestampFormat>) -> Result<RecordBatch> {
    let object = match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let value = object.as_ref().and_then(|m| m.get(field.name())).and_then(|v| spark_value(field, v, rewritten));
        let decoded = value.as_ref().and_then(|v| {
            let one = Arc::new(Schema::new(vec![field.as_ref().clone()]));
            let text = serde_json::to_vec(&serde_json::json!({ field.name(): v })).ok()?;
            let mut d = decoder(&one, ts).ok()?;
            d.decode(&text).ok()?;
            d.flush().ok()?.map(|b| b.column(0).clone())
        });
        columns.push(decoded.unwrap_or_else(|| new_null_array(field.data_type(), 1)));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

pub(super) fn infer_schema(files: &[&Path]) -> Result<SchemaRef> {
    let mut schemas = Vec::new();
    for path in files {
        let (schema, _) = arrow::json::reader::infer_json_schema(BufReader::new(open(path)?), None)
            .map_err(|e| Error::Malformed { file: path.to_path_buf(), line: None, message: e.to_string() })?;
        schemas.push(schema);
    }
    let merged = Schema::try_merge(schemas)?;
    // Spark lists inferred JSON fields in name order.
    let mut fields: Vec<_> = merged.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(widen_inferred(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::parse_schema;

    fn read_str(text: &str, schema: &str, mode: &str) -> Result<Vec<RecordBatch>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("part-0.json");
        std::fs::write(&path, text).expect("write");
        let mut o = Options::default();
        o.set("mode", mode);
        o.set("columnNameOfCorruptRecord", "_corrupt_record");
        read(&path, &parse_schema(schema)?, &JsonOptions::try_new(&o)?)
    }

    fn pretty(batches: &[RecordBatch]) -> String {
        arrow::util::pretty::pretty_format_batches(batches).expect("format").to_string()
    }

    #[test]
    fn a_record_nested_too_deep_is_malformed_in_every_mode_and_no_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let text = format!("{{\"id\": \"a\", \"n\": 1}}\n{deep}\n{{\"id\": \"b\", \"n\": 2}}\n");
        let schema = "id STRING, n LONG";
        let permissive = pretty(&read_str(&text, schema, "PERMISSIVE").unwrap());
        assert_eq!(permissive.lines().filter(|l| l.starts_with("|")).count(), 4, "a null row between: {permissive}");
        assert!(permissive.contains("|    |   |"), "{permissive}");
        let dropped = pretty(&read_str(&text, schema, "DROPMALFORMED").unwrap());
        assert_eq!(dropped.lines().filter(|l| l.starts_with("| ")).count(), 3, "{dropped}");
        let err = read_str(&text, schema, "FAILFAST").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("more than 1000 deep"), "{err}");
    }

    /// Apache Spark 4.3 on the same file: a number in a string, a fraction or an overflow in an
    /// integer, a boolean for a number: that field is null alone in PERMISSIVE, and the record
    /// is malformed in DROPMALFORMED and FAILFAST.
    #[test]
    fn a_field_of_the_wrong_type_is_null_alone_as_in_spark() {
        let text = "{\"id\":\"a\",\"user_id\":\"6\",\"value\":\"3.5\"}\n\
                    {\"id\":\"b\",\"user_id\":8.7,\"value\":2}\n\
                    {\"id\":\"c\",\"user_id\":7,\"value\":1.5}\n\
                    {\"id\":\"d\",\"user_id\":true,\"value\":\"x\"}\n\
                    {\"id\":\"e\",\"user_id\":99999999999,\"value\":\"-Infinity\"}\n";
        let schema = "id STRING, user_id INT, value DOUBLE";
        let expected = "\
+----+---------+-------+
| id | user_id | value |
+----+---------+-------+
| a  |         |       |
| b  |         | 2.0   |
| c  | 7       | 1.5   |
| d  |         |       |
| e  |         | -inf  |
+----+---------+-------+";
        assert_eq!(pretty(&read_str(text, schema, "PERMISSIVE").unwrap()), expected);
        let dropped = pretty(&read_str(text, schema, "DROPMALFORMED").unwrap());
        assert_eq!(dropped.lines().filter(|l| l.starts_with("| ")).count(), 2, "only c: {dropped}");
        let err = read_str(text, schema, "FAILFAST").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        // The same rules inside a well-formed file that the fast path would take.
        let clean: String =
            (0..20_000).map(|i| format!("{{\"id\":\"r{i}\",\"user_id\":{i},\"value\":0.5}}\n")).collect();
        let out = read_str(&format!("{clean}{{\"id\":\"z\",\"user_id\":\"6\"}}\n"), schema, "PERMISSIVE").unwrap();
        let batch = concat_batches(&out[0].schema(), &out).unwrap();
        assert_eq!(batch.num_rows(), 20_001);
        assert!(batch.column(1).is_null(20_000) && batch.column(1).is_valid(19_999));
    }

    #[test]
    fn non_numeric_numbers_are_doubles_in_every_mode() {
        let text = "{\"id\": \"n\", \"v\": NaN}\n{\"id\": \"i\", \"v\": Infinity}\n{\"id\": \"m\", \"v\": -Infinity}\n{\"id\": \"p\", \"v\": +Infinity}\n";
        for mode in ["PERMISSIVE", "DROPMALFORMED", "FAILFAST"] {
            let out = read_str(text, "id STRING, v DOUBLE", mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
            let batch = concat_batches(&out[0].schema(), &out).unwrap();
            let v = batch.column(1).as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
            assert!(v.value(0).is_nan(), "{mode}");
            assert_eq!(&v.values()[1..], &[f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY], "{mode}");
        }
    }

    #[test]
    fn permissive_keeps_good_fields_and_the_raw_text() {
        let text = "{\"id\": \"a\", \"n\": 1}\n\nnot json\n{\"id\": \"c\", \"n\": \"x\"}\n";
        let out = read_str(text, "id STRING, n LONG, _corrupt_record STRING", "PERMISSIVE").unwrap();
        let expected = "\
+----+---+-----------------------+
| id | n | _corrupt_record       |
+----+---+-----------------------+
| a  | 1 |                       |
|    |   | not json              |
| c  |   | {\"id\": \"c\", \"n\": \"x\"} |
+----+---+-----------------------+";
        assert_eq!(pretty(&out), expected);
    }

    #[test]
    fn timestamps_as_text_or_epoch_seconds_and_numbers_in_strings_kept_as_text() {
        let text = concat!(
            "{\"id\": 7, \"ts\": \"2024-01-01T10:00:00+01:00\"}\n",
            "{\"id\": \"b\", \"ts\": 1704067200.5}\n",
            "{\"id\": true, \"ts\": \"2024-01-01 09:00:00.123456\"}\n",
            "{\"id\": \"d\", \"ts\": \"yesterday\"}\n",
        );
        let out = read_str(text, "id STRING, ts TIMESTAMP, _corrupt_record STRING", "PERMISSIVE").unwrap();
        let expected = "\
+------+----------------------------+--------------------------------+
| id   | ts                         | _corrupt_record                |
+------+----------------------------+--------------------------------+
| 7    | 2024-01-01T09:00:00        |                                |
| b    | 2024-01-01T00:00:00.500    |                                |
| true | 2024-01-01T09:00:00.123456 |                                |
| d    |                            | {\"id\": \"d\", \"ts\": \"yesterday\"} |
+------+----------------------------+--------------------------------+";
        assert_eq!(pretty(&out), expected);
    }

    #[test]
    fn timestamp_format_applies_to_json_strings() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.json");
        std::fs::write(&path, "{\"ts\": \"02/01/2024 10:30\"}\n{\"ts\": 0}\n").expect("write");
        let mut o = Options::default();
        o.set("timestampFormat", "dd/MM/yyyy HH:mm");
        let out = read(&path, &parse_schema("ts TIMESTAMP").unwrap(), &JsonOptions::try_new(&o).unwrap()).unwrap();
        let expected = "+---------------------+\n| ts                  |\n+---------------------+\n| 2024-01-02T10:30:00 |\n| 1970-01-01T00:00:00 |\n+---------------------+";
        assert_eq!(pretty(&out), expected);
    }

    #[test]
    fn line_chunks_cut_after_newlines_and_cover_everything() {
        let text = b"{\"a\":1}\n{\"a\":22}\n{\"a\":333}\n";
        let chunks = line_chunks(text, 3);
        assert!(chunks.iter().all(|c| c.is_empty() || c.ends_with(b"\n")));
        assert_eq!(chunks.concat(), text.to_vec());
    }

    #[test]
    fn dropmalformed_drops_and_failfast_names_file_and_line() {
        let text = "{\"id\": \"a\", \"n\": 1}\nnot json\n";
        let out = read_str(text, "id STRING, n LONG", "DROPMALFORMED").unwrap();
        assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        let err = read_str(text, "id STRING, n LONG", "FAILFAST").unwrap_err().to_string();
        assert!(err.starts_with("malformed record in ") && err.contains("part-0.json line 2: "), "{err}");
    }
}
