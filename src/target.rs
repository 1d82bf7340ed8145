//! A target and its collections: one at a time, shared by every scrape that arrives while it runs.
//!
//! A collection runs as its own task under the deadline of the scrape that started it, behind the
//! engine's concurrency limit; whatever the collector does (error, hang, panic), the task ends by the
//! deadline plus a grace period, records the outcome for the status page, and frees the target for
//! the next collection. Scrapes arriving meanwhile await the same result within their own deadlines,
//! so two Prometheus replicas, a dashboard and the status page cost the server one collection.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use fanout_collectors::diagnose::human;
use fanout_collectors::{CollectError, Collector, ErrorClass, Outcome};
use futures_util::FutureExt;
use prometheus::proto::MetricFamily;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::flight::{Flight, Flights};
use crate::redact::redact;

/// How long after the deadline the engine waits for a collector that promised to honour it, so a
/// collector that enforces the deadline itself gets to report its partial results.
pub(crate) const GRACE: Duration = Duration::from_millis(50);

/// One target, ready to collect: configured, or created by a module for a `/probe` address.
#[derive(Clone)]
pub struct Target {
    /// Configured name (the `target` label on `/metrics`); a dynamic target's endpoint.
    pub name: String,
    /// Global labels merged with the target's own (the target's win), sorted by name.
    pub labels: Vec<(String, String)>,
    /// The collector bound to this target.
    pub collector: Arc<dyn Collector>,
    fingerprint: u64,
    last: Arc<Mutex<Option<LastScrape>>>,
    /// The collection in flight, which every scrape of the target that arrives meanwhile awaits
    /// instead of starting its own.
    running: Flights<(), Arc<Collected>>,
}

/// One finished collection, shared by the scrapes that awaited it.
#[derive(Debug)]
pub(crate) struct Collected {
    pub(crate) families: Vec<MetricFamily>,
    pub(crate) up: bool,
    pub(crate) succeeded: bool,
    /// Time spent collecting, without the wait for a concurrency slot.
    pub(crate) elapsed: Duration,
}

/// The latest collection of a target, through `/metrics` or `/probe`, kept for the status page: an
/// operator asking "why is this target down" wants the answer without waiting for the next scrape.
#[derive(Debug, Clone)]
pub struct LastScrape {
    /// When the collection finished.
    pub finished: SystemTime,
    /// Time spent collecting, as in `fanout_exporter_scrape_duration_seconds`.
    pub duration: Duration,
    /// The kind's up gauge.
    pub up: bool,
    /// `fanout_exporter_scrape_success`.
    pub succeeded: bool,
    /// The collection's errors, joined and passed through [`redact`].
    pub error: Option<String>,
}

impl Target {
    /// Bundle a collector with its name and labels.
    pub fn new(name: String, labels: Vec<(String, String)>, collector: Arc<dyn Collector>) -> Self {
        Self {
            name,
            labels,
            collector,
            fingerprint: 0,
            last: Arc::default(),
            running: Flights::default(),
        }
    }

    /// The same target with the digest of what its collector was built from: a reload keeps the
    /// running collector (and its connections) of a target whose kind, name and digest are unchanged.
    pub fn with_fingerprint(mut self, fingerprint: u64) -> Self {
        self.fingerprint = fingerprint;
        self
    }

    /// The kind's name (`http`, `mysql`, `redis`).
    pub fn kind(&self) -> &'static str {
        self.collector.kind().name
    }

    /// The latest collection, `None` until the target has been scraped once.
    pub fn last_scrape(&self) -> Option<LastScrape> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether anything but its owner holds the collector (a scrape in flight).
    pub fn in_use(&self) -> bool {
        Arc::strong_count(&self.collector) > 1
    }

    /// Whether `old`, from the configuration being replaced, is this target unchanged.
    pub(crate) fn same_as(&self, old: &Target) -> bool {
        self.name == old.name && self.kind() == old.kind() && self.fingerprint == old.fingerprint
    }

    /// Keep `old`'s collector, connections, latest scrape and collection in flight.
    pub(crate) fn keep(&mut self, old: &Target) {
        self.collector = Arc::clone(&old.collector);
        self.last = Arc::clone(&old.last);
        self.running = old.running.clone();
    }

    pub(crate) fn record(&self, scrape: LastScrape) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(scrape);
    }
}

impl Target {
    /// The collection in flight, or a new one under `deadline` behind `limiter`. It runs as its own
    /// task, so it finishes (and is recorded for the status page) even when the scrape that started
    /// it gives up.
    pub(crate) fn join_or_start(
        &self,
        limiter: &Arc<Semaphore>,
        deadline: Instant,
        budget: Duration,
    ) -> Flight<Arc<Collected>> {
        self.running.join_or_start((), tokio::spawn, || {
            collect(self.clone(), Arc::clone(limiter), deadline, budget)
        })
    }
}

impl Collected {
    /// No families, down: what a scrape reports when it got no collection by its deadline.
    pub(crate) fn nothing(elapsed: Duration) -> Self {
        Self {
            families: Vec::new(),
            up: false,
            succeeded: false,
            elapsed,
        }
    }
}

/// One collection of `target`: wait for a concurrency slot, collect by `deadline` whatever the
/// collector does (error, hang, panic), log and record the outcome.
async fn collect(
    target: Target,
    limiter: Arc<Semaphore>,
    deadline: Instant,
    budget: Duration,
) -> Arc<Collected> {
    // The duration covers the collection itself, not the wait for a concurrency slot.
    let started = std::sync::OnceLock::<Instant>::new();
    let run = async {
        let _permit = limiter
            .acquire()
            .await
            .map_err(|_| CollectError::internal("concurrency limiter closed"))?;
        let _ = started.set(Instant::now());
        AssertUnwindSafe(target.collector.collect(deadline))
            .catch_unwind()
            .await
            .map_err(|panic| CollectError::internal(panic_message(&panic)))
    };
    let outcome = match tokio::time::timeout_at(deadline + GRACE, run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Outcome::down(Vec::new(), error),
        Err(_) => {
            let waited = if started.get().is_some() {
                "the collector did not stop at the deadline"
            } else {
                "no concurrency slot came free (global.max_concurrency)"
            };
            let error = CollectError::new(
                ErrorClass::Timeout,
                format!("no result within {}: {waited}", human(budget)),
            );
            Outcome::down(Vec::new(), error)
        }
    };
    let elapsed = started.get().map_or(Duration::ZERO, |s| s.elapsed());
    let kind = target.collector.kind();
    for error in &outcome.errors {
        tracing::warn!(
            target_name = %target.name,
            collector = kind.name,
            class = error.class().name(),
            %error,
            "target scrape failed"
        );
    }
    let errors: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    let error = (!errors.is_empty()).then(|| redact(&errors.join("; ")));
    log_collection(&target, &outcome, elapsed, error.as_deref());
    target.record(LastScrape {
        finished: SystemTime::now(),
        duration: elapsed,
        up: outcome.up,
        succeeded: outcome.succeeded(),
        error,
    });
    Arc::new(Collected {
        up: outcome.up,
        succeeded: outcome.succeeded(),
        families: outcome.families,
        elapsed,
    })
}

/// One `debug` line per collection of a target: what an operator turns on to watch every target's
/// scrapes go by, up or not. A collection shared by several scrapes is one line: it is one piece of
/// work on the target. `class` is the first error's (`none` when there is none), `error` the redacted
/// text of all of them, as the status page shows it.
fn log_collection(target: &Target, outcome: &Outcome, elapsed: Duration, error: Option<&str>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let result = match (outcome.up, outcome.errors.is_empty()) {
        (true, true) => "up",
        (true, false) => "partial",
        (false, _) => "down",
    };
    let class = outcome.errors.first().map_or("none", |e| e.class().name());
    tracing::debug!(
        target_name = %target.name,
        collector = target.collector.kind().name,
        duration_seconds = elapsed.as_secs_f64(),
        outcome = result,
        class,
        error = error.unwrap_or(""),
        "target collected"
    );
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown payload".to_owned());
    format!("collector panicked: {text}")
}
