//! Key checks under a budget, and custom metrics from read-only commands.
//!
//! redis_exporter SCANs until the cursor comes back to 0 and sizes every match one command at a
//! time, so a pattern that matches a million keys makes every scrape slow (redis_exporter#536,
//! #891). Here every scrape has a budget: at most `max_keys` keys looked at, at most `max_time` spent
//! (and never past the scrape deadline). What the budget cuts off is left out, never estimated, and
//! `fanout_exporter_key_check_budget_exceeded` says it happened. Sizes are fetched in two pipelined
//! round trips per batch (`TYPE` for every key, then the size command its type needs).

use redis::aio::MultiplexedConnection;
use tokio::time::{Instant, timeout_at};

use super::conn::{integer, is_refusal, number, text};
use super::{MetricType, RedisSettings};
use crate::family::is_valid_metric_name;
use crate::{CollectError, Families, SettingsError};

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

/// Check key-check and custom-command settings once, at start-up.
pub(super) fn validate(settings: &RedisSettings) -> Result<(), SettingsError> {
    if settings.key_check_budget.max_keys == 0 {
        return Err(SettingsError::new(
            "key_check_budget.max_keys",
            "must be at least 1",
        ));
    }
    if settings.key_check_budget.max_time.is_zero() {
        return Err(SettingsError::new(
            "key_check_budget.max_time",
            "must be more than 0",
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
        if c.metric == "redis_up" || c.metric.starts_with("redis_exporter_") {
            return Err(SettingsError::new(
                at("metric"),
                format!("{:?} is reserved for the exporter's own metrics", c.metric),
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

/// Run the key checks and custom commands of one scrape; the errors cost their own metrics only.
/// A `Timeout` among them means the connection may be mid-reply and should be rebuilt.
pub(super) async fn collect(
    settings: &RedisSettings,
    conn: &mut MultiplexedConnection,
    deadline: Instant,
    endpoint: &str,
    out: &mut Families,
) -> Vec<CollectError> {
    let mut errors = Vec::new();
    let error = |e: redis::RedisError| CollectError::Protocol {
        endpoint: endpoint.to_owned(),
        source: Box::new(e),
    };
    let db = format!("db{}", settings.url.db);

    for c in &settings.commands {
        let mut cmd = redis::cmd(&c.command[0]);
        for arg in &c.command[1..] {
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
            Ok(Err(e)) if is_refusal(&e) => errors.push(error(e)),
            Ok(Err(e)) => {
                errors.push(error(e));
                return errors;
            }
            Err(_) => {
                errors.push(CollectError::Timeout(
                    deadline.saturating_duration_since(Instant::now()),
                ));
                return errors;
            }
        }
    }

    if settings.check_keys.is_empty()
        && settings.check_single_keys.is_empty()
        && settings.count_keys.is_empty()
    {
        return errors;
    }
    let budget = &settings.key_check_budget;
    let stop = deadline.min(Instant::now() + budget.max_time);
    let mut left = budget.max_keys;
    let mut exceeded = false;

    // Counting: a full SCAN per pattern, within the budget; a cut-off count is not emitted.
    for pattern in &settings.count_keys {
        match scan(conn, pattern, stop, &mut left, None).await {
            Ok(Scan::Complete(count)) => {
                out.gauge(
                    "redis_keys_count",
                    "Count of keys matching a pattern (count_keys).",
                )
                .set(&[("db", &db), ("key", pattern)], count as f64);
            }
            Ok(Scan::Cut) => exceeded = true,
            Err(e) => {
                errors.push(error(e));
                break;
            }
        }
    }

    let mut keys: Vec<String> = Vec::new();
    for key in &settings.check_single_keys {
        if left == 0 {
            exceeded = true;
            break;
        }
        left -= 1;
        keys.push(key.clone());
    }
    for pattern in &settings.check_keys {
        match scan(conn, pattern, stop, &mut left, Some(&mut keys)).await {
            Ok(Scan::Complete(_)) => {}
            Ok(Scan::Cut) => exceeded = true,
            Err(e) => {
                errors.push(error(e));
                break;
            }
        }
    }
    keys.sort();
    keys.dedup();
    match size_keys(conn, &keys, stop, &db, out).await {
        Ok(true) => {}
        Ok(false) => exceeded = true,
        Err(e) => errors.push(error(e)),
    }
    out.gauge(
        "fanout_exporter_key_check_budget_exceeded",
        "Whether this scrape's key checks stopped at their budget (key_check_budget: max_keys, max_time); what was cut off is left out.",
    )
    .set(&[], if exceeded { 1.0 } else { 0.0 });
    errors
}

/// How a SCAN ended.
enum Scan {
    /// The cursor came back to 0: every match was seen; how many there were.
    Complete(usize),
    /// The budget or the time ran out first.
    Cut,
}

/// SCAN `pattern` until the cursor returns to 0, `left` keys have been taken, or `stop`. Matching
/// keys are added to `collect` when given, else only counted.
async fn scan(
    conn: &mut MultiplexedConnection,
    pattern: &str,
    stop: Instant,
    left: &mut usize,
    mut collect: Option<&mut Vec<String>>,
) -> redis::RedisResult<Scan> {
    let mut cursor: u64 = 0;
    let mut seen = 0usize;
    loop {
        if *left == 0 || Instant::now() >= stop {
            return Ok(Scan::Cut);
        }
        let reply = timeout_at(
            stop,
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async::<(u64, Vec<String>)>(conn),
        )
        .await;
        let (next, batch) = match reply {
            Ok(r) => r?,
            Err(_) => return Ok(Scan::Cut),
        };
        for key in batch {
            if *left == 0 {
                return Ok(Scan::Cut);
            }
            *left -= 1;
            seen += 1;
            if let Some(keys) = collect.as_deref_mut() {
                keys.push(key);
            }
        }
        if next == 0 {
            return Ok(Scan::Complete(seen));
        }
        cursor = next;
    }
}

/// `redis_key_size` (and `redis_key_value` for numeric strings) of `keys`; `Ok(false)` when the time
/// ran out before all were sized.
async fn size_keys(
    conn: &mut MultiplexedConnection,
    keys: &[String],
    stop: Instant,
    db: &str,
    out: &mut Families,
) -> redis::RedisResult<bool> {
    for chunk in keys.chunks(SCAN_COUNT) {
        let mut types = redis::pipe();
        for key in chunk {
            types.cmd("TYPE").arg(key);
        }
        let Ok(types) = timeout_at(stop, types.query_async::<Vec<String>>(conn)).await else {
            return Ok(false);
        };
        let types = types?;
        let mut sizes = redis::pipe();
        let mut asked = Vec::new();
        for (key, kind) in chunk.iter().zip(&types) {
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
            if kind == "string" {
                sizes.cmd("GET").arg(key);
            }
            asked.push((key, kind.as_str()));
        }
        if asked.is_empty() {
            continue;
        }
        let Ok(replies) = timeout_at(stop, sizes.query_async::<Vec<redis::Value>>(conn)).await
        else {
            return Ok(false);
        };
        let replies = replies?;
        let mut replies = replies.iter();
        for (key, kind) in asked {
            let Some(size) = replies.next().and_then(integer) else {
                continue;
            };
            out.gauge(
                "redis_key_size",
                "Size of a checked key: string length, or number of elements.",
            )
            .set(&[("db", db), ("key", key)], size as f64);
            if kind == "string" {
                let value = replies.next().and_then(text);
                if let Some(v) = value.and_then(|v| v.trim().parse::<f64>().ok()) {
                    out.gauge(
                        "redis_key_value",
                        "Value of a checked key that holds a number.",
                    )
                    .set(&[("db", db), ("key", key)], v);
                }
            }
        }
    }
    Ok(true)
}
