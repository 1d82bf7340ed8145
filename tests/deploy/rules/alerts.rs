//! The Prometheus configuration and the alert rules as shipped: promtool on the configuration (which
//! resolves the rule files), on the rules and on their unit tests, which must fail when a rule is
//! broken; the scrape jobs' shape, and the conventions every alert follows.

use std::collections::{BTreeMap, BTreeSet};

use super::promql;
use super::{
    AlertTest, COMPOSE_EXPORTER_CONFIG, ExpectedAlert, PROMETHEUS_CONFIG, RULE_TESTS, RULES,
    RuleTests, read, repo_path, rules, run_promtool, yaml,
};
use crate::common::{duration, module_kind, module_target_host};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------------
// Prometheus configuration

#[test]
fn prometheus_config_passes_promtool_and_finds_the_rules() {
    // From another directory: rule_files must resolve relative to the configuration file, as in the
    // container (/etc/prometheus) and when checked from the repository root.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = repo_path(PROMETHEUS_CONFIG);
    let (ok, out) = run_promtool(
        &[
            "check",
            "config",
            "--lint=all",
            "--lint-fatal",
            config.to_str().unwrap(),
        ],
        elsewhere.path(),
    );
    assert!(ok, "promtool check config failed:\n{out}");
    let rule_files = std::fs::read_dir(repo_path("deploy/prometheus/rules"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "yml")
        })
        .count();
    assert!(
        out.contains(&format!("SUCCESS: {rule_files} rule files found")),
        "the rule_files glob must find every file of deploy/prometheus/rules:\n{out}"
    );
    let count = rules().len();
    assert!(count > 0);
    assert!(
        out.contains("rules/fanout.yml") && out.contains(&format!("SUCCESS: {count} rules found")),
        "promtool must have checked all {count} rules of {RULES}:\n{out}"
    );
}

#[test]
fn prometheus_config_has_the_static_and_the_probe_job() {
    let config = yaml(PROMETHEUS_CONFIG);
    let global = &config["global"];
    let interval = duration(global["scrape_interval"].as_str().unwrap());
    let timeout = duration(global["scrape_timeout"].as_str().unwrap());
    assert_eq!(
        config["rule_files"],
        serde_yaml::from_str::<serde_yaml::Value>("['rules/*.yml']").unwrap()
    );

    let jobs = config["scrape_configs"].as_sequence().unwrap();
    let job = |name: &str| {
        jobs.iter()
            .find(|j| j["job_name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no job {name}"))
    };
    for j in jobs {
        let name = j["job_name"].as_str().unwrap();
        let interval = j["scrape_interval"].as_str().map_or(interval, duration);
        let timeout = j["scrape_timeout"].as_str().map_or(timeout, duration);
        assert!(
            timeout < interval,
            "{name}: scrape_timeout must stay below scrape_interval"
        );
    }

    let fanout = job("fanout");
    assert!(
        fanout["metrics_path"].is_null(),
        "the static job scrapes /metrics"
    );
    assert_eq!(
        fanout["static_configs"][0]["targets"][0].as_str(),
        Some("fanout-exporter:9930")
    );
    assert!(fanout["relabel_configs"].is_null());

    let probe = job("fanout-probe");
    assert_eq!(probe["metrics_path"].as_str(), Some("/probe"));
    let relabel = probe["relabel_configs"].as_sequence().unwrap();
    assert_eq!(relabel.len(), 3, "{relabel:?}");
    assert_eq!(relabel[0]["source_labels"][0].as_str(), Some("__address__"));
    assert_eq!(relabel[0]["target_label"].as_str(), Some("__param_target"));
    assert_eq!(
        relabel[1]["source_labels"][0].as_str(),
        Some("__param_target")
    );
    assert_eq!(relabel[1]["target_label"].as_str(), Some("instance"));
    assert!(relabel[2]["source_labels"].is_null());
    assert_eq!(relabel[2]["target_label"].as_str(), Some("__address__"));
    assert_eq!(
        relabel[2]["replacement"].as_str(),
        Some("fanout-exporter:9930")
    );

    // The probe targets are target names of the stack's exporter configuration, not addresses: an
    // unknown name would make every scrape of it a 400.
    let exporter = yaml(COMPOSE_EXPORTER_CONFIG);
    let configured: BTreeSet<&str> = ["http", "mysql", "redis"]
        .iter()
        .filter_map(|kind| exporter[*kind].as_mapping())
        .flat_map(|targets| targets.keys().filter_map(|k| k.as_str()))
        .collect();
    let probed: Vec<&str> = probe["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        probed.iter().copied().collect::<BTreeSet<_>>(),
        configured,
        "the /probe job must list exactly the targets of {COMPOSE_EXPORTER_CONFIG}"
    );
    for kind in ["http", "mysql", "redis"] {
        assert!(
            exporter[kind].as_mapping().is_some_and(|m| !m.is_empty()),
            "{COMPOSE_EXPORTER_CONFIG} should have a {kind} target for the dashboard and rules to show"
        );
    }
}

/// The file_sd job: blackbox's relabel chain plus the module, and the shipped example targets are
/// the compose stack's services, each group naming a module of the stack's exporter whose kind takes
/// its addresses' syntax (mysql host:port, redis redis://, http http(s)://). Whether the module's
/// allowed_targets admit them is the exporter's business; the real-Prometheus test
/// (prometheus/discovery.rs) runs this job against the exporter's modules.
#[test]
fn prometheus_config_file_sd_job_probes_the_example_targets_with_the_stacks_modules() {
    let config = yaml(PROMETHEUS_CONFIG);
    let job = config["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["job_name"].as_str() == Some("fanout-sd"))
        .expect("no job fanout-sd");
    assert_eq!(job["metrics_path"].as_str(), Some("/probe"));
    let relabel: Vec<(Vec<&str>, &str, Option<&str>)> = job["relabel_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|step| {
            assert!(
                step["action"].as_str().unwrap_or("replace") == "replace"
                    && step["regex"].is_null(),
                "fanout-sd: plain copies only: {step:?}"
            );
            let sources = step["source_labels"]
                .as_sequence()
                .map(|s| s.iter().map(|l| l.as_str().unwrap()).collect())
                .unwrap_or_default();
            (
                sources,
                step["target_label"].as_str().unwrap(),
                step["replacement"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        relabel,
        [
            (vec!["__address__"], "__param_target", None),
            (vec!["module"], "__param_module", None),
            (vec!["__param_target"], "instance", None),
            (vec![], "__address__", Some("fanout-exporter:9930")),
        ],
        "fanout-sd relabel chain"
    );
    let files = &job["file_sd_configs"][0]["files"];
    assert_eq!(
        files,
        &serde_yaml::from_str::<serde_yaml::Value>("['targets/*.yml']").unwrap(),
        "fanout-sd reads targets/ beside prometheus.yml"
    );

    let exporter = yaml(COMPOSE_EXPORTER_CONFIG);
    let modules = exporter["modules"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{COMPOSE_EXPORTER_CONFIG} has no modules for fanout-sd"));
    let compose = yaml("docker-compose.yml");
    let mut examples = std::fs::read_dir(repo_path("deploy/prometheus/targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect::<Vec<_>>();
    examples.sort();
    assert!(!examples.is_empty(), "no example targets file");
    let mut kinds = BTreeSet::new();
    for path in examples {
        let relative = path
            .strip_prefix(repo_path(""))
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let groups = yaml(&relative);
        for group in groups.as_sequence().unwrap() {
            let module = group["labels"]["module"]
                .as_str()
                .unwrap_or_else(|| panic!("{relative}: a group without a module: {group:?}"));
            let settings = modules.get(module).unwrap_or_else(|| {
                panic!("{relative}: module {module} is not in {COMPOSE_EXPORTER_CONFIG}")
            });
            let kind = module_kind(settings, module);
            kinds.insert(kind);
            for target in group["targets"].as_sequence().unwrap() {
                let target = target.as_str().unwrap();
                let host = module_target_host(kind, target, &relative);
                assert!(
                    compose["services"].get(host).is_some(),
                    "{relative}: {target}: {host} is not a service of docker-compose.yml"
                );
            }
        }
    }
    assert_eq!(
        kinds,
        BTreeSet::from(["http", "mysql", "redis"]),
        "the example targets show every kind"
    );
}

// ---------------------------------------------------------------------------------------------------
// Alert rules

#[test]
fn alert_rules_pass_promtool_check_with_all_lints() {
    let (ok, out) = run_promtool(
        &["check", "rules", "--lint=all", "--lint-fatal", RULES],
        &repo_path(""),
    );
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", rules().len())),
        "{out}"
    );
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let (ok, out) = run_promtool(&["test", "rules", RULE_TESTS], &repo_path(""));
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// How [`rule_unit_tests_fail_when_a_rule_is_broken`] breaks an alert.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// Its expression never returns anything.
    NeverFires,
    /// Its expression also returns a series at all times, and it has no `for`.
    FiresTooWidely,
    /// It has no `for`.
    FiresWithoutWaiting,
}

/// Copies of the rules, each broken in one alert, must each fail the unit tests: every alert has a
/// case that needs it to fire, one that needs it silent, and (with `for`) one that needs it pending.
#[test]
fn rule_unit_tests_fail_when_a_rule_is_broken() {
    let original: serde_yaml::Value = serde_yaml::from_str(&read(RULES)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::copy(
        repo_path(RULE_TESTS),
        dir.path().join("tests/fanout.test.yml"),
    )
    .unwrap();
    // The copy must pass as it is, or the failures below would prove nothing.
    std::fs::write(
        dir.path().join("rules/fanout.yml"),
        serde_yaml::to_string(&original).unwrap(),
    )
    .unwrap();
    let (ok, out) = run_promtool(&["test", "rules", "tests/fanout.test.yml"], dir.path());
    assert!(ok, "the unmodified copy should pass:\n{out}");

    let groups = original["groups"].as_sequence().unwrap();
    let mut survivors = Vec::new();
    let mut mutants = 0;
    for (g, group) in groups.iter().enumerate() {
        for (r, rule) in group["rules"].as_sequence().unwrap().iter().enumerate() {
            let alert = rule["alert"].as_str().unwrap().to_owned();
            let expr = rule["expr"].as_str().unwrap().trim().to_owned();
            let mut mutations = vec![Mutation::NeverFires, Mutation::FiresTooWidely];
            if !rule["for"].is_null() {
                mutations.push(Mutation::FiresWithoutWaiting);
            }
            for mutation in mutations {
                let mut mutant = original.clone();
                let target = mutant["groups"][g]["rules"][r].as_mapping_mut().unwrap();
                match mutation {
                    Mutation::NeverFires => {
                        target.insert("expr".into(), "vector(1) < 0".into());
                    }
                    Mutation::FiresTooWidely => {
                        target.insert("expr".into(), format!("({expr}) or vector(1)").into());
                        target.remove("for");
                    }
                    Mutation::FiresWithoutWaiting => {
                        target.remove("for");
                    }
                }
                std::fs::write(
                    dir.path().join("rules/fanout.yml"),
                    serde_yaml::to_string(&mutant).unwrap(),
                )
                .unwrap();
                let (ok, _) = run_promtool(&["test", "rules", "tests/fanout.test.yml"], dir.path());
                mutants += 1;
                if ok {
                    survivors.push(format!("{alert}: {mutation:?}"));
                }
            }
        }
    }
    assert!(mutants >= 2 * rules().len());
    assert!(
        survivors.is_empty(),
        "the unit tests pass although these alerts are broken: {survivors:?}"
    );
}

#[test]
fn alert_rules_follow_the_conventions() {
    let rules = rules();
    let mut names = BTreeSet::new();
    for rule in &rules {
        let name = rule.alert.as_deref().expect("only alerting rules");
        assert!(rule.record.is_none());
        assert!(names.insert(name), "duplicate alert {name}");
        assert!(
            matches!(
                rule.labels.get("severity").map(String::as_str),
                Some("critical" | "warning")
            ),
            "{name}: severity must be critical or warning"
        );
        for key in ["summary", "description"] {
            let text = rule.annotations.get(key).map(String::as_str);
            assert!(
                text.is_some_and(|t| t.len() > 20),
                "{name}: {key} is missing or too short"
            );
        }
        if let Some(wait) = &rule.for_duration {
            assert!(
                duration(wait) >= Duration::from_secs(60),
                "{name}: for {wait}"
            );
        }
        // Every target alert names the target under both jobs: `target` on /metrics, `instance` on
        // /probe.
        if name != "FanoutExporterDown" {
            for key in ["summary", "description"] {
                let text = &rule.annotations[key];
                assert!(
                    text.contains(
                        "{{ with $labels.target }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }}"
                    ),
                    "{name}: {key} must name the target under both jobs"
                );
            }
        }
        // Grouping must keep the label that identifies the target under either job.
        let scan = promql::scan(&rule.expr).unwrap_or_else(|e| panic!("{name}: {e}"));
        for aggregation in &scan.aggregations {
            assert!(
                aggregation.keeps("target") && aggregation.keeps("instance"),
                "{name}: {} {:?} drops target or instance",
                aggregation.operator,
                aggregation.grouping
            );
        }
        for matching in &scan.matchings {
            let has = |l: &str| matching.labels().labels.iter().any(|x| x == l);
            let keeps = if matching.is_include() {
                has("target") && has("instance")
            } else {
                !has("target") && !has("instance")
            };
            assert!(keeps, "{name}: {matching:?} drops target or instance");
        }
    }
    for required in [
        "FanoutExporterDown",
        "FanoutTargetScrapeErrors",
        "MySQLDown",
        "RedisDown",
        "HTTPProbeFailed",
        "TLSCertificateExpiringSoon",
    ] {
        assert!(names.contains(required), "missing alert {required}");
    }
    let up_rules: BTreeMap<&str, &str> = rules
        .iter()
        .map(|r| (r.expr.trim(), r.name()))
        .filter(|(expr, _)| ["mysql_up == 0", "redis_up == 0", "probe_success == 0"].contains(expr))
        .collect();
    assert_eq!(up_rules.len(), 3, "one down rule per kind: {up_rules:?}");
}

#[test]
fn every_alert_is_unit_tested_under_both_jobs() {
    let tests: RuleTests =
        serde_yaml::from_str(&read(RULE_TESTS)).unwrap_or_else(|e| panic!("{RULE_TESTS}: {e}"));
    let cases: Vec<&AlertTest> = tests
        .tests
        .iter()
        .flat_map(|t| &t.alert_rule_test)
        .collect();
    for rule in rules() {
        let name = rule.name();
        let mine: Vec<&&AlertTest> = cases.iter().filter(|c| c.alertname == name).collect();
        assert!(
            mine.iter().any(|c| c.exp_alerts.is_empty()),
            "{name}: no case where it must not fire"
        );
        let fired: Vec<&ExpectedAlert> = mine.iter().flat_map(|c| &c.exp_alerts).collect();
        assert!(!fired.is_empty(), "{name}: no case where it fires");
        for alert in &fired {
            assert!(
                alert.exp_annotations.contains_key("summary")
                    && alert.exp_annotations.contains_key("description"),
                "{name}: expected alerts must state their annotations"
            );
            assert_eq!(
                alert.exp_labels.get("severity"),
                rule.labels.get("severity"),
                "{name}"
            );
        }
        for job in ["fanout", "fanout-probe"] {
            assert!(
                fired
                    .iter()
                    .any(|a| a.exp_labels.get("job").map(String::as_str) == Some(job)),
                "{name}: no case where it fires for a series of job {job}"
            );
        }
    }
}
