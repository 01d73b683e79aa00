//! Each slot's state row (its accumulator state columns), held in immutable Arrow chunks.
//!
//! A batch that changes groups writes their new rows as one more chunk (or appends them to the
//! last chunk while it is small); a slot's old row becomes dead. A chunk whose rows are more
//! than half dead has its live rows moved to the newest chunk, so the chunks hold at most about
//! twice the live rows and the moving is paid for by the changes that killed them. A count and
//! a sum then cost about 30 bytes a group, where a `Box<dyn Accumulator>` per aggregate and
//! group costs over a hundred.
//!
//! ```text
//! slot 7 ──▶ (chunk 2, row 40)      chunk 0: ████░░██░░░░   live rows kept, dead ones moved
//! slot 8 ──▶ (chunk 0, row 3)       chunk 2: ██████████     this batch's rows
//! ```

use arrow::array::{Array, ArrayRef, new_empty_array};
use arrow::compute::{concat, interleave};
use arrow::datatypes::FieldRef;

use crate::error::Result;

/// A slot without a row.
const NONE: u32 = u32::MAX;

/// New rows go into the last chunk while it holds fewer rows than this, so that batches which
/// change a few groups do not leave a chunk each.
const SMALL_CHUNK: usize = 4096;

struct Chunk {
    columns: Vec<ArrayRef>,
    /// The slot each row was written for; the row is live while the slot still points at it.
    slots: Vec<u32>,
    live: usize,
    /// Listed in [`StateRows::thinned`].
    thinned: bool,
}

pub(crate) struct StateRows {
    fields: Vec<FieldRef>,
    chunks: Vec<Option<Chunk>>,
    free_chunks: Vec<u32>,
    /// Per slot: the chunk and row of its state, or [`NONE`].
    chunk_of: Vec<u32>,
    row_of: Vec<u32>,
    /// Chunks that lost rows since the last [`StateRows::put`], to check for compaction.
    thinned: Vec<u32>,
}

impl StateRows {
    pub(crate) fn new(fields: Vec<FieldRef>) -> Self {
        StateRows {
            fields,
            chunks: Vec::new(),
            free_chunks: Vec::new(),
            chunk_of: Vec::new(),
            row_of: Vec::new(),
            thinned: Vec::new(),
        }
    }

    /// Whether `slot` has a state row.
    pub(crate) fn has(&self, slot: u32) -> bool {
        self.chunk_of.get(slot as usize).is_some_and(|&c| c != NONE)
    }

    /// The state rows of `slots`, which all have one, in that order.
    pub(crate) fn get(&self, slots: &[u32]) -> Result<Vec<ArrayRef>> {
        if slots.is_empty() {
            return Ok(self.fields.iter().map(|f| new_empty_array(f.data_type())).collect());
        }
        // The chunks the rows are in, each once, and each row as (position in that list, row).
        let mut listed: Vec<u32> = Vec::new();
        let mut position = std::collections::HashMap::new();
        let indices: Vec<(usize, usize)> = slots
            .iter()
            .map(|&s| {
                let chunk = self.chunk_of[s as usize];
                let at = *position.entry(chunk).or_insert_with(|| {
                    listed.push(chunk);
                    listed.len() - 1
                });
                (at, self.row_of[s as usize] as usize)
            })
            .collect();
        let chunks: Vec<&Chunk> =
            listed.iter().map(|&c| self.chunks[c as usize].as_ref().expect("a live chunk")).collect();
        (0..self.fields.len())
            .map(|col| {
                let arrays: Vec<&dyn Array> = chunks.iter().map(|c| c.columns[col].as_ref()).collect();
                Ok(interleave(&arrays, &indices)?)
            })
            .collect()
    }

    /// Sets the state rows of `slots` (distinct) to `columns`, one row each, in order.
    pub(crate) fn put(&mut self, slots: &[u32], columns: Vec<ArrayRef>) -> Result<()> {
        if slots.is_empty() {
            return Ok(());
        }
        for &s in slots {
            self.release(s);
        }
        let max = *slots.iter().max().expect("not empty") as usize;
        if self.chunk_of.len() <= max {
            self.chunk_of.resize(max + 1, NONE);
            self.row_of.resize(max + 1, NONE);
        }
        let tail = self
            .chunks
            .len()
            .checked_sub(1)
            .filter(|&t| self.chunks[t].as_ref().is_some_and(|c| c.slots.len() < SMALL_CHUNK && !c.thinned));
        let (chunk, first_row) = match tail {
            Some(t) => {
                let tail = self.chunks[t].as_mut().expect("a live chunk");
                let first = tail.slots.len();
                tail.columns = tail
                    .columns
                    .iter()
                    .zip(&columns)
                    .map(|(old, new)| concat(&[old.as_ref(), new.as_ref()]))
                    .collect::<std::result::Result<_, _>>()?;
                tail.slots.extend_from_slice(slots);
                tail.live += slots.len();
                (t as u32, first)
            }
            None => {
                let chunk = Chunk { columns, slots: slots.to_vec(), live: slots.len(), thinned: false };
                let id = match self.free_chunks.pop() {
                    Some(id) => {
                        self.chunks[id as usize] = Some(chunk);
                        id
                    }
                    None => {
                        self.chunks.push(Some(chunk));
                        (self.chunks.len() - 1) as u32
                    }
                };
                (id, 0)
            }
        };
        for (i, &s) in slots.iter().enumerate() {
            self.chunk_of[s as usize] = chunk;
            self.row_of[s as usize] = (first_row + i) as u32;
        }
        self.compact()
    }

    /// Forgets `slot`'s row.
    pub(crate) fn remove(&mut self, slot: u32) {
        self.release(slot);
    }

    fn release(&mut self, slot: u32) {
        let Some(&chunk) = self.chunk_of.get(slot as usize) else { return };
        if chunk == NONE {
            return;
        }
        self.chunk_of[slot as usize] = NONE;
        let c = self.chunks[chunk as usize].as_mut().expect("a live chunk");
        c.live -= 1;
        if !c.thinned {
            c.thinned = true;
            self.thinned.push(chunk);
        }
    }

    /// Frees chunks with no live row and moves the live rows of chunks more than half dead.
    fn compact(&mut self) -> Result<()> {
        let mut moving = Vec::new();
        for chunk in std::mem::take(&mut self.thinned) {
            let Some(c) = &mut self.chunks[chunk as usize] else { continue };
            c.thinned = false;
            if c.live == 0 {
                self.chunks[chunk as usize] = None;
                self.free_chunks.push(chunk);
            } else if c.live * 2 < c.slots.len() {
                moving.extend(c.slots.iter().enumerate().filter_map(|(row, &s)| {
                    (self.chunk_of[s as usize] == chunk && self.row_of[s as usize] == row as u32).then_some(s)
                }));
            }
        }
        if moving.is_empty() {
            return Ok(());
        }
        let rows = self.get(&moving)?;
        self.put(&moving, rows)
    }

    pub(crate) fn clear(&mut self) {
        *self = StateRows::new(std::mem::take(&mut self.fields));
    }

    /// Bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        let chunks: usize = self
            .chunks
            .iter()
            .flatten()
            .map(|c| c.columns.iter().map(|a| a.get_array_memory_size()).sum::<usize>() + c.slots.capacity() * 4)
            .sum();
        chunks + (self.chunk_of.capacity() + self.row_of.capacity()) * 4
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type};

    use super::*;

    fn column(values: impl IntoIterator<Item = i64>) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from_iter_values(values))]
    }

    #[test]
    fn rows_are_replaced_and_dead_rows_reclaimed() {
        let mut rows = StateRows::new(vec![Arc::new(Field::new("n", DataType::Int64, true))]);
        let slots: Vec<u32> = (0..10_000).collect();
        rows.put(&slots, column(0..10_000)).unwrap();
        // Rewrite each slot many times, a few hundred at a time.
        for round in 1..=20i64 {
            for part in slots.chunks(300) {
                rows.put(part, column(part.iter().map(|&s| s as i64 + round * 100_000))).unwrap();
            }
        }
        rows.remove(3);
        assert!(!rows.has(3) && rows.has(4));
        let got = rows.get(&[9_999, 0, 4]).unwrap();
        assert_eq!(got[0].as_primitive::<Int64Type>().values(), &[2_009_999, 2_000_000, 2_000_004]);
        let stored: usize = rows.chunks.iter().flatten().map(|c| c.slots.len()).sum();
        assert!(stored <= 2 * 10_000 + SMALL_CHUNK, "{stored} rows stored for 10,000 live");
    }
}
