//! fanout_exporter: one Prometheus exporter for a data tier.
//!
//! On every scrape of `/metrics` the engine fans out to the configured targets' collectors
//! concurrently under one deadline, and encodes the freshly built families they return, so a dead or
//! hung target costs only its own samples.
//!
//! # Layout
//! - [`cli`]: command-line flags, named as Prometheus exporters name them.
//! - [`config`]: YAML file, environment and flags layered with figment, validated into collectors.
//! - [`scrape`]: the budget rule and the concurrent fan-out, with per-target up/success/duration.
//! - [`exposition`]: validation, labelling, merging and the 0.0.4 text encoding.
//! - [`server`]: the actix-web endpoints (`/metrics`, `/probe`, `/`, `/-/healthy`, `/-/ready`).
//! - [`telemetry`]: logging in logfmt or JSON.
//! - [`web`]: `--web.config.file`, exporter-toolkit's TLS, basic authentication and headers.
//! - [`healthcheck`]: the `healthcheck` subcommand, for container images without curl.
//!
//! The collectors themselves live in the `fanout_collectors` crate.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod exposition;
pub mod flight;
pub mod healthcheck;
pub mod modules;
pub mod peers;
pub mod redact;
pub mod scrape;
pub mod server;
pub mod target;
pub mod telemetry;
pub mod web;

/// Version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git revision of this build (`unknown` outside a checkout).
pub const REVISION: &str = env!("FANOUT_BUILD_REVISION");
