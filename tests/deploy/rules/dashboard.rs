//! deploy/grafana as shipped: the provisioning matches the stack, the dashboard is well formed, its
//! queries follow `$target` and `$__rate_interval` and parse as PromQL, and every metric name the
//! dashboard and the rules query is one the exporter emits.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{
    CONDITIONAL_METRICS, DASHBOARD_PROVIDERS, DATASOURCE_VARIABLE, DATASOURCES, PROMETHEUS_CONFIG,
    PROMETHEUS_GENERATED, QueryKind, all_panels, dashboard, dashboard_queries, items,
    parse_dashboard, promql, queried_metric_names, read, repo_path, run_promtool, yaml,
};
use crate::common::duration;

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

/// Names without a `target` label: they describe the exporter, not a target.
const EXPORTER_LEVEL: &[&str] = &["fanout_exporter_scrape_timeout_seconds"];

/// What is wrong with one panel query (Grafana variables in it): a selector of a per-target name not
/// restricted to `$target`, a range other than `$__rate_interval`, an aggregation that merges
/// targets. A query that is not PromQL is an error.
fn panel_query_problems(query: &str) -> Result<Vec<String>, String> {
    let scan = promql::scan(&promql::substitute_variables(query)?)?;
    let rate_interval = duration(promql::RATE_INTERVAL);
    let mut problems = Vec::new();
    if scan.selectors.is_empty() {
        problems.push("no metric".to_owned());
    }
    for selector in &scan.selectors {
        if !EXPORTER_LEVEL.contains(&selector.name.as_str()) && !selector.follows_target_variable()
        {
            problems.push(format!(
                "{} is not restricted to the selected targets (target=~\"$target\")",
                selector.name
            ));
        }
    }
    for range in &scan.ranges {
        if *range != rate_interval {
            problems.push(format!("range {range:?}: ranges must be $__rate_interval"));
        }
    }
    for aggregation in &scan.aggregations {
        let exporter_level = aggregation
            .names
            .iter()
            .all(|n| EXPORTER_LEVEL.contains(&n.as_str()));
        if !(exporter_level || aggregation.keeps("target")) {
            problems.push(format!(
                "{} {:?} merges targets",
                aggregation.operator, aggregation.grouping
            ));
        }
    }
    Ok(problems)
}

#[test]
fn dashboard_queries_follow_the_target_variable_and_rate_interval() {
    let mut checked = 0;
    for query in dashboard_queries() {
        let QueryKind::Panel = query.kind else {
            continue;
        };
        let problems =
            panel_query_problems(&query.text).unwrap_or_else(|e| panic!("{}: {e}", query.place));
        assert!(problems.is_empty(), "{}: {problems:?}", query.place);
        checked += 1;
    }
    assert!(checked > 20, "only {checked} panel queries");
    // Controls: each breaks one rule and must be caught.
    for bad in [
        r#"rate(x{target=~".+"}[$__rate_interval])"#,
        r#"x{target="$target"}"#,
        r#"rate(x{target=~"$target"}[5m])"#,
        r#"max_over_time(x{target=~"$target"}[$__rate_interval:1m])"#,
        r#"sum(rate(x{target=~"$target"}[$__rate_interval]))"#,
        r#"sum without (target) (x{target=~"$target"})"#,
        r#"x{target=~"$target"} / y"#,
    ] {
        let problems = panel_query_problems(bad).unwrap();
        assert!(!problems.is_empty(), "accepted {bad}");
    }
    assert_eq!(
        panel_query_problems("max(fanout_exporter_scrape_timeout_seconds)").unwrap(),
        Vec::<String>::new(),
        "an exporter-level name needs no target"
    );
}

/// Every dashboard query, Grafana variables replaced by their stand-ins, parsed by Prometheus' own
/// parser (promtool) as the expression of a recording rule.
#[test]
fn dashboard_queries_parse_as_promql() {
    let mut rules = Vec::new();
    for (n, query) in dashboard_queries().into_iter().enumerate() {
        let expr = match query.kind {
            QueryKind::Panel => query.text.as_str(),
            QueryKind::Variable => promql::variable_query_selector(&query.text)
                .unwrap_or_else(|| panic!("{}: unexpected {}", query.place, query.text)),
        };
        let expr =
            promql::substitute_variables(expr).unwrap_or_else(|e| panic!("{}: {e}", query.place));
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
