//! The `mysql` section of the config file: one entry per target, with mysqld_exporter's
//! sub-collector names and options and sql_exporter-style custom queries, validated into
//! [`MysqlSettings`] and a ready [`MysqlCollector`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Address, KIND, MysqlCollector, MysqlSettings, QueryMetric, QuerySettings, Scraper};
use crate::config::{Context, Destination, KindConfig, Labels, Secret, Text, text_map, texts};
use crate::family::MetricType;
use crate::tls::TlsConfig;
use crate::{Collector, Kind};

/// One MySQL/MariaDB target as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// `host:port`, `host`, `[v6]:port` or `unix:///path`.
    pub address: Text,
    /// Account name.
    pub user: Text,
    /// Password, inline.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Password, from a file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Client TLS; without it, encrypted when the server offers it, unverified.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Sub-collectors to run; mysqld_exporter's defaults when absent.
    #[serde(default)]
    pub collect: Option<Vec<String>>,
    /// Most connections the server sees from this target.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Session `lock_wait_timeout`, whole seconds.
    #[serde(default, with = "humantime_serde")]
    pub lock_wait_timeout: Option<Duration>,
    /// Options of `info_schema.processlist`.
    #[serde(default)]
    pub processlist: ProcesslistConfig,
    /// Bounds of `perf_schema.eventsstatements`.
    #[serde(default)]
    pub events_statements: EventsStatementsConfig,
    /// Schemas `info_schema.tables` reports on.
    #[serde(default)]
    pub table_schemas: Vec<Text>,
    /// The target's own labels.
    #[serde(default)]
    pub labels: Labels,
    /// Custom queries.
    #[serde(default)]
    pub queries: Vec<QueryConfig>,
}

/// `processlist` of a MySQL target.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcesslistConfig {
    /// Threads busy for less than this are not counted (whole seconds).
    #[serde(with = "humantime_serde")]
    pub min_time: Option<Duration>,
    /// Emit the per-user counts.
    pub processes_by_user: Option<bool>,
    /// Emit the per-host counts.
    pub processes_by_host: Option<bool>,
}

/// `events_statements` of a MySQL target.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsStatementsConfig {
    /// At most this many digests.
    pub limit: Option<u32>,
    /// Digest texts cut to this many characters.
    pub digest_text_limit: Option<u32>,
    /// Only digests seen within this window.
    #[serde(with = "humantime_serde")]
    pub time_limit: Option<Duration>,
}

/// A custom query: one metric written inline, or several under `metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Name in the `collector` label; the first metric's name by default.
    #[serde(default)]
    pub name: Option<Text>,
    /// The SQL.
    pub query: Text,
    /// Cap on the query's run time.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Run at most this often.
    #[serde(default, with = "humantime_serde")]
    pub min_interval: Option<Duration>,
    /// Several metrics from the rows.
    #[serde(default)]
    pub metrics: Vec<QueryMetricConfig>,
    // The inline form of a single metric (the same keys as an entry of `metrics`). Listed here rather
    // than flattened: serde cannot deny unknown keys through `flatten`.
    /// Inline form: metric name.
    #[serde(default)]
    pub metric: Option<Text>,
    /// Inline form: counter or gauge.
    #[serde(default, rename = "type")]
    pub kind: Option<MetricType>,
    /// Inline form: HELP text.
    #[serde(default)]
    pub help: Option<Text>,
    /// Inline form: columns that become labels.
    #[serde(default)]
    pub key_labels: Vec<Text>,
    /// Inline form: value columns.
    #[serde(default)]
    pub values: Vec<Text>,
    /// Inline form: label naming the value column.
    #[serde(default)]
    pub value_label: Option<Text>,
    /// Inline form: fixed labels.
    #[serde(default)]
    pub static_labels: Labels,
}

/// One metric of a custom query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMetricConfig {
    /// Metric name (required).
    #[serde(default)]
    pub metric: Option<Text>,
    /// Counter or gauge (required).
    #[serde(default, rename = "type")]
    pub kind: Option<MetricType>,
    /// HELP text.
    #[serde(default)]
    pub help: Option<Text>,
    /// Columns that become labels.
    #[serde(default)]
    pub key_labels: Vec<Text>,
    /// Value columns.
    #[serde(default)]
    pub values: Vec<Text>,
    /// Label naming the value column, when there are several.
    #[serde(default)]
    pub value_label: Option<Text>,
    /// Fixed labels.
    #[serde(default)]
    pub static_labels: Labels,
}

impl KindConfig for MysqlConfig {
    const KIND: &'static Kind = &KIND;
    const ADDRESS_KEY: &'static str = "address";
    const CHECK_ADDRESS: &'static str = "module-check.invalid:3306";

    fn destination(address: &str) -> Result<Destination, String> {
        match Address::parse(address)? {
            Address::Tcp { host, port } => Destination::net("mysql", &host, port, ""),
            Address::Unix(path) => Ok(Destination::Unix(path)),
        }
    }

    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn build(self, ctx: &mut Context<'_>) -> Option<Arc<dyn Collector>> {
        let (settings, inline) = self.settings(ctx)?;
        match MysqlCollector::new(settings) {
            Ok(c) => Some(Arc::new(c)),
            Err(mut e) => {
                // `queries.N.metrics.0.key` of an inline query is written `queries.N.key`.
                let field: Vec<&str> = e.field.split('.').collect();
                if let ["queries", n, "metrics", "0", rest @ ..] = field.as_slice()
                    && n.parse::<usize>().is_ok_and(|n| inline.contains(&n))
                {
                    e.field = ["queries", n]
                        .iter()
                        .chain(rest)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(".");
                }
                ctx.settings_error(e, true);
                None
            }
        }
    }
}

impl MysqlConfig {
    /// The settings, and the indices of queries written in the inline one-metric form (their
    /// metric's keys sit directly under the query).
    fn settings(self, ctx: &mut Context<'_>) -> Option<(MysqlSettings, Vec<usize>)> {
        let errors_before = ctx.error_count();
        let address = ctx.ok(&["address"], Address::parse(&self.address.0));
        let password = ctx.secret(
            &[],
            "password",
            self.password,
            self.password_file.as_deref(),
        );
        let tls = self.tls.map(|t| t.client_tls("mysql", ctx));
        // The server counts both in whole seconds; a fraction would be cut off silently.
        if self
            .lock_wait_timeout
            .is_some_and(|t| t.subsec_nanos() != 0 || t < Duration::from_secs(1))
        {
            ctx.error(
                &["lock_wait_timeout"],
                "must be a whole number of seconds, at least 1s (the server's unit)",
            );
        }
        if self
            .processlist
            .min_time
            .is_some_and(|t| t.subsec_nanos() != 0)
        {
            ctx.error(
                &["processlist", "min_time"],
                "must be a whole number of seconds (the process list's unit)",
            );
        }
        let mut collect = Vec::new();
        for item in self.collect.iter().flatten() {
            match Scraper::from_name(item) {
                Some(s) if collect.contains(&s) => {
                    ctx.error(&["collect"], format!("{item:?} is listed twice"))
                }
                Some(s) => collect.push(s),
                None => ctx.error(
                    &["collect"],
                    format!(
                        "unknown sub-collector {item:?}: expected one of {}",
                        Scraper::ALL.map(Scraper::name).join(", ")
                    ),
                ),
            }
        }
        let mut inline = Vec::new();
        let mut queries = Vec::new();
        for (i, q) in self.queries.into_iter().enumerate() {
            let (query, is_inline) = q.settings(i, ctx);
            if is_inline {
                inline.push(i);
            }
            queries.push(query);
        }
        if ctx.error_count() > errors_before {
            return None;
        }
        let mut settings = MysqlSettings::new(address?, self.user.0);
        settings.password = password;
        settings.tls = tls;
        if self.collect.is_some() {
            settings.collect = collect;
        }
        if let Some(max) = self.max_connections {
            settings.max_connections = max;
        }
        if let Some(t) = self.lock_wait_timeout {
            settings.lock_wait_timeout = t;
        }
        settings.statement_timeout = ctx.scrape_timeout();
        let p = self.processlist;
        let defaults = &mut settings.processlist;
        defaults.min_time = p.min_time.unwrap_or(defaults.min_time);
        defaults.processes_by_user = p.processes_by_user.unwrap_or(defaults.processes_by_user);
        defaults.processes_by_host = p.processes_by_host.unwrap_or(defaults.processes_by_host);
        let e = self.events_statements;
        let defaults = &mut settings.events_statements;
        defaults.limit = e.limit.unwrap_or(defaults.limit);
        defaults.digest_text_limit = e.digest_text_limit.unwrap_or(defaults.digest_text_limit);
        defaults.time_limit = e.time_limit.unwrap_or(defaults.time_limit);
        settings.table_schemas = texts(self.table_schemas);
        settings.queries = queries;
        Some((settings, inline))
    }
}

impl QueryConfig {
    /// The query's settings, and whether it was written in the inline one-metric form. The
    /// definition itself is checked by the collector, which knows the rules.
    fn settings(self, index: usize, ctx: &mut Context<'_>) -> (QuerySettings, bool) {
        let inline = QueryMetricConfig {
            metric: self.metric,
            kind: self.kind,
            help: self.help,
            key_labels: self.key_labels,
            values: self.values,
            value_label: self.value_label,
            static_labels: self.static_labels,
        };
        let inline_used = inline.metric.is_some()
            || inline.kind.is_some()
            || inline.help.is_some()
            || !inline.values.is_empty()
            || !inline.key_labels.is_empty()
            || inline.value_label.is_some()
            || !inline.static_labels.is_empty();
        let index_key = index.to_string();
        let path = ["queries", index_key.as_str()];
        let metric_path = |m: &str, key: &'static str| -> Vec<String> {
            if inline_used {
                vec![key.to_owned()]
            } else {
                vec!["metrics".to_owned(), m.to_owned(), key.to_owned()]
            }
        };
        let raw_metrics = match (inline_used, self.metrics.is_empty()) {
            (true, false) => {
                ctx.error(
                    &path,
                    "write one metric inline (metric, type, values, ...) or a list under metrics, not both",
                );
                Vec::new()
            }
            (true, true) => vec![inline],
            (false, _) => self.metrics,
        };
        let name = self
            .name
            .map(|n| n.0)
            .or_else(|| {
                raw_metrics
                    .first()
                    .and_then(|m| m.metric.clone())
                    .map(|m| m.0)
            })
            .unwrap_or_else(|| format!("query{index}"));
        let mut metrics = Vec::new();
        for (m, rm) in raw_metrics.into_iter().enumerate() {
            let m_key = m.to_string();
            let missing = |key: &'static str, message: &str, ctx: &mut Context<'_>| {
                let key = metric_path(&m_key, key);
                let full: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(key.iter().map(String::as_str))
                    .collect();
                ctx.error_near(&full, message);
            };
            let Some(metric) = rm.metric else {
                missing("metric", "missing: the metric name is required", ctx);
                continue;
            };
            let Some(kind) = rm.kind else {
                missing("type", "missing: expected counter or gauge", ctx);
                continue;
            };
            let help = rm
                .help
                .map(|h| h.0)
                .unwrap_or_else(|| format!("Custom query {name}."));
            metrics.push(QueryMetric {
                metric: metric.0,
                kind,
                help,
                key_labels: texts(rm.key_labels),
                values: texts(rm.values),
                value_label: rm.value_label.map(|t| t.0),
                static_labels: text_map(rm.static_labels),
            });
        }
        let query = QuerySettings {
            name,
            query: self.query.0,
            timeout: self.timeout,
            min_interval: self.min_interval.unwrap_or_default(),
            metrics,
        };
        (query, inline_used)
    }
}
