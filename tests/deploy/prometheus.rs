//! A real Prometheus (Debian's `prometheus`) running the shipped deploy/prometheus/prometheus.yml
//! (only the exporter's address, the probe target names, the intervals and the rule file paths
//! rewritten, see [`prometheus_yml`]) scraping the built exporter both documented ways — the static
//! job on `/metrics` and the `/probe` job with the multi-target relabeling — while the exporter
//! collects real targets: a MariaDB primary and its replica, a redis-server, and an HTTP and an HTTPS
//! server. Prometheus must see every target up, ingest every sample (none dropped as out of order,
//! duplicate or out of bounds), compute `rate()` over the exporter's counters, load and evaluate the
//! shipped alert rules without error, and know every metric name the rules and the dashboard query.
//!
//! Cleanup: the MariaDB and Redis servers and Prometheus run under the watchdog of watched.rs, the
//! exporter under a [`Watchdog`] of its own: whatever ends this process (a failed assertion, SIGKILL)
//! ends them too and removes their directories. A failed assertion drops everything normally first.

use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::mariadb_server::{self, Pair};
use crate::redis_server::{self, Redis};
use crate::support::{self, Exporter};

// mariadb_server and redis_server each load their own copy.
use fanout_testkit::watched;

/// The service discovery jobs (file_sd and Kubernetes) against the exporter's modules.
mod discovery;
/// The Prometheus runner, which the Kubernetes monitor checks use too.
pub mod server;
/// The HTTP and HTTPS targets.
mod web;

use server::{Prometheus, encode, seq, text};
use web::{make_pki, serve, server_tls};

/// The shipped static job on `/metrics`; its samples carry `target`.
const JOB: &str = "fanout";
/// The shipped `/probe` job; the target name becomes `instance`.
const PROBE_JOB: &str = "fanout-probe";
/// The shipped file_sd job on `/probe`, `?target=<address>&module=<module>`: see [`discovery`].
const SD_JOB: &str = "fanout-sd";
const MYSQL: &[&str] = &["db-primary", "db-replica"];
const REDIS: &[&str] = &["cache"];
const HTTP: &[&str] = &["web", "web-tls"];
/// Every configured target, in the order of the probe job's static config.
const TARGETS: &[&str] = &["db-primary", "db-replica", "cache", "web", "web-tls"];
/// Scrapes of every target to wait for before asserting (one per second).
const SCRAPES: f64 = 5.0;
/// Validity of the HTTPS server's certificate, which `probe_ssl_earliest_cert_expiry` must report.
const LEAF_DAYS: f64 = 365.0;

#[test]
fn prometheus_scrapes_every_target_both_ways_and_evaluates_the_shipped_rules() {
    let rules = shipped_rule_files();
    let dir = tempfile::tempdir().unwrap();

    // Targets: the MariaDB pair and Redis start in parallel; the web servers are threads.
    let (pair, cache) = std::thread::scope(|s| {
        let pair = s.spawn(Pair::start);
        let cache = s.spawn(|| Redis::start(redis_server::Opts::default()));
        (pair.join().unwrap(), cache.join().unwrap())
    });
    pair.primary
        .sql("CREATE TABLE replicated.load (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME)");
    make_pki(dir.path());
    let web = serve(None);
    let web_tls = serve(Some(server_tls(dir.path())));

    support::write(dir.path(), "mysql.pw", mariadb_server::EXPORTER_PASSWORD);
    // The sub-collectors deploy/compose/fanout.yaml enables, so that Prometheus ingests what a
    // deployment's does.
    let mysql = "user: exporter, password_file: mysql.pw, collect: [global_status, \
                 global_variables, slave_status, info_schema.processlist, \
                 info_schema.innodb_metrics, perf_schema.eventsstatements]";
    // Prometheus' 1 s timeout minus the default 500 ms offset would leave half a second per scrape
    // for a debug build on a shared machine; 100 ms keeps the deadline real but roomy.
    let config = support::write(
        dir.path(),
        "fanout.yaml",
        &format!(
            "global:\n  timeout_offset: 100ms\n\
             mysql:\n\
             \x20 db-primary: {{address: '127.0.0.1:{}', {mysql}}}\n\
             \x20 db-replica: {{address: '127.0.0.1:{}', {mysql}}}\n\
             redis:\n\
             \x20 cache: {{url: '{}'}}\n\
             http:\n\
             \x20 web: {{url: 'http://{web}/'}}\n\
             \x20 web-tls: {{url: 'https://{web_tls}/', tls: {{ca_file: ca.crt}}}}\n",
            pair.primary.port(),
            pair.replica.port(),
            cache.url(),
        ),
    );
    let (exporter, _exporter_watchdog) = watched_exporter(&config, dir.path());
    // The file_sd job's directory, empty: this test asserts on configured targets only (the
    // discovered ones are discovery.rs'). It must exist, or Prometheus logs that it cannot watch it.
    let sd_dir = dir.path().join("sd");
    std::fs::create_dir_all(sd_dir.join("targets")).unwrap();
    let prometheus = Prometheus::start(&prometheus_yml(exporter.address, &sd_dir));

    // Bounded wait: target discovery alone takes Prometheus up to 5 s, then one scrape a second.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut iteration = 0;
    loop {
        // Some load, so that the counters `rate()` reads move for a reason besides the scrapes.
        iteration += 1;
        cache.cli(&["INCR", "fanout:load"]);
        pair.primary.sql(
            "INSERT INTO replicated.load (at) VALUES (NOW()); SELECT COUNT(*) FROM replicated.load",
        );
        let counts = prometheus.query(r#"count_over_time(up{job=~"fanout.*"}[1m])"#);
        let scraped = counts.len() == 1 + TARGETS.len() && counts.iter().all(|s| s.1 >= SCRAPES);
        let unevaluated: Vec<String> = prometheus
            .rules()
            .iter()
            .filter(|rule| rule["health"].as_str() == Some("unknown"))
            .map(|rule| text(&rule["name"]))
            .collect();
        if scraped && unevaluated.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 45 s ({iteration} polls), Prometheus has not scraped all {} targets {SCRAPES} \
             times (scrapes per target: {counts:?}) or not evaluated these rules yet (a group \
             interval over 1 s?): {unevaluated:?}\nPrometheus log:\n{}",
            1 + TARGETS.len(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    assert_targets_healthy(&prometheus, exporter.address);
    let per_target = |promql: &str, targets: &[&str], ok: &dyn Fn(f64) -> bool, what: &str| {
        assert_per_target(&prometheus, &exporter, promql, targets, ok, what);
    };
    let one = |v: f64| v == 1.0;
    per_target("mysql_up", MYSQL, &one, "1");
    per_target("redis_up", REDIS, &one, "1");
    per_target("probe_success", HTTP, &one, "1");
    per_target("fanout_exporter_scrape_success", TARGETS, &one, "1");
    // Replication: the replica's threads run, the primary has no slave status at all.
    per_target(
        "mysql_slave_status_slave_io_running",
        &["db-replica"],
        &one,
        "1",
    );
    per_target(
        "mysql_slave_status_slave_sql_running",
        &["db-replica"],
        &one,
        "1",
    );
    per_target(
        "mysql_slave_status_seconds_behind_master",
        &["db-replica"],
        &|v| (0.0..60.0).contains(&v),
        "a lag under a minute",
    );
    // TLS: only the HTTPS probe has a certificate, the one the server was given.
    per_target("probe_http_ssl == 1", &["web-tls"], &one, "1 (web's is 0)");
    per_target(
        "probe_ssl_earliest_cert_expiry - time()",
        &["web-tls"],
        &|v| ((LEAF_DAYS - 1.0) * 86400.0..(LEAF_DAYS + 1.0) * 86400.0).contains(&v),
        &format!("the leaf's {LEAF_DAYS} days of validity"),
    );
    // Counters through rate(): one positive rate per target and job.
    let positive = |v: f64| v > 0.0;
    per_target(
        "rate(redis_commands_processed_total[10s])",
        REDIS,
        &positive,
        "> 0",
    );
    per_target(
        "rate(mysql_global_status_queries[10s])",
        MYSQL,
        &positive,
        "> 0",
    );

    assert_rules_ok(&prometheus, &rules);
    assert_queried_names_ingested(
        &prometheus,
        &crate::rules::queried_metric_names(),
        crate::rules::PROMETHEUS_GENERATED,
    );
    assert_nothing_rejected(&prometheus);
    let exporter_warnings: Vec<String> = exporter
        .log()
        .into_iter()
        .filter(|l| l.contains("level=warn") || l.contains("level=error"))
        .collect();
    assert!(
        exporter_warnings.is_empty(),
        "the exporter logged warnings while Prometheus scraped healthy targets:\n{}",
        exporter_warnings.join("\n")
    );
}

/// The shipped alert rule files, `deploy/prometheus/rules/*.yml`; at least one must exist.
fn shipped_rule_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: the shipped alert rules are missing",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.yml alert rules in {}",
        dir.display()
    );
    files
}

/// The shipped Prometheus configuration, relative to the repository root.
const SHIPPED_CONFIG: &str = "deploy/prometheus/prometheus.yml";
/// Where the shipped configuration scrapes the exporter: the compose stack's service.
const SHIPPED_EXPORTER: &str = "fanout-exporter:9930";
/// The test's scrape interval, scrape timeout and rule evaluation interval: one scrape a second.
const INTERVAL: &str = "1s";

/// The shipped [`SHIPPED_CONFIG`] with only what must differ on a test machine rewritten, each
/// rewrite asserted to happen exactly where expected, so that a renamed job, a moved exporter
/// address or a changed relabel chain fails here instead of being bypassed:
///
/// * the global `scrape_interval`, `scrape_timeout` and `evaluation_interval` (and any job's own
///   `scrape_interval` or `scrape_timeout`) become [`INTERVAL`];
/// * the `rule_files` globs, relative to the file's directory, become absolute (same globs);
/// * [`SHIPPED_EXPORTER`] becomes `exporter`, and it must occur exactly in the static job's target
///   and in the `replacement` of the one relabel step that sets `__address__` of the probe job and
///   of the file_sd job;
/// * the probe job's target names (the compose stack's) become [`TARGETS`];
/// * the file_sd job's globs, relative to the file's directory, become the same globs under
///   `sd_dir` (where the test writes its targets files instead of the shipped example's).
///
/// Everything else — job names, `metrics_path`, the relabel chains, labels — is Prometheus' input as
/// shipped.
fn prometheus_yml(exporter: SocketAddr, sd_dir: &Path) -> String {
    derive_config(&shipped_config(), exporter, sd_dir)
}

/// The text of [`SHIPPED_CONFIG`].
fn shipped_config() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_CONFIG))
        .unwrap_or_else(|e| panic!("{SHIPPED_CONFIG}: {e}"))
}

/// [`prometheus_yml`] of the configuration `text`.
fn derive_config(text: &str, exporter: SocketAddr, sd_dir: &Path) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let mut config: Yaml =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{SHIPPED_CONFIG}: {e}"));

    let global = child(&mut config, "global", "");
    for key in ["scrape_interval", "scrape_timeout", "evaluation_interval"] {
        set_string(
            child(global, key, "global"),
            INTERVAL,
            &format!("global.{key}"),
        );
    }

    let rule_files = child(&mut config, "rule_files", "")
        .as_sequence_mut()
        .filter(|globs| !globs.is_empty())
        .unwrap_or_else(|| panic!("{SHIPPED_CONFIG}: `rule_files` is not a list of globs"));
    for (i, glob) in rule_files.iter_mut().enumerate() {
        let absolute = glob
            .as_str()
            .filter(|g| Path::new(g).is_relative())
            .map(|g| dir.join(g).to_str().unwrap().to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "{SHIPPED_CONFIG}: rule_files[{i}] is {glob:?}, not a glob relative to the \
                     file's directory (as the container mounts it at /etc/prometheus)"
                )
            });
        *glob = Yaml::from(absolute);
    }

    let jobs = child(&mut config, "scrape_configs", "")
        .as_sequence_mut()
        .unwrap_or_else(|| panic!("{SHIPPED_CONFIG}: `scrape_configs` is not a list"));
    let mut names: Vec<&str> = jobs
        .iter()
        .map(|job| job["job_name"].as_str().unwrap_or_default())
        .collect();
    names.sort_unstable();
    let mut expected_names = vec![JOB, PROBE_JOB, SD_JOB];
    expected_names.sort_unstable();
    assert_eq!(
        names, expected_names,
        "{SHIPPED_CONFIG}: the scrape jobs this test runs and asserts on"
    );
    for job in jobs.iter_mut() {
        let name = job["job_name"].as_str().unwrap().to_owned();
        for key in ["scrape_interval", "scrape_timeout"] {
            if let Some(value) = job.get_mut(key) {
                set_string(value, INTERVAL, &format!("scrape_configs[{name}].{key}"));
            }
        }
    }

    let sd = jobs
        .iter_mut()
        .find(|job| job["job_name"].as_str() == Some(SD_JOB))
        .unwrap();
    let sd_step = address_step(sd, SD_JOB);
    assert!(
        sd.get("static_configs").is_none(),
        "{SHIPPED_CONFIG}: the {SD_JOB} job's targets come from files only"
    );
    let file_sd = child(sd, "file_sd_configs", SD_JOB)
        .as_sequence_mut()
        .filter(|configs| configs.len() == 1)
        .unwrap_or_else(|| {
            panic!("{SHIPPED_CONFIG}: the {SD_JOB} job must have one file_sd_configs entry")
        });
    let files = child(&mut file_sd[0], "files", SD_JOB)
        .as_sequence_mut()
        .filter(|files| !files.is_empty())
        .unwrap_or_else(|| panic!("{SHIPPED_CONFIG}: {SD_JOB} files are not a list of globs"));
    for (i, glob) in files.iter_mut().enumerate() {
        let moved = glob
            .as_str()
            .filter(|g| Path::new(g).is_relative())
            .map(|g| sd_dir.join(g).to_str().unwrap().to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "{SHIPPED_CONFIG}: {SD_JOB} files[{i}] is {glob:?}, not a glob relative to the \
                     file's directory"
                )
            });
        *glob = Yaml::from(moved);
    }

    let probe = jobs
        .iter_mut()
        .find(|job| job["job_name"].as_str() == Some(PROBE_JOB))
        .unwrap();
    let address_step = address_step(probe, PROBE_JOB);
    let statics = child(probe, "static_configs", PROBE_JOB)
        .as_sequence_mut()
        .filter(|statics| statics.len() == 1)
        .unwrap_or_else(|| {
            panic!("{SHIPPED_CONFIG}: the {PROBE_JOB} job must have one static_configs entry")
        });
    let targets = child(&mut statics[0], "targets", PROBE_JOB)
        .as_sequence_mut()
        .unwrap_or_else(|| panic!("{SHIPPED_CONFIG}: {PROBE_JOB} targets are not a list"));
    assert!(
        !targets.is_empty()
            && targets.iter().all(|t| t
                .as_str()
                .is_some_and(|t| !t.is_empty() && !t.contains(':'))),
        "{SHIPPED_CONFIG}: the {PROBE_JOB} targets must be target names, not addresses: \
         {targets:?}"
    );
    *targets = TARGETS.iter().map(|t| Yaml::from(*t)).collect();

    let mut replaced = BTreeSet::new();
    replace_everywhere(
        &mut config,
        SHIPPED_EXPORTER,
        &exporter.to_string(),
        String::new(),
        &mut replaced,
    );
    let expected = BTreeSet::from([
        format!("scrape_configs[{JOB}].static_configs[0].targets[0]"),
        format!("scrape_configs[{PROBE_JOB}].relabel_configs[{address_step}].replacement"),
        format!("scrape_configs[{SD_JOB}].relabel_configs[{sd_step}].replacement"),
    ]);
    assert_eq!(
        replaced, expected,
        "{SHIPPED_CONFIG}: where {SHIPPED_EXPORTER} occurs (the static job's target and the probe \
         and file_sd jobs' __address__ replacements, nowhere else)"
    );

    serde_yaml::to_string(&config).unwrap()
}

/// The index of the one relabel step of `job` (named `name`) that sets `__address__`: where a
/// `/probe` job sends its scrapes to the exporter.
fn address_step(job: &Yaml, name: &str) -> usize {
    let steps: Vec<usize> = seq_yaml(&job["relabel_configs"])
        .iter()
        .enumerate()
        .filter(|(_, step)| step["target_label"].as_str() == Some("__address__"))
        .map(|(i, _)| i)
        .collect();
    let [step] = steps[..] else {
        panic!(
            "{SHIPPED_CONFIG}: the {name} job must have exactly one relabel step setting \
             __address__ (to the exporter), has {}: {:?}",
            steps.len(),
            job["relabel_configs"]
        );
    };
    step
}

/// The derived configuration differs from the shipped one exactly where [`prometheus_yml`] says,
/// and a shipped configuration whose jobs, exporter address, relabel chain, intervals or rule paths
/// moved is refused rather than run around. Quick: no Prometheus, no targets.
#[test]
fn prometheus_scrapes_with_the_shipped_config_rewritten_only_where_a_test_machine_differs() {
    let shipped_text = shipped_config();
    let exporter = SocketAddr::from(([127, 0, 0, 1], 45678));
    let shipped: Yaml = serde_yaml::from_str(&shipped_text).unwrap();
    let sd_dir = Path::new("/nonexistent/sd");
    let derived: Yaml =
        serde_yaml::from_str(&derive_config(&shipped_text, exporter, sd_dir)).unwrap();
    let mut changed = Vec::new();
    differences(&shipped, &derived, String::new(), &mut changed);
    let step = address_step(job_of(&derived, PROBE_JOB), PROBE_JOB);
    let sd_step = address_step(job_of(&derived, SD_JOB), SD_JOB);
    let mut expected = vec![
        ("global.scrape_interval".to_owned(), Yaml::from(INTERVAL)),
        ("global.scrape_timeout".to_owned(), Yaml::from(INTERVAL)),
        (
            "global.evaluation_interval".to_owned(),
            Yaml::from(INTERVAL),
        ),
        (
            format!("scrape_configs[{JOB}].static_configs[0].targets[0]"),
            Yaml::from(exporter.to_string()),
        ),
        (
            format!("scrape_configs[{PROBE_JOB}].static_configs[0].targets"),
            Yaml::from(TARGETS.to_vec()),
        ),
        (
            format!("scrape_configs[{PROBE_JOB}].relabel_configs[{step}].replacement"),
            Yaml::from(exporter.to_string()),
        ),
        (
            format!("scrape_configs[{SD_JOB}].relabel_configs[{sd_step}].replacement"),
            Yaml::from(exporter.to_string()),
        ),
    ];
    // The file_sd globs, under the test's directory.
    let files = &job_of(&shipped, SD_JOB)["file_sd_configs"][0]["files"];
    for (i, glob) in seq_yaml(files).iter().enumerate() {
        expected.push((
            format!("scrape_configs[{SD_JOB}].file_sd_configs[0].files[{i}]"),
            Yaml::from(sd_dir.join(glob.as_str().unwrap()).to_str().unwrap()),
        ));
    }
    // The shipped globs, under deploy/prometheus.
    for (i, glob) in seq_yaml(&shipped["rule_files"]).iter().enumerate() {
        let absolute = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/prometheus")
            .join(glob.as_str().unwrap());
        expected.push((
            format!("rule_files[{i}]"),
            Yaml::from(absolute.to_str().unwrap()),
        ));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(changed, expected, "what the derived configuration changes");

    let refused = |what: &str, from: &str, to: &str| {
        assert!(
            shipped_text.contains(from),
            "{SHIPPED_CONFIG} no longer contains {from:?}: update this mutant ({what})"
        );
        let mutant = shipped_text.replacen(from, to, 1);
        let result = std::panic::catch_unwind(|| derive_config(&mutant, exporter, sd_dir));
        assert!(
            result.is_err(),
            "a shipped configuration with {what} was not refused:\n{mutant}"
        );
    };
    refused(
        "the probe job renamed",
        "job_name: 'fanout-probe'",
        "job_name: 'fanout-multi'",
    );
    refused(
        "a third job",
        "scrape_configs:\n",
        "scrape_configs:\n  - job_name: extra\n    static_configs: [{targets: ['x:1']}]\n",
    );
    refused(
        "the file_sd job renamed",
        "job_name: 'fanout-sd'",
        "job_name: 'fanout-discovered'",
    );
    refused(
        "absolute file_sd globs",
        "- targets/*.yml",
        "- /etc/prometheus/targets/*.yml",
    );
    refused(
        "static targets in the file_sd job",
        "    file_sd_configs:\n",
        "    static_configs: [{targets: ['x:1']}]\n    file_sd_configs:\n",
    );
    // The file_sd job is the last: its __address__ step is the file's last replacement.
    let last = shipped_text
        .rfind("replacement: fanout-exporter:9930")
        .expect("the file_sd job's replacement");
    let mutant = format!(
        "{}replacement: exporter:9930{}",
        &shipped_text[..last],
        &shipped_text[last + "replacement: fanout-exporter:9930".len()..]
    );
    assert!(
        std::panic::catch_unwind(|| derive_config(&mutant, exporter, sd_dir)).is_err(),
        "a shipped configuration whose file_sd job sends scrapes elsewhere was not refused"
    );
    refused(
        "the static job scraping another address",
        "targets: ['fanout-exporter:9930']",
        "targets: ['exporter:9930']",
    );
    refused(
        "the probe job sending scrapes elsewhere",
        "replacement: fanout-exporter:9930",
        "replacement: exporter:9930",
    );
    refused(
        "no relabel step setting __address__",
        "target_label: __address__",
        "target_label: __tmp_address",
    );
    refused(
        "the exporter address also in a label",
        "- targets: ['fanout-exporter:9930']",
        "- labels: {via: 'fanout-exporter:9930'}\n        targets: ['fanout-exporter:9930']",
    );
    refused(
        "probe targets that are addresses",
        "targets: ['mariadb', 'redis', 'grafana']",
        "targets: ['mariadb:3306']",
    );
    refused("no evaluation_interval", "evaluation_interval: 15s", "");
    refused(
        "absolute rule files",
        "- rules/*.yml",
        "- /etc/prometheus/rules/*.yml",
    );
}

/// The (path, new value) of every difference between `old` and `new`, paths as
/// [`replace_everywhere`] makes them; a value of another kind or a list of another length is one
/// difference.
fn differences(old: &Yaml, new: &Yaml, path: String, out: &mut Vec<(String, Yaml)>) {
    match (old, new) {
        (Yaml::Mapping(a), Yaml::Mapping(b)) if a.len() == b.len() => {
            for (key, value) in a {
                let name = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_owned);
                let path = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                match b.get(key) {
                    Some(other) => differences(value, other, path, out),
                    None => out.push((path, Yaml::Null)),
                }
            }
        }
        (Yaml::Sequence(a), Yaml::Sequence(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let index = match x["job_name"].as_str() {
                    Some(name) => format!("{path}[{name}]"),
                    None => format!("{path}[{i}]"),
                };
                differences(x, y, index, out);
            }
        }
        _ if old == new => {}
        _ => out.push((path, new.clone())),
    }
}

/// The scrape job `name` of a configuration.
fn job_of<'a>(config: &'a Yaml, name: &str) -> &'a Yaml {
    seq_yaml(&config["scrape_configs"])
        .iter()
        .find(|job| job["job_name"].as_str() == Some(name))
        .unwrap()
}

/// A YAML list's items (none for anything else).
fn seq_yaml(value: &Yaml) -> &[Yaml] {
    value.as_sequence().map_or(&[], Vec::as_slice)
}

/// `value`'s field `key` (at `path` in [`SHIPPED_CONFIG`]), which must exist.
fn child<'a>(value: &'a mut Yaml, key: &str, path: &str) -> &'a mut Yaml {
    value.get_mut(key).unwrap_or_else(|| match path {
        "" => panic!("{SHIPPED_CONFIG}: no top-level `{key}`"),
        _ => panic!("{SHIPPED_CONFIG}: no `{key}` in `{path}`"),
    })
}

/// Replace the string at `path` with `new`; it must be a string.
fn set_string(value: &mut Yaml, new: &str, path: &str) {
    assert!(
        value.is_string(),
        "{SHIPPED_CONFIG}: `{path}` is {value:?}, not a string"
    );
    *value = Yaml::from(new);
}

/// Replace `old` with `new` in every string value under `value` (at `path`), adding each changed
/// value's path to `replaced`: keys joined with `.`, list items `[i]`, or `[name]` for a job.
fn replace_everywhere(
    value: &mut Yaml,
    old: &str,
    new: &str,
    path: String,
    replaced: &mut BTreeSet<String>,
) {
    match value {
        Yaml::String(s) if s.contains(old) => {
            *s = s.replace(old, new);
            replaced.insert(path);
        }
        Yaml::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let index = match item["job_name"].as_str() {
                    Some(name) => format!("{path}[{name}]"),
                    None => format!("{path}[{i}]"),
                };
                replace_everywhere(item, old, new, index, replaced);
            }
        }
        Yaml::Mapping(fields) => {
            for (key, item) in fields.iter_mut() {
                let key = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_owned);
                let path = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                replace_everywhere(item, old, new, path, replaced);
            }
        }
        Yaml::Tagged(tagged) => replace_everywhere(&mut tagged.value, old, new, path, replaced),
        _ => {}
    }
}

/// The six scrape targets (the static job's one, the probe job's five), each healthy with no error
/// and `up` 1.
fn assert_targets_healthy(prometheus: &Prometheus, exporter: SocketAddr) {
    let data = prometheus.api("/api/v1/targets?state=any");
    let dropped = seq(&data["droppedTargets"]);
    assert!(dropped.is_empty(), "dropped targets: {dropped:?}");
    let mut seen = BTreeMap::new();
    for target in seq(&data["activeTargets"]) {
        let job = text(&target["labels"]["job"]);
        let instance = text(&target["labels"]["instance"]);
        let health = text(&target["health"]);
        let error = text(&target["lastError"]);
        let url = text(&target["scrapeUrl"]);
        seen.insert((job, instance), (health, error, url));
    }
    let mut expected = BTreeSet::from([(JOB.to_owned(), exporter.to_string())]);
    expected.extend(
        TARGETS
            .iter()
            .map(|t| (PROBE_JOB.to_owned(), (*t).to_owned())),
    );
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "scrape targets (job, instance)"
    );
    let unhealthy: Vec<String> = seen
        .iter()
        .filter(|(_, (health, error, _))| health != "up" || !error.is_empty())
        .map(|((job, instance), (health, error, url))| {
            format!("{job}/{instance} ({url}): {health} {error}")
        })
        .collect();
    assert!(
        unhealthy.is_empty(),
        "unhealthy scrape targets:\n{}\nPrometheus log:\n{}",
        unhealthy.join("\n"),
        prometheus.log()
    );
    for target in TARGETS {
        let url = &seen[&(PROBE_JOB.to_owned(), (*target).to_owned())].2;
        assert_eq!(url, &format!("http://{exporter}/probe?target={target}"));
    }
    // The same through the query API: `up` is 1 for each of them.
    let up: BTreeMap<(String, String), f64> = prometheus
        .query(r#"up{job=~"fanout.*"}"#)
        .into_iter()
        .map(|(labels, value)| ((labels["job"].clone(), labels["instance"].clone()), value))
        .collect();
    assert_eq!(
        up.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "up series"
    );
    assert!(up.values().all(|v| *v == 1.0), "up: {up:?}");
}

/// `promql` answers exactly one series per job for each of `targets` (the static job's `target`
/// label, the probe job's `instance`), each value `ok`.
fn assert_per_target(
    prometheus: &Prometheus,
    exporter: &Exporter,
    promql: &str,
    targets: &[&str],
    ok: &dyn Fn(f64) -> bool,
    what: &str,
) {
    let samples = prometheus.query(promql);
    let mut by_target = BTreeMap::new();
    for (labels, value) in &samples {
        let job = labels.get("job").cloned().unwrap_or_default();
        let name = if job == JOB {
            labels.get("target").cloned().unwrap_or_default()
        } else {
            labels.get("instance").cloned().unwrap_or_default()
        };
        let previous = by_target.insert((job.clone(), name.clone()), *value);
        assert!(
            previous.is_none(),
            "{promql}: more than one series for {job}/{name}: {samples:?}"
        );
    }
    let expected: BTreeSet<(String, String)> = targets
        .iter()
        .flat_map(|t| {
            [
                (JOB.to_owned(), (*t).to_owned()),
                (PROBE_JOB.to_owned(), (*t).to_owned()),
            ]
        })
        .collect();
    assert_eq!(
        by_target.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{promql}: the (job, target) pairs with a series; samples: {samples:?}"
    );
    let wrong: Vec<String> = by_target
        .iter()
        .filter(|(_, v)| !ok(**v))
        .map(|((job, target), v)| format!("{job}/{target} = {v}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{promql}: expected {what}, got {}\nexporter log:\n{}",
        wrong.join(", "),
        exporter.log().join("\n")
    );
}

/// Every rule of the shipped files is loaded and evaluated fine, and none fires or is pending
/// against these healthy targets.
fn assert_rules_ok(prometheus: &Prometheus, files: &[PathBuf]) {
    let data = prometheus.api("/api/v1/rules");
    let groups = seq(&data["groups"]);
    let loaded: BTreeSet<PathBuf> = groups
        .iter()
        .map(|g| PathBuf::from(text(&g["file"])))
        .collect();
    for file in files {
        assert!(
            loaded.contains(file),
            "{}: no rule group loaded from it (loaded: {loaded:?})",
            file.display()
        );
    }
    let rules = prometheus.rules();
    assert!(!rules.is_empty(), "no rules loaded from {loaded:?}");
    let mut broken = Vec::new();
    let mut active = Vec::new();
    for rule in &rules {
        let name = text(&rule["name"]);
        let health = text(&rule["health"]);
        let error = text(&rule["lastError"]);
        if health != "ok" || !error.is_empty() {
            broken.push(format!("{name}: {health} {error}"));
        }
        if rule["type"].as_str() == Some("alerting") && rule["state"].as_str() != Some("inactive") {
            active.push(format!(
                "{name} is {}: {:?}",
                text(&rule["state"]),
                rule["alerts"]
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "rules that failed to evaluate:\n{}",
        broken.join("\n")
    );
    assert!(
        active.is_empty(),
        "alerts pending or firing against healthy targets:\n{}",
        active.join("\n")
    );
}

/// Every metric name the shipped rules and dashboard query is one Prometheus generates itself, one
/// a recording rule writes, or one it ingested from the exporter in one of the two jobs.
fn assert_queried_names_ingested(
    prometheus: &Prometheus,
    queried: &BTreeSet<String>,
    generated: &[&str],
) {
    assert!(
        !queried.is_empty(),
        "no queried metric names from the rules and the dashboard"
    );
    let ingested: BTreeSet<String> = seq(&prometheus.api(&format!(
        "/api/v1/label/__name__/values?match%5B%5D={}",
        encode(r#"{job=~"fanout.*"}"#)
    )))
    .iter()
    .map(text)
    .collect();
    assert!(
        ingested.contains("mysql_up") && ingested.contains("probe_success"),
        "names ingested from the exporter: {ingested:?}"
    );
    let recorded: BTreeSet<String> = prometheus
        .rules()
        .iter()
        .filter(|r| r["type"].as_str() == Some("recording"))
        .map(|r| text(&r["name"]))
        .collect();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| {
            !generated.contains(&name.as_str())
                && !ingested.contains(*name)
                && !recorded.contains(*name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metric names the alert rules or the dashboard query that Prometheus never ingested from \
         the exporter (nor generates itself, nor records): {missing:?}"
    );
}

/// Prometheus dropped no sample: its counters of rejected samples are 0 and it logged no warning or
/// error.
fn assert_nothing_rejected(prometheus: &Prometheus) {
    let own = support::get(prometheus.address, "/metrics", &[]).text();
    for name in [
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
        "prometheus_target_scrapes_sample_out_of_order_total",
        "prometheus_target_scrapes_sample_out_of_bounds_total",
        "prometheus_target_scrapes_exceeded_sample_limit_total",
        "prometheus_target_scrapes_exemplar_out_of_order_total",
        "prometheus_tsdb_out_of_order_samples_total",
        "prometheus_rule_evaluation_failures_total",
        "prometheus_target_scrape_pool_exceeded_label_limits_total",
    ] {
        let values: Vec<f64> = own
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        assert!(!values.is_empty(), "Prometheus does not export {name}");
        assert_eq!(
            values.iter().sum::<f64>(),
            0.0,
            "{name} is not 0\nPrometheus log:\n{}",
            prometheus.log()
        );
    }
    let log = prometheus.log();
    let suspicious: Vec<&str> = log
        .lines()
        .filter(|line| {
            let lower = line.to_ascii_lowercase();
            [
                "level=warn",
                "level=error",
                "error on ingesting",
                "out of order",
                "duplicate sample",
                "invalid",
            ]
            .iter()
            .any(|needle| lower.contains(needle))
        })
        .collect();
    assert!(
        suspicious.is_empty(),
        "Prometheus logged problems:\n{}",
        suspicious.join("\n")
    );
}

/// Kills a process (with SIGKILL) and removes a directory when this test process dies without
/// dropping it: a `sh` blocked reading a pipe whose only write end is ours, as in watched.rs. For the
/// exporter, which [`Exporter`] kills on drop only, and its configuration directory, which
/// `tempfile` removes on drop only. Dropped (killed and reaped) before the process it watches is
/// reaped, so that the pid cannot be reused meanwhile.
struct Watchdog(std::process::Child);

/// The exporter on a free port with `config`, and its watchdog over `dir`. Bind them in this order
/// (`let (exporter, _watchdog) = ...`): the watchdog is then dropped first, before the exporter is
/// reaped.
fn watched_exporter(config: &Path, dir: &Path) -> (Exporter, Watchdog) {
    let exporter = Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", config.display()),
    ]);
    let watchdog = Watchdog::new(exporter.pid(), dir);
    (exporter, watchdog)
}

impl Watchdog {
    fn new(pid: u32, dir: &Path) -> Self {
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"read -r _ignored; kill -KILL "$0" 2>/dev/null; rm -rf "$1""#)
            .arg(pid.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting a watchdog shell: {e}"));
        Self(child)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
