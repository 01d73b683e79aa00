//! A join of two streams, planned as Spark plans its `StreamingSymmetricHashJoinExec`
//! (semantics appendix, §8): which conjuncts are the equi-join keys, which filter one side
//! before it is stored, which are checked on each joined pair, and how each side's state is
//! cleaned up by the watermark.
//!
//! ```text
//!   clickAdId = impressionAdId                                   keys
//!   AND clickTime >= impressionTime                              both sides: checked per pair
//!   AND clickTime <= impressionTime + interval 1 hour            and solved for state watermarks
//!
//!   impressions kept while  impressionTime > W - 1 hour - 1 ms   (from clickTime <= impressionTime + 1h)
//!   clicks kept while       clickTime      > W - 1 ms            (from clickTime >= impressionTime)
//! ```
//!
//! A side's state watermark is solved from each range conjunct that bounds its time from below
//! by the other side's time, with the other side's time replaced by the watermark `W`; the
//! least of them counts, one millisecond less for an inclusive bound. With the watermark
//! column among the join keys (a window equality), rows leave when their key time is at or
//! before `W`. A side without either never leaves state.

use datafusion::common::{Column, DFSchemaRef, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, JoinType, Operator};

use super::watermark::delay_of;
use crate::error::{Error, Result};

/// How one side's kept rows leave state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cleanup {
    /// Never: nothing bounds the side's time.
    Never,
    /// When the key at `ordinal` (a timestamp, or a window's end) is at or before `W`.
    Key { ordinal: usize },
    /// When the side's watermark column `column` is at or before the least of `bounds`.
    Value { column: usize, bounds: Vec<Bound> },
}

/// One solved range conjunct: the state watermark is `(w_sign * W * 1000 + constant_us) / 1000
/// - inclusive` milliseconds (Spark's arithmetic, truncating).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    w_sign: i64,
    constant_us: i64,
    inclusive: i64,
}

impl Cleanup {
    /// The state watermark in milliseconds for the event-time watermark `w_ms`.
    pub(crate) fn state_watermark_ms(&self, w_ms: i64) -> Option<i64> {
        match self {
            Cleanup::Never => None,
            Cleanup::Key { .. } => Some(w_ms),
            Cleanup::Value { bounds, .. } => {
                bounds.iter().map(|b| (b.w_sign * w_ms * 1_000 + b.constant_us) / 1_000 - b.inclusive).min()
            }
        }
    }
}

/// Everything the join operator needs, over each side's input schema.
#[derive(Debug, Clone)]
pub(crate) struct StreamJoinSpec {
    pub join_type: JoinType,
    pub left_schema: DFSchemaRef,
    pub right_schema: DFSchemaRef,
    pub left_keys: Vec<Expr>,
    pub right_keys: Vec<Expr>,
    /// Conjuncts over one side only: a row failing them can never match and is not kept.
    pub left_filter: Vec<Expr>,
    pub right_filter: Vec<Expr>,
    /// Conjuncts over both sides, checked on each joined pair.
    pub pair_filter: Vec<Expr>,
    /// Each side's watermark column, for its late rows.
    pub left_time: Option<usize>,
    pub right_time: Option<usize>,
    pub left_cleanup: Cleanup,
    pub right_cleanup: Cleanup,
    /// The join's output: the left columns, then the right ones (none in a semi join).
    pub output_schema: DFSchemaRef,
}

impl StreamJoinSpec {
    /// Whether the side is kept whole in the output (padded with nulls when unmatched).
    pub(crate) fn preserves_left(&self) -> bool {
        matches!(self.join_type, JoinType::Left | JoinType::Full)
    }

    pub(crate) fn preserves_right(&self) -> bool {
        matches!(self.join_type, JoinType::Right | JoinType::Full)
    }
}

fn columns_of(expr: &Expr) -> Vec<Column> {
    expr.column_refs().into_iter().cloned().collect()
}

fn only_in(expr: &Expr, schema: &DFSchemaRef) -> bool {
    let columns = columns_of(expr);
    !columns.is_empty() && columns.iter().all(|c| schema.has_column(c))
}

/// The watermark column of a side's input (Spark's `findEventTimeColumn`).
fn event_time(schema: &DFSchemaRef) -> Option<usize> {
    schema.fields().iter().position(|f| delay_of(f).is_some())
}

/// Spark's refusal of a side with two watermarked columns (a window and its time column):
/// which one its late rows are judged by would be ambiguous.
fn one_event_time(schema: &DFSchemaRef) -> Result<()> {
    let columns: Vec<&str> =
        schema.fields().iter().filter(|f| delay_of(f).is_some()).map(|f| f.name().as_str()).collect();
    if columns.len() > 1 {
        return Err(Error::Analysis(format!(
            "More than one event time columns are available. Please ensure there is at most one event time column per stream. event time columns: ({})",
            columns.join(",")
        )));
    }
    Ok(())
}

/// Plans `join`, or says why Spark would refuse it.
pub(crate) fn plan(join: &Join) -> Result<StreamJoinSpec> {
    let (left_schema, right_schema) = (join.left.schema().clone(), join.right.schema().clone());
    one_event_time(&left_schema)?;
    one_event_time(&right_schema)?;
    let kind = join.join_type;
    let name = match kind {
        JoinType::Inner => "Inner",
        JoinType::Left => "LeftOuter",
        JoinType::Right => "RightOuter",
        JoinType::Full => "FullOuter",
        JoinType::LeftSemi => "LeftSemi",
        JoinType::LeftAnti => {
            return Err(Error::Analysis(
                "LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported".into(),
            ));
        }
        _ => return Err(Error::Analysis(format!("{kind} joins between two streams are not supported"))),
    };
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    for (l, r) in &join.on {
        left_keys.push(l.clone());
        right_keys.push(r.clone());
    }
    let mut conjuncts: Vec<Expr> = Vec::new();
    if let Some(filter) = &join.filter {
        conjuncts.extend(split_conjunction(filter).into_iter().cloned());
    }
    let (mut left_filter, mut right_filter, mut pair_filter) = (Vec::new(), Vec::new(), Vec::new());
    for c in &conjuncts {
        if let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = c {
            if only_in(left, &left_schema) && only_in(right, &right_schema) {
                left_keys.push(left.as_ref().clone());
                right_keys.push(right.as_ref().clone());
                continue;
            }
            if only_in(left, &right_schema) && only_in(right, &left_schema) {
                left_keys.push(right.as_ref().clone());
                right_keys.push(left.as_ref().clone());
                continue;
            }
        }
        if only_in(c, &left_schema) {
            left_filter.push(c.clone());
        } else if only_in(c, &right_schema) {
            right_filter.push(c.clone());
        } else {
            pair_filter.push(c.clone());
        }
    }
    if left_keys.is_empty() {
        return Err(Error::Analysis("Stream-stream join without equality predicate is not supported".into()));
    }
    // A side that is not kept whole drops rows whose key is null, as Spark's optimizer infers
    // `isnotnull` filters for it; a preserved side keeps them (and in a full outer join, null
    // keys of the two sides match, as they do in Spark's join state).
    let not_null = |keys: &[Expr]| keys.iter().map(|k| k.clone().is_not_null()).collect::<Vec<_>>();
    if !matches!(kind, JoinType::Right | JoinType::Full) {
        right_filter.extend(not_null(&right_keys));
    }
    if !matches!(kind, JoinType::Left | JoinType::Full) {
        left_filter.extend(not_null(&left_keys));
    }

    // State cleanup (Spark's `getStateWatermarkPredicates`).
    let key_with_watermark = left_keys
        .iter()
        .position(|k| key_has_watermark(k, &left_schema))
        .or_else(|| right_keys.iter().position(|k| key_has_watermark(k, &right_schema)));
    let (left_time, right_time) = (event_time(&left_schema), event_time(&right_schema));
    let left_bounds = solve_all(&conjuncts, &left_schema, &right_schema);
    let right_bounds = solve_all(&conjuncts, &right_schema, &left_schema);
    let cleanup = |time: Option<usize>, bounds: &Vec<Bound>| match (key_with_watermark, time) {
        (Some(ordinal), _) => Cleanup::Key { ordinal },
        (None, Some(column)) if !bounds.is_empty() => Cleanup::Value { column, bounds: bounds.clone() },
        _ => Cleanup::Never,
    };
    let (left_cleanup, right_cleanup) = (cleanup(left_time, &left_bounds), cleanup(right_time, &right_bounds));

    // Spark's `checkForStreamStreamJoinWatermark`: an outer side must be able to leave state.
    let in_keys = key_with_watermark.is_some();
    let ok = match kind {
        JoinType::Left | JoinType::LeftSemi => in_keys || !left_bounds.is_empty(),
        JoinType::Right => in_keys || !right_bounds.is_empty(),
        JoinType::Full => in_keys || !left_bounds.is_empty() || !right_bounds.is_empty(),
        _ => true,
    };
    if !ok {
        return Err(Error::Analysis(format!(
            "Stream-stream {name} join between two streaming DataFrame/Datasets is not supported without a watermark in the join keys, or a watermark on the nullable side and an appropriate range condition"
        )));
    }
    Ok(StreamJoinSpec {
        join_type: kind,
        left_schema,
        right_schema,
        left_keys,
        right_keys,
        left_filter,
        right_filter,
        pair_filter,
        left_time,
        right_time,
        left_cleanup,
        right_cleanup,
        output_schema: join.schema.clone(),
    })
}

/// Whether a join key is a column carrying the watermark (a timestamp, or a window of one).
fn key_has_watermark(key: &Expr, schema: &DFSchemaRef) -> bool {
    match key {
        Expr::Column(c) => schema.field_with_name(c.relation.as_ref(), &c.name).is_ok_and(|f| delay_of(f).is_some()),
        _ => false,
    }
}

/// The bounds every conjunct gives the state of side `find` (the other side `other` holding
/// the watermark): Spark's `getStateValueWatermark`. Empty when the other side has no
/// watermark column or no conjunct bounds `find`'s time from below.
fn solve_all(conjuncts: &[Expr], find: &DFSchemaRef, other: &DFSchemaRef) -> Vec<Bound> {
    if event_time(other).is_none() {
        return Vec::new();
    }
    let mut bounds = Vec::new();
    for c in conjuncts {
        let pairs: Vec<(&Expr, &Expr, i64)> = match c {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::Lt => vec![(left, right, 0)],
                Operator::LtEq => vec![(left, right, 1)],
                Operator::Gt => vec![(right, left, 0)],
                Operator::GtEq => vec![(right, left, 1)],
                _ => vec![],
            },
            // `a BETWEEN b AND c` is `a >= b AND a <= c`.
            Expr::Between(b) if !b.negated => vec![(&*b.low, &*b.expr, 1), (&*b.expr, &*b.high, 1)],
            _ => vec![],
        };
        for (l, r, inclusive) in pairs {
            if let Some(b) = solve(l, r, find, other) {
                bounds.push(Bound { inclusive, ..b });
            }
        }
    }
    bounds
}

/// One term of `l - r`: a column with its sign, or a constant in microseconds.
enum Term {
    Column(Column, i64),
    Constant(i64),
}

fn terms(expr: &Expr, sign: i64, out: &mut Vec<Term>) -> Option<()> {
    match expr {
        Expr::Column(c) => out.push(Term::Column(c.clone(), sign)),
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus, right }) => {
            terms(left, sign, out)?;
            terms(right, sign, out)?;
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Minus, right }) => {
            terms(left, sign, out)?;
            terms(right, -sign, out)?;
        }
        Expr::Negative(e) => terms(e, -sign, out)?,
        Expr::Cast(c) => terms(&c.expr, sign, out)?,
        Expr::TryCast(c) => terms(&c.expr, sign, out)?,
        Expr::Alias(a) => terms(&a.expr, sign, out)?,
        Expr::Literal(v, _) => out.push(Term::Constant(sign * interval_us(v)?)),
        _ => return None,
    }
    Some(())
}

/// An interval literal in microseconds; `None` for months and years, which have no fixed
/// length (Spark refuses them for state watermarks too).
fn interval_us(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i.days as i64 * 86_400_000_000 + i.nanoseconds / 1_000)
        }
        ScalarValue::IntervalDayTime(Some(i)) => Some(i.days as i64 * 86_400_000_000 + i.milliseconds as i64 * 1_000),
        ScalarValue::DurationMicrosecond(Some(us)) => Some(*us),
        ScalarValue::DurationMillisecond(Some(ms)) => Some(ms * 1_000),
        ScalarValue::DurationSecond(Some(s)) => Some(s * 1_000_000),
        _ => None,
    }
}

/// Solves `l < r` for the time of side `find`: the canonical form `l - r < 0` must hold
/// `find`'s one timestamp column negated, and besides it only the other side's watermark
/// column and constants.
fn solve(l: &Expr, r: &Expr, find: &DFSchemaRef, other: &DFSchemaRef) -> Option<Bound> {
    let mut all = Vec::new();
    terms(l, 1, &mut all)?;
    terms(r, -1, &mut all)?;
    let (mut found, mut w_sign, mut constant_us) = (0, 0, 0);
    for term in all {
        match term {
            Term::Constant(us) => constant_us += us,
            Term::Column(c, sign) if find.has_column(&c) => {
                let is_time = find
                    .field_with_name(c.relation.as_ref(), &c.name)
                    .is_ok_and(|f| matches!(f.data_type(), arrow::datatypes::DataType::Timestamp(_, _)));
                if !is_time || sign != -1 {
                    return None;
                }
                found += 1;
            }
            Term::Column(c, sign) if other.has_column(&c) => {
                if other.field_with_name(c.relation.as_ref(), &c.name).ok().and_then(|f| delay_of(f)).is_none()
                    || w_sign != 0
                {
                    return None;
                }
                w_sign = sign;
            }
            Term::Column(..) => return None,
        }
    }
    (found == 1).then_some(Bound { w_sign, constant_us, inclusive: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_solve_as_sparks_do() {
        // clickTime <= impressionTime + 1h, for impressions: W - 1h, minus 1 ms (inclusive).
        let b = Bound { w_sign: 1, constant_us: -3_600_000_000, inclusive: 1 };
        let c = Cleanup::Value { column: 0, bounds: vec![b] };
        assert_eq!(c.state_watermark_ms(10 * 3_600_000), Some(9 * 3_600_000 - 1));
        assert_eq!(Cleanup::Key { ordinal: 0 }.state_watermark_ms(5), Some(5));
        assert_eq!(Cleanup::Never.state_watermark_ms(5), None);
    }
}
