//! [`DataFrame::join`]: Spark's joins, by column names or by a condition, with Spark's join type
//! names. On streams, what a join may combine is checked at `start()` (`plan/`, Spark's
//! messages); a stream joined with a static DataFrame reads the static side again in every
//! batch.
//!
//! ```text
//! events.join(users, "user_id", "left")           one user_id column, then the rest of each side
//! events.join(users, ["a", "b"], "inner")         several key columns
//! e.join(u, "e.user_id = u.id AND u.active", "left_semi")    a condition: both sides' columns
//! ```

use datafusion::common::{Column, JoinType};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use datafusion::prelude::coalesce;

use crate::dataframe::DataFrame;
use crate::error::{Error, Result};

/// What a join matches on.
#[derive(Debug, Clone)]
pub enum JoinOn {
    /// Columns both sides have, equal (Spark's `on="id"` or `on=["a", "b"]`): the result has
    /// one column per key, first.
    Columns(Vec<String>),
    /// A condition over both sides' columns (a SQL string or an `Expr`); the result has every
    /// column of both sides.
    Condition(Condition),
}

/// A join condition, as a SQL string or an expression.
#[derive(Debug, Clone)]
pub enum Condition {
    /// A SQL boolean expression, resolved against both sides' columns.
    Sql(String),
    /// An expression built with `brooklet::functions`.
    Expr(Expr),
}

/// A single identifier names a key column; anything else is a SQL condition.
impl From<&str> for JoinOn {
    fn from(on: &str) -> Self {
        let identifier = !on.is_empty() && on.chars().all(|c| c.is_alphanumeric() || c == '_');
        if identifier { JoinOn::Columns(vec![on.to_string()]) } else { JoinOn::Condition(Condition::Sql(on.into())) }
    }
}

impl<const N: usize> From<[&str; N]> for JoinOn {
    fn from(on: [&str; N]) -> Self {
        JoinOn::Columns(on.iter().map(|c| c.to_string()).collect())
    }
}

impl From<&[&str]> for JoinOn {
    fn from(on: &[&str]) -> Self {
        JoinOn::Columns(on.iter().map(|c| c.to_string()).collect())
    }
}

impl From<Vec<String>> for JoinOn {
    fn from(on: Vec<String>) -> Self {
        JoinOn::Columns(on)
    }
}

impl From<Expr> for JoinOn {
    fn from(on: Expr) -> Self {
        JoinOn::Condition(Condition::Expr(on))
    }
}

/// Spark's join type names (`JoinType.apply`).
fn join_type(how: &str) -> Result<JoinType> {
    Ok(match how.to_ascii_lowercase().replace('_', "").as_str() {
        "inner" => JoinType::Inner,
        "left" | "leftouter" => JoinType::Left,
        "right" | "rightouter" => JoinType::Right,
        "full" | "fullouter" | "outer" => JoinType::Full,
        "leftsemi" | "semi" => JoinType::LeftSemi,
        "leftanti" | "anti" => JoinType::LeftAnti,
        _ => {
            return Err(Error::Analysis(format!(
                "Unsupported join type '{how}'. Supported join types include: 'inner', 'outer', 'full', 'fullouter', \
                 'full_outer', 'leftouter', 'left', 'left_outer', 'rightouter', 'right', 'right_outer', 'leftsemi', \
                 'left_semi', 'semi', 'leftanti', 'left_anti', 'anti', 'cross'"
            )));
        }
    })
}

impl DataFrame {
    /// Spark's `join(other, on, how)`. `how` is one of Spark's names: `inner`, `left`
    /// (`left_outer`, `leftouter`), `right` (`right_outer`), `full` (`outer`, `full_outer`),
    /// `left_semi` (`semi`), `left_anti` (`anti`), or `cross` (with no condition: see
    /// [`DataFrame::cross_join`]). Keys that are null never match.
    ///
    /// Joined on column names, the result has each key once (for a full outer join, the
    /// non-null side's), then the other columns of the left side, then of the right (none of
    /// the right for semi and anti joins), as in Spark. Joined on a condition, it has every
    /// column of both sides; name the sides with [`DataFrame::alias`] to tell them apart.
    pub fn join(self, other: DataFrame, on: impl Into<JoinOn>, how: &str) -> Result<DataFrame> {
        if how.eq_ignore_ascii_case("cross") {
            return match on.into() {
                JoinOn::Columns(keys) if keys.is_empty() => self.cross_join(other),
                on => self.join(other, on, "inner"),
            };
        }
        let kind = join_type(how)?;
        match on.into() {
            JoinOn::Columns(keys) => self.join_on_columns(other, &keys, kind),
            JoinOn::Condition(condition) => {
                let session = self.session.clone();
                let (state, left) = self.df.into_parts();
                let right = other.df.logical_plan().clone();
                let joined = LogicalPlanBuilder::from(left.clone()).cross_join(right.clone())?.build()?;
                let condition = match condition {
                    Condition::Expr(e) => e,
                    Condition::Sql(sql) => {
                        datafusion::dataframe::DataFrame::new(state.clone(), joined).parse_sql_expr(&sql)?
                    }
                };
                let plan = LogicalPlanBuilder::from(left).join_on(right, kind, [condition])?.build()?;
                DataFrame::wrap(session, datafusion::dataframe::DataFrame::new(state, plan))
            }
        }
    }

    /// Every row of this DataFrame with every row of `other` (Spark's `crossJoin`).
    pub fn cross_join(self, other: DataFrame) -> Result<DataFrame> {
        let session = self.session.clone();
        let (state, left) = self.df.into_parts();
        let plan = LogicalPlanBuilder::from(left).cross_join(other.df.logical_plan().clone())?.build()?;
        DataFrame::wrap(session, datafusion::dataframe::DataFrame::new(state, plan))
    }

    /// Names this DataFrame `alias`, so columns can be told apart as `alias.column` (Spark's
    /// `alias`).
    pub fn alias(self, alias: &str) -> Result<DataFrame> {
        let session = self.session.clone();
        let df = self.df.alias(alias)?;
        DataFrame::wrap(session, df)
    }

    fn join_on_columns(self, other: DataFrame, keys: &[String], kind: JoinType) -> Result<DataFrame> {
        let session = self.session.clone();
        // Each side under a name of its own, so the key columns of the two sides stay apart.
        let left = side(self, "__left")?;
        let right = side(other, "__right")?;
        let (l, r) = (left.df.schema().clone(), right.df.schema().clone());
        for key in keys {
            for (schema, side) in [(&l, "left"), (&r, "right")] {
                if schema.qualified_field_with_unqualified_name(key).is_err() {
                    return Err(Error::Analysis(format!(
                        "USING column `{key}` cannot be resolved on the {side} side of the join. The {side} side's \
                         columns: [{}]",
                        schema.fields().iter().map(|f| format!("`{}`", f.name())).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        let qualified = |schema: &datafusion::common::DFSchema, name: &str| -> Result<Expr> {
            let (q, f) = schema.qualified_field_with_unqualified_name(name)?;
            Ok(Expr::Column(Column::new(q.cloned(), f.name())))
        };
        let key_names: Vec<&str> = keys.iter().map(String::as_str).collect();
        let left_keys: Vec<Expr> = keys.iter().map(|k| qualified(&l, k)).collect::<Result<_>>()?;
        let right_keys: Vec<Expr> = keys.iter().map(|k| qualified(&r, k)).collect::<Result<_>>()?;
        let (state, left_plan) = left.df.into_parts();
        let on: Vec<Expr> = left_keys.iter().zip(&right_keys).map(|(a, b)| a.clone().eq(b.clone())).collect();
        let on = on.into_iter().reduce(Expr::and).ok_or_else(|| Error::Analysis("join: no key columns".into()))?;
        let plan = LogicalPlanBuilder::from(left_plan).join_on(right.df.logical_plan().clone(), kind, [on])?;
        // Spark's USING output: the keys once, then each side's other columns.
        let mut columns: Vec<Expr> = keys
            .iter()
            .zip(left_keys.iter().zip(&right_keys))
            .map(|(name, (a, b))| {
                let key = match kind {
                    JoinType::Right => b.clone(),
                    JoinType::Full => coalesce(vec![a.clone(), b.clone()]),
                    _ => a.clone(),
                };
                key.alias(name)
            })
            .collect();
        let rest = |schema: &datafusion::common::DFSchema| -> Vec<Expr> {
            schema
                .iter()
                .filter(|(_, f)| !key_names.contains(&f.name().as_str()))
                .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())).alias(f.name()))
                .collect()
        };
        columns.extend(rest(&l));
        if !matches!(kind, JoinType::LeftSemi | JoinType::LeftAnti) {
            columns.extend(rest(&r));
        }
        let plan = plan.project(columns)?.build()?;
        DataFrame::wrap(session, datafusion::dataframe::DataFrame::new(state, plan))
    }
}

/// `df` under the qualifier `name`, unless the user named it with [`DataFrame::alias`].
fn side(df: DataFrame, name: &str) -> Result<DataFrame> {
    if matches!(df.df.logical_plan(), datafusion::logical_expr::LogicalPlan::SubqueryAlias(_)) {
        return Ok(df);
    }
    df.alias(name)
}
