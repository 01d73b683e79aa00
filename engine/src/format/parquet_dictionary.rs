//! Which columns of a parquet file are worth a dictionary, decided as parquet-java decides it.
//!
//! Spark writes parquet with parquet-java, which dictionary-encodes every column's first page
//! and then keeps the dictionary only if it paid: dictionary ids plus the dictionary must take
//! fewer bytes than the plain values (`FallbackValuesWriter` asking
//! `DictionaryValuesWriter.isCompressionSatisfying`). A column of unique ids or timestamps
//! therefore falls back to plain encoding after 20,000 rows. The Rust `parquet` crate (59)
//! only falls back once the dictionary outgrows its 1 MB page, so it interns every value until
//! then and writes a dictionary no reader benefits from. This module makes the same call
//! parquet-java makes, on the first page's rows, before the writer starts.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;

/// Rows in parquet-java's first page (`parquet.page.row.count.limit`), the sample it decides on.
const FIRST_PAGE_ROWS: usize = 20_000;

/// The names of the top-level columns whose first page dictionary-encodes to no fewer bytes
/// than it takes plain, in schema order. Columns of other types keep the writer's default.
pub(super) fn columns_without_dictionary(batches: &[RecordBatch]) -> Vec<String> {
    let Some(first) = batches.first() else {
        return Vec::new();
    };
    let schema = first.schema();
    let mut out = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let mut sample = FirstPage::default();
        for batch in batches {
            if !sample.add(batch.column(i)) {
                break;
            }
        }
        if sample.counted && !sample.dictionary_pays() {
            out.push(field.name().clone());
        }
    }
    out
}

/// The sizes parquet-java compares, over the first page's non-null values.
#[derive(Default)]
struct FirstPage<'a> {
    rows: usize,
    values: usize,
    plain_bytes: usize,
    dictionary_bytes: usize,
    distinct: HashSet<&'a [u8]>,
    distinct_fixed: HashSet<u64>,
    /// Whether the column's type is one this module can size.
    counted: bool,
}

impl<'a> FirstPage<'a> {
    /// Counts `column`'s rows up to the first page's end; false once the page is full or the
    /// type is not one to decide on.
    fn add(&mut self, column: &'a ArrayRef) -> bool {
        let take = (FIRST_PAGE_ROWS - self.rows).min(column.len());
        let counted = match column.data_type() {
            DataType::Utf8 => self.add_bytes(column, take, |i| column.as_string::<i32>().value(i).as_bytes()),
            DataType::LargeUtf8 => self.add_bytes(column, take, |i| column.as_string::<i64>().value(i).as_bytes()),
            DataType::Binary => self.add_bytes(column, take, |i| column.as_binary::<i32>().value(i)),
            DataType::LargeBinary => self.add_bytes(column, take, |i| column.as_binary::<i64>().value(i)),
            data_type => match physical_width(data_type) {
                Some(stored) => {
                    let data = column.to_data();
                    let native = data_type.primitive_width().unwrap_or(stored);
                    let bytes = &data.buffers()[0].as_slice()[data.offset() * native..];
                    self.add_fixed(column, take, bytes, native, stored)
                }
                None => false,
            },
        };
        self.counted = counted;
        self.rows += take;
        counted && self.rows < FIRST_PAGE_ROWS
    }

    /// `value(i)` is the bytes of row `i`, stored plain after a 4-byte length.
    fn add_bytes(&mut self, column: &ArrayRef, take: usize, value: impl Fn(usize) -> &'a [u8]) -> bool {
        for i in (0..take).filter(|&i| column.is_valid(i)) {
            let v = value(i);
            self.values += 1;
            self.plain_bytes += 4 + v.len();
            if self.distinct.insert(v) {
                self.dictionary_bytes += 4 + v.len();
            }
        }
        true
    }

    /// `bytes` holds `native`-byte values (at most 8), each stored in `stored` bytes (parquet
    /// stores 8- and 16-bit integers as INT32).
    fn add_fixed(&mut self, column: &ArrayRef, take: usize, bytes: &[u8], native: usize, stored: usize) -> bool {
        for i in (0..take).filter(|&i| column.is_valid(i)) {
            let mut value = [0u8; 8];
            value[..native].copy_from_slice(&bytes[i * native..(i + 1) * native]);
            self.values += 1;
            self.plain_bytes += stored;
            if self.distinct_fixed.insert(u64::from_le_bytes(value)) {
                self.dictionary_bytes += stored;
            }
        }
        true
    }

    /// parquet-java's test: the RLE/bit-packed ids plus the dictionary page, against plain.
    fn dictionary_pays(&self) -> bool {
        if self.values == 0 {
            return true;
        }
        let distinct = self.distinct.len() + self.distinct_fixed.len();
        let bit_width = usize::BITS - distinct.saturating_sub(1).leading_zeros();
        let ids_bytes = 1 + (self.values * bit_width as usize).div_ceil(8);
        ids_bytes + self.dictionary_bytes < self.plain_bytes
    }
}

/// Bytes per value of a fixed-width column as parquet stores it; None for the types left to
/// the writer's default (booleans, decimals, intervals, nested and dictionary columns).
fn physical_width(data_type: &DataType) -> Option<usize> {
    use DataType::*;
    match data_type {
        Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 | Float32 | Date32 | Time32(_) => Some(4),
        Int64 | UInt64 | Float64 | Date64 | Time64(_) | Timestamp(_, _) | Duration(_) => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int8Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> =
            columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect())
            .expect("columns match the schema")
    }

    #[test]
    fn unique_columns_go_plain_and_repeating_ones_keep_their_dictionary() {
        let n = 30_000;
        let column = |a: ArrayRef| a;
        let b = batch(vec![
            ("event_id", column(Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("evt-{i:06}")))))),
            ("event_type", column(Arc::new(StringArray::from_iter_values((0..n).map(|i| ["view", "click"][i % 2]))))),
            (
                "timestamp",
                column(Arc::new(TimestampMicrosecondArray::from_iter_values((0..n as i64).map(|i| i * 1_000)))),
            ),
            ("value", column(Arc::new(Float64Array::from_iter_values((0..n).map(|i| (i % 500) as f64 / 4.0))))),
            ("tiny", column(Arc::new(Int8Array::from_iter_values((0..n).map(|i| (i % 100) as i8))))),
        ]);
        // Split across batches, as the sink hands them over: the sample spans batches.
        let batches = vec![b.slice(0, 7_000), b.slice(7_000, 23_000)];
        assert_eq!(columns_without_dictionary(&batches), ["event_id", "timestamp"]);
    }

    #[test]
    fn the_decision_is_made_on_the_first_page_only() {
        // 20,000 repeats, then unique values: parquet-java keeps the dictionary.
        let values = (0..40_000).map(|i| if i < 20_000 { "same".to_string() } else { format!("u{i}") });
        let b = batch(vec![("s", Arc::new(StringArray::from_iter_values(values)) as ArrayRef)]);
        assert!(columns_without_dictionary(&[b]).is_empty());
    }

    #[test]
    fn nulls_are_not_values_and_other_types_keep_the_default() {
        let b = batch(vec![
            ("all_null", Arc::new(StringArray::from(vec![None::<&str>; 100])) as ArrayRef),
            ("flags", Arc::new(arrow::array::BooleanArray::from(vec![true; 100]))),
        ]);
        assert!(columns_without_dictionary(&[b]).is_empty());
        assert!(columns_without_dictionary(&[]).is_empty());
    }

    #[test]
    fn the_written_file_has_a_dictionary_page_only_where_it_pays() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let n = 25_000;
        let b = batch(vec![
            ("id", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("id-{i}")))) as ArrayRef),
            ("kind", Arc::new(StringArray::from_iter_values((0..n).map(|i| ["a", "b", "c"][i % 3])))),
        ]);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("part.parquet");
        super::super::write_parquet(&path, &b.schema(), &[b]).expect("written");
        let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("opened")).expect("a parquet file");
        let chunks = reader.metadata().row_group(0).columns().to_vec();
        let has_dictionary: Vec<bool> = chunks.iter().map(|c| c.dictionary_page_offset().is_some()).collect();
        assert_eq!(has_dictionary, [false, true]);
    }
}
