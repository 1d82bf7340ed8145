//! Reading the PromQL of the alert rules and the dashboard: Grafana's template variables replaced by
//! stand-in values ([`substitute_variables`]), then the expression parsed by the promql-parser crate
//! (a port of Prometheus' own grammar) and its syntax tree walked for what the checks look at
//! ([`scan`]): the metric selectors, the ranges, the aggregations and the vector matchings.
//! Whether an expression is valid PromQL is promtool's word (the rule and dashboard checks run it);
//! this module only reads what promtool does not report.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr, LabelModifier};
use promql_parser::util::{ExprVisitor, walk_expr};
use regex::Regex;

/// What `$__rate_interval` becomes: a valid range that no query writes by hand, so that a range
/// equal to it came from the variable.
pub const RATE_INTERVAL: &str = "4m3s21ms";
/// What `$target` becomes: a valid regular expression (the variable is multi-value with an All of
/// `.+`, so Grafana always substitutes a regex) that no query writes by hand.
pub const TARGET: &str = "grafana_target_variable";

/// The dashboard's variables and their stand-ins; any other variable in a query is an error.
const VARIABLES: &[(&str, &str)] = &[("__rate_interval", RATE_INTERVAL), ("target", TARGET)];

/// `query` with its Grafana variables (`$name`, `${name}`, `${name:format}`, `[[name]]`) replaced by
/// their stand-ins, which makes it PromQL. Names made of digits only are left alone: they are the
/// `$1` group references of `label_replace`, which Grafana does not touch either.
pub fn substitute_variables(query: &str) -> Result<String, String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)").unwrap()
    });
    let mut unknown = Vec::new();
    let replaced = re.replace_all(query, |captures: &regex::Captures| {
        let name = (1..=3)
            .find_map(|i| captures.get(i))
            .map_or("", |m| m.as_str());
        if name.bytes().all(|b| b.is_ascii_digit()) {
            return captures[0].to_owned();
        }
        VARIABLES
            .iter()
            .find(|(known, _)| *known == name)
            .map_or_else(
                || {
                    unknown.push(captures[0].to_owned());
                    String::new()
                },
                |(_, value)| (*value).to_owned(),
            )
    });
    if !unknown.is_empty() {
        return Err(format!("unknown Grafana variables {unknown:?} in {query}"));
    }
    if replaced.contains("${") {
        return Err(format!("unterminated ${{ in {query}"));
    }
    Ok(replaced.into_owned())
}

/// What [`scan`] finds in an expression.
#[derive(Debug, Default)]
pub struct Scan {
    /// Vector selectors (those of range selectors included), in order.
    pub selectors: Vec<Selector>,
    /// Ranges of range selectors and subqueries, and subqueries' steps.
    pub ranges: Vec<Duration>,
    /// Aggregations, outermost first.
    pub aggregations: Vec<Aggregation>,
    /// The `on (...)` (include) and `ignoring (...)` (exclude) lists of binary operators.
    pub matchings: Vec<LabelModifier>,
}

impl Scan {
    /// The metric names the expression selects.
    pub fn names(&self) -> BTreeSet<String> {
        self.selectors.iter().map(|s| s.name.clone()).collect()
    }
}

/// A vector selector: the one metric it names and all its label matchers.
#[derive(Debug)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// Whether it restricts `target` to what the dashboard's multi-value variable `$target` selects.
    pub fn follows_target_variable(&self) -> bool {
        self.matchers
            .iter()
            .any(|m| m.name == "target" && matches!(m.op, MatchOp::Re(_)) && m.value == TARGET)
    }
}

/// An aggregation: its operator, its `by` (include) or `without` (exclude) clause, and the metric
/// names of its arguments.
#[derive(Debug)]
pub struct Aggregation {
    pub operator: String,
    pub grouping: Option<LabelModifier>,
    pub names: BTreeSet<String>,
}

impl Aggregation {
    /// Whether series that differ in `label` stay apart. `topk`, `bottomk`, `limitk` and
    /// `limit_ratio` select series without merging any.
    pub fn keeps(&self, label: &str) -> bool {
        if matches!(
            self.operator.as_str(),
            "topk" | "bottomk" | "limitk" | "limit_ratio"
        ) {
            return true;
        }
        match &self.grouping {
            Some(LabelModifier::Include(labels)) => labels.labels.iter().any(|l| l == label),
            Some(LabelModifier::Exclude(labels)) => labels.labels.iter().all(|l| l != label),
            None => false,
        }
    }
}

/// Parse `expr` (PromQL, no Grafana variables left) and collect its [`Scan`]. Errors where
/// promql-parser does, and on a selector that names no single metric (`{job="x"}`,
/// `{__name__=~"mysql_.*"}`) or uses `or` between matcher sets: the metric-name checks could not say
/// what it selects.
pub fn scan(expr: &str) -> Result<Scan, String> {
    let ast = parser::parse(expr).map_err(|e| format!("{expr}: {e}"))?;
    scan_ast(&ast)
}

fn scan_ast(ast: &Expr) -> Result<Scan, String> {
    let mut collector = Collector(Scan::default());
    walk_expr(&mut collector, ast)?;
    Ok(collector.0)
}

struct Collector(Scan);

impl ExprVisitor for Collector {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        match expr {
            Expr::VectorSelector(vs) => self.0.selectors.push(selector(vs)?),
            Expr::MatrixSelector(ms) => {
                self.0.selectors.push(selector(&ms.vs)?);
                self.0.ranges.push(ms.range);
            }
            Expr::Subquery(sq) => {
                self.0.ranges.push(sq.range);
                self.0.ranges.extend(sq.step);
            }
            Expr::Aggregate(aggregate) => {
                let mut names = scan_ast(&aggregate.expr)?.names();
                if let Some(param) = &aggregate.param {
                    names.extend(scan_ast(param)?.names());
                }
                self.0.aggregations.push(Aggregation {
                    operator: aggregate.op.to_string(),
                    grouping: aggregate.modifier.clone(),
                    names,
                });
            }
            Expr::Binary(binary) => {
                if let Some(matching) = binary.modifier.as_ref().and_then(|m| m.matching.clone()) {
                    self.0.matchings.push(matching);
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

fn selector(vs: &parser::VectorSelector) -> Result<Selector, String> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(format!(
            "{vs}: `or` between matcher sets is not understood here"
        ));
    }
    let named: Vec<&Matcher> = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
        .collect();
    let name = match (&vs.name, named.as_slice()) {
        (Some(name), []) => name.clone(),
        (None, [matcher]) => matcher.value.clone(),
        _ => return Err(format!("{vs} does not name one metric")),
    };
    Ok(Selector {
        name,
        matchers: vs.matchers.matchers.clone(),
    })
}

/// Metric names of a Grafana Prometheus variable query (variables substituted):
/// `label_values(<selector>, <label>)`, `label_values(<label>)`, `label_names()` or
/// `query_result(<expr>)`; any other form is an error. A label name has no comma, so the last comma
/// of `label_values` separates its two arguments.
pub fn variable_query_metrics(query: &str) -> Result<BTreeSet<String>, String> {
    let query = query.trim();
    let call = |name: &str| {
        query
            .strip_prefix(name)
            .and_then(|q| q.trim_start().strip_prefix('('))
            .and_then(|q| q.strip_suffix(')'))
    };
    let label_name = |text: &str| {
        let text = text.trim();
        !text.is_empty()
            && !text.starts_with(|c: char| c.is_ascii_digit())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(inner) = call("label_values") {
        return match inner.rsplit_once(',') {
            Some((selector, label)) if label_name(label) => Ok(scan(selector)?.names()),
            None if label_name(inner) => Ok(BTreeSet::new()),
            _ => Err(format!("unreadable label_values query {query:?}")),
        };
    }
    if call("label_names").is_some_and(|inner| inner.trim().is_empty()) {
        return Ok(BTreeSet::new());
    }
    if let Some(inner) = call("query_result") {
        return Ok(scan(inner)?.names());
    }
    Err(format!("unsupported variable query {query:?}"))
}

/// The selector expression of a `label_values(<selector>, <label>)` variable query, for promtool.
pub fn variable_query_selector(query: &str) -> Option<&str> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    Some(
        inner
            .rsplit_once(',')
            .map_or(inner, |(selector, _)| selector)
            .trim(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn grafana_variables_become_their_stand_ins() {
        assert_eq!(
            substitute_variables(r#"rate(x{target=~"$target"}[$__rate_interval])"#).unwrap(),
            format!(r#"rate(x{{target=~"{TARGET}"}}[{RATE_INTERVAL}])"#)
        );
        assert_eq!(
            substitute_variables(
                "y[${__rate_interval}] + z[[[__rate_interval]]] + w{t=~\"${target:regex}\"}"
            )
            .unwrap(),
            format!("y[{RATE_INTERVAL}] + z[{RATE_INTERVAL}] + w{{t=~\"{TARGET}\"}}")
        );
        // label_replace's group references are not variables.
        assert_eq!(
            substitute_variables(r#"label_replace(up, "a", "$1", "b", "(.*)")"#).unwrap(),
            r#"label_replace(up, "a", "$1", "b", "(.*)")"#
        );
        for unknown in [
            "up[$__range]",
            "up > ${threshold}",
            "up[[[interval]]]",
            "up * ${x",
        ] {
            assert!(substitute_variables(unknown).is_err(), "accepted {unknown}");
        }
        // The stand-ins are what the checks take them for.
        assert_eq!(
            promql_parser::util::parse_duration(RATE_INTERVAL).unwrap(),
            Duration::from_millis(243_021)
        );
        assert!(scan(&format!("up[{RATE_INTERVAL}]")).is_ok());
    }

    #[test]
    fn scan_finds_selectors_ranges_aggregations_and_matchings() {
        let found = scan(&substitute_variables(
            r#"sum by (target, error) (rate(mysql_global_status_connection_errors_total{target=~"$target"}[$__rate_interval]))"#,
        ).unwrap())
        .unwrap();
        assert_eq!(
            found.names(),
            set(&["mysql_global_status_connection_errors_total"])
        );
        assert!(found.selectors[0].follows_target_variable());
        assert_eq!(
            found.ranges,
            [promql_parser::util::parse_duration(RATE_INTERVAL).unwrap()]
        );
        assert_eq!(found.aggregations.len(), 1);
        assert!(found.aggregations[0].keeps("target") && !found.aggregations[0].keeps("instance"));

        // Names inside braces, in every spelling Prometheus accepts.
        let found =
            scan(r#"{__name__="quoted_name", job="x"} + {"utf8.name", a="b"} + m{l="__name__"}"#)
                .unwrap();
        assert_eq!(found.names(), set(&["quoted_name", "utf8.name", "m"]));
        assert!(!found.selectors[0].follows_target_variable());
        let hand_written =
            scan(r#"x{target=~".+"} + y{target="grafana_target_variable"}"#).unwrap();
        assert!(
            hand_written
                .selectors
                .iter()
                .all(|s| !s.follows_target_variable())
        );

        // Aggregations with the clause before or after, and the ones that merge nothing.
        let found = scan(
            "sum(rate(a[5m])) by (target) + max(c) + topk(5, avg without (pod, target) (d)) \
             + count_values(\"v\", e) without (x)",
        )
        .unwrap();
        let summary: Vec<(&str, bool)> = found
            .aggregations
            .iter()
            .map(|a| (a.operator.as_str(), a.keeps("target")))
            .collect();
        assert_eq!(
            summary,
            [
                ("sum", true),
                ("max", false),
                ("topk", true),
                ("avg", false),
                ("count_values", true)
            ]
        );
        assert_eq!(found.aggregations[2].names, set(&["d"]));
        assert_eq!(found.names(), set(&["a", "c", "d", "e"]));

        // Vector matching; subquery ranges and steps; strings and functions are not names.
        let found = scan(
            "a unless ignoring (collector) b + on (x) group_left (v) c \
             + max_over_time(job:rate5m[30m:1m]) + label_replace(up, \"dst\", \"fake_total\", \"src\", \"(.*)\")",
        )
        .unwrap();
        assert_eq!(found.names(), set(&["a", "b", "c", "job:rate5m", "up"]));
        assert_eq!(
            found.matchings,
            [
                LabelModifier::exclude(vec!["collector"]),
                LabelModifier::include(vec!["x"])
            ]
        );
        assert_eq!(
            found.ranges,
            [Duration::from_secs(1800), Duration::from_secs(60)]
        );
    }

    #[test]
    fn scan_rejects_what_names_no_single_metric() {
        for bad in [
            r#"{__name__=~"mysql_.*"}"#,
            r#"{job="x"}"#,
            r#"up{__name__="up"}"#,
            r#"{__name__="a", "b"}"#,
            r#"{__name__="a" or __name__="b"}"#,
            "rate(up[5m]",
            "sum by job (up)",
        ] {
            assert!(scan(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn variable_queries() {
        assert_eq!(
            variable_query_metrics("label_values(fanout_exporter_scrape_success, target)").unwrap(),
            set(&["fanout_exporter_scrape_success"])
        );
        assert_eq!(
            variable_query_metrics(r#"label_values(mysql_up{job="a,b", x=~"y"}, target)"#).unwrap(),
            set(&["mysql_up"])
        );
        assert_eq!(
            variable_query_metrics("label_values(target)").unwrap(),
            set(&[])
        );
        assert_eq!(variable_query_metrics("label_names()").unwrap(), set(&[]));
        assert_eq!(
            variable_query_metrics("query_result(topk(3, sum by (target) (redis_db_keys)))")
                .unwrap(),
            set(&["redis_db_keys"])
        );
        assert!(variable_query_metrics("metrics(redis_.*)").is_err());
        assert!(variable_query_metrics("redis_up").is_err());
        assert!(variable_query_metrics(r#"label_values(mysql_up{job="a,b"})"#).is_err());
        assert_eq!(
            variable_query_selector("label_values(mysql_up{job=\"a,b\"}, target)"),
            Some("mysql_up{job=\"a,b\"}")
        );
    }
}
