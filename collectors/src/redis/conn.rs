//! The connection of one target, and one scrape: the core data in one pipelined round trip, then
//! `CLUSTER INFO` on cluster nodes, then key checks and custom commands.
//!
//! # Refused commands
//! Managed services disable `CONFIG` or `LATENCY`, ACL users may lack them, and old servers do not
//! know `INFO ALL`. A command the server refuses for good (`NOPERM`, unknown command or subcommand,
//! wrong arguments) is remembered with the connection and not sent again for an hour or until the
//! connection is rebuilt, so the server's error counters (`errorstat_*`, `total_error_replies`) do
//! not grow with every scrape, and the log says it once. A transient error (`BUSY` during a long
//! script, `LOADING`, `MASTERDOWN`, ...) fails that scrape's part only and is not remembered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout_at};

use super::info::{self, Info, LatencyEvent};
use super::reply::{integer, is_permanent_refusal, is_refusal, redis_error, text};
use super::transport::{Allowance, Transport};
use super::{RedisAddress, RedisSettings, keys};
use crate::diagnose::{self, Protocol, Sniff, Stage};
use crate::{CollectError, ErrorClass, Families, Outcome, SettingsError};

/// `CONFIG GET` parameters the `redis_config_*` families and the keyspace zero-fill need.
const CONFIG_PARAMETERS: [&str; 6] = [
    "maxmemory",
    "maxclients",
    "io-threads",
    "repl-backlog-size",
    "client-output-buffer-limit",
    "databases",
];

/// How long a permanent refusal is remembered: an ACL fixed later takes effect within the hour.
const REFUSAL_TTL: Duration = Duration::from_secs(3600);

/// One target: where and how to connect, and the connection kept between scrapes.
pub(super) struct Target {
    pub(super) settings: RedisSettings,
    /// Address and TLS of the stream (opened by us, so that reads are bounded: see `transport`).
    transport: Transport,
    /// Database, credentials and hello options. Holds the password; never printed.
    redis_info: RedisConnectionInfo,
    /// `host:port` or the socket path, for messages.
    endpoint: String,
    /// The kept connection. Held while connecting, so concurrent scrapes after a failure open one
    /// connection, not one each.
    cached: tokio::sync::Mutex<Option<Cached>>,
    /// Numbers connections, so that a late failure on an old one never drops a newer one.
    generation: AtomicU64,
}

/// A live connection and what we learned on it.
#[derive(Clone)]
pub(super) struct Cached {
    conn: MultiplexedConnection,
    id: u64,
    /// What a scrape may still read from this connection's stream.
    allowance: Allowance,
    /// Commands the server refused for good on this connection, by name, and when.
    refused: BTreeMap<&'static str, std::time::Instant>,
    /// The first bytes the connection received: a port of another service gives itself away there.
    sniff: Sniff,
}

impl Cached {
    /// Whether `command` was refused on this connection within the last [`REFUSAL_TTL`].
    pub(super) fn refuses(&self, command: &str) -> bool {
        self.refused
            .get(command)
            .is_some_and(|at| at.elapsed() < REFUSAL_TTL)
    }
}

impl Target {
    pub(super) fn new(settings: RedisSettings) -> Result<Self, SettingsError> {
        let url = &settings.url;
        let endpoint = url.address.to_string();
        let mut redis_info = RedisConnectionInfo::default()
            .set_db(url.db)
            // Redis < 7.2 answers CLIENT SETINFO with errors, which would count in the monitored
            // server's error statistics on every new connection.
            .set_skip_set_lib_name();
        if let Some(user) = settings.user.as_ref().or(url.user.as_ref()) {
            redis_info = redis_info.set_username(user);
        }
        if let Some(password) = settings.password.as_ref().or(url.password.as_ref()) {
            redis_info = redis_info.set_password(password.expose_secret());
        }
        let tls_wanted = url.tls || settings.tls.is_some();
        let transport = match &url.address {
            RedisAddress::Tcp { host, port } if tls_wanted => Transport::Tls {
                host: host.clone(),
                port: *port,
                config: tls_config(settings.tls.as_ref())?,
            },
            RedisAddress::Tcp { host, port } => Transport::Tcp {
                host: host.clone(),
                port: *port,
            },
            RedisAddress::Unix(_) if tls_wanted => {
                return Err(SettingsError::new(
                    "tls",
                    "TLS over a unix socket is not supported",
                ));
            }
            RedisAddress::Unix(path) => Transport::Unix(path.clone()),
        };
        Ok(Self {
            settings,
            transport,
            redis_info,
            endpoint,
            cached: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    /// The timeout of an exchange on a connection that received what `sniff` holds: another
    /// protocol's greeting is the wrong port; nothing at all is a server that does not answer.
    fn silent(&self, sniff: &Sniff, budget: Duration) -> CollectError {
        match sniff.protocol() {
            Some(seen) if seen != Protocol::Redis => {
                diagnose::mismatch(&self.endpoint, "Redis", Some(seen))
            }
            _ if sniff.received() => diagnose::timeout(Stage::Rest, &self.endpoint, budget),
            _ => diagnose::timeout(Stage::Answer, &self.endpoint, budget),
        }
    }

    /// The kept connection, or a new one made before `deadline`.
    async fn connection(
        &self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Cached, CollectError> {
        let mut kept = match timeout_at(deadline, self.cached.lock()).await {
            Ok(guard) => guard,
            Err(_) => {
                return Err(CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "another scrape was still connecting to {} after {}",
                        self.endpoint,
                        diagnose::human(budget)
                    ),
                ));
            }
        };
        if let Some(cached) = kept.as_ref() {
            return Ok(cached.clone());
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(remaining))
            .set_response_timeout(Some(remaining));
        let opened = self
            .transport
            .open(&self.endpoint, deadline, budget)
            .await?;
        let sniff = opened.sniff;
        let (conn, driver) = match timeout_at(
            deadline,
            MultiplexedConnection::new_with_config(&self.redis_info, opened.stream, config),
        )
        .await
        {
            Ok(Ok(made)) => made,
            Ok(Err(e)) => return Err(redis_error(&self.endpoint, e, Some(&sniff), budget)),
            Err(_) => return Err(self.silent(&sniff, budget)),
        };
        // The task that reads and writes the stream; it ends when every handle to the connection
        // is dropped or the stream fails.
        tokio::spawn(driver);
        let cached = Cached {
            conn,
            id: self.generation.fetch_add(1, Ordering::Relaxed),
            allowance: opened.allowance,
            refused: BTreeMap::new(),
            sniff,
        };
        *kept = Some(cached.clone());
        Ok(cached)
    }

    /// Forget connection `id`, if it is still the kept one: the next scrape connects anew.
    async fn drop_connection(&self, id: u64) {
        let mut kept = self.cached.lock().await;
        if kept.as_ref().is_some_and(|c| c.id == id) {
            *kept = None;
        }
    }

    /// Handle a command's error: remember a permanent refusal on connection `id`; anything else is
    /// this scrape's error only.
    async fn refused(
        &self,
        id: u64,
        command: &'static str,
        error: redis::RedisError,
        errors: &mut Vec<CollectError>,
        budget: Duration,
    ) {
        if !is_permanent_refusal(&error) {
            errors.push(redis_error(&self.endpoint, error, None, budget));
            return;
        }
        let mut kept = self.cached.lock().await;
        if let Some(c) = kept.as_mut().filter(|c| c.id == id)
            && !c.refuses(command)
        {
            c.refused.insert(command, std::time::Instant::now());
            tracing::info!(endpoint = %self.endpoint, command, error = %error, "the server refuses this command; not sending it again on this connection for an hour");
        }
    }
}

/// The rustls configuration of a TLS target: its CA bundle or the bundled web roots, its client
/// certificate, or no verification at all (`insecure_skip_verify`).
fn tls_config(tls: Option<&super::RedisTls>) -> Result<Arc<rustls::ClientConfig>, SettingsError> {
    let settings = crate::http::TlsSettings {
        ca_pem: tls.and_then(|t| t.ca_pem.clone()),
        cert_pem: tls.and_then(|t| t.cert_pem.clone()),
        key_pem: tls.and_then(|t| t.key_pem.clone()),
        insecure_skip_verify: tls.is_some_and(|t| t.insecure_skip_verify),
        ..crate::http::TlsSettings::default()
    };
    // The same loaders and verifier as the HTTP probe; Redis speaks no ALPN protocol.
    let mut config = (*crate::http::client_config(&settings)?).clone();
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

/// What ended a scrape with the target down, and whether the kept connection must go.
struct Down {
    error: CollectError,
    broken: bool,
}

impl Target {
    /// The deadline passed mid-exchange: the connection may be mid-reply.
    fn timeout(&self, cached: &Cached, budget: Duration) -> Down {
        Down {
            error: self.silent(&cached.sniff, budget),
            broken: true,
        }
    }

    /// A failed command that ends the scrape: a server refusal keeps the connection, anything else
    /// (I/O, timeout, a dropped connection) drops it.
    fn down(&self, cached: &Cached, e: redis::RedisError, budget: Duration) -> Down {
        Down {
            broken: e.is_timeout() || !is_refusal(&e),
            error: redis_error(&self.endpoint, e, Some(&cached.sniff), budget),
        }
    }
}

/// One scrape of one target.
pub(super) async fn collect(target: Arc<Target>, deadline: Instant) -> Outcome {
    let started = Instant::now();
    let budget = deadline.saturating_duration_since(started);
    let mut out = Families::new();
    let mut errors = Vec::new();

    let connect_started = Instant::now();
    let connected = target.connection(deadline, budget).await;
    let connect_time = connect_started.elapsed();
    let result = match connected {
        Ok(cached) => {
            let result = scrape(&target, &cached, deadline, budget, &mut out, &mut errors).await;
            let broken = match &result {
                Ok(sound) => !sound,
                Err(down) => down.broken,
            };
            if broken {
                target.drop_connection(cached.id).await;
            }
            result.map(|_| ()).map_err(|down| down.error)
        }
        Err(e) => Err(e),
    };
    scrape_metrics(&mut out, started, connect_time);
    match result {
        Ok(()) => Outcome {
            families: out.finish(),
            up: true,
            errors,
        },
        Err(e) => Outcome::down(out.finish(), e),
    }
}

/// The scrape on a connection: the core data in one round trip, `CLUSTER INFO` on cluster nodes,
/// then key checks and custom commands. `Err` when the target counts as down; `Ok(false)` when it
/// answered but the connection should not be kept. Errors that cost only their own families go to
/// `errors`.
async fn scrape(
    target: &Target,
    cached: &Cached,
    deadline: Instant,
    budget: Duration,
    out: &mut Families,
    errors: &mut Vec<CollectError>,
) -> Result<bool, Down> {
    let mut conn = cached.conn.clone();
    cached.allowance.refill();
    conn.set_response_timeout(deadline.saturating_duration_since(Instant::now()));

    let config_command = target
        .settings
        .config_command
        .as_deref()
        .filter(|_| !cached.refuses("config"));
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    let info_all = !cached.refuses("info all");
    if info_all {
        pipe.cmd("INFO").arg("ALL");
    } else {
        pipe.cmd("INFO");
    }
    if let Some(config) = config_command {
        for parameter in CONFIG_PARAMETERS {
            pipe.cmd(config).arg("GET").arg(parameter);
        }
    }
    let latency = !cached.refuses("latency");
    if latency {
        pipe.cmd("LATENCY").arg("LATEST");
    }
    let slowlog = !cached.refuses("slowlog");
    if slowlog {
        pipe.cmd("SLOWLOG").arg("LEN");
        pipe.cmd("SLOWLOG").arg("GET").arg(1);
    }
    let core_started = Instant::now();
    let replies: Vec<redis::RedisResult<redis::Value>> =
        timeout_at(deadline, pipe.query_async(&mut conn))
            .await
            .map_err(|_| target.timeout(cached, budget))?
            .map_err(|e| target.down(cached, e, budget))?;
    trace_step(&target.endpoint, "core", core_started);
    let mut replies = replies.into_iter();

    // INFO ALL, or plain INFO on servers that refuse ALL (then again from the next scrape on).
    let info = match replies.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) if info_all && is_permanent_refusal(&e) => {
            let mut ignored = Vec::new();
            target
                .refused(cached.id, "info all", e, &mut ignored, budget)
                .await;
            timeout_at(deadline, redis::cmd("INFO").query_async(&mut conn))
                .await
                .map_err(|_| target.timeout(cached, budget))?
                .map_err(|e| target.down(cached, e, budget))?
        }
        Some(Err(e)) => return Err(target.down(cached, e, budget)),
        None => redis::Value::Nil,
    };
    let Some(info_text) = text(&info) else {
        return Err(Down {
            error: CollectError::new(
                ErrorClass::Protocol,
                format!(
                    "{} answered INFO with something other than text",
                    target.endpoint
                ),
            ),
            broken: false,
        });
    };
    let info = Info::parse(&info_text);

    let mut config_pairs = Vec::new();
    if config_command.is_some() {
        for _ in CONFIG_PARAMETERS {
            match replies.next() {
                Some(Ok(value)) => config_pairs.extend(pairs(&value)),
                Some(Err(e)) => target.refused(cached.id, "config", e, errors, budget).await,
                None => {}
            }
        }
    }
    // Empty databases are zero-filled up to the server's `databases`; as redis_exporter, 16 when
    // CONFIG is unavailable, and 1 on cluster nodes whatever the setting says.
    let cluster = info.get("cluster_enabled") == Some("1");
    let databases = if cluster {
        Some(1)
    } else {
        config_pairs
            .iter()
            .find(|(k, _)| k == "databases")
            .and_then(|(_, v)| v.parse::<u32>().ok())
            .or(Some(16))
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    info::families(&info, now, databases, out);
    info::config_families(&config_pairs, out);

    if latency {
        match replies.next() {
            Some(Ok(value)) => info::latency_families(&latency_events(&value), out),
            Some(Err(e)) => {
                target
                    .refused(cached.id, "latency", e, errors, budget)
                    .await
            }
            None => {}
        }
    }
    if slowlog {
        match (replies.next(), replies.next()) {
            (Some(Ok(length)), Some(Ok(last))) => {
                let length = integer(&length).unwrap_or_default();
                info::slowlog_families(length, slowlog_last(&last), out);
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => {
                target
                    .refused(cached.id, "slowlog", e, errors, budget)
                    .await;
            }
            _ => {}
        }
    }

    let mut sound = true;
    if cluster && !cached.refuses("cluster info") {
        let cluster_started = Instant::now();
        let reply = timeout_at(
            deadline,
            redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async::<redis::Value>(&mut conn),
        )
        .await;
        match reply {
            Ok(Ok(value)) => {
                if let Some(t) = text(&value) {
                    info::cluster_families(&t, out);
                }
            }
            Ok(Err(e)) => {
                target
                    .refused(cached.id, "cluster info", e, errors, budget)
                    .await
            }
            Err(_) => {
                sound = false;
                errors.push(CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "{} answered, but not CLUSTER INFO within {}",
                        target.endpoint,
                        diagnose::human(budget)
                    ),
                ));
            }
        }
        trace_step(&target.endpoint, "cluster info", cluster_started);
    }

    let keys_started = Instant::now();
    let report = keys::collect(
        &target.settings,
        &mut conn,
        deadline,
        budget,
        &target.endpoint,
        |command| cached.refuses(command),
        out,
    )
    .await;
    trace_step(&target.endpoint, "keys and commands", keys_started);
    if report
        .errors
        .iter()
        .any(|e| e.class() == ErrorClass::Timeout)
    {
        sound = false;
    }
    errors.extend(report.errors);
    for (command, e) in report.refused {
        target.refused(cached.id, command, e, errors, budget).await;
    }
    Ok(sound)
}

/// Per-round-trip timings at `trace`: `core` is the pipelined INFO, CONFIG, LATENCY and SLOWLOG,
/// then `cluster info` on cluster nodes, then `keys and commands` (key checks, custom commands).
fn trace_step(endpoint: &str, step: &str, started: Instant) {
    tracing::trace!(
        endpoint,
        step,
        duration_seconds = started.elapsed().as_secs_f64(),
        "redis step finished"
    );
}

/// redis_exporter's per-scrape self metrics.
fn scrape_metrics(out: &mut Families, started: Instant, connect: Duration) {
    out.gauge(
        "redis_exporter_last_scrape_duration_seconds",
        "Time this scrape of the target took.",
    )
    .set(&[], started.elapsed().as_secs_f64());
    out.gauge(
        "redis_exporter_last_scrape_connect_time_seconds",
        "Time getting a connection to the target took in this scrape (close to 0 when one was kept).",
    )
    .set(&[], connect.as_secs_f64());
}

/// `CONFIG GET` replies: a flat array of name, value (RESP2) or a map (RESP3).
fn pairs(value: &redis::Value) -> Vec<(String, String)> {
    match value {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((text(k)?, text(v)?)),
                _ => None,
            })
            .collect(),
        redis::Value::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// `LATENCY LATEST`: an array of `[event, timestamp, latest ms, max ms]`.
fn latency_events(value: &redis::Value) -> Vec<LatencyEvent> {
    let redis::Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            redis::Value::Array(fields) => match fields.as_slice() {
                [event, timestamp, latest, max, ..] => Some(LatencyEvent {
                    event: text(event)?,
                    timestamp: integer(timestamp)?,
                    latest_ms: integer(latest)?,
                    max_ms: integer(max)?,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// `SLOWLOG GET 1`: the newest entry's id and duration in microseconds.
fn slowlog_last(value: &redis::Value) -> Option<(i64, i64)> {
    let redis::Value::Array(entries) = value else {
        return None;
    };
    let redis::Value::Array(fields) = entries.first()? else {
        return None;
    };
    match fields.as_slice() {
        [id, _timestamp, duration, ..] => Some((integer(id)?, integer(duration)?)),
        _ => None,
    }
}
