//! Stateful operators: one per file. Each folds a micro-batch's rows into versioned state and
//! emits rows according to the output mode.

pub(crate) mod aggregate;
pub(crate) mod dedup;
pub(crate) mod late_rows;
