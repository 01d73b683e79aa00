//! `session_window(time, gap)`: Spark's session windows (semantics appendix, §6).
//!
//! Evaluated on one row, the function gives the row's own session, `[t, t + gap)`; the gap is
//! a duration string, the same for every row (`"30 minutes"`) or computed per row (a column or
//! expression of strings, e.g. a longer gap for one tier of users). A row whose time or gap is
//! null, or whose gap is not positive, is in no session (null), and an aggregation leaves it
//! out. Grouped on, rows' sessions merge: `plan/windows.rs` plans that for static data, and the
//! streaming aggregation merges sessions across batches (`state/sessions.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StructArray, TimestampMicrosecondArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::DELAY_KEY;
use super::window::{micros, window_type};
use crate::options::parse_interval_ms;

/// The user-facing function's name, and the output column's.
pub const SESSION_WINDOW_UDF: &str = "session_window";
/// The field metadata key that marks a session window column (Spark's `SessionWindow.marker`).
pub const SESSION_MARKER: &str = "spark.sessionWindow";

/// A literal gap, checked when the query is planned.
pub(crate) fn literal_gap_us(gap: &str) -> std::result::Result<i64, String> {
    let us = parse_interval_ms(gap)? * 1_000;
    if us <= 0 {
        return Err(format!("The session window gap duration ({gap}) must be greater than 0."));
    }
    Ok(us)
}

/// `session_window(time, gap)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SessionWindowFunc {
    signature: Signature,
}

impl SessionWindowFunc {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(SessionWindowFunc { signature: Signature::any(2, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for SessionWindowFunc {
    fn name(&self) -> &str {
        SESSION_WINDOW_UDF
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(window_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let time = &args.arg_fields[0];
        if !matches!(time.data_type(), DataType::Timestamp(_, _)) {
            return plan_err!(
                "session_window: the time column must be a timestamp, but {} is {}",
                time.name(),
                crate::ddl::spark_type_name(time.data_type())
            );
        }
        match args.arg_fields[1].data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {}
            other => return plan_err!("session_window: the gap must be a duration string, not {other}"),
        }
        if let Some(Some(ScalarValue::Utf8(Some(gap)))) = args.scalar_arguments.get(1) {
            literal_gap_us(gap).or_else(|e| plan_err!("session_window: {e}"))?;
        }
        let mut metadata = HashMap::from([(SESSION_MARKER.to_string(), "true".to_string())]);
        if let Some(delay) = time.metadata().get(DELAY_KEY) {
            metadata.insert(DELAY_KEY.to_string(), delay.clone());
        }
        Ok(Arc::new(Field::new(SESSION_WINDOW_UDF, window_type(), true).with_metadata(metadata)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let times = micros(&args.args[0].to_array(args.number_rows)?)?;
        let gaps = arrow::compute::cast(&args.args[1].to_array(args.number_rows)?, &DataType::Utf8)?;
        let gaps = gaps.as_string::<i32>();
        // Gap strings repeat (a literal, a few tiers): parse each distinct one once.
        let mut parsed: HashMap<&str, Option<i64>> = HashMap::new();
        let mut starts = Vec::with_capacity(times.len());
        let mut ends = Vec::with_capacity(times.len());
        let mut valid = Vec::with_capacity(times.len());
        for (t, gap) in times.iter().zip(gaps.iter()) {
            let gap_us = match gap {
                Some(g) => match parsed.get(g) {
                    Some(us) => *us,
                    None => {
                        let us = match parse_interval_ms(g) {
                            Ok(ms) => Some(ms * 1_000),
                            Err(e) => return exec_err!("session_window: gap {e}"),
                        };
                        parsed.insert(g, us);
                        us
                    }
                },
                None => None,
            };
            match (t, gap_us) {
                (Some(t), Some(g)) if g > 0 => {
                    starts.push(t);
                    ends.push(t + g);
                    valid.push(true);
                }
                _ => {
                    starts.push(0);
                    ends.push(0);
                    valid.push(false);
                }
            }
        }
        let DataType::Struct(fields) = window_type() else { unreachable!("window_type is a struct") };
        Ok(ColumnarValue::Array(Arc::new(session_struct(fields, starts, ends, Some(NullBuffer::from(valid))))))
    }
}

/// A `{start, end}` struct array of sessions, in microseconds.
pub(crate) fn session_struct(
    fields: Fields,
    starts: Vec<i64>,
    ends: Vec<i64>,
    nulls: Option<NullBuffer>,
) -> StructArray {
    let columns: Vec<Arc<dyn Array>> =
        vec![Arc::new(TimestampMicrosecondArray::from(starts)), Arc::new(TimestampMicrosecondArray::from(ends))];
    StructArray::new(fields, columns, nulls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_gaps_must_be_positive_durations() {
        assert_eq!(literal_gap_us("30 minutes"), Ok(1_800_000_000));
        assert!(literal_gap_us("0 seconds").unwrap_err().contains("must be greater than 0"));
        assert!(literal_gap_us("soon").is_err());
    }
}
