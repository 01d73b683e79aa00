//! Scans of raw JSON lines for what arrow-json would get wrong by Spark's rules: records nested
//! too deep, the non-numeric numbers Spark accepts, and strings in numeric fields. Each scan is
//! cheap (counting, or a substring search), so the fast path can afford it on every line; a
//! line it flags is decoded alone, with Spark's rules.
//!
//! How deep a JSON record nests. Spark's JSON parser (Jackson) refuses a document nested more
//! than [`MAX_NESTING`] arrays and objects deep: the record is malformed, and the reader's
//! `mode` decides (a null row, a dropped row, or an error). Brooklet applies the same limit
//! before arrow-json sees a record, because arrow-json describes a value it cannot decode by
//! printing it recursively, which a line of 100,000 `[` turns into a stack overflow.

/// Jackson's default `StreamReadConstraints.maxNestingDepth`.
pub(crate) const MAX_NESTING: usize = 1000;

/// The opening brackets in `text`: a record with no more than [`MAX_NESTING`] of them cannot
/// nest deeper, whatever its strings hold.
fn openings(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'[' || b == b'{').count()
}

/// Whether some line of `lines` (whole lines) may nest too deep: it is longer than the limit
/// and holds more opening brackets than that. It only measures and counts, and never says no
/// to a line that is too deep.
pub(crate) fn may_nest_too_deep(lines: &[u8]) -> bool {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', lines).chain(std::iter::once(lines.len())) {
        // A line can only hold more openings than it has bytes.
        if end - start > MAX_NESTING && openings(&lines[start..end]) > MAX_NESTING {
            return true;
        }
        start = end + 1;
    }
    false
}

/// Whether `lines` hold a control byte other than tab, newline and carriage return: Spark's
/// parser refuses one inside a string (it must be escaped, `\u0000`), where arrow-json keeps it.
pub(crate) fn has_control_bytes(lines: &[u8]) -> bool {
    // 64 bytes at a time without branching (which vectorizes); the exact test only for a
    // block with some byte below 0x20 that is not a newline.
    lines.chunks(64).any(|block| {
        block.iter().fold(false, |seen, &b| seen | ((b < 0x20) & (b != b'\n')))
            && block.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    })
}

/// Why Spark's parser refuses the record `text` where arrow-json would not: nested too deep,
/// or a control byte inside a string.
pub(crate) fn refused(text: &[u8]) -> Option<String> {
    if nests_too_deep(text) {
        return Some(format!(
            "the record nests arrays and objects more than {MAX_NESTING} deep, the JSON parser's limit"
        ));
    }
    (has_control_bytes(text) && control_byte_in_string(text))
        .then(|| "a string holds an unescaped control character".to_string())
}

/// Follows a JSON text byte by byte to tell string content from everything else.
#[derive(Default)]
struct Strings {
    inside: bool,
    escaped: bool,
}

impl Strings {
    /// Whether `b`, the next byte, is part of a string's content (its quotes are not).
    fn content(&mut self, b: u8) -> bool {
        if !self.inside {
            self.inside = b == b'"';
            return false;
        }
        match b {
            _ if self.escaped => self.escaped = false,
            b'\\' => self.escaped = true,
            b'"' => {
                self.inside = false;
                return false;
            }
            _ => {}
        }
        true
    }
}

fn control_byte_in_string(text: &[u8]) -> bool {
    let mut strings = Strings::default();
    text.iter().any(|&b| strings.content(b) && b < 0x20)
}

/// Whether the record `text` nests arrays and objects deeper than [`MAX_NESTING`] (brackets
/// inside strings do not count).
fn nests_too_deep(text: &[u8]) -> bool {
    if openings(text) <= MAX_NESTING {
        return false;
    }
    let (mut strings, mut depth) = (Strings::default(), 0usize);
    for &b in text {
        match b {
            _ if strings.content(b) => {}
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The unquoted non-numeric numbers Spark's parser reads as doubles
/// (`allowNonNumericNumbers`, on by default), and the text arrow-json parses them from.
const NON_NUMERIC: [(&[u8], &[u8]); 7] = [
    (b"-Infinity", b"\"-inf\""),
    (b"+Infinity", b"\"inf\""),
    (b"Infinity", b"\"inf\""),
    (b"-INF", b"\"-inf\""),
    (b"+INF", b"\"inf\""),
    (b"INF", b"\"inf\""),
    (b"NaN", b"\"NaN\""),
];

/// `record` with every unquoted `NaN`, `Infinity`, `+Infinity`, `-Infinity` (and `INF`
/// forms) outside strings turned into a string arrow-json reads as that double; `None` when
/// there is none. Outside strings JSON allows no other bare words than true, false and null,
/// so nothing else is touched.
pub(crate) fn quote_non_numeric(record: &[u8]) -> Option<Vec<u8>> {
    let (mut out, mut copied, mut i) = (Vec::new(), 0, 0);
    let mut strings = Strings::default();
    while i < record.len() {
        let word = (!strings.content(record[i])).then(|| NON_NUMERIC.iter().find(|(w, _)| record[i..].starts_with(w)));
        match word.flatten() {
            Some((word, text)) => {
                out.extend_from_slice(&record[copied..i]);
                out.extend_from_slice(text);
                i += word.len();
                copied = i;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&record[copied..]);
    Some(out)
}

/// How common a byte is in JSON lines, for the substring search's prefilter: quotes, colons,
/// commas, brackets, spaces and digits are everywhere, so it anchors on the letters of a name.
struct JsonRank;

impl memchr::arch::all::packedpair::HeuristicFrequencyRank for JsonRank {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            b'"' | b':' | b',' | b'{' | b'}' | b'[' | b']' | b' ' | b'0'..=b'9' => 255,
            b'a'..=b'z' | b'_' => 160,
            _ => 80,
        }
    }
}

/// Finds a JSON string given for a numeric field: `"user_id": "6"`. Spark reads it as null
/// (a string is no number, and `"3.5"` for a DOUBLE is no double either, apart from `"NaN"`
/// and the infinities), where arrow-json would parse the text. The search looks for each
/// numeric field's quoted name followed by `:` and a quote: a hit can also be a nested field of
/// the same name, which only sends the line down the slow path that decides exactly.
pub(crate) struct QuotedNumbers {
    names: Vec<memchr::memmem::Finder<'static>>,
}

impl QuotedNumbers {
    /// For the numeric fields of `schema`.
    pub(crate) fn new(schema: &arrow::datatypes::Schema) -> Self {
        let names = schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_numeric())
            .map(|f| {
                let needle = format!("\"{}\"", f.name());
                memchr::memmem::FinderBuilder::new().build_forward_with_ranker(JsonRank, needle.as_bytes()).into_owned()
            })
            .collect();
        QuotedNumbers { names }
    }

    /// Whether some line of `lines` may give a numeric field a string.
    pub(crate) fn in_text(&self, lines: &[u8]) -> bool {
        self.names.iter().any(|name| {
            name.find_iter(lines).any(|at| {
                let mut rest =
                    lines[at + name.needle().len()..].iter().skip_while(|b| b.is_ascii_whitespace() && **b != b'\n');
                rest.next() == Some(&b':') && rest.find(|b| !b.is_ascii_whitespace() || **b == b'\n') == Some(&b'"')
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_limit_is_jacksons_and_strings_do_not_count() {
        assert!(!nests_too_deep(nested(MAX_NESTING).as_bytes()));
        assert!(nests_too_deep(nested(MAX_NESTING + 1).as_bytes()));
        assert!(nests_too_deep(nested(100_000).as_bytes()));
        let in_string = format!(r#"{{"a": "{}"}}"#, "[".repeat(5_000));
        assert!(!nests_too_deep(in_string.as_bytes()), "brackets inside a string");
        let escaped = format!(r#"{{"a": "\"{}"}}"#, "[".repeat(5_000));
        assert!(!nests_too_deep(escaped.as_bytes()), "an escaped quote does not end the string");
        let wide = format!("[{}]", "[],".repeat(5_000));
        assert!(!nests_too_deep(wide.trim_end_matches(",]").as_bytes()), "many brackets, shallow");
    }

    #[test]
    fn non_numeric_numbers_outside_strings_become_strings() {
        let line = br#"{"a": NaN, "b": -Infinity, "c": [Infinity, +INF], "s": "NaN Infinity", "d": 1.5}"#;
        let quoted = quote_non_numeric(line).expect("rewritten");
        assert_eq!(
            String::from_utf8(quoted).unwrap(),
            r#"{"a": "NaN", "b": "-inf", "c": ["inf", "inf"], "s": "NaN Infinity", "d": 1.5}"#
        );
        assert_eq!(quote_non_numeric(br#"{"s": "NaN", "n": null}"#), None);
    }

    #[test]
    fn a_control_byte_in_a_string_is_refused_and_elsewhere_left_to_the_parser() {
        assert!(refused(b"{\"id\": \"a\x00b\"}").is_some_and(|r| r.contains("control character")));
        assert!(refused(b"{\"id\": \"a\\u0000b\"}").is_none(), "escaped");
        assert!(refused(b"{\"id\": \"a\tb\"}").is_none(), "a tab is not looked for");
        assert!(refused(b"{\"id\": \"a\"}\x00").is_none());
    }

    #[test]
    fn the_quick_check_counts_each_line_alone() {
        let many_lines = "{\"a\": [1]}\n".repeat(10_000);
        assert!(!may_nest_too_deep(many_lines.as_bytes()), "each line counts alone");
        assert!(may_nest_too_deep(format!("{many_lines}{}\n", nested(MAX_NESTING + 1)).as_bytes()));
    }

    #[test]
    fn strings_in_numeric_fields_are_found_and_others_are_not() {
        let schema = arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Utf8, true),
            arrow::datatypes::Field::new("n", arrow::datatypes::DataType::Int32, true),
        ]);
        let q = QuotedNumbers::new(&schema);
        assert!(q.in_text(br#"{"id": "a", "n" : "6"}"#));
        assert!(q.in_text(b"{\"id\": \"a\", \"n\":\t\"6\"}\n{\"n\": 1}"));
        assert!(!q.in_text(br#"{"id": "n", "n": 6}"#), "a string value that reads like the name");
        assert!(!q.in_text(b"{\"n\":\n\"6\"}"), "a value on the next line belongs to no record of this line");
        assert!(!q.in_text(br#"{"id": "x", "n": null}"#));
    }
}
