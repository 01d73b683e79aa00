//! [`StreamingQuery`]: the handle `start()` returns, shared with the query's thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::progress::{StreamingQueryProgress, StreamingQueryStatus};
use crate::error::{Error, Result};

/// How many progress reports `recent_progress` keeps (Spark's
/// `spark.sql.streaming.numRecentProgressUpdates`).
const RECENT_PROGRESS: usize = 100;

/// What the handle and the query thread share.
pub(crate) struct QueryShared {
    pub id: Uuid,
    pub run_id: Uuid,
    pub name: Option<String>,
    state: Mutex<QueryState>,
    changed: Condvar,
}

pub(crate) struct QueryState {
    pub active: bool,
    pub stop_requested: bool,
    pub exception: Option<Arc<Error>>,
    pub status: StreamingQueryStatus,
    pub recent: VecDeque<StreamingQueryProgress>,
    /// Source checks begun; a check that found no new data records its number in `idle_check`.
    pub checks_started: u64,
    pub idle_check: u64,
    /// Set by a source's waker: new data arrived while the query was idle.
    pub data_arrived: bool,
}

impl QueryShared {
    pub(crate) fn new(id: Uuid, name: Option<String>) -> Self {
        QueryShared {
            id,
            run_id: Uuid::new_v4(),
            name,
            state: Mutex::new(QueryState {
                active: true,
                stop_requested: false,
                exception: None,
                status: StreamingQueryStatus {
                    message: "Initializing sources".into(),
                    is_data_available: false,
                    is_trigger_active: false,
                },
                recent: VecDeque::new(),
                checks_started: 0,
                idle_check: 0,
                data_arrived: false,
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, QueryState> {
        self.state.lock().expect("query state lock poisoned")
    }

    /// Changes the state and wakes everyone waiting on it.
    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut QueryState) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.notify_all();
        out
    }

    pub(crate) fn push_progress(&self, p: StreamingQueryProgress) {
        self.update(|s| {
            if s.recent.len() == RECENT_PROGRESS {
                s.recent.pop_front();
            }
            s.recent.push_back(p);
        });
    }

    /// Waits up to `timeout` for new data or `stop`; returns whether `stop` was requested.
    pub(crate) fn wait_for_data(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| !s.stop_requested && !s.data_arrived)
            .expect("query state lock poisoned");
        guard.data_arrived = false;
        guard.stop_requested
    }

    /// Tells an idle query that a source has new data.
    pub(crate) fn wake(&self) {
        self.update(|s| s.data_arrived = true);
    }

    pub(crate) fn name_or_id(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.id.to_string())
    }
}

/// A running (or finished) streaming query: Spark's `StreamingQuery`.
#[derive(Clone)]
pub struct StreamingQuery {
    pub(crate) shared: Arc<QueryShared>,
    pub(crate) thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for StreamingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingQuery")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("active", &self.is_active())
            .finish()
    }
}

impl StreamingQuery {
    /// The query id, kept in the checkpoint: the same across restarts.
    pub fn id(&self) -> Uuid {
        self.shared.id
    }

    /// This run's id: new at every start.
    pub fn run_id(&self) -> Uuid {
        self.shared.run_id
    }

    /// The name given with `query_name`.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// Whether the query is still running.
    pub fn is_active(&self) -> bool {
        self.shared.lock().active
    }

    /// What the query is doing now.
    pub fn status(&self) -> StreamingQueryStatus {
        self.shared.lock().status.clone()
    }

    /// The progress of the last micro-batch.
    pub fn last_progress(&self) -> Option<StreamingQueryProgress> {
        self.shared.lock().recent.back().cloned()
    }

    /// The progress of recent micro-batches, oldest first.
    pub fn recent_progress(&self) -> Vec<StreamingQueryProgress> {
        self.shared.lock().recent.iter().cloned().collect()
    }

    /// The error that stopped the query, if one did.
    pub fn exception(&self) -> Option<Arc<Error>> {
        self.shared.lock().exception.clone()
    }

    /// Blocks until every row available in the sources when this was called has been
    /// processed and committed, or the query ended. Meant for tests and the book.
    pub fn process_all_available(&self) -> Result<()> {
        let mut state = self.shared.lock();
        let target = state.checks_started + 1;
        while state.active && state.idle_check < target {
            state = self.shared.changed.wait(state).expect("query state lock poisoned");
        }
        match &state.exception {
            Some(e) => Err(Error::Terminated(e.clone())),
            None => Ok(()),
        }
    }

    /// Blocks until the query ends; its error, if it failed.
    pub fn await_termination(&self) -> Result<()> {
        self.await_termination_timeout(Duration::MAX).map(|_| ())
    }

    /// Blocks until the query ends or `timeout` passes; whether it ended.
    pub fn await_termination_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        while state.active {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if wait.is_zero() {
                return Ok(false);
            }
            state = self.shared.changed.wait_timeout(state, wait).expect("query state lock poisoned").0;
        }
        match &state.exception {
            Some(e) => Err(Error::Terminated(e.clone())),
            None => Ok(true),
        }
    }

    /// Stops the query after the batch in flight and waits for its thread. The checkpoint
    /// stays consistent: a batch cut short is re-run on restart.
    pub fn stop(&self) -> Result<()> {
        self.shared.update(|s| s.stop_requested = true);
        if let Some(handle) = self.thread.lock().expect("query thread lock poisoned").take() {
            handle
                .join()
                .map_err(|_| Error::Internal(format!("the thread of query '{}' panicked", self.shared.name_or_id())))?;
        }
        Ok(())
    }
}
