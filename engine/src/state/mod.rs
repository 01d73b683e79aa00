//! The versioned state of a streaming aggregation: one set of DataFusion accumulators per
//! group, folded batch by batch, checkpointed as Arrow IPC files.
//!
//! ```text
//! state/<op>/<N>.delta      the groups batch N changed: key columns + accumulator state columns
//! state/<op>/<N>.snapshot   every group, written every SNAPSHOT_EVERY versions
//! ```
//!
//! Version N is the state after batch N. Restoring version N reads the newest snapshot at or
//! before N, then replays the deltas after it in order (a delta row *replaces* its group). A
//! batch writes only the groups it changed, so checkpoint bytes scale with the change, not with
//! the state.

mod files;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_empty_array};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use crate::error::{Error, Result};

/// A full snapshot is written every this many versions (Spark's `minDeltasForSnapshot`).
const SNAPSHOT_EVERY: u64 = 10;

struct Group {
    /// The group key in arrow's row format.
    key: Box<[u8]>,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// Bytes held by this group, for `memoryUsedBytes`.
    size: usize,
}

/// All groups of one aggregation operator.
pub(crate) struct AggregateState {
    /// Key columns first, then each aggregate's state columns: the layout of DataFusion's
    /// partial aggregate output, used for both merging and checkpoint files.
    partial_schema: SchemaRef,
    num_keys: usize,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// How many state columns each aggregate has.
    state_widths: Vec<usize>,
    converter: Option<RowConverter>,
    index: HashMap<Box<[u8]>, usize>,
    groups: Vec<Group>,
    memory_bytes: usize,
    /// Groups changed in the current batch, in first-change order.
    touched: Vec<usize>,
    touched_mark: Vec<bool>,
    dir: PathBuf,
}

impl AggregateState {
    pub(crate) fn try_new(
        partial_schema: SchemaRef,
        num_keys: usize,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        dir: PathBuf,
    ) -> Result<Self> {
        let state_widths = aggregates
            .iter()
            .map(|a| a.state_fields().map(|f| f.len()))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let expected = num_keys + state_widths.iter().sum::<usize>();
        if partial_schema.fields().len() != expected {
            return Err(Error::Internal(format!(
                "partial aggregate has {} columns, expected {expected}",
                partial_schema.fields().len()
            )));
        }
        let converter = if num_keys == 0 {
            None
        } else {
            let sort_fields =
                partial_schema.fields()[..num_keys].iter().map(|f| SortField::new(f.data_type().clone())).collect();
            Some(RowConverter::new(sort_fields)?)
        };
        let mut state = AggregateState {
            partial_schema,
            num_keys,
            aggregates,
            state_widths,
            converter,
            index: HashMap::new(),
            groups: Vec::new(),
            memory_bytes: 0,
            touched: Vec::new(),
            touched_mark: Vec::new(),
            dir,
        };
        if num_keys == 0 {
            // A global aggregate has its one group from the start: `count` is 0 before any row.
            state.group_for(&[])?;
        }
        Ok(state)
    }

    fn group_for(&mut self, key: &[u8]) -> Result<usize> {
        if let Some(&i) = self.index.get(key) {
            return Ok(i);
        }
        let accumulators =
            self.aggregates.iter().map(|a| a.create_accumulator()).collect::<datafusion::error::Result<Vec<_>>>()?;
        let i = self.groups.len();
        self.index.insert(key.into(), i);
        self.groups.push(Group { key: key.into(), accumulators, size: 0 });
        self.touched_mark.push(false);
        Ok(i)
    }

    fn keys_of(&self, partial: &RecordBatch) -> Result<Vec<Box<[u8]>>> {
        match &self.converter {
            None => Ok(vec![Box::from([] as [u8; 0]); partial.num_rows()]),
            Some(c) => {
                let rows = c.convert_columns(&partial.columns()[..self.num_keys])?;
                Ok(rows.iter().map(|r| Box::from(r.as_ref())).collect())
            }
        }
    }

    /// Folds a batch of partial aggregates (key columns + state columns) into the state.
    pub(crate) fn merge(&mut self, partial: &RecordBatch) -> Result<()> {
        let keys = self.keys_of(partial)?;
        for (row, key) in keys.iter().enumerate() {
            let g = self.group_for(key)?;
            self.merge_row(g, partial, row)?;
        }
        Ok(())
    }

    fn merge_row(&mut self, g: usize, partial: &RecordBatch, row: usize) -> Result<()> {
        let mut column = self.num_keys;
        let group = &mut self.groups[g];
        let mut size = group.key.len();
        for (acc, width) in group.accumulators.iter_mut().zip(&self.state_widths) {
            let states: Vec<ArrayRef> =
                partial.columns()[column..column + width].iter().map(|c| c.slice(row, 1)).collect();
            acc.merge_batch(&states)?;
            size += acc.size();
            column += width;
        }
        self.memory_bytes = self.memory_bytes + size - group.size;
        group.size = size;
        if !self.touched_mark[g] {
            self.touched_mark[g] = true;
            self.touched.push(g);
        }
        Ok(())
    }

    /// Groups changed since the last [`AggregateState::end_batch`], in first-change order.
    pub(crate) fn touched(&self) -> &[usize] {
        &self.touched
    }

    /// Every group index, in first-seen order.
    pub(crate) fn all_groups(&self) -> Vec<usize> {
        (0..self.groups.len()).collect()
    }

    /// Key columns and final aggregate values of `groups`.
    pub(crate) fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let mut columns = self.key_columns(groups)?;
        for a in 0..self.aggregates.len() {
            let values = groups
                .iter()
                .map(|&g| self.groups[g].accumulators[a].evaluate())
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let data_type = self.aggregates[a].field().data_type().clone();
            columns.push(scalars_to_array(values, &data_type)?);
        }
        Ok(columns)
    }

    fn key_columns(&self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        let Some(converter) = &self.converter else { return Ok(Vec::new()) };
        let parser = converter.parser();
        Ok(converter.convert_rows(groups.iter().map(|&g| parser.parse(&self.groups[g].key)))?)
    }

    /// `groups` in the partial layout (keys + accumulator states), for checkpoint files.
    fn state_rows(&mut self, groups: &[usize]) -> Result<RecordBatch> {
        let mut columns = self.key_columns(groups)?;
        let mut per_group: Vec<Vec<ScalarValue>> = Vec::with_capacity(groups.len());
        for &g in groups {
            let mut states = Vec::new();
            for acc in &mut self.groups[g].accumulators {
                states.extend(acc.state()?);
            }
            per_group.push(states);
        }
        for (i, field) in self.partial_schema.fields()[self.num_keys..].iter().enumerate() {
            let values: Vec<ScalarValue> = per_group.iter().map(|s| s[i].clone()).collect();
            columns.push(scalars_to_array(values, field.data_type())?);
        }
        Ok(RecordBatch::try_new(self.partial_schema.clone(), columns)?)
    }

    /// Writes version `version` (the changed groups, or everything every
    /// [`SNAPSHOT_EVERY`] versions) and starts a new batch.
    pub(crate) fn commit(&mut self, version: u64) -> Result<()> {
        let touched = std::mem::take(&mut self.touched);
        let delta = self.state_rows(&touched)?;
        files::write(&self.dir, version, files::Kind::Delta, &delta)?;
        if version > 0 && version.is_multiple_of(SNAPSHOT_EVERY) {
            let all = self.state_rows(&self.all_groups())?;
            files::write(&self.dir, version, files::Kind::Snapshot, &all)?;
        }
        for g in touched {
            self.touched_mark[g] = false;
        }
        Ok(())
    }

    /// Deletes state files that versions from `keep_from` on no longer need.
    pub(crate) fn purge(&self, keep_from: u64) -> Result<()> {
        files::purge(&self.dir, keep_from)
    }

    /// Forgets the changes of a batch that will be re-run (its state is restored instead).
    pub(crate) fn restore(&mut self, version: Option<u64>) -> Result<()> {
        self.index.clear();
        self.groups.clear();
        self.touched.clear();
        self.touched_mark.clear();
        self.memory_bytes = 0;
        if self.num_keys == 0 {
            self.group_for(&[])?;
        }
        if let Some(version) = version {
            for batch in files::read_version(&self.dir, version, &self.partial_schema)? {
                let keys = self.keys_of(&batch)?;
                for (row, key) in keys.iter().enumerate() {
                    let g = self.group_for(key)?;
                    // A stored row is the group's whole state: replace, then merge it in.
                    let fresh = self
                        .aggregates
                        .iter()
                        .map(|a| a.create_accumulator())
                        .collect::<datafusion::error::Result<Vec<_>>>()?;
                    self.groups[g].accumulators = fresh;
                    self.merge_row(g, &batch, row)?;
                }
            }
        }
        for g in std::mem::take(&mut self.touched) {
            self.touched_mark[g] = false;
        }
        Ok(())
    }

    /// Groups in state.
    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }

    /// Approximate bytes held, from the accumulators' own `size()`.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes + self.index.capacity() * (std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<usize>())
    }
}

fn scalars_to_array(values: Vec<ScalarValue>, data_type: &arrow::datatypes::DataType) -> Result<ArrayRef> {
    if values.is_empty() {
        return Ok(new_empty_array(data_type));
    }
    let array = ScalarValue::iter_to_array(values)?;
    if array.data_type() == data_type { Ok(array) } else { Ok(arrow::compute::cast(&array, data_type)?) }
}
