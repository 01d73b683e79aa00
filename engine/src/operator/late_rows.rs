//! Late rows as data (Brooklet's; Spark only counts them): every row a stateful operator drops
//! because the watermark passed it can go to a side output, saying which operator dropped it,
//! why, and by which watermark.
//!
//! | column | what it holds |
//! |---|---|
//! | `batch_id` | the batch that dropped the row |
//! | `operator` | the operator, named as in progress (`stateStoreSave`, `dedupe`, ...) |
//! | `reason` | `event time <= watermark`, `window end <= watermark` or `session end <= watermark` |
//! | `time` | the time that was judged late: the row's event time, window end or session end |
//! | `watermark` | the watermark it was judged by (the previous batch's, `W_{N-1}`) |
//! | `row` | the row as the operator received it, as a JSON object |
//!
//! A row that falls in several windows (sliding windows) appears once per window it was too
//! late for. Progress counts what the operator drops after partial aggregation
//! (`numRowsDroppedByWatermark`, as Spark does); this output lists the input rows behind them.
//! The rows are JSON so that the output has one schema whatever the operators' inputs are.
//!
//! Turn it on with `DataStreamWriter::late_rows_table` or `late_rows_foreach_batch`.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use datafusion::common::ScalarValue;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, cast};
use datafusion::prelude::lit;

use crate::error::{Error, Result};

/// Why a row was late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    EventTime,
    WindowEnd,
    SessionEnd,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::EventTime => "event time <= watermark",
            Reason::WindowEnd => "window end <= watermark",
            Reason::SessionEnd => "session end <= watermark",
        }
    }
}

/// The schema of the late-rows output.
pub fn late_rows_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let time = DataType::Timestamp(TimeUnit::Microsecond, None);
        Arc::new(Schema::new(vec![
            Field::new("batch_id", DataType::Int64, false),
            Field::new("operator", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("time", time.clone(), false),
            Field::new("watermark", time, false),
            Field::new("row", DataType::Utf8, false),
        ]))
    });
    SCHEMA.clone()
}

/// The late rows one operator dropped in the current batch, before the batch id is stamped.
#[derive(Debug, Default)]
pub(crate) struct LateRows(Vec<RecordBatch>);

impl LateRows {
    /// Records `rows`, dropped by `operator` because `times` (microseconds, one per row) are at
    /// or before `watermark_us`.
    pub(crate) fn record(
        &mut self,
        operator: &str,
        reason: Reason,
        watermark_us: i64,
        times: &[i64],
        rows: &RecordBatch,
    ) -> Result<()> {
        let n = rows.num_rows();
        if n == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![0; n])),
            Arc::new(StringArray::from(vec![operator; n])),
            Arc::new(StringArray::from(vec![reason.as_str(); n])),
            Arc::new(TimestampMicrosecondArray::from(times.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(vec![watermark_us; n])),
            Arc::new(StringArray::from(json_lines(rows)?)),
        ];
        self.0.push(RecordBatch::try_new(late_rows_schema(), columns)?);
        Ok(())
    }

    /// Takes the rows recorded since the last call, stamped with `batch_id`.
    pub(crate) fn take(&mut self, batch_id: u64) -> Result<Vec<RecordBatch>> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|b| {
                let mut columns = b.columns().to_vec();
                columns[0] = Arc::new(Int64Array::from(vec![batch_id as i64; b.num_rows()]));
                Ok(RecordBatch::try_new(b.schema(), columns)?)
            })
            .collect()
    }
}

/// How to find the input rows an aggregation keyed on event time drops as late: its input
/// rows, filtered by the time it judges (`time <= W_{N-1}`). Run only in a batch that dropped
/// rows, over the rows the operator received (nothing upstream runs again).
#[derive(Debug, Clone)]
pub(crate) struct LateRowsPlan {
    pub input: LogicalPlan,
    /// The judged time: the row's window end or event time.
    pub time: Expr,
    pub reason: Reason,
}

impl LateRowsPlan {
    /// For an aggregation whose key holds event time (a window, or the event-time column).
    pub(crate) fn of(agg: &Aggregate) -> Option<LateRowsPlan> {
        let keys = agg.group_expr.len();
        let fields = agg.schema.fields();
        let input = agg.input.as_ref().clone();
        let i = (0..keys).find(|&i| crate::plan::watermark::delay_of(&fields[i]).is_some())?;
        let key = agg.group_expr[i].clone().unalias();
        match fields[i].data_type() {
            DataType::Struct(_) => Some(LateRowsPlan { input, time: get_field(key, "end"), reason: Reason::WindowEnd }),
            DataType::Timestamp(_, _) => Some(LateRowsPlan { input, time: key, reason: Reason::EventTime }),
            _ => None,
        }
    }

    /// The plan of this batch's late rows: the input's own columns and the judged time, last.
    pub(crate) fn late_by(&self, watermark_us: i64) -> datafusion::error::Result<LogicalPlan> {
        let time = cast(self.time.clone(), DataType::Timestamp(TimeUnit::Microsecond, None));
        let mut columns: Vec<Expr> = self
            .input
            .schema()
            .columns()
            .into_iter()
            .filter(|c| !c.name.starts_with("__brooklet"))
            .map(Expr::Column)
            .collect();
        columns.push(time.clone().alias(LATE_TIME));
        LogicalPlanBuilder::from(self.input.clone())
            .filter(time.lt_eq(lit(ScalarValue::TimestampMicrosecond(Some(watermark_us), None))))?
            .project(columns)?
            .build()
    }
}

/// The column [`LateRowsPlan::late_by`] puts the judged time in.
const LATE_TIME: &str = "__brooklet_late_time";

/// Each row of `rows` as a JSON object.
fn json_lines(rows: &RecordBatch) -> Result<Vec<String>> {
    let mut buffer = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut buffer);
    writer.write(rows)?;
    writer.finish()?;
    let text = String::from_utf8(buffer).map_err(|e| Error::Internal(format!("late row JSON: {e}")))?;
    // JSON escapes newlines inside strings, so each line is one row.
    Ok(text.lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_json_objects_stamped_with_the_batch() {
        let rows = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(vec![Some("a\nb"), None])) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ])
        .unwrap();
        let mut late = LateRows::default();
        late.record("dedupe", Reason::EventTime, 5, &[4, 5], &rows).unwrap();
        let out = late.take(7).unwrap();
        let table = arrow::util::pretty::pretty_format_batches(&out).unwrap().to_string();
        assert!(table.contains(r#"{"id":"a\nb","n":1}"#), "{table}");
        assert!(table.contains(r#"{"n":2}"#), "{table}");
        assert!(
            table.contains("| 7        | dedupe   | event time <= watermark | 1970-01-01T00:00:00.000004 |"),
            "{table}"
        );
        assert!(late.take(8).unwrap().is_empty(), "taken once");
    }
}
