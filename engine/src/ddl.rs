//! Spark's schema strings: `"event_id STRING, timestamp TIMESTAMP, value DOUBLE"`.
//!
//! This is Spark's DDL *type* grammar (`STRING`, `LONG`, `DECIMAL(10,2)`, `ARRAY<INT>`,
//! `STRUCT<a: INT, b: STRING>`, `MAP<STRING, INT>`), not SQL: Spark-only names such as `LONG`
//! and `SHORT` and the `name: type` struct fields are not in any `sqlparser` dialect, so the
//! small recursive-descent reader below is the clearest way to accept exactly what Spark does.
//! Timestamps are microseconds (Spark's precision), stored as UTC.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// Parses a schema string into an Arrow schema. Every column is nullable, as in Spark's readers.
///
/// ```
/// let schema = brooklet::ddl::parse_schema("id STRING, n LONG, tags ARRAY<STRING>").unwrap();
/// assert_eq!(schema.field(1).data_type(), &arrow::datatypes::DataType::Int64);
/// ```
pub fn parse_schema(text: &str) -> Result<SchemaRef> {
    let mut p = Parser { text, tokens: tokenize(text), pos: 0 };
    let fields = p.fields(None).map_err(|message| Error::Schema { schema: text.into(), message })?;
    if fields.is_empty() {
        return Err(Error::Schema { schema: text.into(), message: "no columns".into() });
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The Arrow type Brooklet uses for Spark's `TIMESTAMP`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            // A back-quoted name may hold spaces and punctuation.
            let mut quoted = String::from("`");
            for q in chars.by_ref() {
                if q == '`' {
                    break;
                }
                quoted.push(q);
            }
            tokens.push(quoted);
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        } else if !c.is_whitespace() {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            tokens.push(c.to_string());
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<String>,
    pos: usize,
}

type PResult<T> = std::result::Result<T, String>;

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> PResult<String> {
        let t = self.tokens.get(self.pos).cloned().ok_or_else(|| format!("unexpected end of '{}'", self.text))?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, token: &str) -> PResult<()> {
        match self.next()? {
            t if t == token => Ok(()),
            t => Err(format!("expected '{token}' but found '{t}'")),
        }
    }

    /// `name [:] type [NOT NULL] [COMMENT '...'], ...` up to `end` (or the end of input).
    fn fields(&mut self, end: Option<&str>) -> PResult<Vec<Field>> {
        let mut fields = Vec::new();
        while self.peek().is_some() && self.peek() != end {
            let name = self.next()?;
            let name = name.strip_prefix('`').map(str::to_string).unwrap_or(name);
            if self.peek() == Some(":") {
                self.pos += 1;
            }
            let data_type = self.data_type()?;
            if self.peek().is_some_and(|t| t.eq_ignore_ascii_case("not")) {
                self.pos += 1;
                let null = self.next()?;
                if !null.eq_ignore_ascii_case("null") {
                    return Err(format!("expected NULL after NOT, found '{null}'"));
                }
            }
            fields.push(Field::new(name, data_type, true));
            match self.peek() {
                Some(",") => self.pos += 1,
                t if t == end => {}
                Some(t) => {
                    return Err(format!(
                        "expected ',' after column '{}' but found '{t}'",
                        fields[fields.len() - 1].name()
                    ));
                }
                None => {}
            }
        }
        Ok(fields)
    }

    fn data_type(&mut self) -> PResult<DataType> {
        let name = self.next()?;
        let t = match name.to_uppercase().as_str() {
            "STRING" | "VARCHAR" | "CHAR" | "TEXT" => {
                self.skip_length()?;
                DataType::Utf8
            }
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "BYTE" | "TINYINT" => DataType::Int8,
            "SHORT" | "SMALLINT" => DataType::Int16,
            "INT" | "INTEGER" => DataType::Int32,
            "LONG" | "BIGINT" => DataType::Int64,
            "FLOAT" | "REAL" => DataType::Float32,
            "DOUBLE" => DataType::Float64,
            "DATE" => DataType::Date32,
            "TIMESTAMP" | "TIMESTAMP_LTZ" | "TIMESTAMP_NTZ" => timestamp_type(),
            "BINARY" => DataType::Binary,
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let (p, s) = self.precision_scale()?;
                DataType::Decimal128(p, s)
            }
            "ARRAY" => {
                self.expect("<")?;
                let item = self.data_type()?;
                self.expect(">")?;
                DataType::new_list(item, true)
            }
            "MAP" => {
                self.expect("<")?;
                let key = self.data_type()?;
                self.expect(",")?;
                let value = self.data_type()?;
                self.expect(">")?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key, false),
                        Field::new("value", value, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            "STRUCT" => {
                self.expect("<")?;
                let fields = self.fields(Some(">"))?;
                self.expect(">")?;
                DataType::Struct(Fields::from(fields))
            }
            _ => return Err(format!("unknown type '{name}'")),
        };
        Ok(t)
    }

    fn skip_length(&mut self) -> PResult<()> {
        if self.peek() == Some("(") {
            self.pos += 1;
            self.next()?;
            self.expect(")")?;
        }
        Ok(())
    }

    fn precision_scale(&mut self) -> PResult<(u8, i8)> {
        if self.peek() != Some("(") {
            return Ok((10, 0)); // Spark's default DECIMAL is DECIMAL(10,0)
        }
        self.pos += 1;
        let number = |t: String| t.parse::<u8>().map_err(|_| format!("'{t}' is not a decimal precision or scale"));
        let p = number(self.next()?)?;
        let s = if self.peek() == Some(",") {
            self.pos += 1;
            number(self.next()?)? as i8
        } else {
            0
        };
        self.expect(")")?;
        Ok((p, s))
    }
}

/// Spark's name for an Arrow type, as `printSchema()` shows it: `string`, `long`, `timestamp`.
pub fn spark_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "byte".into(),
        DataType::Int16 => "short".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) => format!("array<{}>", spark_type_name(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map<{},{}>", spark_type_name(kv[0].data_type()), spark_type_name(kv[1].data_type()))
            }
            other => other.to_string(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> =
                fields.iter().map(|f| format!("{}:{}", f.name(), spark_type_name(f.data_type()))).collect();
            format!("struct<{}>", inner.join(","))
        }
        other => other.to_string().to_lowercase(),
    }
}

/// A schema as Spark's `printSchema()` prints it.
///
/// ```
/// let schema = brooklet::ddl::parse_schema("id STRING, n LONG").unwrap();
/// assert_eq!(brooklet::ddl::schema_tree(&schema), "root\n |-- id: string (nullable = true)\n |-- n: long (nullable = true)\n");
/// ```
pub fn schema_tree(schema: &Schema) -> String {
    fn write_fields(out: &mut String, list: &Fields, depth: usize) {
        for f in list {
            let indent = " |   ".repeat(depth);
            let type_name = match f.data_type() {
                DataType::Struct(_) => "struct".to_string(),
                t => spark_type_name(t),
            };
            out.push_str(&format!("{indent} |-- {}: {type_name} (nullable = {})\n", f.name(), f.is_nullable()));
            if let DataType::Struct(children) = f.data_type() {
                write_fields(out, children, depth + 1);
            }
        }
    }
    let mut out = String::from("root\n");
    write_fields(&mut out, schema.fields(), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_event_schema() {
        let s = parse_schema(
            "event_id STRING, timestamp TIMESTAMP, user_id STRING, event_type STRING, value DOUBLE, session_id STRING",
        )
        .unwrap();
        assert_eq!(s.fields().len(), 6);
        assert_eq!(s.field(1).data_type(), &timestamp_type());
        assert_eq!(s.field(4).data_type(), &DataType::Float64);
    }

    #[test]
    fn parses_nested_types() {
        let s =
            parse_schema("a ARRAY<INT>, m MAP<STRING, LONG>, s STRUCT<x: INT, `y z` STRING>, d DECIMAL(12,2)").unwrap();
        assert_eq!(s.field(0).data_type(), &DataType::new_list(DataType::Int32, true));
        let DataType::Struct(fields) = s.field(2).data_type() else { panic!("struct expected") };
        assert_eq!(fields[1].name(), "y z");
        assert_eq!(s.field(3).data_type(), &DataType::Decimal128(12, 2));
    }

    #[test]
    fn bad_schemas_name_the_problem() {
        let err = parse_schema("id STRNG").unwrap_err().to_string();
        assert_eq!(err, "schema 'id STRNG': unknown type 'STRNG'");
        let err = parse_schema("id STRING value DOUBLE").unwrap_err().to_string();
        assert_eq!(err, "schema 'id STRING value DOUBLE': expected ',' after column 'id' but found 'value'");
        assert!(parse_schema("a ARRAY<INT").is_err());
        assert!(parse_schema("").is_err());
    }
}
