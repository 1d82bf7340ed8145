//! The collector side of fanout_exporter.
//!
//! A collector is bound to one configured target. On every scrape the engine hands it a deadline and
//! gets back the metric families it built for that scrape, freshly: nothing here keeps series between
//! scrapes, touches a global registry, reads flags or knows about the HTTP server. That keeps each kind
//! testable on its own against a real server, and lets the engine merge, label and encode in one place.
//!
//! # Layout
//! - [`family`]: builders that can only produce valid, typed, non-empty families, and the validator the
//!   engine runs on everything before encoding.
//! - [`config`]: what every kind's config shares: scalars that tolerate environment typing, secrets
//!   given inline or as files, errors recorded by key path for the binary to locate.
//! - [`registry`]: the kinds this build knows, one line each; the binary iterates it.
//! - [`secret`], [`tls`]: the secret types and the client TLS material every kind uses.
//! - [`diagnose`]: why a target is down, in its true [`ErrorClass`]: the mapping of I/O and rustls
//!   errors every kind shares, recognising another protocol on a wrong port, the wording of
//!   timeouts.
//! - [`http`]: the HTTP status collector (blackbox_exporter's `http` prober, `probe_*` names).
//! - [`mysql`]: the MySQL/MariaDB collector (mysqld_exporter's names, custom SQL).
//! - [`redis`]: the Redis/Valkey collector (redis_exporter's names).
//!
//! A kind is one folder: its typed settings, its config (`<kind>/config.rs`, deserialized and
//! validated here, not in the binary), its [`Collector`], and its [`Kind`] constant; registering it is
//! one line in [`registry`]. No kind imports another: what two kinds share lives in a neutral module.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod diagnose;
pub mod family;
pub mod http;
pub mod mysql;
pub mod redis;
pub mod registry;
pub mod secret;
pub mod tls;
pub mod watched_io;

use futures_util::future::BoxFuture;
use prometheus::proto::MetricFamily;
use tokio::time::Instant;

pub use family::{Families, FamilyError};

/// Static facts about a collector kind that the engine needs without running it.
///
/// The up family is emitted by the engine, not by the collector, so that every configured target has
/// exactly one up sample per scrape even when its collector hangs, panics or is cancelled.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// Value of the `collector` label on `fanout_exporter_scrape_*` and the config section name.
    pub name: &'static str,
    /// Name of the family that says whether the target answered (`probe_success`, `mysql_up`, ...).
    pub up_metric: &'static str,
    /// HELP text of the up family.
    pub up_help: &'static str,
}

/// What one collection of one target produced.
///
/// Two questions are kept apart: is the target up (the kind's up gauge: `probe_success`, `mysql_up`,
/// ...), and did the collection go through without error (`fanout_exporter_scrape_success`). A MySQL
/// server that answers while one sub-collector lacks a privilege is up with an error; an HTTP probe
/// that gets a 500 is down, and its failed check is the error that says why.
#[derive(Debug)]
pub struct Outcome {
    /// Families built during this collection, without the kind's up family. They hold whatever is
    /// known even when the target is down (blackbox reports `probe_http_status_code` and the phase
    /// timings of a failed probe, for instance).
    pub families: Vec<MetricFamily>,
    /// Whether the target counts as up.
    pub up: bool,
    /// What went wrong, if anything; each is logged with the target's name.
    pub errors: Vec<CollectError>,
}

impl Outcome {
    /// Up when `result` is `Ok`; otherwise down, with the error as the reason.
    pub fn from_result(families: Vec<MetricFamily>, result: Result<(), CollectError>) -> Self {
        match result {
            Ok(()) => Self {
                families,
                up: true,
                errors: Vec::new(),
            },
            Err(error) => Self::down(families, error),
        }
    }

    /// Down for `error`, keeping the families learned so far.
    pub fn down(families: Vec<MetricFamily>, error: CollectError) -> Self {
        Self {
            families,
            up: false,
            errors: vec![error],
        }
    }

    /// Whether the collection went through: the target is up and nothing failed.
    pub fn succeeded(&self) -> bool {
        self.up && self.errors.is_empty()
    }
}

/// A collector bound to one target.
///
/// `collect` must return by `deadline`; the engine cancels it shortly after and reports the target as
/// down, so a collector that wants to report partial results on a timeout enforces the deadline itself.
///
/// `Debug` is required so a target can be shown in logs and tests; implementations must keep
/// credentials out of it.
pub trait Collector: Send + Sync + std::fmt::Debug {
    /// The kind this collector belongs to.
    fn kind(&self) -> &'static Kind;

    /// Collect the target once, finishing by `deadline`.
    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Outcome>;

    /// Where the target is, for the people reading the status page and the config summary, which
    /// anyone who reaches the exporter can open: enough to recognise it (scheme, host, port, user
    /// name, database), never a password, a query string or a URL path, which often carries a token
    /// (webhooks, ping URLs).
    fn endpoint(&self) -> String;

    /// Release what the collector keeps between scrapes (cached connections), politely, when the
    /// exporter stops. The default keeps nothing.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Why settings could not be turned into a collector (bad TLS material, an invalid query definition).
///
/// `field` is the setting's dotted path below the target (`url`, `tls.ca_file`, `queries.2.values`), so
/// the config layer can point at the key and its line; `message` never quotes credentials or key
/// material.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    /// The setting at fault, dotted.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl SettingsError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Boxed source error, for causes the caller never branches on.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a target is down, or why part of a collection failed, as a fixed, low-cardinality word: usable
/// in a log query, an alert route or a label value. The words are part of the exporter's interface
/// (the log and the status page show them); add classes, never rename them.
///
/// The class says what an operator should look at first, so each one is only given when the kind
/// knows it is true: a wrong port and a hung server both end in a deadline for a naive client, but
/// one is `protocol` (or `refused`) and the other `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// Nothing accepts connections there (TCP reset on connect; no socket at a unix path).
    Refused,
    /// The host name does not resolve.
    Dns,
    /// Connecting failed otherwise (no route, network unreachable, permission denied).
    Connect,
    /// TLS failed: the handshake, or the verification of the server's certificate (the message
    /// says which).
    Tls,
    /// The server rejected the credentials (or wants some and none are configured).
    Auth,
    /// The port does not speak the kind's protocol (another service listens there), or the server's
    /// answer could not be read as that protocol.
    Protocol,
    /// No answer by the deadline; the message says in which step (connecting, the TLS handshake, the
    /// server's first answer, the rest of the collection).
    Timeout,
    /// The server closed or reset the connection in the middle of an exchange.
    Closed,
    /// The server answered, but the account lacks a privilege a part of the collection needs.
    Denied,
    /// The server answered a command or statement with an error of its own (busy, loading, too many
    /// connections, a failing query).
    Server,
    /// The target answered, and the answer failed a configured check (status code, body regexp, a
    /// custom query's expected shape).
    Check,
    /// Anything else, including the collector itself failing (a panic).
    Other,
}

impl ErrorClass {
    /// Every class, in declaration order.
    pub const ALL: [ErrorClass; 12] = [
        Self::Refused,
        Self::Dns,
        Self::Connect,
        Self::Tls,
        Self::Auth,
        Self::Protocol,
        Self::Timeout,
        Self::Closed,
        Self::Denied,
        Self::Server,
        Self::Check,
        Self::Other,
    ];

    /// The stable short name (`refused`, `dns`, `tls`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::Denied => "denied",
            Self::Server => "server",
            Self::Check => "check",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a target was reported down, or why part of its collection failed: a class and a message
/// that says the cause in words.
///
/// The message names the endpoint (host and port, never credentials) and what happened there, so it
/// can go to the log and the status page as it is. It never quotes what a server sent: a port that
/// echoes (or a hostile server) would otherwise put our own request, credentials included, into the
/// message. The error that led to it, when there is one, is kept as the source for debugging; its
/// text is already part of the message where it helps.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CollectError {
    class: ErrorClass,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl CollectError {
    /// An error of `class` saying `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            source: None,
        }
    }

    /// The same error, keeping `source` as its cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The target answered and the answer failed a configured check.
    pub fn check(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Check, reason)
    }

    /// The collector itself failed.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Other, reason)
    }

    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// What happened, in words.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` (`collect.info_schema.tables`, `query.orders`) in front of its
    /// message: which part of a collection it belongs to.
    pub fn context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// Text a server sent, invalid UTF-8 replaced: the strict check first, which is several times
/// faster than the replacing decoder on the ASCII that servers send, then the replacing one.
pub(crate) fn lossy_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lossy_text_keeps_valid_text_and_replaces_only_invalid_bytes() {
        assert_eq!(super::lossy_text(b"used_memory:1024"), "used_memory:1024");
        assert_eq!(super::lossy_text("grüße".as_bytes()), "grüße");
        assert_eq!(super::lossy_text(b"a\xffb"), "a\u{fffd}b");
    }
}
