//! Connections: options, connecting under the deadline, session settings, and the slot-counting cache;
//! and the scrape itself, run in a task that owns its connection.
//!
//! # Why the connection count is bounded
//! A target has `max_connections` slots (a semaphore). A scrape holds a slot for each connection it
//! uses (one, or two when a second slot is free at once), from the moment it wants the connection
//! until it has put it back or closed it. It takes an idle connection if
//! there is one and opens a new one only when none is idle, and a connection goes back to the idle
//! list *before* its slot is released. So a connection is only ever opened while its opener holds a
//! slot and nothing is idle, and every open connection is either idle or held by a slot-holder: the
//! server never sees more than `max_connections` from this target.
//!
//! A scrape that reaches its deadline returns at once, but its task keeps the slot until the
//! statement in flight has finished (the session statement limit set at connect bounds that), then
//! puts the connection back and runs nothing more. Cancelling the statement client-side instead would free the slot while the
//! server still works on it.

use std::collections::BTreeSet;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus::proto::MetricFamily;
use secrecy::ExposeSecret;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, Decode, MySql, Row, ValueRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout_at};

use super::{
    Flavor, MysqlSettings, QuerySettings, Rows, Scraper, ServerInfo, Shared, collector_metrics,
    custom, scrapers,
};
use crate::diagnose::{self, Heard, Protocol, Stage};
use crate::{CollectError, ErrorClass, Families, Outcome, SettingsError};

/// Extra time a statement may take past its server-side limit before the connection is given up.
const STATEMENT_GRACE: Duration = Duration::from_secs(2);

/// Longest wait for the login before a second connection asks what listens on the port (see
/// [`Pool::connect`]). A MySQL server greets a client within milliseconds of the TCP connect.
const PATIENCE: Duration = Duration::from_secs(1);

/// How long that second connection waits for a greeting before it sends a probe.
const GREETING_WAIT: Duration = Duration::from_millis(250);

/// How long past the deadline a scrape still waits for its connect step to report: that step ends at
/// the deadline itself and knows which part of connecting hung, which the bare deadline does not.
const CONNECT_REPORT_SLACK: Duration = Duration::from_millis(20);

/// Error numbers after which the connection is still sound: the server refused or aborted one
/// statement and answered normally.
mod code {
    /// Access denied for a database.
    pub const DB_ACCESS_DENIED: u16 = 1044;
    /// Table access denied.
    pub const TABLE_ACCESS_DENIED: u16 = 1142;
    /// Column access denied.
    pub const COLUMN_ACCESS_DENIED: u16 = 1143;
    /// Missing a privilege such as PROCESS or REPLICATION CLIENT.
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// Unknown table (a plugin's table, `performance_schema` turned off).
    pub const NO_SUCH_TABLE: u16 = 1146;
    /// Unknown table in `information_schema`.
    pub const UNKNOWN_TABLE: u16 = 1109;
    /// MySQL's `max_execution_time` exceeded.
    pub const MYSQL_EXECUTION_TIME: u16 = 3024;
    /// MariaDB's `max_statement_time` exceeded.
    pub const MARIADB_STATEMENT_TIME: u16 = 1969;
    /// Unknown system variable (a `SET` the server does not support).
    pub const UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
    /// Too many connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// Access denied for a user (wrong password, unknown user).
    pub const ACCESS_DENIED: u16 = 1045;
    /// The host is blocked after too many interrupted connections.
    pub const HOST_BLOCKED: u16 = 1129;
    /// The host may not connect at all.
    pub const HOST_NOT_ALLOWED: u16 = 1130;
    /// The account reached its `max_user_connections`.
    pub const USER_LIMIT_REACHED: u16 = 1203;
    /// The server wants an authentication method the client does not offer.
    pub const AUTH_MODE_NOT_SUPPORTED: u16 = 1251;
    /// The password has expired (MySQL 5.7+, MariaDB).
    pub const PASSWORD_EXPIRED: u16 = 1862;
    /// The account is locked (MySQL).
    pub const ACCOUNT_LOCKED: u16 = 3118;
    /// The server allows only encrypted connections (MySQL's `require_secure_transport`).
    pub const SECURE_TRANSPORT_REQUIRED: u16 = 3159;
}

/// The connections of one target.
pub(super) struct Pool {
    /// Holds the password; never printed (sqlx's `Debug` shows it).
    options: MySqlConnectOptions,
    /// `host:port` or the socket path, for messages.
    endpoint: String,
    /// Where the server is, for asking a silent port what listens there.
    address: super::Address,
    slots: Arc<Semaphore>,
    max: u32,
    idle: Mutex<Vec<Idle>>,
    /// Server-side ids of every connection open now, idle or busy: `info_schema.processlist` leaves
    /// them out, as mysqld_exporter leaves out the one it runs on.
    open: Arc<Mutex<BTreeSet<u64>>>,
}

/// An idle connection, what we learned about its server, and its place in [`Pool::open`].
struct Idle {
    conn: MySqlConnection,
    server: ServerInfo,
    id: OpenId,
}

/// Keeps a connection's id in the pool's open set for as long as the connection exists.
struct OpenId {
    id: u64,
    open: Arc<Mutex<BTreeSet<u64>>>,
}

impl Drop for OpenId {
    fn drop(&mut self) {
        locked(&self.open).remove(&self.id);
    }
}

/// A lock that a panic elsewhere cannot poison for good: every structure behind these locks stays
/// consistent between operations.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    pub(super) fn new(settings: &MysqlSettings) -> Result<Self, SettingsError> {
        let mut options = MySqlConnectOptions::new()
            .username(&settings.user)
            .charset("utf8mb4")
            // Leave the session close to how the server configures it, so custom SQL means what it
            // means in the user's own client: sqlx would turn on PIPES_AS_CONCAT and force the time
            // zone (its handshake still asks for IGNORE_SPACE, as most clients do).
            .pipes_as_concat(false)
            .no_engine_substitution(false)
            .timezone(None)
            .disable_statement_logging();
        options = match &settings.address {
            super::Address::Tcp { host, port } => options.host(host).port(*port),
            super::Address::Unix(path) => options.socket(path),
        };
        if let Some(password) = &settings.password {
            options = options.password(password.expose_secret());
        }
        options = match &settings.tls {
            None => options.ssl_mode(MySqlSslMode::Preferred),
            Some(tls) => {
                tls.check()?;
                let mut o = options.ssl_mode(if tls.insecure_skip_verify {
                    MySqlSslMode::Required
                } else {
                    MySqlSslMode::VerifyIdentity
                });
                if let Some(ca) = &tls.ca_pem {
                    o = o.ssl_ca_from_pem(ca.clone());
                }
                if let (Some(cert), Some(key)) = (&tls.cert_pem, &tls.key_pem) {
                    o = o
                        .ssl_client_cert_from_pem(cert)
                        .ssl_client_key_from_pem(key.expose_secret());
                }
                o
            }
        };
        Ok(Self {
            options,
            endpoint: settings.address.to_string(),
            address: settings.address.clone(),
            slots: Arc::new(Semaphore::new(settings.max_connections as usize)),
            max: settings.max_connections,
            idle: Mutex::new(Vec::new()),
            open: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        locked(&self.idle)
    }

    /// Ids of this target's open connections.
    pub(super) fn open_ids(&self) -> Vec<u64> {
        locked(&self.open).iter().copied().collect()
    }

    /// Close the idle connections politely (COM_QUIT), so the server does not count and log them as
    /// aborted when the exporter stops.
    pub(super) async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle());
        for Idle { conn, .. } in idle {
            let _ = timeout_at(Instant::now() + Duration::from_secs(1), conn.close()).await;
        }
    }

    /// What `e`, from sqlx at `step`, means for this target, in its true class.
    fn error(&self, e: sqlx::Error, step: diagnose::Step) -> CollectError {
        let endpoint = &self.endpoint;
        let e = match e {
            sqlx::Error::Io(io) => return diagnose::io_error(endpoint, "MySQL", step, io, None),
            other => other,
        };
        let (class, message) = match &e {
            sqlx::Error::Tls(source) => {
                if let Some(tls) = source.downcast_ref::<rustls::Error>() {
                    return diagnose::tls_error(endpoint, tls, None).with_source(e);
                }
                (
                    ErrorClass::Tls,
                    format!("TLS with {endpoint} failed: {source}"),
                )
            }
            sqlx::Error::Database(d) => {
                let number = error_number(&e).unwrap_or_default();
                let text = d.message();
                match number {
                    code::ACCESS_DENIED => (
                        ErrorClass::Auth,
                        format!(
                            "{endpoint} rejected the login (wrong password or unknown user?): {text}"
                        ),
                    ),
                    code::DB_ACCESS_DENIED
                    | code::HOST_NOT_ALLOWED
                    | code::AUTH_MODE_NOT_SUPPORTED
                    | code::PASSWORD_EXPIRED
                    | code::ACCOUNT_LOCKED => (
                        ErrorClass::Auth,
                        format!("{endpoint} rejected the login: {text}"),
                    ),
                    code::SECURE_TRANSPORT_REQUIRED => (
                        ErrorClass::Tls,
                        format!(
                            "{endpoint} accepts only TLS connections (add a tls section): {text}"
                        ),
                    ),
                    code::TOO_MANY_CONNECTIONS | code::USER_LIMIT_REACHED | code::HOST_BLOCKED => (
                        ErrorClass::Server,
                        format!("{endpoint} refused a new connection: {text}"),
                    ),
                    _ if is_denied(&e) => (
                        ErrorClass::Denied,
                        format!("{endpoint}: missing privilege: {text}"),
                    ),
                    _ => (
                        ErrorClass::Server,
                        format!("{endpoint} answered with an error: {text}"),
                    ),
                }
            }
            sqlx::Error::Protocol(text) => (
                ErrorClass::Protocol,
                format!("{endpoint} does not speak MySQL as expected: {text}"),
            ),
            other => (ErrorClass::Other, format!("talking to {endpoint}: {other}")),
        };
        CollectError::new(class, message).with_source(e)
    }

    /// A new, logged-in connection by `deadline`.
    ///
    /// A MySQL server greets every client as soon as it connects; one that has not logged us in
    /// after [`PATIENCE`] (or half the budget) is asked what it is on a second connection
    /// ([`diagnose::listen`]), so that a silent port says whether it connects at all, belongs to
    /// another service (Redis answers the probe with `+PONG`, an HTTP server with a 400) or to a
    /// server that accepts and never answers. Another service ends the attempt at once; otherwise
    /// the login keeps its whole budget and the finding words the timeout. The second connection
    /// costs a stuck server one connection above `max_connections` and one aborted connect, only
    /// while the scrape's own login is already stuck.
    async fn connect(
        &self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<MySqlConnection, CollectError> {
        let endpoint = &self.endpoint;
        // Not timed out here: the deadline ends the listening below, and the login after it.
        let login = self.options.connect();
        tokio::pin!(login);
        let heard = match &self.address {
            super::Address::Tcp { host, port } => {
                let patience = PATIENCE.min(budget / 2);
                let listening = async {
                    tokio::time::sleep(patience).await;
                    diagnose::listen((host.as_str(), *port), GREETING_WAIT, deadline).await
                };
                tokio::select! {
                    biased;
                    done = &mut login => return self.logged_in(Ok(done), None, budget),
                    heard = listening => Some(heard),
                }
            }
            super::Address::Unix(_) => None,
        };
        match heard {
            Some(Heard::Greeting(seen) | Heard::Answer(seen)) if seen != Some(Protocol::Mysql) => {
                tracing::debug!(endpoint = %endpoint, "the port does not speak MySQL; not waiting for the login");
                return Err(diagnose::mismatch(endpoint, "MySQL", seen));
            }
            _ => {}
        }
        let done = timeout_at(deadline, login).await;
        self.logged_in(done, heard, budget)
    }

    /// The login's result, its timeout worded by what [`diagnose::listen`] heard meanwhile.
    fn logged_in(
        &self,
        done: Result<Result<MySqlConnection, sqlx::Error>, tokio::time::error::Elapsed>,
        heard: Option<Heard>,
        budget: Duration,
    ) -> Result<MySqlConnection, CollectError> {
        let endpoint = &self.endpoint;
        match done {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(e, diagnose::Step::Connect)),
            Err(_) => Err(match heard {
                Some(Heard::NoConnection) => diagnose::timeout(Stage::Connecting, endpoint, budget),
                Some(Heard::Silence) => CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "connected to {endpoint}, but the server did not answer within {} (no MySQL greeting)",
                        diagnose::human(budget)
                    ),
                ),
                Some(Heard::Greeting(_) | Heard::Answer(_)) => CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "{endpoint} greets as MySQL, but the login did not finish within {}",
                        diagnose::human(budget)
                    ),
                ),
                // A unix socket, or a budget too short to ask.
                None => CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "the login to {endpoint} did not finish within {}",
                        diagnose::human(budget)
                    ),
                ),
            }),
        }
    }

    /// A connection and the slot it occupies: an idle one that still answers, or a new one.
    async fn lease(
        &self,
        settings: &MysqlSettings,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Lease, CollectError> {
        let slot = match timeout_at(deadline, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            // The semaphore is never closed.
            Ok(Err(_)) => return Err(CollectError::internal("connection slots closed")),
            Err(_) => {
                // The server may be fine: earlier statements still hold every slot.
                tracing::warn!(endpoint = %self.endpoint, max_connections = self.max, "all connection slots stayed busy until the deadline");
                return Err(CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "all {} connections to {} stayed busy with earlier statements for {}",
                        self.max,
                        self.endpoint,
                        diagnose::human(budget)
                    ),
                ));
            }
        };
        self.connection(slot, settings, deadline, budget).await
    }

    /// A second connection for the same scrape, only if a slot is free right now and the connection
    /// can be had before the deadline; never waits for a slot.
    async fn try_lease(&self, settings: &MysqlSettings, deadline: Instant) -> Option<Lease> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        let budget = deadline.saturating_duration_since(Instant::now());
        match self.connection(slot, settings, deadline, budget).await {
            Ok(lease) => Some(lease),
            Err(e) => {
                tracing::debug!(endpoint = %self.endpoint, error = %e, "no second connection for this scrape");
                None
            }
        }
    }

    /// A connection for `slot`: an idle one that still answers, or a new one.
    async fn connection(
        &self,
        slot: OwnedSemaphorePermit,
        settings: &MysqlSettings,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Lease, CollectError> {
        loop {
            let Some(Idle {
                mut conn,
                server,
                id,
            }) = self.idle().pop()
            else {
                break;
            };
            // A server restart or its wait_timeout leaves idle connections dead; one round trip
            // finds out before a scrape's statements do.
            match timeout_at(deadline, conn.ping()).await {
                Ok(Ok(())) => {
                    return Ok(Lease {
                        conn,
                        server,
                        id,
                        slot,
                    });
                }
                Ok(Err(e)) => {
                    tracing::debug!(endpoint = %self.endpoint, error = %e, "idle connection is gone; reconnecting")
                }
                Err(_) => {
                    return Err(CollectError::new(
                        ErrorClass::Timeout,
                        format!(
                            "the kept connection to {} did not answer a ping within {}",
                            self.endpoint,
                            diagnose::human(budget)
                        ),
                    ));
                }
            }
        }
        let mut conn = self.connect(deadline, budget).await?;
        let (server, id) = match timeout_at(deadline, prepare_session(&mut conn, settings)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => return Err(self.error(e, diagnose::Step::Exchange)),
            Err(_) => {
                return Err(CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "logged in to {}, but the server did not answer the session setup within {}",
                        self.endpoint,
                        diagnose::human(budget)
                    ),
                ));
            }
        };
        locked(&self.open).insert(id);
        let id = OpenId {
            id,
            open: Arc::clone(&self.open),
        };
        Ok(Lease {
            conn,
            server,
            id,
            slot,
        })
    }

    /// Keep a sound connection for the next scrape; the slot is released after it is listed.
    fn give_back(&self, lease: Lease) {
        let Lease {
            conn,
            server,
            id,
            slot,
        } = lease;
        self.idle().push(Idle { conn, server, id });
        drop(slot);
    }
}

/// A connection in use and the slot that counts it.
struct Lease {
    conn: MySqlConnection,
    server: ServerInfo,
    id: OpenId,
    slot: OwnedSemaphorePermit,
}

/// Learn the flavor, version and connection id, then limit what our statements can cost the server.
async fn prepare_session(
    conn: &mut MySqlConnection,
    settings: &MysqlSettings,
) -> Result<(ServerInfo, u64), sqlx::Error> {
    let rows = query(conn, "SELECT @@version, @@version_comment, CONNECTION_ID()").await?;
    let cell = |i: usize| {
        rows.rows
            .first()
            .and_then(|r| r.get(i).cloned().flatten())
            .unwrap_or_default()
    };
    let server = ServerInfo::detect(&cell(0), &cell(1));
    let id = cell(2).parse::<u64>().unwrap_or_default();
    let lock_wait = settings.lock_wait_timeout.as_secs().max(1);
    let limit = settings.statement_timeout;
    let base = format!("SET SESSION lock_wait_timeout = {lock_wait}");
    let with_limit = match server.flavor {
        Flavor::MariaDb if server.at_least(10, 1, 1) => Some(format!(
            "{base}, max_statement_time = {}",
            mariadb_seconds(limit)
        )),
        Flavor::MySql | Flavor::Percona if server.at_least(5, 7, 8) => Some(format!(
            "{base}, max_execution_time = {}",
            limit.as_millis().max(1)
        )),
        _ => None,
    };
    match with_limit {
        Some(sql) => match query(conn, &sql).await {
            Ok(_) => {}
            // A server (or proxy) that claims the version but lacks the variable: go on without
            // the limit rather than stay down.
            Err(e) if error_number(&e) == Some(code::UNKNOWN_SYSTEM_VARIABLE) => {
                tracing::warn!(error = %e, "the server has no statement time limit; statements run unbounded");
                query(conn, &base).await?;
            }
            Err(e) => return Err(e),
        },
        None => {
            query(conn, &base).await?;
        }
    }
    Ok((server, id))
}

/// A limit in MariaDB's `max_statement_time` unit (seconds, microsecond precision); never 0, which
/// would mean no limit at all.
fn mariadb_seconds(limit: Duration) -> String {
    format!("{:.6}", limit.as_secs_f64().max(0.000_001))
}

/// Run `sql` over the text protocol and return every value as text.
///
/// Boxed so the future is `Send` at concrete lifetimes: sqlx's executor impls are higher-ranked, and
/// an unboxed future held across the scrape task's awaits trips the compiler's `Send` inference.
pub(super) fn query<'a>(
    conn: &'a mut MySqlConnection,
    sql: &'a str,
) -> BoxFuture<'a, Result<Rows, sqlx::Error>> {
    // A plain `&str` carries no arguments, so sqlx sends it as COM_QUERY (the text protocol), like
    // `raw_sql` but through the `Executor` impl, which has no higher-ranked bound.
    Box::pin(async move { to_rows(sqlx::Executor::fetch_all(conn, sql).await?) })
}

fn to_rows(fetched: Vec<sqlx::mysql::MySqlRow>) -> Result<Rows, sqlx::Error> {
    let mut rows = Rows::default();
    if let Some(first) = fetched.first() {
        rows.columns = first
            .columns()
            .iter()
            .map(|c| sqlx::Column::name(c).to_owned())
            .collect();
    }
    rows.rows.reserve(fetched.len());
    for row in &fetched {
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                values.push(None);
            } else {
                let bytes = <&[u8] as Decode<MySql>>::decode(raw).map_err(sqlx::Error::Decode)?;
                values.push(Some(crate::lossy_text(bytes)));
            }
        }
        rows.rows.push(values);
    }
    Ok(rows)
}

/// What a scrape has produced so far, shared between the collector (which returns at the deadline)
/// and the task doing the work (which may outlive it).
#[derive(Default)]
struct Progress {
    /// The target's endpoint, for the trace of each step.
    endpoint: String,
    families: Families,
    /// Families built elsewhere (custom queries, possibly from their cache).
    extra: Vec<MetricFamily>,
    /// `Some(true)` once connected, `Some(false)` when connecting failed.
    up: Option<bool>,
    errors: Vec<CollectError>,
    /// Sub-collectors and queries not finished yet, by `collector` label.
    pending: Vec<String>,
    /// Set by the collector when it returned: the task stops before its next statement.
    abandoned: bool,
    /// A connection broke; steps nobody ran are reported as failed.
    broken: bool,
}

/// One scrape of one target.
pub(super) async fn collect(shared: Arc<Shared>, deadline: Instant) -> Outcome {
    let started = Instant::now();
    let budget = deadline.saturating_duration_since(started);
    let progress = Arc::new(Mutex::new(Progress {
        endpoint: shared.pool.endpoint.clone(),
        pending: planned(&shared.settings),
        ..Progress::default()
    }));
    let task = tokio::spawn(work(
        Arc::clone(&shared),
        deadline,
        budget,
        Arc::clone(&progress),
    ));
    tokio::pin!(task);
    let mut finished = timeout_at(deadline, &mut task).await;
    if finished.is_err() && locked(&progress).up.is_none() {
        // Still connecting: that step times out at the deadline too, and says which part hung.
        finished = timeout_at(deadline + CONNECT_REPORT_SLACK, &mut task).await;
    }
    let mut p = locked(&progress);
    p.abandoned = true;
    let mut progress = std::mem::take(&mut *p);
    drop(p);
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(join)) => {
            for name in &progress.pending {
                collector_metrics(&mut progress.families, name, Some(false), Duration::ZERO);
            }
            progress.errors.push(CollectError::internal(format!(
                "scrape task failed: {join}"
            )));
        }
        Err(_) => {
            // Whatever did not finish in time is reported as failed, and the scrape as timed out.
            for name in &progress.pending {
                collector_metrics(&mut progress.families, name, Some(false), Duration::ZERO);
            }
            progress
                .errors
                .push(unfinished(&shared.pool.endpoint, &progress, budget));
        }
    }
    let mut families = progress.families.finish();
    families.append(&mut progress.extra);
    Outcome {
        families,
        up: progress.up == Some(true),
        errors: progress.errors,
    }
}

/// The timeout of a scrape cut off by its deadline, naming what was left: the steps still pending
/// once connected, or the connect step when it never reported.
fn unfinished(endpoint: &str, progress: &Progress, budget: Duration) -> CollectError {
    if progress.up != Some(true) {
        return CollectError::new(
            ErrorClass::Timeout,
            format!(
                "connecting to {endpoint} did not finish within {}",
                diagnose::human(budget)
            ),
        );
    }
    let mut pending: Vec<&str> = progress
        .pending
        .iter()
        .map(String::as_str)
        .take(5)
        .collect();
    if progress.pending.len() > pending.len() {
        pending.push("...");
    }
    CollectError::new(
        ErrorClass::Timeout,
        format!(
            "{endpoint} answered, but {} did not finish within {}",
            pending.join(", "),
            diagnose::human(budget)
        ),
    )
}

/// `collector` label values of the steps a scrape runs, in order.
fn planned(settings: &MysqlSettings) -> Vec<String> {
    settings
        .collect
        .iter()
        .map(|s| format!("collect.{}", s.name()))
        .chain(settings.queries.iter().map(|q| format!("query.{}", q.name)))
        .collect()
}

/// How a statement went, for the step that ran it.
enum Step {
    /// Rows arrived.
    Rows(Rows),
    /// The server refused or aborted the statement; the connection is fine.
    Refused(sqlx::Error),
    /// The connection broke or the statement outlived its limit: drop the connection.
    Broken(CollectError),
}

async fn run_statement(pool: &Pool, conn: &mut MySqlConnection, sql: &str, cap: Instant) -> Step {
    match timeout_at(cap, query(conn, sql)).await {
        Ok(Ok(rows)) => Step::Rows(rows),
        Ok(Err(e)) if e.as_database_error().is_some() => Step::Refused(e),
        Ok(Err(e)) => Step::Broken(pool.error(e, diagnose::Step::Exchange)),
        Err(_) => Step::Broken(CollectError::new(
            ErrorClass::Timeout,
            format!(
                "a statement on {} ran well past its server-side limit; the connection is closed",
                pool.endpoint
            ),
        )),
    }
}

/// The server's error number, when the server refused a statement.
fn error_number(e: &sqlx::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|d| d.number())
}

/// Whether a refused statement means "not available here" (skip quietly) rather than a failure.
fn is_missing(e: &sqlx::Error) -> bool {
    matches!(
        error_number(e),
        Some(code::NO_SUCH_TABLE | code::UNKNOWN_TABLE)
    )
}

/// Whether a refused statement is a missing privilege.
fn is_denied(e: &sqlx::Error) -> bool {
    matches!(
        error_number(e),
        Some(
            code::DB_ACCESS_DENIED
                | code::TABLE_ACCESS_DENIED
                | code::COLUMN_ACCESS_DENIED
                | code::SPECIFIC_ACCESS_DENIED
        )
    )
}

/// Whether a refused statement hit the server-side time limit.
fn is_time_limit(e: &sqlx::Error) -> bool {
    matches!(
        error_number(e),
        Some(code::MYSQL_EXECUTION_TIME | code::MARIADB_STATEMENT_TIME)
    )
}

/// One step of a scrape: a sub-collector or a custom query (by index).
#[derive(Debug, Clone, Copy)]
enum Item {
    Scraper(Scraper),
    Query(usize),
}

/// The body of a scrape: connect (or reuse), run the steps, give the connections back if sound.
///
/// The steps are a shared queue. One worker runs them on the scrape's connection; when another slot
/// is free at that moment, a second worker takes steps from the same queue on a second connection,
/// so `SHOW GLOBAL STATUS` and `SHOW GLOBAL VARIABLES`, which cost the server a millisecond or more
/// each, run side by side. A scrape never waits for that second slot.
async fn work(
    shared: Arc<Shared>,
    deadline: Instant,
    budget: Duration,
    progress: Arc<Mutex<Progress>>,
) {
    let settings = &shared.settings;
    let pool = &shared.pool;
    let connect_started = Instant::now();
    let lease = pool.lease(settings, deadline, budget).await;
    {
        let mut p = locked(&progress);
        collector_metrics(
            &mut p.families,
            "connection",
            None,
            connect_started.elapsed(),
        );
        p.up = Some(lease.is_ok());
    }
    let lease = match lease {
        Ok(lease) => lease,
        Err(e) => {
            let mut p = locked(&progress);
            p.errors.push(e);
            p.pending.clear();
            return;
        }
    };
    let queue: Mutex<VecDeque<Item>> = Mutex::new(
        settings
            .collect
            .iter()
            .map(|&s| Item::Scraper(s))
            .chain((0..settings.queries.len()).map(Item::Query))
            .collect(),
    );
    let second = async {
        if locked(&queue).len() < 2 {
            return;
        }
        if let Some(lease) = pool.try_lease(settings, deadline).await {
            worker(&shared, lease, &queue, &progress).await;
        }
    };
    futures_util::future::join(worker(&shared, lease, &queue, &progress), second).await;

    // Steps left behind by broken connections did not run.
    let mut p = locked(&progress);
    if !p.abandoned && p.broken {
        let rest = std::mem::take(&mut p.pending);
        for name in rest {
            collector_metrics(&mut p.families, &name, Some(false), Duration::ZERO);
        }
    }
}

/// Run steps from `queue` on `lease` until the queue is empty, the scrape is abandoned, or the
/// connection breaks; then give the connection back if it is sound.
async fn worker(
    shared: &Shared,
    mut lease: Lease,
    queue: &Mutex<VecDeque<Item>>,
    progress: &Mutex<Progress>,
) {
    loop {
        if locked(progress).abandoned {
            break;
        }
        let next = locked(queue).pop_front();
        let Some(item) = next else {
            break;
        };
        let result = match item {
            Item::Scraper(scraper) => run_scraper(shared, &mut lease, scraper, progress).await,
            Item::Query(index) => {
                let q = &shared.settings.queries[index];
                run_query(shared, &mut lease, index, q, progress).await
            }
        };
        if let Err(e) = result {
            let mut p = locked(progress);
            p.errors.push(e);
            p.broken = true;
            // Dropping closes the socket; the slot goes with it.
            return;
        }
    }
    // The statements on it have finished, so even after the scrape returned the connection is sound.
    shared.pool.give_back(lease);
}

/// Run one sub-collector. `Err` only when the connection broke.
async fn run_scraper(
    shared: &Shared,
    lease: &mut Lease,
    scraper: Scraper,
    progress: &Mutex<Progress>,
) -> Result<(), CollectError> {
    let settings = &shared.settings;
    let pool = &shared.pool;
    let label = format!("collect.{}", scraper.name());
    let started = Instant::now();
    let Some(sql) = scrapers::statement(scraper, &lease.server, settings, &pool.open_ids()) else {
        finish(progress, &label, Some(true), started, None);
        return Ok(());
    };
    match run_statement(pool, &mut lease.conn, &sql, cap(settings.statement_timeout)).await {
        Step::Rows(fetched) => match scrapers::rows(scraper, fetched) {
            Ok(rows) => {
                let mut built = Families::new();
                scrapers::families(scraper, &rows, &lease.server, settings, &mut built);
                finish_with(progress, &label, started, built.finish());
            }
            Err(why) => fail(
                progress,
                pool,
                &label,
                started,
                ErrorClass::Protocol,
                format!("{label}: {why}"),
            ),
        },
        Step::Refused(e) if is_missing(&e) && scraper != Scraper::GlobalStatus => {
            tracing::debug!(endpoint = %pool.endpoint, collector = %label, error = %e, "not available on this server; skipped");
            finish(progress, &label, Some(true), started, None);
        }
        Step::Refused(e) => {
            let (class, why) = if is_denied(&e) {
                (
                    ErrorClass::Denied,
                    format!("{label}: missing privilege: {e}"),
                )
            } else {
                (ErrorClass::Server, format!("{label}: {e}"))
            };
            fail(progress, pool, &label, started, class, why);
        }
        Step::Broken(e) => {
            finish(progress, &label, Some(false), started, None);
            return Err(e);
        }
    }
    Ok(())
}

/// When a statement started now with a server-side `limit` is given up. It may run past the scrape's
/// deadline (the collector has returned by then), and its connection keeps its slot meanwhile. The
/// server stops it at `limit` where it can (MariaDB: every statement; MySQL: `SELECT`s only, so not
/// `SHOW`), so waiting twice as long covers a server that is merely slow; after that the connection
/// is dropped and its slot freed, though the server may still be working on the statement.
fn cap(limit: Duration) -> Instant {
    Instant::now() + limit * 2 + STATEMENT_GRACE
}

/// Record a step that failed while its connection stayed sound, with `why` as its error.
fn fail(
    progress: &Mutex<Progress>,
    pool: &Pool,
    label: &str,
    started: Instant,
    class: ErrorClass,
    why: String,
) {
    let error = CollectError::new(class, format!("{}: {why}", pool.endpoint));
    finish(progress, label, Some(false), started, Some(error));
}

/// Record a step that succeeded with `families`, in one go: a scrape that returns at its deadline
/// sees both the families and the step's success, or neither.
fn finish_with(
    progress: &Mutex<Progress>,
    label: &str,
    started: Instant,
    families: Vec<MetricFamily>,
) {
    let mut p = locked(progress);
    if p.abandoned {
        return;
    }
    p.extra.extend(families);
    collector_metrics(&mut p.families, label, Some(true), started.elapsed());
    p.pending.retain(|name| name != label);
    trace_step(&p.endpoint, label, Some(true), started);
}

/// Per-step timings at `trace`, for finding the sub-collector that makes a scrape slow.
fn trace_step(endpoint: &str, label: &str, success: Option<bool>, started: Instant) {
    tracing::trace!(
        endpoint,
        collector = label,
        duration_seconds = started.elapsed().as_secs_f64(),
        success = success.unwrap_or(true),
        "mysql step finished"
    );
}

/// Record a finished step: its self metrics, its error, and that it is no longer pending.
fn finish(
    progress: &Mutex<Progress>,
    label: &str,
    success: Option<bool>,
    started: Instant,
    error: Option<CollectError>,
) {
    let mut p = locked(progress);
    if p.abandoned {
        return;
    }
    collector_metrics(&mut p.families, label, success, started.elapsed());
    p.pending.retain(|name| name != label);
    trace_step(&p.endpoint, label, success, started);
    if let Some(e) = error {
        p.errors.push(e);
    }
}

/// Run one custom query (or serve it from its `min_interval` cache). `Err` only when the connection
/// broke.
async fn run_query(
    shared: &Shared,
    lease: &mut Lease,
    index: usize,
    q: &QuerySettings,
    progress: &Mutex<Progress>,
) -> Result<(), CollectError> {
    let label = format!("query.{}", q.name);
    let started = Instant::now();
    if !q.min_interval.is_zero() {
        let cached = locked(&shared.cache)
            .get(&index)
            .filter(|(at, _)| at.elapsed() < q.min_interval)
            .map(|(_, families)| families.clone());
        if let Some(families) = cached {
            finish_with(progress, &label, started, families);
            return Ok(());
        }
    }
    let limit = q
        .timeout
        .unwrap_or(shared.settings.statement_timeout)
        .min(shared.settings.statement_timeout);
    let pool = &shared.pool;
    let server = lease.server;
    // The per-query limit is enforced by the server, so a slow query is stopped there and the
    // connection stays usable for the next one.
    let (sql, reset) = match server.flavor {
        Flavor::MariaDb if server.at_least(10, 1, 2) => (
            format!(
                "SET STATEMENT max_statement_time = {} FOR {}",
                mariadb_seconds(limit),
                q.query
            ),
            None,
        ),
        Flavor::MySql | Flavor::Percona if server.at_least(5, 7, 8) && q.timeout.is_some() => {
            match run_statement(
                pool,
                &mut lease.conn,
                &format!(
                    "SET SESSION max_execution_time = {}",
                    limit.as_millis().max(1)
                ),
                cap(STATEMENT_GRACE),
            )
            .await
            {
                Step::Broken(e) => return Err(e),
                _ => (
                    q.query.clone(),
                    Some(format!(
                        "SET SESSION max_execution_time = {}",
                        shared.settings.statement_timeout.as_millis().max(1)
                    )),
                ),
            }
        }
        _ => (q.query.clone(), None),
    };
    let step = run_statement(pool, &mut lease.conn, &sql, cap(limit)).await;
    if let Some(reset) = reset
        && let Step::Broken(e) =
            run_statement(pool, &mut lease.conn, &reset, cap(STATEMENT_GRACE)).await
    {
        return Err(e);
    }
    match step {
        Step::Rows(rows) => {
            let mut built = Families::new();
            let result = custom::families(q, &rows, &mut built);
            let families = built.finish();
            match result {
                Ok(()) => {
                    if !q.min_interval.is_zero() {
                        locked(&shared.cache).insert(index, (Instant::now(), families.clone()));
                    }
                    finish_with(progress, &label, started, families);
                }
                Err(why) => fail(
                    progress,
                    pool,
                    &label,
                    started,
                    ErrorClass::Check,
                    format!("{label}: {why}"),
                ),
            }
            Ok(())
        }
        Step::Refused(e) => {
            let (class, why) = if is_time_limit(&e) {
                (
                    ErrorClass::Timeout,
                    format!("{label}: stopped by the server after {limit:?}"),
                )
            } else if is_denied(&e) {
                (
                    ErrorClass::Denied,
                    format!("{label}: missing privilege: {e}"),
                )
            } else {
                (ErrorClass::Server, format!("{label}: {e}"))
            };
            fail(progress, pool, &label, started, class, why);
            Ok(())
        }
        Step::Broken(e) => {
            finish(progress, &label, Some(false), started, None);
            Err(e)
        }
    }
}
