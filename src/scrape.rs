//! The scrape engine: the budget rule, the concurrent fan-out, and the per-target bookkeeping.
//!
//! Every selected target is collected concurrently (at most `max_concurrency` at once, across all
//! scrapes in flight), each under the scrape deadline. Whatever a target does — error, hang, panic — it
//! costs only its own samples: the engine always emits the kind's up family,
//! `fanout_exporter_scrape_success` and `fanout_exporter_scrape_duration_seconds` for it, and then hands
//! everything to [`crate::exposition`] to label, merge and encode.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use fanout_collectors::{CollectError, Collector, Families, Outcome};
use futures_util::FutureExt;
use prometheus::proto::MetricFamily;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::exposition::Batch;

/// Lowest budget we ever run with, whatever the header says: below this nothing useful finishes.
pub const MIN_BUDGET: Duration = Duration::from_millis(100);

/// Highest budget allowed by configuration (`global.scrape_timeout`).
pub const MAX_BUDGET: Duration = Duration::from_secs(3600);

/// How long after the deadline the engine waits for a collector that promised to honour it, so a
/// collector that enforces the deadline itself gets to report its partial results.
const GRACE: Duration = Duration::from_millis(50);

/// Settings that apply to every scrape (`global` in the config file).
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Upper bound of a scrape's budget.
    pub scrape_timeout: Duration,
    /// Subtracted from Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` to leave time for encoding.
    pub timeout_offset: Duration,
    /// Most targets collected at once, across concurrent scrapes.
    pub max_concurrency: usize,
    /// Labels added to every target's samples.
    pub labels: BTreeMap<String, String>,
}

/// One configured target, ready to collect.
#[derive(Clone)]
pub struct Target {
    /// Configured name; the `target` label on `/metrics`.
    pub name: String,
    /// Global labels merged with the target's own (the target's win), sorted by name.
    pub labels: Vec<(String, String)>,
    /// The collector bound to this target.
    pub collector: Arc<dyn Collector>,
    last: Arc<Mutex<Option<LastScrape>>>,
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
            last: Arc::default(),
        }
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

    fn record(&self, scrape: LastScrape) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(scrape);
    }
}

/// Which targets a scrape covers, and how their samples are labelled.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every target, each sample labelled `target="<name>"` (the `/metrics` endpoint).
    All,
    /// One target without a `target` label (the `/probe` multi-target pattern, where Prometheus sets
    /// `instance` by relabelling).
    Probe(&'a str),
}

/// The fan-out engine, shared by all request handlers.
pub struct Engine {
    targets: Vec<Target>,
    limiter: Arc<Semaphore>,
    scrape_timeout: Duration,
    timeout_offset: Duration,
}

impl Engine {
    /// An engine over the configured targets.
    pub fn new(global: &Global, targets: Vec<Target>) -> Self {
        Self {
            targets,
            limiter: Arc::new(Semaphore::new(global.max_concurrency.max(1))),
            scrape_timeout: global.scrape_timeout,
            timeout_offset: global.timeout_offset,
        }
    }

    /// The configured targets, sorted by name.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The budget of a scrape: the configured `scrape_timeout`, lowered to Prometheus'
    /// `X-Prometheus-Scrape-Timeout-Seconds` minus the offset when that header is present and usable.
    pub fn budget(&self, header: Option<&str>) -> Duration {
        budget(self.scrape_timeout, self.timeout_offset, header)
    }

    /// Collect the selected targets within `budget` and return their families, not yet merged.
    /// `None` when a probe names a target that is not configured.
    pub async fn scrape(&self, selection: Selection<'_>, budget: Duration) -> Option<Vec<Batch>> {
        let now = Instant::now();
        // Config bounds scrape_timeout, so this cannot overflow; a far deadline is the safe fallback.
        let deadline = now.checked_add(budget).unwrap_or(now + MAX_BUDGET);
        let selected: Vec<&Target> = match selection {
            Selection::All => self.targets.iter().collect(),
            Selection::Probe(name) => vec![self.targets.iter().find(|t| t.name == name)?],
        };
        let label_target = matches!(selection, Selection::All);
        let runs = selected
            .into_iter()
            .map(|t| self.collect_one(t, deadline, budget, label_target));
        Some(futures_util::future::join_all(runs).await)
    }

    async fn collect_one(
        &self,
        target: &Target,
        deadline: Instant,
        budget: Duration,
        label_target: bool,
    ) -> Batch {
        // The duration covers the collection itself, not the wait for a concurrency slot.
        let started = std::cell::Cell::new(None::<Instant>);
        let run = async {
            let _permit = self
                .limiter
                .acquire()
                .await
                .map_err(|_| CollectError::Internal("concurrency limiter closed".into()))?;
            started.set(Some(Instant::now()));
            AssertUnwindSafe(target.collector.collect(deadline))
                .catch_unwind()
                .await
                .map_err(|panic| CollectError::Internal(panic_message(&panic)))
        };
        let outcome = match tokio::time::timeout_at(deadline + GRACE, run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => Outcome::down(Vec::new(), error),
            Err(_) => Outcome::down(Vec::new(), CollectError::Timeout(budget)),
        };
        let elapsed = started.get().map_or(Duration::ZERO, |s| s.elapsed());
        let kind = target.collector.kind();
        for error in &outcome.errors {
            tracing::warn!(
                target_name = %target.name,
                collector = kind.name,
                class = error.class(),
                %error,
                "target scrape failed"
            );
        }
        let errors: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
        target.record(LastScrape {
            finished: SystemTime::now(),
            duration: elapsed,
            up: outcome.up,
            succeeded: outcome.succeeded(),
            error: (!errors.is_empty()).then(|| redact(&errors.join("; "))),
        });
        let gauge = |yes: bool| if yes { 1.0 } else { 0.0 };
        let mut own = Families::new();
        own.gauge(kind.up_metric, kind.up_help)
            .set(&[], gauge(outcome.up));
        own.gauge(
            "fanout_exporter_scrape_success",
            "Whether the collector of a target finished without error within the scrape deadline (1) or not (0).",
        )
        .set(&[("collector", kind.name)], gauge(outcome.succeeded()));
        own.gauge(
            "fanout_exporter_scrape_duration_seconds",
            "Wall time spent collecting a target during this scrape, without waiting for a concurrency slot.",
        )
        .set(&[("collector", kind.name)], elapsed.as_secs_f64());
        let mut families: Vec<MetricFamily> = own.finish();
        families.extend(outcome.families);

        let mut labels = Vec::with_capacity(target.labels.len() + 1);
        if label_target {
            labels.push(("target".to_owned(), target.name.clone()));
        }
        labels.extend(target.labels.iter().cloned());
        // Rendered now, as this target finishes, so its families are freed before the others answer.
        crate::exposition::render(&target.name, &labels, &families)
    }
}

/// The budget rule (exporter-conventions §2): the header minus the offset, bounded by the configured
/// timeout; a header smaller than the offset is used whole; an unusable header is ignored with a
/// warning. Never below [`MIN_BUDGET`].
pub fn budget(configured: Duration, offset: Duration, header: Option<&str>) -> Duration {
    let Some(raw) = header else {
        return configured.max(MIN_BUDGET);
    };
    let seconds = match raw.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => s,
        _ => {
            tracing::warn!(
                header = raw,
                "ignoring unusable X-Prometheus-Scrape-Timeout-Seconds"
            );
            return configured.max(MIN_BUDGET);
        }
    };
    let from_header = Duration::try_from_secs_f64(seconds).unwrap_or(configured);
    let usable = match from_header.checked_sub(offset).filter(|d| !d.is_zero()) {
        Some(d) => d,
        None => {
            tracing::warn!(
                header = raw,
                offset_seconds = offset.as_secs_f64(),
                "scrape timeout header is not larger than the timeout offset; using it whole"
            );
            from_header
        }
    };
    usable.min(configured).max(MIN_BUDGET)
}

/// Longest error text kept for the status page.
const MAX_ERROR_CHARS: usize = 500;

/// Make an error message fit for a page anyone with network access can open. Collectors already keep
/// secrets out of their errors; this is the second line of defence for text they pass on from
/// elsewhere (a redirect's `Location`, a server's message): of every URL only the scheme, host and
/// port stay (userinfo, path, query and fragment are replaced), line breaks are flattened, and the
/// text is cut to a bounded length.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_ERROR_CHARS + 3));
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The URL runs to the next whitespace or quote.
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        // Userinfo ends at the last `@` (sloppy text may put a `/` in a password; an `@` in a path
        // only costs the host its visibility).
        let host_part = match url.rfind('@') {
            Some(at) => {
                out.push_str("[REDACTED]@");
                &url[at + 1..]
            }
            None => url,
        };
        // Path, query and fragment may all carry tokens; the host and port are what tell targets apart.
        match host_part.find(['/', '?', '#', ';']) {
            Some(cut) => {
                out.push_str(&host_part[..cut]);
                out.push_str("/[REDACTED]");
            }
            None => out.push_str(host_part),
        }
        rest = tail;
    }
    out.push_str(rest);
    let flat: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown payload".to_owned());
    format!("collector panicked: {text}")
}

#[cfg(test)]
mod tests;
