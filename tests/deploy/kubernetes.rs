//! deploy/kubernetes: every manifest against the Kubernetes schemas (kubernetes-validate, strict), the
//! Prometheus Operator resources against the operator's schemas (the npm package
//! @kubernetes-models/prometheus-operator: its JSON-schema validators, and its TypeScript types through
//! `tsc` for unknown fields), the wiring between the objects (selectors, ports, Secrets, ConfigMaps),
//! the exporter configs with the real binary's `--config.check` in the environment the pods give it,
//! the `job` label each monitor's targets get (the Operator's defaults, then the monitor's
//! relabelings) against the shipped FanoutExporterDown alert, and the two sidecars end to end against
//! real MariaDB and Redis servers (Redis started from the config file its init container writes).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use serde_yaml::Value;

use crate::common::{npm_modules, poll, run, tsc};
use crate::support::{self, Exporter, on_path};

// The harnesses' watchdog for server processes (a redis-server started from the manifest's own
// arguments below): killed when the test process dies, however it dies.
#[allow(clippy::duplicate_mod)]
#[path = "../../collectors/tests/support/watched.rs"]
mod watched;

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

// ---------------------------------------------------------------------------------------------
// Prometheus semantics

/// A Prometheus duration (`30s`, `1m30s`, `500ms`).
fn duration(text: &str) -> Option<Duration> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$",
        )
        .unwrap()
    });
    let caps = re.captures(text).filter(|_| !text.is_empty())?;
    let units = [
        365 * 86_400_000,
        7 * 86_400_000,
        86_400_000,
        3_600_000,
        60_000,
        1_000,
        1,
    ];
    let millis = units.iter().enumerate().try_fold(0u64, |sum, (i, unit)| {
        let n: u64 = caps
            .get(i + 1)
            .map_or(Some(0), |m| m.as_str().parse().ok())?;
        sum.checked_add(n.checked_mul(*unit)?)
    })?;
    Some(Duration::from_millis(millis))
}

fn label_name_ok(name: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-zA-Z_][a-zA-Z0-9_]*$").unwrap())
        .is_match(name)
}

/// What Prometheus would refuse in one relabeling (the Operator's camelCase form), or find pointless.
fn relabeling_problems(relabeling: &Value) -> Vec<String> {
    const ACTIONS: &[&str] = &[
        "replace",
        "keep",
        "drop",
        "keepequal",
        "dropequal",
        "hashmod",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
    ];
    const FIELDS: &[&str] = &[
        "action",
        "sourceLabels",
        "separator",
        "targetLabel",
        "regex",
        "modulus",
        "replacement",
    ];
    let mut problems = Vec::new();
    let Some(map) = relabeling.as_mapping() else {
        return vec!["not a mapping".to_owned()];
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !FIELDS.contains(&key) {
            problems.push(format!("unknown field {key}"));
        }
    }
    let action = text(relabeling, "action")
        .unwrap_or("replace")
        .to_lowercase();
    if !ACTIONS.contains(&action.as_str()) {
        problems.push(format!("unknown action {action}"));
    }
    if let Some(regex) = text(relabeling, "regex") {
        // Prometheus anchors the expression at both ends.
        if let Err(e) = Regex::new(&format!("^(?s:{regex})$")) {
            problems.push(format!("regex {regex:?} does not compile: {e}"));
        }
    }
    let sources = list(relabeling, "sourceLabels");
    for source in sources {
        match source.as_str() {
            Some(name) if label_name_ok(name) => {}
            _ => problems.push(format!("bad source label {source:?}")),
        }
    }
    let target = text(relabeling, "targetLabel");
    let needs_target = matches!(
        action.as_str(),
        "replace" | "hashmod" | "lowercase" | "uppercase" | "keepequal" | "dropequal"
    );
    match target {
        Some(t) if !label_name_ok(t) => problems.push(format!("bad target label {t:?}")),
        None if needs_target => problems.push(format!("{action} needs targetLabel")),
        _ => {}
    }
    if matches!(
        action.as_str(),
        "replace" | "keep" | "drop" | "hashmod" | "lowercase" | "uppercase"
    ) && sources.is_empty()
        && at(relabeling, "replacement").is_none()
    {
        problems.push(format!("{action} without sourceLabels does nothing useful"));
    }
    if action == "hashmod"
        && at(relabeling, "modulus")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            == 0
    {
        problems.push("hashmod needs a positive modulus".to_owned());
    }
    problems
}

/// Every scrape endpoint of an Operator resource: (where, endpoint). A Probe is its own endpoint.
fn scrape_endpoints(doc: &Doc) -> Vec<(String, &Value)> {
    let endpoints: Vec<&Value> = match doc.kind() {
        "ServiceMonitor" => list(&doc.value, "spec.endpoints").iter().collect(),
        "PodMonitor" => list(&doc.value, "spec.podMetricsEndpoints")
            .iter()
            .collect(),
        "Probe" => at(&doc.value, "spec").into_iter().collect(),
        other => panic!("{}: unexpected Operator kind {other}", doc.id()),
    };
    endpoints
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("{} endpoint {i}", doc.id()), e))
        .collect()
}

fn relabelings(doc: &Doc, endpoint: &Value) -> Vec<Value> {
    let fields: &[&str] = match doc.kind() {
        "Probe" => &[
            "targets.staticConfig.relabelingConfigs",
            "metricRelabelings",
        ],
        _ => &["relabelings", "metricRelabelings"],
    };
    fields
        .iter()
        .flat_map(|f| list(endpoint, f).iter().cloned())
        .collect()
}

/// A target's labels, by name.
type Labels = BTreeMap<String, String>;

/// Apply one relabeling (the Operator's camelCase form) to a target's labels as Prometheus does;
/// false when it drops the target.
fn relabel(labels: &mut Labels, rule: &Value) -> bool {
    let action = text(rule, "action").unwrap_or("replace").to_lowercase();
    let regex = text(rule, "regex").unwrap_or("(.*)");
    let regex =
        Regex::new(&format!("^(?s:{regex})$")).unwrap_or_else(|e| panic!("{rule:?}: regex: {e}"));
    let value = list(rule, "sourceLabels")
        .iter()
        .map(|l| {
            let name = l.as_str().expect("source labels are names");
            labels.get(name).cloned().unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(text(rule, "separator").unwrap_or(";"));
    let target = text(rule, "targetLabel");
    let replacement = text(rule, "replacement").unwrap_or("$1");
    let need_target = || target.unwrap_or_else(|| panic!("{rule:?}: {action} needs targetLabel"));
    match action.as_str() {
        "replace" => {
            if let Some(captures) = regex.captures(&value) {
                let (mut name, mut result) = (String::new(), String::new());
                captures.expand(need_target(), &mut name);
                captures.expand(replacement, &mut result);
                // Prometheus skips a target label that is not a valid name.
                if label_name_ok(&name) {
                    if result.is_empty() {
                        labels.remove(&name);
                    } else {
                        labels.insert(name, result);
                    }
                }
            }
        }
        "lowercase" => {
            labels.insert(need_target().to_owned(), value.to_lowercase());
        }
        "uppercase" => {
            labels.insert(need_target().to_owned(), value.to_uppercase());
        }
        "keep" => return regex.is_match(&value),
        "drop" => return !regex.is_match(&value),
        "keepequal" => return labels.get(need_target()).cloned().unwrap_or_default() == value,
        "dropequal" => return labels.get(need_target()).cloned().unwrap_or_default() != value,
        "labelmap" => {
            for (name, v) in labels.clone() {
                if let Some(captures) = regex.captures(&name) {
                    let mut new = String::new();
                    captures.expand(replacement, &mut new);
                    labels.insert(new, v);
                }
            }
        }
        "labeldrop" => labels.retain(|name, _| !regex.is_match(name)),
        "labelkeep" => labels.retain(|name, _| regex.is_match(name)),
        other => panic!("{rule:?}: relabeling action {other} is not simulated here"),
    }
    true
}

/// A relabeling as the Operator writes its own: `targetLabel` from `sourceLabels` (or from nothing),
/// with an optional regex and replacement.
fn operator_rule(
    sources: &[&str],
    target: &str,
    regex: Option<&str>,
    replacement: Option<&str>,
) -> Value {
    let mut rule = serde_yaml::Mapping::new();
    if !sources.is_empty() {
        rule.insert(
            "sourceLabels".into(),
            Value::Sequence(sources.iter().map(|s| Value::from(*s)).collect()),
        );
    }
    rule.insert("targetLabel".into(), target.into());
    if let Some(regex) = regex {
        rule.insert("regex".into(), regex.into());
    }
    if let Some(replacement) = replacement {
        rule.insert("replacement".into(), replacement.into());
    }
    Value::Mapping(rule)
}

/// A Kubernetes label name as a Prometheus meta label suffix (what the Operator's sanitizeLabelName
/// does).
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The labels each target of an Operator resource ends with: what Kubernetes service discovery (or
/// the static list) gives it, then the relabelings the Operator generates before the resource's
/// own (prometheus-operator pkg/prometheus/promcfg.go: generateServiceMonitorConfig,
/// generatePodMonitorConfig, generateProbeConfig), then the resource's own target relabelings.
/// Dropped targets are left out; labels starting with `__` are removed at the end, as Prometheus does
/// (after setting a missing `instance` from `__address__`). `namespace` is the one the resources are
/// applied in.
fn scrape_targets(m: &Manifests, monitor: &Doc, namespace: &str) -> Vec<(String, Labels)> {
    let name = monitor.name();
    let jobs = scrape_endpoints(monitor);
    let mut targets = Vec::new();
    for (i, (context, endpoint)) in jobs.into_iter().enumerate() {
        // Prometheus starts every target's job at the scrape config's job_name.
        let (job_name, discovered, operator): (String, Vec<Labels>, Vec<Value>) = match monitor
            .kind()
        {
            "ServiceMonitor" | "PodMonitor" => {
                let selector = at(&monitor.value, "spec.selector").unwrap();
                let (service, pod) = if monitor.kind() == "ServiceMonitor" {
                    let service = m
                        .of_kind("Service")
                        .find(|s| {
                            selects(
                                selector,
                                &string_map(at(&s.value, "metadata.labels")),
                                &context,
                            )
                        })
                        .unwrap_or_else(|| panic!("{context}: selects no Service"));
                    let port = list(&service.value, "spec.ports")
                        .iter()
                        .find(|p| at(p, "name") == at(endpoint, "port"))
                        .unwrap_or_else(|| panic!("{context}: no such Service port"));
                    let (pod, _) = service_backend(m, service, port, &context);
                    (Some(service), pod)
                } else {
                    let pod = m
                        .pods()
                        .into_iter()
                        .find(|p| selects(selector, &p.labels, &context))
                        .unwrap_or_else(|| panic!("{context}: selects no workload"));
                    (None, pod)
                };
                let pod_name = match pod.doc.kind() {
                    "StatefulSet" => format!("{}-0", pod.doc.name()),
                    _ => format!("{}-7d4b9c8f6-x2x4q", pod.doc.name()),
                };
                let mut labels = Labels::from([
                    (
                        "__address__".to_owned(),
                        format!("10.0.0.10:{METRICS_PORT}"),
                    ),
                    (
                        "__meta_kubernetes_namespace".to_owned(),
                        namespace.to_owned(),
                    ),
                    ("__meta_kubernetes_pod_name".to_owned(), pod_name),
                    (
                        "__meta_kubernetes_pod_container_name".to_owned(),
                        "exporter".to_owned(),
                    ),
                ]);
                for (k, v) in &pod.labels {
                    labels.insert(
                        format!("__meta_kubernetes_pod_label_{}", sanitize(k)),
                        v.clone(),
                    );
                }
                let mut operator = vec![
                    operator_rule(&["__meta_kubernetes_namespace"], "namespace", None, None),
                    operator_rule(&["__meta_kubernetes_pod_name"], "pod", None, None),
                    operator_rule(
                        &["__meta_kubernetes_pod_container_name"],
                        "container",
                        None,
                        None,
                    ),
                ];
                let job_label = text(&monitor.value, "spec.jobLabel");
                let job_name = if let Some(service) = service {
                    labels.insert(
                        "__meta_kubernetes_service_name".to_owned(),
                        service.name().to_owned(),
                    );
                    for (k, v) in string_map(at(&service.value, "metadata.labels")) {
                        labels.insert(
                            format!("__meta_kubernetes_service_label_{}", sanitize(&k)),
                            v,
                        );
                    }
                    operator.push(operator_rule(
                        &["__meta_kubernetes_service_name"],
                        "service",
                        None,
                        None,
                    ));
                    // The job is the Service's name, or the value of its label `jobLabel` names.
                    operator.push(operator_rule(
                        &["__meta_kubernetes_service_name"],
                        "job",
                        None,
                        Some("${1}"),
                    ));
                    if let Some(label) = job_label {
                        let source = format!("__meta_kubernetes_service_label_{}", sanitize(label));
                        operator.push(operator_rule(
                            &[source.as_str()],
                            "job",
                            Some("(.+)"),
                            Some("${1}"),
                        ));
                    }
                    format!("serviceMonitor/{namespace}/{name}/{i}")
                } else {
                    // The job is <namespace>/<name>, or the value of the pod label `jobLabel` names.
                    operator.push(operator_rule(
                        &[],
                        "job",
                        None,
                        Some(&format!("{namespace}/{name}")),
                    ));
                    if let Some(label) = job_label {
                        let source = format!("__meta_kubernetes_pod_label_{}", sanitize(label));
                        operator.push(operator_rule(
                            &[source.as_str()],
                            "job",
                            Some("(.+)"),
                            Some("${1}"),
                        ));
                    }
                    format!("podMonitor/{namespace}/{name}/{i}")
                };
                if let Some(port) = text(endpoint, "port") {
                    operator.push(operator_rule(&[], "endpoint", None, Some(port)));
                }
                (job_name, vec![labels], operator)
            }
            "Probe" => {
                let spec = endpoint;
                let mut operator = Vec::new();
                if let Some(job) = text(spec, "jobName") {
                    operator.push(operator_rule(&[], "job", None, Some(job)));
                }
                let url = text(spec, "prober.url").expect("prober.url");
                operator.extend([
                    operator_rule(&["__address__"], "__param_target", None, None),
                    operator_rule(&["__param_target"], "instance", None, None),
                    operator_rule(&[], "__address__", None, Some(url)),
                ]);
                let mut common = string_map(at(spec, "targets.staticConfig.labels"));
                common
                    .entry("namespace".to_owned())
                    .or_insert_with(|| namespace.to_owned());
                let discovered = list(spec, "targets.staticConfig.static")
                    .iter()
                    .map(|t| {
                        let mut labels = common.clone();
                        labels.insert("__address__".to_owned(), t.as_str().unwrap().to_owned());
                        labels
                    })
                    .collect();
                (format!("probe/{namespace}/{name}"), discovered, operator)
            }
            other => panic!("{}: unexpected Operator kind {other}", monitor.id()),
        };
        let own_field = if monitor.kind() == "Probe" {
            "targets.staticConfig.relabelingConfigs"
        } else {
            "relabelings"
        };
        for mut labels in discovered {
            labels.insert("job".to_owned(), job_name.clone());
            let rules = operator.iter().chain(list(endpoint, own_field));
            if !rules.into_iter().all(|rule| relabel(&mut labels, rule)) {
                continue;
            }
            if !labels.contains_key("instance") {
                let address = labels.get("__address__").cloned().unwrap_or_default();
                labels.insert("instance".to_owned(), address);
            }
            labels.retain(|k, _| !k.starts_with("__"));
            let context = format!("{context} target {}", labels["instance"]);
            targets.push((context, labels));
        }
    }
    targets
}

/// FanoutExporterDown's `job` matcher in the shipped rules, as written and as the anchored regex
/// Prometheus matches label values with.
fn exporter_down_job_matcher() -> (String, Regex) {
    let expr = crate::rules::alert_expr("FanoutExporterDown");
    let selector = Regex::new(r"\bup\s*\{([^}]*)\}").unwrap();
    let matchers = selector
        .captures(&expr)
        .unwrap_or_else(|| panic!("FanoutExporterDown `{expr}`: no up{{...}} selector"))[1]
        .to_owned();
    let job = Regex::new(
        r#"(?:^|,)\s*job\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"#,
    )
    .unwrap();
    let captures = job
        .captures(&matchers)
        .unwrap_or_else(|| panic!("FanoutExporterDown `{expr}`: no job matcher in up{{...}}"));
    let value = crate::rules::unquote(&captures[2])
        .unwrap_or_else(|e| panic!("FanoutExporterDown `{expr}`: {e}"));
    let pattern = match &captures[1] {
        "=~" => value,
        "=" => regex::escape(&value),
        negative => panic!("FanoutExporterDown `{expr}`: job{negative} is not simulated here"),
    };
    let regex = Regex::new(&format!("^(?s:{pattern})$"))
        .unwrap_or_else(|e| panic!("FanoutExporterDown `{expr}`: {e}"));
    (captures[0].trim_start_matches(',').trim().to_owned(), regex)
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

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn kustomization_lists_every_manifest_and_sets_the_namespace() {
    let m = manifests();
    let on_disk: BTreeSet<String> = fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| (f.ends_with(".yaml") || f.ends_with(".yml")) && f != "kustomization.yaml")
        .collect();
    let listed: BTreeSet<String> = m.files.iter().cloned().collect();
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml resources vs the YAML files beside it"
    );
    let namespaces: Vec<&Doc> = m.of_kind("Namespace").collect();
    assert_eq!(namespaces.len(), 1, "one Namespace object");
    assert_eq!(
        namespaces[0].name(),
        m.namespace,
        "the Namespace is the one kustomization sets"
    );
    for doc in &m.docs {
        assert!(!doc.name().is_empty(), "{}: no metadata.name", doc.id());
        assert!(
            at(&doc.value, "metadata.namespace").is_none(),
            "{}: sets its own namespace; kustomization.yaml sets it for all",
            doc.id()
        );
    }
    let mut ids = BTreeSet::new();
    for doc in &m.docs {
        assert!(
            ids.insert((doc.kind(), doc.name())),
            "{}: the same kind and name twice",
            doc.id()
        );
    }
}

#[test]
fn builtin_kinds_pass_kubernetes_validate_strict() {
    let tool = on_path("kubernetes-validate")
        .expect("kubernetes-validate not found on PATH: install kubernetes-validate from PyPI (scripts/test does)");
    let m = manifests();
    // A control: the MariaDB StatefulSet with one misspelt field must fail, or strict mode is not on.
    let dir = tempfile::tempdir().unwrap();
    let mut control = m.object("StatefulSet", "mariadb").unwrap().value.clone();
    control["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] =
        Value::from("Always");
    let control_path = support::write(
        dir.path(),
        "control.yaml",
        &serde_yaml::to_string(&control).unwrap(),
    );
    let control_path = control_path.display().to_string();
    for version in KUBERNETES_VERSIONS {
        let (_, output) = run(Command::new(&tool)
            .current_dir(DIR)
            .args(["--strict", "--kubernetes-version", version])
            .args(&m.files)
            .arg(&control_path));
        let mut unexplained: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut missing = Vec::new();
        for doc in &m.docs {
            let expected = if doc.is_operator() {
                format!(
                    "WARN {} Couldn't find schema for kind {} with api version {}",
                    doc.file,
                    doc.kind(),
                    text(&doc.value, "apiVersion").unwrap()
                )
            } else {
                format!(
                    "INFO {} passed for resource {}/{} against",
                    doc.file,
                    doc.kind().to_lowercase(),
                    doc.name()
                )
            };
            match unexplained.iter().position(|l| l.starts_with(&expected)) {
                Some(i) => {
                    unexplained.remove(i);
                }
                None => missing.push(expected),
            }
        }
        let control_failed = unexplained.iter().position(|l| {
            l.starts_with(&format!("ERROR {control_path} did not validate"))
                && l.contains("imagePullPolicyy")
        });
        assert!(
            control_failed.is_some(),
            "kubernetes-validate {version} accepted an unknown field: not strict?\n{output}"
        );
        unexplained.remove(control_failed.unwrap());
        assert!(
            missing.is_empty() && unexplained.is_empty(),
            "kubernetes-validate --strict against {version}:\nmissing: {missing:#?}\nunexpected: {unexplained:#?}\n\n{output}"
        );
    }
}

/// Validates each resource with @kubernetes-models/prometheus-operator's JSON-schema validators
/// (types, enums, patterns, required fields). Prints `<index>\tok` or `<index>\t<errors>`.
const VALIDATE_JS: &str = r#"
import { readFileSync } from "node:fs";
const docs = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const [i, doc] of docs.entries()) {
  let result = "ok";
  try {
    const [group, version] = doc.apiVersion.split("/");
    const module = await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${doc.kind}`);
    new module[doc.kind](doc).validate();
  } catch (e) {
    result = String(e && e.message ? e.message : e).replace(/\s+/g, " ");
  }
  console.log(`${i}\t${result}`);
}
"#;

#[test]
fn operator_resources_pass_the_prometheus_operator_schemas() {
    let node =
        on_path("node").expect("node not found on PATH: install Node.js (Debian package nodejs)");
    // The npm packages scripts/test installs (common::NPM_INSTALL).
    let modules = npm_modules(&["@kubernetes-models/prometheus-operator", "typescript"]);
    let m = manifests();
    let mut docs: Vec<(String, Value)> = m
        .docs
        .iter()
        .filter(|d| d.is_operator())
        .map(|d| (d.id(), d.value.clone()))
        .collect();
    let kinds: BTreeSet<&str> = m
        .docs
        .iter()
        .filter(|d| d.is_operator())
        .map(Doc::kind)
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["PodMonitor", "Probe", "ServiceMonitor"]),
        "the Operator kinds the manifests use"
    );
    // Controls, which must be rejected: an unknown (misspelt) field, for tsc; an action outside the
    // enum, for the schema validators.
    let mut misspelt = m.of_kind("ServiceMonitor").next().unwrap().value.clone();
    misspelt["spec"]["endpoints"][0]["scrapeTimeOut"] = Value::from("10s");
    let mut bad_enum = m.of_kind("PodMonitor").next().unwrap().value.clone();
    bad_enum["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["action"] =
        Value::from("replaced");
    let controls = docs.len();
    docs.push(("control: unknown field".to_owned(), misspelt));
    docs.push(("control: bad action".to_owned(), bad_enum));

    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    let docs_json = format!(
        "[{}]",
        docs.iter()
            .map(|(_, v)| json::Json(v).to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    support::write(dir.path(), "docs.json", &docs_json);
    support::write(dir.path(), "validate.mjs", VALIDATE_JS);

    // 1. The schema validators.
    let (_, output) = run(Command::new(&node)
        .current_dir(dir.path())
        .args(["validate.mjs", "docs.json"]));
    let results: BTreeMap<usize, String> = output
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(i, r)| Some((i.parse().ok()?, r.to_owned())))
        .collect();
    assert_eq!(
        results.len(),
        docs.len(),
        "one result per resource:\n{output}"
    );
    for (i, (id, _)) in docs.iter().enumerate().take(controls) {
        assert_eq!(results[&i], "ok", "{id} fails the Operator schema");
    }
    assert!(
        results[&(controls + 1)].contains("action"),
        "the schema validators accepted relabeling action `replaced`: {}",
        results[&(controls + 1)]
    );

    // 2. tsc: each resource as an object literal of the package's type, so that excess property
    // checks reject unknown fields. One line per resource, so that errors name it by line number.
    let mut ts = String::new();
    for (i, (_, value)) in docs.iter().enumerate() {
        let api = text(value, "apiVersion").unwrap();
        let kind = text(value, "kind").unwrap();
        ts.push_str(&format!(
            "import type {{ I{kind} as T{i} }} from \"@kubernetes-models/prometheus-operator/{api}/{kind}\"; export const doc{i}: T{i} = {};\n",
            json::Json(value)
        ));
    }
    let report = tsc(&node, &modules, &ts, true);
    let output = &report.output;
    assert!(
        !report.passed && report.errors.contains_key(&controls),
        "tsc accepted a misspelt field (scrapeTimeOut):\n{output}"
    );
    for (i, (id, _)) in docs.iter().enumerate().take(controls) {
        assert!(
            !report.errors.contains_key(&i),
            "{id} does not type-check against the Operator's types:\n{}",
            report.errors[&i].join("\n")
        );
    }
    assert!(
        report.unplaced.is_empty() && report.errors.keys().all(|&i| i < docs.len()),
        "tsc errors outside the resources:\n{output}"
    );
}

/// JSON text of a YAML value (object keys are strings in these manifests), for node and tsc.
mod json {
    use serde_yaml::Value;
    use std::fmt;

    pub struct Json<'a>(pub &'a Value);

    fn string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
        f.write_str("\"")?;
        for c in s.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                    write!(f, "\\u{:04x}", c as u32)?
                }
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }

    impl fmt::Display for Json<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0 {
                Value::Null => f.write_str("null"),
                Value::Bool(b) => write!(f, "{b}"),
                Value::Number(n) => write!(f, "{n}"),
                Value::String(s) => string(f, s),
                Value::Sequence(items) => {
                    f.write_str("[")?;
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{}", Json(item))?;
                    }
                    f.write_str("]")
                }
                Value::Mapping(map) => {
                    f.write_str("{")?;
                    for (i, (k, v)) in map.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        string(f, k.as_str().expect("string keys"))?;
                        write!(f, ":{}", Json(v))?;
                    }
                    f.write_str("}")
                }
                Value::Tagged(tagged) => write!(f, "{}", Json(&tagged.value)),
            }
        }
    }
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

#[test]
fn monitor_intervals_and_relabelings_are_valid() {
    let m = manifests();
    let mut checked = 0;
    for monitor in m.docs.iter().filter(|d| d.is_operator()) {
        for (context, endpoint) in scrape_endpoints(monitor) {
            let interval =
                text(endpoint, "interval").unwrap_or_else(|| panic!("{context}: no interval"));
            let timeout = text(endpoint, "scrapeTimeout")
                .unwrap_or_else(|| panic!("{context}: no scrapeTimeout"));
            let (interval, timeout) = (
                duration(interval).unwrap_or_else(|| panic!("{context}: interval {interval}")),
                duration(timeout).unwrap_or_else(|| panic!("{context}: scrapeTimeout {timeout}")),
            );
            assert!(
                timeout < interval && timeout >= Duration::from_secs(1),
                "{context}: scrapeTimeout {timeout:?} must be at least 1s and below interval {interval:?}"
            );
            for relabeling in relabelings(monitor, endpoint) {
                let problems = relabeling_problems(&relabeling);
                assert!(
                    problems.is_empty(),
                    "{context}: {relabeling:?}: {problems:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 3,
        "expected relabelings on every monitor, checked {checked}"
    );
}

#[test]
fn relabeling_check_rejects_what_prometheus_rejects() {
    let bad = [
        "{action: keepp, sourceLabels: [a]}",
        "{sourceLabels: [a], regex: '(unclosed'}",
        "{action: hashmod, sourceLabels: [a], targetLabel: __tmp_hash}",
        "{action: replace, sourceLabels: [a]}",
        "{sourceLabels: [a-b], targetLabel: instance}",
        "{sourceLabels: [a], target_label: instance}",
        "{action: keep}",
    ];
    for case in bad {
        let value: Value = serde_yaml::from_str(case).unwrap();
        assert!(!relabeling_problems(&value).is_empty(), "accepted {case}");
    }
    let good: Value = serde_yaml::from_str(
        "{action: hashmod, sourceLabels: [__param_target], modulus: 4, targetLabel: __tmp_hash}",
    )
    .unwrap();
    assert_eq!(relabeling_problems(&good), Vec::<String>::new());
    assert_eq!(duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(duration("30"), None);
    assert_eq!(duration(""), None);
}

#[test]
fn every_monitor_job_is_selected_by_the_exporter_down_alert() {
    // The shipped rule's matcher, not a copy of it: the two must not drift apart.
    let (matcher, regex) = exporter_down_job_matcher();
    let m = manifests();
    let mut kinds = BTreeSet::new();
    // In kustomization.yaml's namespace, and in any other an overlay may set: a PodMonitor's default
    // job, <namespace>/<name>, matches fanout.* in fanout-example by accident only.
    for namespace in [m.namespace.as_str(), "monitoring"] {
        for monitor in m.docs.iter().filter(|d| d.is_operator()) {
            let targets = scrape_targets(m, monitor, namespace);
            assert!(!targets.is_empty(), "{}: no scrape targets", monitor.id());
            for (context, labels) in targets {
                let job = labels.get("job").map_or("", String::as_str);
                assert!(
                    regex.is_match(job),
                    "{context}, in namespace {namespace}: gets job=\"{job}\", which \
                     FanoutExporterDown's {matcher} (deploy/prometheus/rules/fanout.yml) does not \
                     select: the alert would never fire when Prometheus cannot scrape it. Set the \
                     job in the monitor (a relabeling with targetLabel: job, or a Probe's jobName)."
                );
                kinds.insert(monitor.kind());
            }
        }
    }
    assert_eq!(
        kinds,
        BTreeSet::from(["PodMonitor", "Probe", "ServiceMonitor"]),
        "every Operator kind checked"
    );
}

#[test]
fn scrape_target_simulation_follows_the_operator_and_prometheus() {
    let m = manifests();
    // Stripped of what sets their job, monitors get the Operator's defaults: the Service's name, the
    // PodMonitor's <namespace>/<name>, the Probe's probe/<namespace>/<name>.
    for monitor in m.docs.iter().filter(|d| d.is_operator()) {
        let mut bare = monitor.value.clone();
        let spec = bare["spec"].as_mapping_mut().unwrap();
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
        let bare = Doc {
            file: monitor.file.clone(),
            value: bare,
        };
        for (context, labels) in scrape_targets(m, &bare, &m.namespace) {
            let expected = match monitor.kind() {
                "ServiceMonitor" => labels["service"].clone(),
                "PodMonitor" => format!("{}/{}", m.namespace, monitor.name()),
                _ => format!("probe/{}/{}", m.namespace, monitor.name()),
            };
            assert_eq!(
                labels["job"], expected,
                "{context}: the Operator's default job"
            );
            assert_eq!(labels["namespace"], m.namespace, "{context}: namespace");
        }
    }
    // With their relabelings, instance is the pod (monitors) or the target's name (Probe), as the
    // manifests' comments say.
    for monitor in m.docs.iter().filter(|d| d.is_operator()) {
        for (context, labels) in scrape_targets(m, monitor, &m.namespace) {
            if monitor.kind() == "Probe" {
                let listed = list(&monitor.value, "spec.targets.staticConfig.static");
                assert!(
                    listed
                        .iter()
                        .any(|t| t.as_str() == Some(&labels["instance"])),
                    "{context}: instance is a listed target"
                );
            } else {
                assert_eq!(labels["instance"], labels["pod"], "{context}: instance");
            }
        }
    }
    // Prometheus' relabeling semantics, as simulated.
    let rule = |yaml: &str| -> Value { serde_yaml::from_str(yaml).unwrap() };
    let mut labels = Labels::from([("a".to_owned(), "x".to_owned())]);
    assert!(relabel(
        &mut labels,
        &rule("{targetLabel: job, replacement: fanout}")
    ));
    assert_eq!(labels["job"], "fanout", "a replacement without sources");
    relabel(
        &mut labels,
        &rule("{sourceLabels: [a], regex: 'y', targetLabel: job, replacement: other}"),
    );
    assert_eq!(
        labels["job"], "fanout",
        "a regex that does not match changes nothing"
    );
    relabel(
        &mut labels,
        &rule("{sourceLabels: [a, b], regex: '(.*);', targetLabel: job, replacement: 'j-$1'}"),
    );
    assert_eq!(
        labels["job"], "j-x",
        "sources joined by ;, anchored regex, $1"
    );
    relabel(
        &mut labels,
        &rule("{sourceLabels: [missing], targetLabel: job}"),
    );
    assert!(
        !labels.contains_key("job"),
        "an empty result removes the label"
    );
    assert!(!relabel(
        &mut labels,
        &rule("{action: keep, sourceLabels: [a], regex: 'y'}")
    ));
    assert!(relabel(
        &mut labels,
        &rule("{action: drop, sourceLabels: [a], regex: 'y'}")
    ));
}

#[test]
fn probe_scrapes_configured_targets_through_the_exporter_service() {
    let m = manifests();
    let probes: Vec<&Doc> = m.of_kind("Probe").collect();
    assert_eq!(probes.len(), 1, "one Probe");
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

#[test]
fn exporter_containers_expose_metrics_and_probe_health_endpoints() {
    for (pod, container) in manifests().exporters() {
        let context = format!("{} container {}", pod.doc.id(), container_name(container));
        let ports = list(container, "ports");
        assert_eq!(ports.len(), 1, "{context}: one port");
        assert_eq!(
            text(&ports[0], "name"),
            Some("metrics"),
            "{context}: port name"
        );
        assert_eq!(
            at(&ports[0], "containerPort").and_then(Value::as_i64),
            Some(METRICS_PORT),
            "{context}: containerPort"
        );
        for (probe, path) in [
            ("livenessProbe", "/-/healthy"),
            ("readinessProbe", "/-/ready"),
        ] {
            let get = at(container, &format!("{probe}.httpGet"))
                .unwrap_or_else(|| panic!("{context}: {probe} is not an httpGet"));
            assert_eq!(text(get, "path"), Some(path), "{context}: {probe} path");
            assert_eq!(
                text(get, "port"),
                Some("metrics"),
                "{context}: {probe} port"
            );
        }
    }
}

#[test]
fn exporter_security_context_is_restricted() {
    for (pod, container) in manifests().exporters() {
        let context = format!("{} container {}", pod.doc.id(), container_name(container));
        let sc = at(container, "securityContext")
            .unwrap_or_else(|| panic!("{context}: no securityContext"));
        let flag = |key: &str| at(sc, key).and_then(Value::as_bool);
        assert_eq!(flag("runAsNonRoot"), Some(true), "{context}: runAsNonRoot");
        assert_eq!(
            at(sc, "runAsUser").and_then(Value::as_i64),
            Some(65532),
            "{context}: runAsUser"
        );
        assert_eq!(
            flag("readOnlyRootFilesystem"),
            Some(true),
            "{context}: readOnlyRootFilesystem"
        );
        assert_eq!(
            flag("allowPrivilegeEscalation"),
            Some(false),
            "{context}: allowPrivilegeEscalation"
        );
        assert!(
            !flag("privileged").unwrap_or(false),
            "{context}: privileged"
        );
        let drop: Vec<&str> = list(sc, "capabilities.drop")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(drop, ["ALL"], "{context}: capabilities.drop");
        assert!(
            list(sc, "capabilities.add").is_empty(),
            "{context}: capabilities.add"
        );
        assert_eq!(
            text(sc, "seccompProfile.type"),
            Some("RuntimeDefault"),
            "{context}: seccompProfile"
        );
    }
}

#[test]
fn every_container_meets_the_restricted_pod_security_standard() {
    // The namespace enforces "restricted"; these are the container fields it checks.
    let m = manifests();
    let namespace = m.of_kind("Namespace").next().unwrap();
    assert_eq!(
        string_map(at(&namespace.value, "metadata.labels"))
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "{}: enforces the restricted Pod Security Standard",
        namespace.id()
    );
    for pod in m.pods() {
        let pod_sc = at(pod.spec, "securityContext");
        for container in list(pod.spec, "containers")
            .iter()
            .chain(list(pod.spec, "initContainers"))
        {
            let context = format!("{} container {}", pod.doc.id(), container_name(container));
            let sc = at(container, "securityContext");
            let field = |key: &str| {
                sc.and_then(|s| at(s, key))
                    .or_else(|| pod_sc.and_then(|s| at(s, key)))
            };
            assert_eq!(
                field("runAsNonRoot").and_then(Value::as_bool),
                Some(true),
                "{context}: runAsNonRoot"
            );
            assert_ne!(
                field("runAsUser").and_then(Value::as_i64),
                Some(0),
                "{context}: runAsUser 0"
            );
            assert_eq!(
                sc.and_then(|s| at(s, "allowPrivilegeEscalation"))
                    .and_then(Value::as_bool),
                Some(false),
                "{context}: allowPrivilegeEscalation"
            );
            let drop: Vec<&str> = sc
                .map(|s| list(s, "capabilities.drop"))
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(drop.contains(&"ALL"), "{context}: capabilities.drop ALL");
            assert_eq!(
                field("seccompProfile.type").and_then(Value::as_str),
                Some("RuntimeDefault"),
                "{context}: seccompProfile"
            );
            assert!(
                at(container, "resources.requests.cpu").is_some()
                    && at(container, "resources.requests.memory").is_some()
                    && at(container, "resources.limits.memory").is_some(),
                "{context}: cpu and memory requests and a memory limit"
            );
        }
        for volume in list(pod.spec, "volumes") {
            assert!(
                at(volume, "hostPath").is_none(),
                "{}: hostPath volumes are not allowed",
                pod.doc.id()
            );
        }
    }
}

#[test]
fn exporter_resources_are_small_requests_and_a_memory_limit() {
    fn mebibytes(quantity: &str) -> f64 {
        let (number, factor) = [("Ki", 1.0 / 1024.0), ("Mi", 1.0), ("Gi", 1024.0)]
            .iter()
            .find_map(|(suffix, f)| quantity.strip_suffix(suffix).map(|n| (n, *f)))
            .unwrap_or_else(|| panic!("memory {quantity}: use Ki, Mi or Gi"));
        number.parse::<f64>().unwrap() * factor
    }
    fn millicores(quantity: &str) -> f64 {
        match quantity.strip_suffix('m') {
            Some(m) => m.parse().unwrap(),
            None => quantity.parse::<f64>().unwrap() * 1000.0,
        }
    }
    for (pod, container) in manifests().exporters() {
        let context = format!("{} container {}", pod.doc.id(), container_name(container));
        let get =
            |path: &str| text(container, path).unwrap_or_else(|| panic!("{context}: no {path}"));
        let cpu = millicores(get("resources.requests.cpu"));
        let memory = mebibytes(get("resources.requests.memory"));
        let limit = mebibytes(get("resources.limits.memory"));
        // The README measures an RSS of about 12 MB.
        assert!(cpu > 0.0 && cpu <= 100.0, "{context}: cpu request {cpu}m");
        assert!(
            (16.0..=64.0).contains(&memory),
            "{context}: memory request {memory}Mi"
        );
        assert!(
            limit >= 2.0 * memory && limit <= 256.0,
            "{context}: memory limit {limit}Mi"
        );
        assert!(
            at(container, "resources.limits.cpu").is_none(),
            "{context}: a CPU limit only throttles scrapes"
        );
    }
}

#[test]
fn exporter_config_is_a_configmap_at_the_default_path() {
    let m = manifests();
    for (pod, container) in m.exporters() {
        let context = format!("{} container {}", pod.doc.id(), container_name(container));
        assert_eq!(
            config_path(container),
            CONFIG_PATH,
            "{context}: the image's default config path"
        );
        let (source, config) = exporter_config(m, &pod, container);
        assert_eq!(
            source,
            Source::ConfigMap,
            "{context}: {CONFIG_PATH} comes from a ConfigMap"
        );
        assert!(
            !target_names(&config).is_empty(),
            "{context}: configures targets"
        );
        let mount = list(container, "volumeMounts")
            .iter()
            .find(|v| CONFIG_PATH.starts_with(text(v, "mountPath").unwrap()))
            .unwrap();
        assert_eq!(
            at(mount, "readOnly").and_then(Value::as_bool),
            Some(true),
            "{context}: config mount readOnly"
        );
    }
}

#[test]
fn exporter_credentials_come_from_secrets() {
    fn inline_secrets(value: &Value, path: &str, found: &mut Vec<String>) {
        if let Value::Mapping(map) = value {
            for (k, v) in map {
                let key = k.as_str().unwrap_or("?");
                let here = format!("{path}.{key}");
                if matches!(key, "password" | "bearer_token")
                    || (key == "url" && v.as_str().is_some_and(|u| u.contains('@')))
                {
                    found.push(here.clone());
                }
                inline_secrets(v, &here, found);
            }
        }
    }
    let m = manifests();
    let mut passwords = 0;
    for pod in m.pods() {
        for container in list(pod.spec, "containers") {
            let context = format!("{} container {}", pod.doc.id(), container_name(container));
            for var in list(container, "env") {
                let name = text(var, "name").unwrap();
                if ["PASSWORD", "TOKEN", "SECRET"]
                    .iter()
                    .any(|w| name.to_uppercase().contains(w))
                {
                    assert!(at(var, "value").is_none(), "{context}: {name} is a literal");
                    let r = at(var, "valueFrom.secretKeyRef")
                        .unwrap_or_else(|| panic!("{context}: {name} is not from a Secret"));
                    let (secret, key) = (text(r, "name").unwrap(), text(r, "key").unwrap());
                    assert!(
                        m.object_text(Source::Secret, secret, key).is_some(),
                        "{context}: {name} refers to {secret}/{key}, which the manifests do not define"
                    );
                    passwords += usize::from(is_exporter(container));
                }
            }
            if !is_exporter(container) {
                continue;
            }
            let (_, config) = exporter_config(m, &pod, container);
            let mut inline = Vec::new();
            inline_secrets(&config, "config", &mut inline);
            assert!(
                inline.is_empty(),
                "{context}: secrets written in the config: {inline:?}"
            );
            let mut files = Vec::new();
            replace_files(&mut config.clone(), &mut |path| {
                files.push(path.to_owned());
                path.to_owned()
            });
            for file in files {
                let (source, name, key) = mounted_file(&pod, container, &file)
                    .unwrap_or_else(|| panic!("{context}: {file} is not mounted"));
                assert_eq!(
                    source,
                    Source::Secret,
                    "{context}: {file} comes from a Secret"
                );
                assert!(
                    m.object_text(Source::Secret, &name, &key).is_some(),
                    "{context}: {file} is {name}/{key}, which the manifests do not define"
                );
                passwords += 1;
            }
            for mount in list(container, "volumeMounts") {
                assert_eq!(
                    at(mount, "readOnly").and_then(Value::as_bool),
                    Some(true),
                    "{context}: every mount readOnly"
                );
            }
        }
    }
    // MariaDB's password file, Redis' environment variable, and the multi-target's two files.
    assert!(
        passwords >= 4,
        "expected at least 4 exporter credentials, found {passwords}"
    );
}

#[test]
fn exporter_configs_pass_config_check_in_the_pod_environment() {
    let m = manifests();
    for (pod, container) in m.exporters() {
        let context = format!("{} container {}", pod.doc.id(), container_name(container));
        let dir = tempfile::tempdir().unwrap();
        // The Secret files the config names exist only in the pod: each is replaced by a temporary
        // file holding the Secret's value.
        let config = runnable_config(m, &pod, container, dir.path(), &[]);
        let path = write_config(dir.path(), &config);
        let env = pod_environment(m, &pod, container, &[]);
        let (passed, output) = run(Command::new(support::BIN)
            .arg("--config.check")
            .arg(format!("--config.file={}", path.display()))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v))));
        assert!(
            passed,
            "{context}: --config.check with env {:?}:\n{output}",
            env.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        for target in target_names(&config) {
            assert!(
                output
                    .lines()
                    .any(|l| l.starts_with(&format!("target {target} ("))),
                "{context}: the summary does not list {target}:\n{output}"
            );
        }
    }
}

#[test]
fn no_secret_reaches_a_command_line() {
    // Anyone who can list processes on the node reads command lines: passwords go in files or the
    // environment, never in arguments (as `--requirepass $(REDIS_PASSWORD)` did).
    let m = manifests();
    let mut containers = 0;
    for pod in m.pods() {
        for container in all_containers(&pod) {
            let found = secrets_on_command_line(m, &pod, container, &[]);
            assert!(
                found.is_empty(),
                "{} container {}: {found:?}",
                pod.doc.id(),
                container_name(container)
            );
            containers += 1;
        }
    }
    assert!(containers >= 6, "checked {containers} containers");
    // Control: the check finds the old Redis command line.
    let (pod, _) = container_of(m, "redis", |c| !is_exporter(c));
    let old: Value = serde_yaml::from_str(
        "{name: redis, args: ['--requirepass', '$(REDIS_PASSWORD)'], env: [{name: REDIS_PASSWORD, \
         valueFrom: {secretKeyRef: {name: redis-credentials, key: password}}}]}",
    )
    .unwrap();
    assert_eq!(
        secrets_on_command_line(m, &pod, &old, &[]).len(),
        2,
        "the reference and the expanded value"
    );
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

/// The server a sidecar test runs, and how the sidecar's config must name it.
struct Server<'a> {
    /// The collector: the config's section and the `{kind}_up` gauge.
    kind: &'a str,
    /// For failure messages.
    name: &'a str,
    /// The target's field that names the server: `{scheme}127.0.0.1:{pod_port}`, the server on
    /// the pod's loopback. Without a scheme that is the whole value (an address); with one, the
    /// start of a URL.
    field: &'a str,
    scheme: &'a str,
    pod_port: u16,
    /// Where this test's server listens on 127.0.0.1.
    port: u16,
    /// The server's log, for failure messages.
    log: &'a dyn Fn() -> String,
}

/// The name of the one `kind` target of a sidecar's config.
fn only_target(config: &Value, kind: &str) -> String {
    let targets: Vec<String> = string_map(config.get(kind)).into_keys().collect();
    assert_eq!(targets.len(), 1, "one {kind} target");
    targets.into_iter().next().unwrap()
}

/// The end of both sidecar tests: the sidecar's `config` (with its one `server.kind` target) pointed
/// at this test's server instead of the pod's loopback port, written to `dir` and run as the
/// container would be, with the pod's environment. Its probes pass, the target is up and scraped
/// without error. Returns the exporter, still running, and its `/metrics` text.
fn assert_sidecar_scrapes(
    m: &Manifests,
    (pod, exporter): (&Pod, &Value),
    overrides: Overrides,
    dir: &Path,
    config: &Value,
    server: Server,
) -> (Exporter, String) {
    let Server { kind, name, .. } = server;
    let mut config = config.clone();
    let target = &only_target(&config, kind);
    let field = &mut config[kind][target.as_str()][server.field];
    let manifest = field.as_str().unwrap_or_default().to_owned();
    let loopback = format!("127.0.0.1:{}", server.pod_port);
    let expected = format!("{}{loopback}", server.scheme);
    assert!(
        manifest == expected || (!server.scheme.is_empty() && manifest.starts_with(&expected)),
        "the sidecar reaches {name} over the pod's loopback: {kind}.{target}.{} is {manifest:?}, \
         expected {expected:?}{}",
        server.field,
        if server.scheme.is_empty() { "" } else { "..." }
    );
    *field = Value::from(manifest.replace(&loopback, &format!("127.0.0.1:{}", server.port)));
    let path = write_config(dir, &config);
    let running = Exporter::start_with_env(
        &[
            &format!("--config.file={}", path.display()),
            "--web.listen-address=127.0.0.1:0",
        ],
        &pod_environment(m, pod, exporter, overrides),
    );
    assert_probes_pass(&running, exporter);
    let body = running.get("/metrics", &[]).text();
    assert_eq!(
        support::value(&body, &format!("{kind}_up{{target=\"{target}\"}}")),
        Some(1.0),
        "{body}\n{}\n{}",
        running.log().join("\n"),
        (server.log)()
    );
    assert_eq!(
        support::value(
            &body,
            &format!("fanout_exporter_scrape_success{{collector=\"{kind}\",target=\"{target}\"}}")
        ),
        Some(1.0),
        "{}",
        running.log().join("\n")
    );
    (running, body)
}

#[test]
fn mariadb_sidecar_scrapes_a_real_mariadb_prepared_by_its_init_script() {
    use crate::mariadb_server::{EXPORTER_PASSWORD, Mariadb, sql_quote};
    let m = manifests();
    let (pod, exporter) = container_of(m, "mariadb", is_exporter);
    let (_, database) = container_of(m, "mariadb", |c| !is_exporter(c));
    // The Secret's example password is replaced by one with a #, both quotes, a backslash, spaces
    // and a trailing newline (as `kubectl create secret --from-file` of an edited file has), so that
    // the init script's SQL quoting is tested; both containers get it from the same key.
    let password = format!("{EXPORTER_PASSWORD}\n");
    let overrides = [(
        "mariadb-credentials",
        "exporter-password",
        password.as_str(),
    )];
    let server = Mariadb::start(Default::default());
    let dir = tempfile::tempdir().unwrap();

    // The init scripts, run as the image's entrypoint runs them on an empty volume: sorted, `.sql`
    // piped to the client, `.sh` sourced by bash with docker_process_sql (the entrypoint's function)
    // defined as the client as root.
    let client = on_path("mariadb")
        .expect("mariadb not found: install mariadb-client (apt-get install mariadb-client)");
    let (source, volume, _) = list(database, "volumeMounts")
        .iter()
        .find(|v| text(v, "mountPath") == Some("/docker-entrypoint-initdb.d"))
        .and_then(|v| volume_object(&pod, text(v, "name")?))
        .expect("the database container mounts /docker-entrypoint-initdb.d");
    assert_eq!(source, Source::ConfigMap, "init scripts from a ConfigMap");
    let scripts = string_map(at(&m.object("ConfigMap", volume).unwrap().value, "data"));
    assert!(!scripts.is_empty(), "ConfigMap {volume} has init scripts");
    let db_env = pod_environment(m, &pod, database, &overrides);
    for (name, script) in &scripts {
        let path = support::write(dir.path(), name, script);
        let shell = if name.ends_with(".sh") {
            "docker_process_sql() { \"$CLIENT\" --no-defaults -uroot -S \"$SOCKET\" --batch \"$@\"; }; set -e; source \"$1\""
        } else {
            assert!(name.ends_with(".sql"), "init file {name}: .sh or .sql");
            "\"$CLIENT\" --no-defaults -uroot -S \"$SOCKET\" --batch < \"$1\""
        };
        let (passed, output) = run(Command::new("bash")
            .args(["-c", shell, "init", &path.display().to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(db_env.iter().map(|(k, v)| (k, v)))
            .env("CLIENT", &client)
            .env("SOCKET", server.socket()));
        assert!(passed, "init script {name}:\n{output}");
    }

    // The exporter's config, with the server's port for 3306 (the pod's loopback).
    let config = runnable_config(m, &pod, exporter, dir.path(), &overrides);
    let target = &only_target(&config, "mysql");

    // Least privilege, as in the docker-compose stack: no data of any schema but
    // performance_schema, for every account of the exporter's user.
    let user = text(&config["mysql"][target.as_str()], "user").expect("the target's user");
    let (_, hosts) = server.query(&format!(
        "SELECT host FROM mysql.user WHERE user = {}",
        sql_quote(user)
    ));
    assert!(
        !hosts.is_empty(),
        "the init scripts create no {user} account"
    );
    for host in hosts.iter().map(|row| row[0].clone().unwrap()) {
        let account = format!("{}@{}", sql_quote(user), sql_quote(&host));
        let grants = server.sql(&format!("SHOW GRANTS FOR {account}"));
        for grant in grants.lines() {
            let Some((privileges, rest)) = grant
                .strip_prefix("GRANT ")
                .and_then(|g| g.split_once(" ON "))
            else {
                continue;
            };
            let on = rest.split(" TO ").next().unwrap();
            let reads = privileges
                .split(',')
                .map(str::trim)
                .any(|p| p == "SELECT" || p == "ALL PRIVILEGES" || p == "ALL");
            assert!(
                !reads || on == "`performance_schema`.*",
                "{account} may read data on {on} (no SELECT ON *.*, nor any schema but \
                 performance_schema): {grant}"
            );
        }
    }
    let (running, body) = assert_sidecar_scrapes(
        m,
        (&pod, exporter),
        &overrides,
        dir.path(),
        &config,
        Server {
            kind: "mysql",
            name: "MariaDB",
            field: "address",
            scheme: "",
            pod_port: 3306,
            port: server.port(),
            log: &String::new,
        },
    );
    // The init script's grants cover every configured sub-collector.
    let collect = list(&config["mysql"][target.as_str()], "collect").len();
    let results: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("mysql_exporter_collector_success{") && l.contains("collector=\"collect.")
        })
        .collect();
    assert_eq!(
        results.len(),
        collect,
        "one result per configured collector:\n{body}"
    );
    for line in results {
        assert!(line.ends_with(" 1"), "{line}\n{}", running.log().join("\n"));
    }
}

/// `redis-cli PING` against 127.0.0.1:`port`, authenticated with `password` (in the environment)
/// when given: (succeeded, output).
fn redis_ping(port: u16, password: Option<&str>) -> (bool, String) {
    let cli = on_path("redis-cli")
        .expect("redis-cli not found: install redis-server (apt-get install redis-server)");
    let mut command = Command::new(cli);
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-e", "PING"])
        .env_remove("REDISCLI_AUTH");
    if let Some(password) = password {
        command.env("REDISCLI_AUTH", password);
    }
    run(&mut command)
}

#[test]
fn redis_sidecar_scrapes_a_real_redis_configured_by_its_init_container() {
    let m = manifests();
    let (pod, exporter) = container_of(m, "redis", is_exporter);
    let (_, database) = container_of(m, "redis", |c| !is_exporter(c));
    // The Secret's example password is replaced by one with a #, both quotes, a backslash, spaces and
    // a trailing newline (as `kubectl create secret --from-file` of an edited file has), so that the
    // init container's encoding is tested; redis-server and the exporter get it from the same key.
    let password = "re#dis 'pa\"ss\\ word\n";
    let secret = list(exporter, "env")
        .iter()
        .find_map(|v| at(v, "valueFrom.secretKeyRef"))
        .expect("the exporter takes Redis' password from a Secret");
    let overrides = [(
        text(secret, "name").unwrap(),
        text(secret, "key").unwrap(),
        password,
    )];
    let dir = tempfile::tempdir().unwrap();

    // The init containers, run here as the pod runs them (their command, their environment, their
    // mounts mapped to local directories), in order, each to success.
    for init in list(pod.spec, "initContainers") {
        let context = format!("{} init container {}", pod.doc.id(), container_name(init));
        let mounts = local_mounts(m, &pod, init, dir.path(), &overrides);
        let env = pod_environment(m, &pod, init, &overrides);
        let argv: Vec<String> = command_line(init, &env)
            .iter()
            .map(|a| map_paths(a, &mounts))
            .collect();
        assert!(!argv.is_empty(), "{context}: no command");
        let (passed, output) = run(Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v))));
        assert!(passed, "{context}: {argv:?}\n{output}");
    }

    // redis-server with the Redis container's arguments (the image's entrypoint runs them when the
    // first is redis-server), its mounts mapped likewise, and nothing from the pod's Secret but what
    // the init containers wrote. Then this test's port, loopback and log, which come last and so win.
    assert!(
        list(database, "command").is_empty(),
        "the Redis container keeps the image's entrypoint"
    );
    assert!(
        list(database, "env").is_empty(),
        "the Redis container has no environment (the password is not in it either)"
    );
    let mounts = local_mounts(m, &pod, database, dir.path(), &overrides);
    let argv: Vec<String> = command_line(database, &[])
        .iter()
        .map(|a| map_paths(a, &mounts))
        .collect();
    assert_eq!(
        argv.first().map(String::as_str),
        Some("redis-server"),
        "the Redis container's arguments start with redis-server"
    );
    let redis_server = on_path("redis-server")
        .expect("redis-server not found: install redis-server (apt-get install redis-server)");
    let log = dir.path().join("redis-server.log");
    let mut server = None;
    let port = watched::on_free_port("redis-server", "Address already in use", |port| {
        let _ = fs::remove_file(&log);
        let mut command = Command::new(&redis_server);
        command
            .args(&argv[1..])
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(&log);
        let mut process = watched::Watched::spawn(&mut command, dir.path())
            .map_err(|e| format!("running redis-server: {e}"))?;
        let log_text = || fs::read_to_string(&log).unwrap_or_default();
        // Up once it answers, whatever it answers.
        poll(Duration::from_secs(20), Duration::from_millis(50), || {
            let (passed, output) = redis_ping(port, None);
            if passed || output.contains("NOAUTH") {
                return Some(Ok(()));
            }
            // Still starting: poll again.
            let status = process.try_wait().unwrap()?;
            // Configuration errors go to stderr, which the watchdog discards: run it once more
            // (bounded) for them.
            let (_, stderr) = run(Command::new("timeout")
                .arg("5")
                .arg(&redis_server)
                .args(&argv[1..])
                .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""]));
            Some(Err(format!(
                "exited with {status}:\n{}{stderr}",
                log_text()
            )))
        })
        .unwrap_or_else(|| Err(format!("not answering after 20 s:\n{}", log_text())))?;
        server = Some(process);
        Ok(())
    });
    let server_log = || fs::read_to_string(&log).unwrap_or_default();
    let (passed, output) = redis_ping(port, None);
    assert!(
        !passed && output.contains("NOAUTH"),
        "redis-server must require a password: {output}\n{}",
        server_log()
    );
    let (passed, output) = redis_ping(port, Some(password));
    assert!(
        passed && output.starts_with("PONG"),
        "redis-server must accept the Secret's password, exactly: {output}\n{}",
        server_log()
    );

    // The exporter, as its container runs it, against that server.
    let config = runnable_config(m, &pod, exporter, dir.path(), &overrides);
    let (running, _) = assert_sidecar_scrapes(
        m,
        (&pod, exporter),
        &overrides,
        dir.path(),
        &config,
        Server {
            kind: "redis",
            name: "Redis",
            field: "url",
            scheme: "redis://",
            pod_port: 6379,
            port,
            log: &server_log,
        },
    );
    drop(running);
    drop(server);
}
