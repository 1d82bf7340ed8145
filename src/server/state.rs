//! What the handlers share, and reloading it.
//!
//! A configuration's engine lives in a [`Generation`]. Every request takes the current one when it
//! starts and keeps it to the end, so a reload never changes a scrape in flight: it builds the next
//! generation off to the side (reading and validating the file on a blocking thread), carries over
//! what is unchanged (collectors and their connections, module pools), swaps it in, and closes what
//! the old generation had that the new one dropped once nothing uses it any more.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanout_collectors::Families;
use prometheus::Registry;

use crate::config::{Config, ConfigErrors};
use crate::exposition::{self, Batch, Merged};
use crate::flight::{Flight, Flights};
use crate::modules::Module;
use crate::scrape::{Engine, Selection};
use crate::target::Target;
use crate::web::WebConfig;

/// Re-reads the configuration from where it first came from.
pub type Loader = Arc<dyn Fn() -> Result<Config, ConfigErrors> + Send + Sync>;

/// One loaded configuration: its engine and what the status page and `/config` show of it.
pub struct Generation {
    /// The engine over its targets and modules.
    pub engine: Engine,
    /// Where the configuration came from.
    pub source: String,
    /// [`Config::summary`].
    pub summary: String,
}

impl Generation {
    /// The generation of a validated configuration.
    pub fn from_config(config: Config) -> Self {
        let summary = config.summary();
        let modules = config.modules.into_iter().map(Module::new).collect();
        Self {
            engine: Engine::new(&config.global, config.targets).with_modules(modules),
            source: config.source,
            summary,
        }
    }
}

/// Outcome of the latest reload, as Prometheus itself reports it.
#[derive(Debug, Clone, Copy)]
struct ReloadStatus {
    successful: bool,
    last_success: SystemTime,
}

/// Everything the handlers share.
pub struct State {
    current: RwLock<Arc<Generation>>,
    loader: Option<Loader>,
    reloading: tokio::sync::Mutex<()>,
    status: Mutex<ReloadStatus>,
    pub(super) telemetry_path: String,
    process: Registry,
    /// `/metrics` responses in flight, by budget in microseconds.
    responses: Flights<u128, Arc<Merged>>,
    scraping: ScrapeThread,
    /// `--web.config.file`: TLS, authentication, headers, rate limit; replaced by a reload (all but
    /// TLS, which the listener was bound with).
    web: RwLock<Option<Arc<WebConfig>>>,
    /// Where the web configuration is re-read from on reload.
    web_file: Option<PathBuf>,
    /// `--web.max-requests`: scrapes (`/metrics`, `/probe`) served at once.
    pub(super) in_flight: InFlight,
}

/// Counts scrapes in flight against `--web.max-requests`, as Prometheus' own handler does.
pub(super) struct InFlight {
    limit: usize,
    now: Arc<AtomicUsize>,
}

/// One scrape's place under the limit, given back when dropped.
pub(super) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    /// A place for one more scrape, unless `limit` (0 = none) are running already.
    pub(super) fn enter(&self) -> Option<Slot> {
        let before = self.now.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.now));
        (self.limit == 0 || before < self.limit).then_some(slot)
    }

    pub(super) fn limit(&self) -> usize {
        self.limit
    }
}

/// The one thread every `/metrics` scrape is collected, rendered and merged on, whichever HTTP
/// worker took the request. glibc gives each thread that allocates its own arena and each arena keeps
/// what a scrape freed for the next one, so scrapes alternating between workers would each keep a
/// scrape's worth of memory (at 1,000 targets about 20 MB per worker). A single scrape never used
/// more than one core anyway: its collections run as tasks of the runtime it runs on.
struct ScrapeThread(Option<tokio::runtime::Runtime>);

impl ScrapeThread {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fanout-scrape")
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => Self(Some(runtime)),
            Err(error) => {
                tracing::warn!(%error, "no scrape thread; scraping on the HTTP workers");
                Self(None)
            }
        }
    }

    fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(runtime) => runtime.spawn(work),
            None => tokio::spawn(work),
        }
    }
}

impl Drop for ScrapeThread {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another runtime (a test's).
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl State {
    /// Shared state for an engine; `config_source` is shown on the status page and `config_summary`
    /// (see [`crate::config::Config::summary`]) at `/config`.
    pub fn new(
        engine: Engine,
        telemetry_path: String,
        config_source: String,
        config_summary: String,
    ) -> Self {
        Self::of(
            Generation {
                engine,
                source: config_source,
                summary: config_summary,
            },
            telemetry_path,
        )
    }

    /// Shared state for a generation.
    pub fn of(generation: Generation, telemetry_path: String) -> Self {
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        if let Err(error) = process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(%error, "process metrics unavailable");
        }
        Self {
            current: RwLock::new(Arc::new(generation)),
            loader: None,
            reloading: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus {
                successful: true,
                last_success: SystemTime::now(),
            }),
            telemetry_path,
            process,
            responses: Flights::default(),
            scraping: ScrapeThread::new(),
            web: RwLock::new(None),
            web_file: None,
            in_flight: InFlight {
                limit: 0,
                now: Arc::new(AtomicUsize::new(0)),
            },
        }
    }

    /// The same state, serving with the web configuration's TLS, authentication and headers, read
    /// again from `file` on every reload.
    pub fn with_web(mut self, web: WebConfig, file: PathBuf) -> Self {
        self.web = RwLock::new(Some(Arc::new(web)));
        self.web_file = Some(file);
        self
    }

    /// The web configuration requests starting now are served with.
    pub(super) fn web(&self) -> Option<Arc<WebConfig>> {
        self.web
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The same state, answering 503 to scrapes past `limit` at once (0: no limit).
    pub fn with_max_requests(mut self, limit: usize) -> Self {
        self.in_flight.limit = limit;
        self
    }

    /// The same state, able to reload through `loader` (SIGHUP, `POST /-/reload`).
    pub fn with_loader(mut self, loader: Loader) -> Self {
        self.loader = Some(loader);
        self
    }

    /// Serve with `web` from now on; TLS stays as the listener was bound (its certificate files are
    /// re-read as they change anyway). What the reload message adds about it.
    fn replace_web(&self, web: WebConfig) -> String {
        let mut slot = self.web.write().unwrap_or_else(PoisonError::into_inner);
        let tls_changed = slot.as_ref().map(|w| w.tls_fingerprint()) != Some(web.tls_fingerprint());
        *slot = Some(Arc::new(web));
        if tls_changed {
            tracing::warn!(
                "tls_server_config changed: it takes effect at the next restart (certificate files are re-read as they change)"
            );
            "; web configuration reloaded, but tls_server_config changes need a restart".to_owned()
        } else {
            "; web configuration reloaded".to_owned()
        }
    }

    /// The generation requests starting now use.
    pub fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-read and apply the configuration. A bad file keeps the running configuration; the error
    /// names file, key and line, and is logged too. Reloads run one at a time.
    pub async fn reload(&self) -> Result<String, String> {
        let Some(loader) = self.loader.clone() else {
            return Err("this exporter cannot reload: it was not started from a loader".into());
        };
        let _one_at_a_time = self.reloading.lock().await;
        let web_file = self.web_file.clone();
        // Both files, and either being bad keeps both running ones.
        let loaded = tokio::task::spawn_blocking(move || {
            let web = web_file
                .map(|file| crate::web::load(&file))
                .transpose()
                .map_err(|errors| format!("invalid web configuration:\n{errors}"));
            let config = loader().map_err(|errors| format!("invalid configuration:\n{errors}"));
            match (web, config) {
                (Ok(web), Ok(config)) => Ok((web, config)),
                (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
                (Err(why), _) | (_, Err(why)) => Err(why),
            }
        })
        .await
        .map_err(|e| format!("reloading failed: {e}"))
        .and_then(|r| r);
        let (web, config) = match loaded {
            Ok(loaded) => loaded,
            Err(why) => {
                self.status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .successful = false;
                tracing::error!(
                    error = why.as_str(),
                    "reload failed; keeping the running configuration"
                );
                return Err(why);
            }
        };
        let web_note = web.map(|web| self.replace_web(web)).unwrap_or_default();
        let mut next = Generation::from_config(config);
        let old = self.current();
        let adopted = next.engine.adopt(&old.engine);
        let message = format!(
            "configuration reloaded from {}: {} targets ({} kept with their connections), {} modules, {} retired",
            next.source,
            next.engine.targets().len(),
            adopted.kept,
            next.engine.modules().count(),
            adopted.retired.len()
        ) + &web_note;
        let drain = old.engine.drain();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        drop(old);
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = ReloadStatus {
            successful: true,
            last_success: SystemTime::now(),
        };
        tracing::info!("{message}");
        tokio::spawn(retire(adopted.retired, drain));
        Ok(message)
    }

    /// The `/metrics` body for a scrape with `budget`. Requests that arrive while one with the same
    /// budget is being collected and encoded share its body: with two Prometheus replicas and a
    /// dashboard, or 64 clients at once, the exporter does the work once instead of queuing every
    /// client behind the CPU cost of merging and encoding the same samples again. The work runs as
    /// its own task, so it finishes even when the request that started it goes away.
    pub(super) fn metrics_body(self: &Arc<Self>, budget: Duration) -> Flight<Arc<Merged>> {
        let state = Arc::clone(self);
        self.responses.join_or_start(
            budget.as_micros(),
            |work| self.scraping.spawn(work),
            move || async move {
                let generation = state.current();
                let mut batches = generation
                    .engine
                    .scrape(Selection::All, budget)
                    .await
                    .unwrap_or_default();
                batches.push(state.self_metrics(budget));
                Arc::new(exposition::merge(batches))
            },
        )
    }

    /// Close the pooled dynamic targets that have been idle for longer than their module allows.
    pub async fn sweep(&self) {
        let expired = self.current().engine.sweep();
        if !expired.is_empty() {
            tracing::debug!(targets = expired.len(), "closing idle dynamic targets");
            close(expired).await;
        }
    }

    pub(super) fn self_metrics(&self, budget: Duration) -> Batch {
        let status = *self.status.lock().unwrap_or_else(PoisonError::into_inner);
        let mut own = Families::new();
        own.info(
            "fanout_exporter_build_info",
            "A metric with a constant '1' value labeled by the version and git revision of fanout_exporter.",
            &[("version", crate::VERSION), ("revision", crate::REVISION)],
        );
        own.gauge(
            "fanout_exporter_scrape_timeout_seconds",
            "Budget of this scrape: the configured scrape_timeout, lowered to Prometheus' timeout header minus the offset.",
        )
        .set(&[], budget.as_secs_f64());
        own.gauge(
            "fanout_exporter_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        .set(&[], if status.successful { 1.0 } else { 0.0 });
        own.gauge(
            "fanout_exporter_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload (or of the start).",
        )
        .set(
            &[],
            status
                .last_success
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        let live: usize = self
            .current()
            .engine
            .modules()
            .map(|m| m.targets().len())
            .sum();
        own.gauge(
            "fanout_exporter_dynamic_targets",
            "Live targets created by /probe?module= and pooled until idle.",
        )
        .set(&[], live as f64);
        let mut families = own.finish();
        families.extend(self.process.gather());
        exposition::render("fanout_exporter", &[], &families)
    }
}

/// Close retired targets once nothing scrapes them any more (or after `drain`, the longest a scrape
/// can still be running on the old configuration).
async fn retire(retired: Vec<Target>, drain: Duration) {
    if retired.is_empty() {
        return;
    }
    let until = tokio::time::Instant::now() + drain;
    while retired.iter().any(Target::in_use) && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    close(retired).await;
}

/// Let collectors say goodbye to their servers, briefly.
pub(super) async fn close(targets: Vec<Target>) {
    let goodbyes = futures_util::future::join_all(targets.iter().map(|t| t.collector.shutdown()));
    if tokio::time::timeout(Duration::from_secs(2), goodbyes)
        .await
        .is_err()
    {
        tracing::warn!("targets did not close their connections within 2s");
    }
}
