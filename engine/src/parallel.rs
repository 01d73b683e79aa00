//! Data parallelism for the few places that do bulk work outside DataFusion's plans:
//! decoding a source's files, cutting a large JSON file, writing a sink's files.
//!
//! `map_ordered` runs a function over items on one thread per core and returns the results
//! in the items' order, so output never depends on which thread finished first. A call made
//! from inside one of its workers runs inline: the cores are busy already, and nesting would
//! only add threads fighting for them (a source decoding files in parallel, whose JSON reader
//! would otherwise split each file over the cores again).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The number of cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

thread_local! {
    /// Whether this thread is one of `map_ordered`'s workers.
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Whether work started on this thread would share the cores with other workers already:
/// true inside `map_ordered`'s workers, and on a machine with one core.
pub(crate) fn cores_busy() -> bool {
    IN_WORKER.get() || cores() <= 1
}

/// `f` over every item, on up to [`cores`] threads, each taking the next unclaimed item;
/// results in the items' order, or the error of the first item (in that order) that failed.
/// A single item, a single core, or a call from inside a worker runs on the caller's thread.
pub(crate) fn map_ordered<T, R, F>(items: &[T], f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Result<R> + Sync,
{
    let threads = cores().min(items.len());
    if threads <= 1 || IN_WORKER.get() {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    IN_WORKER.set(true);
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

    #[test]
    fn a_call_from_inside_a_worker_runs_on_that_worker() {
        let items: Vec<u64> = (0..4).collect();
        let out = map_ordered(&items, |&i| {
            let outer = std::thread::current().id();
            let inner = map_ordered(&[0, 1, 2], |_| Ok(std::thread::current().id()))?;
            Ok((i, inner.iter().all(|id| *id == outer), cores_busy()))
        })
        .unwrap();
        assert!(out.iter().all(|(_, same_thread, busy)| *same_thread && *busy), "{out:?}");
        assert_eq!(out.iter().map(|(i, _, _)| *i).collect::<Vec<_>>(), items);
    }
}
