//! Spark keeps a column's watermark mark only where the column itself goes: a reference to it,
//! or an alias of one (and the windows made of it, which `window()` marks). DataFusion's casts
//! carry a field's metadata over, so `cast(timestamp AS STRING)` would stay an event-time
//! column; the streaming planner wraps such a cast in `unmarked(..)`, which passes its value
//! through and drops the mark (semantics appendix, §1).

use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::DELAY_KEY;

/// The function's name in plans.
pub(crate) const NAME: &str = "unmarked";

/// `unmarked(x)`: `x`, without the watermark mark.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Unmarked {
    signature: Signature,
}

impl Unmarked {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Unmarked { signature: Signature::any(1, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for Unmarked {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(arg_types[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let field = &args.arg_fields[0];
        let mut metadata = field.metadata().clone();
        metadata.remove(DELAY_KEY);
        Ok(Arc::new(field.as_ref().clone().with_metadata(metadata)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}
