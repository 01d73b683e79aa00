//! `split(str, pattern[, limit])`: Spark's split, where `pattern` is a regular expression.
//!
//! | call | result |
//! |---|---|
//! | `split('a,b,,', ',')` | `[a, b, "", ""]`: trailing empty strings are kept |
//! | `split(',a', ',')` | `["", a]` |
//! | `split('', ' ')` | `[""]`: an empty line is one empty word |
//! | `split('a1b22c', '[0-9]+')` | `[a, b, c]` |
//! | `split('a,b,c', ',', 2)` | `[a, "b,c"]`: at most `limit` parts when `limit > 0` |
//! | `split('abc', '')` | `[a, b, c]`: an empty pattern splits into characters |
//!
//! Java's `Pattern.split` rules, which Spark uses (with `limit <= 0` meaning no limit and
//! trailing empty strings kept): a match of nothing at the very start makes no leading empty
//! string. Patterns use the `regex` crate's syntax, which agrees with Java's for everything
//! but look-around and back-references (refused with the pattern named).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use regex::Regex;

/// `split(str, pattern[, limit])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SplitFunc {
    signature: Signature,
}

impl SplitFunc {
    pub(crate) fn udf() -> ScalarUDF {
        let signature = Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Int64]),
            ],
            Volatility::Immutable,
        );
        ScalarUDF::new_from_impl(SplitFunc { signature })
    }
}

fn item() -> Field {
    Field::new("item", DataType::Utf8, true)
}

impl ScalarUDFImpl for SplitFunc {
    fn name(&self) -> &str {
        "split"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        match arg_types.len() {
            2 => Ok(vec![DataType::Utf8, DataType::Utf8]),
            3 => Ok(vec![DataType::Utf8, DataType::Utf8, DataType::Int64]),
            n => plan_err!("split takes (str, pattern[, limit]), not {n} arguments"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::List(Arc::new(item())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let text = args.args[0].to_array(n)?;
        let patterns = args.args[1].to_array(n)?;
        let limits = match args.args.get(2) {
            Some(l) => l.to_array(n)?,
            None => Arc::new(Int64Array::from(vec![-1; n])) as ArrayRef,
        };
        let (text, patterns, limits) = (
            text.as_string::<i32>(),
            patterns.as_string::<i32>(),
            limits.as_primitive::<arrow::datatypes::Int64Type>(),
        );
        let mut out = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(item()));
        // The pattern is nearly always one literal: compile it once.
        let mut compiled: Option<(String, Regex)> = None;
        for i in 0..n {
            if text.is_null(i) || patterns.is_null(i) || limits.is_null(i) {
                out.append_null();
                continue;
            }
            let pattern = patterns.value(i);
            if compiled.as_ref().is_none_or(|(p, _)| p != pattern) {
                match Regex::new(pattern) {
                    Ok(re) => compiled = Some((pattern.to_string(), re)),
                    Err(e) => {
                        return exec_err!("split: '{pattern}' is not a regular expression Brooklet supports: {e}");
                    }
                }
            }
            let (_, re) = compiled.as_ref().expect("compiled above");
            for part in split(text.value(i), (!pattern.is_empty()).then_some(re), limits.value(i)) {
                out.values().append_value(part);
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The parts of `text` around the matches of `re` (characters when there is no pattern),
/// at most `limit` of them when `limit > 0`.
fn split<'a>(text: &'a str, re: Option<&Regex>, limit: i64) -> Vec<&'a str> {
    let limit = usize::try_from(limit).ok().filter(|l| *l > 0);
    let Some(re) = re else {
        // Spark splits around an empty pattern into characters, the last taking the rest.
        if text.is_empty() {
            return vec![""];
        }
        let mut parts: Vec<&str> = Vec::new();
        for (at, c) in text.char_indices() {
            if limit.is_some_and(|l| parts.len() + 1 == l) {
                parts.push(&text[at..]);
                return parts;
            }
            parts.push(&text[at..at + c.len_utf8()]);
        }
        return parts;
    };
    let mut parts = Vec::new();
    let mut from = 0;
    for m in re.find_iter(text) {
        if limit.is_some_and(|l| parts.len() + 1 >= l) {
            break;
        }
        if m.start() == 0 && m.end() == 0 {
            continue; // no leading empty string for a match of nothing at the start
        }
        parts.push(&text[from..m.start()]);
        from = m.end();
    }
    parts.push(&text[from..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str, pattern: &str, limit: i64) -> Vec<String> {
        let re = Regex::new(pattern).unwrap();
        split(text, (!pattern.is_empty()).then_some(&re), limit).into_iter().map(str::to_string).collect()
    }

    /// Each case as Apache Spark 4.3 answers it.
    #[test]
    fn splits_as_spark_does() {
        let cases: [(&str, &str, i64, &[&str]); 13] = [
            ("abc", "", -1, &["a", "b", "c"]),
            ("abc", "", 2, &["a", "bc"]),
            ("a,b,,", ",", -1, &["a", "b", "", ""]),
            ("a,b,,", ",", 0, &["a", "b", "", ""]),
            ("a,b,c", ",", 1, &["a,b,c"]),
            ("a,b,c", ",", -5, &["a", "b", "c"]),
            (",a", ",", -1, &["", "a"]),
            ("aXbxc", "(?i)x", -1, &["a", "b", "c"]),
            ("a|b", "|", -1, &["a", "|", "b", ""]),
            ("a1b", "\\d", -1, &["a", "b"]),
            ("", "", -1, &[""]),
            ("", " ", -1, &[""]),
            ("a  b", " ", -1, &["a", "", "b"]),
        ];
        for (text, pattern, limit, expected) in cases {
            assert_eq!(parts(text, pattern, limit), expected, "split('{text}', '{pattern}', {limit})");
        }
    }
}
