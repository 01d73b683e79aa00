//! A join of two streams: Spark's `symmetricHashJoin` (semantics appendix, §8). Each side
//! keeps its rows (`state/join_side.rs`) for the other side's later rows to match.
//!
//! One batch:
//!
//! ```text
//!   both sides: drop rows at or before W_{N-1} on their watermark column (late)
//!   right rows: match the left rows kept from earlier batches; keep them
//!   left rows:  match the right rows kept, this batch's included; keep them
//!               (so a pair whose rows arrive in one batch is found once)
//!   then each side drops the rows at or before its state watermark (from W_N); an outer
//!   join pads the unmatched ones with nulls and emits them
//! ```
//!
//! A left semi join emits a left row once, at its first match, and keeps it no longer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array, new_null_array};
use arrow::compute::{cast, filter_record_batch, take};
use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, JoinType};
use datafusion::physical_expr::PhysicalExpr;

use super::late_rows::{LateRows, Reason};
use super::{BatchWatermarks, OperatorContext, StatefulOperator};
use crate::error::{Error, Result};
use crate::plan::stream_join::{Cleanup, StreamJoinSpec};
use crate::progress::StateOperatorProgress;
use crate::state::join_side::JoinSide;

/// One side: how to read its rows, and what it keeps.
struct Side {
    schema: SchemaRef,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    time: Option<usize>,
    cleanup: Cleanup,
    preserved: bool,
    state: JoinSide,
}

/// Which side a batch of rows belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Which {
    Left,
    Right,
}

pub(crate) struct StreamJoin {
    join_type: JoinType,
    left: Side,
    right: Side,
    /// Conjuncts over both sides, on a joined (left ++ right) batch.
    pair_filter: Option<Arc<dyn PhysicalExpr>>,
    pair_schema: SchemaRef,
    output_schema: SchemaRef,
    updated: u64,
    removed: u64,
    dropped_late: u64,
    updates: Duration,
    removals: Duration,
    /// The rows dropped as late, when the query keeps them.
    late_rows: Option<LateRows>,
}

/// The conjunction of `exprs` over `schema`, coerced and planned as the session plans them.
fn compile(state: &SessionState, exprs: &[Expr], schema: &DFSchema) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let Some(all) = exprs.iter().cloned().reduce(Expr::and) else { return Ok(None) };
    Ok(Some(state.create_physical_expr(all, schema)?))
}

/// A timestamp (or a window's `end`) column in microseconds.
fn micros(column: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let column = match column.data_type() {
        DataType::Struct(_) => column
            .as_struct()
            .column_by_name("end")
            .cloned()
            .ok_or_else(|| Error::Internal("a join key with the watermark is a struct without `end`".into()))?,
        _ => column.clone(),
    };
    let us = cast(&column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(us.as_primitive::<TimestampMicrosecondType>().iter().collect())
}

impl StreamJoin {
    pub(crate) fn try_new(spec: &StreamJoinSpec, context: OperatorContext) -> Result<Self> {
        let output = &spec.output_schema;
        let state = context.runner.ctx.state();
        let side = |schema: &DFSchema,
                    keys: &[Expr],
                    filter: &[Expr],
                    time,
                    cleanup: &Cleanup,
                    preserved,
                    name|
         -> Result<Side> {
            let keys = keys
                .iter()
                .map(|k| state.create_physical_expr(k.clone(), schema))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let arrow_schema: SchemaRef = Arc::new(schema.as_arrow().clone());
            let key_fields: Vec<FieldRef> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    Ok(Arc::new(arrow::datatypes::Field::new(format!("k{i}"), k.data_type(&arrow_schema)?, true)))
                })
                .collect::<Result<_>>()?;
            let kept = JoinSide::try_new(&key_fields, arrow_schema.fields(), context.dir.join(name))?;
            let filter = compile(&state, filter, schema)?;
            Ok(Side { schema: arrow_schema, keys, filter, time, cleanup: cleanup.clone(), preserved, state: kept })
        };
        let left = side(
            &spec.left_schema,
            &spec.left_keys,
            &spec.left_filter,
            spec.left_time,
            &spec.left_cleanup,
            spec.preserves_left(),
            "left",
        )?;
        let right = side(
            &spec.right_schema,
            &spec.right_keys,
            &spec.right_filter,
            spec.right_time,
            &spec.right_cleanup,
            spec.preserves_right(),
            "right",
        )?;
        let pairs = spec.left_schema.join(&spec.right_schema)?;
        Ok(StreamJoin {
            join_type: spec.join_type,
            pair_filter: compile(&state, &spec.pair_filter, &pairs)?,
            pair_schema: Arc::new(pairs.as_arrow().clone()),
            output_schema: Arc::new(output.as_arrow().clone()),
            left,
            right,
            updated: 0,
            removed: 0,
            dropped_late: 0,
            updates: Duration::ZERO,
            removals: Duration::ZERO,
            late_rows: context.late_rows.then(LateRows::default),
        })
    }

    fn sides(&mut self, which: Which) -> (&mut Side, &mut Side) {
        match which {
            Which::Left => (&mut self.left, &mut self.right),
            Which::Right => (&mut self.right, &mut self.left),
        }
    }

    /// A left-then-right batch in the output's layout from the columns of each side (`None`:
    /// nulls, for an outer join's unmatched rows).
    fn output(&self, left: Option<Vec<ArrayRef>>, right: Option<Vec<ArrayRef>>, rows: usize) -> Result<RecordBatch> {
        let nulls = |schema: &SchemaRef| {
            schema.fields().iter().map(|f| new_null_array(f.data_type(), rows)).collect::<Vec<_>>()
        };
        let mut columns = left.unwrap_or_else(|| nulls(&self.left.schema));
        if self.join_type != JoinType::LeftSemi {
            columns.extend(right.unwrap_or_else(|| nulls(&self.right.schema)));
        }
        Ok(RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }

    /// Joins one side's new rows with the other side's kept rows, then keeps them.
    fn join_side(
        &mut self,
        which: Which,
        batch: &RecordBatch,
        w: BatchWatermarks,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let semi = self.join_type == JoinType::LeftSemi;
        let n = batch.num_rows();
        // Late rows: at or before W_{N-1} on the side's watermark column.
        let (this, _) = self.sides(which);
        let mut keep: Vec<bool> = vec![true; n];
        let mut late = Vec::new();
        if let Some(t) = this.time {
            for (r, time) in micros(batch.column(t))?.into_iter().enumerate() {
                if let Some(t) = time.filter(|&t| t <= w.late_ms * 1_000) {
                    keep[r] = false;
                    late.push((r as u32, t));
                }
            }
        }
        self.dropped_late += late.len() as u64;
        if let Some(buffer) = &mut self.late_rows
            && !late.is_empty()
        {
            let (rows, times): (Vec<u32>, Vec<i64>) = late.into_iter().unzip();
            let rows = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))?;
            buffer.record("symmetricHashJoin", Reason::EventTime, w.late_ms * 1_000, &times, &rows)?;
        }
        let (this, other) = self.sides(which);
        // Rows failing the side's own conjuncts can never match.
        let passes: Vec<bool> = match &this.filter {
            Some(f) => {
                let v = f.evaluate(batch)?.into_array(n)?;
                v.as_boolean().iter().map(|b| b == Some(true)).collect()
            }
            None => vec![true; n],
        };
        let key_columns = this
            .keys
            .iter()
            .map(|k| k.evaluate(batch)?.into_array(n))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let keys = this.state.keys(&key_columns)?;
        // Candidate pairs with the other side's kept rows.
        let (mut probe, mut kept) = (Vec::new(), Vec::new());
        for r in 0..n {
            if keep[r] && passes[r] {
                for &slot in other.state.rows_of(keys.row(r).data()) {
                    if semi && which == Which::Right && other.state.is_matched(slot) {
                        continue;
                    }
                    probe.push(r as u32);
                    kept.push(slot);
                }
            }
        }
        let probe_columns: Vec<ArrayRef> = {
            let idx = UInt32Array::from(probe.clone());
            batch.columns().iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<_, _>>()?
        };
        let kept_columns = other.state.columns(&kept)?;
        let (left_cols, right_cols) = match which {
            Which::Left => (probe_columns, kept_columns),
            Which::Right => (kept_columns, probe_columns),
        };
        let mut pair_columns = left_cols.clone();
        pair_columns.extend(right_cols.iter().cloned());
        let pairs = RecordBatch::try_new_with_options(
            self.pair_schema.clone(),
            pair_columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(probe.len())),
        )?;
        let matches: BooleanArray = match &self.pair_filter {
            Some(f) => {
                let v = f.evaluate(&pairs)?.into_array(pairs.num_rows())?;
                v.as_boolean().iter().map(|b| Some(b == Some(true))).collect()
            }
            None => BooleanArray::from(vec![true; probe.len()]),
        };
        let mut matched_row = vec![false; n];
        let mut newly_matched_kept = Vec::new();
        let (_, other) = self.sides(which);
        for (i, m) in matches.iter().enumerate() {
            if m == Some(true) {
                matched_row[probe[i] as usize] = true;
                if !other.state.is_matched(kept[i]) {
                    newly_matched_kept.push(kept[i]);
                }
                other.state.set_matched(kept[i]);
            }
        }
        // The joined rows.
        if semi {
            match which {
                // Right rows emit the kept left rows they match for the first time, which
                // leave state: a semi join needs them no more.
                Which::Right => {
                    let rows = self.left.state.columns(&newly_matched_kept)?;
                    if !newly_matched_kept.is_empty() {
                        out.push(self.output(Some(rows), None, newly_matched_kept.len())?);
                    }
                    for slot in newly_matched_kept {
                        self.left.state.remove(slot);
                        self.removed += 1;
                    }
                }
                Which::Left => {
                    let idx: Vec<u32> = (0..n as u32).filter(|&r| matched_row[r as usize]).collect();
                    if !idx.is_empty() {
                        let idx = UInt32Array::from(idx);
                        let rows = batch
                            .columns()
                            .iter()
                            .map(|c| take(c.as_ref(), &idx, None))
                            .collect::<std::result::Result<Vec<_>, _>>()?;
                        out.push(self.output(Some(rows), None, idx.len())?);
                    }
                }
            }
        } else if matches.true_count() > 0 {
            let joined = filter_record_batch(&pairs, &matches)?;
            out.push(self.output(
                Some(joined.columns()[..self.left.schema.fields().len()].to_vec()),
                Some(joined.columns()[self.left.schema.fields().len()..].to_vec()),
                joined.num_rows(),
            )?);
        }
        // Keep this side's rows for the other side's later rows. A left row already past its
        // state watermark is not kept (it could only meet rows that are late); a right row is
        // kept even then, for this batch's left rows, and leaves at the batch's end. (That is
        // how Spark 4.3 counts a window join whose rows arrive with their window closed.) In a
        // semi join, a left row that matched is done.
        let (this, _) = self.sides(which);
        let state_wm_us = this.cleanup.state_watermark_ms(w.eviction_ms).map(|ms| ms * 1_000);
        let times = match &this.cleanup {
            Cleanup::Never => vec![None; n],
            Cleanup::Key { ordinal } => micros(&key_columns[*ordinal])?,
            Cleanup::Value { column, .. } => micros(batch.column(*column))?,
        };
        let mut store = Vec::new();
        let mut padded_now = Vec::new();
        for r in 0..n {
            if !keep[r] {
                continue;
            }
            let expired = which == Which::Left && matches!((state_wm_us, times[r]), (Some(wm), Some(t)) if t <= wm);
            let semi_done = semi && which == Which::Left && matched_row[r];
            if passes[r] && !expired && !semi_done {
                store.push(r as u32);
            } else if this.preserved && !matched_row[r] {
                padded_now.push(r as u32);
            }
        }
        if !store.is_empty() {
            let idx = UInt32Array::from(store.clone());
            let columns = batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let key_refs: Vec<&[u8]> = store.iter().map(|&r| keys.row(r as usize).data()).collect();
            let t: Vec<Option<i64>> = store.iter().map(|&r| times[r as usize]).collect();
            let m: Vec<bool> = store.iter().map(|&r| matched_row[r as usize]).collect();
            this.state.add(&key_refs, columns, &t, &m)?;
            self.updated += store.len() as u64;
        }
        if !padded_now.is_empty() {
            let idx = UInt32Array::from(padded_now);
            let rows = batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(match which {
                Which::Left => self.output(Some(rows), None, idx.len())?,
                Which::Right => self.output(None, Some(rows), idx.len())?,
            });
        }
        Ok(())
    }

    /// Drops the side's rows at or before its state watermark; an outer side emits the
    /// unmatched ones padded with nulls.
    fn evict(&mut self, which: Which, eviction_ms: i64, out: &mut Vec<RecordBatch>) -> Result<()> {
        let (this, _) = self.sides(which);
        let Some(wm) = this.cleanup.state_watermark_ms(eviction_ms) else { return Ok(()) };
        let expired = this.state.expired(wm * 1_000);
        let unmatched: Vec<u32> = if this.preserved {
            expired.iter().copied().filter(|&s| !this.state.is_matched(s)).collect()
        } else {
            Vec::new()
        };
        let rows = this.state.columns(&unmatched)?;
        for &slot in &expired {
            this.state.remove(slot);
        }
        self.removed += expired.len() as u64;
        if !unmatched.is_empty() {
            out.push(match which {
                Which::Left => self.output(Some(rows), None, unmatched.len())?,
                Which::Right => self.output(None, Some(rows), unmatched.len())?,
            });
        }
        Ok(())
    }
}

impl StatefulOperator for StreamJoin {
    fn process(&mut self, inputs: Vec<Vec<RecordBatch>>, w: BatchWatermarks) -> Result<Vec<RecordBatch>> {
        (self.updated, self.removed, self.dropped_late) = (0, 0, 0);
        let started = Instant::now();
        let mut inputs = inputs.into_iter();
        let (left, right) = (inputs.next().unwrap_or_default(), inputs.next().unwrap_or_default());
        let mut out = Vec::new();
        // Right first, then left: the left rows find this batch's right rows kept already.
        for batch in right.iter().filter(|b| b.num_rows() > 0) {
            self.join_side(Which::Right, &rename(batch, &self.right.schema)?, w, &mut out)?;
        }
        for batch in left.iter().filter(|b| b.num_rows() > 0) {
            self.join_side(Which::Left, &rename(batch, &self.left.schema)?, w, &mut out)?;
        }
        self.updates = started.elapsed();
        let started = Instant::now();
        self.evict(Which::Left, w.eviction_ms, &mut out)?;
        self.evict(Which::Right, w.eviction_ms, &mut out)?;
        self.removals = started.elapsed();
        Ok(out)
    }

    fn commit(&mut self, batch_id: u64) -> Result<StateOperatorProgress> {
        let started = Instant::now();
        self.left.state.commit(batch_id)?;
        self.right.state.commit(batch_id)?;
        Ok(StateOperatorProgress {
            operator_name: "symmetricHashJoin".into(),
            num_rows_total: (self.left.state.len() + self.right.state.len()) as u64,
            num_rows_updated: self.updated,
            num_rows_removed: self.removed,
            num_rows_dropped_by_watermark: self.dropped_late,
            num_shuffle_partitions: 1,
            num_state_store_instances: 2,
            memory_used_bytes: (self.left.state.memory_bytes() + self.right.state.memory_bytes()) as u64,
            all_updates_time_ms: self.updates.as_millis() as u64,
            all_removals_time_ms: self.removals.as_millis() as u64,
            commit_time_ms: started.elapsed().as_millis() as u64,
            custom_metrics: Default::default(),
        })
    }

    fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.left.state.restore(version)?;
        self.right.state.restore(version)
    }

    fn purge(&self, keep_from: u64) -> Result<()> {
        self.left.state.purge(keep_from)?;
        self.right.state.purge(keep_from)
    }

    fn take_late_rows(&mut self, batch_id: u64) -> Result<Vec<RecordBatch>> {
        self.late_rows.as_mut().map_or(Ok(Vec::new()), |l| l.take(batch_id))
    }

    /// Another batch runs when the watermark moved and some side's rows can leave state.
    fn should_run_another_batch(&self, watermark_ms: i64, next_watermark_ms: i64) -> bool {
        let cleans = self.left.cleanup != Cleanup::Never || self.right.cleanup != Cleanup::Never;
        cleans && next_watermark_ms > watermark_ms
    }

    /// The join holds rows back until their state watermark: its output watermark is the
    /// least of the sides' state watermarks and its input's (Spark's `produceOutputWatermark`).
    fn output_watermark(&self, input_ms: i64) -> i64 {
        [self.left.cleanup.state_watermark_ms(input_ms), self.right.cleanup.state_watermark_ms(input_ms)]
            .into_iter()
            .flatten()
            .fold(input_ms, i64::min)
    }
}

/// `batch` under the side's own column names (an operator's input comes under the plan's).
fn rename(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect::<Vec<_>>(),
    ));
    Ok(RecordBatch::try_new_with_options(
        schema,
        batch.columns().to_vec(),
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}
