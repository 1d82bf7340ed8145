//! The pods as the manifests define them: the exporter containers' ports, probes, security context
//! and resources, the restricted Pod Security Standard for every container, the exporter configs
//! (a ConfigMap at the default path, credentials from Secrets, `--config.check` in the pod's
//! environment) and no secret on a command line.

#[allow(clippy::wildcard_imports)]
use super::*;

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
        let (passed, output) = run(Command::new(support::bin())
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
