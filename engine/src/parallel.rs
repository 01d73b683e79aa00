//! Data parallelism for the few places that do bulk work outside DataFusion's plans:
//! decoding a source's files, cutting a large JSON file, writing a sink's files.
//!
//! `map_ordered` runs a function over items on one thread per core and returns the results
//! in the items' order, so output never depends on which thread finished first.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The number of cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `f` over every item, on up to [`cores`] threads, each taking the next unclaimed item;
/// results in the items' order, or the error of the first item (in that order) that failed.
/// A single item (or a single core) runs on the caller's thread.
pub(crate) fn map_ordered<T, R, F>(items: &[T], f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Result<R> + Sync,
{
    let threads = cores().min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { return mine };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| vec![(0, Err(Error::Internal("a worker thread panicked".into())))])
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..100).collect();
        let out: Vec<u64> = map_ordered(&items, |&i| {
            std::thread::sleep(std::time::Duration::from_micros((100 - i) * 10));
            Ok(i * 2)
        })
        .unwrap();
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    }
}
