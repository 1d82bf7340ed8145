//! Custom queries in sql_exporter's model.
//!
//! A query runs once per scrape (or once per `min_interval`) and each of its metrics turns every row
//! into samples: the `key_labels` columns become labels, each `values` column one sample, named by
//! `value_label` when there are several. Values arrive as text (the text protocol), so the rules for
//! what counts as a number live here, not in the driver.
//!
//! Definition errors are caught once, at startup ([`QuerySettings::validate`]); what can only go wrong
//! at run time (a column the query no longer returns, rows that collide) fails the query's
//! `mysql_exporter_collector_success{collector="query.<name>"}` instead of emitting half a metric.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::Rows;
use crate::family::{
    MetricType, RESERVED_LABELS, is_valid_label_name, is_valid_metric_name, is_valid_name,
};
use crate::{Families, SettingsError};

/// One metric made from a custom query's rows.
#[derive(Debug, Clone)]
pub struct QueryMetric {
    /// Metric name.
    pub metric: String,
    /// Counter or gauge.
    pub kind: MetricType,
    /// HELP text.
    pub help: String,
    /// Columns whose values become labels of the same name.
    pub key_labels: Vec<String>,
    /// Columns holding values; more than one needs `value_label`.
    pub values: Vec<String>,
    /// Label that receives the name of the value column.
    pub value_label: Option<String>,
    /// Fixed labels added to every sample.
    pub static_labels: BTreeMap<String, String>,
}

/// One custom query and the metrics made from its rows.
#[derive(Debug, Clone)]
pub struct QuerySettings {
    /// Name in `mysql_exporter_collector_success{collector="query.<name>"}`.
    pub name: String,
    /// The SQL, run as is over the text protocol.
    pub query: String,
    /// Cap on this query's run time, within the scrape deadline.
    pub timeout: Option<Duration>,
    /// Run at most this often; scrapes in between serve the last result.
    pub min_interval: Duration,
    /// Metrics made from the rows.
    pub metrics: Vec<QueryMetric>,
}

/// Names owned by the exporter's own families; a custom family with one of them would merge into (and
/// corrupt) `mysql_up` or the self metrics that report on the custom query itself.
const RESERVED_METRIC_NAMES: [&str; 1] = ["mysql_up"];
const RESERVED_METRIC_PREFIXES: [&str; 2] = ["mysql_exporter_", "fanout_exporter_"];

impl QuerySettings {
    /// Check the definition; `index` is the query's position, for the error's field path.
    pub(crate) fn validate(&self, index: usize) -> Result<(), SettingsError> {
        let at = |field: &str| format!("queries.{index}.{field}");
        if !is_valid_name(&self.name) {
            return Err(SettingsError::new(
                at("name"),
                format!(
                    "invalid query name {:?}: expected [A-Za-z0-9_.-]+",
                    self.name
                ),
            ));
        }
        if self.query.trim().is_empty() {
            return Err(SettingsError::new(at("query"), "the query is empty"));
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(SettingsError::new(
                at("timeout"),
                "must be more than 0 (leave it out to use the target's statement timeout)",
            ));
        }
        if self.metrics.is_empty() {
            return Err(SettingsError::new(
                at("metrics"),
                "a query needs at least one metric",
            ));
        }
        let mut names = HashSet::new();
        for (m, metric) in self.metrics.iter().enumerate() {
            let at = |field: &str| format!("queries.{index}.metrics.{m}.{field}");
            if !names.insert(metric.metric.as_str()) {
                return Err(SettingsError::new(
                    at("metric"),
                    format!("metric {:?} is defined twice in this query", metric.metric),
                ));
            }
            metric.validate(&at)?;
        }
        Ok(())
    }
}

impl QueryMetric {
    /// Check one metric; `at` turns a field name into its full path.
    fn validate(&self, at: &dyn Fn(&str) -> String) -> Result<(), SettingsError> {
        if !is_valid_metric_name(&self.metric) {
            return Err(SettingsError::new(
                at("metric"),
                format!(
                    "invalid metric name {:?}: expected [a-zA-Z_][a-zA-Z0-9_]*",
                    self.metric
                ),
            ));
        }
        if RESERVED_METRIC_NAMES.contains(&self.metric.as_str())
            || RESERVED_METRIC_PREFIXES
                .iter()
                .any(|p| self.metric.starts_with(p))
        {
            return Err(SettingsError::new(
                at("metric"),
                format!(
                    "{:?} is reserved for the exporter's own metrics",
                    self.metric
                ),
            ));
        }
        if self.help.trim().is_empty() {
            return Err(SettingsError::new(at("help"), "the help text is empty"));
        }
        if self.values.is_empty() {
            return Err(SettingsError::new(
                at("values"),
                "a metric needs at least one value column",
            ));
        }
        for (v, column) in self.values.iter().enumerate() {
            if column.is_empty() {
                return Err(SettingsError::new(
                    at(&format!("values.{v}")),
                    "empty column name",
                ));
            }
            if self.values[..v]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(column))
            {
                return Err(SettingsError::new(
                    at(&format!("values.{v}")),
                    format!("column {column:?} is listed twice"),
                ));
            }
        }
        if self.values.len() > 1 && self.value_label.is_none() {
            return Err(SettingsError::new(
                at("value_label"),
                "more than one value column needs a value_label to tell their samples apart",
            ));
        }
        if let Some(label) = &self.value_label {
            check_label_name(label).map_err(|why| SettingsError::new(at("value_label"), why))?;
        }
        for (k, label) in self.key_labels.iter().enumerate() {
            let field = at(&format!("key_labels.{k}"));
            check_label_name(label).map_err(|why| SettingsError::new(field.clone(), why))?;
            if self.key_labels[..k].contains(label) {
                return Err(SettingsError::new(
                    field,
                    format!("label {label:?} is listed twice"),
                ));
            }
            if self.value_label.as_deref() == Some(label) {
                return Err(SettingsError::new(
                    field,
                    format!("label {label:?} is also the value_label"),
                ));
            }
            // Columns are looked up ignoring case, so `State` and `state` are the same column.
            if self.values.iter().any(|v| v.eq_ignore_ascii_case(label)) {
                return Err(SettingsError::new(
                    field,
                    format!("column {label:?} cannot be both a key label and a value"),
                ));
            }
        }
        for name in self.static_labels.keys() {
            // A key with a dot would be split into two path segments; point at the map instead.
            let field = if name.contains('.') || name.is_empty() {
                at("static_labels")
            } else {
                at(&format!("static_labels.{name}"))
            };
            check_label_name(name).map_err(|why| SettingsError::new(field.clone(), why))?;
            if self.key_labels.contains(name) {
                return Err(SettingsError::new(
                    field,
                    format!("label {name:?} is also a key label"),
                ));
            }
            if self.value_label.as_deref() == Some(name.as_str()) {
                return Err(SettingsError::new(
                    field,
                    format!("label {name:?} is also the value_label"),
                ));
            }
        }
        Ok(())
    }
}

/// Why `name` cannot be a label of a custom metric, if it cannot.
fn check_label_name(name: &str) -> Result<(), String> {
    if name.starts_with("__") {
        return Err(format!(
            "label {name:?}: names starting with __ are reserved for Prometheus"
        ));
    }
    if !is_valid_label_name(name) {
        return Err(format!(
            "invalid label name {name:?}: expected [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    if RESERVED_LABELS.contains(&name) {
        return Err(format!(
            "label {name:?} is reserved (the exporter or Prometheus sets it)"
        ));
    }
    Ok(())
}

/// One sample of a custom metric, borrowing its label names from the settings and its values from the
/// rows.
type Sample<'a> = (Vec<(&'a str, &'a str)>, f64);

/// Add the metrics of `query` made from `rows` to `out`.
///
/// All metrics are computed before any is added, so on `Err` `out` is left as it was: a query whose
/// result does not fit its definition reports failure rather than a partial picture.
pub(crate) fn families(
    query: &QuerySettings,
    rows: &Rows,
    out: &mut Families,
) -> Result<(), String> {
    let mut all = Vec::with_capacity(query.metrics.len());
    for metric in &query.metrics {
        all.push((metric, samples(query, metric, rows)?));
    }
    let note = cache_note(query.min_interval);
    for (metric, samples) in all {
        if samples.is_empty() {
            continue;
        }
        let help = format!("{}{note}", metric.help);
        let family = out.of_type(metric.kind, &metric.metric, &help);
        for (labels, value) in samples {
            family.set(&labels, value);
        }
    }
    Ok(())
}

/// What a metric dropped from the rows, logged once per metric and scrape instead of once per row, so
/// a large result with a bad column does not flood the debug log.
#[derive(Default)]
struct Skipped<'a> {
    null: usize,
    non_numeric: usize,
    negative: usize,
    /// The first non-numeric or negative value and its column, as an example.
    example: Option<(&'a str, &'a str)>,
}

/// The samples of `metric`, or why the rows do not fit it.
fn samples<'a>(
    query: &QuerySettings,
    metric: &'a QueryMetric,
    rows: &'a Rows,
) -> Result<Vec<Sample<'a>>, String> {
    // The driver reports no columns for an empty result; nothing to check and nothing to emit.
    if rows.rows.is_empty() && rows.columns.is_empty() {
        return Ok(Vec::new());
    }
    let missing: Vec<&str> = metric
        .key_labels
        .iter()
        .chain(&metric.values)
        .filter(|c| rows.column(c).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "metric {}: column{} {} not in the result; it has: {}",
            metric.metric,
            if missing.len() == 1 { "" } else { "s" },
            quoted_list(&missing),
            quoted_list(&rows.columns),
        ));
    }
    let keys: Vec<(&str, usize)> = metric
        .key_labels
        .iter()
        .filter_map(|l| Some((l.as_str(), rows.column(l)?)))
        .collect();
    let values: Vec<(&str, usize)> = metric
        .values
        .iter()
        .filter_map(|c| Some((c.as_str(), rows.column(c)?)))
        .collect();

    let mut seen: HashSet<Vec<&str>> = HashSet::with_capacity(rows.rows.len());
    let mut out = Vec::with_capacity(rows.rows.len() * values.len());
    let mut skipped = Skipped::default();
    for row in &rows.rows {
        let cell = |i: usize| row.get(i).and_then(Option::as_deref);
        // sql_exporter turns a NULL key into an empty label value; so do we, so dashboards port.
        let key_values: Vec<&str> = keys.iter().map(|&(_, i)| cell(i).unwrap_or("")).collect();
        // Checked on the keys, not the samples: two rows for one label set mean the query does not
        // fit its definition, even when a NULL value happens to hide the clash this time.
        if !seen.insert(key_values.clone()) {
            let labels: Vec<(&str, &str)> = keys
                .iter()
                .zip(&key_values)
                .map(|(&(name, _), &value)| (name, value))
                .collect();
            return Err(format!(
                "metric {}: query returned duplicate rows for labels {}",
                metric.metric,
                format_labels(&labels),
            ));
        }
        for &(column, i) in &values {
            let Some(text) = cell(i) else {
                skipped.null += 1;
                continue;
            };
            let Some(value) = parse_number(text) else {
                skipped.non_numeric += 1;
                skipped.example.get_or_insert((column, text));
                continue;
            };
            if metric.kind == MetricType::Counter && value < 0.0 {
                skipped.negative += 1;
                skipped.example.get_or_insert((column, text));
                continue;
            }
            let mut labels: Vec<(&str, &str)> =
                Vec::with_capacity(keys.len() + 1 + metric.static_labels.len());
            labels.extend(
                keys.iter()
                    .map(|&(name, _)| name)
                    .zip(key_values.iter().copied()),
            );
            if let Some(label) = &metric.value_label {
                labels.push((label, column));
            }
            labels.extend(
                metric
                    .static_labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
            out.push((labels, value));
        }
    }
    if skipped.null + skipped.non_numeric + skipped.negative > 0 {
        let (example_column, example_value) = skipped.example.unwrap_or_default();
        tracing::debug!(
            query = %query.name,
            metric = %metric.metric,
            null = skipped.null,
            non_numeric = skipped.non_numeric,
            negative_counter = skipped.negative,
            example_column,
            example_value,
            "custom query: skipped values that are NULL, not numbers, or negative counters",
        );
    }
    Ok(out)
}

/// A value as the text protocol sends it: integers, decimals and scientific notation. Words that Rust
/// would also parse (`inf`, `NaN`, `infinity`) are refused, as are overflows to infinity: MySQL never
/// sends them for a number, so they mean a text column was picked by mistake.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The HELP suffix for a cached query, so whoever reads the metric knows it may lag the server.
fn cache_note(min_interval: Duration) -> String {
    if min_interval.is_zero() {
        String::new()
    } else {
        format!(
            " (cached: refreshed at most every {})",
            humanize(min_interval)
        )
    }
}

/// `90s` → `1m30s`, `2h`; sub-second parts fall back to `Duration`'s own form (`1.5s`, `500ms`).
fn humanize(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{d:?}");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{:?}", s.as_ref())).collect();
    if quoted.is_empty() {
        "no columns".to_owned()
    } else {
        quoted.join(", ")
    }
}

fn format_labels(labels: &[(&str, &str)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use prometheus::proto::{self, MetricFamily};

    use super::*;
    use crate::family::validate;

    fn metric(name: &str, kind: MetricType, values: &[&str]) -> QueryMetric {
        QueryMetric {
            metric: name.to_owned(),
            kind,
            help: "Help.".to_owned(),
            key_labels: Vec::new(),
            values: values.iter().map(|s| (*s).to_owned()).collect(),
            value_label: None,
            static_labels: BTreeMap::new(),
        }
    }

    fn query(metrics: Vec<QueryMetric>) -> QuerySettings {
        QuerySettings {
            name: "shop_orders".to_owned(),
            query: "SELECT 1".to_owned(),
            timeout: None,
            min_interval: Duration::ZERO,
            metrics,
        }
    }

    fn rows(columns: &[&str], data: &[&[Option<&str>]]) -> Rows {
        Rows {
            columns: columns.iter().map(|s| (*s).to_owned()).collect(),
            rows: data
                .iter()
                .map(|r| r.iter().map(|c| c.map(str::to_owned)).collect())
                .collect(),
            ..Rows::default()
        }
    }

    /// Run `families` and return what it built, every family checked by the validator.
    fn build(q: &QuerySettings, r: &Rows) -> Result<Vec<MetricFamily>, String> {
        let mut out = Families::new();
        families(q, r, &mut out)?;
        let built = out.finish();
        for family in &built {
            assert_eq!(validate(family), Ok(()), "{}", family.name());
        }
        Ok(built)
    }

    /// Samples as (sorted `k=v` labels, value), for compact assertions.
    fn samples_of(family: &MetricFamily) -> Vec<(String, f64)> {
        family
            .get_metric()
            .iter()
            .map(|m| {
                let mut labels: Vec<String> = m
                    .get_label()
                    .iter()
                    .map(|l| format!("{}={}", l.name(), l.value()))
                    .collect();
                labels.sort();
                let value = match family.get_field_type() {
                    proto::MetricType::COUNTER => m.get_counter().get_value(),
                    _ => m.get_gauge().get_value(),
                };
                (labels.join(","), value)
            })
            .collect()
    }

    fn field_error(q: &QuerySettings) -> String {
        match q.validate(3) {
            Ok(()) => panic!("expected a settings error"),
            Err(e) => e.field,
        }
    }

    #[test]
    fn a_good_definition_passes() {
        let mut m = metric(
            "shop_orders",
            MetricType::Gauge,
            &["open_count", "stale_count"],
        );
        m.key_labels = vec!["state".into()];
        m.value_label = Some("bucket".into());
        m.static_labels.insert("origin".into(), "custom_sql".into());
        let mut single = metric("shop_version", MetricType::Gauge, &["v"]);
        single.value_label = Some("column".into());
        let mut q = query(vec![m, single]);
        q.timeout = Some(Duration::from_secs(3));
        q.name = "shop.orders-1".into();
        assert!(q.validate(0).is_ok());
    }

    #[test]
    fn query_level_rules() {
        let mut q = query(vec![metric("m", MetricType::Gauge, &["v"])]);
        q.name = "bad name".into();
        assert_eq!(field_error(&q), "queries.3.name");
        q.name = String::new();
        assert_eq!(field_error(&q), "queries.3.name");

        let mut q = query(vec![metric("m", MetricType::Gauge, &["v"])]);
        q.query = "  \n".into();
        assert_eq!(field_error(&q), "queries.3.query");

        let mut q = query(vec![metric("m", MetricType::Gauge, &["v"])]);
        q.timeout = Some(Duration::ZERO);
        assert_eq!(field_error(&q), "queries.3.timeout");

        assert_eq!(field_error(&query(Vec::new())), "queries.3.metrics");

        let q = query(vec![
            metric("m", MetricType::Gauge, &["v"]),
            metric("m", MetricType::Counter, &["w"]),
        ]);
        assert_eq!(field_error(&q), "queries.3.metrics.1.metric");
    }

    #[test]
    fn metric_level_rules() {
        let check = |edit: &dyn Fn(&mut QueryMetric), field: &str| {
            let mut m = metric("m", MetricType::Gauge, &["v"]);
            edit(&mut m);
            let q = query(vec![metric("first", MetricType::Gauge, &["v"]), m]);
            assert_eq!(field_error(&q), format!("queries.3.metrics.1.{field}"));
        };
        check(&|m| m.metric = "bad-name".into(), "metric");
        check(&|m| m.metric = "rule:name".into(), "metric");
        check(&|m| m.metric = String::new(), "metric");
        check(&|m| m.metric = "mysql_up".into(), "metric");
        check(
            &|m| m.metric = "mysql_exporter_collector_success".into(),
            "metric",
        );
        check(&|m| m.help = " ".into(), "help");
        check(&|m| m.values.clear(), "values");
        check(&|m| m.values = vec!["a".into(), "b".into()], "value_label");
        check(
            &|m| {
                m.values = vec!["a".into(), "A".into()];
                m.value_label = Some("col".into());
            },
            "values.1",
        );
        check(&|m| m.values = vec![String::new()], "values.0");
        check(&|m| m.value_label = Some("bad-label".into()), "value_label");
        check(&|m| m.value_label = Some("job".into()), "value_label");
        // Key labels: valid, not reserved, unique, not the value label, not a value column.
        check(&|m| m.key_labels = vec!["1st".into()], "key_labels.0");
        check(
            &|m| m.key_labels = vec!["ok".into(), "__name".into()],
            "key_labels.1",
        );
        for reserved in RESERVED_LABELS {
            check(&|m| m.key_labels = vec![reserved.into()], "key_labels.0");
        }
        check(
            &|m| m.key_labels = vec!["a".into(), "a".into()],
            "key_labels.1",
        );
        check(
            &|m| {
                m.key_labels = vec!["kind".into()];
                m.value_label = Some("kind".into());
            },
            "key_labels.0",
        );
        check(&|m| m.key_labels = vec!["V".into()], "key_labels.0");
        // Static labels: valid, not reserved, no clash with key or value labels.
        check(
            &|m| {
                m.static_labels.insert("instance".into(), "x".into());
            },
            "static_labels.instance",
        );
        check(
            &|m| {
                m.static_labels.insert("a.b".into(), "x".into());
            },
            "static_labels",
        );
        check(
            &|m| {
                m.key_labels = vec!["state".into()];
                m.static_labels.insert("state".into(), "x".into());
            },
            "static_labels.state",
        );
        check(
            &|m| {
                m.value_label = Some("col".into());
                m.static_labels.insert("col".into(), "x".into());
            },
            "static_labels.col",
        );
    }

    #[test]
    fn gauge_from_one_row() {
        let q = query(vec![metric("shop_open", MetricType::Gauge, &["n"])]);
        let out = build(&q, &rows(&["N"], &[&[Some("12")]])).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name(), "shop_open");
        assert_eq!(out[0].help(), "Help.");
        assert_eq!(out[0].get_field_type(), proto::MetricType::GAUGE);
        assert_eq!(samples_of(&out[0]), [(String::new(), 12.0)]);
    }

    #[test]
    fn counter_and_number_forms() {
        let mut m = metric("shop_sold_total", MetricType::Counter, &["n"]);
        m.key_labels = vec!["k".into()];
        let q = query(vec![m]);
        let r = rows(
            &["k", "n"],
            &[
                &[Some("int"), Some("42")],
                &[Some("dec"), Some("12.50")],
                &[Some("sci"), Some("1.5e3")],
                &[Some("neg"), Some("-1")],
            ],
        );
        let out = build(&q, &r).unwrap();
        assert_eq!(out[0].get_field_type(), proto::MetricType::COUNTER);
        assert_eq!(
            samples_of(&out[0]),
            [
                ("k=int".into(), 42.0),
                ("k=dec".into(), 12.5),
                ("k=sci".into(), 1500.0),
            ],
            "the negative counter value is skipped"
        );
    }

    #[test]
    fn key_labels_value_label_and_static_labels() {
        let mut m = metric(
            "shop_orders",
            MetricType::Gauge,
            &["open_count", "stale_count"],
        );
        m.key_labels = vec!["state".into()];
        m.value_label = Some("bucket".into());
        m.static_labels.insert("origin".into(), "custom_sql".into());
        let q = query(vec![m]);
        let r = rows(
            &["state", "OPEN_COUNT", "stale_count"],
            &[
                &[Some("paid"), Some("12"), Some("1")],
                &[None, Some("3"), Some("0")],
            ],
        );
        let out = build(&q, &r).unwrap();
        assert_eq!(
            samples_of(&out[0]),
            [
                (
                    "bucket=open_count,origin=custom_sql,state=paid".into(),
                    12.0
                ),
                (
                    "bucket=stale_count,origin=custom_sql,state=paid".into(),
                    1.0
                ),
                ("bucket=open_count,origin=custom_sql,state=".into(), 3.0),
                ("bucket=stale_count,origin=custom_sql,state=".into(), 0.0),
            ]
        );
    }

    #[test]
    fn null_and_non_numeric_values_are_skipped() {
        let mut m = metric("m", MetricType::Gauge, &["a", "b"]);
        m.key_labels = vec!["k".into()];
        m.value_label = Some("col".into());
        let q = query(vec![m]);
        let r = rows(
            &["k", "a", "b"],
            &[
                &[Some("1"), None, Some("2")],
                &[Some("2"), Some("yes"), Some("NaN")],
                &[Some("3"), Some("inf"), Some(" 7 ")],
                &[Some("4"), Some(""), Some("1e999")],
            ],
        );
        let out = build(&q, &r).unwrap();
        assert_eq!(
            samples_of(&out[0]),
            [("col=b,k=1".into(), 2.0), ("col=b,k=3".into(), 7.0)]
        );
    }

    #[test]
    fn all_values_skipped_means_no_family() {
        let q = query(vec![metric("m", MetricType::Gauge, &["v"])]);
        let out = build(&q, &rows(&["v"], &[&[None]])).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn an_empty_result_is_not_an_error() {
        let mut m = metric("m", MetricType::Gauge, &["v"]);
        m.key_labels = vec!["k".into()];
        let q = query(vec![m]);
        assert!(build(&q, &Rows::default()).unwrap().is_empty());
        assert!(build(&q, &rows(&["k", "v"], &[])).unwrap().is_empty());
    }

    #[test]
    fn missing_column_is_an_error_naming_it() {
        let mut m = metric("shop_orders", MetricType::Gauge, &["open_count"]);
        m.key_labels = vec!["state".into()];
        let q = query(vec![metric("ok", MetricType::Gauge, &["open"]), m]);
        let r = rows(&["STATE", "open"], &[&[Some("paid"), Some("1")]]);
        let mut out = Families::new();
        let err = families(&q, &r, &mut out).unwrap_err();
        assert!(err.contains("shop_orders"), "{err}");
        assert!(err.contains("\"open_count\""), "{err}");
        assert!(err.contains("\"STATE\", \"open\""), "{err}");
        assert!(out.finish().is_empty(), "nothing added on error");
    }

    #[test]
    fn duplicate_label_sets_are_an_error() {
        let mut m = metric("m", MetricType::Gauge, &["v"]);
        m.key_labels = vec!["k".into()];
        let q = query(vec![m]);
        let r = rows(
            &["k", "v"],
            &[&[Some("a"), Some("1")], &[Some("a"), Some("2")]],
        );
        let err = build(&q, &r).unwrap_err();
        assert!(err.contains("duplicate rows"), "{err}");
        assert!(err.contains(r#"{k="a"}"#), "{err}");

        // A NULL key and an empty one are the same label value.
        let r = rows(&["k", "v"], &[&[None, Some("1")], &[Some(""), Some("2")]]);
        assert!(build(&q, &r).is_err());

        // Without key labels, more than one row collides.
        let q = query(vec![metric("m", MetricType::Gauge, &["v"])]);
        let r = rows(&["v"], &[&[Some("1")], &[Some("2")]]);
        assert!(build(&q, &r).is_err());
    }

    #[test]
    fn cached_help_says_so() {
        let mut q = query(vec![metric("m", MetricType::Gauge, &["v"])]);
        q.min_interval = Duration::from_secs(90);
        let out = build(&q, &rows(&["v"], &[&[Some("1")]])).unwrap();
        assert_eq!(
            out[0].help(),
            "Help. (cached: refreshed at most every 1m30s)"
        );
    }

    #[test]
    fn humanized_durations() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_secs(300)), "5m");
        assert_eq!(humanize(Duration::from_secs(3600 + 60 + 1)), "1h1m1s");
        assert_eq!(humanize(Duration::from_secs(7200)), "2h");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
        assert_eq!(humanize(Duration::from_millis(500)), "500ms");
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn parse_number_never_panics_and_is_finite(text in any::<String>()) {
                prop_assert!(parse_number(&text).is_none_or(f64::is_finite));
            }

            #[test]
            fn numbers_parse_back(v in any::<f64>().prop_filter("finite", |v| v.is_finite()), pad in "[ \t]{0,2}") {
                prop_assert_eq!(parse_number(&format!("{pad}{v}{pad}")), Some(v));
                prop_assert_eq!(parse_number(&format!("{v:E}")), Some(v));
            }
        }
    }
}
