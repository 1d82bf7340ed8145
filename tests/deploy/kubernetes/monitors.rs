//! The Prometheus Operator resources as Prometheus runs them: each monitor's endpoints point at the
//! exporter's `metrics` port; each endpoint becomes the scrape job the Operator would generate (its
//! own rules, written down from its generator, then the monitor's relabelings), which promtool
//! validates and a real Prometheus runs on the targets Kubernetes service discovery would give it
//! (a file_sd file). The resulting `job` labels, read back from Prometheus' targets API, must be
//! selected by the shipped FanoutExporterDown alert.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use promql_parser::label::Matcher;
use serde_yaml::{Mapping, Value};

use super::{
    Doc, Manifests, Pod, at, container_name, exporter_at_port, exporter_config, list, manifests,
    selects, service_backend, string_map, target_names, text,
};
use crate::common::{duration, poll, run};
use crate::support;

/// Every scrape endpoint of an Operator resource: (where, endpoint). A Probe is its own endpoint.
fn scrape_endpoints(doc: &Doc) -> Vec<(String, &Value)> {
    let endpoints: Vec<&Value> = match doc.kind() {
        "ServiceMonitor" => list(&doc.value, "spec.endpoints").iter().collect(),
        "PodMonitor" => list(&doc.value, "spec.podMetricsEndpoints")
            .iter()
            .collect(),
        "Probe" | "ScrapeConfig" => at(&doc.value, "spec").into_iter().collect(),
        other => panic!("{}: unexpected Operator kind {other}", doc.id()),
    };
    endpoints
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("{} endpoint {i}", doc.id()), e))
        .collect()
}

/// A Kubernetes label name as a Prometheus meta label suffix (what the Operator's sanitizeLabelName
/// does).
pub(super) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[test]
fn monitors_select_an_exporter_metrics_port() {
    let m = manifests();
    let mut monitors = 0;
    for monitor in m.of_kind("ServiceMonitor") {
        monitors += 1;
        let selector = at(&monitor.value, "spec.selector").expect("selector");
        let services: Vec<&Doc> = m
            .of_kind("Service")
            .filter(|s| {
                let labels = string_map(at(&s.value, "metadata.labels"));
                selects(selector, &labels, &monitor.id())
            })
            .collect();
        assert_eq!(
            services.len(),
            1,
            "{} selects {} Services",
            monitor.id(),
            services.len()
        );
        let service = services[0];
        for (context, endpoint) in scrape_endpoints(monitor) {
            assert_eq!(text(endpoint, "port"), Some("metrics"), "{context}: port");
            assert_eq!(
                text(endpoint, "path").unwrap_or("/metrics"),
                "/metrics",
                "{context}: path"
            );
            let service_port = list(&service.value, "spec.ports")
                .iter()
                .find(|p| text(p, "name") == Some("metrics"))
                .unwrap_or_else(|| panic!("{}: no port named metrics", service.id()));
            service_backend(m, service, service_port, &context);
        }
    }
    for monitor in m.of_kind("PodMonitor") {
        monitors += 1;
        let selector = at(&monitor.value, "spec.selector").expect("selector");
        let selected: Vec<Pod> = m
            .pods()
            .into_iter()
            .filter(|p| selects(selector, &p.labels, &monitor.id()))
            .collect();
        assert_eq!(
            selected.len(),
            1,
            "{} selects {} workloads",
            monitor.id(),
            selected.len()
        );
        for (context, endpoint) in scrape_endpoints(monitor) {
            let port = at(endpoint, "port").unwrap_or_else(|| panic!("{context}: no port"));
            assert_eq!(port.as_str(), Some("metrics"), "{context}: port");
            assert_eq!(
                text(endpoint, "path").unwrap_or("/metrics"),
                "/metrics",
                "{context}: path"
            );
            exporter_at_port(&selected[0], port, &context);
        }
    }
    assert_eq!(monitors, 2, "one ServiceMonitor and one PodMonitor");
}

// ---------------------------------------------------------------------------------------------
// The monitors as Prometheus scrape jobs

/// A relabeling of an Operator resource in Prometheus' spelling: the mechanical camelCase →
/// snake_case mapping of its keys (`sourceLabels` → `source_labels`), its action lower-cased as the
/// Operator writes it (generateRelabelConfig accepts either case).
pub(super) fn prometheus_relabeling(relabeling: &Value) -> Value {
    let mut out = Mapping::new();
    for (key, value) in relabeling.as_mapping().into_iter().flatten() {
        let key = key.as_str().unwrap_or_default();
        let snake: String = key
            .chars()
            .flat_map(|c| {
                let lower = c.to_ascii_lowercase();
                (c.is_ascii_uppercase().then_some('_').into_iter()).chain([lower])
            })
            .collect();
        let value = match (key, value.as_str()) {
            ("action", Some(action)) => Value::from(action.to_lowercase()),
            _ => value.clone(),
        };
        out.insert(snake.into(), value);
    }
    Value::Mapping(out)
}

/// A relabeling written as YAML flow text, for the Operator's own rules below.
fn rule(flow: &str) -> Value {
    serde_yaml::from_str(flow).unwrap_or_else(|e| panic!("{flow}: {e}"))
}

/// One scrape job as the Prometheus Operator generates it for one endpoint of a monitor, and the
/// target groups its Kubernetes service discovery would give the job (none for a Probe, whose
/// targets are static).
struct Job {
    /// `kind/namespace/name` and, for monitors, `/endpoint`: the Operator's job names.
    name: String,
    config: Mapping,
    discovered: Vec<serde_json::Value>,
}

/// The name of a workload's pod as Kubernetes would make it.
fn pod_name(pod: &Pod) -> String {
    match pod.doc.kind() {
        "StatefulSet" => format!("{}-0", pod.doc.name()),
        _ => format!("{}-7d4b9c8f6-x2x4q", pod.doc.name()),
    }
}

/// `labels` as Kubernetes SD meta labels `<prefix>label_<name>` and `<prefix>labelpresent_<name>`.
fn label_meta(
    prefix: &str,
    labels: &BTreeMap<String, String>,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in labels {
        out.insert(format!("{prefix}label_{}", sanitize(k)), v.clone().into());
        out.insert(
            format!("{prefix}labelpresent_{}", sanitize(k)),
            "true".into(),
        );
    }
}

/// What Kubernetes service discovery gives for a pod of `pod` and one of its containers' ports, in
/// `namespace`: the `pod` role's labels (the `endpoints` role has them too, for the pod behind an
/// endpoint).
fn pod_meta(
    pod: &Pod,
    container: &Value,
    port: &Value,
    namespace: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut labels = serde_json::Map::new();
    labels.insert("__meta_kubernetes_namespace".into(), namespace.into());
    labels.insert("__meta_kubernetes_pod_name".into(), pod_name(pod).into());
    labels.insert(
        "__meta_kubernetes_pod_container_name".into(),
        container_name(container).into(),
    );
    if let Some(name) = text(port, "name") {
        labels.insert(
            "__meta_kubernetes_pod_container_port_name".into(),
            name.into(),
        );
    }
    label_meta("__meta_kubernetes_pod_", &pod.labels, &mut labels);
    labels
}

/// A file_sd target group: one target at 10.0.0.10, never scraped (see [`prometheus_config`]).
fn group(labels: serde_json::Map<String, serde_json::Value>, port: i64) -> serde_json::Value {
    serde_json::json!({"targets": [format!("10.0.0.10:{port}")], "labels": labels})
}

/// The Operator's rules that keep only the targets whose `labels_prefix` labels match a
/// `matchLabels` selector (generate*MonitorConfig: one keep per label, on the label and its
/// `labelpresent` twin).
fn selector_rules(selector: &Value, labels_prefix: &str) -> Vec<Value> {
    string_map(at(selector, "matchLabels"))
        .iter()
        .map(|(k, v)| {
            let k = sanitize(k);
            rule(&format!(
                "{{action: keep, source_labels: [{labels_prefix}label_{k}, {labels_prefix}labelpresent_{k}], regex: '({});true'}}",
                regex::escape(v)
            ))
        })
        .collect()
}

/// Every scrape job the Operator generates for `monitor` applied in `namespace`, with its service
/// discovery's targets taken from the manifests (every Service port, or every container port, of
/// the namespace, whether the monitor selects it or not: the Operator's keep rules decide).
///
/// The rules the Operator puts before a resource's own relabelings are written down here from
/// prometheus-operator's pkg/prometheus/promcfg.go (generateServiceMonitorConfig,
/// generatePodMonitorConfig, generateProbeConfig), those that decide which targets stay and their
/// `job`, `namespace`, `pod`, `container`, `service`, `endpoint` and `instance`: the job is the
/// Service's name (ServiceMonitor), `<namespace>/<name>` (PodMonitor) or the job name
/// `probe/<namespace>/<name>` (Probe), replaced by the `jobLabel` label's value or the Probe's
/// `jobName` when set.
fn operator_jobs(m: &Manifests, monitor: &Doc, namespace: &str) -> Vec<Job> {
    let name = monitor.name();
    let mut jobs = Vec::new();
    for (i, (_, endpoint)) in scrape_endpoints(monitor).into_iter().enumerate() {
        let mut config = Mapping::new();
        let mut rules = Vec::new();
        let mut discovered = Vec::new();
        let job_label = text(&monitor.value, "spec.jobLabel").map(sanitize);
        let port = text(endpoint, "port").unwrap_or_default();
        let job_name = match monitor.kind() {
            "ServiceMonitor" => {
                let selector = at(&monitor.value, "spec.selector").expect("selector");
                rules.extend(selector_rules(selector, "__meta_kubernetes_service_"));
                rules.push(rule(&format!(
                    "{{action: keep, source_labels: [__meta_kubernetes_endpoint_port_name], regex: '{port}'}}"
                )));
                for flow in [
                    "{source_labels: [__meta_kubernetes_namespace], target_label: namespace}",
                    "{source_labels: [__meta_kubernetes_service_name], target_label: service}",
                    "{source_labels: [__meta_kubernetes_pod_name], target_label: pod}",
                    "{source_labels: [__meta_kubernetes_pod_container_name], target_label: container}",
                    "{source_labels: [__meta_kubernetes_service_name], target_label: job, replacement: '${1}'}",
                ] {
                    rules.push(rule(flow));
                }
                if let Some(label) = &job_label {
                    rules.push(rule(&format!(
                        "{{source_labels: [__meta_kubernetes_service_label_{label}], target_label: job, regex: '(.+)', replacement: '${{1}}'}}"
                    )));
                }
                for service in m.of_kind("Service") {
                    let service_labels = string_map(at(&service.value, "metadata.labels"));
                    let selector = string_map(at(&service.value, "spec.selector"));
                    let pods: Vec<Pod> = m
                        .pods()
                        .into_iter()
                        .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
                        .collect();
                    for service_port in list(&service.value, "spec.ports") {
                        let target =
                            at(service_port, "targetPort").or_else(|| at(service_port, "port"));
                        for pod in &pods {
                            for container in list(pod.spec, "containers") {
                                for container_port in list(container, "ports") {
                                    let matches = match target {
                                        Some(Value::String(n)) => {
                                            text(container_port, "name") == Some(n)
                                        }
                                        Some(Value::Number(n)) => {
                                            at(container_port, "containerPort")
                                                .and_then(Value::as_i64)
                                                == n.as_i64()
                                        }
                                        _ => false,
                                    };
                                    if !matches {
                                        continue;
                                    }
                                    let mut labels =
                                        pod_meta(pod, container, container_port, namespace);
                                    labels.insert(
                                        "__meta_kubernetes_service_name".into(),
                                        service.name().into(),
                                    );
                                    if let Some(port_name) = text(service_port, "name") {
                                        labels.insert(
                                            "__meta_kubernetes_endpoint_port_name".into(),
                                            port_name.into(),
                                        );
                                    }
                                    label_meta(
                                        "__meta_kubernetes_service_",
                                        &service_labels,
                                        &mut labels,
                                    );
                                    let number = at(container_port, "containerPort")
                                        .and_then(Value::as_i64)
                                        .unwrap_or(0);
                                    discovered.push(group(labels, number));
                                }
                            }
                        }
                    }
                }
                format!("serviceMonitor/{namespace}/{name}/{i}")
            }
            "PodMonitor" => {
                let selector = at(&monitor.value, "spec.selector").expect("selector");
                rules.extend(selector_rules(selector, "__meta_kubernetes_pod_"));
                rules.push(rule(&format!(
                    "{{action: keep, source_labels: [__meta_kubernetes_pod_container_port_name], regex: '{port}'}}"
                )));
                for flow in [
                    "{source_labels: [__meta_kubernetes_namespace], target_label: namespace}",
                    "{source_labels: [__meta_kubernetes_pod_container_name], target_label: container}",
                    "{source_labels: [__meta_kubernetes_pod_name], target_label: pod}",
                ] {
                    rules.push(rule(flow));
                }
                rules.push(rule(&format!(
                    "{{target_label: job, replacement: '{namespace}/{name}'}}"
                )));
                if let Some(label) = &job_label {
                    rules.push(rule(&format!(
                        "{{source_labels: [__meta_kubernetes_pod_label_{label}], target_label: job, regex: '(.+)', replacement: '${{1}}'}}"
                    )));
                }
                for pod in m.pods() {
                    for container in list(pod.spec, "containers") {
                        for container_port in list(container, "ports") {
                            let number = at(container_port, "containerPort")
                                .and_then(Value::as_i64)
                                .unwrap_or(0);
                            discovered.push(group(
                                pod_meta(&pod, container, container_port, namespace),
                                number,
                            ));
                        }
                    }
                }
                format!("podMonitor/{namespace}/{name}/{i}")
            }
            "ScrapeConfig" => {
                if let Some(job) = text(endpoint, "jobName") {
                    rules.push(rule(&format!(
                        "{{target_label: job, replacement: '{job}'}}"
                    )));
                }
                if let Some(path) = text(endpoint, "metricsPath") {
                    config.insert("metrics_path".into(), path.into());
                }
                discovered.extend(super::discovery::kubernetes_services(m, monitor, namespace));
                format!("scrapeConfig/{namespace}/{name}")
            }
            _ => {
                if let Some(job) = text(endpoint, "jobName") {
                    rules.push(rule(&format!(
                        "{{target_label: job, replacement: '{job}'}}"
                    )));
                }
                let url = text(endpoint, "prober.url").expect("prober.url");
                rules.extend([
                    rule("{source_labels: [__address__], target_label: __param_target}"),
                    rule("{source_labels: [__param_target], target_label: instance}"),
                    rule(&format!(
                        "{{target_label: __address__, replacement: '{url}'}}"
                    )),
                ]);
                let mut labels = string_map(at(endpoint, "targets.staticConfig.labels"));
                labels
                    .entry("namespace".to_owned())
                    .or_insert_with(|| namespace.to_owned());
                let targets: Vec<&str> = list(endpoint, "targets.staticConfig.static")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                config.insert(
                    "static_configs".into(),
                    serde_yaml::to_value([
                        serde_json::json!({"targets": targets, "labels": labels}),
                    ])
                    .unwrap(),
                );
                if let Some(path) = text(endpoint, "prober.path") {
                    config.insert("metrics_path".into(), path.into());
                }
                if let Some(module) = text(endpoint, "module") {
                    config.insert("params".into(), rule(&format!("{{module: ['{module}']}}")));
                }
                format!("probe/{namespace}/{name}")
            }
        };
        if monitor.kind() != "Probe" {
            if !port.is_empty() {
                rules.push(rule(&format!(
                    "{{target_label: endpoint, replacement: '{port}'}}"
                )));
            }
            if let Some(path) = text(endpoint, "path") {
                config.insert("metrics_path".into(), path.into());
            }
        }
        let own = if monitor.kind() == "Probe" {
            "targets.staticConfig.relabelingConfigs"
        } else {
            "relabelings"
        };
        rules.extend(list(endpoint, own).iter().map(prometheus_relabeling));
        config.insert("job_name".into(), job_name.clone().into());
        for (from, to) in [
            ("interval", "scrape_interval"),
            ("scrapeInterval", "scrape_interval"),
            ("scrapeTimeout", "scrape_timeout"),
        ] {
            if let Some(value) = at(endpoint, from) {
                config.insert(to.into(), value.clone());
            }
        }
        config.insert("relabel_configs".into(), Value::Sequence(rules));
        let metric = list(endpoint, "metricRelabelings");
        if !metric.is_empty() {
            config.insert(
                "metric_relabel_configs".into(),
                Value::Sequence(metric.iter().map(prometheus_relabeling).collect()),
            );
        }
        jobs.push(Job {
            name: job_name,
            config,
            discovered,
        });
    }
    jobs
}

/// A Prometheus configuration of `jobs`, their discovered targets in file_sd files of `dir`. With
/// `closed_port`, every job ends with one more rule, this test's own: the address becomes that
/// closed port of 127.0.0.1, so that a running Prometheus scrapes nothing beyond loopback (and
/// fails at once). It comes after everything that sets labels, so it changes only the address (and
/// `instance` where nothing set it).
fn prometheus_config(jobs: &[Job], dir: &Path, closed_port: Option<u16>) -> String {
    let mut scrape_configs = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        let mut config = job.config.clone();
        if !job.discovered.is_empty() {
            let file = support::write(dir, &format!("sd-{n}.json"), &job.discovered_json());
            config.insert(
                "file_sd_configs".into(),
                rule(&format!("[{{files: ['{}']}}]", file.display())),
            );
        }
        if let Some(port) = closed_port
            && let Some(Value::Sequence(rules)) = config.get_mut("relabel_configs")
        {
            rules.push(rule(&format!(
                "{{target_label: __address__, replacement: '127.0.0.1:{port}'}}"
            )));
        }
        scrape_configs.push(Value::Mapping(config));
    }
    let mut root = Mapping::new();
    root.insert("scrape_configs".into(), Value::Sequence(scrape_configs));
    serde_yaml::to_string(&root).unwrap()
}

impl Job {
    fn discovered_json(&self) -> String {
        serde_json::to_string_pretty(&self.discovered).unwrap()
    }
}

/// `promtool check config` on a configuration: whether it passed, and what it printed.
fn promtool_check_config(config: &str, dir: &Path) -> (bool, String) {
    let path = support::write(dir, "prometheus.yml", config);
    run(Command::new(support::promtool())
        .args(["check", "config"])
        .arg(&path))
}

/// An active target of a real Prometheus: its scrape pool (the job name) and its labels.
type Target = (String, BTreeMap<String, String>);

/// The targets a real Prometheus makes of `jobs` (both namespaces' at once), once it has them all:
/// each active target's scrape pool (the job name) and labels, and the number of dropped ones.
fn run_jobs(jobs: &[Job], expected_active: usize) -> (Vec<Target>, usize) {
    use crate::prometheus::server::{Prometheus, seq, text as json_text};
    let dir = tempfile::tempdir().unwrap();
    let config = prometheus_config(jobs, dir.path(), Some(support::free_port()));
    let (ok, out) = promtool_check_config(&config, dir.path());
    assert!(
        ok,
        "promtool rejects the monitors' scrape configuration:\n{out}\n{config}"
    );
    let prometheus = Prometheus::start(&config);
    // The scrape manager applies discovered targets at most every 5 s.
    let found = poll(Duration::from_secs(30), Duration::from_millis(250), || {
        let data = prometheus.api("/api/v1/targets?state=any");
        let active: Vec<Target> = seq(&data["activeTargets"])
            .iter()
            .map(|t| {
                let labels = t["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), json_text(v)))
                    .collect();
                (json_text(&t["scrapePool"]), labels)
            })
            .collect();
        let dropped = seq(&data["droppedTargets"]).len();
        (active.len() >= expected_active).then_some((active, dropped))
    });
    found.unwrap_or_else(|| {
        panic!(
            "Prometheus did not get the {expected_active} expected targets within 30 s:\n{}\n{}\n{config}",
            serde_json::to_string_pretty(&prometheus.api("/api/v1/targets?state=any")).unwrap(),
            prometheus.log()
        )
    })
}

/// FanoutExporterDown's `job` matcher, from the syntax tree of the shipped rule: the one matcher on
/// `job` of its one `up` selector.
fn exporter_down_job_matcher() -> Matcher {
    let expr = crate::rules::alert_expr("FanoutExporterDown");
    let scan = crate::rules::promql::scan(&expr)
        .unwrap_or_else(|e| panic!("FanoutExporterDown `{expr}`: {e}"));
    let up: Vec<_> = scan.selectors.iter().filter(|s| s.name == "up").collect();
    assert_eq!(up.len(), 1, "FanoutExporterDown `{expr}`: one up selector");
    let job: Vec<&Matcher> = up[0].matchers.iter().filter(|m| m.name == "job").collect();
    assert_eq!(
        job.len(),
        1,
        "FanoutExporterDown `{expr}`: one job matcher on up"
    );
    job[0].clone()
}

/// The monitors' endpoints: how many targets each Operator job must keep (one pod for a monitor,
/// every listed name for the Probe), by job name, for `namespace`.
fn expected_targets(m: &Manifests, namespace: &str, monitors: &[Doc]) -> BTreeMap<String, usize> {
    monitors
        .iter()
        .flat_map(|monitor| {
            let listed = list(&monitor.value, "spec.targets.staticConfig.static").len();
            operator_jobs(m, monitor, namespace)
                .into_iter()
                .map(move |job| (job.name, if monitor.kind() == "Probe" { listed } else { 1 }))
        })
        .collect()
}

/// The Operator resources, as shipped or with `strip` applied.
fn operator_docs(m: &Manifests, strip: impl Fn(&mut Value)) -> Vec<Doc> {
    m.docs
        .iter()
        .filter(|d| d.is_operator())
        .map(|d| {
            let mut value = d.value.clone();
            strip(&mut value);
            Doc {
                file: d.file.clone(),
                value,
            }
        })
        .collect()
}

/// The namespaces the checks apply the resources in: kustomization.yaml's, and another an overlay
/// may set (a PodMonitor's default job, `<namespace>/<name>`, matches fanout.* in fanout-example
/// by accident only).
fn namespaces(m: &Manifests) -> [&str; 2] {
    [m.namespace.as_str(), "monitoring"]
}

/// Every job of `monitors` in both namespaces, run by a real Prometheus: the active targets, after
/// checking that each job kept exactly the targets it should.
fn real_targets(m: &Manifests, monitors: &[Doc]) -> Vec<Target> {
    let mut jobs = Vec::new();
    let mut expected = BTreeMap::new();
    for namespace in namespaces(m) {
        for monitor in monitors {
            jobs.extend(operator_jobs(m, monitor, namespace));
        }
        expected.extend(expected_targets(m, namespace, monitors));
    }
    let (active, dropped) = run_jobs(&jobs, expected.values().sum());
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    for (pool, _) in &active {
        *counted.entry(pool.clone()).or_default() += 1;
    }
    assert_eq!(
        counted, expected,
        "targets kept per job (and {dropped} dropped)"
    );
    assert!(
        dropped > 0,
        "the keep rules must have dropped the other Services' and pods' ports"
    );
    active
}

#[test]
fn monitor_intervals_and_relabelings_are_valid() {
    let m = manifests();
    let mut checked = 0;
    let mut jobs = Vec::new();
    for monitor in m.docs.iter().filter(|d| d.is_operator()) {
        for (context, endpoint) in scrape_endpoints(monitor) {
            let interval = text(endpoint, "interval")
                .or_else(|| text(endpoint, "scrapeInterval"))
                .unwrap_or_else(|| panic!("{context}: no interval"));
            let timeout = text(endpoint, "scrapeTimeout")
                .unwrap_or_else(|| panic!("{context}: no scrapeTimeout"));
            let (interval, timeout) = (duration(interval), duration(timeout));
            assert!(
                timeout < interval && timeout >= Duration::from_secs(1),
                "{context}: scrapeTimeout {timeout:?} must be at least 1s and below interval {interval:?}"
            );
            let own = if monitor.kind() == "Probe" {
                "targets.staticConfig.relabelingConfigs"
            } else {
                "relabelings"
            };
            checked += list(endpoint, own).len() + list(endpoint, "metricRelabelings").len();
        }
        jobs.extend(operator_jobs(m, monitor, &m.namespace));
    }
    assert!(
        checked >= 3,
        "expected relabelings on every monitor, checked {checked}"
    );
    // Prometheus' own validation of the intervals and every relabeling, as the Operator passes them.
    let dir = tempfile::tempdir().unwrap();
    let config = prometheus_config(&jobs, dir.path(), None);
    let (ok, out) = promtool_check_config(&config, dir.path());
    assert!(
        ok,
        "promtool rejects the monitors' scrape configuration:\n{out}\n{config}"
    );
}

#[test]
fn promtool_rejects_invalid_relabelings() {
    let dir = tempfile::tempdir().unwrap();
    let check = |relabeling: &str| {
        let mut job = Mapping::new();
        job.insert("job_name".into(), "check".into());
        job.insert(
            "static_configs".into(),
            rule("[{targets: ['127.0.0.1:1']}]"),
        );
        job.insert(
            "relabel_configs".into(),
            Value::Sequence(vec![prometheus_relabeling(&rule(relabeling))]),
        );
        let jobs = [Job {
            name: "check".into(),
            config: job,
            discovered: Vec::new(),
        }];
        promtool_check_config(&prometheus_config(&jobs, dir.path(), None), dir.path())
    };
    for bad in [
        "{action: keepp, sourceLabels: [a]}",
        "{sourceLabels: [a], regex: '(unclosed'}",
        "{action: hashmod, sourceLabels: [a], targetLabel: __tmp_hash}",
        "{action: replace, sourceLabels: [a]}",
        "{sourceLabels: [a-b], targetLabel: instance}",
        "{action: Replace, sourceLabels: [a], targetLabel: 'not a name'}",
    ] {
        let (ok, out) = check(bad);
        assert!(!ok, "promtool accepted {bad}:\n{out}");
    }
    for good in [
        "{action: hashmod, sourceLabels: [__param_target], modulus: 4, targetLabel: __tmp_hash}",
        "{action: Keep, sourceLabels: [__tmp_hash], regex: '1'}",
        "{targetLabel: job, replacement: fanout}",
    ] {
        let (ok, out) = check(good);
        assert!(ok, "promtool rejected {good}:\n{out}");
    }
}

#[test]
fn every_monitor_job_is_selected_by_the_exporter_down_alert() {
    // The shipped rule's matcher, not a copy of it: the two must not drift apart.
    let matcher = exporter_down_job_matcher();
    let m = manifests();
    let monitors = operator_docs(m, |_| {});
    let mut kinds = BTreeSet::new();
    for (pool, labels) in real_targets(m, &monitors) {
        let job = labels.get("job").map_or("", String::as_str);
        let instance = labels.get("instance").map_or("", String::as_str);
        let context = format!("{pool}, target {instance}");
        assert!(
            matcher.is_match(job),
            "{context}: gets job=\"{job}\", which FanoutExporterDown's {matcher} \
             (deploy/prometheus/rules/fanout.yml) does not select: the alert would never fire when \
             Prometheus cannot scrape it. Set the job in the monitor (a relabeling with \
             targetLabel: job, or a Probe's jobName)."
        );
        // The namespace of what was scraped: the monitor's, or for the ScrapeConfig that of the
        // Service it discovered.
        let namespace = if pool.starts_with("scrapeConfig/") {
            super::discovery::DISCOVERED_NAMESPACE
        } else {
            pool.split('/').nth(1).unwrap_or_default()
        };
        assert_eq!(
            labels.get("namespace").map(String::as_str),
            Some(namespace),
            "{context}"
        );
        // instance is the pod (monitors) or the target's name (Probe), as the manifests' comments say.
        let monitor = monitors
            .iter()
            .find(|d| {
                pool.split('/').nth(2) == Some(d.name())
                    && pool.to_lowercase().starts_with(&d.kind().to_lowercase())
            })
            .unwrap_or_else(|| panic!("{context}: no monitor"));
        if monitor.kind() == "Probe" {
            let listed = list(&monitor.value, "spec.targets.staticConfig.static");
            assert!(
                listed.iter().any(|t| t.as_str() == Some(instance)),
                "{context}: instance is a listed target"
            );
        } else if monitor.kind() == "ScrapeConfig" {
            super::discovery::assert_discovered_instance(&context, &labels);
        } else {
            assert_eq!(
                labels.get("pod").map(String::as_str),
                Some(instance),
                "{context}: instance"
            );
        }
        kinds.insert(monitor.kind().to_owned());
    }
    assert_eq!(
        kinds,
        BTreeSet::from(
            ["PodMonitor", "Probe", "ScrapeConfig", "ServiceMonitor"].map(str::to_owned)
        ),
        "every Operator kind checked"
    );
}

/// The control of the check above: stripped of what sets their job, the monitors get the
/// Operator's defaults from the real Prometheus, which FanoutExporterDown misses outside a namespace
/// whose name starts with fanout.
#[test]
fn monitors_without_their_job_settings_get_the_operators_defaults_and_escape_the_alert() {
    let matcher = exporter_down_job_matcher();
    let m = manifests();
    let bare = operator_docs(m, |value| {
        let spec = value["spec"].as_mapping_mut().unwrap();
        spec.remove("jobLabel");
        spec.remove("jobName");
        for field in ["endpoints", "podMetricsEndpoints"] {
            for endpoint in spec
                .get_mut(field)
                .and_then(Value::as_sequence_mut)
                .into_iter()
                .flatten()
            {
                endpoint.as_mapping_mut().unwrap().remove("relabelings");
            }
        }
        if let Some(config) = spec
            .get_mut("targets")
            .and_then(|t| t.get_mut("staticConfig"))
            .and_then(Value::as_mapping_mut)
        {
            config.remove("relabelingConfigs");
        }
    });
    let mut missed = BTreeSet::new();
    for (pool, labels) in real_targets(m, &bare) {
        let parts: Vec<&str> = pool.split('/').collect();
        let (namespace, name) = (parts[1], parts[2]);
        let expected = match parts[0] {
            "serviceMonitor" => labels["service"].clone(),
            "podMonitor" => format!("{namespace}/{name}"),
            _ => pool.clone(),
        };
        assert_eq!(
            labels["job"], expected,
            "{pool}: the Operator's default job"
        );
        // The ScrapeConfig keeps its relabelings (they do not set the job), which label the
        // discovered Service's namespace.
        let namespace = match parts[0] {
            "scrapeConfig" => super::discovery::DISCOVERED_NAMESPACE,
            _ => namespace,
        };
        assert_eq!(labels["namespace"], namespace, "{pool}: namespace");
        if !matcher.is_match(&labels["job"]) {
            missed.insert(parts[0].to_owned());
        }
    }
    assert_eq!(
        missed,
        BTreeSet::from(
            ["podMonitor", "probe", "scrapeConfig", "serviceMonitor"].map(str::to_owned)
        ),
        "without their job settings every kind of monitor escapes {matcher} somewhere"
    );
}

#[test]
fn probe_scrapes_configured_targets_through_the_exporter_service() {
    let m = manifests();
    // The Probe of configured names; those with a module (addresses) are discovery.rs'.
    let probes: Vec<&Doc> = m
        .of_kind("Probe")
        .filter(|p| at(&p.value, "spec.module").is_none())
        .collect();
    assert_eq!(probes.len(), 1, "one Probe of target names");
    let probe = probes[0];
    let spec = at(&probe.value, "spec").unwrap();
    assert_eq!(text(spec, "prober.path"), Some("/probe"), "prober.path");
    assert_eq!(
        text(spec, "prober.scheme").unwrap_or("http"),
        "http",
        "prober.scheme"
    );
    // prober.url: <service>.<namespace>.svc[.cluster.local]:<port>
    let url = text(spec, "prober.url").expect("prober.url");
    let (host, port) = url.rsplit_once(':').expect("prober.url has a port");
    let labels: Vec<&str> = host.split('.').collect();
    assert!(
        labels.len() >= 3 && labels[2] == "svc",
        "prober.url {url}: expected <service>.<namespace>.svc:<port>"
    );
    assert_eq!(
        labels[1], m.namespace,
        "prober.url names the kustomization's namespace"
    );
    let service = m
        .object("Service", labels[0])
        .unwrap_or_else(|| panic!("prober.url {url}: no Service {}", labels[0]));
    let service_port = list(&service.value, "spec.ports")
        .iter()
        .find(|p| at(p, "port").and_then(Value::as_i64) == port.parse().ok())
        .unwrap_or_else(|| panic!("{}: no port {port}", service.id()));
    assert_eq!(text(service_port, "name"), Some("metrics"));
    let (pod, container) = service_backend(m, service, service_port, &probe.id());
    let (_, config) = exporter_config(m, &pod, container);
    let configured = target_names(&config);
    let listed: BTreeSet<String> = list(spec, "targets.staticConfig.static")
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(listed.len() >= 3, "the example lists several targets");
    assert_eq!(
        listed, configured,
        "the Probe lists exactly the targets the exporter is configured with (an unknown one is a 400)"
    );
    let sets_instance = list(spec, "targets.staticConfig.relabelingConfigs")
        .iter()
        .any(|r| {
            list(r, "sourceLabels")
                .iter()
                .map(Value::as_str)
                .eq([Some("__param_target")])
                && text(r, "targetLabel") == Some("instance")
                && text(r, "action")
                    .unwrap_or("replace")
                    .eq_ignore_ascii_case("replace")
                && at(r, "regex").is_none()
                && at(r, "replacement").is_none()
        });
    assert!(sets_instance, "instance is set from __param_target");
}
