//! The manifests against their schemas: kustomization.yaml lists every file, the built-in kinds pass
//! kubernetes-validate (strict, every supported Kubernetes version) and the Operator resources pass
//! the Prometheus Operator's JSON-schema validators and TypeScript types.

#[allow(clippy::wildcard_imports)]
use super::*;

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
        BTreeSet::from(["PodMonitor", "Probe", "ScrapeConfig", "ServiceMonitor"]),
        "the Operator kinds the manifests use"
    );
    // Controls, which must be rejected: an unknown (misspelt) field, for tsc; an action outside the
    // enum, for the schema validators.
    let mut misspelt = m.of_kind("ServiceMonitor").next().unwrap().value.clone();
    misspelt["spec"]["endpoints"][0]["scrapeTimeOut"] = Value::from("10s");
    let mut bad_enum = m.of_kind("PodMonitor").next().unwrap().value.clone();
    bad_enum["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["action"] =
        Value::from("replaced");
    // And a ScrapeConfig discovering a role Kubernetes does not have, so that its (v1alpha1) schema
    // is seen to be applied too.
    let mut bad_role = m.of_kind("ScrapeConfig").next().unwrap().value.clone();
    bad_role["spec"]["kubernetesSDConfigs"][0]["role"] = Value::from("Services");
    let controls = docs.len();
    docs.push(("control: unknown field".to_owned(), misspelt));
    docs.push(("control: bad action".to_owned(), bad_enum));
    docs.push(("control: bad role".to_owned(), bad_role));

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
    assert!(
        results[&(controls + 2)].contains("role"),
        "the schema validators accepted a ScrapeConfig with role `Services`: {}",
        results[&(controls + 2)]
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
