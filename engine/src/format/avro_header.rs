//! The header of an Avro object container file: its magic, its metadata map (`avro.schema`,
//! `avro.codec`) and its sync marker, and a way to put the schema the data was written with
//! into it.
//!
//! arrow-avro (59) writes a file's blocks with the schema in the Arrow schema's `avro.schema`
//! metadata, but derives the header's `avro.schema` from the Arrow fields (nullable columns as
//! `["null", T]`, generated record names): with a schema of our own (Spark's `[T, "null"]`,
//! `topLevelRecord`, enums), header and data would disagree. [`replace_schema`] rewrites the
//! header of such a file before it is stored.

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"Obj\x01";

/// `file` (a whole container file) with its header's `avro.schema` replaced by `schema`.
pub(crate) fn replace_schema(file: &[u8], schema: &str) -> Result<Vec<u8>> {
    let bad = |what: &str| Error::Internal(format!("the Avro writer wrote a header without {what}"));
    let rest = file.strip_prefix(MAGIC).ok_or_else(|| bad("the magic bytes"))?;
    let mut reader = Bytes { rest };
    let mut entries = Vec::new();
    loop {
        let count = reader.long().ok_or_else(|| bad("a metadata count"))?;
        if count == 0 {
            break;
        }
        if count < 0 {
            reader.long().ok_or_else(|| bad("a block size"))?; // the block's size in bytes
        }
        for _ in 0..count.unsigned_abs() {
            let key = reader.bytes().ok_or_else(|| bad("a metadata key"))?;
            let value = reader.bytes().ok_or_else(|| bad("a metadata value"))?;
            entries.push((key, value));
        }
    }
    let mut out = Vec::with_capacity(file.len() + schema.len());
    out.extend_from_slice(MAGIC);
    write_long(&mut out, entries.len() as i64);
    for (key, value) in entries {
        let value = if key == b"avro.schema" { schema.as_bytes() } else { value };
        write_bytes(&mut out, key);
        write_bytes(&mut out, value);
    }
    write_long(&mut out, 0);
    out.extend_from_slice(reader.rest); // the sync marker, then the blocks
    Ok(out)
}

/// Avro's binary encoding of longs (zig-zag varints) and bytes (a length, then the bytes).
struct Bytes<'a> {
    rest: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn long(&mut self) -> Option<i64> {
        let mut value: u64 = 0;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Some((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.long()?).ok()?;
        let (bytes, rest) = (self.rest.get(..len)?, &self.rest[len..]);
        self.rest = rest;
        Some(bytes)
    }
}

fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_round_trip_through_the_zig_zag_encoding() {
        for value in [0, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_long(&mut out, value);
            assert_eq!(Bytes { rest: &out }.long(), Some(value), "{value}");
        }
    }

    #[test]
    fn the_schema_is_replaced_and_everything_else_kept() {
        let mut file = MAGIC.to_vec();
        write_long(&mut file, -2); // a block of two entries, with its size
        write_long(&mut file, 0);
        for (k, v) in [("avro.codec", "null"), ("avro.schema", r#""int""#)] {
            write_bytes(&mut file, k.as_bytes());
            write_bytes(&mut file, v.as_bytes());
        }
        write_long(&mut file, 0);
        file.extend_from_slice(&[7; 16]);
        file.extend_from_slice(b"blocks");
        let out = replace_schema(&file, r#""long""#).unwrap();
        let mut reader = Bytes { rest: &out[4..] };
        assert_eq!(reader.long(), Some(2));
        assert_eq!((reader.bytes(), reader.bytes()), (Some(&b"avro.codec"[..]), Some(&b"null"[..])));
        assert_eq!((reader.bytes(), reader.bytes()), (Some(&b"avro.schema"[..]), Some(&br#""long""#[..])));
        assert_eq!(reader.long(), Some(0));
        assert_eq!(reader.rest, [&[7u8; 16][..], b"blocks"].concat());
        assert!(replace_schema(b"PAR1", "x").is_err());
    }
}
