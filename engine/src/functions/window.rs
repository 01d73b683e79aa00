//! Event-time windows: `window(time, size[, slide[, start]])` and `window_time(window)`, as in
//! Spark (semantics appendix, §6).
//!
//! A window is a struct column `window{start, end}`: start inclusive, end exclusive.
//! Tumbling windows put each row in `[floor((t - start) / size) * size + start, + size)`;
//! sliding windows put it in every `[k * slide + start, + size)` that contains it, so one row
//! can belong to several windows. Since a scalar function gives one value per row, `window`
//! in a `select` or `group_by` is planned as [`WINDOWS_UDF`] (the list of a row's windows)
//! followed by an unnest: see `plan/windows.rs`. A row with a null time is in no window.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray, TimestampMicrosecondArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::options::parse_interval_ms;

/// The user-facing function's name.
pub const WINDOW_UDF: &str = "window";
/// The internal function that lists a row's windows.
pub const WINDOWS_UDF: &str = "__brooklet_windows";

/// `struct<start: timestamp, end: timestamp>`.
pub fn window_type() -> DataType {
    let ts = crate::ddl::timestamp_type();
    DataType::Struct(Fields::from(vec![Field::new("start", ts.clone(), true), Field::new("end", ts, true)]))
}

/// A window specification in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowSpec {
    pub size: i64,
    pub slide: i64,
    pub start: i64,
}

impl WindowSpec {
    /// Spark's checks, with its messages.
    pub(crate) fn try_new(size: i64, slide: i64, start: i64) -> std::result::Result<Self, String> {
        if size <= 0 {
            return Err(format!("The window duration ({size} us) must be greater than 0."));
        }
        if slide <= 0 {
            return Err(format!("The slide duration ({slide} us) must be greater than 0."));
        }
        if slide > size {
            return Err(format!(
                "The slide duration ({slide} us) must be less than or equal to the windowDuration ({size} us)."
            ));
        }
        if start.abs() >= slide {
            return Err(format!(
                "The absolute value of start time ({start} us) must be less than the slideDuration ({slide} us)."
            ));
        }
        Ok(WindowSpec { size, slide, start })
    }

    /// From `window(time, '10 minutes'[, '5 minutes'[, '1 minute']])`'s duration strings.
    pub(crate) fn parse(size: &str, slide: Option<&str>, start: Option<&str>) -> std::result::Result<Self, String> {
        let us = |text: &str| parse_interval_ms(text).map(|ms| ms * 1_000);
        let size = us(size)?;
        let slide = match slide {
            Some(s) => us(s)?,
            None => size,
        };
        let start = match start {
            Some(s) => us(s)?,
            None => 0,
        };
        Self::try_new(size, slide, start)
    }

    /// Starts of the windows holding `t`, oldest first.
    pub(crate) fn starts(&self, t: i64) -> impl Iterator<Item = i64> + use<> {
        let last = t - (t - self.start).rem_euclid(self.slide);
        let (size, slide) = (self.size, self.slide);
        let count = (size + slide - 1) / slide;
        (0..count).rev().map(move |k| last - k * slide).filter(move |s| *s <= t && t < s + size)
    }
}

/// Reads the literal duration strings of a `window(...)` call.
pub(crate) fn spec_from_literals(args: &[Option<&ScalarValue>]) -> DfResult<WindowSpec> {
    let text = |i: usize| -> DfResult<Option<String>> {
        match args.get(i) {
            None => Ok(None),
            Some(Some(
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            )) => Ok(Some(s.clone())),
            Some(_) => plan_err!("window: the durations must be literal strings such as '10 minutes'"),
        }
    };
    let size = text(1)?.map_or_else(|| plan_err!("window needs a time column and a duration"), Ok)?;
    WindowSpec::parse(&size, text(2)?.as_deref(), text(3)?.as_deref()).or_else(|e| plan_err!("window: {e}"))
}

fn check_time(field: &Field, function: &str) -> DfResult<()> {
    match field.data_type() {
        DataType::Timestamp(_, _) => Ok(()),
        other => plan_err!(
            "{function}: the time column must be a timestamp, but {} is {}",
            field.name(),
            crate::ddl::spark_type_name(other)
        ),
    }
}

pub(crate) fn micros(array: &ArrayRef) -> DfResult<TimestampMicrosecondArray> {
    let cast = arrow::compute::cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(cast.as_primitive::<TimestampMicrosecondType>().clone())
}

fn window_struct(starts: Vec<i64>, size: i64) -> StructArray {
    let ends: Vec<i64> = starts.iter().map(|s| s + size).collect();
    let DataType::Struct(fields) = window_type() else { unreachable!("window_type is a struct") };
    StructArray::new(
        fields,
        vec![
            Arc::new(TimestampMicrosecondArray::from(starts)) as ArrayRef,
            Arc::new(TimestampMicrosecondArray::from(ends)) as ArrayRef,
        ],
        None,
    )
}

/// `window(time, size[, slide[, start]])`: a row's window. Evaluated directly only for
/// tumbling windows outside `select`/`group_by` (e.g. in a filter).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct WindowFunc {
    signature: Signature,
}

impl WindowFunc {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(WindowFunc { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for WindowFunc {
    fn name(&self) -> &str {
        WINDOW_UDF
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(window_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if !(2..=4).contains(&args.arg_fields.len()) {
            return plan_err!(
                "window takes a time column and 1 to 3 durations, got {} arguments",
                args.arg_fields.len()
            );
        }
        check_time(&args.arg_fields[0], "window")?;
        spec_from_literals(args.scalar_arguments)?;
        Ok(Arc::new(Field::new(WINDOW_UDF, window_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let literals: Vec<Option<ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s.clone()),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let refs: Vec<Option<&ScalarValue>> = literals.iter().map(Option::as_ref).collect();
        let spec = spec_from_literals(&refs)?;
        if spec.slide != spec.size {
            return exec_err!("a sliding window() can only be used in select() or group_by()");
        }
        let times = micros(&args.args[0].to_array(args.number_rows)?)?;
        let starts: Vec<i64> = times.iter().map(|t| t.and_then(|t| spec.starts(t).next()).unwrap_or(0)).collect();
        let windows = window_struct(starts, spec.size);
        let nulls = times.nulls().cloned();
        let (fields, columns, _) = windows.into_parts();
        Ok(ColumnarValue::Array(Arc::new(StructArray::new(fields, columns, nulls))))
    }
}

/// `__brooklet_windows(time, size_us, slide_us, start_us)`: every window of each row, as a
/// list (empty for a null time).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct WindowsFunc {
    signature: Signature,
}

impl WindowsFunc {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(WindowsFunc { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", window_type(), true)))
}

impl ScalarUDFImpl for WindowsFunc {
    fn name(&self) -> &str {
        WINDOWS_UDF
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(list_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let int = |i: usize| match &args.args[i] {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(v))) => Ok(*v),
            other => exec_err!("{WINDOWS_UDF}: argument {i} must be an integer literal, got {other:?}"),
        };
        let spec = WindowSpec::try_new(int(1)?, int(2)?, int(3)?).or_else(|e| exec_err!("window: {e}"))?;
        let times = micros(&args.args[0].to_array(args.number_rows)?)?;
        let mut starts = Vec::with_capacity(times.len() * (spec.size / spec.slide) as usize);
        let mut lengths = Vec::with_capacity(times.len());
        for t in times.iter() {
            let before = starts.len();
            if let Some(t) = t {
                starts.extend(spec.starts(t));
            }
            lengths.push(starts.len() - before);
        }
        let DataType::List(item) = list_type() else { unreachable!("list_type is a list") };
        let values = window_struct(starts, spec.size);
        let list = ListArray::new(item, OffsetBuffer::from_lengths(lengths), Arc::new(values), None);
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}

/// `window_time(window)`: the window's last instant, `end - 1 microsecond` (an event time
/// that falls in the window; carries the window's watermark marking).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct WindowTimeFunc {
    signature: Signature,
}

impl WindowTimeFunc {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(WindowTimeFunc { signature: Signature::any(1, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for WindowTimeFunc {
    fn name(&self) -> &str {
        "window_time"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(crate::ddl::timestamp_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let window = &args.arg_fields[0];
        match window.data_type() {
            DataType::Struct(f) if f.find("end").is_some() => {}
            other => return plan_err!("window_time needs a window column, but {} is {other}", window.name()),
        }
        let field = Field::new("window_time", crate::ddl::timestamp_type(), true);
        Ok(Arc::new(field.with_metadata(window.metadata().clone())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let window = args.args[0].to_array(args.number_rows)?;
        let window = window.as_struct();
        let end = window.column_by_name("end").map(micros).transpose()?;
        let Some(end) = end else { return exec_err!("window_time needs a window column") };
        let nulls = arrow::buffer::NullBuffer::union(window.nulls(), end.nulls());
        let last = TimestampMicrosecondArray::new(end.values().iter().map(|e| e - 1).collect(), nulls);
        Ok(ColumnarValue::Array(Arc::new(last)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn tumbling_windows_floor_the_time() {
        let spec = WindowSpec::parse("5 minutes", None, None).unwrap();
        assert_eq!(spec.starts(7 * MIN).collect::<Vec<_>>(), [5 * MIN]);
        assert_eq!(spec.starts(5 * MIN).collect::<Vec<_>>(), [5 * MIN], "the start is inclusive");
        assert_eq!(spec.starts(-1).collect::<Vec<_>>(), [-5 * MIN], "before the epoch too");
    }

    #[test]
    fn sliding_windows_hold_every_window_containing_the_time() {
        let spec = WindowSpec::parse("10 minutes", Some("5 minutes"), None).unwrap();
        assert_eq!(spec.starts(7 * MIN).collect::<Vec<_>>(), [0, 5 * MIN]);
        let uneven = WindowSpec::parse("7 minutes", Some("5 minutes"), None).unwrap();
        assert_eq!(uneven.starts(6 * MIN).collect::<Vec<_>>(), [0, 5 * MIN]);
        assert_eq!(uneven.starts(8 * MIN).collect::<Vec<_>>(), [5 * MIN], "[0, 7) does not hold minute 8");
        let offset = WindowSpec::parse("5 minutes", None, Some("1 minute")).unwrap();
        assert_eq!(offset.starts(0).collect::<Vec<_>>(), [-4 * MIN]);
    }

    #[test]
    fn bad_specs_get_sparks_messages() {
        assert!(
            WindowSpec::parse("5 minutes", Some("10 minutes"), None)
                .unwrap_err()
                .contains("must be less than or equal")
        );
        assert!(WindowSpec::parse("0 seconds", None, None).unwrap_err().contains("greater than 0"));
        assert!(WindowSpec::parse("5 minuts", None, None).is_err());
    }
}
