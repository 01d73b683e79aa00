//! CSV, decoded by arrow-csv. Every column is first read as text, then cast to the schema's
//! type with arrow's cast kernel: a field that does not cast is exactly Spark's "bad typed
//! field", null alone under PERMISSIVE, the row dropped under DROPMALFORMED, the query failed
//! under FAILFAST (semantics appendix, §9).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::FormatOptions;

use super::datetime::TimestampFormat;
use super::{ParseMode, parse_mode, widen_inferred};
use crate::error::{Error, Result};
use crate::options::Options;

pub(super) const OPTIONS: &[&str] =
    &["header", "sep", "delimiter", "quote", "escape", "nullValue", "mode", "timestampFormat"];

/// CSV reader options (Spark's names).
#[derive(Debug, Clone)]
pub struct CsvOptions {
    header: bool,
    sep: u8,
    quote: u8,
    escape: Option<u8>,
    null_value: Option<String>,
    mode: ParseMode,
    timestamp_format: Option<TimestampFormat>,
}

impl CsvOptions {
    pub(super) fn try_new(o: &Options) -> Result<Self> {
        let sep = match o.get("sep") {
            Some(_) => o.byte("sep", b',')?,
            None => o.byte("delimiter", b',')?,
        };
        Ok(CsvOptions {
            header: o.flag("header", false)?,
            sep,
            quote: o.byte("quote", b'"')?,
            escape: o.get("escape").map(|_| o.byte("escape", b'\\')).transpose()?,
            null_value: o.get("nullValue").map(String::from),
            mode: parse_mode(o)?,
            timestamp_format: o.get("timestampFormat").map(TimestampFormat::try_new).transpose()?,
        })
    }

    fn format(&self) -> Format {
        let mut f = Format::default().with_header(self.header).with_delimiter(self.sep).with_quote(self.quote);
        if let Some(e) = self.escape {
            f = f.with_escape(e);
        }
        f
    }
}

pub(super) fn read(path: &Path, schema: &SchemaRef, o: &CsvOptions) -> Result<Vec<RecordBatch>> {
    let text_fields: Vec<Field> = schema.fields().iter().map(|f| Field::new(f.name(), DataType::Utf8, true)).collect();
    let source = text_of(path, o)?;
    let text = match read_text(path, &source, &text_fields, o) {
        Ok(text) => text,
        // Rows with more fields than the schema: Spark ignores the extra fields. Find the widest
        // row, read with placeholder columns for the extras, and leave them out.
        Err(Error::Malformed { message, .. }) if message.contains("incorrect number of fields") => {
            let mut wide = text_fields.clone();
            wide.extend(
                (text_fields.len()..widest_row(path, &source, o)?)
                    .map(|i| Field::new(format!("_extra_{i}"), DataType::Utf8, true)),
            );
            read_text(path, &source, &wide, o)?.project(&(0..text_fields.len()).collect::<Vec<_>>())?
        }
        Err(e) => return Err(e),
    };
    let (batch, mut bad_rows) = cast_columns(&text, schema, o.timestamp_format.as_ref())?;
    let first_cast_failure = (!bad_rows.is_empty()).then(|| bad_rows.first_detail.0 + 1 + usize::from(o.header));
    if let (ParseMode::FailFast, Some((_, line))) = (o.mode, source.unterminated.first())
        && first_cast_failure.is_none_or(|cast| cast > *line)
    {
        return Err(Error::Malformed {
            file: path.into(),
            line: Some(*line),
            message: "a quoted field is not closed on its line".into(),
        });
    }
    bad_rows.rows.extend(source.unterminated.iter().map(|(row, _)| *row));
    if bad_rows.is_empty() {
        return Ok(vec![batch]);
    }
    match o.mode {
        ParseMode::Permissive => Ok(vec![batch]),
        ParseMode::DropMalformed => {
            let keep: BooleanArray = (0..batch.num_rows()).map(|i| Some(!bad_rows.contains(&i))).collect();
            Ok(vec![filter_record_batch(&batch, &keep)?])
        }
        ParseMode::FailFast => {
            let (row, column) = &bad_rows.first_detail;
            let line = row + 1 + usize::from(o.header);
            let value = arrow::util::display::ArrayFormatter::try_new(
                text.column(*column).as_ref(),
                &FormatOptions::default(),
            )?
            .value(*row)
            .to_string();
            Err(Error::Malformed {
                file: path.into(),
                line: Some(line),
                message: format!(
                    "cannot parse '{value}' as {} for column '{}'",
                    schema.field(*column).data_type(),
                    schema.field(*column).name()
                ),
            })
        }
    }
}

/// Every column of the file as text, rows shorter than `fields` padded with nulls.
fn read_text(path: &Path, text: &CsvText, fields: &[Field], o: &CsvOptions) -> Result<RecordBatch> {
    let text_schema = Arc::new(Schema::new(fields.to_vec()));
    let mut builder = ReaderBuilder::new(text_schema.clone())
        .with_header(o.header)
        .with_delimiter(o.sep)
        .with_quote(o.quote)
        .with_truncated_rows(true); // too few columns: the rest are null, as in Spark
    if let Some(e) = o.escape {
        builder = builder.with_escape(e);
    }
    if let Some(null) = &o.null_value {
        let re = regex::Regex::new(&format!("^{}$", regex::escape(null)))
            .map_err(|e| Error::option("nullValue", e.to_string()))?;
        builder = builder.with_null_regex(re);
    }
    let mut batches = Vec::new();
    for batch in builder.build(std::io::Cursor::new(text.bytes.as_slice()))? {
        batches.push(batch.map_err(|e| Error::Malformed { file: path.into(), line: None, message: e.to_string() })?);
    }
    Ok(concat_batches(&text_schema, &batches)?)
}

/// A CSV file's text as the reader parses it, and the records Spark would call malformed
/// before any field is typed.
struct CsvText {
    bytes: Vec<u8>,
    /// `(row, line)` of each record whose quoted field is not closed on its line.
    unterminated: Vec<(usize, usize)>,
}

/// The file's bytes as UTF-8 text. Bytes that are not UTF-8 become U+FFFD, one per invalid
/// sequence, and the row is kept in every mode: Spark decodes a CSV file the same way (its
/// decoder replaces malformed input), so a stray Latin-1 byte is no malformed record.
///
/// A record is one line, as in Spark without `multiLine`: a quoted field still open at the end
/// of its line is closed there (its text runs to the end of the line) and the record is
/// malformed, instead of swallowing the lines after it.
fn text_of(path: &Path, o: &CsvOptions) -> Result<CsvText> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => text.into_bytes(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into_bytes(),
    };
    if !bytes.contains(&o.quote) {
        return Ok(CsvText { bytes, unterminated: Vec::new() });
    }
    let (mut out, mut unterminated, mut row) = (Vec::with_capacity(bytes.len() + 16), Vec::new(), 0);
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let mut open = false;
        let mut escaped = false;
        for &b in body {
            match b {
                _ if escaped => escaped = false,
                _ if Some(b) == o.escape && open => escaped = true,
                _ if b == o.quote => open = !open,
                _ => {}
            }
        }
        out.extend_from_slice(body);
        if open {
            out.push(o.quote);
            unterminated.push((row, i + 1));
        }
        out.extend_from_slice(&line[body.len()..]);
        let is_header = o.header && i == 0;
        if !body.is_empty() && !is_header {
            row += 1;
        }
    }
    Ok(CsvText { bytes: out, unterminated })
}

/// The most fields any row of the file has.
fn widest_row(path: &Path, text: &CsvText, o: &CsvOptions) -> Result<usize> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(o.sep)
        .quote(o.quote)
        .escape(o.escape)
        .from_reader(text.bytes.as_slice());
    let mut widest = 0;
    for record in reader.byte_records() {
        let record = record.map_err(|e| Error::Malformed { file: path.into(), line: None, message: e.to_string() })?;
        widest = widest.max(record.len());
    }
    Ok(widest)
}

/// Rows in which some field did not cast, with the first (row, column) for error messages.
struct BadRows {
    rows: std::collections::BTreeSet<usize>,
    first_detail: (usize, usize),
}

impl BadRows {
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn contains(&self, row: &usize) -> bool {
        self.rows.contains(row)
    }
}

fn cast_columns(
    text: &RecordBatch,
    schema: &SchemaRef,
    timestamps: Option<&TimestampFormat>,
) -> Result<(RecordBatch, BadRows)> {
    let safe = CastOptions { safe: true, format_options: FormatOptions::default() };
    let mut bad = BadRows { rows: Default::default(), first_detail: (usize::MAX, 0) };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let raw = text.column(i);
        let cast = match (field.data_type(), timestamps, raw.as_any().downcast_ref::<StringArray>()) {
            (DataType::Timestamp(_, _), Some(format), Some(strings)) => {
                cast_with_options(&format.parse_array(strings), field.data_type(), &safe)?
            }
            _ => cast_with_options(raw, field.data_type(), &safe)?,
        };
        for row in 0..raw.len() {
            if raw.is_valid(row) && cast.is_null(row) {
                bad.rows.insert(row);
                if row < bad.first_detail.0 {
                    bad.first_detail = (row, i);
                }
            }
        }
        columns.push(cast);
    }
    Ok((RecordBatch::try_new(schema.clone(), columns)?, bad))
}

pub(super) fn infer_schema(files: &[&Path], o: &CsvOptions) -> Result<SchemaRef> {
    let mut schemas = Vec::new();
    for path in files {
        let (schema, _) = o
            .format()
            .infer_schema(std::io::Cursor::new(text_of(path, o)?.bytes), Some(1000))
            .map_err(|e| Error::Malformed { file: path.to_path_buf(), line: None, message: e.to_string() })?;
        schemas.push(schema);
    }
    Ok(widen_inferred(Schema::try_merge(schemas)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::parse_schema;

    fn read_str(text: &str, mode: &str) -> Result<Vec<RecordBatch>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("part-0.csv");
        std::fs::write(&path, text).expect("write");
        let mut o = Options::default();
        o.set("header", "true");
        o.set("mode", mode);
        read(&path, &parse_schema("id STRING, n DOUBLE, k INT")?, &CsvOptions::try_new(&o)?)
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters_in_every_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("part-0.csv");
        std::fs::write(&path, b"id,n,k\nx\xff\xfey,2.5,1\nok,3.5,2\n").expect("write");
        for mode in ["PERMISSIVE", "DROPMALFORMED", "FAILFAST"] {
            let mut o = Options::default();
            o.set("header", "true");
            o.set("mode", mode);
            let out =
                read(&path, &parse_schema("id STRING, n DOUBLE, k INT").unwrap(), &CsvOptions::try_new(&o).unwrap());
            let out = out.unwrap_or_else(|e| panic!("{mode}: {e}"));
            let ids = out[0].column(0).as_any().downcast_ref::<arrow::array::StringArray>().unwrap().clone();
            assert_eq!(ids.iter().collect::<Vec<_>>(), [Some("x\u{fffd}\u{fffd}y"), Some("ok")], "{mode}");
        }
    }

    /// Spark 4.3 on the same file: `"b,2` opens a quote its line does not close; the record is
    /// that line alone (its field runs to the end of the line) and it is malformed.
    #[test]
    fn a_quote_left_open_ends_with_its_line_and_the_record_is_malformed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("part-0.csv");
        std::fs::write(&path, "id,n\na,1\n\"b,2\nc,3\n").expect("write");
        let read_mode = |mode: &str| {
            let mut o = Options::default();
            o.set("header", "true");
            o.set("mode", mode);
            read(&path, &parse_schema("id STRING, n LONG").unwrap(), &CsvOptions::try_new(&o).unwrap())
        };
        let text = |b: Vec<RecordBatch>| arrow::util::pretty::pretty_format_batches(&b).unwrap().to_string();
        assert_eq!(
            text(read_mode("PERMISSIVE").unwrap()),
            "+-----+---+\n| id  | n |\n+-----+---+\n| a   | 1 |\n| b,2 |   |\n| c   | 3 |\n+-----+---+"
        );
        assert_eq!(
            text(read_mode("DROPMALFORMED").unwrap()),
            "+----+---+\n| id | n |\n+----+---+\n| a  | 1 |\n| c  | 3 |\n+----+---+"
        );
        let err = read_mode("FAILFAST").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("not closed"), "{err}");
    }

    #[test]
    fn spark_csv_rules() {
        let text = "id,n,k\na,1e3,1\nb,NaN,x\nc,,\nd\n";
        let wide = "id,n,k\na,1e3,1,extra,more\nb,NaN,x\nc,,\nd\n";
        assert_eq!(
            read_str(wide, "PERMISSIVE").unwrap(),
            read_str(text, "PERMISSIVE").unwrap(),
            "extra fields are ignored"
        );
        let out = read_str(text, "PERMISSIVE").unwrap();
        let expected = "\
+----+--------+---+
| id | n      | k |
+----+--------+---+
| a  | 1000.0 | 1 |
| b  | NaN    |   |
| c  |        |   |
| d  |        |   |
+----+--------+---+";
        assert_eq!(arrow::util::pretty::pretty_format_batches(&out).unwrap().to_string(), expected);
        assert_eq!(read_str(text, "DROPMALFORMED").unwrap()[0].num_rows(), 3);
        let err = read_str(text, "FAILFAST").unwrap_err().to_string();
        assert!(err.ends_with("part-0.csv line 3: cannot parse 'x' as Int32 for column 'k'"), "{err}");
    }

    #[test]
    fn timestamp_format_and_null_value() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "ts;n\n02/01/2024 10:30;-\n2024-01-02;7\n").expect("write");
        let mut o = Options::default();
        o.set("header", "true");
        o.set("sep", ";");
        o.set("nullValue", "-");
        o.set("timestampFormat", "dd/MM/yyyy HH:mm");
        let out =
            read(&path, &parse_schema("ts TIMESTAMP, n LONG").unwrap(), &CsvOptions::try_new(&o).unwrap()).unwrap();
        let expected = "\
+---------------------+---+
| ts                  | n |
+---------------------+---+
| 2024-01-02T10:30:00 |   |
|                     | 7 |
+---------------------+---+";
        assert_eq!(arrow::util::pretty::pretty_format_batches(&out).unwrap().to_string(), expected);
    }
}
