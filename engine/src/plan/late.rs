//! A late-row filter whose watermark the micro-batch loop sets before each batch, for operators
//! that judge lateness per *input row* before aggregating (session windows, SEMANTICS §3).
//!
//! ```text
//!   Filter: __brooklet_not_late(__brooklet_session['end'])     true unless end <= W_{N-1}
//! ```
//!
//! The predicate is a scalar function sharing a [`LateCell`] with the operator: the operator
//! sets the watermark, the function counts the rows it rejects.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

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
