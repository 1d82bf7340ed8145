//! Single flight: work that callers arriving while it runs share instead of repeating it.
//!
//! Used twice: one collection per target at a time (every scrape of the target that arrives
//! meanwhile awaits it), and one `/metrics` response per budget at a time (identical requests share
//! the merged batches). The work runs as its own task, so it finishes even when every caller has gone
//! away, and frees its key when done: a caller arriving after that starts afresh.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use tokio::task::JoinHandle;

/// A flight's result, for every caller that awaits it: `None` only when its task failed (cancelled
/// with its runtime, or a bug that panicked outside the work's own guards).
pub type Flight<T> = Shared<BoxFuture<'static, Option<T>>>;

/// The flights in progress, by key. Clones share them.
pub struct Flights<K, T>(Arc<Mutex<HashMap<K, Flight<T>>>>);

impl<K, T> Clone for Flights<K, T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<K, T> Default for Flights<K, T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K, T> Flights<K, T>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// The flight of `key` in progress, or a new one: `work()` handed to `spawn` as a task.
    pub fn join_or_start<F>(
        &self,
        key: K,
        spawn: impl FnOnce(BoxFuture<'static, T>) -> JoinHandle<T>,
        work: impl FnOnce() -> F,
    ) -> Flight<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut flights = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.get(&key) {
            return flight.clone();
        }
        let work = work();
        // The task frees the key itself; it waits for this lock, so it finds its own flight there.
        let done = (self.clone(), key.clone());
        let task = spawn(
            async move {
                let out = work.await;
                done.0.remove(&done.1);
                out
            }
            .boxed(),
        );
        let failed = (self.clone(), key.clone());
        let flight = async move {
            match task.await {
                Ok(out) => Some(out),
                Err(error) => {
                    tracing::error!(%error, "a shared task failed");
                    failed.0.remove(&failed.1);
                    None
                }
            }
        }
        .boxed()
        .shared();
        flights.insert(key, flight.clone());
        flight
    }

    fn remove(&self, key: &K) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn callers_arriving_during_a_flight_share_it_and_later_ones_start_afresh() {
        let flights: Flights<u8, usize> = Flights::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let start = |flights: &Flights<u8, usize>| {
            let runs = Arc::clone(&runs);
            flights.join_or_start(0, tokio::spawn, move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                runs.fetch_add(1, Ordering::SeqCst) + 1
            })
        };
        let (a, b) = (start(&flights), start(&flights));
        assert_eq!((a.await, b.await), (Some(1), Some(1)));
        assert_eq!(start(&flights).await, Some(2));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_flight_finishes_and_frees_its_key_when_every_caller_left() {
        let flights: Flights<u8, u8> = Flights::default();
        let dropped = flights.join_or_start(1, tokio::spawn, || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            7
        });
        drop(dropped);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(flights.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_task_yields_none_and_frees_its_key() {
        let flights: Flights<u8, u8> = Flights::default();
        let flight = flights.join_or_start(1, tokio::spawn, || async { panic!("bug") });
        assert_eq!(flight.await, None);
        assert!(flights.0.lock().unwrap().is_empty());
    }
}
