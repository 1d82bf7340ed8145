//! deploy/kubernetes: every manifest against the Kubernetes schemas (kubernetes-validate, strict), the
//! Prometheus Operator resources against the operator's schemas (the npm package
//! @kubernetes-models/prometheus-operator: its JSON-schema validators, and its TypeScript types through
//! `tsc` for unknown fields), the wiring between the objects (selectors, ports, Secrets, ConfigMaps),
//! the exporter configs with the real binary's `--config.check` in the environment the pods give it,
//! the `job` label each monitor's targets get from a real Prometheus (the Operator's rules, then the
//! monitor's relabelings) against the shipped FanoutExporterDown alert, and the two sidecars end to
//! end against real MariaDB and Redis servers (Redis started from the config file its init container
//! writes).
//!
//! This module owns the manifests as kustomization.yaml assembles them and what the checks read
//! from them (pods, volumes, environments, the exporter's configs, selectors and ports); the checks
//! are in [`schemas`], [`monitors`], [`pods`] and [`sidecars`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_yaml::Value;

use crate::common::{npm_modules, poll, run, tsc};
use crate::support::{self, Exporter, on_path};

// The harnesses' watchdog for server processes (a redis-server started from the manifest's own
// arguments below): killed when the test process dies, however it dies.
use fanout_testkit::watched;

/// The service discovery resources: the Probe of a module, the ScrapeConfig of annotated Services.
mod discovery;
/// ServiceMonitor, PodMonitor, Probe and ScrapeConfig, through promtool and a real Prometheus.
mod monitors;
/// The pods' containers: ports, probes, security, resources, configs and credentials.
mod pods;
/// kustomization.yaml, kubernetes-validate and the Prometheus Operator's schemas.
mod schemas;
/// The MariaDB and Redis sidecars end to end against real servers.
mod sidecars;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");
/// Kubernetes versions the built-in kinds are checked against: the oldest we claim to the newest
/// kubernetes-validate 1.37.0 knows.
const KUBERNETES_VERSIONS: &[&str] = &[
    "1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0",
];
const OPERATOR_GROUP: &str = "monitoring.coreos.com/";
/// Where the image's default `--config.file` points.
const CONFIG_PATH: &str = "/etc/fanout_exporter/config.yaml";
const METRICS_PORT: i64 = 9930;

// ---------------------------------------------------------------------------------------------
// Loading

/// One YAML document of a manifest file.
struct Doc {
    file: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        text(&self.value, "kind").unwrap_or("")
    }

    fn name(&self) -> &str {
        text(&self.value, "metadata.name").unwrap_or("")
    }

    fn is_operator(&self) -> bool {
        text(&self.value, "apiVersion").is_some_and(|v| v.starts_with(OPERATOR_GROUP))
    }

    fn id(&self) -> String {
        format!("{}: {}/{}", self.file, self.kind(), self.name())
    }
}

/// The manifests as kustomization.yaml assembles them.
struct Manifests {
    namespace: String,
    /// The files it lists, in order.
    files: Vec<String>,
    docs: Vec<Doc>,
}

/// Every document of a YAML file (the one loader of this module).
fn load(path: &Path) -> Vec<Value> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn manifests() -> &'static Manifests {
    static MANIFESTS: OnceLock<Manifests> = OnceLock::new();
    MANIFESTS.get_or_init(|| {
        let kustomization = load(&Path::new(DIR).join("kustomization.yaml"));
        assert_eq!(kustomization.len(), 1, "kustomization.yaml: one document");
        let kustomization = &kustomization[0];
        let namespace = text(kustomization, "namespace")
            .expect("kustomization.yaml sets namespace")
            .to_owned();
        let files: Vec<String> = list(kustomization, "resources")
            .iter()
            .map(|f| f.as_str().expect("resources are file names").to_owned())
            .collect();
        let docs = files
            .iter()
            .flat_map(|file| {
                load(&Path::new(DIR).join(file))
                    .into_iter()
                    .map(|value| Doc {
                        file: file.clone(),
                        value,
                    })
            })
            .collect();
        Manifests {
            namespace,
            files,
            docs,
        }
    })
}

impl Manifests {
    fn of_kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Doc> + 'a {
        let kind = kind.to_owned();
        self.docs.iter().filter(move |d| d.kind() == kind)
    }

    fn object(&self, kind: &str, name: &str) -> Option<&Doc> {
        self.of_kind(kind).find(|d| d.name() == name)
    }

    /// The text under `key` of a ConfigMap's `data` or a Secret's `stringData` (the manifests write
    /// Secrets in clear so that they can be read and replaced).
    fn object_text(&self, source: Source, name: &str, key: &str) -> Option<&str> {
        let (kind, field) = match source {
            Source::ConfigMap => ("ConfigMap", "data"),
            Source::Secret => ("Secret", "stringData"),
        };
        self.object(kind, name)
            .and_then(|d| at(&d.value, field))
            .and_then(|data| data.get(key))
            .and_then(Value::as_str)
    }

    /// Every pod template of a workload.
    fn pods(&self) -> Vec<Pod<'_>> {
        self.docs
            .iter()
            .filter(|d| matches!(d.kind(), "Deployment" | "StatefulSet" | "DaemonSet"))
            .map(|doc| Pod {
                doc,
                labels: string_map(at(&doc.value, "spec.template.metadata.labels")),
                spec: at(&doc.value, "spec.template.spec")
                    .unwrap_or_else(|| panic!("{}: no pod template", doc.id())),
            })
            .collect()
    }

    /// Every fanout_exporter container, with its pod.
    fn exporters(&self) -> Vec<(Pod<'_>, &Value)> {
        let found: Vec<_> = self
            .pods()
            .into_iter()
            .flat_map(|pod| {
                list(pod.spec, "containers")
                    .iter()
                    .filter(|c| is_exporter(c))
                    .map(move |c| (pod.clone(), c))
            })
            .collect();
        assert!(
            found.len() >= 3,
            "expected the MariaDB and Redis sidecars and the multi-target Deployment, found {} exporter containers",
            found.len()
        );
        found
    }
}

#[derive(Clone)]
struct Pod<'a> {
    doc: &'a Doc,
    labels: BTreeMap<String, String>,
    spec: &'a Value,
}

/// The value at a dotted path of mapping keys (`spec.template.spec`); keys that contain a dot (label
/// names, ConfigMap keys) are read with `get`.
fn at<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(value, |v, key| v.get(key))
}

fn text<'a>(value: &'a Value, dotted: &str) -> Option<&'a str> {
    at(value, dotted).and_then(Value::as_str)
}

fn list<'a>(value: &'a Value, dotted: &str) -> &'a [Value] {
    at(value, dotted)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            };
            (text(k), text(v))
        })
        .collect()
}

fn container_name(container: &Value) -> &str {
    text(container, "name").unwrap_or("?")
}

// ---------------------------------------------------------------------------------------------
// What a container sees

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    ConfigMap,
    Secret,
}

/// The ConfigMap or Secret behind a pod volume, with its `items`.
fn volume_object<'a>(pod: &Pod<'a>, volume: &str) -> Option<(Source, &'a str, &'a [Value])> {
    let volume = list(pod.spec, "volumes")
        .iter()
        .find(|v| text(v, "name") == Some(volume))?;
    if let Some(name) = text(volume, "configMap.name") {
        Some((Source::ConfigMap, name, list(volume, "configMap.items")))
    } else {
        text(volume, "secret.secretName")
            .map(|name| (Source::Secret, name, list(volume, "secret.items")))
    }
}

/// Which ConfigMap or Secret key a container sees at `path`, through its volume mounts.
fn mounted_file(pod: &Pod, container: &Value, path: &str) -> Option<(Source, String, String)> {
    for mount in list(container, "volumeMounts") {
        let mount_path = text(mount, "mountPath")?.trim_end_matches('/');
        let relative = match text(mount, "subPath") {
            Some(sub) if mount_path == path => sub.to_owned(),
            Some(_) => continue,
            None => match path
                .strip_prefix(mount_path)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(r) => r.to_owned(),
                None => continue,
            },
        };
        let (source, name, items) = volume_object(pod, text(mount, "name")?)?;
        let key = if items.is_empty() {
            Some(relative)
        } else {
            items
                .iter()
                .find(|i| text(i, "path") == Some(&relative))
                .and_then(|i| text(i, "key"))
                .map(str::to_owned)
        };
        return key.map(|k| (source, name.to_owned(), k));
    }
    None
}

/// Secret values to use instead of the manifests' example ones: (Secret, key, value).
type Overrides<'a> = &'a [(&'a str, &'a str, &'a str)];

fn secret_value(m: &Manifests, name: &str, key: &str, overrides: Overrides) -> String {
    if let Some((_, _, value)) = overrides.iter().find(|(n, k, _)| *n == name && *k == key) {
        return (*value).to_owned();
    }
    m.object_text(Source::Secret, name, key)
        .unwrap_or_else(|| panic!("Secret {name} has no stringData key {key}"))
        .to_owned()
}

/// The content of the file a container sees at `path`.
fn file_content(
    m: &Manifests,
    pod: &Pod,
    container: &Value,
    path: &str,
    overrides: Overrides,
) -> Option<(Source, String)> {
    let (source, name, key) = mounted_file(pod, container, path)?;
    let content = match source {
        Source::Secret => secret_value(m, &name, &key, overrides),
        Source::ConfigMap => m.object_text(source, &name, &key)?.to_owned(),
    };
    Some((source, content))
}

/// The environment Kubernetes gives `container`: its `env` (Secret and ConfigMap references resolved)
/// and, unless the pod sets `enableServiceLinks: false`, the variables of every Service with a
/// cluster IP in the namespace.
fn pod_environment(
    m: &Manifests,
    pod: &Pod,
    container: &Value,
    overrides: Overrides,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if at(pod.spec, "enableServiceLinks").and_then(Value::as_bool) != Some(false) {
        for (i, service) in m.of_kind("Service").enumerate() {
            if text(&service.value, "spec.clusterIP") == Some("None") {
                continue;
            }
            let prefix = service.name().to_uppercase().replace('-', "_");
            let ip = format!("10.96.0.{}", i + 10);
            for (j, port) in list(&service.value, "spec.ports").iter().enumerate() {
                let number = at(port, "port").and_then(Value::as_i64).unwrap();
                let proto = text(port, "protocol").unwrap_or("TCP");
                let url = format!("{}://{ip}:{number}", proto.to_lowercase());
                let base = format!("{prefix}_PORT_{number}_{proto}");
                if j == 0 {
                    env.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
                    env.push((format!("{prefix}_SERVICE_PORT"), number.to_string()));
                    env.push((format!("{prefix}_PORT"), url.clone()));
                }
                if let Some(name) = text(port, "name") {
                    let name = name.to_uppercase().replace('-', "_");
                    env.push((format!("{prefix}_SERVICE_PORT_{name}"), number.to_string()));
                }
                env.push((base.clone(), url));
                env.push((format!("{base}_PROTO"), proto.to_lowercase()));
                env.push((format!("{base}_PORT"), number.to_string()));
                env.push((format!("{base}_ADDR"), ip.clone()));
            }
        }
    }
    for var in list(container, "env") {
        let name = text(var, "name").unwrap().to_owned();
        let value = if let Some(value) = at(var, "value") {
            value.as_str().expect("env values are strings").to_owned()
        } else if let Some(r) = at(var, "valueFrom.secretKeyRef") {
            secret_value(
                m,
                text(r, "name").unwrap(),
                text(r, "key").unwrap(),
                overrides,
            )
        } else if let Some(r) = at(var, "valueFrom.configMapKeyRef") {
            let (cm, key) = (text(r, "name").unwrap(), text(r, "key").unwrap());
            m.object_text(Source::ConfigMap, cm, key)
                .unwrap_or_else(|| panic!("ConfigMap {cm} has no key {key}"))
                .to_owned()
        } else {
            panic!(
                "{}: env {name}: only value, secretKeyRef and configMapKeyRef are understood",
                pod.doc.id()
            );
        };
        env.push((name, value));
    }
    env
}

/// `$(VAR)` references of a container argument expanded from its environment, as Kubernetes does.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    let mut out = arg.to_owned();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

/// A container's command line as Kubernetes starts it: `command` then `args`, `$(VAR)` expanded from
/// its environment.
fn command_line(container: &Value, env: &[(String, String)]) -> Vec<String> {
    list(container, "command")
        .iter()
        .chain(list(container, "args"))
        .map(|a| expand(a.as_str().expect("arguments are strings"), env))
        .collect()
}

/// Every container of a pod, init containers first.
fn all_containers<'a>(pod: &Pod<'a>) -> impl Iterator<Item = &'a Value> {
    list(pod.spec, "initContainers")
        .iter()
        .chain(list(pod.spec, "containers"))
}

/// What of a Secret reaches a container's command line: `$(VAR)` references to variables set from a
/// Secret, and Secret values (the manifests' examples and `overrides`) in the expanded arguments.
fn secrets_on_command_line(
    m: &Manifests,
    pod: &Pod,
    container: &Value,
    overrides: Overrides,
) -> Vec<String> {
    let raw: Vec<&str> = list(container, "command")
        .iter()
        .chain(list(container, "args"))
        .filter_map(Value::as_str)
        .collect();
    let mut found = Vec::new();
    for var in list(container, "env") {
        if at(var, "valueFrom.secretKeyRef").is_some() {
            let reference = format!("$({})", text(var, "name").unwrap());
            if raw.iter().any(|a| a.contains(&reference)) {
                found.push(format!("{reference}, set from a Secret"));
            }
        }
    }
    let mut values: Vec<String> = overrides.iter().map(|(_, _, v)| (*v).to_owned()).collect();
    for secret in m.of_kind("Secret") {
        values.extend(string_map(at(&secret.value, "stringData")).into_values());
    }
    let env = pod_environment(m, pod, container, overrides);
    for arg in command_line(container, &env) {
        for value in &values {
            let value = value.trim_end_matches(['\n', '\r']);
            if !value.is_empty() && arg.contains(value) {
                found.push(format!("the Secret value {value:?} in {arg:?}"));
            }
        }
    }
    found
}

/// A pod's volumes as directories under `dir`, so that a container's command can run here: a Secret
/// or ConfigMap volume holds its keys (or its `items`) as files, Secret values from `overrides` when
/// given; any other volume (emptyDir, a volumeClaimTemplate) starts empty and is shared by the
/// containers that mount it. Returns (mountPath, local directory) for `container`'s mounts.
fn local_mounts(
    m: &Manifests,
    pod: &Pod,
    container: &Value,
    dir: &Path,
    overrides: Overrides,
) -> Vec<(String, PathBuf)> {
    let mut mounts = Vec::new();
    for mount in list(container, "volumeMounts") {
        let name = text(mount, "name").unwrap();
        assert!(
            at(mount, "subPath").is_none(),
            "{}: subPath mounts are not simulated here",
            pod.doc.id()
        );
        let local = dir.join("volumes").join(name);
        fs::create_dir_all(&local).unwrap();
        if let Some((source, object, items)) = volume_object(pod, name) {
            let keys: Vec<(String, String)> = if items.is_empty() {
                let field = match source {
                    Source::ConfigMap => "data",
                    Source::Secret => "stringData",
                };
                let kind = match source {
                    Source::ConfigMap => "ConfigMap",
                    Source::Secret => "Secret",
                };
                let doc = m
                    .object(kind, object)
                    .unwrap_or_else(|| panic!("{}: no {kind} {object}", pod.doc.id()));
                string_map(at(&doc.value, field))
                    .into_keys()
                    .map(|k| (k.clone(), k))
                    .collect()
            } else {
                items
                    .iter()
                    .map(|i| {
                        (
                            text(i, "key").unwrap().to_owned(),
                            text(i, "path").unwrap().to_owned(),
                        )
                    })
                    .collect()
            };
            for (key, path) in keys {
                let content = match source {
                    Source::Secret => secret_value(m, object, &key, overrides),
                    Source::ConfigMap => m
                        .object_text(source, object, &key)
                        .unwrap_or_else(|| panic!("ConfigMap {object} has no key {key}"))
                        .to_owned(),
                };
                fs::write(local.join(path), content).unwrap();
            }
        }
        mounts.push((
            text(mount, "mountPath")
                .unwrap()
                .trim_end_matches('/')
                .to_owned(),
            local,
        ));
    }
    // Longest first, so that a mount inside another is mapped by its own directory.
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    mounts
}

/// `text` with every path under one of `mounts` (a whole path component: `/data`, `/data/x`, not
/// `/database`) replaced by the local directory.
fn map_paths(text: &str, mounts: &[(String, PathBuf)]) -> String {
    let mut out = text.to_owned();
    for (path, local) in mounts {
        let local = local.display().to_string();
        let mut mapped = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(path.as_str()) {
            let after = &rest[i + path.len()..];
            let before = rest[..i].chars().next_back();
            let whole = !before.is_some_and(|c| c.is_alphanumeric() || "._-/".contains(c))
                && !after
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || "._-".contains(c));
            mapped.push_str(&rest[..i]);
            mapped.push_str(if whole { &local } else { path });
            rest = after;
        }
        mapped.push_str(rest);
        out = mapped;
    }
    out
}

/// The exporter's `--config.file`: from its arguments if they set one, else the image's default.
fn config_path(container: &Value) -> String {
    list(container, "args")
        .iter()
        .chain(list(container, "command"))
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--config.file="))
        .unwrap_or(CONFIG_PATH)
        .to_owned()
}

/// The exporter's configuration, as its container sees it.
fn exporter_config(m: &Manifests, pod: &Pod, container: &Value) -> (Source, Value) {
    let path = config_path(container);
    let (source, content) = file_content(m, pod, container, &path, &[]).unwrap_or_else(|| {
        panic!(
            "{} container {}: nothing mounted at {path}",
            pod.doc.id(),
            container_name(container)
        )
    });
    let value = serde_yaml::from_str(&content)
        .unwrap_or_else(|e| panic!("{}: the exporter config is not YAML: {e}", pod.doc.id()));
    (source, value)
}

/// Every `*_file` value of an exporter config (`password_file`, `ca_file`, ...) replaced by
/// `replace(path)`.
fn replace_files(value: &mut Value, replace: &mut dyn FnMut(&str) -> String) {
    match value {
        Value::Mapping(map) => {
            for (key, v) in map.iter_mut() {
                let is_file = key.as_str().is_some_and(|k| k.ends_with("_file"));
                match v {
                    Value::String(path) if is_file => *path = replace(path),
                    other => replace_files(other, replace),
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| replace_files(v, replace)),
        _ => {}
    }
}

/// The configuration as the container would run it, made runnable here: every `*_file` it names
/// (which exists only in the pod) is replaced by a file in `dir` holding what the pod mounts there.
fn runnable_config(
    m: &Manifests,
    pod: &Pod,
    container: &Value,
    dir: &Path,
    overrides: Overrides,
) -> Value {
    let (_, mut config) = exporter_config(m, pod, container);
    let mut count = 0;
    replace_files(&mut config, &mut |path| {
        let (_, content) = file_content(m, pod, container, path, overrides).unwrap_or_else(|| {
            panic!(
                "{}: the config names {path}, which nothing mounts in the exporter container",
                pod.doc.id()
            )
        });
        count += 1;
        let local = dir.join(format!("mounted-{count}"));
        fs::write(&local, content).unwrap();
        local.display().to_string()
    });
    config
}

fn write_config(dir: &Path, config: &Value) -> PathBuf {
    support::write(dir, "config.yaml", &serde_yaml::to_string(config).unwrap())
}

/// Every target name of an exporter config, by kind.
fn target_names(config: &Value) -> BTreeSet<String> {
    ["http", "mysql", "redis"]
        .iter()
        .flat_map(|kind| string_map(config.get(kind)).into_keys())
        .collect()
}

/// Whether a label selector selects `labels`; only `matchLabels` is understood (and required).
fn selects(selector: &Value, labels: &BTreeMap<String, String>, context: &str) -> bool {
    assert!(
        at(selector, "matchExpressions").is_none(),
        "{context}: this test understands matchLabels only"
    );
    let wanted = string_map(at(selector, "matchLabels"));
    assert!(
        !wanted.is_empty(),
        "{context}: an empty selector selects everything"
    );
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The exporter container whose port `port` (a name or a number) designates in `pod`; asserts that
/// it is the exporter's `metrics` port, 9930.
fn exporter_at_port<'a>(pod: &Pod<'a>, port: &Value, context: &str) -> &'a Value {
    let found = list(pod.spec, "containers").iter().find_map(|c| {
        list(c, "ports")
            .iter()
            .find(|p| match port {
                Value::String(name) => text(p, "name") == Some(name),
                Value::Number(n) => at(p, "containerPort").and_then(Value::as_i64) == n.as_i64(),
                _ => false,
            })
            .map(|p| (c, p))
    });
    let (container, container_port) =
        found.unwrap_or_else(|| panic!("{context}: port {port:?} is not in {}", pod.doc.id()));
    assert!(
        is_exporter(container),
        "{context}: port {port:?} is not the exporter's"
    );
    assert_eq!(
        text(container_port, "name"),
        Some("metrics"),
        "{context}: port name"
    );
    assert_eq!(
        at(container_port, "containerPort").and_then(Value::as_i64),
        Some(METRICS_PORT),
        "{context}: the exporter listens on {METRICS_PORT}"
    );
    container
}

/// Where a Service port leads: the one workload the Service selects, and the exporter container
/// (asserted) behind the port's targetPort.
fn service_backend<'a>(
    m: &'a Manifests,
    service: &Doc,
    service_port: &Value,
    context: &str,
) -> (Pod<'a>, &'a Value) {
    let selector = string_map(at(&service.value, "spec.selector"));
    assert!(!selector.is_empty(), "{}: no selector", service.id());
    let mut pods: Vec<Pod> = m
        .pods()
        .into_iter()
        .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        .collect();
    assert_eq!(
        pods.len(),
        1,
        "{} selects {} workloads",
        service.id(),
        pods.len()
    );
    let pod = pods.remove(0);
    let target = at(service_port, "targetPort")
        .or_else(|| at(service_port, "port"))
        .unwrap();
    let container = exporter_at_port(&pod, target, &format!("{context}: {}", service.id()));
    (pod, container)
}

/// The workload `name`'s pod and its first container that `pick` accepts.
fn container_of<'a>(
    m: &'a Manifests,
    name: &str,
    pick: fn(&Value) -> bool,
) -> (Pod<'a>, &'a Value) {
    let pod = m
        .pods()
        .into_iter()
        .find(|p| p.doc.name() == name)
        .unwrap_or_else(|| panic!("no workload {name}"));
    let container = list(pod.spec, "containers")
        .iter()
        .find(|c| pick(c))
        .unwrap_or_else(|| panic!("{}: container not found", pod.doc.id()));
    (pod, container)
}

fn is_exporter(container: &Value) -> bool {
    text(container, "image").is_some_and(|i| i.contains("fanout_exporter"))
}

// ---------------------------------------------------------------------------------------------
// The exporter as its container runs it

/// The liveness and readiness probes of `container` answer 200 on `exporter`.
fn assert_probes_pass(exporter: &Exporter, container: &Value) {
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = text(container, &format!("{probe}.httpGet.path")).unwrap();
        let response = exporter.get(path, &[]);
        assert_eq!(
            response.status,
            200,
            "{probe} {path}:\n{}",
            exporter.log().join("\n")
        );
    }
}
