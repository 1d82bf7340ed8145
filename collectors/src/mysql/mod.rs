//! The MySQL/MariaDB collector: mysqld_exporter's default families by the same names, typed right,
//! plus custom SQL.
//!
//! # Connections
//! Each target keeps at most `max_connections` connections to its server, counting idle and busy
//! ones, whatever the scrape rate or failure pattern (see `conn`). A scrape takes an idle connection or
//! opens one, runs its statements on it (and on a second one when a slot is free at once), and hands
//! the connections back when they are still sound. A statement the server refuses (a missing privilege) costs its sub-collector only
//! and keeps the connection; a network error drops it, and the next scrape reconnects.
//!
//! The statements run in a task of their own, so a scrape that hits its deadline returns on time with
//! what it has, while the statement in flight is left to finish before the connection is put back and
//! its slot freed. The session statement limit set at connect bounds that wait where the server
//! applies it (MariaDB: every statement; MySQL: `SELECT`s only); a statement that outlives twice the
//! limit gets its connection dropped, and only then can the server be working on more statements
//! from us than we have slots.
//!
//! # Layout
//! - `config`: the `mysql` section of the config file, validated into [`MysqlSettings`].
//! - `conn`: connect options, connecting under the deadline, session settings, flavor detection, the
//!   slot-counting connection cache.
//! - `scrapers`: each sub-collector's statement (chosen by flavor and version) and the families it
//!   makes from the rows, following mysqld_exporter's names and its value rules.
//! - `custom`: user-defined queries in sql_exporter's model.

mod config;
mod conn;
mod custom;
mod scrapers;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus::proto::MetricFamily;
use secrecy::SecretString;
use tokio::time::Instant;

pub use crate::SettingsError;
pub use config::{
    EventsStatementsConfig, MysqlConfig, ProcesslistConfig, QueryConfig, QueryMetricConfig,
};
pub use custom::{QueryMetric, QuerySettings};

use crate::{Collector, Families, Kind, Outcome};

/// The `mysql` kind.
pub static KIND: Kind = Kind {
    name: "mysql",
    up_metric: "mysql_up",
    up_help: "Whether the MySQL server is up.",
};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// TCP host (name or IP) and port.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix socket path (`unix:///run/mysqld/mysqld.sock`).
    Unix(PathBuf),
}

impl Address {
    /// Parse `host:port`, `host` (port 3306), `[v6]:port` or `unix:///path`. Errors never quote
    /// the text: an address written as a URL or a Go DSN often carries the password, and the key
    /// and line already say which address is meant.
    pub fn parse(text: &str) -> Result<Self, String> {
        const CREDENTIALS: &str = "put the user in `user` and the password in `password` or \
                                   `password_file`, never in the address";
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(
                    "a unix socket address needs an absolute path (unix:///path/to/mysqld.sock)"
                        .into(),
                );
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Err(format!(
                "expected host:port or unix:///path, not a URL (mysql://...): write only host:port \
                 here; {CREDENTIALS}"
            ));
        }
        if text.contains('@') {
            return Err(format!(
                "expected host:port, not a DSN (user:password@tcp(host:port)/): {CREDENTIALS}"
            ));
        }
        if text.contains(['?', '/', '(', ')']) {
            return Err(format!(
                "expected host:port without a path or options (?password=..., /database): {CREDENTIALS}"
            ));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or("unclosed '[' in an IPv6 address")?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err("expected [address]:port".into()),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err("write IPv6 addresses in brackets ([::1]:3306)".into());
                }
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err("the host is empty: expected host:port".into());
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or("invalid port: expected 1 to 65535")?,
            None => 3306,
        };
        Ok(Self::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "{host}:{port}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Client TLS of a MySQL target. Any setting turns verification on (the server's certificate must
/// chain to `ca_pem`, or to the bundled web roots without it, and match the host);
/// `insecure_skip_verify` keeps TLS required but unverified. A client certificate (for accounts that
/// `REQUIRE X509`) works with or without a CA; mysqld_exporter ignores it without one.
pub use crate::tls::ClientTls as MysqlTls;

/// A sub-collector, named as mysqld_exporter's `--collect.<name>` flags name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scraper {
    /// `SHOW GLOBAL STATUS`.
    GlobalStatus,
    /// `SHOW GLOBAL VARIABLES`.
    GlobalVariables,
    /// Replication status of a replica, one statement chosen by flavor and version.
    SlaveStatus,
    /// Compression operations and times by page size from `information_schema.innodb_cmp`.
    InnodbCmp,
    /// Compressed pages in the buffer pool by page size from `information_schema.innodb_cmpmem`.
    InnodbCmpmem,
    /// Thread counts by command and state from `information_schema.processlist`.
    Processlist,
    /// Enabled counters of `information_schema.innodb_metrics`.
    InnodbMetrics,
    /// Statement digests from `performance_schema.events_statements_summary_by_digest`.
    EventsStatements,
    /// Table sizes and rows from `information_schema.tables`, for the configured schemas only.
    Tables,
}

impl Scraper {
    /// Every sub-collector, in the order a scrape runs them.
    pub const ALL: [Self; 9] = [
        Self::GlobalStatus,
        Self::GlobalVariables,
        Self::SlaveStatus,
        Self::InnodbCmp,
        Self::InnodbCmpmem,
        Self::Processlist,
        Self::InnodbMetrics,
        Self::EventsStatements,
        Self::Tables,
    ];

    /// mysqld_exporter's default set, less `info_schema.query_response_time` (a Percona and MariaDB
    /// plugin's table, not built). mysqld_exporter's README lists `innodb_cmp` and `innodb_cmpmem` as
    /// off, but its code turns them on (0.14 and 0.20 alike), so dashboards expect them.
    pub const DEFAULT: [Self; 5] = [
        Self::GlobalStatus,
        Self::GlobalVariables,
        Self::SlaveStatus,
        Self::InnodbCmp,
        Self::InnodbCmpmem,
    ];

    /// The name used in the config and, prefixed with `collect.`, in the `collector` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::GlobalStatus => "global_status",
            Self::GlobalVariables => "global_variables",
            Self::SlaveStatus => "slave_status",
            Self::InnodbCmp => "info_schema.innodb_cmp",
            Self::InnodbCmpmem => "info_schema.innodb_cmpmem",
            Self::Processlist => "info_schema.processlist",
            Self::InnodbMetrics => "info_schema.innodb_metrics",
            Self::EventsStatements => "perf_schema.eventsstatements",
            Self::Tables => "info_schema.tables",
        }
    }

    /// The sub-collector called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Options of `info_schema.processlist`, with mysqld_exporter's defaults.
#[derive(Debug, Clone)]
pub struct ProcesslistSettings {
    /// Threads busy for less than this are not counted.
    pub min_time: Duration,
    /// Emit `mysql_info_schema_processlist_processes_by_user`.
    pub processes_by_user: bool,
    /// Emit `mysql_info_schema_processlist_processes_by_host`.
    pub processes_by_host: bool,
}

impl Default for ProcesslistSettings {
    fn default() -> Self {
        Self {
            min_time: Duration::ZERO,
            processes_by_user: true,
            processes_by_host: true,
        }
    }
}

/// Bounds of `perf_schema.eventsstatements`, with mysqld_exporter's defaults.
#[derive(Debug, Clone)]
pub struct EventsStatementsSettings {
    /// At most this many digests, the most expensive first.
    pub limit: u32,
    /// Digest texts are cut to this many characters.
    pub digest_text_limit: u32,
    /// Only digests seen within this window.
    pub time_limit: Duration,
}

impl Default for EventsStatementsSettings {
    fn default() -> Self {
        Self {
            limit: 250,
            digest_text_limit: 120,
            time_limit: Duration::from_secs(86_400),
        }
    }
}

/// Typed, validated settings of one MySQL/MariaDB target. Built by the binary's config layer.
///
/// `Debug` never shows the password or key material.
#[derive(Clone)]
pub struct MysqlSettings {
    /// Where the server listens.
    pub address: Address,
    /// Account name.
    pub user: String,
    /// Account password; any characters (`#`, quotes, spaces) work, nothing is parsed out of it.
    pub password: Option<SecretString>,
    /// TLS; `None` encrypts when the server offers it, without verification (the MySQL default).
    pub tls: Option<MysqlTls>,
    /// Sub-collectors to run, [`Scraper::DEFAULT`] unless configured.
    pub collect: Vec<Scraper>,
    /// Most connections the server may see from this target, idle and busy together.
    pub max_connections: u32,
    /// Session `lock_wait_timeout`: how long a statement may wait for a metadata lock.
    pub lock_wait_timeout: Duration,
    /// Session statement limit (`max_statement_time` on MariaDB, `max_execution_time` on MySQL), so an
    /// abandoned statement cannot keep working on a struggling server. The binary sets it to the
    /// scrape timeout.
    pub statement_timeout: Duration,
    /// Options of `info_schema.processlist`.
    pub processlist: ProcesslistSettings,
    /// Bounds of `perf_schema.eventsstatements`.
    pub events_statements: EventsStatementsSettings,
    /// Schemas `info_schema.tables` reports on; required when that sub-collector is on.
    pub table_schemas: Vec<String>,
    /// Custom queries.
    pub queries: Vec<QuerySettings>,
}

impl MysqlSettings {
    /// Settings for `address` as `user`, everything else at its default.
    pub fn new(address: Address, user: impl Into<String>) -> Self {
        Self {
            address,
            user: user.into(),
            password: None,
            tls: None,
            collect: Scraper::DEFAULT.to_vec(),
            max_connections: 2,
            lock_wait_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(10),
            processlist: ProcesslistSettings::default(),
            events_statements: EventsStatementsSettings::default(),
            table_schemas: Vec::new(),
            queries: Vec::new(),
        }
    }
}

impl fmt::Debug for MysqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlSettings")
            .field("address", &format_args!("{}", self.address))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("tls", &self.tls.is_some())
            .field("collect", &self.collect)
            .field("max_connections", &self.max_connections)
            .field("queries", &self.queries.len())
            .finish_non_exhaustive()
    }
}

/// Which server we talk to, learned once per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    MySql,
    MariaDb,
    Percona,
}

/// Flavor and version of the server behind one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    pub flavor: Flavor,
    /// `(major, minor, patch)`.
    pub version: (u32, u32, u32),
}

impl ServerInfo {
    /// From `@@version` and `@@version_comment`.
    pub fn detect(version: &str, comment: &str) -> Self {
        let lower = version.to_ascii_lowercase();
        let comment = comment.to_ascii_lowercase();
        let flavor = if lower.contains("mariadb") || comment.contains("mariadb") {
            Flavor::MariaDb
        } else if comment.contains("percona") || lower.contains("percona") {
            Flavor::Percona
        } else {
            Flavor::MySql
        };
        // MariaDB 10 once reported `5.5.5-10.x.y-MariaDB` over the wire; `@@version` does not, but
        // strip the prefix in case a proxy passes the wire form on.
        let digits = lower.strip_prefix("5.5.5-").unwrap_or(&lower);
        let mut parts = digits
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        Self { flavor, version }
    }

    /// Whether the server is at least `major.minor.patch`.
    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.version >= (major, minor, patch)
    }
}

/// A result set as the text protocol sends it: every value as text, NULL kept apart.
///
/// All statements run over the text protocol, so the scrapers and custom queries parse one shape,
/// whatever the column types; captured outputs in tests have the same shape.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Rows {
    /// Column names as the server labels them.
    pub columns: Vec<String>,
    /// One entry per row, one value per column.
    pub rows: Vec<Vec<Option<String>>>,
    /// Name/value pairs unpacked from one packed value (`scrapers::packed`), read by
    /// [`Rows::pairs`] after the rows: the value's text and where each name and value is in it, so
    /// six hundred pairs cost one buffer rather than three allocations each.
    pub packed: Packed,
}

/// See [`Rows::packed`].
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Packed {
    /// The packed text, names already in lower case.
    pub text: String,
    /// Byte ranges of each name and its value in `text`.
    pub pairs: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl Rows {
    /// Index of the column called `name`, ignoring ASCII case.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The first two columns of every row whose second column is not NULL (`SHOW ... STATUS`,
    /// `SHOW ... VARIABLES`).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = self.packed.text.as_str();
        self.rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [Some(name), Some(value), ..] => Some((name.as_str(), value.as_str())),
                _ => None,
            })
            .chain(self.packed.pairs.iter().filter_map(move |(name, value)| {
                Some((text.get(name.clone())?, text.get(value.clone())?))
            }))
    }
}

/// A MySQL/MariaDB target ready to scrape.
pub struct MysqlCollector {
    inner: Arc<Shared>,
}

/// What the collector and its background statement tasks share.
struct Shared {
    settings: MysqlSettings,
    pool: conn::Pool,
    /// Results of custom queries with a `min_interval`, by query index: when they ran and what they
    /// produced.
    cache: Mutex<HashMap<usize, (Instant, Vec<MetricFamily>)>>,
}

impl MysqlCollector {
    /// Check `settings` and prepare the connect options.
    pub fn new(settings: MysqlSettings) -> Result<Self, SettingsError> {
        if settings.max_connections == 0 {
            return Err(SettingsError::new("max_connections", "must be at least 1"));
        }
        if settings.collect.contains(&Scraper::Tables) && settings.table_schemas.is_empty() {
            return Err(SettingsError::new(
                "table_schemas",
                "info_schema.tables needs the list of schemas to report on",
            ));
        }
        for (index, query) in settings.queries.iter().enumerate() {
            query.validate(index)?;
            // Each query reports under `collector="query.<name>"`; two of one name would collide.
            if settings.queries[..index]
                .iter()
                .any(|q| q.name == query.name)
            {
                return Err(SettingsError::new(
                    format!("queries.{index}.name"),
                    format!("another query is already named {:?}", query.name),
                ));
            }
        }
        let pool = conn::Pool::new(&settings)?;
        Ok(Self {
            inner: Arc::new(Shared {
                settings,
                pool,
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl fmt::Debug for MysqlCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlCollector")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Collector for MysqlCollector {
    fn endpoint(&self) -> String {
        let s = &self.inner.settings;
        format!("{} as {}", s.address, s.user)
    }

    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Outcome> {
        Box::pin(conn::collect(Arc::clone(&self.inner), deadline))
    }

    /// Idle connections are closed with COM_QUIT: a connection that just disappears is counted in
    /// `Aborted_clients` and logged by the server (mysqld_exporter#582).
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.inner.pool.close())
    }
}

/// mysqld_exporter's per-sub-collector self metrics.
pub(crate) fn collector_metrics(
    out: &mut Families,
    collector: &str,
    success: Option<bool>,
    took: Duration,
) {
    if let Some(ok) = success {
        out.gauge(
            "mysql_exporter_collector_success",
            "mysql_exporter: Whether a collector succeeded.",
        )
        .set(&[("collector", collector)], if ok { 1.0 } else { 0.0 });
    }
    out.gauge(
        "mysql_exporter_collector_duration_seconds",
        "Collector time duration.",
    )
    .set(&[("collector", collector)], took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::{Destination, KindConfig as _};

    fn address() -> impl Strategy<Value = Address> {
        let host = prop_oneof![
            "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,2}",
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
        ];
        prop_oneof![
            (host, 1u16..).prop_map(|(host, port)| Address::Tcp { host, port }),
            "(/[a-z0-9._-]{1,10}){1,4}".prop_map(|p| Address::Unix(PathBuf::from(p))),
        ]
    }

    /// A password that cannot occur in an error by chance.
    const CANARY: &str = "[a-z]{3}[A-Z]{3}[0-9]{2}";

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = Address::parse(&text);
            let _ = MysqlConfig::destination(&text);
        }

        #[test]
        fn rendered_addresses_parse_back(address in address()) {
            let text = address.to_string();
            prop_assert_eq!(Address::parse(&text), Ok(address.clone()));
            let destination = MysqlConfig::destination(&text);
            match address {
                Address::Tcp { port, .. } => {
                    let reached = matches!(destination, Ok(Destination::Net { port: p, .. }) if p == port);
                    prop_assert!(reached, "{:?}", destination);
                }
                Address::Unix(path) => prop_assert_eq!(destination, Ok(Destination::Unix(path))),
            }
        }

        /// Credentials written into the address in any of the forms other exporters take (a URL,
        /// a Go DSN, an option) are refused without being quoted.
        #[test]
        fn errors_never_show_the_password(
            password in CANARY,
            form in 0usize..8,
            host in "[a-z]{1,8}",
            junk in "[ -~]{0,6}",
        ) {
            let text = match form {
                0 => format!("mysql://exporter:{password}@{host}:3306/{junk}"),
                1 => format!("exporter:{password}@tcp({host}:3306)/{junk}"),
                2 => format!("{host}:3306?password={password}{junk}"),
                3 => format!("{password}@{host}"),
                4 => format!("{host}:{password}"),
                5 => format!("[{host}:{password}"),
                6 => format!("{junk}:{password}:{junk}"),
                _ => format!("unix://{password}{junk}"),
            };
            for result in [Address::parse(&text).map(|_| ()), MysqlConfig::destination(&text).map(|_| ())] {
                if let Err(e) = result {
                    prop_assert!(!e.contains(&password), "{}: {}", text, e);
                }
            }
        }
    }
}
