//! The `modules` section: per module, one kind's target settings without the address, plus the
//! allow-list and pool limits.
//!
//! A module's kind block is deserialized by the kind itself, as a target's entry is, with the address
//! supplied by [`WithAddress`] (a placeholder when the file is checked, the probed address later), so
//! every error keeps its key path and line and a module accepts exactly the keys a target does.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fanout_collectors::Kind;
use fanout_collectors::config::{Context, Guard, KindConfig, Labels, Text};
use fanout_collectors::family::is_valid_name;
use fanout_collectors::registry;
use figment::Figment;
use figment::providers::Serialized;
use figment::value::Value;
use serde::de::value::{MapDeserializer, StrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

use super::{Build, TopKey, Under, Validator, fingerprint, key_path, merge_labels, redact};
use crate::modules::allow::AllowList;
use crate::modules::{Factory, ModuleSpec};
use crate::scrape::Global;

/// Default `idle_timeout`: a few scrape intervals of the common 1m, so a target Prometheus still
/// scrapes keeps its connection, and one that left service discovery is closed soon after.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Default `max_targets`.
pub const DEFAULT_MAX_TARGETS: usize = 1000;

/// The settings every module has, whatever its kind.
#[derive(Debug, Clone, Default)]
pub struct Common {
    /// `allowed_targets` as written; `None` when absent.
    pub allowed_targets: Option<Vec<String>>,
    /// `idle_timeout`.
    pub idle_timeout: Option<Duration>,
    /// `max_targets`.
    pub max_targets: Option<usize>,
}

/// One module whose kind block is kind `K`'s.
pub struct Entry<K> {
    /// The shared settings.
    pub common: Common,
    /// The kind block, deserialized with a placeholder address.
    pub config: K,
}

/// The `modules` section.
pub struct ModulesKey;

impl TopKey for ModulesKey {
    fn key() -> &'static str {
        "modules"
    }
}

/// Every module, by name; those whose kind block is `K`'s are `Some`.
pub type Section<K> = Under<ModulesKey, BTreeMap<String, Maybe<K>>>;

/// The modules of kind `K` in a [`Section`], by name.
pub fn of_kind<K>(section: Section<K>) -> impl Iterator<Item = (String, Entry<K>)> {
    section
        .0
        .into_iter()
        .filter_map(|(name, m)| m.0.map(|e| (name, e)))
}

/// A module entry, `Some` when its kind block is `K`'s.
pub struct Maybe<K>(Option<Entry<K>>);

impl<'de, K: KindConfig> de::Deserialize<'de> for Maybe<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<K>(PhantomData<K>);
        impl<'de, K: KindConfig> Visitor<'de> for Fields<K> {
            type Value = Maybe<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a module: one kind block and allowed_targets")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Maybe<K>, A::Error> {
                let kinds = registry::kinds();
                let mut common = Common::default();
                let mut config = None;
                let mut blocks: Vec<String> = Vec::new();
                while let Some(key) = map.next_key_seed(ModuleKey)? {
                    match key.as_str() {
                        "allowed_targets" => {
                            let rules: Vec<Text> = map.next_value()?;
                            common.allowed_targets = Some(rules.into_iter().map(|t| t.0).collect());
                        }
                        "idle_timeout" => {
                            common.idle_timeout = Some(map.next_value::<HumanDuration>()?.0);
                        }
                        "max_targets" => common.max_targets = Some(map.next_value()?),
                        name if name == K::KIND.name => {
                            blocks.push(key.clone());
                            config = Some(map.next_value_seed(Block::<K>(PhantomData))?);
                        }
                        name if kinds.iter().any(|k| k.name == name) => {
                            blocks.push(key.clone());
                            map.next_value::<de::IgnoredAny>()?;
                        }
                        other => return Err(de::Error::custom(unknown_module_key(other))),
                    }
                }
                match blocks.len() {
                    0 => {
                        let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
                        Err(de::Error::custom(format!(
                            "a module needs one kind block ({}) holding that kind's target settings without the address",
                            names.join(", ")
                        )))
                    }
                    1 => Ok(Maybe(config.map(|config| Entry { common, config }))),
                    _ => Err(de::Error::custom(format!(
                        "a module has one kind block, found {}: make one module per kind",
                        blocks.join(" and ")
                    ))),
                }
            }
        }
        d.deserialize_map(Fields(PhantomData))
    }
}

/// The keys of a module besides its kind block.
const MODULE_KEYS: [&str; 3] = ["allowed_targets", "idle_timeout", "max_targets"];

fn unknown_module_key(key: &str) -> String {
    let mut expected: Vec<String> = MODULE_KEYS.iter().map(|k| format!("`{k}`")).collect();
    expected.extend(registry::kinds().iter().map(|k| format!("`{}`", k.name)));
    let mut message = format!(
        "unknown field `{key}`, expected one of {}",
        expected.join(", ")
    );
    // A blackbox_exporter configuration given as ours: say what it is and where the mapping is.
    if key == "prober" {
        message.push_str(
            "; this is a blackbox_exporter module: here a module holds one kind block (`http:` with the target settings blackbox's http prober has) and `allowed_targets` (README, Migrating from blackbox_exporter)",
        );
    }
    message
}

/// A module's key, refused while it is being read when it is not one, as serde's derived structs do:
/// serde_yaml places an error raised there on the key's line, and one raised after it on the line
/// where the module starts.
struct ModuleKey;

impl<'de> DeserializeSeed<'de> for ModuleKey {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for ModuleKey {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a module key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        if MODULE_KEYS.contains(&key) || registry::kinds().iter().any(|k| k.name == key) {
            Ok(key.to_owned())
        } else {
            Err(E::custom(unknown_module_key(key)))
        }
    }
}

/// Deserializes kind `K`'s block with its placeholder address.
struct Block<K>(PhantomData<K>);

impl<'de, K: KindConfig> DeserializeSeed<'de> for Block<K> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        K::deserialize(WithAddress::new(d, K::ADDRESS_KEY, K::CHECK_ADDRESS))
    }
}

/// A `humantime` duration as a map value.
struct HumanDuration(Duration);

impl<'de> de::Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        humantime_serde::deserialize(d).map(HumanDuration)
    }
}

/// A deserializer for a kind's block that adds one key (the address) to the mapping it reads, and
/// refuses that key when the block itself has it: in a module, the address comes from `/probe`.
pub struct WithAddress<'a, D> {
    inner: D,
    key: &'static str,
    address: &'a str,
}

impl<'a, D> WithAddress<'a, D> {
    /// `inner`'s mapping with `key: address` added.
    pub fn new(inner: D, key: &'static str, address: &'a str) -> Self {
        Self {
            inner,
            key,
            address,
        }
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for WithAddress<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Inject {
            visitor,
            key: self.key,
            address: self.address,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct Inject<'a, V> {
    visitor: V,
    key: &'static str,
    address: &'a str,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Inject<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of the kind's settings")
    }

    /// `redis:` with nothing below it: a module that needs no settings.
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        let empty = MapDeserializer::<_, E>::new(std::iter::empty::<(String, String)>());
        self.visitor
            .visit_map(InjectMap::new(empty, self.key, self.address))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor
            .visit_map(InjectMap::new(map, self.key, self.address))
    }
}

struct InjectMap<'a, A> {
    inner: A,
    key: &'static str,
    /// The address, until it has been handed out.
    address: Option<&'a str>,
    /// The inner mapping has no more keys; the address key comes last, so that the block's own
    /// address key (an error) is met before it.
    inner_done: bool,
    /// The next value asked for is the address.
    value_next: bool,
    /// The next value asked for belongs to the block's own address key, which is refused while
    /// reading it, so that the error's path names the key (and the environment variable).
    refuse_next: bool,
}

impl<'a, A> InjectMap<'a, A> {
    fn new(inner: A, key: &'static str, address: &'a str) -> Self {
        Self {
            inner,
            key,
            address: Some(address),
            inner_done: false,
            value_next: false,
            refuse_next: false,
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for InjectMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        if !self.inner_done {
            match self.inner.next_key::<String>()? {
                Some(key) => {
                    self.refuse_next = key == self.key;
                    let key: StringDeserializer<A::Error> = key.into_deserializer();
                    return seed.deserialize(key).map(Some);
                }
                None => self.inner_done = true,
            }
        }
        if self.address.is_some() && !self.value_next {
            self.value_next = true;
            return seed
                .deserialize(StrDeserializer::<A::Error>::new(self.key))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        if std::mem::take(&mut self.refuse_next) {
            return self
                .inner
                .next_value_seed(Refuse(self.key, PhantomData::<S::Value>));
        }
        if self.value_next
            && let Some(address) = self.address.take()
        {
            return seed.deserialize(StrDeserializer::<A::Error>::new(address));
        }
        self.inner.next_value_seed(seed)
    }
}

/// The value of a module's own address key: always an error.
struct Refuse<T>(&'static str, PhantomData<T>);

impl<'de, T> DeserializeSeed<'de> for Refuse<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<T, D::Error> {
        Err(de::Error::custom(format!(
            "a module has no `{}`: each /probe?target= gives the address; remove it",
            self.0
        )))
    }
}

// ---------------------------------------------------------------------------------------------------
// Validation, and the factory each module builds its targets' collectors with.

/// One module, deserialized by its kind with a placeholder address, waiting for validation.
pub(super) struct PendingModule {
    kind: &'static Kind,
    name: String,
    common: Common,
    labels: Labels,
    /// Builds the placeholder collector, which checks the module's settings (files, TLS material).
    check: Build,
    /// The kind block as layered, from which each probed address gets its own collector.
    raw: Value,
    destination: fn(&str) -> Result<fanout_collectors::config::Destination, String>,
    factory: fn(Value, Option<PathBuf>, Duration, Guard) -> Factory,
}

pub(super) fn pending<K: KindConfig>(name: String, entry: Entry<K>, raw: Value) -> PendingModule {
    let config = entry.config;
    PendingModule {
        kind: K::KIND,
        name,
        common: entry.common,
        labels: config.labels().clone(),
        check: Box::new(move |ctx| config.build(ctx)),
        raw,
        destination: K::destination,
        factory: factory::<K>,
    }
}

/// How a module of kind `K` builds a collector for a probed address: its kind block with the address
/// added, extracted as leniently as the file was, validated and built by the kind. Secret files are
/// read afresh for every new address.
fn factory<K: KindConfig>(
    raw: Value,
    base_dir: Option<PathBuf>,
    scrape_timeout: Duration,
    guard: Guard,
) -> Factory {
    Arc::new(move |address: &str| {
        let mut block = raw.as_dict().cloned().unwrap_or_default();
        block.insert(K::ADDRESS_KEY.to_owned(), Value::from(address.to_owned()));
        let config = Figment::from(Serialized::defaults(block))
            .extract_lossy::<K>()
            .map_err(|e| redact(&e.to_string()))?;
        let mut ctx = Context::new(base_dir.as_deref(), scrape_timeout).with_guard(guard.clone());
        let collector = config.build(&mut ctx);
        let issues: Vec<String> = ctx
            .into_issues()
            .into_iter()
            .map(|i| {
                let path: Vec<&str> = i.path.iter().map(String::as_str).collect();
                match key_path(&path) {
                    path if path.is_empty() => i.message,
                    path => format!("{path}: {}", i.message),
                }
            })
            .collect();
        match collector {
            Some(c) if issues.is_empty() => Ok(c),
            _ => Err(issues.join("; ")),
        }
    })
}

/// Bounds of `idle_timeout`: shorter than a second would close connections between two scrapes of
/// any sane interval; longer than a day keeps departed targets' connections for no reason.
const IDLE_TIMEOUT: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(86_400);

/// Upper bound of `max_targets`.
const MAX_TARGETS: usize = 100_000;

impl Validator<'_> {
    pub(super) fn module(
        &mut self,
        m: PendingModule,
        global: &Global,
        global_labels: &BTreeMap<String, String>,
        base_dir: Option<&Path>,
    ) -> Option<ModuleSpec> {
        let (name, kind) = (m.name.as_str(), m.kind.name);
        let errors_before = self.errors.len();
        if !is_valid_name(name) {
            self.error(
                &["modules", name],
                "invalid module name: expected [A-Za-z0-9_.-]+",
            );
        }
        let allow = match &m.common.allowed_targets {
            None => {
                self.error_near(
                    &["modules", name, "allowed_targets"],
                    "missing: list the addresses this module may probe (CIDRs such as 10.0.0.0/8, \
                     host-name globs such as *.svc.cluster.local, URL prefixes); nothing is allowed by default",
                );
                None
            }
            Some(rules) if rules.is_empty() => {
                self.error(
                    &["modules", name, "allowed_targets"],
                    "empty: list at least one address rule; nothing is allowed by default",
                );
                None
            }
            Some(rules) => match AllowList::parse(rules) {
                Ok(list) => Some(list),
                Err((index, why)) => {
                    let index = index.to_string();
                    self.error(&["modules", name, "allowed_targets", &index], why);
                    None
                }
            },
        };
        let idle_timeout = m.common.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT);
        if !IDLE_TIMEOUT.contains(&idle_timeout) {
            self.error(
                &["modules", name, "idle_timeout"],
                format!(
                    "must be between {} and {}",
                    humantime::format_duration(*IDLE_TIMEOUT.start()),
                    humantime::format_duration(*IDLE_TIMEOUT.end())
                ),
            );
        }
        let max_targets = m.common.max_targets.unwrap_or(DEFAULT_MAX_TARGETS);
        if !(1..=MAX_TARGETS).contains(&max_targets) {
            self.error(
                &["modules", name, "max_targets"],
                format!("must be between 1 and {MAX_TARGETS}"),
            );
        }
        let own = self.labels(&["modules", name, kind, "labels"], &m.labels);
        let labels = merge_labels(global_labels, own);
        let mut ctx = Context::new(base_dir, global.scrape_timeout);
        let checked = (m.check)(&mut ctx);
        let mut hasher = fingerprint(kind, global, base_dir, &ctx, Some(&m.raw), &[]);
        (
            &m.common.allowed_targets,
            idle_timeout,
            max_targets,
            &labels,
        )
            .hash(&mut hasher);
        self.issues(&["modules", name, kind], ctx);
        // The placeholder collector only proved the settings; it never connected.
        drop(checked);
        if self.errors.len() > errors_before {
            return None;
        }
        let allow = allow?;
        let guard = {
            let allow = allow.clone();
            Guard::new(move |d| allow.allows(d))
        };
        Some(ModuleSpec {
            name: m.name.clone(),
            kind: m.kind,
            allow,
            idle_timeout,
            max_targets,
            labels,
            destination: m.destination,
            factory: (m.factory)(
                m.raw,
                base_dir.map(Path::to_owned),
                global.scrape_timeout,
                guard,
            ),
            fingerprint: hasher.finish(),
        })
    }
}
