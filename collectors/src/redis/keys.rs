//! Key checks under a budget, and custom metrics from read-only commands.
//!
//! redis_exporter SCANs until the cursor comes back to 0 and sizes every match one command at a
//! time, so a pattern that matches a million keys makes every scrape slow (redis_exporter#536,
//! #891). Here every scrape has a budget: at most `max_keys` matching keys, at most `max_time` spent
//! (and never past the scrape deadline). Keys are sized as each SCAN batch arrives, so a selective
//! pattern over a large keyspace still reports what it found in time. What the budget cuts off is
//! left out, never estimated, and `fanout_exporter_key_check_budget_exceeded` says it happened.
//! `max_keys` bounds the matches; on a selective pattern the keys the server walks past are bounded
//! by `max_time` only.
//!
//! Sizing takes pipelined round trips per batch: `TYPE` of every key, then the size command its
//! type needs, then `GET` of the short strings only (a number is never longer than
//! [`MAX_VALUE_LEN`]), so a large value is never transferred. Every reply is handled on its own:
//! a key that changed type meanwhile costs only itself, and a command the ACL user may not run is
//! remembered and not sent again.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::time::{Instant, timeout_at};

use super::info::is_builtin;
use super::reply::{integer, is_permanent_refusal, is_refusal, number, text};
use super::{MetricType, RedisSettings};
use crate::family::is_valid_metric_name;
use crate::{CollectError, ErrorClass, Families, SettingsError};

/// Commands a custom metric may run: read-only, answering with a number.
const READ_ONLY: &[&str] = &[
    "BITCOUNT",
    "DBSIZE",
    "EXISTS",
    "GET",
    "HEXISTS",
    "HGET",
    "HLEN",
    "HSTRLEN",
    "LINDEX",
    "LLEN",
    "PFCOUNT",
    "PTTL",
    "SCARD",
    "SISMEMBER",
    "STRLEN",
    "TTL",
    "XLEN",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCORE",
];

/// Keys asked for per SCAN call.
const SCAN_COUNT: usize = 1000;

/// Longest string whose value is fetched for `redis_key_value`: longer ones cannot be a number
/// worth exporting, and fetching them would move arbitrary amounts of data every scrape.
pub(super) const MAX_VALUE_LEN: i64 = 64;

/// Longest `key_check_budget.max_time` accepted: key checks are part of a scrape.
const MAX_TIME: Duration = Duration::from_secs(3600);

/// Check key-check and custom-command settings once, at start-up.
pub(super) fn validate(settings: &RedisSettings) -> Result<(), SettingsError> {
    let budget = &settings.key_check_budget;
    if budget.max_keys == 0 {
        return Err(SettingsError::new(
            "key_check_budget.max_keys",
            "must be at least 1",
        ));
    }
    if budget.max_time.is_zero() || budget.max_time > MAX_TIME {
        return Err(SettingsError::new(
            "key_check_budget.max_time",
            format!("must be more than 0 and at most {MAX_TIME:?}"),
        ));
    }
    for (field, list) in [
        ("check_keys", &settings.check_keys),
        ("check_single_keys", &settings.check_single_keys),
        ("count_keys", &settings.count_keys),
    ] {
        if let Some(i) = list.iter().position(String::is_empty) {
            return Err(SettingsError::new(
                format!("{field}[{i}]"),
                "empty key or pattern",
            ));
        }
    }
    let mut names = Vec::new();
    for (i, c) in settings.commands.iter().enumerate() {
        let at = |key: &str| format!("commands[{i}].{key}");
        if !is_valid_metric_name(&c.metric) {
            return Err(SettingsError::new(
                at("metric"),
                format!("invalid metric name {:?}", c.metric),
            ));
        }
        if is_builtin(&c.metric) {
            return Err(SettingsError::new(
                at("metric"),
                format!(
                    "{:?} is a name the redis collector or the exporter uses itself",
                    c.metric
                ),
            ));
        }
        if names.contains(&c.metric.as_str()) {
            return Err(SettingsError::new(
                at("metric"),
                format!("{:?} is defined twice", c.metric),
            ));
        }
        names.push(c.metric.as_str());
        let Some(name) = c.command.first() else {
            return Err(SettingsError::new(at("command"), "the command is empty"));
        };
        if !READ_ONLY
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
        {
            return Err(SettingsError::new(
                at("command"),
                format!(
                    "{name:?} is not one of the read-only commands a metric may run: {}",
                    READ_ONLY.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// What the key checks and custom commands of one scrape went through.
#[derive(Default)]
pub(super) struct Report {
    /// Errors; each cost its own metrics only. A `Timeout` among them means the connection may be
    /// mid-reply and should be rebuilt.
    pub errors: Vec<CollectError>,
    /// Commands the server refused for good (an ACL user without `GET`), to remember.
    pub refused: Vec<(&'static str, redis::RedisError)>,
}

/// Run the key checks and custom commands of one scrape. `refuses` tells which commands the server
/// is known to refuse on this connection.
pub(super) async fn collect(
    settings: &RedisSettings,
    conn: &mut MultiplexedConnection,
    deadline: Instant,
    budget: Duration,
    endpoint: &str,
    refuses: impl Fn(&str) -> bool,
    out: &mut Families,
) -> Report {
    let mut report = Report::default();
    let error = |e: redis::RedisError| super::reply::redis_error(endpoint, e, None, budget);

    for c in &settings.commands {
        // `validate` made sure every command has a name.
        let Some((name, args)) = c.command.split_first() else {
            continue;
        };
        let mut cmd = redis::cmd(name);
        for arg in args {
            cmd.arg(arg);
        }
        match timeout_at(deadline, cmd.query_async::<redis::Value>(conn)).await {
            Ok(Ok(value)) => match number(&value) {
                Some(v) => {
                    let family = match c.kind {
                        MetricType::Counter => out.counter(&c.metric, &c.help),
                        MetricType::Gauge => out.gauge(&c.metric, &c.help),
                    };
                    family.set(&[], v);
                }
                // A missing key answers nil: no sample, no error.
                None if matches!(value, redis::Value::Nil) => {}
                None => {
                    tracing::debug!(metric = %c.metric, "the command's reply is not a number; no sample")
                }
            },
            Ok(Err(e)) if is_refusal(&e) => report.errors.push(error(e)),
            Ok(Err(e)) => {
                report.errors.push(error(e));
                return report;
            }
            Err(_) => {
                report.errors.push(CollectError::new(
                    ErrorClass::Timeout,
                    format!(
                        "{endpoint} answered, but the custom command {name} did not finish within {}",
                        crate::diagnose::human(budget)
                    ),
                ));
                return report;
            }
        }
    }

    if settings.check_keys.is_empty()
        && settings.check_single_keys.is_empty()
        && settings.count_keys.is_empty()
    {
        return report;
    }
    if refuses("type") || refuses("scan") {
        return report;
    }
    let limits = &settings.key_check_budget;
    let stop = Instant::now()
        .checked_add(limits.max_time)
        .map_or(deadline, |s| s.min(deadline));
    let mut checks = Checks {
        conn,
        stop,
        left: limits.max_keys,
        exceeded: false,
        db: format!("db{}", settings.url.db),
        get_refused: refuses("get"),
        report: &mut report,
        endpoint,
    };

    // Counting: a full SCAN per pattern, within the budget; a cut-off count is not emitted.
    for pattern in &settings.count_keys {
        match checks.scan(pattern, None).await {
            Ok(Some(count)) => {
                out.gauge(
                    "redis_keys_count",
                    "Count of keys matching a pattern (count_keys).",
                )
                .set(&[("db", &checks.db), ("key", pattern)], count as f64);
            }
            Ok(None) => checks.exceeded = true,
            Err(e) => {
                checks.report.errors.push(error(e));
                break;
            }
        }
    }

    let mut single: Vec<Vec<u8>> = Vec::new();
    for key in &settings.check_single_keys {
        if checks.left == 0 {
            checks.exceeded = true;
            break;
        }
        checks.left -= 1;
        single.push(key.as_bytes().to_vec());
    }
    if let Err(e) = checks.size(&single, out).await {
        checks.report.errors.push(error(e));
    }
    for pattern in &settings.check_keys {
        match checks.scan(pattern, Some(&mut *out)).await {
            Ok(Some(_)) => {}
            Ok(None) => checks.exceeded = true,
            Err(e) => {
                checks.report.errors.push(error(e));
                break;
            }
        }
    }
    let exceeded = checks.exceeded;
    out.gauge(
        "fanout_exporter_key_check_budget_exceeded",
        "Whether this scrape's key checks stopped at their budget (key_check_budget: max_keys, max_time); what was cut off is left out.",
    )
    .set(&[], if exceeded { 1.0 } else { 0.0 });
    report
}

/// The state of one scrape's key checks.
struct Checks<'a> {
    conn: &'a mut MultiplexedConnection,
    stop: Instant,
    /// Matching keys the budget still allows.
    left: usize,
    exceeded: bool,
    db: String,
    /// `GET` is refused on this connection: sizes only.
    get_refused: bool,
    report: &'a mut Report,
    endpoint: &'a str,
}

impl Checks<'_> {
    /// SCAN `pattern` until the cursor returns to 0 (`Some(matches)`), or the budget or the time
    /// runs out (`None`). With `sizes`, each batch of matches is sized as it arrives; without, they
    /// are only counted. Key names are bytes: Redis keys need not be UTF-8.
    async fn scan(
        &mut self,
        pattern: &str,
        mut sizes: Option<&mut Families>,
    ) -> redis::RedisResult<Option<usize>> {
        let mut cursor: u64 = 0;
        let mut seen = 0usize;
        loop {
            if self.left == 0 || Instant::now() >= self.stop {
                return Ok(None);
            }
            let reply = timeout_at(
                self.stop,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async::<(u64, Vec<Vec<u8>>)>(&mut *self.conn),
            )
            .await;
            let Ok(reply) = reply else {
                return Ok(None);
            };
            let (next, mut batch) = reply?;
            let cut = batch.len() > self.left;
            batch.truncate(self.left);
            self.left -= batch.len();
            seen += batch.len();
            if let Some(out) = sizes.as_deref_mut() {
                self.size(&batch, out).await?;
            }
            if cut {
                return Ok(None);
            }
            if next == 0 {
                return Ok(Some(seen));
            }
            cursor = next;
        }
    }

    /// `redis_key_size` (and `redis_key_value` for short numeric strings) of `keys`. A key whose
    /// reply is an error (it changed type, a command is refused) is left out; running out of time
    /// marks the budget exceeded.
    async fn size(&mut self, keys: &[Vec<u8>], out: &mut Families) -> redis::RedisResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut types = redis::pipe();
        types.ignore_errors();
        for key in keys {
            types.cmd("TYPE").arg(key);
        }
        let Some(types) = self.pipeline(&types).await? else {
            return Ok(());
        };
        let mut sizes = redis::pipe();
        sizes.ignore_errors();
        let mut asked = Vec::new();
        for (key, kind) in keys.iter().zip(&types) {
            let kind = match kind {
                Ok(v) => text(v).unwrap_or_default(),
                Err(e) => {
                    self.note(e, "type");
                    continue;
                }
            };
            let size_command = match kind.as_str() {
                "string" => "STRLEN",
                "list" => "LLEN",
                "set" => "SCARD",
                "zset" => "ZCARD",
                "hash" => "HLEN",
                "stream" => "XLEN",
                // "none": the key went away since SCAN; other types have no size we report.
                _ => continue,
            };
            sizes.cmd(size_command).arg(key);
            asked.push((key, kind == "string"));
        }
        if asked.is_empty() {
            return Ok(());
        }
        let Some(replies) = self.pipeline(&sizes).await? else {
            return Ok(());
        };
        let mut values = redis::pipe();
        values.ignore_errors();
        let mut short = Vec::new();
        for ((key, is_string), reply) in asked.into_iter().zip(replies) {
            let size = match reply {
                Ok(v) => integer(&v),
                Err(e) => {
                    self.note(&e, "size");
                    None
                }
            };
            let Some(size) = size else {
                continue;
            };
            let label = String::from_utf8_lossy(key);
            out.gauge(
                "redis_key_size",
                "Size of a checked key: string length, or number of elements.",
            )
            .set(&[("db", &self.db), ("key", &label)], size as f64);
            if is_string && size <= MAX_VALUE_LEN && !self.get_refused {
                values.cmd("GET").arg(key);
                short.push(label.into_owned());
            }
        }
        if short.is_empty() {
            return Ok(());
        }
        let Some(replies) = self.pipeline(&values).await? else {
            return Ok(());
        };
        for (label, reply) in short.iter().zip(replies) {
            match reply {
                Ok(v) => {
                    if let Some(v) = text(&v).and_then(|t| t.trim().parse::<f64>().ok()) {
                        out.gauge(
                            "redis_key_value",
                            "Value of a checked key that holds a number.",
                        )
                        .set(&[("db", &self.db), ("key", label)], v);
                    }
                }
                Err(e) if is_permanent_refusal(&e) => {
                    // Sizes still work; values are not asked for again on this connection.
                    self.get_refused = true;
                    self.report.refused.push(("get", e));
                    return Ok(());
                }
                Err(e) => self.note(&e, "get"),
            }
        }
        Ok(())
    }

    /// Run a pipeline before `stop`; `None` (and the budget marked exceeded) when time ran out.
    async fn pipeline(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<Option<Vec<redis::RedisResult<redis::Value>>>> {
        match timeout_at(self.stop, pipe.query_async(&mut *self.conn)).await {
            Ok(replies) => replies.map(Some),
            Err(_) => {
                self.exceeded = true;
                Ok(None)
            }
        }
    }

    /// A per-key error: logged at debug, and remembered when the server refuses the command for
    /// good (an ACL user without `TYPE` or a size command).
    fn note(&mut self, e: &redis::RedisError, step: &'static str) {
        tracing::debug!(endpoint = %self.endpoint, step, error = %e, "key check reply skipped");
        if is_permanent_refusal(e)
            && step == "type"
            && !self.report.refused.iter().any(|(c, _)| *c == "type")
        {
            self.report.refused.push(("type", e.clone()));
        }
    }
}
