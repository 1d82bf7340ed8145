//! The built binary end to end, in one test binary: its endpoints and the real promtool (`e2e`),
//! side by side with blackbox_exporter (`compat`), the mysql and redis kinds against real servers
//! and their peer exporters (`mysql`, `redis`), modules, reloads and shared collections (`fleet`), the
//! status page in Chromium (`status_page`), request limits (`limits`), a canary password looked for
//! in everything a run prints (`secrets`), TLS and authentication (`web`), bad configuration files
//! at start and on reload (`bad_config`), databases killed and frozen (`faults`), servers speaking
//! garbage (`hostile`), 64 concurrent scrapers for a minute (`soak`), and the peers' flags and
//! variables (`migration`).

mod bad_config;
mod compat;
mod diagnostics;
mod e2e;
mod faults;
mod fleet;
mod hostile;
mod limits;
mod migration;
mod mysql;
mod redis;
mod secrets;
mod soak;
mod status_page;
mod web;
