//! A late-row filter whose watermark the micro-batch loop sets before each batch, for operators
//! that judge lateness per *input row* before aggregating (session windows, SEMANTICS §3).
//!
//! ```text
//!   Filter: __brooklet_not_late(__brooklet_session['end'])     true unless end <= W_{N-1}
//! ```
//!
//! The predicate is a scalar function sharing a [`LateCell`] with the operator: the operator
//! sets the watermark, the function counts the rows it rejects.
//!
//! [`LateRowsPlan`] finds the rows an aggregation dropped, for the late-rows output
//! (`operator/late_rows.rs`).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{
    Aggregate, ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility, cast,
};
use datafusion::prelude::{col, lit};

use super::windows::SESSION_COLUMN;
use crate::operator::late_rows::Reason;

/// The watermark rows are judged by, and how many it rejected, in the current batch.
#[derive(Debug, Default)]
pub(crate) struct LateRows {
    /// Rows at or before this time (microseconds) are late; none when `None`.
    pub until_us: Option<i64>,
    pub dropped: u64,
}

pub(crate) type LateCell = Arc<Mutex<LateRows>>;

#[derive(Debug)]
struct NotLateFunc {
    signature: Signature,
    cell: LateCell,
}

impl PartialEq for NotLateFunc {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl Eq for NotLateFunc {}

impl Hash for NotLateFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.cell).hash(state);
    }
}

impl ScalarUDFImpl for NotLateFunc {
    fn name(&self) -> &str {
        "__brooklet_not_late"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let times = args.args[0].to_array(args.number_rows)?;
        let times = arrow::compute::cast(&times, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let mut cell = self.cell.lock().map_err(|_| DataFusionError::Internal("late rows lock poisoned".into()))?;
        let until = cell.until_us;
        let keep: BooleanArray = times
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|t| Some(!matches!((t, until), (Some(t), Some(w)) if t <= w)))
            .collect();
        cell.dropped += keep.false_count() as u64;
        Ok(ColumnarValue::Array(Arc::new(keep)))
    }
}

/// A predicate over `time` that is false for late rows, and the cell that drives it.
pub(crate) fn not_late(time: Expr) -> (Expr, LateCell) {
    let cell = LateCell::default();
    let func = NotLateFunc { signature: Signature::any(1, Volatility::Volatile), cell: cell.clone() };
    (Arc::new(ScalarUDF::new_from_impl(func)).call(vec![time]), cell)
}

/// How to find the input rows a streaming aggregation drops as late: its input, filtered by
/// the time it judges (`time <= W_{N-1}`). Run only in a batch that dropped rows.
#[derive(Debug, Clone)]
pub(crate) struct LateRowsPlan {
    pub input: LogicalPlan,
    /// The judged time: the row's session end, window end or event time.
    pub time: Expr,
    pub reason: Reason,
}

impl LateRowsPlan {
    /// For an aggregation that judges lateness (by a session window, or a key holding event
    /// time), before the session late-row filter is added to its input.
    pub(crate) fn of(agg: &Aggregate) -> Option<LateRowsPlan> {
        let keys = agg.group_expr.len();
        let fields = agg.schema.fields();
        let input = agg.input.as_ref().clone();
        if fields.iter().take(keys).any(|f| super::is_session(f)) {
            let time = get_field(col(SESSION_COLUMN), "end");
            return Some(LateRowsPlan { input, time, reason: Reason::SessionEnd });
        }
        let i = (0..keys).find(|&i| super::watermark::delay_of(&fields[i]).is_some())?;
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
pub(crate) const LATE_TIME: &str = "__brooklet_late_time";
