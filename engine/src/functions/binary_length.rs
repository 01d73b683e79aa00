//! Spark's `length` and `octet_length`, which also measure BINARY values (in bytes), where
//! DataFusion's take only strings. For strings they are DataFusion's own (`length` counts
//! characters, `octet_length` UTF-8 bytes); other types are cast to a string first, as Spark
//! does.
//!
//! | call | result |
//! |---|---|
//! | `length(X'00FF10')`, `octet_length(X'00FF10')` | `3` |
//! | `length('héllo')` | `5` |
//! | `octet_length('héllo')` | `6` |

use std::sync::Arc;

use arrow::array::{AsArray, Int32Array};
use arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// `length` or `octet_length`: bytes for BINARY, DataFusion's function for the rest.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct BinaryLength {
    name: &'static str,
    strings: Arc<ScalarUDF>,
    signature: Signature,
}

impl BinaryLength {
    fn udf(name: &'static str, strings: Arc<ScalarUDF>) -> ScalarUDF {
        ScalarUDF::new_from_impl(BinaryLength {
            name,
            strings,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }

    /// Spark's `length` (characters of a string, bytes of a binary).
    pub(crate) fn length() -> ScalarUDF {
        Self::udf("length", datafusion::functions::unicode::character_length())
    }

    /// Spark's `octet_length` (bytes of either).
    pub(crate) fn octet_length() -> ScalarUDF {
        Self::udf("octet_length", datafusion::functions::string::octet_length())
    }
}

fn is_binary(t: &DataType) -> bool {
    matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_))
}

impl ScalarUDFImpl for BinaryLength {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        match arg_types {
            [t] if is_binary(t) => Ok(vec![DataType::Binary]),
            [t @ (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)] => Ok(vec![t.clone()]),
            [_] => Ok(vec![DataType::Utf8]),
            _ => datafusion::common::plan_err!("{} takes one argument, got {}", self.name, arg_types.len()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types {
            [t] if is_binary(t) => Ok(DataType::Int32),
            _ => self.strings.return_type(arg_types),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !args.args.first().is_some_and(|a| is_binary(&a.data_type())) {
            return self.strings.invoke_with_args(args);
        }
        let values = args.args[0].to_array(args.number_rows)?;
        let values = arrow::compute::cast(&values, &DataType::Binary)?;
        let bytes = values.as_binary::<i32>();
        let lengths: Int32Array = bytes.iter().map(|v| v.map(|v| v.len() as i32)).collect();
        Ok(ColumnarValue::Array(Arc::new(lengths)))
    }
}
