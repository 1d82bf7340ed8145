//! What every kind's config shares, so that each kind can deserialize and validate its own section
//! (`<kind>/config.rs`) while the binary keeps file loading, layering and line numbers.
//!
//! - Scalars that may arrive from the environment typed as numbers or booleans but mean text
//!   ([`Text`], [`Secret`]): the binary's environment layer hands values over as strings, and a secret
//!   `000123` or a label value `1.10` must stay as written.
//! - [`Pattern`]: a regular expression compiled while deserializing, so a bad one has a line number.
//! - [`KindConfig`]: the contract of a kind's config type, which [`crate::registry`] lists.
//! - [`Context`]: reading files named by the config (relative to it), secrets given inline or as
//!   files, and errors recorded by key path below the target. The binary prefixes the path with the
//!   kind and target name and finds the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer};

use crate::secret::SecretString;
use crate::{Collector, Kind, SettingsError};

/// A kind's config for one target, as the kind's section of the config file holds it
/// (`<kind>: {<target name>: <this>}`).
///
/// The kind deserializes and validates it (denying unknown keys, with its own defaults) and builds
/// the collector; the binary only layers sources, checks names and labels, and locates errors.
pub trait KindConfig: DeserializeOwned + 'static {
    /// The kind: its section name, up metric and its HELP.
    const KIND: &'static Kind;

    /// The key that holds a target's address (`url`, `address`). A module (settings shared by many
    /// targets that Prometheus' service discovery names) leaves it out; each `/probe?target=`
    /// supplies it.
    const ADDRESS_KEY: &'static str;

    /// An address in the kind's syntax, used only to check a module's settings when the config is
    /// loaded (building a collector never connects). A reserved `.invalid` name, so nothing could
    /// answer it even by mistake.
    const CHECK_ADDRESS: &'static str;

    /// Where `address` points, parsed the way the kind parses it to connect, so that an allow-list
    /// judges exactly the host the collector would reach, before any connection is made. Errors never
    /// quote the address, which may hold a password.
    fn destination(address: &str) -> Result<Destination, String>;

    /// The target's own labels, merged by the binary with the global ones.
    fn labels(&self) -> &Labels;

    /// Validate and build the target's collector. Problems are recorded in `ctx`, by key path below
    /// the target; `None` when there were any.
    fn build(self, ctx: &mut Context<'_>) -> Option<Arc<dyn Collector>>;
}

/// Called once per registered kind, with the kind's config type: the binary runs its generic
/// loading steps through this, so it never names a kind.
pub trait Visitor {
    /// Handle kind `K`.
    fn kind<K: KindConfig>(&mut self);
}

/// Where a target's address points: what an allow-list judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A TCP endpoint.
    Net {
        /// The scheme as the kind names it (`mysql`, `redis`, `rediss`, `http`, `https`).
        scheme: String,
        /// The host the collector connects to.
        host: Host,
        /// The port it connects to (the scheme's default when the address has none).
        port: u16,
        /// The URL path (`/`, `/healthz`, a Redis database `/2`); empty when the kind has none.
        path: String,
    },
    /// A Unix socket.
    Unix(PathBuf),
}

/// Judges a destination a collector is about to reach on its own (an HTTP redirect's target): a
/// module's allow-list must hold for every hop, not only for the address it was given.
#[derive(Clone)]
pub struct Guard(Arc<dyn Fn(&Destination) -> bool + Send + Sync>);

impl Guard {
    /// A guard allowing what `allows` allows.
    pub fn new(allows: impl Fn(&Destination) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(allows))
    }

    /// Whether `destination` may be reached.
    pub fn allows(&self, destination: &Destination) -> bool {
        (self.0)(destination)
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Guard")
    }
}

/// The host part of a [`Destination`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (IPv4-mapped IPv6 addresses are given as IPv4).
    Ip(std::net::IpAddr),
    /// A DNS name, lower-cased.
    Name(String),
}

impl Destination {
    /// A TCP destination. A host that is neither an IP literal nor a plain DNS name (letters, digits,
    /// `-`, `_` and dots) is refused: an allow-list could not judge it reliably.
    pub fn net(scheme: &str, host: &str, port: u16, path: &str) -> Result<Self, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let host = match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => Host::Ip(ip.to_canonical()),
            Err(_) => {
                let plain = !bare.is_empty()
                    && bare.len() <= 253
                    && bare
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !plain {
                    return Err("the host is neither an IP address nor a plain DNS name".into());
                }
                Host::Name(bare.to_ascii_lowercase())
            }
        };
        Ok(Self::Net {
            scheme: scheme.to_owned(),
            host,
            port,
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net {
                scheme, host, port, ..
            } => write!(f, "{scheme}://{host}:{port}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// As in a URL: IPv6 addresses in brackets.
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// A target's own labels as written (`labels:`), checked by the binary with the global ones.
pub type Labels = BTreeMap<String, Text>;

/// A string that may also be written as a number or boolean (environment values arrive typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

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

/// A list of [`Text`]s as plain strings.
pub fn texts(list: Vec<Text>) -> Vec<String> {
    list.into_iter().map(|t| t.0).collect()
}

/// A map of [`Text`] values as plain strings.
pub fn text_map(map: BTreeMap<String, Text>) -> BTreeMap<String, String> {
    map.into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// A secret scalar; its Debug output is redacted by [`SecretString`].
#[derive(Debug)]
pub struct Secret(pub SecretString);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Secret(SecretString::from(t.0)))
    }
}

/// A compiled regular expression; a bad one fails deserialization, so the error has a line.
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex);

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

/// One problem with a target's settings, by key path below the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Keys below the target (`["tls", "ca_file"]`, `["queries", "2", "values"]`).
    pub path: Vec<String>,
    /// What is wrong and what was expected; never quotes a secret.
    pub message: String,
    /// The key may be absent from the file (a required setting that is missing): the binary then
    /// points at the nearest enclosing key that is there.
    pub near: bool,
}

/// Largest file a config may name (secrets, CA bundles, certificates, keys): a public CA bundle is
/// about 200 KiB, so 4 MiB leaves ample room while a misnamed log or disk image cannot be loaded into
/// memory (once per target, and again on every reload).
pub const MAX_REFERENCED_FILE_BYTES: u64 = 4 << 20;

/// Why a file cannot be read, worded to follow "cannot read <path>: ".
#[derive(Debug)]
pub enum ReadError {
    /// The operating system refused (missing, permissions, I/O).
    Io(std::io::Error),
    /// A directory.
    Directory,
    /// A FIFO, socket or device: reading may block forever (a FIFO with no writer) or never end
    /// (`/dev/zero`), so loading would hang or exhaust memory.
    NotRegular,
    /// Larger than the limit.
    TooLarge {
        /// The size found (at least `limit + 1` when the file grew while being read).
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Directory => f.write_str("it is a directory, not a file"),
            Self::NotRegular => f.write_str(
                "it is not a regular file (a FIFO, socket or device), which could block or never end",
            ),
            Self::TooLarge { size, limit } => write!(
                f,
                "it is {size} bytes, over the limit of {limit} bytes ({} MiB)",
                limit >> 20
            ),
        }
    }
}

/// The contents of the regular file at `path` (symbolic links followed), at most `limit` bytes.
///
/// The config and the files it names are read before anything starts and again on every reload,
/// often from paths a person typed: a directory, a FIFO (whose `open` blocks until a writer comes),
/// a device such as `/dev/zero` or a huge file must each be a prompt error, never a hang or an
/// allocation the size of the disk. The type is checked before opening, and the read itself stops
/// after `limit + 1` bytes in case the file grows in between.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if meta.is_dir() {
        return Err(ReadError::Directory);
    }
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limit {
        return Err(ReadError::TooLarge { size, limit });
    }
    Ok(bytes)
}

/// What a kind's config parser needs from the config layer while it validates one target.
#[derive(Debug)]
pub struct Context<'a> {
    base_dir: Option<&'a Path>,
    scrape_timeout: Duration,
    issues: Vec<Issue>,
    files: std::hash::DefaultHasher,
    guard: Option<Guard>,
}

impl<'a> Context<'a> {
    /// A context for one target of a config file in `base_dir` (relative file names are resolved
    /// there), whose scrapes last at most `scrape_timeout`.
    pub fn new(base_dir: Option<&'a Path>, scrape_timeout: Duration) -> Self {
        Self {
            base_dir,
            scrape_timeout,
            issues: Vec::new(),
            files: std::hash::DefaultHasher::new(),
            guard: None,
        }
    }

    /// The same context for a module's target: every destination the collector reaches on its own
    /// must pass `guard`.
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The guard of a module's target; `None` for a configured target, which goes where its config
    /// says.
    pub fn guard(&self) -> Option<Guard> {
        self.guard.clone()
    }

    /// `global.scrape_timeout`: kinds that bound server-side work by it (MySQL's statement limit).
    pub fn scrape_timeout(&self) -> Duration {
        self.scrape_timeout
    }

    /// An error about the key at `path`.
    pub fn error(&mut self, path: &[&str], message: impl Into<String>) {
        self.push(path, message.into(), false);
    }

    /// An error about a key that may be absent from the file.
    pub fn error_near(&mut self, path: &[&str], message: impl Into<String>) {
        self.push(path, message.into(), true);
    }

    /// The value of `result`, or an error on the key at `path` saying why there is none.
    pub fn ok<T, E: fmt::Display>(&mut self, path: &[&str], result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.error(path, e.to_string())).ok()
    }

    /// A collector constructor's refusal: `field` is dotted, list indices in brackets or dotted.
    pub fn settings_error(&mut self, e: SettingsError, near: bool) {
        let path: Vec<&str> = e
            .field
            .split(['.', '[', ']'])
            .filter(|s| !s.is_empty())
            .collect();
        self.push(&path, e.message, near);
    }

    fn push(&mut self, path: &[&str], message: String, near: bool) {
        self.issues.push(Issue {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message,
            near,
        });
    }

    /// How many problems were found so far: a kind stops building once its own checks failed.
    pub fn error_count(&self) -> usize {
        self.issues.len()
    }

    /// A digest of every file read so far (names and contents): a reload compares it to tell whether
    /// a target whose config text is unchanged still needs a new collector (a rotated password file,
    /// a renewed certificate).
    pub fn files_digest(&self) -> u64 {
        std::hash::Hasher::finish(&self.files)
    }

    /// The problems found, in the order they were found.
    pub fn into_issues(self) -> Vec<Issue> {
        self.issues
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        match self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// The contents of `file`, named by the key at `path`; an error on that key when unreadable.
    pub fn read_file(&mut self, path: &[&str], file: &Path) -> Option<Vec<u8>> {
        let full = self.resolve(file);
        match read_bounded(&full, MAX_REFERENCED_FILE_BYTES) {
            Ok(bytes) => {
                std::hash::Hash::hash(&full, &mut self.files);
                std::hash::Hash::hash(&bytes, &mut self.files);
                Some(bytes)
            }
            Err(e) => {
                self.error(path, format!("cannot read {}: {e}", full.display()));
                None
            }
        }
    }

    /// A secret given as `<key>` or as `<key>_file` below `path` (one of them, or neither). A file's
    /// trailing line break is not part of the secret.
    pub fn secret(
        &mut self,
        path: &[&str],
        key: &str,
        inline: Option<Secret>,
        file: Option<&Path>,
    ) -> Option<SecretString> {
        let file_key = format!("{key}_file");
        let file_path = [path, &[file_key.as_str()]].concat();
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
                let bytes = self.read_file(&file_path, file)?;
                match String::from_utf8(bytes) {
                    Ok(s) => Some(SecretString::from(
                        s.trim_end_matches(['\n', '\r']).to_owned(),
                    )),
                    Err(_) => {
                        self.error(&file_path, "the file is not UTF-8");
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }
}
