//! Configuration: a YAML file, then `FANOUT_EXPORTER_*` environment variables, then flags; later wins.
//!
//! Loading happens in three steps so that every error can say where it comes from:
//! 1. the file alone is deserialized with serde_yaml, whose errors carry the key path, line and column;
//! 2. figment layers the environment and the flags on top and deserializes again (errors here name the
//!    environment variable);
//! 3. the merged values are validated (names, secrets, TLS material, per-kind settings) and turned into
//!    ready collectors; these errors name the key path and, where it can be found, the line.
//!
//! Nothing is started until all three succeeded. Secrets are held in [`SecretString`]s from the moment
//! they are read, so no `Debug` output, log line or error message can show them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fanout_collectors::family::{RESERVED_LABELS, is_valid_name};
use fanout_collectors::http::{
    Auth, HttpCollector, HttpSettings, SecretBytes, TlsSettings, TlsVersion,
};
use fanout_collectors::mysql::{
    Address, MetricType, MysqlCollector, MysqlSettings, QueryMetric, QuerySettings, Scraper,
};
use fanout_collectors::redis::{CustomCommand, ParsedUrl, RedisCollector, RedisSettings};
use fanout_collectors::{ClientTls, Collector};
use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::scrape::{MAX_BUDGET, MIN_BUDGET, Target};

/// Prefix of environment variables that override the file; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "FANOUT_EXPORTER_";

/// Upper bound of `global.max_concurrency`: beyond it the limit protects nothing.
const MAX_CONCURRENCY: usize = 10_000;

/// One configuration problem, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded default>`), when the problem comes from it.
    pub source: String,
    /// Dotted key path (`http.api.url`), empty for the document itself.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found; loading reports as many as it can at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Settings that apply to every scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Upper bound of a scrape's budget.
    pub scrape_timeout: Duration,
    /// Subtracted from Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` to leave time for encoding.
    pub timeout_offset: Duration,
    /// Most targets collected at once, across concurrent scrapes.
    pub max_concurrency: usize,
    /// Labels added to every target's samples.
    pub labels: BTreeMap<String, String>,
}

/// A validated configuration with its collectors built.
#[derive(Clone)]
pub struct Config {
    /// Where it came from, for the landing page and `--config.check`.
    pub source: String,
    /// Global settings.
    pub global: Global,
    /// Targets sorted by name.
    pub targets: Vec<Target>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("source", &self.source)
            .field("global", &self.global)
            .field(
                "targets",
                &self.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Config {
    /// What `--config.check` prints and the server's `/config` page shows: the settings that decide
    /// what is scraped and how, one target per line. Nothing secret: endpoints come from the
    /// collectors, which leave credentials and query strings out.
    pub fn summary(&self) -> String {
        fn labels<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
            let pairs: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        let g = &self.global;
        let mut text = format!(
            "configuration: {}\nglobal: scrape_timeout={} timeout_offset={} max_concurrency={} labels: {}\n",
            self.source,
            humantime::format_duration(g.scrape_timeout),
            humantime::format_duration(g.timeout_offset),
            g.max_concurrency,
            labels(&g.labels),
        );
        for t in &self.targets {
            text.push_str(&format!(
                "target {} ({}) {} labels: {}\n",
                t.name,
                t.kind(),
                t.collector.endpoint(),
                labels(t.labels.iter().map(|(k, v)| (k, v))),
            ));
        }
        text
    }
}

/// Values given on the command line that override the file and the environment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FlagOverrides {
    /// `--timeout-offset`.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_humantime")]
    pub timeout_offset: Option<Duration>,
}

mod opt_humantime {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// The configuration used when no file is given: an HTTP check of the exporter's own `/-/healthy`, so
/// that a bare `cargo run` serves real `probe_*` metrics.
pub fn embedded_default(port: u16) -> String {
    format!("http:\n  fanout_exporter:\n    url: http://127.0.0.1:{port}/-/healthy\n")
}

/// Where the YAML comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file given with `--config.file`.
    File(PathBuf),
    /// The embedded default (or any literal document, in tests).
    Text(String),
}

/// Load, layer and validate the configuration from the process environment.
pub fn load(input: &Input, flags: &FlagOverrides) -> Result<Config, ConfigErrors> {
    let (source, text) = match input {
        Input::File(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                one(
                    path.display().to_string(),
                    "",
                    None,
                    format!("cannot read the file: {e}"),
                )
            })?,
        ),
        Input::Text(text) => ("<embedded default>".to_owned(), text.clone()),
    };
    check_file(&source, &text)?;
    let mut figment = Figment::new();
    if !text.trim().is_empty() {
        figment = figment.merge(Yaml::string(&text));
    }
    let raw: RawConfig = figment
        .merge(EnvLayer::from_process())
        .merge(Serialized::default("global", flags))
        .extract_lossy()
        .map_err(|errors| {
            ConfigErrors(
                errors
                    .into_iter()
                    .map(|e| layered_error(&source, e))
                    .collect(),
            )
        })?;
    let flag_offset = flags.timeout_offset.is_some();
    validate(raw, &source, &text, input_dir(input), flag_offset)
}

/// An error found once the environment and flags are layered on: the file alone was fine, so it names
/// the environment variable when one supplied the value.
fn layered_error(source: &str, e: figment::Error) -> ConfigError {
    let path = e.path.join(".");
    let from_env = e
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let (source, message) = if from_env {
        let variable = format!("{ENV_PREFIX}{}", e.path.join("__").to_ascii_uppercase());
        let message = format!("{} (set by {variable})", redact(&e.kind.to_string()));
        ("environment".to_owned(), message)
    } else {
        (source.to_owned(), redact(&e.kind.to_string()))
    };
    ConfigError {
        source,
        path,
        line: None,
        message,
    }
}

/// The environment layer.
///
/// figment's own `Env` provider parses every value, so `000123` becomes the number 123 and `1.10`
/// becomes 1.1 before any field sees it: a secret or a label value would be silently changed. This
/// layer keeps each value a string, and lossy extraction turns it into a number or boolean where the
/// key wants one. Values written as `[...]` or `{...}` are parsed, so lists such as
/// `valid_status_codes` can be set too.
struct EnvLayer {
    /// (dotted, lower-cased key path, raw value)
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(ENV_PREFIX)?;
                if is_service_link(rest) {
                    return None;
                }
                let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
                (!parts.iter().any(String::is_empty)).then(|| (parts.join("."), value))
            })
            .collect();
        Self { vars }
    }
}

/// Whether `rest` (a variable name after [`ENV_PREFIX`]) is a service link: Kubernetes sets
/// `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<PORT NAME>]`, `<SERVICE>_PORT` and
/// `<SERVICE>_PORT_<N>_<TCP|UDP|SCTP>[_ADDR|_PORT|_PROTO]` in every container of a namespace for every
/// Service in it (docker links use the same shapes), so a Service named `fanout-exporter` or
/// `fanout-exporter-<anything>` yields variables under our prefix. They are not configuration, and
/// refusing them as unknown keys would stop the exporter from starting beside such a Service. Our own
/// keys always contain `__`, so none of them is ever taken for a link, and other single-underscore
/// names (`GLOBAL_SCRAPE_TIMEOUT`, a typo) are still refused.
fn is_service_link(rest: &str) -> bool {
    if rest.contains("__") {
        return false;
    }
    let t: Vec<&str> = rest.split('_').collect();
    let n = t.len();
    if t.ends_with(&["SERVICE", "HOST"]) || t.last() == Some(&"PORT") {
        return true;
    }
    if t.windows(2).any(|w| w == ["SERVICE", "PORT"]) {
        return true;
    }
    (0..n).any(|i| {
        t[i] == "PORT"
            && t.get(i + 1)
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && t.get(i + 2)
                .is_some_and(|p| matches!(*p, "TCP" | "UDP" | "SCTP"))
            && (n == i + 3 || (n == i + 4 && matches!(t[i + 3], "ADDR" | "PORT" | "PROTO")))
    })
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in &self.vars {
            let value = if raw.trim_start().starts_with(['[', '{']) {
                raw.parse::<Value>().unwrap_or_else(|never| match never {})
            } else {
                Value::from(raw.clone())
            };
            if let Some(nested) = figment::util::nest(key, value).into_dict() {
                merge_dict(&mut dict, nested);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn merge_dict(into: &mut Dict, from: Dict) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => merge_dict(existing, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// serde's type errors quote the value they refused (`invalid type: string "admin:hunter2"`), which may
/// be a secret put under the wrong key; they also name internal types. Keep the type, drop the value.
fn redact(message: &str) -> String {
    static QUOTED: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
        Regex::new(r#"(invalid type: (?:found )?)(string "(?:[^"\\]|\\.)*"|integer `[^`]*`|floating point `[^`]*`|boolean `[^`]*`)"#).ok()
    });
    static RAW_TYPE: std::sync::LazyLock<Option<Regex>> =
        std::sync::LazyLock::new(|| Regex::new(r"struct Raw\w+").ok());
    let mut out = message.to_owned();
    if let Some(re) = QUOTED.as_ref() {
        out = re
            .replace_all(&out, |c: &regex::Captures<'_>| {
                let kind = match c[2].split([' ', '`']).next() {
                    Some("string") => "a string",
                    Some("integer") => "an integer",
                    Some("floating") => "a number",
                    _ => "a boolean",
                };
                format!("{}{kind}", &c[1])
            })
            .into_owned();
    }
    if let Some(re) = RAW_TYPE.as_ref() {
        out = re.replace_all(&out, "a mapping").into_owned();
    }
    out
}

fn input_dir(input: &Input) -> Option<&Path> {
    match input {
        Input::File(p) => p.parent(),
        Input::Text(_) => None,
    }
}

fn one(source: String, path: &str, line: Option<usize>, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        source,
        path: path.to_owned(),
        line,
        message,
    }])
}

/// Step 1: the file on its own, for errors with line numbers.
fn check_file(source: &str, text: &str) -> Result<(), ConfigErrors> {
    if text.trim().is_empty() {
        return Ok(());
    }
    // Parsing into a `Value` first catches duplicate keys, which a struct or BTreeMap would silently
    // overwrite.
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .map(drop)
        .and_then(|()| serde_yaml::from_str::<RawConfig>(text).map(drop))
        .map_err(|e| {
            one(
                source.to_owned(),
                "",
                e.location().map(|l| l.line()),
                redact(&e.to_string()),
            )
        })
}

// ---------------------------------------------------------------------------------------------------
// The raw shape of the file. Every struct denies unknown keys; scalars that may arrive from the
// environment as numbers or booleans (secrets, label values, headers) are read as `Text`.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    global: RawGlobal,
    http: BTreeMap<String, RawHttp>,
    mysql: BTreeMap<String, RawMysql>,
    redis: BTreeMap<String, RawRedis>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawGlobal {
    #[serde(with = "humantime_serde")]
    scrape_timeout: Duration,
    #[serde(with = "humantime_serde")]
    timeout_offset: Duration,
    max_concurrency: usize,
    labels: BTreeMap<String, Text>,
}

impl Default for RawGlobal {
    fn default() -> Self {
        Self {
            scrape_timeout: Duration::from_secs(10),
            timeout_offset: Duration::from_millis(500),
            max_concurrency: 64,
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    url: Text,
    #[serde(default)]
    method: Option<Text>,
    #[serde(default)]
    headers: BTreeMap<String, Text>,
    #[serde(default)]
    body: Option<Text>,
    #[serde(default)]
    valid_status_codes: Vec<u16>,
    #[serde(default)]
    valid_http_versions: Vec<String>,
    #[serde(default)]
    follow_redirects: Option<bool>,
    #[serde(default)]
    max_redirects: Option<u32>,
    #[serde(default)]
    fail_if_ssl: bool,
    #[serde(default)]
    fail_if_not_ssl: bool,
    #[serde(default)]
    fail_if_body_matches_regexp: Vec<Pattern>,
    #[serde(default)]
    fail_if_body_not_matches_regexp: Vec<Pattern>,
    #[serde(default)]
    body_size_limit: Option<Text>,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    basic_auth: Option<RawBasicAuth>,
    #[serde(default)]
    bearer_token: Option<Secret>,
    #[serde(default)]
    bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<Text>,
    insecure_skip_verify: bool,
    min_version: Option<RawTlsVersion>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum RawTlsVersion {
    TLS12,
    TLS13,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: Text,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    /// May hold a password: never quoted in errors.
    url: Secret,
    #[serde(default)]
    user: Option<Text>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default)]
    check_keys: Vec<Text>,
    #[serde(default)]
    check_single_keys: Vec<Text>,
    #[serde(default)]
    count_keys: Vec<Text>,
    #[serde(default)]
    commands: Vec<RawRedisCommand>,
    #[serde(default)]
    key_check_budget: RawKeyBudget,
    #[serde(default)]
    config_command: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisCommand {
    metric: Text,
    #[serde(default)]
    help: Option<Text>,
    command: Vec<Text>,
    #[serde(default, rename = "type")]
    kind: Option<RawMetricType>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKeyBudget {
    max_keys: Option<usize>,
    #[serde(with = "humantime_serde")]
    max_time: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMysql {
    address: Text,
    user: Text,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    collect: Option<Vec<String>>,
    #[serde(default)]
    max_connections: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    lock_wait_timeout: Option<Duration>,
    #[serde(default)]
    processlist: RawProcesslist,
    #[serde(default)]
    events_statements: RawEventsStatements,
    #[serde(default)]
    table_schemas: Vec<Text>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default)]
    queries: Vec<RawQuery>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawProcesslist {
    #[serde(with = "humantime_serde")]
    min_time: Option<Duration>,
    processes_by_user: Option<bool>,
    processes_by_host: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEventsStatements {
    limit: Option<u32>,
    digest_text_limit: Option<u32>,
    #[serde(with = "humantime_serde")]
    time_limit: Option<Duration>,
}

/// A custom query: one metric written inline, or several under `metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    #[serde(default)]
    name: Option<Text>,
    query: Text,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    min_interval: Option<Duration>,
    #[serde(default)]
    metrics: Vec<RawQueryMetric>,
    // The inline form of a single metric (the same keys as an entry of `metrics`). Listed here rather
    // than flattened: serde cannot deny unknown keys through `flatten`.
    #[serde(default)]
    metric: Option<Text>,
    #[serde(default, rename = "type")]
    kind: Option<RawMetricType>,
    #[serde(default)]
    help: Option<Text>,
    #[serde(default)]
    key_labels: Vec<Text>,
    #[serde(default)]
    values: Vec<Text>,
    #[serde(default)]
    value_label: Option<Text>,
    #[serde(default)]
    static_labels: BTreeMap<String, Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryMetric {
    #[serde(default)]
    metric: Option<Text>,
    #[serde(default, rename = "type")]
    kind: Option<RawMetricType>,
    #[serde(default)]
    help: Option<Text>,
    #[serde(default)]
    key_labels: Vec<Text>,
    #[serde(default)]
    values: Vec<Text>,
    #[serde(default)]
    value_label: Option<Text>,
    #[serde(default)]
    static_labels: BTreeMap<String, Text>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawMetricType {
    Counter,
    Gauge,
}

/// A string that may also be written as a number or boolean (environment values arrive typed).
#[derive(Debug, Clone)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret scalar; its Debug output is redacted by [`SecretString`].
#[derive(Debug)]
struct Secret(SecretString);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Secret(SecretString::from(t.0)))
    }
}

/// A compiled regular expression; a bad one fails deserialization, so the error has a line.
#[derive(Debug, Clone)]
struct Pattern(Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Regex::new(&text).map(Pattern).map_err(|e| {
            // The regex crate's message spans several lines (pattern, caret, reason): keep the reason.
            let full = e.to_string();
            let reason = full
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            de::Error::custom(format!("invalid regular expression {text:?}: {reason}"))
        })
    }
}

/// A byte count: an integer, or a number with a unit as blackbox writes them (`1MB`, `512KiB`; units are
/// powers of 1024, as in Prometheus' `units.Base2Bytes`).
fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "KiB" | "K" => 1 << 10,
        "MB" | "MiB" | "M" => 1 << 20,
        "GB" | "GiB" | "G" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

// ---------------------------------------------------------------------------------------------------
// Step 3: validation.

struct Validator<'a> {
    source: &'a str,
    text: &'a str,
    base_dir: Option<&'a Path>,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn error(&mut self, path: &[&str], message: impl Into<String>) {
        self.errors.push(ConfigError {
            source: self.source.to_owned(),
            path: key_path(path),
            line: locate(self.text, path),
            message: message.into(),
        });
    }

    /// An error about a key that may be absent from the file (a required setting that is missing):
    /// located at the nearest enclosing key that is there.
    fn error_near(&mut self, path: &[&str], message: impl Into<String>) {
        let line = (1..=path.len())
            .rev()
            .find_map(|n| locate(self.text, &path[..n]));
        self.errors.push(ConfigError {
            source: self.source.to_owned(),
            path: key_path(path),
            line,
            message: message.into(),
        });
    }

    fn labels(
        &mut self,
        path: &[&str],
        labels: &BTreeMap<String, Text>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in labels {
            let key = [path, &[name.as_str()]].concat();
            if !fanout_collectors::family::is_valid_label_name(name) {
                self.error(
                    &key,
                    "invalid label name: expected [a-zA-Z_][a-zA-Z0-9_]* not starting with __",
                );
            } else if RESERVED_LABELS.contains(&name.as_str()) {
                self.error(
                    &key,
                    format!("label name {name:?} is reserved (the exporter or Prometheus sets it)"),
                );
            } else {
                out.insert(name.clone(), value.0.clone());
            }
        }
        out
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        match self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    fn read_file(&mut self, path: &[&str], file: &Path) -> Option<Vec<u8>> {
        let full = self.resolve(file);
        match std::fs::read(&full) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.error(path, format!("cannot read {}: {e}", full.display()));
                None
            }
        }
    }

    /// A secret given inline or as a file (exactly one of them, or neither when `required` is false).
    fn secret(
        &mut self,
        path: &[&str],
        key: &str,
        inline: Option<Secret>,
        file: Option<&Path>,
    ) -> Option<SecretString> {
        let file_key = format!("{key}_file");
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.error(
                    &[path, &[key]].concat(),
                    format!("set either {key} or {file_key}, not both"),
                );
                None
            }
            (Some(s), None) => Some(s.0),
            (None, Some(file)) => {
                let bytes = self.read_file(&[path, &[file_key.as_str()]].concat(), file)?;
                match String::from_utf8(bytes) {
                    Ok(s) => Some(SecretString::from(
                        s.trim_end_matches(['\n', '\r']).to_owned(),
                    )),
                    Err(_) => {
                        self.error(
                            &[path, &[file_key.as_str()]].concat(),
                            "the file is not UTF-8",
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    fn http(&mut self, name: &str, raw: RawHttp) -> Option<HttpSettings> {
        let path = ["http", name];
        let errors_before = self.errors.len();
        // Scheme, method, headers and TLS material are checked by `HttpCollector::new`.
        let url = match url::Url::parse(&raw.url.0) {
            Ok(u) => Some(u),
            Err(e) => {
                self.error(&["http", name, "url"], format!("invalid URL: {e}"));
                None
            }
        };
        for version in &raw.valid_http_versions {
            // The probe speaks HTTP/1.x only; accepting HTTP/2.0 would make a check that never passes.
            if !matches!(version.as_str(), "HTTP/1.0" | "HTTP/1.1") {
                self.error(
                    &["http", name, "valid_http_versions"],
                    format!("unsupported version {version:?}: expected HTTP/1.0 or HTTP/1.1"),
                );
            }
        }
        if raw.fail_if_ssl && raw.fail_if_not_ssl {
            self.error(&path, "fail_if_ssl and fail_if_not_ssl cannot both be true");
        }
        let method = raw.method.map(|m| m.0.to_ascii_uppercase());
        let body_size_limit = match raw
            .body_size_limit
            .as_ref()
            .map(|t| (t, parse_byte_size(&t.0)))
        {
            Some((_, Some(limit))) => Some(limit).filter(|&l| l > 0),
            Some((text, None)) => {
                self.error(
                    &["http", name, "body_size_limit"],
                    format!(
                        "invalid size {:?}: expected bytes as an integer or with a unit (KB, MB, GB, KiB, MiB, GiB)",
                        text.0
                    ),
                );
                None
            }
            None => None,
        };
        let tls_path = ["http", name, "tls"];
        let tls = TlsSettings {
            ca_pem: raw
                .tls
                .ca_file
                .as_deref()
                .and_then(|f| self.read_file(&[&tls_path[..], &["ca_file"]].concat(), f)),
            cert_pem: raw
                .tls
                .cert_file
                .as_deref()
                .and_then(|f| self.read_file(&[&tls_path[..], &["cert_file"]].concat(), f)),
            key_pem: raw
                .tls
                .key_file
                .as_deref()
                .and_then(|f| self.read_file(&[&tls_path[..], &["key_file"]].concat(), f))
                .map(SecretBytes),
            server_name: raw.tls.server_name.map(|t| t.0),
            insecure_skip_verify: raw.tls.insecure_skip_verify,
            min_version: match raw.tls.min_version {
                Some(RawTlsVersion::TLS13) => TlsVersion::Tls13,
                Some(RawTlsVersion::TLS12) | None => TlsVersion::Tls12,
            },
        };
        let basic = raw.basic_auth.map(|b| {
            let auth_path = ["http", name, "basic_auth"];
            let password = self.secret(
                &auth_path,
                "password",
                b.password,
                b.password_file.as_deref(),
            );
            Auth::Basic {
                username: b.username.0,
                password: password.unwrap_or_else(|| SecretString::from(String::new())),
            }
        });
        let bearer = self
            .secret(
                &path,
                "bearer_token",
                raw.bearer_token,
                raw.bearer_token_file.as_deref(),
            )
            .map(Auth::Bearer);
        let auth = match (basic, bearer) {
            (Some(_), Some(_)) => {
                self.error(&path, "basic_auth and bearer_token are mutually exclusive");
                None
            }
            (a, b) => a.or(b),
        };
        if self.errors.len() > errors_before {
            return None;
        }
        let mut settings = HttpSettings::new(url?);
        if let Some(m) = method {
            settings.method = m;
        }
        settings.headers = raw.headers.into_iter().map(|(k, v)| (k, v.0)).collect();
        settings.body = raw.body.map(|b| b.0);
        settings.valid_status_codes = raw.valid_status_codes;
        settings.valid_http_versions = raw.valid_http_versions;
        settings.follow_redirects = raw.follow_redirects.unwrap_or(settings.follow_redirects);
        settings.max_redirects = raw.max_redirects.unwrap_or(settings.max_redirects);
        settings.fail_if_ssl = raw.fail_if_ssl;
        settings.fail_if_not_ssl = raw.fail_if_not_ssl;
        settings.fail_if_body_matches_regexp = raw
            .fail_if_body_matches_regexp
            .into_iter()
            .map(|p| p.0)
            .collect();
        settings.fail_if_body_not_matches_regexp = raw
            .fail_if_body_not_matches_regexp
            .into_iter()
            .map(|p| p.0)
            .collect();
        settings.body_size_limit = body_size_limit;
        settings.tls = tls;
        settings.auth = auth;
        Some(settings)
    }
}

impl Validator<'_> {
    /// The settings, and the indices of queries written in the inline one-metric form (their
    /// metric's keys sit directly under the query).
    fn mysql(
        &mut self,
        name: &str,
        raw: RawMysql,
        scrape_timeout: Duration,
    ) -> Option<(MysqlSettings, Vec<usize>)> {
        let errors_before = self.errors.len();
        let address = match Address::parse(&raw.address.0) {
            Ok(a) => Some(a),
            Err(e) => {
                self.error(&["mysql", name, "address"], e);
                None
            }
        };
        let password = self.secret(
            &["mysql", name],
            "password",
            raw.password,
            raw.password_file.as_deref(),
        );
        let tls = raw.tls.map(|t| self.client_tls("mysql", name, t));
        // The server counts both in whole seconds; a fraction would be cut off silently.
        if raw
            .lock_wait_timeout
            .is_some_and(|t| t.subsec_nanos() != 0 || t < Duration::from_secs(1))
        {
            self.error(
                &["mysql", name, "lock_wait_timeout"],
                "must be a whole number of seconds, at least 1s (the server's unit)",
            );
        }
        if raw
            .processlist
            .min_time
            .is_some_and(|t| t.subsec_nanos() != 0)
        {
            self.error(
                &["mysql", name, "processlist", "min_time"],
                "must be a whole number of seconds (the process list's unit)",
            );
        }
        let mut collect = Vec::new();
        for item in raw.collect.iter().flatten() {
            match Scraper::from_name(item) {
                Some(s) if collect.contains(&s) => self.error(
                    &["mysql", name, "collect"],
                    format!("{item:?} is listed twice"),
                ),
                Some(s) => collect.push(s),
                None => self.error(
                    &["mysql", name, "collect"],
                    format!(
                        "unknown sub-collector {item:?}: expected one of {}",
                        Scraper::ALL.map(Scraper::name).join(", ")
                    ),
                ),
            }
        }
        let mut inline = Vec::new();
        let mut queries = Vec::new();
        for (i, q) in raw.queries.into_iter().enumerate() {
            let (query, is_inline) = self.query(name, i, q);
            if is_inline {
                inline.push(i);
            }
            queries.push(query);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let mut settings = MysqlSettings::new(address?, raw.user.0);
        settings.password = password;
        settings.tls = tls;
        if raw.collect.is_some() {
            settings.collect = collect;
        }
        if let Some(max) = raw.max_connections {
            settings.max_connections = max;
        }
        if let Some(t) = raw.lock_wait_timeout {
            settings.lock_wait_timeout = t;
        }
        settings.statement_timeout = scrape_timeout;
        let p = raw.processlist;
        settings.processlist.min_time = p.min_time.unwrap_or(settings.processlist.min_time);
        settings.processlist.processes_by_user = p
            .processes_by_user
            .unwrap_or(settings.processlist.processes_by_user);
        settings.processlist.processes_by_host = p
            .processes_by_host
            .unwrap_or(settings.processlist.processes_by_host);
        let e = raw.events_statements;
        settings.events_statements.limit = e.limit.unwrap_or(settings.events_statements.limit);
        settings.events_statements.digest_text_limit = e
            .digest_text_limit
            .unwrap_or(settings.events_statements.digest_text_limit);
        settings.events_statements.time_limit = e
            .time_limit
            .unwrap_or(settings.events_statements.time_limit);
        settings.table_schemas = raw.table_schemas.into_iter().map(|t| t.0).collect();
        settings.queries = queries;
        Some((settings, inline))
    }

    /// A database target's `tls` section, files read. The drivers verify the certificate against the
    /// host they connect to and have no separate name or version floor to set, so accepting those
    /// keys would promise a check that does not happen.
    fn client_tls(&mut self, kind: &str, name: &str, t: RawTls) -> ClientTls {
        let tls_path = [kind, name, "tls"];
        for (key, set) in [
            ("server_name", t.server_name.is_some()),
            ("min_version", t.min_version.is_some()),
        ] {
            if set {
                self.error(
                    &[&tls_path[..], &[key]].concat(),
                    format!("not supported for {kind} targets: the certificate is verified against the host the target's address names"),
                );
            }
        }
        let mut read = |key: &str, file: Option<&Path>| {
            file.and_then(|f| self.read_file(&[&tls_path[..], &[key]].concat(), f))
        };
        ClientTls {
            ca_pem: read("ca_file", t.ca_file.as_deref()),
            cert_pem: read("cert_file", t.cert_file.as_deref()),
            key_pem: read("key_file", t.key_file.as_deref()).map(SecretBytes),
            insecure_skip_verify: t.insecure_skip_verify,
        }
    }

    fn redis(&mut self, name: &str, raw: RawRedis) -> Option<RedisSettings> {
        let errors_before = self.errors.len();
        let url = match ParsedUrl::parse(raw.url.0.expose_secret()) {
            Ok(u) => Some(u),
            Err(e) => {
                self.error(&["redis", name, "url"], e);
                None
            }
        };
        let password = self.secret(
            &["redis", name],
            "password",
            raw.password,
            raw.password_file.as_deref(),
        );
        let tls = raw.tls.map(|t| self.client_tls("redis", name, t));
        if self.errors.len() > errors_before {
            return None;
        }
        let mut settings = RedisSettings::new(url?);
        settings.user = raw.user.map(|t| t.0);
        settings.password = password;
        settings.tls = tls;
        let list = |v: Vec<Text>| v.into_iter().map(|t| t.0).collect::<Vec<_>>();
        settings.check_keys = list(raw.check_keys);
        settings.check_single_keys = list(raw.check_single_keys);
        settings.count_keys = list(raw.count_keys);
        settings.commands = raw
            .commands
            .into_iter()
            .map(|c| CustomCommand {
                help: c
                    .help
                    .map(|h| h.0)
                    .unwrap_or_else(|| format!("Custom command {}.", c.metric.0)),
                metric: c.metric.0,
                command: list(c.command),
                kind: match c.kind {
                    Some(RawMetricType::Counter) => MetricType::Counter,
                    Some(RawMetricType::Gauge) | None => MetricType::Gauge,
                },
            })
            .collect();
        if let Some(max) = raw.key_check_budget.max_keys {
            settings.key_check_budget.max_keys = max;
        }
        if let Some(t) = raw.key_check_budget.max_time {
            settings.key_check_budget.max_time = t;
        }
        if let Some(c) = raw.config_command {
            // An empty name means: never send CONFIG (it is renamed away or blocked).
            settings.config_command = Some(c.0).filter(|c| !c.is_empty());
        }
        Some(settings)
    }

    /// A custom query; the definition itself is checked by the collector, which knows the rules.
    fn query(&mut self, target: &str, index: usize, raw: RawQuery) -> (QuerySettings, bool) {
        let inline = RawQueryMetric {
            metric: raw.metric,
            kind: raw.kind,
            help: raw.help,
            key_labels: raw.key_labels,
            values: raw.values,
            value_label: raw.value_label,
            static_labels: raw.static_labels,
        };
        let inline_used = inline.metric.is_some()
            || inline.kind.is_some()
            || inline.help.is_some()
            || !inline.values.is_empty()
            || !inline.key_labels.is_empty()
            || inline.value_label.is_some()
            || !inline.static_labels.is_empty();
        let index_key = index.to_string();
        let path = ["mysql", target, "queries", index_key.as_str()];
        let metric_path = |m: &str, key: &'static str| -> Vec<String> {
            if inline_used {
                vec![key.to_owned()]
            } else {
                vec!["metrics".to_owned(), m.to_owned(), key.to_owned()]
            }
        };
        let raw_metrics = match (inline_used, raw.metrics.is_empty()) {
            (true, false) => {
                self.error(
                    &path,
                    "write one metric inline (metric, type, values, ...) or a list under metrics, not both",
                );
                Vec::new()
            }
            (true, true) => vec![inline],
            (false, _) => raw.metrics,
        };
        let name = raw
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
            let Some(metric) = rm.metric else {
                let key = metric_path(&m_key, "metric");
                let full: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(key.iter().map(String::as_str))
                    .collect();
                self.error_near(&full, "missing: the metric name is required");
                continue;
            };
            let Some(kind) = rm.kind else {
                let key = metric_path(&m_key, "type");
                let full: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(key.iter().map(String::as_str))
                    .collect();
                self.error_near(&full, "missing: expected counter or gauge");
                continue;
            };
            let help = rm
                .help
                .map(|h| h.0)
                .unwrap_or_else(|| format!("Custom query {name}."));
            metrics.push(QueryMetric {
                metric: metric.0,
                kind: match kind {
                    RawMetricType::Counter => MetricType::Counter,
                    RawMetricType::Gauge => MetricType::Gauge,
                },
                help,
                key_labels: rm.key_labels.into_iter().map(|t| t.0).collect(),
                values: rm.values.into_iter().map(|t| t.0).collect(),
                value_label: rm.value_label.map(|t| t.0),
                static_labels: rm
                    .static_labels
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
            });
        }
        let query = QuerySettings {
            name,
            query: raw.query.0,
            timeout: raw.timeout,
            min_interval: raw.min_interval.unwrap_or_default(),
            metrics,
        };
        (query, inline_used)
    }
}

fn validate(
    raw: RawConfig,
    source: &str,
    text: &str,
    base_dir: Option<&Path>,
    offset_from_flag: bool,
) -> Result<Config, ConfigErrors> {
    let mut v = Validator {
        source,
        text,
        base_dir,
        errors: Vec::new(),
    };
    let g = &raw.global;
    if !(MIN_BUDGET..=MAX_BUDGET).contains(&g.scrape_timeout) {
        v.error(
            &["global", "scrape_timeout"],
            format!("must be between {MIN_BUDGET:?} and {MAX_BUDGET:?}"),
        );
    }
    if g.timeout_offset >= g.scrape_timeout {
        let message = "must be smaller than scrape_timeout";
        if offset_from_flag {
            v.errors.push(ConfigError {
                source: "--timeout-offset".to_owned(),
                path: "global.timeout_offset".to_owned(),
                line: None,
                message: message.to_owned(),
            });
        } else {
            v.error(&["global", "timeout_offset"], message);
        }
    }
    if !(1..=MAX_CONCURRENCY).contains(&g.max_concurrency) {
        v.error(
            &["global", "max_concurrency"],
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        );
    }
    let global_labels = v.labels(&["global", "labels"], &raw.global.labels);
    let global = Global {
        scrape_timeout: g.scrape_timeout,
        timeout_offset: g.timeout_offset,
        max_concurrency: g.max_concurrency,
        labels: global_labels.clone(),
    };

    // Names: valid everywhere, unique across kinds.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let kinds = [
        ("http", raw.http.keys().collect::<Vec<_>>()),
        ("mysql", raw.mysql.keys().collect()),
        ("redis", raw.redis.keys().collect()),
    ];
    for (kind, names) in &kinds {
        for name in names {
            if !is_valid_name(name) {
                v.error(
                    &[kind, name],
                    "invalid target name: expected [A-Za-z0-9_.-]+",
                );
            }
            if let Some(other) = seen.insert(name, kind) {
                v.error(
                    &[kind, name],
                    format!("target name {name:?} is already used under {other}: names must be unique across kinds"),
                );
            }
        }
    }

    let mut targets = Vec::new();
    for (name, http) in raw.http {
        let own = v.labels(&["http", &name, "labels"], &http.labels);
        let Some(settings) = v.http(&name, http) else {
            continue;
        };
        match HttpCollector::new(settings) {
            Ok(c) => targets.push(Target::new(
                name,
                merge_labels(&global_labels, own),
                Arc::new(c) as Arc<dyn Collector>,
            )),
            Err(e) => {
                let mut path = vec!["http", name.as_str()];
                path.extend(e.field.split('.'));
                v.error(&path, e.message);
            }
        }
    }
    for (name, redis) in raw.redis {
        let own = v.labels(&["redis", &name, "labels"], &redis.labels);
        let Some(settings) = v.redis(&name, redis) else {
            continue;
        };
        match RedisCollector::new(settings) {
            Ok(c) => targets.push(Target::new(
                name,
                merge_labels(&global_labels, own),
                Arc::new(c) as Arc<dyn Collector>,
            )),
            Err(e) => {
                let mut path = vec!["redis", name.as_str()];
                path.extend(e.field.split(['.', '[', ']']).filter(|s| !s.is_empty()));
                v.error_near(&path, e.message);
            }
        }
    }
    for (name, mysql) in raw.mysql {
        let own = v.labels(&["mysql", &name, "labels"], &mysql.labels);
        let Some((settings, inline)) = v.mysql(&name, mysql, g.scrape_timeout) else {
            continue;
        };
        match MysqlCollector::new(settings) {
            Ok(c) => targets.push(Target::new(
                name,
                merge_labels(&global_labels, own),
                Arc::new(c) as Arc<dyn Collector>,
            )),
            Err(e) => {
                let mut path = vec!["mysql", name.as_str()];
                let mut field: Vec<&str> = e.field.split('.').collect();
                // `queries.N.metrics.0.key` of an inline query is written `queries.N.key`.
                if let ["queries", n, "metrics", "0", ..] = field.as_slice()
                    && n.parse::<usize>().is_ok_and(|n| inline.contains(&n))
                {
                    field.drain(2..4);
                }
                path.extend(field);
                v.error_near(&path, e.message);
            }
        }
    }
    if !v.errors.is_empty() {
        return Err(ConfigErrors(v.errors));
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Config {
        source: source.to_owned(),
        global,
        targets,
    })
}

fn merge_labels(
    global: &BTreeMap<String, String>,
    own: BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut all = global.clone();
    all.extend(own);
    all.into_iter().collect()
}

/// A key path as serde_yaml writes it in its own errors: `mysql.db.queries[1].values`.
fn key_path(path: &[&str]) -> String {
    let mut out = String::new();
    for key in path {
        if key.parse::<usize>().is_ok() {
            out.push('[');
            out.push_str(key);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
    }
    out
}

/// The line (1-based) of the last key of `path`, found by following the keys down the indentation.
/// Good enough for errors found after deserialization, where serde no longer knows positions; `None`
/// when the key is not in the text (it came from the environment, for instance).
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut min_indent = 0usize;
    let mut start = 0usize;
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    // The line of the list item just entered, whose first key follows its dash.
    let mut item_line: Option<usize> = None;
    for key in path {
        // A flow mapping (`labels: {job: x}`) keeps its keys on the parent's line.
        let on_parent_line = found
            .and_then(|n: usize| lines.get(n - 1))
            .and_then(|line| line.split_once('{'))
            .is_some_and(|(_, rest)| rest.contains(&format!("{key}:")));
        if on_parent_line {
            continue;
        }
        // A list index (`queries.2`): the third `- ` item below the parent. Its first key sits on the
        // dash line itself, so the next key is searched from that line on.
        if let (Ok(index), Some(_)) = (key.parse::<usize>(), found) {
            let mut seen = 0usize;
            let mut dash_indent = None;
            let mut hit = None;
            for (i, line) in lines.iter().enumerate().skip(start) {
                let indent = line.len() - line.trim_start().len();
                let body = line.trim_start();
                if body.is_empty() || body.starts_with('#') {
                    continue;
                }
                if indent < min_indent.saturating_sub(1) && !body.starts_with('-') {
                    break;
                }
                if body.starts_with("- ") || body == "-" {
                    let d = *dash_indent.get_or_insert(indent);
                    if indent == d {
                        if seen == index {
                            hit = Some((i, indent));
                            break;
                        }
                        seen += 1;
                    }
                } else if dash_indent.is_some_and(|d| indent <= d) {
                    break;
                }
            }
            let (i, indent) = hit?;
            found = Some(i + 1);
            start = i;
            // Keys of the item are indented past its dash, the first one on the dash line.
            min_indent = indent + 1;
            item_line = Some(i);
            continue;
        }
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let mut indent = line.len() - line.trim_start().len();
            if item_line == Some(i) {
                indent += 2;
            }
            let body = line.trim_start().trim_start_matches("- ");
            if found.is_some() && indent < min_indent && !line.trim().is_empty() {
                break;
            }
            let unquoted = body
                .strip_prefix(['"', '\''])
                .map(|b| b.replacen(['"', '\''], "", 1))
                .unwrap_or_else(|| body.to_owned());
            if indent >= min_indent && unquoted.starts_with(&format!("{key}:")) {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        start = i + 1;
        min_indent = indent + 1;
        item_line = None;
    }
    found
}

#[cfg(test)]
mod tests;
