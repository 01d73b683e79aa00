//! Keys to slots: each distinct key (in arrow's row format) gets a small integer, its slot,
//! valid until the key is removed; a removed key's slot goes to the next new key.
//!
//! Memory is what a large state is made of, so the layout is flat: key bytes sit end to end in
//! one arena, each slot has its key's offset and length packed in 8 bytes, and the hash table
//! holds only slot numbers (4 bytes each), hashing a slot's key from the arena when it grows. A
//! 1M-key index of 20-byte keys holds about 40 bytes per key; a `HashMap<Box<[u8]>, usize>`
//! holds over 80.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use crate::error::{Error, Result};

/// A slot's span packs its key's arena offset (high 40 bits) and length (low 24 bits).
const LEN_BITS: u32 = 24;
/// The span of a slot that holds no key.
const FREE: u64 = u64::MAX;

#[derive(Default)]
pub(crate) struct KeyIndex {
    hasher: DefaultHashBuilder,
    table: HashTable<u32>,
    arena: Vec<u8>,
    spans: Vec<u64>,
    free: Vec<u32>,
    /// Arena bytes of removed keys, reclaimed once they are half of the arena.
    garbage: usize,
}

fn span(start: usize, len: usize) -> u64 {
    ((start as u64) << LEN_BITS) | len as u64
}

fn bytes(arena: &[u8], span: u64) -> &[u8] {
    let start = (span >> LEN_BITS) as usize;
    &arena[start..start + (span & ((1 << LEN_BITS) - 1)) as usize]
}

impl KeyIndex {
    /// The key in `slot`.
    pub(crate) fn key(&self, slot: u32) -> &[u8] {
        bytes(&self.arena, self.spans[slot as usize])
    }

    /// The slot holding `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&s| self.key(s) == key).copied()
    }

    /// The slot of `key`, and whether the key is new.
    pub(crate) fn intern(&mut self, key: &[u8]) -> Result<(u32, bool)> {
        let hash = self.hasher.hash_one(key);
        let KeyIndex { hasher, table, arena, spans, free, .. } = self;
        if let Some(&slot) = table.find(hash, |&s| bytes(arena, spans[s as usize]) == key) {
            return Ok((slot, false));
        }
        if key.len() >= 1 << LEN_BITS || (arena.len() + key.len()) >> (64 - LEN_BITS) != 0 {
            return Err(Error::Internal(format!("a {}-byte group key is more than state holds", key.len())));
        }
        let new = span(arena.len(), key.len());
        let slot = match free.pop() {
            Some(slot) => {
                spans[slot as usize] = new;
                slot
            }
            None => {
                spans.push(new);
                u32::try_from(spans.len() - 1).map_err(|_| Error::Internal("over 4 billion keys in state".into()))?
            }
        };
        arena.extend_from_slice(key);
        table.insert_unique(hash, slot, |&s| hasher.hash_one(bytes(arena, spans[s as usize])));
        Ok((slot, true))
    }

    /// Removes the key in `slot`, returning it.
    pub(crate) fn remove(&mut self, slot: u32) -> Box<[u8]> {
        let key: Box<[u8]> = self.key(slot).into();
        let hash = self.hasher.hash_one(&*key);
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.garbage += key.len();
        self.spans[slot as usize] = FREE;
        self.free.push(slot);
        if self.garbage > 4096 && self.garbage * 2 > self.arena.len() {
            self.compact_arena();
        }
        key
    }

    /// Copies the live keys into a new arena: amortized over the removals that made the garbage.
    fn compact_arena(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for s in self.spans.iter_mut().filter(|s| **s != FREE) {
            let key = bytes(&self.arena, *s);
            *s = span(arena.len(), key.len());
            arena.extend_from_slice(key);
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// Whether `slot` holds a key.
    pub(crate) fn is_live(&self, slot: u32) -> bool {
        self.spans.get(slot as usize).is_some_and(|&s| s != FREE)
    }

    /// Every slot holding a key, in slot order.
    pub(crate) fn slots(&self) -> Vec<u32> {
        (0..self.spans.len() as u32).filter(|&s| self.spans[s as usize] != FREE).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn clear(&mut self) {
        *self = KeyIndex { hasher: std::mem::take(&mut self.hasher), ..Default::default() };
    }

    /// Bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        // The table's buckets by its length, not its capacity: after removals the capacity
        // depends on the random hash seed, and progress must be the same on every run.
        (self.table.len() * 8 / 7).next_power_of_two() * (std::mem::size_of::<u32>() + 1)
            + self.arena.capacity()
            + self.spans.capacity() * 8
            + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_keys_survive_compaction() {
        let mut index = KeyIndex::default();
        let keys: Vec<Vec<u8>> = (0..10_000u32).map(|i| format!("key-{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.intern(k).unwrap(), (i as u32, true));
        }
        assert_eq!(index.intern(&keys[7]).unwrap(), (7, false));
        for s in (0..10_000).step_by(2) {
            assert_eq!(&*index.remove(s), &keys[s as usize][..]);
        }
        assert_eq!(index.len(), 5_000);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.get(k), (i % 2 == 1).then_some(i as u32), "key {i}");
        }
        let (slot, new) = index.intern(b"fresh").unwrap();
        assert!(new && slot % 2 == 0, "a freed slot is reused");
        assert_eq!(index.key(slot), b"fresh");
        assert!(index.is_live(slot) && !index.is_live(0));
    }
}
