//! The deployment files as shipped — container image, docker-compose stack, Kubernetes manifests,
//! Prometheus configuration, alert rules and Grafana dashboard — checked with the real tools their users
//! run (hadolint, docker-compose, kubernetes-validate, promtool, prometheus) and against a running
//! exporter with real MariaDB, Redis and HTTP targets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::mariadb as mariadb_server;
use fanout_testkit::redis as redis_server;

/// Helpers the modules below share: running commands, polling, durations, tsc.
mod common;
/// Dockerfile (hadolint, build steps shared with scripts/test), .dockerignore, docker-compose.yml.
mod container;
/// deploy/kubernetes: schemas, Operator monitors, the sidecar's required fields.
mod kubernetes;
/// A real Prometheus scraping the exporter (static and /probe jobs) against real targets.
mod prometheus;
/// deploy/prometheus and deploy/grafana: promtool on the configuration and rules, dashboard structure.
mod rules;
