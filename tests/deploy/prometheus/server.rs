//! The one runner of a real Prometheus for the deployment checks: [`Prometheus`] starts Debian's
//! `prometheus` on a free loopback port with a configuration of the caller's, under the watchdog of
//! watched.rs, and reads its HTTP API. The real-Prometheus test (`prometheus.rs`) and the monitor
//! checks of `kubernetes` both use it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::watched::{self, Watched};
use crate::common::poll;
use crate::support;

/// A running Prometheus on a free port of 127.0.0.1, with its configuration, data and log in one
/// directory; killed, reaped and its directory removed when dropped (or by its watchdog).
pub struct Prometheus {
    pub address: SocketAddr,
    dir: PathBuf,
    process: Option<Watched>,
}

impl Prometheus {
    pub fn start(config: &str) -> Self {
        let binary = prometheus_binary();
        let mut prometheus = Self {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir: watched::temp_dir("fanout-prometheus"),
            process: None,
        };
        let config = support::write(&prometheus.dir, "prometheus.yml", config);
        watched::on_free_port("prometheus", "address already in use", |port| {
            prometheus.address.set_port(port);
            let _ = std::fs::remove_file(prometheus.dir.join("log"));
            // `sh` only redirects stderr to the log and becomes Prometheus (`exec`): one process, whose
            // pid the watchdog knows.
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(r#"log=$1; shift; exec "$@" 2>"$log""#)
                .arg("sh")
                .arg(prometheus.dir.join("log"))
                .arg(&binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    prometheus.dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={}", prometheus.address))
                .arg("--storage.tsdb.retention.time=1h");
            let process = Watched::spawn(&mut command, &prometheus.dir)
                .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
            prometheus.process = Some(process);
            prometheus.wait_ready()
        });
        prometheus
    }

    /// Wait until `/-/ready` answers 200; the log if the process exits or 30 s pass.
    fn wait_ready(&mut self) -> Result<(), String> {
        let ready = poll(Duration::from_secs(30), Duration::from_millis(100), || {
            if let Some(status) = self.process.as_mut().unwrap().try_wait().unwrap() {
                return Some(Err(format!("exited with {status}:\n{}", self.log())));
            }
            let ready = TcpStream::connect(self.address).is_ok()
                && support::get(self.address, "/-/ready", &[]).status == 200;
            ready.then_some(Ok(()))
        })
        .unwrap_or_else(|| Err(format!("not ready after 30 s:\n{}", self.log())));
        if ready.is_err() {
            self.process = None;
        }
        ready
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// GET an API path: its `data`, after checking the envelope says success.
    pub fn api(&self, path: &str) -> Value {
        let response = support::get(self.address, path, &[]);
        let body = response.text();
        assert_eq!(response.status, 200, "GET {path}: {body}");
        let value: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
        assert_eq!(
            value["status"].as_str(),
            Some("success"),
            "GET {path}: {body}"
        );
        value["data"].clone()
    }

    /// An instant query: each series' labels and value.
    pub fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(promql)));
        assert_eq!(data["resultType"].as_str(), Some("vector"), "{promql}");
        seq(&data["result"])
            .iter()
            .map(|sample| {
                let labels = sample["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect();
                let value = text(&sample["value"][1]).parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// Every rule of every group.
    pub fn rules(&self) -> Vec<Value> {
        seq(&self.api("/api/v1/rules")["groups"])
            .iter()
            .flat_map(|group| seq(&group["rules"]))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Watchdog, then Prometheus, killed and reaped before the directory goes.
        self.process = None;
        watched::remove_dir(&self.dir);
    }
}

/// `prometheus` on PATH or in /usr/bin, or a failure that says what to install.
fn prometheus_binary() -> PathBuf {
    support::on_path("prometheus")
        .or_else(|| Some(PathBuf::from("/usr/bin/prometheus")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "prometheus not found: install the Debian package `prometheus` (apt-get install \
                 prometheus), or run scripts/test, which does"
            )
        })
}

/// A JSON array's items (none for anything else).
pub fn seq(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// A JSON string, or "" for anything else (absent fields).
pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Percent-encoding of a query parameter value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
