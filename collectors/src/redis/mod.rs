//! The Redis/Valkey collector: redis_exporter's families by the same names, typed right.
//!
//! # Connections and round trips
//! Each target keeps one connection across scrapes and rebuilds it after any error. Its stream is
//! opened here under the scrape deadline, with a cap on what one scrape may read (`transport`: the
//! crate would buffer a reply of any announced length); the crate's response timeout is set from the
//! deadline (its default is 500 ms), and its `CLIENT SETINFO` hello is skipped: Redis before 7.2 answers it with two errors per
//! connection, which would show up in the monitored server's error counters. The core data comes in
//! one pipelined round trip (INFO, CONFIG GET, LATENCY LATEST, SLOWLOG); commands the server refuses
//! (managed services disable `CONFIG` or `LATENCY`; ACL users may lack them) are remembered for the
//! connection and not sent again.
//!
//! # Layout
//! - `config`: the `redis` section of the config file, validated into [`RedisSettings`].
//! - `info`: INFO and the other core replies into families (pure, tested on captured outputs).
//! - `conn`: the connection, the pipelined scrape, the refused-command memory.
//! - `keys`: key checks under a budget, and custom read-only commands.
//! - `reply`: reading reply values and refusals, shared by `conn` and `keys`.
//! - `transport`: the TCP, TLS or Unix stream under a connection, with a cap on what a scrape reads.

mod config;
mod conn;
mod info;
mod keys;
mod reply;
mod transport;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use tokio::time::Instant;

pub use crate::SettingsError;
use crate::family::MetricType;
pub use config::{KeyBudgetConfig, RedisCommandConfig, RedisConfig};

use crate::{Collector, Kind, Outcome};

/// The `redis` kind.
pub static KIND: Kind = Kind {
    name: "redis",
    up_metric: "redis_up",
    up_help: "Information about the Redis instance",
};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddress {
    /// TCP host and port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "{host}:{port}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// A target's URL taken apart: `redis://`, `rediss://` (TLS), `valkey://`, `valkeys://` or
/// `unix://`, with optional credentials and a database index in the path.
#[derive(Clone)]
pub struct ParsedUrl {
    /// Where the server listens.
    pub address: RedisAddress,
    /// Whether the scheme asks for TLS.
    pub tls: bool,
    /// Database index from the path (`/2`), 0 without one.
    pub db: i64,
    /// User name from the URL.
    pub user: Option<String>,
    /// Password from the URL; never shown.
    pub password: Option<SecretString>,
}

impl fmt::Debug for ParsedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedUrl")
            .field("address", &format_args!("{}", self.address))
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl ParsedUrl {
    /// Parse a target URL. Errors never quote the URL, which may hold a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        const UNENCODED: &str = "invalid URL: the user or password holds `/`, `?` or `#`; \
                                 percent-encode them (`/` is %2F, `?` %3F, `#` %23) or set the \
                                 `password` or `password_file` key";
        let url = url::Url::parse(text).map_err(|e| {
            // `redis://:pa/ss@host` parses as host `` and path `/ss@host`: a password holding `/`,
            // `?` or `#` must be percent-encoded, which is not obvious from "empty host".
            let authority = text.split_once("://").map_or("", |(_, rest)| rest);
            let cut = authority.find(['/', '?', '#']).unwrap_or(authority.len());
            if authority[cut..].contains('@') && !authority[..cut].contains('@') {
                UNENCODED.to_owned()
            } else {
                format!("invalid URL: {e}")
            }
        })?;
        // The same password may also leave a valid URL behind: in `redis://u:0/s3cret@host` the
        // host is `u`, the port 0 and the path `/s3cret@host`, which the database error below
        // would quote. No path, query or fragment of ours holds an `@`.
        let misplaced = |part: Option<&str>| part.is_some_and(|p| p.contains('@'));
        if url.scheme() != "unix"
            && (misplaced(Some(url.path())) || misplaced(url.query()) || misplaced(url.fragment()))
        {
            return Err(UNENCODED.to_owned());
        }
        let tls = match url.scheme() {
            "redis" | "valkey" => false,
            "rediss" | "valkeys" => true,
            "unix" => {
                let path = url.path();
                if path.is_empty() || path == "/" {
                    return Err("a unix URL needs a socket path (unix:///run/redis.sock)".into());
                }
                if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                    return Err(
                        "a unix URL holds the socket path only: set user and password as their own keys"
                            .into(),
                    );
                }
                return Ok(Self {
                    address: RedisAddress::Unix(PathBuf::from(path)),
                    tls: false,
                    db: 0,
                    user: None,
                    password: None,
                });
            }
            other => {
                return Err(format!(
                    "unsupported scheme {other:?}: expected redis, rediss, valkey, valkeys or unix"
                ));
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err("the URL has no host".into()),
        };
        let port = url.port().unwrap_or(6379);
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            index => index
                .parse::<i64>()
                .ok()
                .filter(|&d| d >= 0)
                .ok_or_else(|| format!("the path must be a database index, not {index:?}"))?,
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "invalid percent-encoding in the URL".to_owned())
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url
            .password()
            .map(decode)
            .transpose()?
            .map(SecretString::from);
        Ok(Self {
            address: RedisAddress::Tcp { host, port },
            tls,
            db,
            user,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Client TLS of a Redis target: `ca_pem` replaces the bundled web roots, a client certificate is
/// for servers with `tls-auth-clients yes`.
pub use crate::tls::ClientTls as RedisTls;

/// Limits of one scrape's key checks: keys looked at (SCAN results and single keys together) and
/// wall time. Hitting either stops the checks for that scrape and is reported by a gauge.
#[derive(Debug, Clone)]
pub struct KeyBudget {
    /// Most keys sized or counted per scrape.
    pub max_keys: usize,
    /// Most time spent on key checks per scrape.
    pub max_time: Duration,
}

impl Default for KeyBudget {
    fn default() -> Self {
        Self {
            max_keys: 1000,
            max_time: Duration::from_millis(500),
        }
    }
}

/// A custom metric from one read-only command whose reply is a number.
#[derive(Debug, Clone)]
pub struct CustomCommand {
    /// Metric name.
    pub metric: String,
    /// HELP text.
    pub help: String,
    /// The command and its arguments (`["LLEN", "jobs:pending"]`).
    pub command: Vec<String>,
    /// Counter or gauge.
    pub kind: MetricType,
}

/// Typed, validated settings of one Redis target. Built by the binary's config layer.
///
/// `Debug` never shows the password or key material.
#[derive(Clone)]
pub struct RedisSettings {
    /// Where the server listens, TLS, database, and URL credentials.
    pub url: ParsedUrl,
    /// ACL user name (overrides the URL's).
    pub user: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<SecretString>,
    /// TLS settings; a `rediss://` URL without them verifies against the bundled web roots.
    pub tls: Option<RedisTls>,
    /// SCAN patterns whose matching keys are sized (`redis_key_size`, `redis_key_value`).
    pub check_keys: Vec<String>,
    /// Literal keys sized the same way.
    pub check_single_keys: Vec<String>,
    /// SCAN patterns whose matching keys are counted (`redis_keys_count`).
    pub count_keys: Vec<String>,
    /// Custom metrics from read-only commands.
    pub commands: Vec<CustomCommand>,
    /// Limits of the key checks.
    pub key_check_budget: KeyBudget,
    /// Name of the CONFIG command (servers may rename it), or `None` to never send it.
    pub config_command: Option<String>,
}

impl RedisSettings {
    /// Settings for `url`, everything else at its default.
    pub fn new(url: ParsedUrl) -> Self {
        Self {
            url,
            user: None,
            password: None,
            tls: None,
            check_keys: Vec::new(),
            check_single_keys: Vec::new(),
            count_keys: Vec::new(),
            commands: Vec::new(),
            key_check_budget: KeyBudget::default(),
            config_command: Some("CONFIG".to_owned()),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("tls", &self.tls.is_some())
            .field("check_keys", &self.check_keys)
            .field("check_single_keys", &self.check_single_keys)
            .field("count_keys", &self.count_keys)
            .field("commands", &self.commands.len())
            .finish_non_exhaustive()
    }
}

/// A Redis/Valkey target ready to scrape.
pub struct RedisCollector {
    inner: Arc<conn::Target>,
}

impl RedisCollector {
    /// Check `settings` and prepare the client.
    pub fn new(settings: RedisSettings) -> Result<Self, SettingsError> {
        keys::validate(&settings)?;
        Ok(Self {
            inner: Arc::new(conn::Target::new(settings)?),
        })
    }
}

impl fmt::Debug for RedisCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCollector")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Collector for RedisCollector {
    fn endpoint(&self) -> String {
        // The configured URL without its password; the user name and database stay.
        let settings = &self.inner.settings;
        let url = &settings.url;
        let user = settings.user.as_deref().or(url.user.as_deref());
        match &url.address {
            RedisAddress::Unix(_) => match user {
                Some(user) => format!("{} db {} as {user}", url.address, url.db),
                None => format!("{} db {}", url.address, url.db),
            },
            RedisAddress::Tcp { .. } => {
                let scheme = if url.tls { "rediss" } else { "redis" };
                let user = user.map(|u| format!("{u}@")).unwrap_or_default();
                format!("{scheme}://{user}{}/{}", url.address, url.db)
            }
        }
    }

    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Outcome> {
        Box::pin(conn::collect(Arc::clone(&self.inner), deadline))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn urls_give_address_tls_db_and_credentials() {
        let u = ParsedUrl::parse("redis://cache.internal:6380/2").unwrap();
        assert_eq!(
            u.address,
            RedisAddress::Tcp {
                host: "cache.internal".into(),
                port: 6380
            }
        );
        assert!(!u.tls);
        assert_eq!(u.db, 2);
        assert!(u.user.is_none() && u.password.is_none());

        let u = ParsedUrl::parse("rediss://app:p%40ss%23w@[::1]").unwrap();
        assert!(u.tls);
        assert_eq!(u.address.to_string(), "[::1]:6379");
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.password.as_ref().unwrap().expose_secret(), "p@ss#w");
        assert_eq!(u.db, 0);

        assert!(!ParsedUrl::parse("valkey://v").unwrap().tls);
        assert!(ParsedUrl::parse("valkeys://v").unwrap().tls);
        assert_eq!(
            ParsedUrl::parse("unix:///run/redis.sock").unwrap().address,
            RedisAddress::Unix("/run/redis.sock".into())
        );
    }

    #[test]
    fn url_errors_and_debug_never_show_the_password() {
        let u = ParsedUrl::parse("redis://:topsecret@h").unwrap();
        assert!(!format!("{u:?}").contains("topsecret"));
        let settings = RedisSettings::new(u);
        assert!(!format!("{settings:?}").contains("topsecret"));
        for bad in [
            "http://u:topsecret@h/",
            "redis://u:topsecret@h/x",
            // A password with a `/` whose first part reads as a port.
            "redis://u:0/topsecret@h",
            "redis://u:0?topsecret@h",
            "redis://u:topsecret@h/-1",
            "redis://u:top%zzsecret@h/",
            "unix://u:topsecret@/run/redis.sock",
            "unix:///",
            "redis://",
        ] {
            let e = ParsedUrl::parse(bad).unwrap_err();
            assert!(!e.contains("topsecret"), "{bad}: {e}");
        }
    }

    mod props {
        use proptest::prelude::*;
        use secrecy::ExposeSecret as _;

        use super::super::*;
        use crate::config::{Destination, Host, KindConfig as _};

        /// Percent-encodes everything but unreserved characters, as a URL's userinfo needs.
        fn encode(s: &str) -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }

        fn host() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,2}",
                any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            ]
        }

        /// A password that cannot occur in an error by chance.
        const CANARY: &str = "[a-z]{3}[A-Z]{3}[0-9]{2}";

        proptest! {
            #[test]
            fn parse_never_panics(text in any::<String>(), tail in "[ -~]{0,30}") {
                let _ = ParsedUrl::parse(&text);
                for scheme in ["redis", "rediss", "valkey", "unix"] {
                    let _ = ParsedUrl::parse(&format!("{scheme}://{tail}"));
                    let _ = RedisConfig::destination(&format!("{scheme}://{tail}"));
                }
            }

            #[test]
            fn rendered_urls_parse_back(
                tls in any::<bool>(),
                host in host(),
                port in 1u16..,
                db in 0i64..10_000,
                user in proptest::option::of("[ -~]{1,12}"),
                password in proptest::option::of("[ -~]{1,12}"),
            ) {
                let scheme = if tls { "rediss" } else { "redis" };
                let userinfo = match (&user, &password) {
                    (Some(u), Some(p)) => format!("{}:{}@", encode(u), encode(p)),
                    (Some(u), None) => format!("{}@", encode(u)),
                    (None, Some(p)) => format!(":{}@", encode(p)),
                    (None, None) => String::new(),
                };
                let text = format!("{scheme}://{userinfo}{host}:{port}/{db}");
                let url = ParsedUrl::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(&url.address, &RedisAddress::Tcp { host: host.clone(), port });
                prop_assert_eq!(url.tls, tls);
                prop_assert_eq!(url.db, db);
                prop_assert_eq!(&url.user, &user);
                prop_assert_eq!(url.password.as_ref().map(|p| p.expose_secret().to_owned()), password);
                let Ok(Destination::Net { host: h, port: p, path, .. }) = RedisConfig::destination(&text) else {
                    return Err(TestCaseError::fail(format!("{text}: no destination")));
                };
                let expected = match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => Host::Ip(ip),
                    Err(_) => Host::Name(host.clone()),
                };
                prop_assert_eq!(h, expected);
                prop_assert_eq!(p, port);
                prop_assert_eq!(path, format!("/{db}"));
            }

            /// A password written into the URL unencoded, whatever it holds, never shows in the
            /// error: neither part of it around a character that ends the userinfo early.
            #[test]
            fn errors_never_show_the_password(
                first in prop_oneof!["[0-9]{1,5}", CANARY],
                cut in prop_oneof![Just(""), Just("/"), Just("?"), Just("#"), Just("@"), Just(":"), Just("%"), Just(" ")],
                second in CANARY,
                host in host(),
                path in prop_oneof![Just(String::new()), "/[0-9]{1,2}", "/[ -~]{0,6}"],
            ) {
                let password = format!("{first}{cut}{second}");
                for text in [
                    format!("redis://user:{password}@{host}:6379{path}"),
                    format!("redis://:{password}@{host}{path}"),
                    format!("rediss://{password}@{host}{path}"),
                    format!("unix://user:{password}@/run/redis.sock"),
                    format!("http://user:{password}@{host}/"),
                ] {
                    if let Err(e) = ParsedUrl::parse(&text) {
                        prop_assert!(!e.contains(&second), "{}: {}", text, e);
                        prop_assert!(first.len() < 8 || !e.contains(&first), "{}: {}", text, e);
                    }
                }
            }
        }
    }
}
