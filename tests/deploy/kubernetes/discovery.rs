//! The service discovery resources of service-discovery.yaml: a Probe with a `module` lists
//! addresses that its module (in the exporter config behind `prober.url`) takes and allows, and the
//! ScrapeConfig is deploy/prometheus/kubernetes-sd.yml's job in the Operator's spelling, so that
//! the real-Prometheus test of that job (prometheus/discovery.rs) covers it. The Operator's scrape
//! jobs of both run in a real Prometheus with the other monitors (monitors.rs), the ScrapeConfig's
//! Kubernetes discovery given by [`kubernetes_services`].

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::monitors::{prometheus_relabeling, sanitize};
use super::{Doc, Manifests, at, exporter_config, list, manifests, service_backend, text};
use crate::common::{module_kind, module_target_host};

/// The namespace of the annotated Service that [`kubernetes_services`] adds: the shop namespace
/// multi-target.yaml's modules allow.
pub const DISCOVERED_NAMESPACE: &str = "shop";
/// That Service, its port, and the module its annotation names.
const DISCOVERED_SERVICE: &str = "orders-db";
const DISCOVERED_PORT: u16 = 3306;
const DISCOVERED_MODULE: &str = "mysql_shop";
/// The Kubernetes job the ScrapeConfig must equal.
const KUBERNETES_CONFIG: &str = "deploy/prometheus/kubernetes-sd.yml";

/// The target groups Kubernetes discovery (role Service, which the ScrapeConfig must use) gives
/// the ScrapeConfig `monitor`'s job in `namespace`: every port of every Service of the manifests,
/// none annotated, so its keep rule must drop them, and a Service of the shop namespace annotated
/// `fanout.example.com/module: mysql_shop`, the one it must keep. Addresses are the Services' DNS
/// names, as that role gives them.
pub fn kubernetes_services(
    m: &Manifests,
    monitor: &Doc,
    namespace: &str,
) -> Vec<serde_json::Value> {
    let roles: Vec<&str> = list(&monitor.value, "spec.kubernetesSDConfigs")
        .iter()
        .map(|c| text(c, "role").unwrap_or_default())
        .collect();
    assert_eq!(
        roles,
        ["Service"],
        "{}: the discovery this test gives it (role Service)",
        monitor.id()
    );
    let mut groups = Vec::new();
    for service in m.of_kind("Service") {
        for port in list(&service.value, "spec.ports") {
            let number = at(port, "port").and_then(Value::as_u64).unwrap();
            groups.push(service_group(
                service.name(),
                namespace,
                &service_annotations(service),
                text(port, "name").unwrap_or_default(),
                number,
            ));
        }
    }
    groups.push(service_group(
        DISCOVERED_SERVICE,
        DISCOVERED_NAMESPACE,
        &BTreeMap::from([(
            "fanout.example.com/module".to_owned(),
            DISCOVERED_MODULE.to_owned(),
        )]),
        "mysql",
        u64::from(DISCOVERED_PORT),
    ));
    groups
}

fn service_annotations(service: &Doc) -> BTreeMap<String, String> {
    at(&service.value, "metadata.annotations")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// One Service port as the role Service's target group.
fn service_group(
    name: &str,
    namespace: &str,
    annotations: &BTreeMap<String, String>,
    port_name: &str,
    port: u64,
) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    labels.insert("__meta_kubernetes_namespace".into(), namespace.into());
    labels.insert("__meta_kubernetes_service_name".into(), name.into());
    labels.insert(
        "__meta_kubernetes_service_port_name".into(),
        port_name.into(),
    );
    labels.insert(
        "__meta_kubernetes_service_port_number".into(),
        port.to_string().into(),
    );
    labels.insert(
        "__meta_kubernetes_service_port_protocol".into(),
        "TCP".into(),
    );
    for (key, value) in annotations {
        let key = sanitize(key);
        labels.insert(
            format!("__meta_kubernetes_service_annotation_{key}"),
            value.clone().into(),
        );
        labels.insert(
            format!("__meta_kubernetes_service_annotationpresent_{key}"),
            "true".into(),
        );
    }
    serde_json::json!({
        "targets": [format!("{name}.{namespace}.svc:{port}")],
        "labels": labels,
    })
}

/// The labels of the ScrapeConfig's one kept target: the annotated Service's address as the
/// instance (host:port, as MySQL takes it), its module, Service and namespace.
pub fn assert_discovered_instance(context: &str, labels: &BTreeMap<String, String>) {
    let want = |key: &str| labels.get(key).map(String::as_str);
    let address = format!("{DISCOVERED_SERVICE}.{DISCOVERED_NAMESPACE}.svc:{DISCOVERED_PORT}");
    assert_eq!(
        (
            want("instance"),
            want("module"),
            want("service"),
            want("namespace")
        ),
        (
            Some(address.as_str()),
            Some(DISCOVERED_MODULE),
            Some(DISCOVERED_SERVICE),
            Some(DISCOVERED_NAMESPACE)
        ),
        "{context}: the annotated Service's labels: {labels:?}"
    );
}

#[test]
fn scrape_config_is_the_shipped_kubernetes_job() {
    let m = manifests();
    let configs: Vec<&Doc> = m.of_kind("ScrapeConfig").collect();
    assert_eq!(configs.len(), 1, "one ScrapeConfig");
    let spec = at(&configs[0].value, "spec").unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(KUBERNETES_CONFIG);
    let plain: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{KUBERNETES_CONFIG}: {e}"));
    let job = &plain["scrape_configs"][0];
    assert_eq!(
        text(spec, "jobName"),
        job["job_name"].as_str(),
        "the job name"
    );
    assert_eq!(
        text(spec, "metricsPath"),
        job["metrics_path"].as_str(),
        "metrics path"
    );
    let roles: Vec<String> = list(spec, "kubernetesSDConfigs")
        .iter()
        .map(|c| text(c, "role").unwrap().to_lowercase())
        .collect();
    let plain_roles: Vec<String> = job["kubernetes_sd_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, plain_roles, "discovery roles");
    let relabelings: Vec<Value> = list(spec, "relabelings")
        .iter()
        .map(prometheus_relabeling)
        .collect();
    let plain_relabelings: Vec<Value> = job["relabel_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|step| Value::Mapping(step.as_mapping().cloned().unwrap_or_else(Mapping::new)))
        .collect();
    assert!(!relabelings.is_empty());
    assert_eq!(
        relabelings, plain_relabelings,
        "the ScrapeConfig's relabelings, in Prometheus' spelling, are {KUBERNETES_CONFIG}'s"
    );
}

/// Whether `host` matches the host glob `pattern` as the exporter's allowed_targets host rules are
/// documented: case-insensitive, `*` any run of characters (dots included), `?` one character.
fn glob_matches(pattern: &str, host: &str) -> bool {
    fn matches(pattern: &[u8], host: &[u8]) -> bool {
        match pattern.split_first() {
            None => host.is_empty(),
            Some((b'*', rest)) => (0..=host.len()).any(|skip| matches(rest, &host[skip..])),
            Some((b'?', rest)) => !host.is_empty() && matches(rest, &host[1..]),
            Some((c, rest)) => host.first() == Some(c) && matches(rest, &host[1..]),
        }
    }
    matches(
        pattern.to_ascii_lowercase().as_bytes(),
        host.to_ascii_lowercase().as_bytes(),
    )
}

#[test]
fn host_globs_match_as_documented() {
    assert!(glob_matches("*.shop.svc", "orders-db.shop.svc"));
    assert!(glob_matches("localhost", "LOCALHOST"));
    assert!(!glob_matches("*.shop.svc", "orders-db.other.svc"));
    assert!(!glob_matches("*.shop.svc", "shop.svc"));
    assert!(!glob_matches("localhost", "localhost.evil"));
    assert!(glob_matches("db-?", "db-1"));
    assert!(!glob_matches("db-?", "db-12"));
    assert!(glob_matches("*.*.svc", "a.b.svc"));
}

#[test]
fn module_probes_list_addresses_their_module_takes_and_allows() {
    let m = manifests();
    let probes: Vec<&Doc> = m
        .of_kind("Probe")
        .filter(|p| at(&p.value, "spec.module").is_some())
        .collect();
    assert!(!probes.is_empty(), "a Probe with a module");
    for probe in probes {
        let spec = at(&probe.value, "spec").unwrap();
        let module = text(spec, "module").unwrap();
        assert_eq!(text(spec, "prober.path"), Some("/probe"), "{}", probe.id());
        assert_eq!(
            text(spec, "targets.staticConfig.labels.module"),
            Some(module),
            "{}: the series carry the module, as the file_sd job's do",
            probe.id()
        );
        // prober.url: <service>.<namespace>.svc:<port>, the exporter behind it.
        let url = text(spec, "prober.url").unwrap();
        let (host, port) = url.rsplit_once(':').unwrap();
        let service = m
            .object("Service", host.split('.').next().unwrap())
            .unwrap_or_else(|| panic!("{}: prober.url {url}: no such Service", probe.id()));
        let service_port = list(&service.value, "spec.ports")
            .iter()
            .find(|p| at(p, "port").and_then(Value::as_i64) == port.parse().ok())
            .unwrap_or_else(|| panic!("{}: no port {port}", service.id()));
        let (pod, container) = service_backend(m, service, service_port, &probe.id());
        let (_, config) = exporter_config(m, &pod, container);
        let settings = config["modules"].get(module).unwrap_or_else(|| {
            panic!(
                "{}: module {module} is not in the exporter config of {}",
                probe.id(),
                pod.doc.id()
            )
        });
        let kind = module_kind(settings, module);
        let globs: Vec<&str> = list(settings, "allowed_targets")
            .iter()
            .filter_map(Value::as_str)
            .filter(|rule| !rule.contains("://") && !rule.contains('/'))
            .collect();
        let targets = list(spec, "targets.staticConfig.static");
        assert!(!targets.is_empty(), "{}: no targets", probe.id());
        for target in targets {
            let target = target.as_str().unwrap();
            let host = module_target_host(kind, target, &probe.id());
            assert!(
                globs.iter().any(|g| glob_matches(g, host)),
                "{}: {target}: module {module}'s allowed_targets {globs:?} do not allow {host} \
                 (the exporter would answer 403)",
                probe.id()
            );
        }
    }
}
