//! Modules: one kind's settings without an address, for targets that Prometheus' service discovery
//! names at scrape time (`/probe?target=<address>&module=<name>`, as blackbox_exporter does).
//!
//! A module judges every address against its allow-list before anything is built or connected, then
//! keeps one collector per address in a pool, so a dynamic target keeps its connection between
//! scrapes like a configured one. Entries idle for `idle_timeout` are closed by [`Module::sweep`], so
//! a churning fleet (pods replaced every deploy) leaves no dead connections behind; `max_targets`
//! bounds how many addresses are live at once.

pub mod allow;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fanout_collectors::config::Destination;
use fanout_collectors::{Collector, Kind};

use crate::target::Target;
use allow::AllowList;

/// Builds a module's collector for one address, reading the module's secret files afresh; the error
/// says which setting refused the address.
pub type Factory = Arc<dyn Fn(&str) -> Result<Arc<dyn Collector>, String> + Send + Sync>;

/// What a module is made of, as the config layer hands it over.
#[derive(Clone)]
pub struct ModuleSpec {
    /// The module's name (`module=` of `/probe`).
    pub name: String,
    /// The kind it collects.
    pub kind: &'static Kind,
    /// Addresses it may be pointed at.
    pub allow: AllowList,
    /// How long an address's collector outlives its last scrape.
    pub idle_timeout: Duration,
    /// Most addresses live at once.
    pub max_targets: usize,
    /// Global labels merged with the module's own, sorted by name.
    pub labels: Vec<(String, String)>,
    /// The kind's address parser (`KindConfig::destination`).
    pub destination: fn(&str) -> Result<Destination, String>,
    /// Builds a collector for an address.
    pub factory: Factory,
    /// Digest of everything the module was built from; equal digests after a reload mean the pooled
    /// collectors can be kept.
    pub fingerprint: u64,
}

/// A module with its pool of live dynamic targets.
pub struct Module {
    spec: ModuleSpec,
    pool: Mutex<BTreeMap<String, Pooled>>,
}

struct Pooled {
    target: Target,
    last_used: Instant,
}

/// Why `/probe` did not collect an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The address is not in the kind's syntax (400).
    BadAddress(String),
    /// The allow-list does not permit it (403); nothing was connected to.
    Forbidden(String),
    /// The module already holds `max_targets` live addresses (503).
    Full(String),
    /// The module's settings cannot be used with this address (400).
    Invalid(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress(why) | Self::Forbidden(why) | Self::Full(why) | Self::Invalid(why) => {
                f.write_str(why)
            }
        }
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.spec.name)
            .field("kind", &self.spec.kind.name)
            .field("allow", &self.spec.allow.to_string())
            .finish_non_exhaustive()
    }
}

impl Module {
    /// A module with an empty pool.
    pub fn new(spec: ModuleSpec) -> Self {
        Self {
            spec,
            pool: Mutex::default(),
        }
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The kind it collects.
    pub fn kind(&self) -> &'static Kind {
        self.spec.kind
    }

    /// Digest of what the module was built from.
    pub fn fingerprint(&self) -> u64 {
        self.spec.fingerprint
    }

    /// The allow-list, for the config summary.
    pub fn allow(&self) -> &AllowList {
        &self.spec.allow
    }

    /// `idle_timeout`.
    pub fn idle_timeout(&self) -> Duration {
        self.spec.idle_timeout
    }

    /// `max_targets`.
    pub fn max_targets(&self) -> usize {
        self.spec.max_targets
    }

    /// The pooled target for `address`, created when the address is new and allowed. The address is
    /// judged before anything is built, so a refused one is never connected to.
    pub fn target(&self, address: &str, now: Instant) -> Result<Target, Refusal> {
        let destination = (self.spec.destination)(address).map_err(|why| {
            Refusal::BadAddress(format!(
                "target is not a {} address: {why}",
                self.spec.kind.name
            ))
        })?;
        if !self.spec.allow.allows(&destination) {
            return Err(Refusal::Forbidden(format!(
                "target {destination} is not in the allowed_targets of module {:?}",
                self.spec.name
            )));
        }
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = pool.get_mut(address) {
            entry.last_used = now;
            return Ok(entry.target.clone());
        }
        if pool.len() >= self.spec.max_targets {
            return Err(Refusal::Full(format!(
                "module {:?} already holds {} live targets (max_targets); idle ones close after {}",
                self.spec.name,
                pool.len(),
                humantime::format_duration(self.spec.idle_timeout)
            )));
        }
        let collector = (self.spec.factory)(address).map_err(Refusal::Invalid)?;
        let target = Target::new(collector.endpoint(), self.spec.labels.clone(), collector);
        pool.insert(
            address.to_owned(),
            Pooled {
                target: target.clone(),
                last_used: now,
            },
        );
        Ok(target)
    }

    /// Remove the addresses idle for longer than `idle_timeout` and not being scraped, and return
    /// them so the caller can close their connections.
    pub fn sweep(&self, now: Instant) -> Vec<Target> {
        let idle = self.spec.idle_timeout;
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        let expired: Vec<String> = pool
            .iter()
            .filter(|(_, p)| {
                now.saturating_duration_since(p.last_used) >= idle && !p.target.in_use()
            })
            .map(|(address, _)| address.clone())
            .collect();
        expired
            .iter()
            .filter_map(|address| pool.remove(address))
            .map(|p| p.target)
            .collect()
    }

    /// How many addresses are live.
    pub fn live(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The live dynamic targets, by address.
    pub fn targets(&self) -> Vec<Target> {
        let pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        pool.values().map(|p| p.target.clone()).collect()
    }

    /// Take over the pool of the same module from the configuration this one replaces.
    pub fn adopt(&self, old: &Module) {
        let taken = std::mem::take(&mut *old.pool.lock().unwrap_or_else(PoisonError::into_inner));
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(taken);
    }

    /// Empty the pool, returning its targets so the caller can close them.
    pub fn drain(&self) -> Vec<Target> {
        let taken = std::mem::take(&mut *self.pool.lock().unwrap_or_else(PoisonError::into_inner));
        taken.into_values().map(|p| p.target).collect()
    }
}
