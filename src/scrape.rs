//! The scrape engine: the budget rule, the concurrent fan-out, and the per-target bookkeeping.
//!
//! Every selected target is collected concurrently (at most `max_concurrency` at once, across all
//! scrapes in flight), each under the scrape deadline. Whatever a target does — error, hang, panic — it
//! costs only its own samples: the engine always emits the kind's up family,
//! `fanout_exporter_scrape_success` and `fanout_exporter_scrape_duration_seconds` for it, and then hands
//! everything to [`crate::exposition`] to label, merge and encode.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fanout_collectors::Families;
use prometheus::proto::MetricFamily;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::exposition::Batch;
use crate::modules::{Module, Refusal};
use crate::target::{Collected, GRACE, Target};

/// Lowest budget we ever run with, whatever the header says: below this nothing useful finishes.
pub const MIN_BUDGET: Duration = Duration::from_millis(100);

/// Highest budget allowed by configuration (`global.scrape_timeout`).
pub const MAX_BUDGET: Duration = Duration::from_secs(3600);

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

/// Which targets a scrape covers, and how their samples are labelled.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every target, each sample labelled `target="<name>"` (the `/metrics` endpoint).
    All,
    /// One target without a `target` label (the `/probe` multi-target pattern, where Prometheus sets
    /// `instance` by relabelling).
    Probe(&'a str),
}

/// Why a `/probe` of an address through a module collected nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// No module of that name.
    UnknownModule(String),
    /// The module refused the address.
    Refused(Refusal),
}

/// What [`Engine::adopt`] took over from the engine it replaces.
#[derive(Default)]
pub struct Adopted {
    /// Configured targets that kept their collector.
    pub kept: usize,
    /// Targets the old engine had that the new one does not keep, for the caller to close once the
    /// scrapes that started on the old engine are done.
    pub retired: Vec<Target>,
}

/// The fan-out engine of one configuration, shared by all request handlers.
pub struct Engine {
    targets: Vec<Target>,
    modules: BTreeMap<String, Module>,
    limiter: Arc<Semaphore>,
    scrape_timeout: Duration,
    timeout_offset: Duration,
}

impl Engine {
    /// An engine over the configured targets.
    pub fn new(global: &Global, targets: Vec<Target>) -> Self {
        Self {
            targets,
            modules: BTreeMap::new(),
            limiter: Arc::new(Semaphore::new(global.max_concurrency.max(1))),
            scrape_timeout: global.scrape_timeout,
            timeout_offset: global.timeout_offset,
        }
    }

    /// The same engine with the configured modules.
    pub fn with_modules(mut self, modules: Vec<Module>) -> Self {
        self.modules = modules
            .into_iter()
            .map(|m| (m.name().to_owned(), m))
            .collect();
        self
    }

    /// The configured targets, sorted by name.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The configured modules, by name.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.values()
    }

    /// Take over what is unchanged from `old`, the engine this one replaces on a reload: the
    /// collectors (and so the connections) of targets whose name, kind and fingerprint are equal, and
    /// the pools of unchanged modules.
    pub fn adopt(&mut self, old: &Engine) -> Adopted {
        let mut adopted = Adopted::default();
        for previous in &old.targets {
            match self.targets.iter_mut().find(|t| t.same_as(previous)) {
                Some(kept) => {
                    kept.keep(previous);
                    adopted.kept += 1;
                }
                None => adopted.retired.push(previous.clone()),
            }
        }
        for previous in old.modules.values() {
            match self.modules.get(previous.name()) {
                Some(m)
                    if m.kind() == previous.kind() && m.fingerprint() == previous.fingerprint() =>
                {
                    m.adopt(previous);
                }
                _ => adopted.retired.extend(previous.drain()),
            }
        }
        adopted
    }

    /// The longest a scrape that started on this engine can still be running: its budget, plus a
    /// second for encoding and sending.
    pub fn drain(&self) -> Duration {
        self.budget(None) + Duration::from_secs(1)
    }

    /// Close the pooled dynamic targets idle for longer than their module's `idle_timeout`;
    /// returns them so the caller can close their connections.
    pub fn sweep(&self) -> Vec<Target> {
        let now = std::time::Instant::now();
        self.modules.values().flat_map(|m| m.sweep(now)).collect()
    }

    /// Every target this engine holds: configured ones and the live dynamic ones.
    pub fn all_targets(&self) -> Vec<Target> {
        let mut all = self.targets.clone();
        all.extend(self.modules.values().flat_map(Module::targets));
        all
    }

    /// The budget of a scrape: the configured `scrape_timeout`, lowered to Prometheus'
    /// `X-Prometheus-Scrape-Timeout-Seconds` minus the offset when that header is present and usable.
    pub fn budget(&self, header: Option<&str>) -> Duration {
        budget(self.scrape_timeout, self.timeout_offset, header)
    }

    /// Collect the selected targets within `budget` and return their families, not yet merged.
    /// `None` when a probe names a target that is not configured.
    pub async fn scrape(&self, selection: Selection<'_>, budget: Duration) -> Option<Vec<Batch>> {
        let deadline = deadline(budget);
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

    /// Collect `address` with the module `module` within `budget`, as `/probe?target=&module=` does.
    pub async fn probe(
        &self,
        module: &str,
        address: &str,
        budget: Duration,
    ) -> Result<Batch, ProbeError> {
        let deadline = deadline(budget);
        let module = self
            .modules
            .get(module)
            .ok_or_else(|| ProbeError::UnknownModule(module.to_owned()))?;
        let target = module
            .target(address, std::time::Instant::now())
            .map_err(ProbeError::Refused)?;
        Ok(self.collect_one(&target, deadline, budget, false).await)
    }

    async fn collect_one(
        &self,
        target: &Target,
        deadline: Instant,
        budget: Duration,
        label_target: bool,
    ) -> Batch {
        let running = target.join_or_start(&self.limiter, deadline, budget);
        // A scrape that joined a collection started earlier still keeps its own deadline. The
        // collection itself ends by its deadline plus GRACE, so the scrape that started it always
        // gets its result (and the status page its record) before this wait gives up.
        let collected = match tokio::time::timeout_at(deadline + 2 * GRACE, running).await {
            Ok(Some(collected)) => collected,
            Ok(None) => Arc::new(Collected::nothing(Duration::ZERO)),
            Err(_) => Arc::new(Collected::nothing(budget)),
        };
        let kind = target.collector.kind();
        let gauge = |yes: bool| if yes { 1.0 } else { 0.0 };
        let mut own = Families::new();
        own.gauge(kind.up_metric, kind.up_help)
            .set(&[], gauge(collected.up));
        own.gauge(
            "fanout_exporter_scrape_success",
            "Whether the collector of a target finished without error within the scrape deadline (1) or not (0).",
        )
        .set(&[("collector", kind.name)], gauge(collected.succeeded));
        own.gauge(
            "fanout_exporter_scrape_duration_seconds",
            "Wall time spent collecting a target during this scrape, without waiting for a concurrency slot.",
        )
        .set(&[("collector", kind.name)], collected.elapsed.as_secs_f64());
        let own: Vec<MetricFamily> = own.finish();

        let mut labels = Vec::with_capacity(target.labels.len() + 1);
        if label_target {
            labels.push(("target".to_owned(), target.name.clone()));
        }
        labels.extend(target.labels.iter().cloned());
        // Rendered now, as this target finishes, so only text is kept until the others answer. The
        // collection's families are borrowed: scrapes that shared it render them with their own labels.
        crate::exposition::render(
            &target.name,
            &labels,
            own.iter().chain(collected.families.iter()),
        )
    }
}

/// The deadline `budget` from now.
fn deadline(budget: Duration) -> Instant {
    let now = Instant::now();
    // Config bounds scrape_timeout, so this cannot overflow; a far deadline is the safe fallback.
    now.checked_add(budget).unwrap_or(now + MAX_BUDGET)
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

#[cfg(test)]
mod tests;
