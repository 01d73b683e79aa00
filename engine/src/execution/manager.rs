//! [`StreamingQueryManager`]: the session's running queries and listeners (Spark's
//! `spark.streams`).

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use uuid::Uuid;

use super::listener::StreamingQueryListener;
use super::query::StreamingQuery;
use crate::error::{Error, Result};

/// The queries of a session and the listeners that watch them.
#[derive(Default)]
pub struct StreamingQueryManager {
    queries: Mutex<Vec<StreamingQuery>>,
    listeners: RwLock<Vec<Arc<dyn StreamingQueryListener>>>,
    /// Counts terminations, for `await_any_termination`.
    terminations: Mutex<u64>,
    terminated: Condvar,
}

impl std::fmt::Debug for StreamingQueryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingQueryManager").field("active", &self.active().len()).finish()
    }
}

impl StreamingQueryManager {
    /// The queries still running.
    pub fn active(&self) -> Vec<StreamingQuery> {
        self.queries.lock().expect("query list lock poisoned").iter().filter(|q| q.is_active()).cloned().collect()
    }

    /// The active query with this id.
    pub fn get(&self, id: Uuid) -> Option<StreamingQuery> {
        self.active().into_iter().find(|q| q.id() == id)
    }

    /// Registers a listener for every query of this session.
    pub fn add_listener(&self, listener: Arc<dyn StreamingQueryListener>) {
        self.listeners.write().expect("listener lock poisoned").push(listener);
    }

    /// Removes a listener added with [`StreamingQueryManager::add_listener`].
    pub fn remove_listener(&self, listener: &Arc<dyn StreamingQueryListener>) {
        self.listeners.write().expect("listener lock poisoned").retain(|l| !Arc::ptr_eq(l, listener));
    }

    /// Blocks until any query of this session terminates (after this call) or `timeout` passes;
    /// whether one did.
    pub fn await_any_termination(&self, timeout: Duration) -> bool {
        let guard = self.terminations.lock().expect("termination lock poisoned");
        let seen = *guard;
        let (guard, _) =
            self.terminated.wait_timeout_while(guard, timeout, |n| *n == seen).expect("termination lock poisoned");
        *guard != seen
    }

    pub(crate) fn listeners(&self) -> Vec<Arc<dyn StreamingQueryListener>> {
        self.listeners.read().expect("listener lock poisoned").clone()
    }

    /// Refuses a second active query with the same name or id, as Spark does.
    pub(crate) fn check_unique(&self, id: Uuid, name: Option<&str>) -> Result<()> {
        for q in self.active() {
            if q.id() == id {
                return Err(Error::Analysis(format!(
                    "Cannot start query with id {id} as another query with same id is already active. \
                     Perhaps you are attempting to restart a query from checkpoint that is already active."
                )));
            }
            if name.is_some() && q.name() == name {
                return Err(Error::Analysis(format!(
                    "Cannot start query with name {} as a query with that name is already active in this SparkSession",
                    name.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn register(&self, query: StreamingQuery) {
        let mut queries = self.queries.lock().expect("query list lock poisoned");
        queries.retain(|q| q.is_active());
        queries.push(query);
    }

    pub(crate) fn notify_terminated(&self) {
        *self.terminations.lock().expect("termination lock poisoned") += 1;
        self.terminated.notify_all();
    }
}
