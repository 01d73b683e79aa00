//! Scans of raw JSON records that arrow-json cannot be trusted with: how deep a record nests,
//! and the non-numeric numbers Spark accepts.
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

/// Whether some line of `text` may nest too deep: it holds more opening brackets than the
/// limit. `carry` holds the count of the line `text` starts in the middle of, and is left
/// with the count of the line it ends in the middle of, so a file can be checked piece by
/// piece. Cheap (it only counts), and never says no to a line that is too deep.
pub(crate) fn may_nest_too_deep(text: &[u8], carry: &mut usize) -> bool {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text) {
        if *carry + openings(&text[start..end]) > MAX_NESTING {
            return true;
        }
        (*carry, start) = (0, end + 1);
    }
    *carry += openings(&text[start..]);
    *carry > MAX_NESTING
}

/// Whether the record `text` nests arrays and objects deeper than [`MAX_NESTING`] (brackets
/// inside strings do not count).
pub(crate) fn nests_too_deep(text: &[u8]) -> bool {
    if openings(text) <= MAX_NESTING {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
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
    let (mut in_string, mut escaped) = (false, false);
    while i < record.len() {
        let b = record[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        match NON_NUMERIC.iter().find(|(word, _)| record[i..].starts_with(word)) {
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
    fn the_quick_check_carries_a_line_across_pieces() {
        let deep = nested(MAX_NESTING + 1);
        let (a, b) = deep.as_bytes().split_at(600);
        let mut carry = 0;
        assert!(!may_nest_too_deep(b"{\"ok\": 1}\n", &mut carry));
        assert!(!may_nest_too_deep(a, &mut carry));
        assert!(may_nest_too_deep(b, &mut carry), "600 + 402 openings in one line");
        let mut carry = 0;
        let many_lines = "{\"a\": [1]}\n".repeat(10_000);
        assert!(!may_nest_too_deep(many_lines.as_bytes(), &mut carry), "each line counts alone");
        assert_eq!(carry, 0);
    }
}
