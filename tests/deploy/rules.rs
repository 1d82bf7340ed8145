//! deploy/prometheus and deploy/grafana as shipped: promtool on the Prometheus configuration (which
//! resolves its rule files), on the alert rules and on their unit tests (which must fail when a rule is
//! broken); the Grafana provisioning, the dashboard's structure, and the dashboard against Grafana's own
//! TypeScript types (the npm package @grafana/schema, through `tsc`: unknown fields, value types,
//! enums, each panel's plugin options); and every metric name the dashboard and the rules query, read
//! from their syntax trees (promql-parser, [`promql`]) and checked against the exporter's source.
//!
//! This module owns what its topics share: the shipped files' paths, the rule and rule-test types,
//! the dashboard's panels and queries. The checks are in [`alerts`] (prometheus.yml, the rules and
//! their unit tests), [`dashboard`] (provisioning, structure, queries, metric names) and
//! [`grafana_types`] (Grafana's TypeScript types).
//!
//! [`queried_metric_names`] is also what the real-Prometheus test (`prometheus.rs`) checks against what
//! a real Prometheus ingested from the exporter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, de};
use serde_json::Value;

use crate::common::run;
use crate::support::promtool;

mod alerts;
mod dashboard;
mod grafana_types;
pub mod promql;

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
        let scan = promql::scan(&rule.expr)
            .unwrap_or_else(|e| panic!("{RULES}: rule {}: {e}", rule.name()));
        names.extend(scan.names());
    }
    for query in dashboard_queries() {
        let found = promql::substitute_variables(&query.text).and_then(|text| match query.kind {
            QueryKind::Panel => promql::scan(&text).map(|s| s.names()),
            QueryKind::Variable => promql::variable_query_metrics(&text),
        });
        names.extend(found.unwrap_or_else(|e| panic!("{DASHBOARD}: {}: {e}", query.place)));
    }
    names
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
