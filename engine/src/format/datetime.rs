//! Spark's datetime patterns (`yyyy-MM-dd HH:mm:ss`) for the `timestampFormat` option,
//! translated to chrono's (`%Y-%m-%d %H:%M:%S`), which does the parsing.

use arrow::array::{Array, StringArray, TimestampMicrosecondArray};

use crate::error::{Error, Result};

/// A Spark timestamp pattern, ready to parse with.
#[derive(Debug, Clone)]
pub struct TimestampFormat {
    chrono: String,
    has_zone: bool,
}

impl TimestampFormat {
    /// Translates `pattern`; letters Brooklet does not know are an error naming them.
    pub fn try_new(pattern: &str) -> Result<Self> {
        let mut chrono = String::new();
        let mut has_zone = false;
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // A quoted literal: 'T'
                let end = chars[i + 1..].iter().position(|&q| q == '\'').map(|p| i + 1 + p);
                let end =
                    end.ok_or_else(|| Error::option("timestampFormat", format!("unclosed quote in '{pattern}'")))?;
                chars[i + 1..end].iter().for_each(|&l| push_literal(&mut chrono, l));
                i = end + 1;
                continue;
            }
            let run = chars[i..].iter().take_while(|&&r| r == c).count();
            let piece = match (c, run) {
                ('y', 2) => "%y",
                ('y', _) => "%Y",
                ('M', _) => "%m",
                ('d', _) => "%d",
                ('H', _) => "%H",
                ('h', _) => "%I",
                ('m', _) => "%M",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('a', _) => "%p",
                ('X' | 'Z' | 'x', _) => {
                    has_zone = true;
                    "%:z"
                }
                (c, _) if c.is_ascii_alphabetic() => {
                    return Err(Error::option(
                        "timestampFormat",
                        format!("pattern letter '{c}' in '{pattern}' is not supported"),
                    ));
                }
                (c, n) => {
                    (0..n).for_each(|_| push_literal(&mut chrono, c));
                    i += run;
                    continue;
                }
            };
            chrono.push_str(piece);
            i += run;
        }
        Ok(TimestampFormat { chrono, has_zone })
    }

    /// Microseconds since the epoch (UTC), or `None` when `text` does not match.
    pub fn parse(&self, text: &str) -> Option<i64> {
        if self.has_zone {
            chrono::DateTime::parse_from_str(text, &self.chrono).ok().map(|t| t.timestamp_micros())
        } else {
            chrono::NaiveDateTime::parse_from_str(text, &self.chrono).ok().map(|t| t.and_utc().timestamp_micros())
        }
    }

    /// Parses a column of strings; values that do not match become null.
    pub fn parse_array(&self, strings: &StringArray) -> TimestampMicrosecondArray {
        (0..strings.len()).map(|i| if strings.is_null(i) { None } else { self.parse(strings.value(i)) }).collect()
    }
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_patterns_parse() {
        let f = TimestampFormat::try_new("dd/MM/yyyy HH:mm").unwrap();
        assert_eq!(f.parse("02/01/2024 10:30"), Some(1_704_191_400_000_000));
        assert_eq!(f.parse("2024-01-02 10:30"), None);
        let iso = TimestampFormat::try_new("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap();
        assert_eq!(iso.parse("2024-01-01T01:00:00.250+01:00"), Some(1_704_067_200_250_000));
        let err = TimestampFormat::try_new("yyyy-QQ").unwrap_err().to_string();
        assert_eq!(err, "option 'timestampFormat': pattern letter 'Q' in 'yyyy-QQ' is not supported");
    }
}
