//! `spark_partition_id()`: the number of the input partition a row was read in.
//!
//! The function has no value of its own: a row's partition is known only where a plan runs
//! partition by partition, so the physical rule in `plan/partition_id.rs` puts each
//! partition's number in its place. Evaluated anywhere that rule could not reach (inside an
//! aggregate, above a shuffle), it fails with a message saying where it can be used.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::exec_err;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function's name, in SQL and in plans.
pub(crate) const NAME: &str = "spark_partition_id";

/// `spark_partition_id()`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SparkPartitionId {
    signature: Signature,
}

impl SparkPartitionId {
    pub(crate) fn udf() -> ScalarUDF {
        // Volatile: the same call has a different value in every partition, so it is never
        // folded into a constant or moved past an operator.
        ScalarUDF::new_from_impl(SparkPartitionId { signature: Signature::exact(vec![], Volatility::Volatile) })
    }
}

impl ScalarUDFImpl for SparkPartitionId {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    /// Never null, as in Spark: the number put in its place is a non-null literal.
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(NAME, DataType::Int32, false)))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        exec_err!("{WHERE_IT_WORKS}")
    }
}

/// Where the call can be answered, for the error where it cannot.
pub(crate) const WHERE_IT_WORKS: &str = "spark_partition_id() is answered only over a source's own partitions: \
     in a select or a filter reached from the source through selects, filters and watermarks, \
     not above an aggregation, a deduplication, a join, a sort, a limit or a union, where Spark \
     would number the partitions of a shuffle";
