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
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fanout_collectors::config::{Context, KindConfig, Labels, Visitor};
use fanout_collectors::family::{RESERVED_LABELS, is_valid_name};
use fanout_collectors::registry;
use fanout_collectors::{Collector, Kind};
use figment::providers::{Format, Serialized, Yaml};

use figment::Figment;
use figment::value::Value;
use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::modules::ModuleSpec;
use crate::scrape::{Global, MAX_BUDGET, MIN_BUDGET};
use crate::target::Target;

/// Prefix of environment variables that override the file; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "FANOUT_EXPORTER_";

/// Upper bound of `global.max_concurrency`: beyond it the limit protects nothing.
const MAX_CONCURRENCY: usize = 10_000;

/// One configuration problem, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded default>`), when the problem comes from it.
    pub source: String,
    /// Dotted key path (`<kind>.<target>.<key>`), empty for the document itself.
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

/// A validated configuration with its collectors built.
#[derive(Clone)]
pub struct Config {
    /// Where it came from, for the landing page and `--config.check`.
    pub source: String,
    /// Global settings.
    pub global: Global,
    /// Targets sorted by name.
    pub targets: Vec<Target>,
    /// Modules sorted by name, for `/probe?target=<address>&module=<name>`.
    pub modules: Vec<ModuleSpec>,
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
            .field(
                "modules",
                &self.modules.iter().map(|m| &m.name).collect::<Vec<_>>(),
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
        for m in &self.modules {
            text.push_str(&format!(
                "module {} ({}) allowed_targets: {} idle_timeout={} max_targets={} labels: {}\n",
                m.name,
                m.kind.name,
                m.allow,
                humantime::format_duration(m.idle_timeout),
                m.max_targets,
                labels(m.labels.iter().map(|(k, v)| (k, v))),
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

/// Where the YAML comes from.
#[derive(Clone)]
pub enum Input {
    /// A file given with `--config.file`.
    File(PathBuf),
    /// The embedded default (or any literal document, in tests).
    Text(String),
    /// A document built from elsewhere (the peers' environment variables), named by `source` in
    /// errors and on the status page. It may hold a password: Debug leaves the text out.
    Generated {
        /// Where it came from: `the environment (DATA_SOURCE_NAME)`.
        source: String,
        /// The YAML.
        text: String,
    },
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(path) => f.debug_tuple("File").field(path).finish(),
            Input::Text(_) => f.write_str("Text(..)"),
            Input::Generated { source, .. } => f
                .debug_struct("Generated")
                .field("source", source)
                .finish_non_exhaustive(),
        }
    }
}

/// Load, layer and validate the configuration from the process environment.
pub fn load(input: &Input, flags: &FlagOverrides) -> Result<Config, ConfigErrors> {
    let (source, text) = match input {
        Input::File(path) => (path.display().to_string(), read_text(path)?),
        Input::Text(text) => ("<embedded default>".to_owned(), text.clone()),
        Input::Generated { source, text } => (source.clone(), text.clone()),
    };
    check_file(&source, &text)?;
    let figment = Figment::new()
        .merge(Yaml::string(&text))
        .merge(EnvLayer::from_process().naming(&text))
        .merge(Serialized::default("global", flags));
    let layered = Layered::extract(&figment, &source)?;
    let flag_offset = flags.timeout_offset.is_some();
    validate(layered, &source, &text, input_dir(input), flag_offset)
}

/// Largest configuration file loaded: far above any real one (100,000 targets of a few lines each fit),
/// small enough that a hostile or mistaken file (a log, a dump) is refused at once instead of being
/// parsed for seconds, several times over, at every reload.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// The configuration file as text: a regular file of at most [`MAX_FILE_BYTES`], in UTF-8. A byte
/// that is not UTF-8 is reported by line and column, as YAML errors are.
fn read_text(path: &Path) -> Result<String, ConfigErrors> {
    let source = path.display().to_string();
    let bytes = fanout_collectors::config::read_bounded(path, MAX_FILE_BYTES).map_err(|e| {
        one(
            source.clone(),
            "",
            None,
            format!("cannot read the file: {e}"),
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = &bytes[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        let byte = bytes.get(valid.len()).copied().unwrap_or_default();
        one(
            source.clone(),
            "",
            Some(line),
            format!(
                "invalid UTF-8 (byte 0x{byte:02x} at column {column}): expected a YAML text file in UTF-8"
            ),
        )
    })
}

/// What the file, the environment and the flags say together: the global settings and every target,
/// deserialized by its kind but not yet validated.
struct Layered {
    global: RawGlobal,
    targets: Vec<Pending>,
    modules: Vec<modules::PendingModule>,
}

/// One target's config, deserialized by its kind, waiting for the names of all targets to be checked.
struct Pending {
    kind: &'static Kind,
    name: String,
    labels: Labels,
    build: Build,
    /// The entry as layered, for the fingerprint a reload compares.
    raw: Option<Value>,
}

/// A kind's [`KindConfig::build`] for one target, with its config inside.
type Build = Box<dyn FnOnce(&mut Context<'_>) -> Option<Arc<dyn Collector>>>;

impl Layered {
    fn extract(figment: &Figment, source: &str) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let to_errors = |e: figment::Error| -> Vec<ConfigError> {
            e.into_iter().map(|e| layered_error(source, e)).collect()
        };
        // Unknown sections can only come from the environment here: the file's were refused in step 1.
        match figment.extract_lossy::<BTreeMap<String, figment::value::Value>>() {
            Ok(top) => {
                for key in top.keys().filter(|k| !is_section(k)) {
                    errors.push(ConfigError {
                        source: "environment".to_owned(),
                        path: String::new(),
                        line: None,
                        message: format!(
                            "{} (set by {ENV_PREFIX}{}__* variables)",
                            unknown_section(key),
                            key.to_ascii_uppercase()
                        ),
                    });
                }
            }
            Err(e) => errors.extend(to_errors(e)),
        }
        let global = match figment.extract_lossy::<GlobalSection>() {
            Ok(g) => g.global,
            Err(e) => {
                errors.extend(to_errors(e));
                RawGlobal::default()
            }
        };
        struct Extract<'a> {
            figment: &'a Figment,
            /// The `modules` section as layered, read once for every kind's pass.
            raw_modules: BTreeMap<String, Value>,
            targets: Vec<Pending>,
            modules: Vec<modules::PendingModule>,
            errors: Vec<figment::Error>,
        }
        impl Visitor for Extract<'_> {
            fn kind<K: KindConfig>(&mut self) {
                match self.figment.extract_lossy::<Section<K>>() {
                    Ok(section) => {
                        let raw = raw_entries(self.figment, K::KIND.name);
                        self.targets
                            .extend(section.0.into_iter().map(|(name, config)| {
                                let raw = raw.get(&name).cloned();
                                pending(name, config, raw)
                            }));
                    }
                    Err(e) => self.errors.push(e),
                }
                match self.figment.extract_lossy::<modules::Section<K>>() {
                    Ok(section) => {
                        for (name, entry) in modules::of_kind(section) {
                            let block = self
                                .raw_modules
                                .get(&name)
                                .and_then(|m| m.as_dict())
                                .and_then(|d| d.get(K::KIND.name))
                                .cloned()
                                .unwrap_or_else(|| Value::from(figment::value::Dict::new()));
                            self.modules.push(modules::pending(name, entry, block));
                        }
                    }
                    Err(e) => self.errors.push(e),
                }
            }
        }
        let mut kinds = Extract {
            figment,
            raw_modules: raw_entries(figment, "modules"),
            targets: Vec::new(),
            modules: Vec::new(),
            errors: Vec::new(),
        };
        registry::each_kind(&mut kinds);
        // Every kind's pass reads every module, so a module's own mistake is reported once per kind.
        errors.extend(unique(kinds.errors.into_iter().flat_map(to_errors)));
        if errors.is_empty() {
            Ok(Self {
                global,
                targets: kinds.targets,
                modules: kinds.modules,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

fn pending<K: KindConfig>(name: String, config: K, raw: Option<Value>) -> Pending {
    Pending {
        kind: K::KIND,
        name,
        labels: config.labels().clone(),
        build: Box::new(move |ctx| config.build(ctx)),
        raw,
    }
}

/// The entries of the top-level section `key` (a kind's, `modules`) as layered, by name.
fn raw_entries(figment: &Figment, key: &str) -> BTreeMap<String, Value> {
    figment
        .find_value(key)
        .ok()
        .and_then(|v| v.into_dict())
        .map(|d| d.into_iter().collect())
        .unwrap_or_default()
}

/// What a collector was built from, for a reload to tell whether it can be kept: its kind, the
/// scrape timeout and config directory it was built with, every file it read (names and contents),
/// and its layered settings without the top-level keys in `skip`.
fn fingerprint(
    kind: &str,
    global: &Global,
    base_dir: Option<&Path>,
    ctx: &Context<'_>,
    raw: Option<&Value>,
    skip: &[&str],
) -> std::hash::DefaultHasher {
    let mut hasher = std::hash::DefaultHasher::new();
    (kind, global.scrape_timeout, base_dir, ctx.files_digest()).hash(&mut hasher);
    if let Some(raw) = raw {
        digest(raw, skip, &mut hasher);
    }
    hasher
}

/// A digest of a layered value, in key order, leaving out the top-level keys in `skip`.
fn digest(value: &Value, skip: &[&str], hasher: &mut impl Hasher) {
    match value {
        Value::Dict(_, dict) => {
            0u8.hash(hasher);
            for (key, v) in dict.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
                key.hash(hasher);
                digest(v, &[], hasher);
            }
        }
        Value::Array(_, items) => {
            1u8.hash(hasher);
            items.len().hash(hasher);
            for v in items {
                digest(v, &[], hasher);
            }
        }
        Value::String(_, s) => (2u8, s).hash(hasher),
        Value::Char(_, c) => (3u8, c).hash(hasher),
        Value::Bool(_, b) => (4u8, b).hash(hasher),
        Value::Num(_, n) => (5u8, format!("{n:?}")).hash(hasher),
        Value::Empty(_, e) => (6u8, format!("{e:?}")).hash(hasher),
    }
}

/// The errors without repeats, in the order first found.
fn unique(errors: impl IntoIterator<Item = ConfigError>) -> Vec<ConfigError> {
    let mut out: Vec<ConfigError> = Vec::new();
    for e in errors {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Whether `key` names a top-level section: `global`, `modules` or a registered kind.
fn is_section(key: &str) -> bool {
    key == "global" || key == "modules" || registry::kinds().iter().any(|k| k.name == key)
}

/// The top-level sections, quoted: `global`, `modules` and the kinds.
fn sections() -> Vec<String> {
    let mut names = vec!["`global`".to_owned(), "`modules`".to_owned()];
    names.extend(registry::kinds().iter().map(|k| format!("`{}`", k.name)));
    names
}

/// The message for a top-level key that names no section, listing those that exist.
fn unknown_section(key: &str) -> String {
    format!(
        "unknown field `{key}`, expected one of {}",
        sections().join(", ")
    )
}

/// The `global` section of a document; other sections are skipped (they are read by their kinds).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlobalSection {
    global: RawGlobal,
}

/// Which top-level key an [`Under`] reads.
trait TopKey {
    /// The key.
    fn key() -> &'static str;
}

/// The value under one top-level key, read from the whole document with the other sections skipped,
/// so that serde_yaml's and figment's errors keep the full key path and position. The default when
/// the key is absent or empty.
struct Under<P, T>(T, PhantomData<P>);

impl<'de, P: TopKey, T: Deserialize<'de> + Default> Deserialize<'de> for Under<P, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top<P, T>(PhantomData<(P, T)>);
        impl<'de, P: TopKey, T: Deserialize<'de> + Default> de::Visitor<'de> for Top<P, T> {
            type Value = Under<P, T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Under<P, T>, E> {
                Ok(Under(T::default(), PhantomData))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Under<P, T>, A::Error> {
                let mut value = T::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == P::key() {
                        value = map.next_value()?;
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(Under(value, PhantomData))
            }
        }
        d.deserialize_map(Top(PhantomData))
    }
}

/// The section of kind `K`.
struct KindKey<K>(PhantomData<K>);

impl<K: KindConfig> TopKey for KindKey<K> {
    fn key() -> &'static str {
        K::KIND.name
    }
}

/// The entries of kind `K`'s section, by target name.
type Section<K> = Under<KindKey<K>, BTreeMap<String, K>>;

/// An error found once the environment and flags are layered on: the file alone was fine, so it names
/// the environment variable when one supplied the value.
fn layered_error(source: &str, e: figment::Error) -> ConfigError {
    let path = e.path.join(".");
    let from_env = e
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let (source, message) = if from_env {
        let variable = format!(
            "{ENV_PREFIX}{}",
            e.path
                .join("__")
                .to_ascii_uppercase()
                .replace(['-', '.'], "_")
        );
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

/// serde's type errors quote the value they refused (`invalid type: string "admin:hunter2"`), which may
/// be a secret put under the wrong key; they also name internal types. Keep the type, drop the value.
fn redact(message: &str) -> String {
    static QUOTED: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
        Regex::new(r#"(invalid type: (?:found )?)(string "(?:[^"\\]|\\.)*"|integer `[^`]*`|floating point `[^`]*`|boolean `[^`]*`)"#).ok()
    });
    static RAW_TYPE: std::sync::LazyLock<Option<Regex>> =
        std::sync::LazyLock::new(|| Regex::new(r"struct \w+").ok());
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
    // Rust's integer types are no words for a person editing YAML.
    static INTEGER: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
        Regex::new(r"expected (?:(u)|i)(8|16|32|64|128|size)\b|expected f(?:32|64)\b").ok()
    });
    if let Some(re) = INTEGER.as_ref() {
        out = re
            .replace_all(&out, |c: &regex::Captures<'_>| {
                if c[0].starts_with("expected f") {
                    return "expected a number".to_owned();
                }
                let unsigned = c.get(1).is_some();
                // The range, where it is short enough to be worth reading.
                match (unsigned, c.get(2).map(|m| m.as_str())) {
                    (true, Some("8")) => "expected a whole number from 0 to 255".to_owned(),
                    (true, Some("16")) => "expected a whole number from 0 to 65535".to_owned(),
                    (true, Some("32")) => "expected a whole number from 0 to 4294967295".to_owned(),
                    (true, _) => "expected a non-negative whole number".to_owned(),
                    (false, _) => "expected a whole number".to_owned(),
                }
            })
            .into_owned();
    }
    duration_hint(&out)
}

/// A duration that did not parse, said with Prometheus' syntax, and a bare number told its missing
/// unit (`10` is not ten seconds anywhere in Prometheus' configuration either).
fn duration_hint(message: &str) -> String {
    static DURATION: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
        Regex::new(r#"invalid value: string "((?:[^"\\]|\\.)*)", expected a duration"#).ok()
    });
    let Some(re) = DURATION.as_ref() else {
        return message.to_owned();
    };
    re.replace_all(message, |c: &regex::Captures<'_>| {
        let value = &c[1];
        if !value.is_empty() && value.parse::<f64>().is_ok() {
            format!(
                "{value} has no unit: write {value}s for seconds (a duration takes ms, s, m, h, d, w or y, combined as in 1m30s)"
            )
        } else {
            format!(
                "expected a duration such as 10s, 500ms or 1m30s (units ms, s, m, h, d, w, y), not \"{value}\""
            )
        }
    })
    .into_owned()
}

fn input_dir(input: &Input) -> Option<&Path> {
    match input {
        Input::File(p) => p.parent(),
        Input::Text(_) | Input::Generated { .. } => None,
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

/// The first control character YAML does not allow in a document (anything but tab, line breaks and
/// NEL), as (line, column, character). serde_yaml refuses them too, but counts the position in bytes
/// from the start of the file and reports line 1.
fn control_character(text: &str) -> Option<(usize, usize, char)> {
    text.split('\n').enumerate().find_map(|(i, line)| {
        line.chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\r' | '\u{85}'))
            .map(|(column, c)| (i + 1, column + 1, c))
    })
}

/// Most values (scalars, sequences and mappings) a document may hold once every alias is replaced by
/// what its anchor names. serde_yaml stops nested expansions (the "billion laughs"), but not a flat one:
/// a 25 KB file whose 5,000 aliases each name a 5,000-item list took 11 s and 1.8 GB to refuse. Every
/// later pass (serde_yaml's, figment's) expands the aliases again, so the count is checked first, by a
/// pass that allocates nothing. Two million is more than 100,000 targets of a few keys each.
const MAX_VALUES: usize = 2_000_000;

/// Counts the values of a document as serde_yaml replays it (aliases expanded), failing once more
/// than the budget left were seen.
struct Budget<'a>(&'a std::cell::Cell<usize>);

impl Budget<'_> {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "the document holds more than {MAX_VALUES} values once its aliases are expanded \
                 (an alias bomb?): expected each anchor to be reused a few times"
            ))),
        }
    }
}

impl<'de> de::DeserializeSeed<'de> for Budget<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Budget<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.spend()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.spend()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.spend()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.spend()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.spend()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.spend()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.spend()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.spend()?;
        de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.spend()?;
        de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend()?;
        while seq.next_element_seed(Budget(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend()?;
        while map.next_key_seed(Budget(self.0))?.is_some() {
            map.next_value_seed(Budget(self.0))?;
        }
        Ok(())
    }
    /// A tagged value (`!tag value`).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use de::VariantAccess as _;
        self.spend()?;
        let ((), variant) = data.variant_seed(Budget(self.0))?;
        variant.newtype_variant_seed(Budget(self.0))
    }
}

/// A serde_yaml error as a config error: its line, its message without the values it quotes, and,
/// where serde_yaml words it for developers, what happened and what was expected instead.
fn located(source: &str, text: &str, e: serde_yaml::Error) -> ConfigError {
    static DUPLICATE: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
        Regex::new(
            r#"^(?:(.+): )?duplicate entry with key "([^"\\]*)"(?: at line (\d+) column (\d+))?$"#,
        )
        .ok()
    });
    let location = e.location().map(|l| (l.line(), l.column()));
    let mut error = ConfigError {
        source: source.to_owned(),
        path: String::new(),
        line: location.map(|(line, _)| line),
        message: redact(&e.to_string()),
    };
    if error.message == "repetition limit exceeded" {
        error.message =
            "aliases are expanded too often (repetition limit exceeded; an alias bomb?): expected \
                         each anchor to be reused a few times"
                .to_owned();
    } else if let Some(rest) = error.message.strip_prefix("recursion limit exceeded") {
        error.message = format!(
            "values nest too deep (recursion limit exceeded{rest}): expected a few levels of mappings and lists"
        );
    } else if error.message.contains("more than one document") {
        error.message = "the file holds more than one YAML document (separated by `---`): \
                         expected one document"
            .to_owned();
    } else if let Some(c) = DUPLICATE
        .as_ref()
        .and_then(|re| re.captures(&error.message))
    {
        // serde_yaml points at the start of the mapping; the line to fix is the repeated key's.
        let (path, key) = (c.get(1).map_or("", |m| m.as_str()), &c[2]);
        // At the top level serde_yaml leaves the position out of the message.
        let at = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<usize>().ok());
        let start = at(3).zip(at(4)).or(location);
        if let Some((line, column)) = start
            && let Some((first, again)) = locate::duplicate(text, line, column, key)
        {
            error.path = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
            error.line = Some(again);
            error.message = format!(
                "duplicate key, first at line {first}: a key may appear only once in a mapping"
            );
        }
    }
    error
}

/// Step 1: the file on its own, for errors with line numbers.
fn check_file(source: &str, text: &str) -> Result<(), ConfigErrors> {
    if let Some((line, column, c)) = control_character(text) {
        return Err(one(
            source.to_owned(),
            "",
            Some(line),
            format!(
                "control character U+{:04X} at column {column}: expected YAML text (write it escaped, \"\\x{:02X}\", inside a double-quoted string)",
                u32::from(c),
                u32::from(c)
            ),
        ));
    }
    let at = |e: serde_yaml::Error| located(source, text, e);
    // Parsing into a `Value` first catches duplicate keys, which a struct or BTreeMap would silently
    // overwrite.
    let budget = std::cell::Cell::new(MAX_VALUES);
    de::DeserializeSeed::deserialize(Budget(&budget), serde_yaml::Deserializer::from_str(text))
        .map_err(|e| ConfigErrors(vec![at(e)]))?;
    let document =
        serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| ConfigErrors(vec![at(e)]))?;
    let mut errors = Vec::new();
    match &document {
        serde_yaml::Value::Mapping(top) => {
            for key in top.keys() {
                let name = key.as_str().unwrap_or_default();
                if !is_section(name) {
                    errors.push(ConfigError {
                        source: source.to_owned(),
                        path: String::new(),
                        line: locate(text, &[name]),
                        message: unknown_section(name),
                    });
                }
            }
        }
        // A file truncated while it was written (by an editor, a ConfigMap update, a full disk) must
        // not load as "no targets" and silently stop every scrape at the next reload.
        serde_yaml::Value::Null => errors.push(ConfigError {
            source: source.to_owned(),
            path: String::new(),
            line: None,
            message: format!(
                "the file holds no configuration (it is empty or only comments): expected a mapping of \
                 sections ({}); write `{{}}` for a configuration that comes from the environment only",
                sections().join(", ")
            ),
        }),
        _ => errors.push(ConfigError {
            source: source.to_owned(),
            path: String::new(),
            line: Some(1),
            message: "invalid type: expected a mapping of sections (global and the kinds)"
                .to_owned(),
        }),
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    if let Err(e) = serde_yaml::from_str::<GlobalSection>(text) {
        errors.push(at(e));
    }
    struct Check<'a> {
        text: &'a str,
        errors: Vec<serde_yaml::Error>,
    }
    impl Visitor for Check<'_> {
        fn kind<K: KindConfig>(&mut self) {
            if let Err(e) = serde_yaml::from_str::<Section<K>>(self.text) {
                self.errors.push(e);
            }
            if let Err(e) = serde_yaml::from_str::<modules::Section<K>>(self.text) {
                self.errors.push(e);
            }
        }
    }
    let mut check = Check {
        text,
        errors: Vec::new(),
    };
    registry::each_kind(&mut check);
    // Every kind's pass reads every module, so a module's own mistake is reported once per kind.
    errors.extend(unique(check.errors.into_iter().map(at)));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

// ---------------------------------------------------------------------------------------------------
// The global section. Kinds' sections are read by the kinds themselves (`fanout_collectors::registry`).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawGlobal {
    #[serde(with = "humantime_serde")]
    scrape_timeout: Duration,
    #[serde(with = "humantime_serde")]
    timeout_offset: Duration,
    max_concurrency: usize,
    labels: Labels,
}

impl Default for RawGlobal {
    fn default() -> Self {
        Self {
            scrape_timeout: Duration::from_secs(10),
            timeout_offset: Duration::from_millis(500),
            max_concurrency: 64,
            labels: Labels::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Step 3: validation.

struct Validator<'a> {
    source: &'a str,
    text: &'a str,
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

    fn labels(&mut self, path: &[&str], labels: &Labels) -> BTreeMap<String, String> {
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
}

fn validate(
    layered: Layered,
    source: &str,
    text: &str,
    base_dir: Option<&Path>,
    offset_from_flag: bool,
) -> Result<Config, ConfigErrors> {
    let mut v = Validator {
        source,
        text,
        errors: Vec::new(),
    };
    let g = &layered.global;
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
            // The default offset may be the one in conflict, absent from the file.
            v.error_near(&["global", "timeout_offset"], message);
        }
    }
    if !(1..=MAX_CONCURRENCY).contains(&g.max_concurrency) {
        v.error(
            &["global", "max_concurrency"],
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        );
    }
    let global_labels = v.labels(&["global", "labels"], &g.labels);
    let global = Global {
        scrape_timeout: g.scrape_timeout,
        timeout_offset: g.timeout_offset,
        max_concurrency: g.max_concurrency,
        labels: global_labels.clone(),
    };

    // Names: valid everywhere, unique across kinds.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for t in &layered.targets {
        let (kind, name) = (t.kind.name, t.name.as_str());
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

    let mut targets = Vec::new();
    for t in layered.targets {
        let kind = t.kind.name;
        let own = v.labels(&[kind, &t.name, "labels"], &t.labels);
        let mut ctx = Context::new(base_dir, global.scrape_timeout);
        let collector = (t.build)(&mut ctx);
        // Labels are applied by the engine: changing them needs no new connection.
        let hasher = fingerprint(kind, &global, base_dir, &ctx, t.raw.as_ref(), &["labels"]);
        v.issues(&[kind, t.name.as_str()], ctx);
        if let Some(collector) = collector {
            targets.push(
                Target::new(t.name, merge_labels(&global_labels, own), collector)
                    .with_fingerprint(hasher.finish()),
            );
        }
    }
    let mut modules: Vec<ModuleSpec> = layered
        .modules
        .into_iter()
        .filter_map(|m| v.module(m, &global, &global_labels, base_dir))
        .collect();
    if !v.errors.is_empty() {
        return Err(ConfigErrors(v.errors));
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Config {
        source: source.to_owned(),
        global,
        targets,
        modules,
    })
}

impl Validator<'_> {
    /// Record a kind's issues, below `prefix`.
    fn issues(&mut self, prefix: &[&str], ctx: Context<'_>) {
        for issue in ctx.into_issues() {
            let mut path = prefix.to_vec();
            path.extend(issue.path.iter().map(String::as_str));
            if issue.near {
                self.error_near(&path, issue.message);
            } else {
                self.error(&path, issue.message);
            }
        }
    }
}

fn merge_labels(
    global: &BTreeMap<String, String>,
    own: BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut all = global.clone();
    all.extend(own);
    all.into_iter().collect()
}

mod env;
pub(crate) mod locate;
mod modules;

use env::EnvLayer;
use locate::{key_path, locate};

#[cfg(test)]
mod tests;
