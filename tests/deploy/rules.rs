//! deploy/prometheus and deploy/grafana as shipped: promtool on the Prometheus configuration (which
//! resolves its rule files), on the alert rules and on their unit tests (which must fail when a rule is
//! broken); the Grafana provisioning, the dashboard's structure, and the dashboard against Grafana's own
//! TypeScript types (the npm package @grafana/schema, through `tsc`: unknown fields, value types,
//! enums, each panel's plugin options); and every metric name the dashboard and the rules query, found
//! by a small PromQL-aware scanner and checked against the exporter's source.
//!
//! [`queried_metric_names`] is also what the real-Prometheus test (`prometheus.rs`) checks against what
//! a real Prometheus ingested from the exporter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, de};
use serde_json::Value;

use crate::common::{TscReport, npm_modules, run, tsc};
use crate::support::{on_path, promtool};

/// Names queried by the dashboard or the rules that Prometheus generates itself instead of ingesting
/// them from the exporter.
pub const PROMETHEUS_GENERATED: &[&str] = &["up"];

/// Queried names that the exporter emits only for some targets, and what a target needs for them.
pub const CONDITIONAL_METRICS: &[(&str, &str)] = &[
    (
        "mysql_slave_status_slave_io_running",
        "a MySQL target that is a replica",
    ),
    (
        "mysql_slave_status_slave_sql_running",
        "a MySQL target that is a replica",
    ),
    (
        "mysql_slave_status_sql_delay",
        "a MySQL target that is a replica",
    ),
    (
        "mysql_slave_status_seconds_behind_master",
        "a MySQL target that is a replica with its SQL thread running",
    ),
    ("probe_ssl_earliest_cert_expiry", "an https:// HTTP target"),
];

const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RULES: &str = "deploy/prometheus/rules/fanout.yml";
const RULE_TESTS: &str = "deploy/prometheus/tests/fanout.test.yml";
const DASHBOARD: &str = "deploy/grafana/dashboards/fanout.json";
const DATASOURCES: &str = "deploy/grafana/provisioning/datasources/prometheus.yml";
const DASHBOARD_PROVIDERS: &str = "deploy/grafana/provisioning/dashboards/fanout.yml";
/// The exporter configuration of the compose stack, whose target names the /probe job lists.
const COMPOSE_EXPORTER_CONFIG: &str = "deploy/compose/fanout.yaml";

/// The uid the dashboard's panels use: its `datasource` variable, whose default is the provisioned uid.
const DATASOURCE_VARIABLE: &str = "${datasource}";

/// Every metric name the dashboard (panel queries and template variable queries) and the alert rules
/// query. Names in [`PROMETHEUS_GENERATED`] come from Prometheus itself; those in
/// [`CONDITIONAL_METRICS`] need a replica or an HTTPS target.
pub fn queried_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for rule in rules() {
        let scan = scan_promql(&rule.expr)
            .unwrap_or_else(|e| panic!("{RULES}: rule {}: {e}", rule.name()));
        names.extend(scan.selectors.into_iter().map(|s| s.name));
    }
    for query in dashboard_queries() {
        let found = match query.kind {
            QueryKind::Panel => scan_promql(&query.text).map(|s| names_of(&s)),
            QueryKind::Variable => variable_query_metrics(&query.text),
        };
        names.extend(found.unwrap_or_else(|e| panic!("{DASHBOARD}: {}: {e}", query.place)));
    }
    names
}

fn names_of(scan: &Scan) -> BTreeSet<String> {
    scan.selectors.iter().map(|s| s.name.clone()).collect()
}

// ---------------------------------------------------------------------------------------------------
// Files

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn yaml(relative: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_duration: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Rule {
    fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("?")
    }
}

fn rules() -> Vec<Rule> {
    let file: RuleFile =
        serde_yaml::from_str(&read(RULES)).unwrap_or_else(|e| panic!("{RULES}: {e}"));
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

/// The expression of the shipped alert `name`, for checks elsewhere that must agree with it.
pub fn alert_expr(name: &str) -> String {
    rules()
        .into_iter()
        .find(|r| r.alert.as_deref() == Some(name))
        .map(|r| r.expr)
        .unwrap_or_else(|| panic!("{RULES}: no alert {name}"))
}

#[derive(Debug, Deserialize)]
struct RuleTests {
    tests: Vec<RuleTestGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleTestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Debug, Deserialize)]
struct AlertTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize)]
struct ExpectedAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

/// Run promtool with `args` in `dir`: whether it succeeded, and everything it printed.
fn run_promtool(args: &[&str], dir: &Path) -> (bool, String) {
    run(Command::new(promtool()).args(args).current_dir(dir))
}

/// A Prometheus duration (`15s`, `1m30s`, `500ms`) in milliseconds.
fn duration_ms(text: &str) -> u64 {
    let mut total = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        assert!(digits > 0, "bad duration {text:?}");
        let number: u64 = rest[..digits].parse().unwrap();
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            unit => panic!("bad duration unit {unit:?} in {text:?}"),
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    total
}

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
    let interval = duration_ms(global["scrape_interval"].as_str().unwrap());
    let timeout = duration_ms(global["scrape_timeout"].as_str().unwrap());
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
        let interval = j["scrape_interval"].as_str().map_or(interval, duration_ms);
        let timeout = j["scrape_timeout"].as_str().map_or(timeout, duration_ms);
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
        if let Some(duration) = &rule.for_duration {
            assert!(duration_ms(duration) >= 60_000, "{name}: for {duration}");
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
        let scan = scan_promql(&rule.expr).unwrap();
        for aggregation in &scan.aggregations {
            assert!(
                aggregation.keeps("target") && aggregation.keeps("instance"),
                "{name}: {} {:?} drops target or instance",
                aggregation.operator,
                aggregation.grouping
            );
        }
        for (keyword, labels) in &scan.groupings {
            let has = |l: &str| labels.iter().any(|x| x == l);
            match keyword.as_str() {
                "by" | "on" => assert!(
                    has("target") && has("instance"),
                    "{name}: {keyword} {labels:?} drops target or instance"
                ),
                "without" | "ignoring" => assert!(
                    !has("target") && !has("instance"),
                    "{name}: {keyword} {labels:?} drops target or instance"
                ),
                _ => {}
            }
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

// ---------------------------------------------------------------------------------------------------
// Grafana

#[test]
fn grafana_provisioning_matches_the_stack() {
    let sources = yaml(DATASOURCES);
    assert_eq!(sources["apiVersion"].as_u64(), Some(1));
    let list = sources["datasources"].as_sequence().unwrap();
    assert_eq!(list.len(), 1);
    let source = &list[0];
    assert_eq!(source["uid"].as_str(), Some("prometheus"));
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(source["url"].as_str(), Some("http://prometheus:9090"));
    assert_eq!(source["isDefault"].as_bool(), Some(true));
    // $__rate_interval is derived from it; it must be Prometheus' scrape interval.
    let config = yaml(PROMETHEUS_CONFIG);
    assert_eq!(
        source["jsonData"]["timeInterval"].as_str(),
        config["global"]["scrape_interval"].as_str()
    );

    let providers = yaml(DASHBOARD_PROVIDERS);
    assert_eq!(providers["apiVersion"].as_u64(), Some(1));
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"].as_str(), Some("file"));
    assert_eq!(
        provider["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );
}

fn dashboard() -> Value {
    parse_dashboard(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

/// Every panel, rows' nested panels included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
        for panel in panels {
            out.push(panel);
            walk(items(&panel["panels"]), out);
        }
    }
    let mut out = Vec::new();
    walk(items(&dashboard["panels"]), &mut out);
    out
}

enum QueryKind {
    Panel,
    Variable,
}

struct Query {
    place: String,
    kind: QueryKind,
    text: String,
}

/// Every query of the dashboard: panel targets' `expr` and query variables' `query`.
fn dashboard_queries() -> Vec<Query> {
    let dashboard = dashboard();
    let mut out = Vec::new();
    for panel in all_panels(&dashboard) {
        for target in items(&panel["targets"]) {
            out.push(Query {
                place: format!(
                    "panel {} ({}) target {}",
                    panel["id"].as_f64().unwrap_or(-1.0),
                    panel["title"].as_str().unwrap_or("?"),
                    target["refId"].as_str().unwrap_or("?")
                ),
                kind: QueryKind::Panel,
                text: target["expr"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    for variable in items(&dashboard["templating"]["list"]) {
        if variable["type"].as_str() == Some("query") {
            // Grafana stores it as a string or, from 10 on, as an object with the string in `query`.
            let text = variable["query"]
                .as_str()
                .or_else(|| variable["query"]["query"].as_str())
                .unwrap_or_default();
            out.push(Query {
                place: format!("variable {}", variable["name"].as_str().unwrap_or("?")),
                kind: QueryKind::Variable,
                text: text.to_owned(),
            });
        }
    }
    out
}

#[test]
fn dashboard_is_well_formed() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"].as_str(), Some("fanout-exporter"));
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        dashboard["id"].is_null(),
        "a provisioned dashboard carries no database id"
    );

    // Variables: the data source defaults to the provisioned uid; `target` lists the configured targets
    // and its All value must not match series without a target label (the /probe job's).
    let variables = items(&dashboard["templating"]["list"]);
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let provisioned = yaml(DATASOURCES)["datasources"][0]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let datasource = variable("datasource");
    assert_eq!(datasource["type"].as_str(), Some("datasource"));
    assert_eq!(datasource["query"].as_str(), Some("prometheus"));
    assert_eq!(
        datasource["current"]["value"].as_str(),
        Some(provisioned.as_str())
    );
    let target = variable("target");
    assert_eq!(target["type"].as_str(), Some("query"));
    assert_eq!(
        target["query"]["query"].as_str(),
        Some("label_values(fanout_exporter_scrape_success, target)")
    );
    assert_eq!(
        target["definition"].as_str(),
        target["query"]["query"].as_str()
    );
    assert_eq!(target["includeAll"].as_bool(), Some(true));
    assert_eq!(target["allValue"].as_str(), Some(".+"));
    assert_eq!(
        target["datasource"]["uid"].as_str(),
        Some(DATASOURCE_VARIABLE)
    );

    let panels = all_panels(&dashboard);
    assert!(panels.len() > 10);
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [i64; 4])> = Vec::new();
    let mut row_y = None;
    for panel in &panels {
        let id = panel["id"].as_f64().expect("every panel has an id");
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "panel {id} has no title");
        assert!(ids.insert(id as i64), "duplicate panel id {id}");
        let grid = panel.get("gridPos").expect("gridPos");
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_f64().unwrap() as i64);
        assert!(
            x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24,
            "panel {id} ({title}) gridPos {x},{y} {w}x{h} outside the 24-column grid"
        );
        for (other, [ox, oy, ow, oh]) in &boxes {
            let apart = x + w <= *ox || *ox + *ow <= x || y + h <= *oy || *oy + *oh <= y;
            assert!(apart, "panel {title} overlaps panel {other}");
        }
        boxes.push((title.to_owned(), [x, y, w, h]));

        if panel["type"].as_str() == Some("row") {
            assert_eq!((x, w, h), (0, 24, 1), "row {title}");
            assert!(
                row_y.is_none_or(|prev| y > prev),
                "row {title} is above the previous row"
            );
            assert!(items(&panel["targets"]).is_empty());
            row_y = Some(y);
            continue;
        }
        if let Some(row) = row_y {
            assert!(y > row, "panel {title} is above its row");
        }

        let uid = |owner: &Value| {
            let source = &owner["datasource"];
            match source["type"].as_str() {
                Some("prometheus") => source["uid"].as_str().map(str::to_owned),
                _ => None,
            }
        };
        assert_eq!(
            uid(panel).as_deref(),
            Some(DATASOURCE_VARIABLE),
            "panel {title} must use the datasource variable"
        );
        let targets = items(&panel["targets"]);
        assert!(!targets.is_empty(), "panel {title} has no query");
        let mut refs = BTreeSet::new();
        for target in targets {
            let reference = target["refId"].as_str().unwrap_or_default();
            assert!(
                !reference.is_empty() && refs.insert(reference),
                "panel {title}: missing or duplicate refId {reference:?}"
            );
            assert_eq!(uid(target).as_deref(), Some(DATASOURCE_VARIABLE), "{title}");
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "panel {title} target {reference} has an empty expr"
            );
        }
    }
    let types: BTreeSet<&str> = panels.iter().filter_map(|p| p["type"].as_str()).collect();
    for kind in ["row", "timeseries", "table", "stat", "state-timeline"] {
        assert!(types.contains(kind), "no {kind} panel");
    }
}

// ---------------------------------------------------------------------------------------------------
// Grafana's schema

/// The types the dashboard is checked against: Grafana's own (@grafana/schema 12.1.1, generated from
/// the CUE schemas of the Grafana we provision), adapted to JSON only where they cannot describe what
/// Grafana reads. Every adaptation keeps excess-property checks, so unknown and misspelt fields are
/// errors at every depth:
///
/// - `Json<T>`: a dashboard file carries the *values* of Grafana's string enums ("absolute",
///   "palette-classic"), not TypeScript enum members, so string enums become the union of their values.
///   Numeric enums (`graphTooltip`, a variable's `hide`/`refresh`/`sort`) stay as they are: TypeScript
///   accepts exactly their member values as numbers.
/// - `Defaulted<T>`: panel `options` and `fieldConfig.defaults.custom` as `Json<T>`, every field
///   optional at every depth. Grafana merges the panel plugin's defaults into what the file gives
///   (PanelModel's plugin-option defaults), so a file need not repeat `frameIndex` or `legend.calcs`;
///   names and types are still checked.
/// - Panels are checked with their plugin's own `Options` and `FieldConfig` (the `raw/composable`
///   modules); the generic `Panel` types both as `Record<string, unknown>`, which checks nothing. Stat
///   has no custom field config, so `custom` must be empty there. A panel type without an entry in
///   `Panels` fails: add its plugin's types.
/// - Targets: @grafana/schema types them as `Record<string, unknown>` and ships no Prometheus query
///   type, so `PromQuery` is its `DataQuery` plus the fields of Grafana's Prometheus query model
///   (`expr`, `instant`, `range`, `exemplar`, `editorMode`, `format`, `legendFormat`,
///   `intervalFactor`, `interval`).
/// - Two things Grafana's own saved dashboards carry that the types lack: a query variable's
///   `definition` (the text of its query, shown in the variables list) and a table footer's
///   `fields: ""` (no selection, i.e. every numeric field, as `[]`; the type only has `string[]`). Both
///   are allowed by name only: the control with `fields: "Up"` must still be rejected.
const DASHBOARD_TYPES_TS: &str = r#"import type * as G from "@grafana/schema";
import type * as TimeSeries from "@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen.js";
import type * as Stat from "@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen.js";
import type * as Table from "@grafana/schema/dist/types/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen.js";
import type * as StateTimeline from "@grafana/schema/dist/types/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen.js";

type Json<T> = T extends string ? `${T}`
  : T extends readonly (infer U)[] ? Json<U>[]
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;
type Defaulted<T> = T extends string ? `${T}`
  : T extends readonly (infer U)[] ? Defaulted<U>[]
  : T extends object ? { [K in keyof T]?: Defaulted<T[K]> }
  : T;

interface PromQuery extends G.DataQuery {
  expr: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  editorMode?: "code" | "builder";
  format?: "time_series" | "table" | "heatmap";
  legendFormat?: string;
  intervalFactor?: number;
  interval?: string;
}

type FieldConfigOf<Custom> = Json<Omit<G.FieldConfigSource, "defaults">> & {
  defaults: Json<Omit<G.FieldConfig, "custom">> & { custom?: Defaulted<Custom> };
};
type PanelOf<Type extends string, Options, Custom> =
  Json<Omit<G.Panel, "type" | "options" | "fieldConfig" | "targets">> & {
    type: Type;
    options?: Defaulted<Options>;
    fieldConfig?: FieldConfigOf<Custom>;
    targets?: Json<PromQuery>[];
  };
type TableFooter = Omit<NonNullable<Table.Options["footer"]>, "fields"> & { fields?: string[] | "" };
type TableOptions = Omit<Table.Options, "footer"> & { footer?: TableFooter };

type Panels = {
  timeseries: PanelOf<"timeseries", TimeSeries.Options, TimeSeries.FieldConfig>;
  stat: PanelOf<"stat", Stat.Options, Record<string, never>>;
  table: PanelOf<"table", TableOptions, Table.FieldConfig>;
  "state-timeline": PanelOf<"state-timeline", StateTimeline.Options, StateTimeline.FieldConfig>;
  row: Row;
};
type AnyPanel = Panels[Exclude<keyof Panels, "row">];
type Row = Json<Omit<G.RowPanel, "panels">> & { panels: AnyPanel[] };
type Variable = Json<G.VariableModel> & { definition?: string };
type Dashboard = Json<Omit<G.Dashboard, "panels" | "templating">> & {
  panels?: (AnyPanel | Row)[];
  templating?: { list?: Variable[] };
};
"#;

/// One line of the file tsc checks: what it declares, and the declaration.
struct Declaration {
    what: String,
    text: String,
}

/// A declaration of each of `panels` typed by its `type` (a row's panels first, which the row then
/// names instead of repeating them); the names they are declared under.
fn declare_panels(panels: &[Value], out: &mut Vec<Declaration>) -> Vec<String> {
    panels
        .iter()
        .map(|panel| {
            let nested = panel
                .get("panels")
                .and_then(Value::as_array)
                .map(|nested| declare_panels(nested, out));
            let name = format!("panel{}", out.len());
            let kind = panel["type"].as_str().unwrap_or("(no type)");
            out.push(Declaration {
                what: format!(
                    "panel {} ({kind}, {})",
                    panel["id"],
                    panel["title"].as_str().unwrap_or("?")
                ),
                text: format!(
                    "export const {name}: Panels[{}] = {};",
                    Value::from(kind),
                    literal_naming(panel, "panels", nested.as_deref())
                ),
            });
            name
        })
        .collect()
}

/// `object` as a TypeScript object literal (JSON is one), its `key` replaced by an array of the
/// declarations `names` when given.
fn literal_naming(object: &Value, key: &str, names: Option<&[String]>) -> String {
    let Some(names) = names else {
        return object.to_string();
    };
    let mut rest = object.clone();
    rest.as_object_mut().expect("an object").remove(key);
    let text = rest.to_string();
    let open = text.strip_suffix('}').expect("an object");
    let comma = if open.len() > 1 { "," } else { "" };
    format!("{open}{comma}{}:[{}]}}", Value::from(key), names.join(","))
}

/// The dashboard, every panel with its plugin's options and custom field config, and the queries,
/// against Grafana's own TypeScript types (@grafana/schema, the version docker-compose.yml
/// provisions into) under `tsc --strict`: object literals of those types, so that unknown and
/// misspelt fields, wrong value types and values outside Grafana's enums are errors. See
/// [`DASHBOARD_TYPES_TS`] for where the types are adapted to dashboard JSON, and why. Controls, each
/// with one such mistake, must be rejected.
#[test]
fn dashboard_passes_grafanas_schema_types() {
    let node =
        on_path("node").expect("node not found on PATH: install Node.js (Debian package nodejs)");
    let modules = npm_modules(&["@grafana/schema", "typescript"]);
    let dashboard = dashboard();

    // One declaration per line, so that tsc's errors name it by line number.
    let mut declarations = Vec::new();
    let names = declare_panels(items(&dashboard["panels"]), &mut declarations);
    assert_eq!(declarations.len(), all_panels(&dashboard).len());
    let declare_dashboard = |what: &str, name: &str, dashboard: &Value| Declaration {
        what: what.to_owned(),
        text: format!(
            "export const {name}: Dashboard = {};",
            literal_naming(dashboard, "panels", Some(&names))
        ),
    };
    declarations.push(declare_dashboard("the dashboard", "dashboard", &dashboard));
    let checked = declarations.len();

    // Controls, copies with one mistake each: their declaration, and what tsc's error must contain.
    let timeseries = all_panels(&dashboard)
        .into_iter()
        .find(|p| p["type"] == "timeseries")
        .expect("a timeseries panel")
        .clone();
    let table = all_panels(&dashboard)
        .into_iter()
        .find(|p| p["type"] == "table")
        .expect("a table panel")
        .clone();
    let mut controls: Vec<(Declaration, &str)> = Vec::new();
    let mut control_dashboard = |what: &'static str, change: &dyn Fn(&mut Value), expect| {
        let mut changed = dashboard.clone();
        change(&mut changed);
        let name = format!("control{}", controls.len());
        controls.push((declare_dashboard(what, &name, &changed), expect));
    };
    control_dashboard(
        "a misspelt top-level field (refreshh)",
        &|d| d["refreshh"] = "30s".into(),
        "'\"refreshh\"' does not exist",
    );
    control_dashboard(
        "a misspelt field of a query variable (defintion)",
        &|d| {
            let variable = d["templating"]["list"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|v| v["type"] == "query")
                .unwrap();
            let variable = variable.as_object_mut().unwrap();
            let definition = variable.remove("definition").unwrap();
            variable.insert("defintion".into(), definition);
        },
        "'\"defintion\"' does not exist",
    );
    control_dashboard(
        "graphTooltip outside DashboardCursorSync (5)",
        &|d| d["graphTooltip"] = 5.into(),
        "not assignable to type 'DashboardCursorSync",
    );
    let mut control_panel =
        |what: &'static str, panel: &Value, change: &dyn Fn(&mut Value), expect| {
            let mut changed = panel.clone();
            change(&mut changed);
            let name = format!("control{}", controls.len());
            let text = format!(
                "export const {name}: Panels[{}] = {changed};",
                changed["type"]
            );
            controls.push((
                Declaration {
                    what: what.to_owned(),
                    text,
                },
                expect,
            ));
        };
    control_panel(
        "a panel gridPos with a string w",
        &timeseries,
        &|p| p["gridPos"]["w"] = "12".into(),
        "Type 'string' is not assignable to type 'number'",
    );
    control_panel(
        "a state-timeline option on a timeseries panel (options.showValue)",
        &timeseries,
        &|p| p["options"]["showValue"] = "never".into(),
        "'\"showValue\"' does not exist",
    );
    control_panel(
        "a misspelt timeseries legend placement (bottomm)",
        &timeseries,
        &|p| p["options"]["legend"]["placement"] = "bottomm".into(),
        "'\"bottomm\"' is not assignable",
    );
    control_panel(
        "a misspelt timeseries custom field config (fillOpacityy)",
        &timeseries,
        &|p| p["fieldConfig"]["defaults"]["custom"]["fillOpacityy"] = 10.into(),
        "'\"fillOpacityy\"' does not exist",
    );
    control_panel(
        "a color mode outside FieldColorModeId (palette-classik)",
        &timeseries,
        &|p| p["fieldConfig"]["defaults"]["color"]["mode"] = "palette-classik".into(),
        "'\"palette-classik\"' is not assignable",
    );
    control_panel(
        "a misspelt Prometheus query field (legendFromat)",
        &timeseries,
        &|p| p["targets"][0]["legendFromat"] = "{{target}}".into(),
        "'\"legendFromat\"' does not exist",
    );
    control_panel(
        "a table footer `fields` string other than the \"\" Grafana saves",
        &table,
        &|p| p["options"]["footer"]["fields"] = "Up".into(),
        "'\"Up\"' is not assignable",
    );
    control_panel(
        "a misspelt table custom field config (algin)",
        &table,
        &|p| p["fieldConfig"]["defaults"]["custom"]["algin"] = "auto".into(),
        "'\"algin\"' does not exist",
    );
    control_panel(
        "a panel type without types (timeseriess)",
        &timeseries,
        &|p| p["type"] = "timeseriess".into(),
        "Property 'timeseriess' does not exist on type 'Panels'",
    );
    let preamble = DASHBOARD_TYPES_TS.lines().count();

    let mut ts = DASHBOARD_TYPES_TS.to_owned();
    for declaration in declarations.iter().chain(controls.iter().map(|(d, _)| d)) {
        ts.push_str(&declaration.text);
        ts.push('\n');
    }
    // No --skipLibCheck: the package's own declarations must resolve and check too, or a type that
    // failed to resolve could silently check nothing.
    let TscReport {
        passed,
        output,
        mut errors,
        unplaced,
    } = tsc(&node, &modules, &ts, false);
    // The dashboard first: a mistake in it is also in the controls, which are copies of it.
    let failures: Vec<String> = declarations
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            errors
                .remove(&(preamble + i))
                .map(|e| format!("{} does not type-check:\n{}", d.what, e.join("\n")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{DASHBOARD} against @grafana/schema's types:\n\n{}",
        failures.join("\n\n")
    );
    assert!(!passed, "tsc accepted every control:\n{output}");
    for (i, (control, expect)) in controls.iter().enumerate() {
        let found = errors.remove(&(preamble + checked + i)).unwrap_or_default();
        assert!(
            found.iter().any(|e| e.contains(expect)),
            "tsc did not reject the control with {} (expected an error containing {expect:?}); \
             its errors on that line: {found:#?}\n\nall of tsc's output:\n{output}",
            control.what
        );
    }
    assert!(
        errors.is_empty() && unplaced.is_empty(),
        "tsc errors outside the dashboard's declarations (the types themselves?):\n{output}"
    );
}

/// Names without a `target` label: they describe the exporter, not a target.
const EXPORTER_LEVEL: &[&str] = &["fanout_exporter_scrape_timeout_seconds"];

#[test]
fn dashboard_queries_follow_the_target_variable_and_rate_interval() {
    for query in dashboard_queries() {
        let QueryKind::Panel = query.kind else {
            continue;
        };
        let scan = scan_promql(&query.text).unwrap_or_else(|e| panic!("{}: {e}", query.place));
        assert!(!scan.selectors.is_empty(), "{}: no metric", query.place);
        for selector in &scan.selectors {
            if EXPORTER_LEVEL.contains(&selector.name.as_str()) {
                continue;
            }
            assert!(
                selector.matchers.contains(r#"target=~"$target""#),
                "{}: {} is not restricted to the selected targets",
                query.place,
                selector.name
            );
        }
        for range in &scan.ranges {
            assert_eq!(
                range, "$__rate_interval",
                "{}: ranges must be $__rate_interval",
                query.place
            );
        }
        for aggregation in &scan.aggregations {
            let arguments = scan_promql(&aggregation.arguments).unwrap();
            let exporter_level = arguments
                .selectors
                .iter()
                .all(|s| EXPORTER_LEVEL.contains(&s.name.as_str()));
            assert!(
                exporter_level || aggregation.keeps("target"),
                "{}: {} {:?} merges targets",
                query.place,
                aggregation.operator,
                aggregation.grouping
            );
        }
    }
}

/// Every dashboard query, Grafana variables replaced by values, parsed by Prometheus' own parser.
#[test]
fn dashboard_queries_parse_as_promql() {
    let mut rules = Vec::new();
    for (n, query) in dashboard_queries().into_iter().enumerate() {
        let expr = match query.kind {
            QueryKind::Panel => query.text.clone(),
            QueryKind::Variable => {
                let inner = query
                    .text
                    .strip_prefix("label_values(")
                    .and_then(|q| q.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{}: unexpected {}", query.place, query.text));
                split_last_argument(inner).0.to_owned()
            }
        };
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$target", ".+");
        assert!(
            !expr.contains('$'),
            "{}: unknown variable in {expr}",
            query.place
        );
        let mut rule = serde_yaml::Mapping::new();
        rule.insert("record".into(), format!("dashboard:query_{n}").into());
        rule.insert("expr".into(), expr.into());
        rules.push(serde_yaml::Value::Mapping(rule));
    }
    assert!(rules.len() > 20);
    let mut group = serde_yaml::Mapping::new();
    group.insert("name".into(), "dashboard".into());
    group.insert("rules".into(), serde_yaml::Value::Sequence(rules));
    let mut file = serde_yaml::Mapping::new();
    file.insert(
        "groups".into(),
        serde_yaml::Value::Sequence(vec![serde_yaml::Value::Mapping(group)]),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard.yml");
    std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
    let (ok, out) = run_promtool(&["check", "rules", path.to_str().unwrap()], dir.path());
    assert!(ok, "a dashboard query is not valid PromQL:\n{out}");
}

// ---------------------------------------------------------------------------------------------------
// Metric names

/// Each queried name is one the exporter emits: a literal name in its source, or a
/// `mysql_global_status_`/`mysql_global_variables_`/`mysql_slave_status_` name built from a variable or
/// column that the captured MariaDB outputs in collectors/src/mysql/testdata contain. The real
/// Prometheus test checks the same names against a live scrape.
#[test]
fn queried_names_come_from_the_exporter() {
    let names = queried_metric_names();
    for expected in [
        "mysql_up",
        "redis_up",
        "probe_success",
        "fanout_exporter_scrape_success",
        "fanout_exporter_scrape_duration_seconds",
    ] {
        assert!(names.contains(expected), "{expected} is not queried");
    }
    for generated in PROMETHEUS_GENERATED {
        assert!(
            names.contains(*generated),
            "{generated} is listed but unused"
        );
    }
    for (name, _) in CONDITIONAL_METRICS {
        assert!(names.contains(*name), "{name} is listed but unused");
    }

    let mut source = String::new();
    for dir in ["collectors/src", "src"] {
        collect_rust_sources(&repo_path(dir), &mut source);
    }
    assert!(source.len() > 100_000, "exporter source not found");
    let testdata = |file: &str| -> BTreeSet<String> {
        read(&format!("collectors/src/mysql/testdata/{file}"))
            .lines()
            .filter_map(|line| {
                // TSV `Name\tvalue` or \G output `   Name: value`.
                let key = line.split(['\t', ':']).next()?.trim();
                (!key.is_empty()).then(|| key.to_ascii_lowercase())
            })
            .collect()
    };
    let status = testdata("mariadb-10.11-global-status.tsv");
    let variables = testdata("mariadb-10.11-global-variables.tsv");
    let slave = testdata("mariadb-10.11-all-slaves-status.txt");

    let mut unknown = Vec::new();
    for name in &names {
        if PROMETHEUS_GENERATED.contains(&name.as_str()) {
            continue;
        }
        let literal = source.contains(&format!("\"{name}\""));
        let built = [
            ("mysql_global_status_", &status),
            ("mysql_global_variables_", &variables),
            ("mysql_slave_status_", &slave),
        ]
        .iter()
        .any(|(prefix, known)| name.strip_prefix(prefix).is_some_and(|v| known.contains(v)));
        if !(literal || built) {
            unknown.push(name.clone());
        }
    }
    assert!(
        unknown.is_empty(),
        "queried but not emitted by the exporter: {unknown:?}"
    );
}

fn collect_rust_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// PromQL scanner

/// What [`scan_promql`] finds in an expression.
#[derive(Debug, Default, PartialEq)]
struct Scan {
    /// Vector selectors, in order.
    selectors: Vec<Selector>,
    /// Contents of `[...]`: ranges and subquery ranges (`5m`, `30m:1m`, `$__rate_interval`).
    ranges: Vec<String>,
    /// `by`, `without`, `on`, `ignoring`, `group_left`, `group_right` with their label lists.
    groupings: Vec<Grouping>,
    /// Aggregation operators, in order of appearance.
    aggregations: Vec<Aggregation>,
}

/// A clause keyword (`by`, `without`, `on`, ...) and its label names.
type Grouping = (String, Vec<String>);

/// An aggregation: its operator, its `by`/`without` clause (before or after the arguments) and the
/// text of its arguments.
#[derive(Debug, PartialEq)]
struct Aggregation {
    operator: String,
    grouping: Option<Grouping>,
    arguments: String,
}

impl Aggregation {
    /// Whether it merges series (`sum`, `avg`, ...) rather than selects some (`topk`, `limitk`, ...).
    fn merges(&self) -> bool {
        !matches!(
            self.operator.as_str(),
            "topk" | "bottomk" | "limitk" | "limit_ratio"
        )
    }

    /// Whether series that differ in `label` stay apart.
    fn keeps(&self, label: &str) -> bool {
        if !self.merges() {
            return true;
        }
        match &self.grouping {
            Some((keyword, labels)) if keyword == "by" => labels.iter().any(|l| l == label),
            Some((_, labels)) => labels.iter().all(|l| l != label),
            None => false,
        }
    }
}

/// A vector selector: its metric name and the text between its braces (empty without braces).
#[derive(Debug, PartialEq)]
struct Selector {
    name: String,
    matchers: String,
}

/// Binary operators, modifiers and literals that look like identifiers (case-insensitive in PromQL).
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Aggregation operators: followed by `(` or by a grouping clause.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Clauses followed by a list of label names in parentheses (optional for the group modifiers).
const GROUPINGS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric selectors, ranges and grouping clauses of a PromQL expression, which may contain Grafana
/// variables (`$name`, `${name}`, `${name:format}`, `[[name]]`). Strings, label matchers, label lists,
/// function names, keywords, numbers and durations are never taken for metric names. Errors on what it
/// cannot read: an unterminated string, unbalanced brackets, a selector without a literal metric name.
fn scan_promql(expr: &str) -> Result<Scan, String> {
    let s: Vec<char> = expr.chars().collect();
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => i = skip_string(&s, i)?,
            '$' => i = skip_variable(&s, i)?,
            '{' => {
                let (body, end) = enclosed(&s, i, '{', '}')?;
                let name = matcher_name(&body)?
                    .ok_or_else(|| format!("selector {{{body}}} names no metric"))?;
                out.selectors.push(Selector {
                    name,
                    matchers: body,
                });
                i = end;
            }
            '[' => {
                let (body, end) = enclosed(&s, i, '[', ']')?;
                out.ranges.push(body.trim().to_owned());
                i = end;
            }
            '(' => {
                depth += 1;
                i += 1;
            }
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced ) at {i}"))?;
                i += 1;
            }
            '}' | ']' => return Err(format!("unbalanced {c} at {i}")),
            c if c.is_ascii_digit()
                || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i = skip_number(&s, i);
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '_' || s[i] == ':') {
                    i += 1;
                }
                let word: String = s[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let next = (i..s.len()).find(|&j| !s[j].is_whitespace());
                let next_is = |ch: char| next.is_some_and(|j| s[j] == ch);
                if GROUPINGS.contains(&lower.as_str()) {
                    if next_is('(') {
                        let (body, end) = enclosed(&s, next.unwrap_or(i), '(', ')')?;
                        out.groupings.push((lower, label_list(&body)?));
                        i = end;
                    } else if !lower.starts_with("group_") {
                        return Err(format!("`{word}` without a label list"));
                    }
                } else if AGGREGATIONS.contains(&lower.as_str()) {
                    out.aggregations.push(aggregation(&s, i, lower)?);
                } else if KEYWORDS.contains(&lower.as_str()) || next_is('(') {
                    // An operator, a literal, or a function call.
                } else {
                    let mut matchers = String::new();
                    if let Some(j) = next.filter(|&j| s[j] == '{') {
                        let (body, end) = enclosed(&s, j, '{', '}')?;
                        if matcher_name(&body)?.is_some() {
                            return Err(format!("{word}{{{body}}} names its metric twice"));
                        }
                        matchers = body;
                        i = end;
                    }
                    out.selectors.push(Selector {
                        name: word,
                        matchers,
                    });
                }
            }
            // Operators, commas, `@`.
            _ => i += 1,
        }
    }
    if depth != 0 {
        return Err("unbalanced (".to_owned());
    }
    Ok(out)
}

/// The aggregation whose operator ends at `i`. Only looks ahead: the caller scans its clause and
/// arguments as usual.
fn aggregation(s: &[char], i: usize, operator: String) -> Result<Aggregation, String> {
    let skip_whitespace = |mut j: usize| {
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // `by (...)` or `without (...)` at `j`, with the index after it.
    let clause = |j: usize| -> Result<Option<(Grouping, usize)>, String> {
        let end = (j..s.len())
            .find(|&k| !(s[k].is_ascii_alphanumeric() || s[k] == '_'))
            .unwrap_or(s.len());
        let word: String = s[j..end].iter().collect::<String>().to_ascii_lowercase();
        if word != "by" && word != "without" {
            return Ok(None);
        }
        let open = skip_whitespace(end);
        if s.get(open) != Some(&'(') {
            return Err(format!("`{word}` without a label list"));
        }
        let (body, after) = enclosed(s, open, '(', ')')?;
        Ok(Some(((word, label_list(&body)?), after)))
    };
    let mut j = skip_whitespace(i);
    let mut grouping = None;
    if let Some((found, after)) = clause(j)? {
        grouping = Some(found);
        j = skip_whitespace(after);
    }
    if s.get(j) != Some(&'(') {
        return Err(format!("{operator} without arguments"));
    }
    let (arguments, after) = enclosed(s, j, '(', ')')?;
    if grouping.is_none() {
        grouping = clause(skip_whitespace(after))?.map(|(found, _)| found);
    }
    Ok(Aggregation {
        operator,
        grouping,
        arguments,
    })
}

/// Index after the string literal opening at `i` (`"`, `'` with escapes; `` ` `` raw).
fn skip_string(s: &[char], i: usize) -> Result<usize, String> {
    let quote = s[i];
    let mut j = i + 1;
    while j < s.len() {
        if s[j] == '\\' && quote != '`' {
            j += 2;
        } else if s[j] == quote {
            return Ok(j + 1);
        } else {
            j += 1;
        }
    }
    Err(format!("unterminated string at {i}"))
}

/// Index after the Grafana variable at `i`: `$name`, `$__name` or `${name[:format]}`.
fn skip_variable(s: &[char], i: usize) -> Result<usize, String> {
    if s.get(i + 1) == Some(&'{') {
        return (i + 2..s.len())
            .find(|&j| s[j] == '}')
            .map(|j| j + 1)
            .ok_or_else(|| format!("unterminated ${{ at {i}"));
    }
    let mut j = i + 1;
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == '_') {
        j += 1;
    }
    if j == i + 1 {
        return Err(format!("lone $ at {i}"));
    }
    Ok(j)
}

/// Index after the number or duration at `i`: `42`, `.5`, `1e-3`, `0x1F`, `5m`, `1h30m`.
fn skip_number(s: &[char], mut i: usize) -> usize {
    let hex = s[i] == '0' && matches!(s.get(i + 1), Some('x' | 'X'));
    while i < s.len() {
        let c = s[i];
        let exponent_sign = (c == '+' || c == '-')
            && !hex
            && matches!(s[i - 1], 'e' | 'E')
            && s.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// The text between the `open` at `i` and its matching `close` (strings skipped), and the index
/// after `close`.
fn enclosed(s: &[char], i: usize, open: char, close: char) -> Result<(String, usize), String> {
    let mut depth = 0;
    let mut j = i;
    while j < s.len() {
        let c = s[j];
        if matches!(c, '"' | '\'' | '`') {
            j = skip_string(s, j)?;
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Ok((s[i + 1..j].iter().collect(), j + 1));
            }
        }
        j += 1;
    }
    Err(format!("unbalanced {open} at {i}"))
}

/// `text` split at commas outside string literals.
fn split_top_level(text: &str) -> Result<Vec<String>, String> {
    let s: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut j = 0;
    let mut depth = 0i32;
    while j < s.len() {
        match s[j] {
            '"' | '\'' | '`' => {
                j = skip_string(&s, j)?;
                continue;
            }
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..j].iter().collect::<String>().trim().to_owned());
                start = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    parts.push(s[start..].iter().collect::<String>().trim().to_owned());
    Ok(parts)
}

/// The value of a PromQL string literal (`"..."`, `'...'` with Go escapes, `` `...` `` raw).
pub fn unquote(literal: &str) -> Result<String, String> {
    let mut chars = literal.chars();
    let quote = chars.next().ok_or("empty string literal")?;
    let body = literal
        .get(1..literal.len().saturating_sub(1))
        .filter(|_| literal.len() >= 2 && literal.ends_with(quote))
        .ok_or_else(|| format!("bad string literal {literal}"))?;
    if quote == '`' {
        return Ok(body.to_owned());
    }
    let mut out = String::new();
    let mut escaped = false;
    for c in body.chars() {
        if escaped {
            out.push(match c {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            });
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The metric name given inside braces, if any: `{__name__="x"}` or, in Prometheus 3's quoted form,
/// `{"x"}`. A regular-expression or negative `__name__` matcher names no single metric.
fn matcher_name(body: &str) -> Result<Option<String>, String> {
    let mut name = None;
    for item in split_top_level(body)? {
        if item.is_empty() {
            continue;
        }
        let s: Vec<char> = item.chars().collect();
        let label_end = if matches!(s[0], '"' | '\'' | '`') {
            skip_string(&s, 0)?
        } else {
            s.iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                .unwrap_or(s.len())
        };
        let label: String = s[..label_end].iter().collect();
        let rest = s[label_end..].iter().collect::<String>();
        let rest = rest.trim_start();
        let found = if rest.is_empty() && label_end > 0 && matches!(s[0], '"' | '\'' | '`') {
            Some(unquote(&label)?)
        } else {
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .ok_or_else(|| format!("bad label matcher {item:?}"))?;
            let value = rest[op.len()..].trim();
            if !matches!(value.chars().next(), Some('"' | '\'' | '`'))
                || skip_string(&value.chars().collect::<Vec<_>>(), 0)? != value.chars().count()
            {
                return Err(format!("bad label matcher {item:?}"));
            }
            let label = if label.starts_with(['"', '\'', '`']) {
                unquote(&label)?
            } else {
                label
            };
            (label == "__name__" && op == "=")
                .then(|| unquote(value))
                .transpose()?
        };
        if let Some(found) = found {
            if name.is_some() {
                return Err(format!("two metric names in {{{body}}}"));
            }
            name = Some(found);
        }
    }
    Ok(name)
}

/// Label names of a `by (...)`-style list.
fn label_list(body: &str) -> Result<Vec<String>, String> {
    split_top_level(body)?
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with(['"', '\'', '`']) {
                unquote(&l)
            } else if l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(l)
            } else {
                Err(format!("bad label name {l:?}"))
            }
        })
        .collect()
}

/// `text` split at its last top-level comma: `("a, b", Some("c"))`, or `(text, None)`.
fn split_last_argument(text: &str) -> (&str, Option<&str>) {
    let parts = split_top_level(text).unwrap_or_default();
    if parts.len() < 2 {
        return (text.trim(), None);
    }
    let last = parts.last().map_or(0, String::len);
    let cut = text.trim_end().len() - last;
    let head = text[..cut].trim_end().trim_end_matches(',').trim();
    (head, Some(text.trim_end()[cut..].trim()))
}

/// Metric names of a Grafana Prometheus variable query: `label_values(<selector>, <label>)`,
/// `label_values(<label>)`, `label_names()` or `query_result(<expr>)`; any other form is an error.
fn variable_query_metrics(query: &str) -> Result<BTreeSet<String>, String> {
    let query = query.trim();
    let call = |name: &str| {
        query
            .strip_prefix(name)
            .and_then(|q| q.trim_start().strip_prefix('('))
            .and_then(|q| q.strip_suffix(')'))
    };
    if let Some(inner) = call("label_values") {
        return match split_last_argument(inner) {
            (selector, Some(_)) => scan_promql(selector).map(|s| names_of(&s)),
            (_, None) => Ok(BTreeSet::new()),
        };
    }
    if call("label_names").is_some() {
        return Ok(BTreeSet::new());
    }
    if let Some(inner) = call("query_result") {
        return scan_promql(inner).map(|s| names_of(&s));
    }
    Err(format!("unsupported variable query {query:?}"))
}

#[test]
fn scanner_finds_selectors_ranges_and_groupings() {
    let scan = scan_promql(
        r#"sum by (target, error) (rate(mysql_global_status_connection_errors_total{target=~"$target"}[$__rate_interval]))"#,
    )
    .unwrap();
    assert_eq!(
        scan,
        Scan {
            selectors: vec![Selector {
                name: "mysql_global_status_connection_errors_total".into(),
                matchers: r#"target=~"$target""#.into(),
            }],
            ranges: vec!["$__rate_interval".into()],
            groupings: vec![("by".into(), vec!["target".into(), "error".into()])],
            aggregations: vec![Aggregation {
                operator: "sum".into(),
                grouping: Some(("by".into(), vec!["target".into(), "error".into()])),
                arguments: r#"rate(mysql_global_status_connection_errors_total{target=~"$target"}[$__rate_interval])"#.into(),
            }],
        }
    );

    let scan = scan_promql(
        "fanout_exporter_scrape_success == 0\nunless ignoring (collector)\n(mysql_up == 0 or redis_up == 0 or probe_success == 0)",
    )
    .unwrap();
    assert_eq!(
        names_of(&scan),
        set(&[
            "fanout_exporter_scrape_success",
            "mysql_up",
            "redis_up",
            "probe_success"
        ])
    );
    assert_eq!(
        scan.groupings,
        [("ignoring".into(), vec!["collector".into()])]
    );
}

#[test]
fn scanner_finds_aggregations_and_their_clauses() {
    let scan = scan_promql(
        "sum(rate(a[5m])) by (target) + SUM BY (target) (b) + max(c) \
         + topk(5, avg without (pod, \"target\") (d)) + count_values(\"v\", e) without (x)",
    )
    .unwrap();
    let aggregation =
        |operator: &str, grouping: Option<(&str, &[&str])>, arguments: &str| Aggregation {
            operator: operator.into(),
            grouping: grouping
                .map(|(k, l)| (k.into(), l.iter().map(|x| (*x).to_owned()).collect())),
            arguments: arguments.into(),
        };
    assert_eq!(
        scan.aggregations,
        [
            aggregation("sum", Some(("by", &["target"])), "rate(a[5m])"),
            aggregation("sum", Some(("by", &["target"])), "b"),
            aggregation("max", None, "c"),
            aggregation("topk", None, "5, avg without (pod, \"target\") (d)"),
            aggregation("avg", Some(("without", &["pod", "target"])), "d"),
            aggregation("count_values", Some(("without", &["x"])), "\"v\", e"),
        ]
    );
    let keeps: Vec<bool> = scan
        .aggregations
        .iter()
        .map(|a| a.keeps("target"))
        .collect();
    assert_eq!(keeps, [true, true, false, true, false, true]);
    assert_eq!(names_of(&scan), set(&["a", "b", "c", "d", "e"]));
    assert!(scan_promql("sum by target (x)").is_err());
    assert!(scan_promql("sum + x").is_err());
}

#[test]
fn scanner_skips_strings_functions_keywords_and_numbers() {
    let names = |e: &str| names_of(&scan_promql(e).unwrap_or_else(|err| panic!("{e}: {err}")));
    // Strings with braces, quotes, metric-like words and `$1`.
    assert_eq!(
        names(
            r#"label_replace(up{job="a\"}b", x='{y}'}, "dst", "$1 rate(fake_total[5m])", "src", `(.*)\`)"#
        ),
        set(&["up"])
    );
    // Keywords in any case, `bool`, modifiers, `@ start()`, `atan2`.
    assert_eq!(
        names("a > BOOL 1 AND ON(job) b offset 5m OR c @ start() unless d @ 1609746000 atan2 e"),
        set(&["a", "b", "c", "d", "e"])
    );
    // Numbers, exponents, hex, durations, Inf and NaN.
    assert_eq!(
        names("x * 1e-3 + 0x1F - .5 + Inf - NaN + 2.5E+2 > y offset -1h30m"),
        set(&["x", "y"])
    );
    // Functions with a space before the parenthesis; a name with a space before its braces.
    let scan = scan_promql(r#"rate (foo [5m]) + bar {a="b"}"#).unwrap();
    assert_eq!(names_of(&scan), set(&["foo", "bar"]));
    assert_eq!(scan.selectors[1].matchers, r#"a="b""#);
    assert_eq!(scan.ranges, ["5m"]);
    // Aggregations with parameters and grouping before or after.
    assert_eq!(
        names(
            r#"count_values("version", build_info) + topk(5, sum(rate(q_total[5m])) by (le)) + histogram_quantile(0.9, sum without (pod) (rate(h_bucket[5m])))"#
        ),
        set(&["build_info", "q_total", "h_bucket"])
    );
    // group_left with and without a list, on().
    let scan = scan_promql("a * on() group_left b + c * on (x) group_left (v, \"w.z\") d").unwrap();
    assert_eq!(names_of(&scan), set(&["a", "b", "c", "d"]));
    assert_eq!(
        scan.groupings,
        [
            ("on".to_owned(), vec![]),
            ("on".to_owned(), vec!["x".to_owned()]),
            (
                "group_left".to_owned(),
                vec!["v".to_owned(), "w.z".to_owned()]
            ),
        ]
    );
    // Recording-rule names keep their colons; subquery ranges are ranges, not names.
    let scan = scan_promql("max_over_time(job:http_requests:rate5m[30m:1m])").unwrap();
    assert_eq!(names_of(&scan), set(&["job:http_requests:rate5m"]));
    assert_eq!(scan.ranges, ["30m:1m"]);
    // Comments.
    assert_eq!(names("a # plus b_metric{x=\"\n+ c"), set(&["a", "c"]));
    // Grafana variables in every form.
    let scan =
        scan_promql("sum(increase(w[${__range}])) > $threshold * ${factor:raw} + v[[[interval]]]")
            .unwrap();
    assert_eq!(names_of(&scan), set(&["w", "v"]));
    assert_eq!(scan.ranges, ["${__range}", "[[interval]]"]);
}

#[test]
fn scanner_reads_names_inside_braces() {
    let names = |e: &str| names_of(&scan_promql(e).unwrap_or_else(|err| panic!("{e}: {err}")));
    assert_eq!(
        names(
            r#"{__name__="quoted_name", job="x"} + {"utf8.name", a="b"} + {'__name__'='single'}"#
        ),
        set(&["quoted_name", "utf8.name", "single"])
    );
    // `__name__` as a value, or in a regex matcher after a name, is not a name.
    assert_eq!(names(r#"m{l="__name__", __name__!="x"}"#), set(&["m"]));
}

#[test]
fn scanner_rejects_what_it_cannot_read() {
    for bad in [
        r#"up{job="x}"#,
        "rate(up[5m]",
        "up)",
        "up]",
        "up{job=\"a\"",
        r#"{__name__=~"mysql_.*"}"#,
        r#"{job="x"}"#,
        r#"up{__name__="up"}"#,
        r#"{__name__="a", "b"}"#,
        "up{job}",
        "up{job=$x}",
        "sum by job (up)",
        "up * $",
        "up * ${x",
    ] {
        assert!(scan_promql(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn variable_queries() {
    assert_eq!(
        variable_query_metrics("label_values(fanout_exporter_scrape_success, target)").unwrap(),
        set(&["fanout_exporter_scrape_success"])
    );
    assert_eq!(
        variable_query_metrics(r#"label_values(mysql_up{job="a,b", x=~"$y"}, target)"#).unwrap(),
        set(&["mysql_up"])
    );
    assert_eq!(
        variable_query_metrics("label_values(target)").unwrap(),
        set(&[])
    );
    assert_eq!(variable_query_metrics("label_names()").unwrap(), set(&[]));
    assert_eq!(
        variable_query_metrics("query_result(topk(3, sum by (target) (redis_db_keys)))").unwrap(),
        set(&["redis_db_keys"])
    );
    assert!(variable_query_metrics("metrics(redis_.*)").is_err());
    assert!(variable_query_metrics("redis_up").is_err());
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------------
// JSON

/// The dashboard's JSON, refusing duplicate object keys at any depth: Grafana would silently take the
/// last one, so a hand-edited dashboard would not load as written.
fn parse_dashboard(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<UniqueKeys>(text).map(|v| v.0)
}

/// A [`Value`] whose objects, at every depth, have no key twice.
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The array `value` is, or nothing.
fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

#[test]
fn dashboard_json_refuses_duplicate_keys() {
    // Same keys in different objects are fine, and the value is what serde_json reads.
    let text = r#" {"a": [1, -2.5e3, true, null, {"a": "x"}, {"a": {}}], "b": {"a": 18446744073709551615}} "#;
    assert_eq!(
        parse_dashboard(text).unwrap(),
        serde_json::from_str::<Value>(text).unwrap()
    );
    for bad in [
        r#"{"a": 1, "a": 2}"#,
        r#"{"a": 1, "b": 2, "a": 1}"#,
        r#"{"panels": [{"id": 1}, {"id": 2, "title": "x", "id": 3}]}"#,
        r#"{"o": {"p": {"q": null, "q": null}}}"#,
        // The same key written with an escape is the same key.
        r#"{"id": 1, "\u0069d": 2}"#,
    ] {
        let error = parse_dashboard(bad).expect_err(bad).to_string();
        assert!(
            error.contains("duplicate key") && error.contains("line 1 column"),
            "{bad}: {error}"
        );
    }
    // Still strict JSON.
    assert!(parse_dashboard(r#"{"a": 1,}"#).is_err());
}
