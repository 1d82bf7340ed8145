//! The shipped service discovery jobs as a real Prometheus runs them against the exporter's
//! `modules:`: the file_sd job of deploy/prometheus/prometheus.yml (derived as [`prometheus_yml`]
//! derives the whole file, then run alone) reading a targets file in the shipped example's format,
//! and the Kubernetes job of deploy/prometheus/kubernetes-sd.yml, whose `kubernetes_sd_configs` is
//! the one thing replaced: by a file_sd file holding the target groups Kubernetes' `service` role
//! gives for annotated Services (Debian's Prometheus has no Kubernetes discovery, and there is no
//! cluster here). Both jobs keep their relabel rules as shipped.
//!
//! Against them, real servers on 127.0.0.1 (a MariaDB, a redis-server, an HTTP server) and the
//! built exporter with one module per kind: every allowed address must be scraped (`up` 1, and
//! `mysql_up`, `redis_up`, `probe_success` 1 under the address as `instance` and the module as
//! `module`, without a `target` label), a configured name without a module keeps working, and an
//! address no module allows must be down with the exporter's 403 as the scrape error.

use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::server::{Prometheus, seq, text};
use super::web::serve;
use super::{INTERVAL, SD_JOB, job_of, prometheus_yml, replace_everywhere, watched_exporter};
use crate::common::run;
use crate::mariadb_server::{self, Mariadb};
use crate::redis_server::{self, Redis};
use crate::support::{self, Exporter};

/// The shipped Kubernetes discovery job, relative to the repository root.
const KUBERNETES_CONFIG: &str = "deploy/prometheus/kubernetes-sd.yml";
/// Its one job.
const KUBERNETES_JOB: &str = "fanout-kubernetes";
/// Where it sends the scrapes: the Service of deploy/kubernetes/multi-target.yaml.
const KUBERNETES_EXPORTER: &str = "fanout-exporter.fanout-example.svc:9930";
/// The annotation prefix the Kubernetes job reads, as Prometheus names its meta labels.
const ANNOTATION: &str = "__meta_kubernetes_service_annotation_fanout_example_com_";
/// The meta label that says an annotation is present, whatever its value.
const ANNOTATION_PRESENT: &str = "__meta_kubernetes_service_annotationpresent_fanout_example_com_";

/// The test exporter's modules, one per kind.
const MYSQL_MODULE: &str = "mysql_local";
const REDIS_MODULE: &str = "redis_local";
const HTTP_MODULE: &str = "http_2xx";

/// A scrape target: its job, `instance` and `module` label (none for a configured name).
type Key = (String, String, Option<String>);

fn key(job: &str, instance: &str, module: Option<&str>) -> Key {
    (
        job.to_owned(),
        instance.to_owned(),
        module.map(str::to_owned),
    )
}

#[test]
fn prometheus_discovers_addresses_and_the_exporter_collects_them_with_their_modules() {
    let dir = tempfile::tempdir().unwrap();
    let (mariadb, redis) = std::thread::scope(|s| {
        let mariadb = s.spawn(|| {
            let server = Mariadb::start(mariadb_server::Opts::default());
            server.create_users();
            server
        });
        let redis = s.spawn(|| Redis::start(redis_server::Opts::default()));
        (mariadb.join().unwrap(), redis.join().unwrap())
    });
    let web = serve(None);
    // A port nothing listens on: outside the http module's URL prefix, so never connected to.
    let elsewhere = SocketAddr::from(([127, 0, 0, 1], support::free_port()));

    let mysql_address = format!("127.0.0.1:{}", mariadb.port());
    let redis_url = redis.url();
    let web_url = format!("http://{web}/");
    support::write(dir.path(), "mysql.pw", mariadb_server::EXPORTER_PASSWORD);
    let config = support::write(
        dir.path(),
        "fanout.yaml",
        &format!(
            "global:\n  timeout_offset: 100ms\n\
             http:\n\
             \x20 web: {{url: '{web_url}'}}\n\
             modules:\n\
             \x20 {MYSQL_MODULE}:\n\
             \x20   mysql: {{user: exporter, password_file: mysql.pw}}\n\
             \x20   allowed_targets: ['127.0.0.1/32']\n\
             \x20 {REDIS_MODULE}:\n\
             \x20   redis: {{}}\n\
             \x20   allowed_targets: ['127.0.0.1/32']\n\
             \x20 {HTTP_MODULE}:\n\
             \x20   http: {{valid_status_codes: [200]}}\n\
             \x20   allowed_targets: ['{web_url}']\n"
        ),
    );
    let (exporter, _exporter_watchdog) = watched_exporter(&config, dir.path());

    // The file_sd job's targets, in the format of deploy/prometheus/targets/example.yml.
    let sd_dir = dir.path().join("sd");
    std::fs::create_dir_all(sd_dir.join("targets")).unwrap();
    let refused_mysql = format!("127.0.0.2:{}", mariadb.port());
    let refused_web = format!("http://{elsewhere}/");
    support::write(
        &sd_dir.join("targets"),
        "fanout.yml",
        &format!(
            "- labels: {{module: {MYSQL_MODULE}}}\n  targets: ['{mysql_address}']\n\
             - labels: {{module: {REDIS_MODULE}}}\n  targets: ['{redis_url}']\n\
             - labels: {{module: {HTTP_MODULE}}}\n  targets: ['{web_url}']\n\
             - targets: [web]\n\
             - labels: {{module: {MYSQL_MODULE}}}\n  targets: ['{refused_mysql}']\n\
             - labels: {{module: {HTTP_MODULE}}}\n  targets: ['{refused_web}']\n"
        ),
    );

    // What Kubernetes' service role would discover: annotated Services (one of them with a second
    // port that its port annotation leaves out) and one without annotations, at 127.0.0.1 where the
    // cluster would give <service>.<namespace>.svc.
    let unused_port = support::free_port();
    let services = [
        service(
            "orders-db",
            &[("module", MYSQL_MODULE)],
            &[("mysql", mariadb.port())],
        ),
        service(
            "sessions",
            &[
                ("module", REDIS_MODULE),
                ("scheme", "redis"),
                ("port", &redis.port().to_string()),
            ],
            &[("redis", redis.port()), ("sentinel", unused_port)],
        ),
        service(
            "frontend",
            &[
                ("module", HTTP_MODULE),
                ("scheme", "http"),
                ("path", "/healthz"),
            ],
            &[("http", web.port())],
        ),
        service("unannotated", &[], &[("mysql", mariadb.port())]),
    ];
    let kubernetes_file = support::write(
        dir.path(),
        "kubernetes.json",
        &serde_json::to_string_pretty(&services.concat()).unwrap(),
    );

    let prometheus_config = discovery_config(exporter.address, &sd_dir, &kubernetes_file);
    let (ok, out) = promtool_check(&prometheus_config, dir.path());
    assert!(
        ok,
        "promtool rejects the derived configuration:\n{out}\n{prometheus_config}"
    );
    let prometheus = Prometheus::start(&prometheus_config);

    // Each target, and whether the exporter must serve it (or refuse it with a 403).
    let expected_targets: BTreeMap<Key, bool> = BTreeMap::from([
        (key(SD_JOB, &mysql_address, Some(MYSQL_MODULE)), true),
        (key(SD_JOB, &redis_url, Some(REDIS_MODULE)), true),
        (key(SD_JOB, &web_url, Some(HTTP_MODULE)), true),
        (key(SD_JOB, "web", None), true),
        (key(SD_JOB, &refused_mysql, Some(MYSQL_MODULE)), false),
        (key(SD_JOB, &refused_web, Some(HTTP_MODULE)), false),
        (
            key(KUBERNETES_JOB, &mysql_address, Some(MYSQL_MODULE)),
            true,
        ),
        (key(KUBERNETES_JOB, &redis_url, Some(REDIS_MODULE)), true),
        (
            key(
                KUBERNETES_JOB,
                &format!("http://{web}/healthz"),
                Some(HTTP_MODULE),
            ),
            true,
        ),
    ]);

    // Bounded wait: discovery takes Prometheus up to 5 s, then one scrape a second.
    let deadline = Instant::now() + Duration::from_secs(45);
    let targets = loop {
        let targets = active_targets(&prometheus);
        let scraped = targets.values().all(|t| t.health != "unknown");
        if targets.keys().eq(expected_targets.keys()) && scraped {
            break targets;
        }
        assert!(
            Instant::now() < deadline,
            "after 45 s Prometheus does not have the expected targets, each scraped once:\n\
             expected: {expected_targets:#?}\nactive: {targets:#?}\nPrometheus log:\n{}\n\
             exporter log:\n{}",
            prometheus.log(),
            exporter.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    // Every target as expected: the allowed ones up, the others refused with a 403, and each
    // scraped at /probe with the address as ?target= and the module as ?module=.
    let mut wrong = Vec::new();
    for (want, target) in &targets {
        let (job, instance, module) = want;
        let status = if expected_targets[want] {
            (target.health == "up" && target.error.is_empty()).then_some(())
        } else {
            (target.health == "down" && target.error.contains("403")).then_some(())
        };
        if status.is_none() {
            wrong.push(format!(
                "{job} {instance} ({}): {} {:?}",
                target.url, target.health, target.error
            ));
        }
        let url = url::Url::parse(&target.url)
            .unwrap_or_else(|e| panic!("scrape URL {}: {e}", target.url));
        let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let mut wanted = BTreeMap::from([("target".to_owned(), instance.clone())]);
        if let Some(module) = module {
            wanted.insert("module".to_owned(), module.clone());
        }
        assert_eq!(
            (url.path(), &params),
            ("/probe", &wanted),
            "{job} {instance}: scrape URL {}",
            target.url
        );
        assert_eq!(
            url.port(),
            Some(exporter.address.port()),
            "{job} {instance}: scraped at the exporter ({})",
            target.url
        );
    }
    assert!(
        wrong.is_empty(),
        "targets not as expected (allowed: up with no error; not allowed: down with a 403):\n{}\n\
         exporter log:\n{}",
        wrong.join("\n"),
        exporter.log().join("\n")
    );
    let kubernetes = &targets[&key(KUBERNETES_JOB, &mysql_address, Some(MYSQL_MODULE))];
    assert_eq!(
        (
            kubernetes.labels.get("namespace").map(String::as_str),
            kubernetes.labels.get("service").map(String::as_str)
        ),
        (Some("shop"), Some("orders-db")),
        "the Kubernetes job labels the Service it found: {:?}",
        kubernetes.labels
    );
    assert_dropped(&prometheus, "unannotated");

    // The series: one per allowed target and job, 1, under the address and module, no `target`.
    let of = |kind: &str| -> BTreeSet<Key> {
        expected_targets
            .iter()
            .filter(|(_, allowed)| **allowed)
            .map(|(key, _)| key)
            .filter(|(_, _, module)| match module.as_deref() {
                Some(module) => module.starts_with(kind),
                // The configured name `web` is an http target.
                None => kind == "http",
            })
            .cloned()
            .collect()
    };
    assert_series(&prometheus, &exporter, "mysql_up", &of("mysql"));
    assert_series(&prometheus, &exporter, "redis_up", &of("redis"));
    assert_series(&prometheus, &exporter, "probe_success", &of("http"));
    let refused: BTreeSet<(String, String)> = expected_targets
        .iter()
        .filter(|(_, allowed)| !**allowed)
        .map(|((job, instance, _), _)| (job.clone(), instance.clone()))
        .collect();
    let up_zero: BTreeSet<(String, String)> = prometheus
        .query(r#"up{job=~"fanout.*"} == 0"#)
        .into_iter()
        .map(|(labels, _)| (labels["job"].clone(), labels["instance"].clone()))
        .collect();
    assert_eq!(up_zero, refused, "the targets whose up is 0");
}

/// An active target as the targets API shows it.
#[derive(Debug)]
struct Target {
    health: String,
    error: String,
    url: String,
    labels: BTreeMap<String, String>,
}

/// The active targets, by job, instance and module.
fn active_targets(prometheus: &Prometheus) -> BTreeMap<Key, Target> {
    let data = prometheus.api("/api/v1/targets?state=active");
    let mut out = BTreeMap::new();
    for target in seq(&data["activeTargets"]) {
        let labels: BTreeMap<String, String> = target["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let key = (
            labels.get("job").cloned().unwrap_or_default(),
            labels.get("instance").cloned().unwrap_or_default(),
            labels.get("module").cloned(),
        );
        let target = Target {
            health: text(&target["health"]),
            error: text(&target["lastError"]),
            url: text(&target["scrapeUrl"]),
            labels,
        };
        let previous = out.insert(key.clone(), target);
        assert!(previous.is_none(), "two active targets {key:?}");
    }
    out
}

/// `metric` has exactly one series per target of `expected` (in the discovery jobs), each 1, with
/// the target's `module` label (or none) and no `target` label.
fn assert_series(
    prometheus: &Prometheus,
    exporter: &Exporter,
    metric: &str,
    expected: &BTreeSet<Key>,
) {
    assert!(!expected.is_empty(), "{metric}: no target expected");
    let promql = format!(r#"{metric}{{job=~"{SD_JOB}|{KUBERNETES_JOB}"}}"#);
    let samples = prometheus.query(&promql);
    let mut seen = BTreeSet::new();
    for (labels, value) in &samples {
        let key = (
            labels.get("job").cloned().unwrap_or_default(),
            labels.get("instance").cloned().unwrap_or_default(),
            labels.get("module").cloned(),
        );
        assert!(
            !labels.contains_key("target"),
            "{promql}: a probed target's series carries a `target` label: {labels:?}"
        );
        assert_eq!(
            *value,
            1.0,
            "{promql}: {key:?} is {value}\nexporter log:\n{}",
            exporter.log().join("\n")
        );
        assert!(seen.insert(key.clone()), "{promql}: two series for {key:?}");
    }
    assert_eq!(
        &seen, expected,
        "{promql}: the (job, instance, module) with a series; samples: {samples:?}"
    );
}

/// The Kubernetes job dropped the targets of Service `name` (it has no module annotation).
fn assert_dropped(prometheus: &Prometheus, name: &str) {
    let data = prometheus.api("/api/v1/targets?state=dropped");
    let dropped = seq(&data["droppedTargets"])
        .iter()
        .filter(|t| {
            let labels = &t["discoveredLabels"];
            text(&labels["job"]) == KUBERNETES_JOB
                && text(&labels["__meta_kubernetes_service_name"]) == name
        })
        .count();
    assert_eq!(
        dropped, 1,
        "the Kubernetes job must drop the Service without annotations ({name}): {data}"
    );
}

/// The target groups Kubernetes' `service` role gives for Service `name` in namespace `shop`: one
/// per port, with its annotations (`fanout.example.com/<key>`) as meta labels. The address is
/// 127.0.0.1 where a cluster gives `<name>.shop.svc`.
fn service(
    name: &str,
    annotations: &[(&str, &str)],
    ports: &[(&str, u16)],
) -> Vec<serde_json::Value> {
    ports
        .iter()
        .map(|(port_name, port)| {
            let mut labels = serde_json::Map::new();
            for (label, value) in [
                ("__meta_kubernetes_namespace", "shop"),
                ("__meta_kubernetes_service_name", name),
                ("__meta_kubernetes_service_type", "ClusterIP"),
                ("__meta_kubernetes_service_cluster_ip", "10.96.0.20"),
                ("__meta_kubernetes_service_port_name", port_name),
                ("__meta_kubernetes_service_port_protocol", "TCP"),
            ] {
                labels.insert(label.to_owned(), value.into());
            }
            labels.insert(
                "__meta_kubernetes_service_port_number".to_owned(),
                port.to_string().into(),
            );
            for (annotation, value) in annotations {
                labels.insert(format!("{ANNOTATION}{annotation}"), (*value).into());
                labels.insert(format!("{ANNOTATION_PRESENT}{annotation}"), "true".into());
            }
            serde_json::json!({"targets": [format!("127.0.0.1:{port}")], "labels": labels})
        })
        .collect()
}

/// A Prometheus configuration of the two discovery jobs: the global section and the file_sd job
/// of [`prometheus_yml`] (its files under `sd_dir`), and [`kubernetes_job`] reading
/// `kubernetes_file`, both scraping `exporter`.
fn discovery_config(exporter: SocketAddr, sd_dir: &Path, kubernetes_file: &Path) -> String {
    let derived: Yaml = serde_yaml::from_str(&prometheus_yml(exporter, sd_dir)).unwrap();
    let mut root = serde_yaml::Mapping::new();
    root.insert("global".into(), derived["global"].clone());
    root.insert(
        "scrape_configs".into(),
        Yaml::Sequence(vec![
            job_of(&derived, SD_JOB).clone(),
            kubernetes_job(&kubernetes_text(), exporter, kubernetes_file),
        ]),
    );
    serde_yaml::to_string(&root).unwrap()
}

/// The text of [`KUBERNETES_CONFIG`].
fn kubernetes_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(KUBERNETES_CONFIG))
        .unwrap_or_else(|e| panic!("{KUBERNETES_CONFIG}: {e}"))
}

/// The one job of the Kubernetes configuration `text`, with only what cannot run here replaced,
/// each replacement asserted to happen exactly where expected: its one `kubernetes_sd_configs`
/// entry (`role: service`) becomes a file_sd config reading `file`, its own intervals (if any)
/// become [`INTERVAL`], and [`KUBERNETES_EXPORTER`], which must occur only in the replacement of
/// the relabel step that sets `__address__`, becomes `exporter`.
fn kubernetes_job(text: &str, exporter: SocketAddr, file: &Path) -> Yaml {
    let mut config: Yaml =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{KUBERNETES_CONFIG}: {e}"));
    let keys: Vec<&str> = config
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        ["scrape_configs"],
        "{KUBERNETES_CONFIG}: a scrape_config_files file holds scrape_configs only"
    );
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .filter(|jobs| jobs.len() == 1)
        .unwrap_or_else(|| panic!("{KUBERNETES_CONFIG}: one job"));
    let mut job = jobs.remove(0);
    assert_eq!(
        job["job_name"].as_str(),
        Some(KUBERNETES_JOB),
        "{KUBERNETES_CONFIG}: the job's name"
    );
    // The step that sends the scrape to the exporter: it sets __address__ from nothing (the one
    // before it moves the discovered address to the annotated port).
    let steps: Vec<usize> = job["relabel_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, s)| s["target_label"].as_str() == Some("__address__"))
        .filter(|(_, s)| s.get("source_labels").is_none())
        .map(|(i, _)| i)
        .collect();
    let [step] = steps[..] else {
        panic!(
            "{KUBERNETES_CONFIG}: one relabel step must set __address__ to the exporter, {} do: {:?}",
            steps.len(),
            job["relabel_configs"]
        );
    };
    let fields = job.as_mapping_mut().unwrap();
    let discovery = fields
        .remove("kubernetes_sd_configs")
        .unwrap_or_else(|| panic!("{KUBERNETES_CONFIG}: no kubernetes_sd_configs"));
    assert_eq!(
        discovery,
        serde_yaml::from_str::<Yaml>("[{role: service}]").unwrap(),
        "{KUBERNETES_CONFIG}: the discovery this test simulates (the service role, in-cluster)"
    );
    for other in fields.keys().filter_map(Yaml::as_str) {
        assert!(
            !other.ends_with("_sd_configs") && other != "static_configs",
            "{KUBERNETES_CONFIG}: {other}: targets from Kubernetes only"
        );
    }
    fields.insert(
        "file_sd_configs".into(),
        serde_yaml::to_value([serde_json::json!({"files": [file.to_str().unwrap()]})]).unwrap(),
    );
    for key in ["scrape_interval", "scrape_timeout"] {
        if let Some(value) = fields.get_mut(key) {
            assert!(value.is_string(), "{KUBERNETES_CONFIG}: {key} is {value:?}");
            *value = Yaml::from(INTERVAL);
        }
    }
    let mut replaced = BTreeSet::new();
    replace_everywhere(
        &mut job,
        KUBERNETES_EXPORTER,
        &exporter.to_string(),
        format!("scrape_configs[{KUBERNETES_JOB}]"),
        &mut replaced,
    );
    assert_eq!(
        replaced,
        BTreeSet::from([format!(
            "scrape_configs[{KUBERNETES_JOB}].relabel_configs[{step}].replacement"
        )]),
        "{KUBERNETES_CONFIG}: where {KUBERNETES_EXPORTER} occurs (the __address__ replacement, \
         nowhere else)"
    );
    job
}

/// `promtool check config` on `config`, written to `dir`.
fn promtool_check(config: &str, dir: &Path) -> (bool, String) {
    let path: PathBuf = support::write(dir, "prometheus-check.yml", config);
    run(std::process::Command::new(support::promtool())
        .args(["check", "config"])
        .arg(&path))
}

/// The Kubernetes job runs as shipped but for its discovery and the exporter's address (promtool
/// accepts it with file_sd in place of Kubernetes discovery), and a shipped file whose discovery,
/// exporter address or jobs moved is refused rather than run around. Quick: no servers.
#[test]
fn kubernetes_job_is_run_as_shipped_with_only_its_discovery_and_exporter_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "kubernetes.json", "[]");
    let exporter = SocketAddr::from(([127, 0, 0, 1], 45678));
    let shipped_text = kubernetes_text();
    let shipped: Yaml = serde_yaml::from_str(&shipped_text).unwrap();
    let derived = kubernetes_job(&shipped_text, exporter, &file);
    let shipped_job = &shipped["scrape_configs"][0];
    assert_eq!(
        derived["relabel_configs"].as_sequence().map(Vec::len),
        shipped_job["relabel_configs"].as_sequence().map(Vec::len),
        "the relabel rules stay"
    );
    for (key, value) in shipped_job.as_mapping().unwrap() {
        let key = key.as_str().unwrap();
        if !matches!(key, "kubernetes_sd_configs" | "relabel_configs") {
            assert_eq!(&derived[key], value, "{key} stays as shipped");
        }
    }
    let mut root = serde_yaml::Mapping::new();
    root.insert("scrape_configs".into(), Yaml::Sequence(vec![derived]));
    let (ok, out) = promtool_check(&serde_yaml::to_string(&root).unwrap(), dir.path());
    assert!(ok, "promtool rejects {KUBERNETES_CONFIG}'s job:\n{out}");

    let refused = |what: &str, from: &str, to: &str| {
        assert!(
            shipped_text.contains(from),
            "{KUBERNETES_CONFIG} no longer contains {from:?}: update this mutant ({what})"
        );
        let mutant = shipped_text.replacen(from, to, 1);
        let result = std::panic::catch_unwind(|| kubernetes_job(&mutant, exporter, &file));
        assert!(
            result.is_err(),
            "a {KUBERNETES_CONFIG} with {what} was not refused:\n{mutant}"
        );
    };
    refused("the pod role", "- role: service", "- role: pod");
    refused(
        "the job renamed",
        "job_name: 'fanout-kubernetes'",
        "job_name: 'fanout-k8s'",
    );
    refused(
        "scrapes sent elsewhere",
        "replacement: fanout-exporter.fanout-example.svc:9930",
        "replacement: exporter:9930",
    );
    refused(
        "a second job",
        "scrape_configs:\n",
        "scrape_configs:\n  - job_name: extra\n    static_configs: [{targets: ['x:1']}]\n",
    );
}
