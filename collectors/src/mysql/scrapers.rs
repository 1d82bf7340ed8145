//! Each sub-collector's statement and the families it makes from the rows.
//!
//! # Compatibility
//! Names and label names follow mysqld_exporter (v0.15+), because dashboards and the mixin are built on
//! them; what we change is typing and the statement choice:
//! - Nothing is untyped. mysqld_exporter leaves `SHOW GLOBAL STATUS` leftovers and every `SHOW SLAVE
//!   STATUS` column untyped; we type status variables from a curated table (unknown ones are gauges, so
//!   a `rate()` never runs over something that goes down) and replication columns as gauges.
//! - One statement per sub-collector, picked from the flavor and version learned at connect, instead of
//!   mysqld_exporter's cascade of failing `SHOW ... STATUS` variants on every scrape.
//! - Values follow mysqld_exporter's `parseStatus` rules, plus what it meant to do and does not: binary
//!   log names become their sequence number (upstream's regex returns the whole name, so the value is
//!   dropped).
//!
//! # Cost
//! A scrape budget of a fifth of mysqld_exporter's latency leaves no room for regex engines or per-row
//! maps: names are matched with plain string comparisons, normalized into reused buffers, and status
//! types are a `match` the compiler turns into a jump on length and bytes.

use std::collections::BTreeMap;

use std::fmt::Write as _;

use super::{Flavor, MysqlSettings, Rows, Scraper, ServerInfo};
use crate::Families;

/// The statement `scraper` runs on `server`, or `None` when this server has nothing to offer for it
/// (the sub-collector is then skipped: no families, success 1).
///
/// `own` are the ids of this target's open connections, which `info_schema.processlist` leaves out
/// (mysqld_exporter leaves out the one connection it runs on; ours may have two).
pub(crate) fn statement(
    scraper: Scraper,
    server: &ServerInfo,
    settings: &MysqlSettings,
    own: &[u64],
) -> Option<String> {
    match scraper {
        Scraper::GlobalStatus => Some("SHOW GLOBAL STATUS".to_owned()),
        Scraper::GlobalVariables => Some("SHOW GLOBAL VARIABLES".to_owned()),
        Scraper::SlaveStatus => Some(slave_status_statement(server).to_owned()),
        Scraper::Processlist => Some(processlist_statement(settings, own)),
        Scraper::InnodbMetrics => innodb_metrics_statement(server).map(str::to_owned),
        Scraper::EventsStatements => {
            has_statement_digests(server).then(|| events_statements_statement(settings))
        }
        Scraper::Tables => tables_statement(&settings.table_schemas),
    }
}

/// Add the families of `scraper` made from `rows` to `out`.
pub(crate) fn families(
    scraper: Scraper,
    rows: &Rows,
    _server: &ServerInfo,
    settings: &MysqlSettings,
    out: &mut Families,
) {
    match scraper {
        Scraper::GlobalStatus => global_status(rows, out),
        Scraper::GlobalVariables => global_variables(rows, out),
        Scraper::SlaveStatus => slave_status(rows, out),
        Scraper::Processlist => processlist(rows, settings, out),
        Scraper::InnodbMetrics => innodb_metrics(rows, out),
        Scraper::EventsStatements => events_statements(rows, out),
        Scraper::Tables => tables(rows, out),
    }
}

// ---------------------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------------------

/// MariaDB lists every named connection with `SHOW ALL SLAVES STATUS` (multi-source since 10.0; the
/// `REPLICA` aliases only exist from 10.5, so the old spelling serves every supported release).
/// MySQL renamed the statement and its columns in 8.0.22 and removed `SHOW SLAVE STATUS` in 8.4, so
/// the version decides; the renamed columns are mapped back to the legacy names in [`slave_status`].
fn slave_status_statement(server: &ServerInfo) -> &'static str {
    match server.flavor {
        Flavor::MariaDb => "SHOW ALL SLAVES STATUS",
        Flavor::MySql | Flavor::Percona if server.at_least(8, 0, 22) => "SHOW REPLICA STATUS",
        Flavor::MySql | Flavor::Percona => "SHOW SLAVE STATUS",
    }
}

/// mysqld_exporter's processlist query: one row per user, client host (port stripped), command and
/// state, so the threads, seconds, per-user and per-host families all come from one round trip.
fn processlist_statement(settings: &MysqlSettings, own: &[u64]) -> String {
    let mut excluded = String::from("connection_id()");
    for id in own {
        let _ = write!(excluded, ", {id}");
    }
    format!(
        "SELECT user, SUBSTRING_INDEX(host, ':', 1) AS host, \
         COALESCE(command, '') AS command, COALESCE(state, '') AS state, \
         COUNT(*) AS processes, SUM(time) AS seconds \
         FROM information_schema.processlist \
         WHERE ID NOT IN ({excluded}) AND TIME >= {} \
         GROUP BY user, SUBSTRING_INDEX(host, ':', 1), command, state",
        settings.processlist.min_time.as_secs()
    )
}

/// Enabled rows of `INNODB_METRICS`. MariaDB 10.5 replaced the `STATUS` column ('enabled' /
/// 'disabled') with a numeric `ENABLED`; choosing by version spares the probe query that makes
/// mysqld_exporter's version slow (`prometheus/mysqld_exporter#687`). The table exists from MySQL 5.6
/// and MariaDB 10.0.
fn innodb_metrics_statement(server: &ServerInfo) -> Option<&'static str> {
    match server.flavor {
        Flavor::MariaDb if server.at_least(10, 5, 0) => Some(
            "SELECT name, subsystem, type, comment, count \
             FROM information_schema.innodb_metrics WHERE enabled = 1",
        ),
        Flavor::MariaDb if !server.at_least(10, 0, 0) => None,
        Flavor::MySql | Flavor::Percona if !server.at_least(5, 6, 0) => None,
        Flavor::MariaDb | Flavor::MySql | Flavor::Percona => Some(
            "SELECT name, subsystem, type, comment, count \
             FROM information_schema.innodb_metrics WHERE status = 'enabled'",
        ),
    }
}

/// `events_statements_summary_by_digest` exists from MySQL 5.6 and MariaDB 10.0. Whether
/// performance_schema is switched on is only known by asking, so the caller learns it from the error.
fn has_statement_digests(server: &ServerInfo) -> bool {
    match server.flavor {
        Flavor::MariaDb => server.at_least(10, 0, 0),
        Flavor::MySql | Flavor::Percona => server.at_least(5, 6, 0),
    }
}

/// The most expensive digests seen within the time limit, texts cut on the server so long statements
/// never travel. Same filters and order as mysqld_exporter; its derived table and GROUP BY over every
/// column only re-sorted rows that are already unique per (schema, digest), so they are left out.
fn events_statements_statement(settings: &MysqlSettings) -> String {
    let bounds = &settings.events_statements;
    format!(
        "SELECT IFNULL(SCHEMA_NAME, 'NONE') AS schema_name, DIGEST AS digest, \
         LEFT(DIGEST_TEXT, {}) AS digest_text, \
         COUNT_STAR, SUM_TIMER_WAIT, SUM_ERRORS, SUM_WARNINGS, SUM_ROWS_AFFECTED, SUM_ROWS_SENT, \
         SUM_ROWS_EXAMINED, SUM_CREATED_TMP_DISK_TABLES, SUM_CREATED_TMP_TABLES, \
         SUM_SORT_MERGE_PASSES, SUM_SORT_ROWS, SUM_NO_INDEX_USED \
         FROM performance_schema.events_statements_summary_by_digest \
         WHERE SCHEMA_NAME NOT IN ('mysql', 'performance_schema', 'information_schema') \
         AND LAST_SEEN > DATE_SUB(NOW(), INTERVAL {} SECOND) \
         ORDER BY SUM_TIMER_WAIT DESC LIMIT {}",
        bounds.digest_text_limit,
        bounds.time_limit.as_secs(),
        bounds.limit
    )
}

/// mysqld_exporter's `information_schema.tables` query, for the configured schemas in one statement
/// rather than one per schema. `None` without schemas: listing every schema is what makes the upstream
/// collector slow on servers with many tables, so it is opt-in by name only.
fn tables_statement(schemas: &[String]) -> Option<String> {
    if schemas.is_empty() {
        return None;
    }
    let mut sql = String::from(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, \
         IFNULL(ENGINE, 'NONE') AS ENGINE, IFNULL(VERSION, '0') AS VERSION, \
         IFNULL(ROW_FORMAT, 'NONE') AS ROW_FORMAT, IFNULL(TABLE_ROWS, '0') AS TABLE_ROWS, \
         IFNULL(DATA_LENGTH, '0') AS DATA_LENGTH, IFNULL(INDEX_LENGTH, '0') AS INDEX_LENGTH, \
         IFNULL(DATA_FREE, '0') AS DATA_FREE, IFNULL(CREATE_OPTIONS, 'NONE') AS CREATE_OPTIONS \
         FROM information_schema.tables WHERE TABLE_SCHEMA IN (",
    );
    for (i, schema) in schemas.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        push_sql_string(&mut sql, schema);
    }
    sql.push(')');
    Some(sql)
}

/// Append `value` as a single-quoted SQL string literal.
///
/// Quotes are doubled and backslashes escaped, which cannot be broken out of under either setting of
/// `NO_BACKSLASH_ESCAPES` (with it, `\\` merely stays two characters, so the schema does not match).
/// Schema names come from the config, but a typo must not become a statement.
fn push_sql_string(sql: &mut String, value: &str) {
    sql.push('\'');
    for c in value.chars() {
        match c {
            '\'' => sql.push_str("''"),
            '\\' => sql.push_str("\\\\"),
            c => sql.push(c),
        }
    }
    sql.push('\'');
}

// ---------------------------------------------------------------------------------------------------
// Value and name rules (mysqld_exporter's parseStatus and validPrometheusName)
// ---------------------------------------------------------------------------------------------------

/// Append `raw` with every character outside `[a-zA-Z0-9_]` replaced by `_` (one per character, as
/// mysqld_exporter's regex replaces runes), lowercased when `lowercase`.
///
/// `INNODB_METRICS` names keep their case (`buffer_LRU_batch_flush_total_pages`) because
/// mysqld_exporter does not lowercase them and dashboards use its names.
fn push_normalized(buf: &mut String, raw: &str, lowercase: bool) {
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            buf.push(if lowercase { c.to_ascii_lowercase() } else { c });
        } else {
            buf.push('_');
        }
    }
}

/// A status or variable value as a number, or `None` for text that carries no number.
///
/// mysqld_exporter's rules, in the order that keeps them from shadowing each other: plain numbers;
/// the words `yes`/`on`/`primary` (1) and `no`/`off`/`disabled`/`connecting`/`non-primary`/
/// `disconnected` (0), ignoring case; certificate and event dates as Unix seconds; binary and relay
/// log names as their sequence number. `inf`/`nan` are refused: a counter must stay finite.
pub(crate) fn parse_value(raw: &str) -> Option<f64> {
    let first = *raw.as_bytes().first()?;
    if (first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.'))
        && let Ok(v) = raw.parse::<f64>()
    {
        return v.is_finite().then_some(v);
    }
    const ONE: [&str; 3] = ["yes", "on", "primary"];
    const ZERO: [&str; 6] = [
        "no",
        "off",
        "disabled",
        "connecting",
        "non-primary",
        "disconnected",
    ];
    if ONE.iter().any(|w| raw.eq_ignore_ascii_case(w)) {
        return Some(1.0);
    }
    if ZERO.iter().any(|w| raw.eq_ignore_ascii_case(w)) {
        return Some(0.0);
    }
    parse_date(raw).or_else(|| parse_log_file(raw))
}

/// The sequence number of a binary or relay log name (`mysql-bin.000123` → 123).
///
/// The server pads the number to at least six digits, and the base name has a letter and no spaces or
/// commas; requiring both keeps version numbers (`10.11.6`), addresses (`10.0.0.12`) and lists
/// (`TLSv1.2,TLSv1.3`) out, which a bare "digits after the last dot" rule would turn into nonsense.
fn parse_log_file(raw: &str) -> Option<f64> {
    let (base, number) = raw.rsplit_once('.')?;
    let plausible = number.len() >= 6
        && number.bytes().all(|b| b.is_ascii_digit())
        && base.bytes().any(|b| b.is_ascii_alphabetic())
        && !base.bytes().any(|b| b.is_ascii_whitespace() || b == b',');
    if !plausible {
        return None;
    }
    number.parse::<f64>().ok()
}

/// Unix seconds of `Sep  5 12:00:00 2027 GMT` (OpenSSL's `%b %e %H:%M:%S %Y %Z`, as in
/// `Ssl_server_not_after`) or `2027-09-05 12:00:00[.ffffff]` (MySQL's DATETIME text, read as UTC as
/// Go's `time.Parse` does in mysqld_exporter). Other zones than GMT/UTC are refused rather than
/// guessed.
fn parse_date(raw: &str) -> Option<f64> {
    if raw.as_bytes().first()?.is_ascii_digit() {
        parse_datetime(raw)
    } else {
        parse_openssl_date(raw)
    }
}

fn parse_datetime(raw: &str) -> Option<f64> {
    let (date, time) = raw.split_once(' ')?;
    let mut parts = date.split('-');
    let year = fixed_digits(parts.next()?, 4)?;
    let month = fixed_digits(parts.next()?, 2)?;
    let day = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() {
        return None;
    }
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            (hms, format!("0.{f}").parse::<f64>().ok()?)
        }
        Some(_) => return None,
        None => (time, 0.0),
    };
    let seconds = clock_seconds(hms, 2)?;
    unix_seconds(year, month, day, seconds).map(|s| s + fraction)
}

fn parse_openssl_date(raw: &str) -> Option<f64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mut tokens = raw.split_ascii_whitespace();
    let month_name = tokens.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))?;
    let day = tokens.next()?;
    if day.is_empty() || day.len() > 2 {
        return None;
    }
    let day = fixed_digits(day, day.len())?;
    let seconds = clock_seconds(tokens.next()?, 1)?;
    let year = fixed_digits(tokens.next()?, 4)?;
    let zone = tokens.next()?;
    if !(zone == "GMT" || zone == "UTC") || tokens.next().is_some() {
        return None;
    }
    let month = u32::try_from(month + 1).ok()?;
    unix_seconds(year, month, day, seconds)
}

/// `HH:MM:SS` as seconds of the day; the hour may have `min_hour_digits` to 2 digits.
fn clock_seconds(text: &str, min_hour_digits: usize) -> Option<u32> {
    let mut parts = text.split(':');
    let hour = parts.next()?;
    if hour.len() < min_hour_digits || hour.len() > 2 {
        return None;
    }
    let hour = fixed_digits(hour, hour.len())?;
    let minute = fixed_digits(parts.next()?, 2)?;
    let second = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(hour * 3600 + minute * 60 + second)
}

/// `text` as a number when it is exactly `len` ASCII digits.
fn fixed_digits(text: &str, len: usize) -> Option<u32> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Seconds since 1970-01-01T00:00:00Z of a valid proleptic Gregorian date and time of day.
fn unix_seconds(year: u32, month: u32, day: u32, seconds_of_day: u32) -> Option<f64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    // Days from the civil date, counting years from March so the leap day ends the year.
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    // |days * 86400| stays far below 2^53, so the conversion is exact.
    Some((days * 86_400 + i64::from(seconds_of_day)) as f64)
}

/// Add a counter sample, or drop it (logged) when the value cannot be a counter. A negative value
/// would poison the whole family, costing every other label value of it for this scrape.
fn counter_sample(out: &mut Families, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    if value >= 0.0 && value.is_finite() {
        out.counter(name, help).set(labels, value);
    } else {
        tracing::debug!(family = name, value, "dropping a negative counter sample");
    }
}

// ---------------------------------------------------------------------------------------------------
// SHOW GLOBAL STATUS
// ---------------------------------------------------------------------------------------------------

const STATUS_HELP: &str = "Generic metric from SHOW GLOBAL STATUS.";

/// How a status variable is exported, decided on its normalized name. The prefixes are
/// mysqld_exporter's grouping regex `^(com|handler|connection_errors|innodb_buffer_pool_pages|
/// innodb_rows|performance_schema)_(.*)$`, tried in its order.
enum StatusGroup<'a> {
    Commands(&'a str),
    Handlers(&'a str),
    ConnectionErrors(&'a str),
    BufferPoolPages(&'a str),
    RowOps(&'a str),
    PerformanceSchemaLost(&'a str),
    Ungrouped,
}

fn status_group(name: &str) -> StatusGroup<'_> {
    if let Some(rest) = name.strip_prefix("com_") {
        StatusGroup::Commands(rest)
    } else if let Some(rest) = name.strip_prefix("handler_") {
        StatusGroup::Handlers(rest)
    } else if let Some(rest) = name.strip_prefix("connection_errors_") {
        StatusGroup::ConnectionErrors(rest)
    } else if let Some(rest) = name.strip_prefix("innodb_buffer_pool_pages_") {
        StatusGroup::BufferPoolPages(rest)
    } else if let Some(rest) = name.strip_prefix("innodb_rows_") {
        StatusGroup::RowOps(rest)
    } else if let Some(rest) = name.strip_prefix("performance_schema_") {
        StatusGroup::PerformanceSchemaLost(rest)
    } else {
        StatusGroup::Ungrouped
    }
}

/// Whether an ungrouped status variable (normalized name) only ever grows until a restart or `FLUSH
/// STATUS`, so that `rate()` applies. Everything not listed is a gauge: a wrong gauge only costs a
/// promlint warning, a wrong counter makes every `rate()` over it lie.
///
/// Sources: the MySQL 8.0/8.4 and MariaDB 10.11 server status variable references, checked against the
/// captured MariaDB 10.11 output in `testdata`. Left as gauges on purpose: high-water marks and
/// current values (`max_used_connections`, `*_avg_*`, `threads_*` except `threads_created`), ids
/// (`innodb_max_trx_id`), and Galera flow-control counts that older providers reset on every read.
fn status_is_counter(name: &str) -> bool {
    const COUNTER_PREFIXES: [&str; 12] = [
        "feature_",
        "mysqlx_stmt_",
        "mysqlx_crud_",
        "mysqlx_cursor_",
        "mysqlx_prep_",
        "mysqlx_notice_",
        "mysqlx_bytes_",
        "mysqlx_sessions_",
        "mysqlx_connections_",
        "mysqlx_expect_",
        "mysqlx_errors_",
        "innodb_encryption_n_",
    ];
    if COUNTER_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    if let Some(rest) = name
        .strip_prefix("rpl_semi_sync_master_")
        .or_else(|| name.strip_prefix("rpl_semi_sync_source_"))
    {
        return matches!(
            rest,
            "get_ack"
                | "net_wait_time"
                | "net_waits"
                | "no_times"
                | "no_tx"
                | "request_ack"
                | "timefunc_failures"
                | "tx_wait_time"
                | "tx_waits"
                | "wait_pos_backtraverse"
                | "yes_tx"
        );
    }
    matches!(
        name,
        // Connections, clients and network.
        "aborted_clients"
            | "aborted_connects"
            | "aborted_connects_preauth"
            | "access_denied_errors"
            | "bytes_received"
            | "bytes_sent"
            | "connections"
            | "locked_connects"
            | "connection_control_delay_generated"
            | "max_statement_time_exceeded"
            | "max_execution_time_exceeded"
            | "max_execution_time_set"
            | "max_execution_time_set_failed"
            | "mysqlx_aborted_clients"
            | "mysqlx_connection_accept_errors"
            | "mysqlx_connection_errors"
            | "mysqlx_init_error"
            | "mysqlx_messages_sent"
            | "mysqlx_rows_sent"
            // Binary log and replication.
            | "binlog_bytes_written"
            | "binlog_cache_disk_use"
            | "binlog_cache_use"
            | "binlog_commits"
            | "binlog_group_commits"
            | "binlog_group_commit_trigger_count"
            | "binlog_group_commit_trigger_lock_wait"
            | "binlog_group_commit_trigger_timeout"
            | "binlog_stmt_cache_disk_use"
            | "binlog_stmt_cache_use"
            | "master_gtid_wait_count"
            | "master_gtid_wait_time"
            | "master_gtid_wait_timeouts"
            | "rpl_semi_sync_slave_send_ack"
            | "rpl_semi_sync_replica_send_ack"
            | "rpl_transactions_multi_engine"
            | "slave_connections"
            | "slave_received_heartbeats"
            | "slave_retried_transactions"
            | "slave_skipped_errors"
            | "transactions_gtid_foreign_engine"
            | "transactions_multi_engine"
            // Statements, rows and sorting.
            | "busy_time"
            | "cpu_time"
            | "query_time"
            | "column_compressions"
            | "column_decompressions"
            | "count_hit_tmp_table_size"
            | "created_tmp_disk_tables"
            | "created_tmp_files"
            | "created_tmp_tables"
            | "delayed_errors"
            | "delayed_writes"
            | "delete_scan"
            | "update_scan"
            | "deprecated_use_i_s_processlist_count"
            | "empty_queries"
            | "error_log_expired_events"
            | "executed_events"
            | "executed_triggers"
            | "optimizer_join_prefixes_check_calls"
            | "queries"
            | "questions"
            | "resultset_metadata_skipped"
            | "rows_read"
            | "rows_sent"
            | "rows_tmp_read"
            | "secondary_engine_execution_count"
            | "select_full_join"
            | "select_full_range_join"
            | "select_range"
            | "select_range_check"
            | "select_scan"
            | "slow_launch_threads"
            | "slow_queries"
            | "sort_merge_passes"
            | "sort_priority_queue_sorts"
            | "sort_range"
            | "sort_rows"
            | "sort_scan"
            | "subquery_cache_hit"
            | "subquery_cache_miss"
            | "syncs"
            | "threads_created"
            // Tables and files.
            | "opened_files"
            | "opened_plugin_libraries"
            | "opened_table_definitions"
            | "opened_tables"
            | "opened_views"
            | "table_locks_immediate"
            | "table_locks_waited"
            | "table_open_cache_hits"
            | "table_open_cache_misses"
            | "table_open_cache_overflows"
            | "tc_log_page_waits"
            // Key cache, Aria page cache, query cache.
            | "key_read_requests"
            | "key_reads"
            | "key_write_requests"
            | "key_writes"
            | "aria_pagecache_read_requests"
            | "aria_pagecache_reads"
            | "aria_pagecache_write_requests"
            | "aria_pagecache_writes"
            | "aria_transaction_log_syncs"
            | "qcache_hits"
            | "qcache_inserts"
            | "qcache_lowmem_prunes"
            | "qcache_not_cached"
            // InnoDB.
            | "innodb_adaptive_hash_hash_searches"
            | "innodb_adaptive_hash_non_hash_searches"
            | "innodb_async_reads_total_count"
            | "innodb_async_reads_total_enqueues"
            | "innodb_async_reads_wait_slot_sec"
            | "innodb_async_writes_total_count"
            | "innodb_async_writes_total_enqueues"
            | "innodb_async_writes_wait_slot_sec"
            | "innodb_background_log_sync"
            | "innodb_buffer_pool_read_ahead"
            | "innodb_buffer_pool_read_ahead_evicted"
            | "innodb_buffer_pool_read_ahead_rnd"
            | "innodb_buffer_pool_read_requests"
            | "innodb_buffer_pool_reads"
            | "innodb_buffer_pool_wait_free"
            | "innodb_buffer_pool_write_requests"
            | "innodb_bulk_operations"
            | "innodb_data_fsyncs"
            | "innodb_data_read"
            | "innodb_data_reads"
            | "innodb_data_writes"
            | "innodb_data_written"
            | "innodb_dblwr_pages_written"
            | "innodb_dblwr_writes"
            | "innodb_deadlocks"
            | "innodb_defragment_compression_failures"
            | "innodb_defragment_count"
            | "innodb_defragment_failures"
            | "innodb_encryption_num_key_requests"
            | "innodb_encryption_rotation_pages_flushed"
            | "innodb_encryption_rotation_pages_modified"
            | "innodb_encryption_rotation_pages_read_from_cache"
            | "innodb_encryption_rotation_pages_read_from_disk"
            | "innodb_ibuf_discarded_delete_marks"
            | "innodb_ibuf_discarded_deletes"
            | "innodb_ibuf_discarded_inserts"
            | "innodb_ibuf_merged_delete_marks"
            | "innodb_ibuf_merged_deletes"
            | "innodb_ibuf_merged_inserts"
            | "innodb_ibuf_merges"
            | "innodb_instant_alter_column"
            | "innodb_log_waits"
            | "innodb_log_write_requests"
            | "innodb_log_writes"
            | "innodb_lsn_current"
            | "innodb_lsn_flushed"
            | "innodb_lsn_last_checkpoint"
            | "innodb_master_thread_active_loops"
            | "innodb_master_thread_idle_loops"
            | "innodb_num_page_compressed_trim_op"
            | "innodb_num_pages_decrypted"
            | "innodb_num_pages_encrypted"
            | "innodb_num_pages_page_compressed"
            | "innodb_num_pages_page_compression_error"
            | "innodb_num_pages_page_decompressed"
            | "innodb_os_log_fsyncs"
            | "innodb_os_log_written"
            | "innodb_page_compression_saved"
            | "innodb_pages_created"
            | "innodb_pages_read"
            | "innodb_pages_written"
            | "innodb_redo_log_checkpoint_lsn"
            | "innodb_redo_log_current_lsn"
            | "innodb_redo_log_flushed_to_disk_lsn"
            | "innodb_row_lock_time"
            | "innodb_row_lock_waits"
            | "innodb_sampled_pages_read"
            | "innodb_sampled_pages_skipped"
            | "innodb_secondary_index_triggered_cluster_reads"
            | "innodb_secondary_index_triggered_cluster_reads_avoided"
            | "innodb_system_rows_deleted"
            | "innodb_system_rows_inserted"
            | "innodb_system_rows_read"
            | "innodb_system_rows_updated"
            | "innodb_truncated_status_writes"
            | "innodb_undo_truncations"
            // TLS.
            | "ssl_accept_renegotiates"
            | "ssl_accepts"
            | "ssl_callback_cache_hits"
            | "ssl_client_connects"
            | "ssl_connect_renegotiates"
            | "ssl_finished_accepts"
            | "ssl_finished_connects"
            | "ssl_session_cache_hits"
            | "ssl_session_cache_misses"
            | "ssl_session_cache_overflows"
            | "ssl_session_cache_timeouts"
            | "ssl_sessions_reused"
            // Galera (cumulative since provider start).
            | "wsrep_flow_control_paused_ns"
            | "wsrep_local_bf_aborts"
            | "wsrep_local_cert_failures"
            | "wsrep_local_commits"
            | "wsrep_local_replays"
            | "wsrep_received"
            | "wsrep_received_bytes"
            | "wsrep_repl_data_bytes"
            | "wsrep_repl_keys"
            | "wsrep_repl_keys_bytes"
            | "wsrep_repl_other_bytes"
            | "wsrep_replicated"
            | "wsrep_replicated_bytes"
    )
}

/// `SHOW GLOBAL STATUS` as mysqld_exporter's global_status families, typed.
///
/// `Innodb_buffer_pool_pages_*` is split three ways:
/// - `data`, `free`, `misc`, `old` and `total` go to `mysql_global_status_buffer_pool_pages{state}`.
///   `total` is the pool size, which mysqld_exporter drops and users asked for under this name; it
///   overlaps the other states, so a `sum()` over `state` must exclude it
///   (`sum without (state) (…{state!="total"})`), and so must anything that adds the states up.
/// - `dirty` goes to `mysql_global_status_buffer_pool_dirty_pages` (a subset of `data`).
/// - `latched` (debug builds of MySQL) is a current count, not a change, so it is not typed as a
///   counter in `buffer_pool_page_changes_total`; it keeps the ungrouped name
///   `mysql_global_status_innodb_buffer_pool_pages_latched` as a gauge rather than joining `state`,
///   because latched pages are a subset of the others too.
/// - everything else (`flushed`, `lru_flushed`, `lru_freed`, `made_young`, `made_not_young`, `split`,
///   …) counts page operations: `mysql_global_status_buffer_pool_page_changes_total{operation}`.
fn global_status(rows: &Rows, out: &mut Families) {
    let mut name = String::with_capacity(64);
    let mut metric = String::with_capacity(96);
    let mut local_state_uuid = "";
    let mut cluster_state_uuid = "";
    let mut provider_version = "";
    let mut evs_latency = None;
    for (raw_name, raw_value) in rows.pairs() {
        name.clear();
        push_normalized(&mut name, raw_name, true);
        match name.as_str() {
            "wsrep_local_state_uuid" => local_state_uuid = raw_value,
            "wsrep_cluster_state_uuid" => cluster_state_uuid = raw_value,
            "wsrep_provider_version" => provider_version = raw_value,
            "wsrep_evs_repl_latency" => evs_latency = Some(raw_value),
            _ => {}
        }
        let Some(value) = parse_value(raw_value) else {
            continue;
        };
        match status_group(&name) {
            StatusGroup::Commands(command) => counter_sample(
                out,
                "mysql_global_status_commands_total",
                "Total number of executed MySQL commands.",
                &[("command", command)],
                value,
            ),
            StatusGroup::Handlers(handler) => counter_sample(
                out,
                "mysql_global_status_handlers_total",
                "Total number of executed MySQL handlers.",
                &[("handler", handler)],
                value,
            ),
            StatusGroup::ConnectionErrors(error) => counter_sample(
                out,
                "mysql_global_status_connection_errors_total",
                "Total number of MySQL connection errors.",
                &[("error", error)],
                value,
            ),
            StatusGroup::BufferPoolPages(state @ ("data" | "free" | "misc" | "old" | "total")) => {
                out.gauge(
                    "mysql_global_status_buffer_pool_pages",
                    "Innodb buffer pool pages by state; state=\"total\" is the pool size, \
                     exclude it when summing over state.",
                )
                .set(&[("state", state)], value);
            }
            StatusGroup::BufferPoolPages("dirty") => {
                out.gauge(
                    "mysql_global_status_buffer_pool_dirty_pages",
                    "Innodb buffer pool dirty pages.",
                )
                .set(&[], value);
            }
            StatusGroup::BufferPoolPages("latched") => {
                out.gauge(
                    "mysql_global_status_innodb_buffer_pool_pages_latched",
                    STATUS_HELP,
                )
                .set(&[], value);
            }
            StatusGroup::BufferPoolPages(operation) => counter_sample(
                out,
                "mysql_global_status_buffer_pool_page_changes_total",
                "Innodb buffer pool page state changes.",
                &[("operation", operation)],
                value,
            ),
            StatusGroup::RowOps(operation) => counter_sample(
                out,
                "mysql_global_status_innodb_row_ops_total",
                "Total number of MySQL InnoDB row operations.",
                &[("operation", operation)],
                value,
            ),
            StatusGroup::PerformanceSchemaLost(instrumentation) => counter_sample(
                out,
                "mysql_global_status_performance_schema_lost_total",
                "Total number of MySQL instrumentations that could not be loaded or created due to \
                 memory constraints.",
                &[("instrumentation", instrumentation)],
                value,
            ),
            StatusGroup::Ungrouped => {
                metric.clear();
                metric.push_str("mysql_global_status_");
                metric.push_str(&name);
                if status_is_counter(&name) {
                    counter_sample(out, &metric, STATUS_HELP, &[], value);
                } else {
                    out.gauge(&metric, STATUS_HELP).set(&[], value);
                }
            }
        }
    }
    if !local_state_uuid.is_empty() {
        out.info(
            "mysql_galera_status_info",
            "PXC/Galera status information.",
            &[
                ("wsrep_local_state_uuid", local_state_uuid),
                ("wsrep_cluster_state_uuid", cluster_state_uuid),
                ("wsrep_provider_version", provider_version),
            ],
        );
    }
    if let Some(latency) = evs_latency.and_then(parse_evs_latency) {
        let families = [
            (
                "mysql_galera_evs_repl_latency_min_seconds",
                "PXC/Galera group communication latency. Min value.",
            ),
            (
                "mysql_galera_evs_repl_latency_avg_seconds",
                "PXC/Galera group communication latency. Avg value.",
            ),
            (
                "mysql_galera_evs_repl_latency_max_seconds",
                "PXC/Galera group communication latency. Max value.",
            ),
            (
                "mysql_galera_evs_repl_latency_stdev",
                "PXC/Galera group communication latency. Standard Deviation.",
            ),
            (
                "mysql_galera_evs_repl_latency_sample_size",
                "PXC/Galera group communication latency. Sample Size.",
            ),
        ];
        for ((name, help), value) in families.into_iter().zip(latency) {
            out.gauge(name, help).set(&[], value);
        }
    }
}

/// `wsrep_evs_repl_latency` (`min/avg/max/stdev/samples`), all five or nothing: a provider that
/// has not measured yet reports an empty string or zeros without the slashes.
fn parse_evs_latency(raw: &str) -> Option<[f64; 5]> {
    let mut values = [0.0; 5];
    let mut parts = raw.split('/');
    for slot in &mut values {
        *slot = parts
            .next()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())?;
    }
    parts.next().is_none().then_some(values)
}

// ---------------------------------------------------------------------------------------------------
// SHOW GLOBAL VARIABLES
// ---------------------------------------------------------------------------------------------------

/// `SHOW GLOBAL VARIABLES`: a gauge per numeric or boolean variable, plus mysqld_exporter's info
/// families built from the text ones.
///
/// HELP names the variable (`SHOW GLOBAL VARIABLES max_connections`), as the compat notes ask, since
/// one generic line for 600 families tells nobody anything. `mysql_version_info` is always emitted
/// (empty labels for what the server lacks, e.g. `innodb_version` on MariaDB 10.10+), as upstream;
/// the isolation level comes from `transaction_isolation`, else `tx_isolation` (MariaDB < 11.1,
/// MySQL 5.7); the Galera families only when `wsrep_on` is not OFF.
fn global_variables(rows: &Rows, out: &mut Families) {
    let mut name = String::with_capacity(64);
    let mut metric = String::with_capacity(96);
    let mut help = String::with_capacity(96);
    let mut innodb_version = "";
    let mut version = "";
    let mut version_comment = "";
    let mut transaction_isolation = "";
    let mut tx_isolation = "";
    let mut cluster_name = "";
    let mut provider_options = "";
    let mut wsrep_on = None;
    for (raw_name, raw_value) in rows.pairs() {
        name.clear();
        push_normalized(&mut name, raw_name, true);
        match name.as_str() {
            "innodb_version" => innodb_version = raw_value,
            "version" => version = raw_value,
            "version_comment" => version_comment = raw_value,
            "transaction_isolation" => transaction_isolation = raw_value,
            "tx_isolation" => tx_isolation = raw_value,
            "wsrep_cluster_name" => cluster_name = raw_value,
            "wsrep_provider_options" => provider_options = raw_value,
            "wsrep_on" => wsrep_on = parse_value(raw_value),
            _ => {}
        }
        let Some(value) = parse_value(raw_value) else {
            continue;
        };
        metric.clear();
        metric.push_str("mysql_global_variables_");
        metric.push_str(&name);
        help.clear();
        help.push_str("SHOW GLOBAL VARIABLES ");
        help.push_str(raw_name);
        out.gauge(&metric, &help).set(&[], value);
    }
    out.info(
        "mysql_version_info",
        "MySQL version and distribution.",
        &[
            ("innodb_version", innodb_version),
            ("version", version),
            ("version_comment", version_comment),
        ],
    );
    let level = if transaction_isolation.is_empty() {
        tx_isolation
    } else {
        transaction_isolation
    };
    if !level.is_empty() {
        out.info(
            "mysql_transaction_isolation",
            "MySQL/MariaDB transaction isolation level.",
            &[("level", level)],
        );
    }
    // MariaDB reports a default cluster name (`my_wsrep_cluster`) with Galera off; mysqld_exporter
    // then claims a Galera cluster on every MariaDB server. `wsrep_on = OFF` says there is none.
    if wsrep_on == Some(0.0) {
        return;
    }
    if !cluster_name.is_empty() {
        out.info(
            "mysql_galera_variables_info",
            "PXC/Galera variables information.",
            &[("wsrep_cluster_name", cluster_name)],
        );
    }
    if let Some(bytes) = gcache_size(provider_options) {
        out.gauge("mysql_galera_gcache_size_bytes", "PXC/Galera gcache size.")
            .set(&[], bytes);
    }
}

/// `gcache.size` out of `wsrep_provider_options` (`…; gcache.size = 128M; …`) in bytes.
///
/// mysqld_exporter reports 0 when the option is missing; we report nothing, since 0 would read as a
/// real (and alarming) size. Galera accepts K/M/G/T suffixes (powers of 1024); upstream only M/G.
fn gcache_size(options: &str) -> Option<f64> {
    let value = options.split(';').find_map(|option| {
        let (key, value) = option.split_once('=')?;
        (key.trim() == "gcache.size").then_some(value.trim())
    })?;
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, suffix) = value.split_at(digits_end);
    let number = digits.parse::<f64>().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "K" | "k" => 1024.0,
        "M" | "m" => 1024.0 * 1024.0,
        "G" | "g" => 1024.0 * 1024.0 * 1024.0,
        "T" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * scale)
}

// ---------------------------------------------------------------------------------------------------
// Replication
// ---------------------------------------------------------------------------------------------------

const SLAVE_HELP: &str = "Generic metric from SHOW SLAVE STATUS.";

/// What a replication status column becomes.
enum SlaveColumn {
    /// A label source or text only: no series.
    Skip,
    /// `mysql_slave_status_<legacy name>` when the value parses.
    Value(String),
    /// MariaDB `Gtid_IO_Pos` / `Gtid_Slave_Pos`: one series per replication domain.
    Gtid(&'static str, &'static str),
}

/// `SHOW ALL SLAVES STATUS` / `SHOW REPLICA STATUS` / `SHOW SLAVE STATUS`: one set of series per row
/// (MariaDB connection or MySQL channel).
///
/// Every series carries `master_host`, `master_uuid`, `channel_name` and `connection_name`, empty
/// when the server has no such column, exactly as mysqld_exporter does, so the label set is the same
/// on every flavor and families merge across targets. The `SHOW REPLICA STATUS` columns
/// (`Source_*`, `Replica_*`) are reported under their legacy names, which is what the mixin and most
/// dashboards query; a NULL (`Seconds_Behind_Master` with the SQL thread stopped) makes no series.
fn slave_status(rows: &Rows, out: &mut Families) {
    let column = |names: &[&str]| names.iter().find_map(|n| rows.column(n));
    let host = column(&["Master_Host", "Source_Host"]);
    let uuid = column(&["Master_UUID", "Source_UUID"]);
    let channel = column(&["Channel_Name"]);
    let connection = column(&["Connection_name"]);
    let kinds: Vec<SlaveColumn> = rows
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if [host, uuid, channel, connection].contains(&Some(i)) {
                SlaveColumn::Skip
            } else if name.eq_ignore_ascii_case("Gtid_IO_Pos") {
                SlaveColumn::Gtid(
                    "mysql_slave_status_gtid_io_pos",
                    "Sequence number of the last GTID received from the master, by replication \
                     domain (Gtid_IO_Pos).",
                )
            } else if name.eq_ignore_ascii_case("Gtid_Slave_Pos") {
                SlaveColumn::Gtid(
                    "mysql_slave_status_gtid_slave_pos",
                    "Sequence number of the last GTID applied by the replica, by replication domain \
                     (Gtid_Slave_Pos).",
                )
            } else {
                SlaveColumn::Value(slave_metric_name(name))
            }
        })
        .collect();
    for row in &rows.rows {
        let text = |index: Option<usize>| {
            index
                .and_then(|i| row.get(i))
                .and_then(|v| v.as_deref())
                .unwrap_or("")
        };
        let labels = [
            ("master_host", text(host)),
            ("master_uuid", text(uuid)),
            ("channel_name", text(channel)),
            ("connection_name", text(connection)),
        ];
        for (kind, value) in kinds.iter().zip(row) {
            let Some(value) = value.as_deref() else {
                continue;
            };
            match kind {
                SlaveColumn::Skip => {}
                SlaveColumn::Value(name) => {
                    if let Some(v) = parse_value(value) {
                        out.gauge(name, SLAVE_HELP).set(&labels, v);
                    }
                }
                SlaveColumn::Gtid(name, help) => {
                    for (domain, server, sequence) in value.split(',').filter_map(parse_gtid) {
                        let [a, b, c, d] = labels;
                        out.gauge(name, help).set(
                            &[a, b, c, d, ("domain_id", domain), ("server_id", server)],
                            sequence,
                        );
                    }
                }
            }
        }
    }
}

/// `mysql_slave_status_` plus the lowercased column with the 8.0.22 renames undone word by word
/// (`source` → `master`, `replica` → `slave`): `Seconds_Behind_Source` →
/// `seconds_behind_master`, `Get_Source_public_key` → `get_master_public_key`. Whole words only, so
/// `Replicate_Do_DB` stays as it is.
fn slave_metric_name(column: &str) -> String {
    let mut name = String::with_capacity("mysql_slave_status_".len() + column.len() + 4);
    name.push_str("mysql_slave_status_");
    let mut normalized = String::with_capacity(column.len());
    push_normalized(&mut normalized, column, true);
    for (i, word) in normalized.split('_').enumerate() {
        if i > 0 {
            name.push('_');
        }
        name.push_str(match word {
            "source" => "master",
            "replica" => "slave",
            other => other,
        });
    }
    name
}

/// One MariaDB GTID `domain-server-sequence` as its label values and sequence number.
fn parse_gtid(gtid: &str) -> Option<(&str, &str, f64)> {
    let mut parts = gtid.trim().split('-');
    let domain = parts.next()?;
    let server = parts.next()?;
    let sequence = parts.next()?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !numeric(domain) || !numeric(server) || !numeric(sequence) {
        return None;
    }
    Some((domain, server, sequence.parse().ok()?))
}

// ---------------------------------------------------------------------------------------------------
// information_schema.processlist
// ---------------------------------------------------------------------------------------------------

/// Threads and seconds by command and state, and processes by user and by client host, aggregated over
/// the grouped rows and sorted as mysqld_exporter does (a BTreeMap, so equal input gives equal
/// output order).
fn processlist(rows: &Rows, settings: &MysqlSettings, out: &mut Families) {
    let at = |name: &str, fallback: usize| rows.column(name).unwrap_or(fallback);
    let (user_i, host_i, command_i, state_i, count_i, time_i) = (
        at("user", 0),
        at("host", 1),
        at("command", 2),
        at("state", 3),
        at("processes", 4),
        at("seconds", 5),
    );
    let mut by_state: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let mut by_user: BTreeMap<&str, f64> = BTreeMap::new();
    let mut by_host: BTreeMap<&str, f64> = BTreeMap::new();
    for row in &rows.rows {
        let text = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or("");
        let number = |i: usize| text(i).parse::<f64>().ok().filter(|v| v.is_finite());
        let count = number(count_i).unwrap_or(0.0);
        let seconds = number(time_i).unwrap_or(0.0);
        let entry = by_state
            .entry((
                sanitize_state(text(command_i)),
                sanitize_state(text(state_i)),
            ))
            .or_default();
        entry.0 += count;
        entry.1 += seconds;
        *by_user.entry(text(user_i)).or_default() += count;
        let host = match text(host_i) {
            "" => "unknown",
            host => host,
        };
        *by_host.entry(host).or_default() += count;
    }
    for ((command, state), (count, seconds)) in &by_state {
        let labels = [("command", command.as_str()), ("state", state.as_str())];
        out.gauge(
            "mysql_info_schema_processlist_threads",
            "The number of threads split by current state.",
        )
        .set(&labels, *count);
        out.gauge(
            "mysql_info_schema_processlist_seconds",
            "The number of seconds threads have used split by current state.",
        )
        .set(&labels, *seconds);
    }
    if settings.processlist.processes_by_host {
        for (host, count) in by_host {
            out.gauge(
                "mysql_info_schema_processlist_processes_by_host",
                "The number of processes by host.",
            )
            .set(&[("client_host", host)], count);
        }
    }
    if settings.processlist.processes_by_user {
        for (user, count) in by_user {
            out.gauge(
                "mysql_info_schema_processlist_processes_by_user",
                "The number of processes by user.",
            )
            .set(&[("mysql_user", user)], count);
        }
    }
}

/// mysqld_exporter's label form of a command or state: lowercase, `;,:.()` removed, spaces and dashes
/// to `_`, empty → `unknown` (`Waiting for table metadata lock` → `waiting_for_table_metadata_lock`).
fn sanitize_state(raw: &str) -> String {
    if raw.is_empty() {
        return "unknown".to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            ';' | ',' | ':' | '.' | '(' | ')' => {}
            ' ' | '-' => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// information_schema.innodb_metrics
// ---------------------------------------------------------------------------------------------------

/// mysqld_exporter's innodb_metrics families. The row's own `type` decides: `counter` and
/// `status_counter` with a non-negative value are counters with `_total` (MySQL bug 75966 makes some
/// go negative, which then become gauges under the name without `_total`); everything else is a gauge.
/// Buffer page I/O and buffer pool pages are grouped by label as upstream does; the pool total is
/// dropped there as upstream does, since `mysql_global_status_buffer_pool_pages` carries it.
fn innodb_metrics(rows: &Rows, out: &mut Families) {
    let (Some(name_i), Some(subsystem_i), Some(type_i), Some(count_i)) = (
        rows.column("name"),
        rows.column("subsystem"),
        rows.column("type"),
        rows.column("count"),
    ) else {
        tracing::debug!("innodb_metrics: unexpected columns {:?}", rows.columns);
        return;
    };
    let comment_i = rows.column("comment");
    let mut metric = String::with_capacity(96);
    for row in &rows.rows {
        let text = |i: usize| row.get(i).and_then(|v| v.as_deref());
        let (Some(name), Some(subsystem), Some(kind)) =
            (text(name_i), text(subsystem_i), text(type_i))
        else {
            continue;
        };
        let Some(value) = text(count_i)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        let comment = comment_i.and_then(text).unwrap_or("");
        if subsystem == "buffer_page_io" {
            if let Some(kind) = name.strip_prefix("buffer_page_read_") {
                counter_sample(
                    out,
                    "mysql_info_schema_innodb_metrics_buffer_page_read_total",
                    "Total number of buffer pages read total.",
                    &[("type", kind)],
                    value,
                );
            } else if let Some(kind) = name.strip_prefix("buffer_page_written_") {
                counter_sample(
                    out,
                    "mysql_info_schema_innodb_metrics_buffer_page_written_total",
                    "Total number of buffer pages written total.",
                    &[("type", kind)],
                    value,
                );
            } else {
                tracing::debug!(name, "innodb_metrics: unexpected buffer_page_io name");
            }
            continue;
        }
        if subsystem == "buffer"
            && let Some(state) = name.strip_prefix("buffer_pool_pages_")
        {
            match state {
                "total" => {}
                "dirty" => {
                    out.gauge(
                        "mysql_info_schema_innodb_metrics_buffer_pool_dirty_pages",
                        "Total number of dirty pages in the buffer pool.",
                    )
                    .set(&[], value);
                }
                state => {
                    out.gauge(
                        "mysql_info_schema_innodb_metrics_buffer_pool_pages",
                        "Total number of buffer pool pages by state.",
                    )
                    .set(&[("state", state)], value);
                }
            }
            continue;
        }
        metric.clear();
        metric.push_str("mysql_info_schema_innodb_metrics_");
        push_normalized(&mut metric, subsystem, false);
        metric.push('_');
        push_normalized(&mut metric, name, false);
        if matches!(kind, "counter" | "status_counter") && value >= 0.0 {
            metric.push_str("_total");
            out.counter(&metric, comment).set(&[], value);
        } else {
            out.gauge(&metric, comment).set(&[], value);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// performance_schema.events_statements_summary_by_digest
// ---------------------------------------------------------------------------------------------------

/// Column, family, HELP and scale of each digest counter, in mysqld_exporter's order.
const DIGEST_COUNTERS: [(&str, &str, &str, f64); 12] = [
    (
        "COUNT_STAR",
        "mysql_perf_schema_events_statements_total",
        "The total count of events statements by digest.",
        1.0,
    ),
    (
        "SUM_TIMER_WAIT",
        "mysql_perf_schema_events_statements_seconds_total",
        "The total time of events statements by digest.",
        // Timers are in picoseconds.
        1e-12,
    ),
    (
        "SUM_ERRORS",
        "mysql_perf_schema_events_statements_errors_total",
        "The errors of events statements by digest.",
        1.0,
    ),
    (
        "SUM_WARNINGS",
        "mysql_perf_schema_events_statements_warnings_total",
        "The warnings of events statements by digest.",
        1.0,
    ),
    (
        "SUM_ROWS_AFFECTED",
        "mysql_perf_schema_events_statements_rows_affected_total",
        "The total rows affected of events statements by digest.",
        1.0,
    ),
    (
        "SUM_ROWS_SENT",
        "mysql_perf_schema_events_statements_rows_sent_total",
        "The total rows sent of events statements by digest.",
        1.0,
    ),
    (
        "SUM_ROWS_EXAMINED",
        "mysql_perf_schema_events_statements_rows_examined_total",
        "The total rows examined of events statements by digest.",
        1.0,
    ),
    (
        "SUM_CREATED_TMP_TABLES",
        "mysql_perf_schema_events_statements_tmp_tables_total",
        "The total tmp tables of events statements by digest.",
        1.0,
    ),
    (
        "SUM_CREATED_TMP_DISK_TABLES",
        "mysql_perf_schema_events_statements_tmp_disk_tables_total",
        "The total tmp disk tables of events statements by digest.",
        1.0,
    ),
    (
        "SUM_SORT_MERGE_PASSES",
        "mysql_perf_schema_events_statements_sort_merge_passes_total",
        "The total number of merge passes by the sort algorithm performed by digest.",
        1.0,
    ),
    (
        "SUM_SORT_ROWS",
        "mysql_perf_schema_events_statements_sort_rows_total",
        "The total number of sorted rows by digest.",
        1.0,
    ),
    (
        "SUM_NO_INDEX_USED",
        "mysql_perf_schema_events_statements_no_index_used_total",
        "The total number of statements that used full table scans by digest.",
        1.0,
    ),
];

/// One series per digest and counter, labelled `schema`, `digest`, `digest_text` as upstream. The
/// label cardinality is bounded by the statement's `LIMIT`, not here.
fn events_statements(rows: &Rows, out: &mut Families) {
    let (Some(schema_i), Some(digest_i), Some(text_i)) = (
        rows.column("schema_name"),
        rows.column("digest"),
        rows.column("digest_text"),
    ) else {
        tracing::debug!("eventsstatements: unexpected columns {:?}", rows.columns);
        return;
    };
    let columns = DIGEST_COUNTERS.map(|(column, ..)| rows.column(column));
    for row in &rows.rows {
        let text = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or("");
        let labels = [
            ("schema", text(schema_i)),
            ("digest", text(digest_i)),
            ("digest_text", text(text_i)),
        ];
        for (&(_, name, help, scale), index) in DIGEST_COUNTERS.iter().zip(columns) {
            let Some(value) = index.and_then(|i| text(i).parse::<f64>().ok()) else {
                continue;
            };
            counter_sample(out, name, help, &labels, value * scale);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// information_schema.tables
// ---------------------------------------------------------------------------------------------------

/// mysqld_exporter's info_schema.tables families: rows, sizes by component, and the table version
/// with the table's type, engine, row format and create options as labels.
fn tables(rows: &Rows, out: &mut Families) {
    let at = |name: &str| rows.column(name);
    let (Some(schema_i), Some(table_i)) = (at("TABLE_SCHEMA"), at("TABLE_NAME")) else {
        tracing::debug!("info_schema.tables: unexpected columns {:?}", rows.columns);
        return;
    };
    let (type_i, engine_i, version_i, format_i, options_i) = (
        at("TABLE_TYPE"),
        at("ENGINE"),
        at("VERSION"),
        at("ROW_FORMAT"),
        at("CREATE_OPTIONS"),
    );
    let (rows_i, data_i, index_i, free_i) = (
        at("TABLE_ROWS"),
        at("DATA_LENGTH"),
        at("INDEX_LENGTH"),
        at("DATA_FREE"),
    );
    for row in &rows.rows {
        let text = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .and_then(|v| v.as_deref())
                .unwrap_or("")
        };
        let number = |i: Option<usize>| text(i).parse::<f64>().ok().filter(|v| v.is_finite());
        let (schema, table) = (text(Some(schema_i)), text(Some(table_i)));
        if let Some(version) = number(version_i) {
            out.gauge(
                "mysql_info_schema_table_version",
                "The version number of the table's .frm file",
            )
            .set(
                &[
                    ("schema", schema),
                    ("table", table),
                    ("type", text(type_i)),
                    ("engine", text(engine_i)),
                    ("row_format", text(format_i)),
                    ("create_options", text(options_i)),
                ],
                version,
            );
        }
        if let Some(count) = number(rows_i) {
            out.gauge(
                "mysql_info_schema_table_rows",
                "The estimated number of rows in the table from information_schema.tables",
            )
            .set(&[("schema", schema), ("table", table)], count);
        }
        for (component, index) in [
            ("data_length", data_i),
            ("index_length", index_i),
            ("data_free", free_i),
        ] {
            if let Some(bytes) = number(index) {
                out.gauge(
                    "mysql_info_schema_table_size",
                    "The size of the table components from information_schema.tables",
                )
                .set(
                    &[
                        ("schema", schema),
                        ("table", table),
                        ("component", component),
                    ],
                    bytes,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use prometheus::proto::{MetricFamily, MetricType};

    use super::*;
    use crate::family::validate;
    use crate::mysql::Address;

    const STATUS: &str = include_str!("testdata/mariadb-10.11-global-status.tsv");
    const VARIABLES: &str = include_str!("testdata/mariadb-10.11-global-variables.tsv");
    const SLAVES: &str = include_str!("testdata/mariadb-10.11-all-slaves-status.txt");
    const SLAVES_SQL_STOPPED: &str =
        include_str!("testdata/mariadb-10.11-all-slaves-status-sql-stopped.txt");
    const INNODB_METRICS: &str = include_str!("testdata/mariadb-10.11-innodb-metrics.tsv");
    const PROCESSLIST: &str = include_str!("testdata/mariadb-10.11-processlist.tsv");
    const EVENTS_STATEMENTS: &str = include_str!("testdata/mariadb-10.11-events-statements.tsv");
    const TABLES: &str = include_str!("testdata/mariadb-10.11-tables.tsv");
    const MYSQL8_REPLICA: &str = include_str!("testdata/mysql-8.0-show-replica-status.txt");
    const MYSQL57_SLAVE: &str = include_str!("testdata/mysql-5.7-show-slave-status.txt");

    // --- fixture parsers -----------------------------------------------------------------------

    /// One `mariadb -B` field: `NULL` is NULL, and `\t`, `\n`, `\\`, `\0` are unescaped.
    fn batch_field(raw: &str) -> Option<String> {
        if raw == "NULL" {
            return None;
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        Some(out)
    }

    fn data_lines(text: &str) -> impl Iterator<Item = &str> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
    }

    /// `mariadb -B -N` output of `SHOW GLOBAL STATUS|VARIABLES`.
    fn name_value_tsv(text: &str) -> Rows {
        Rows {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: data_lines(text)
                .map(|line| {
                    let (name, value) = line.split_once('\t').unwrap_or((line, ""));
                    vec![batch_field(name), batch_field(value)]
                })
                .collect(),
        }
    }

    /// `mariadb -B` output with its header row.
    fn header_tsv(text: &str) -> Rows {
        let mut lines = data_lines(text);
        let columns = lines
            .next()
            .expect("header row")
            .split('\t')
            .map(str::to_owned)
            .collect();
        Rows {
            columns,
            rows: lines
                .map(|line| line.split('\t').map(batch_field).collect())
                .collect(),
        }
    }

    /// `\G` vertical output: `*** N. row ***` starts a row, `Name: value` a field (`NULL` is NULL),
    /// and a line that is not `Identifier:` continues the previous value (multi-line GTID sets).
    fn vertical(text: &str) -> Rows {
        let mut columns: Vec<String> = Vec::new();
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let mut current: Vec<(String, Option<String>)> = Vec::new();
        let flush = |current: &mut Vec<(String, Option<String>)>,
                     columns: &mut Vec<String>,
                     rows: &mut Vec<Vec<Option<String>>>| {
            if current.is_empty() {
                return;
            }
            if columns.is_empty() {
                *columns = current.iter().map(|(n, _)| n.clone()).collect();
            }
            rows.push(current.drain(..).map(|(_, v)| v).collect());
        };
        for line in data_lines(text) {
            if line.starts_with("***") {
                flush(&mut current, &mut columns, &mut rows);
                continue;
            }
            let field = line.trim_start().split_once(':').filter(|(name, rest)| {
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && (rest.is_empty() || rest.starts_with(' '))
            });
            match field {
                Some((name, rest)) => {
                    let value = rest.strip_prefix(' ').unwrap_or(rest).trim_end();
                    let value = (value != "NULL").then(|| value.to_owned());
                    current.push((name.to_owned(), value));
                }
                None => {
                    let (_, last) = current.last_mut().expect("continuation after a field");
                    let last = last.get_or_insert_with(String::new);
                    last.push('\n');
                    last.push_str(line.trim_end());
                }
            }
        }
        flush(&mut current, &mut columns, &mut rows);
        Rows { columns, rows }
    }

    // --- helpers -------------------------------------------------------------------------------

    fn settings() -> MysqlSettings {
        MysqlSettings::new(
            Address::Tcp {
                host: "127.0.0.1".into(),
                port: 3306,
            },
            "exporter",
        )
    }

    fn server(flavor: Flavor, version: (u32, u32, u32)) -> ServerInfo {
        ServerInfo { flavor, version }
    }

    fn mariadb() -> ServerInfo {
        server(Flavor::MariaDb, (10, 11, 19))
    }

    fn run(scraper: Scraper, rows: &Rows) -> Vec<MetricFamily> {
        run_with(scraper, rows, &settings())
    }

    fn run_with(scraper: Scraper, rows: &Rows, settings: &MysqlSettings) -> Vec<MetricFamily> {
        let mut out = Families::new();
        families(scraper, rows, &mariadb(), settings, &mut out);
        out.finish()
    }

    fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    fn has(families: &[MetricFamily], name: &str) -> bool {
        families.iter().any(|f| f.name() == name)
    }

    fn kind(families: &[MetricFamily], name: &str) -> MetricType {
        family(families, name).get_field_type()
    }

    /// The value of the sample of `name` whose labels include all of `labels`.
    fn value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = family(families, name);
        family
            .get_metric()
            .iter()
            .find(|m| {
                labels.iter().all(|(n, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *n && l.value() == *v)
                })
            })
            .map(|m| match family.get_field_type() {
                MetricType::COUNTER => m.get_counter().get_value(),
                _ => m.get_gauge().get_value(),
            })
    }

    fn label_names(families: &[MetricFamily], name: &str) -> Vec<String> {
        let names: BTreeSet<String> = family(families, name)
            .get_metric()
            .iter()
            .flat_map(|m| m.get_label().iter().map(|l| l.name().to_owned()))
            .collect();
        names.into_iter().collect()
    }

    fn label_values(families: &[MetricFamily], name: &str, label: &str) -> BTreeSet<String> {
        family(families, name)
            .get_metric()
            .iter()
            .flat_map(|m| m.get_label().iter())
            .filter(|l| l.name() == label)
            .map(|l| l.value().to_owned())
            .collect()
    }

    fn fixture_value<'a>(rows: &'a Rows, name: &str) -> &'a str {
        rows.pairs()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("fixture has no {name}"))
    }

    fn all_valid(families: &[MetricFamily]) {
        assert!(!families.is_empty());
        for f in families {
            assert_eq!(validate(f), Ok(()), "{}", f.name());
            assert_ne!(f.get_field_type(), MetricType::UNTYPED, "{}", f.name());
        }
    }

    // --- statements ----------------------------------------------------------------------------

    #[test]
    fn replication_statement_by_flavor_and_version() {
        let s = settings();
        let cases = [
            (
                server(Flavor::MariaDb, (10, 3, 0)),
                "SHOW ALL SLAVES STATUS",
            ),
            (
                server(Flavor::MariaDb, (11, 4, 2)),
                "SHOW ALL SLAVES STATUS",
            ),
            (server(Flavor::MySql, (5, 7, 44)), "SHOW SLAVE STATUS"),
            (server(Flavor::MySql, (8, 0, 21)), "SHOW SLAVE STATUS"),
            (server(Flavor::MySql, (8, 0, 22)), "SHOW REPLICA STATUS"),
            (server(Flavor::MySql, (8, 4, 3)), "SHOW REPLICA STATUS"),
            (server(Flavor::Percona, (8, 0, 21)), "SHOW SLAVE STATUS"),
            (server(Flavor::Percona, (8, 0, 36)), "SHOW REPLICA STATUS"),
        ];
        for (server, expected) in cases {
            assert_eq!(
                statement(Scraper::SlaveStatus, &server, &s, &[]).as_deref(),
                Some(expected),
                "{server:?}"
            );
        }
        assert_eq!(
            statement(Scraper::GlobalStatus, &mariadb(), &s, &[]).as_deref(),
            Some("SHOW GLOBAL STATUS")
        );
        assert_eq!(
            statement(Scraper::GlobalVariables, &mariadb(), &s, &[]).as_deref(),
            Some("SHOW GLOBAL VARIABLES")
        );
    }

    #[test]
    fn innodb_metrics_statement_picks_the_enabled_column_by_version() {
        let s = settings();
        let sql =
            |flavor, version| statement(Scraper::InnodbMetrics, &server(flavor, version), &s, &[]);
        let enabled = sql(Flavor::MariaDb, (10, 5, 0)).expect("10.5");
        assert!(enabled.ends_with("WHERE enabled = 1"), "{enabled}");
        for (flavor, version) in [
            (Flavor::MariaDb, (10, 4, 32)),
            (Flavor::MySql, (8, 0, 36)),
            (Flavor::Percona, (5, 7, 44)),
            (Flavor::MySql, (5, 6, 0)),
        ] {
            let status = sql(flavor, version).expect("supported");
            assert!(status.ends_with("WHERE status = 'enabled'"), "{status}");
            assert!(status.starts_with("SELECT name, subsystem, type, comment, count FROM"));
        }
        assert_eq!(sql(Flavor::MySql, (5, 5, 62)), None);
        assert_eq!(sql(Flavor::MariaDb, (5, 5, 68)), None);
    }

    #[test]
    fn processlist_statement_uses_min_time_and_groups_like_upstream() {
        let mut s = settings();
        s.processlist.min_time = Duration::from_millis(5_900);
        let sql = statement(Scraper::Processlist, &mariadb(), &s, &[41, 42]).expect("processlist");
        assert!(sql.contains("FROM information_schema.processlist"));
        assert!(
            sql.contains("WHERE ID NOT IN (connection_id(), 41, 42) AND TIME >= 5 "),
            "{sql}"
        );
        assert!(sql.ends_with("GROUP BY user, SUBSTRING_INDEX(host, ':', 1), command, state"));
    }

    #[test]
    fn events_statements_statement_is_bounded_by_the_settings() {
        let mut s = settings();
        let sql = statement(Scraper::EventsStatements, &mariadb(), &s, &[]).expect("digests");
        assert!(
            sql.contains("LEFT(DIGEST_TEXT, 120) AS digest_text"),
            "{sql}"
        );
        assert!(sql.contains("INTERVAL 86400 SECOND"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY SUM_TIMER_WAIT DESC LIMIT 250"),
            "{sql}"
        );
        s.events_statements.limit = 10;
        s.events_statements.digest_text_limit = 64;
        s.events_statements.time_limit = Duration::from_secs(600);
        let sql = statement(Scraper::EventsStatements, &mariadb(), &s, &[]).expect("digests");
        assert!(sql.contains("LEFT(DIGEST_TEXT, 64)") && sql.contains("INTERVAL 600 SECOND"));
        assert!(sql.ends_with("LIMIT 10"), "{sql}");
        let old = server(Flavor::MySql, (5, 5, 62));
        assert_eq!(statement(Scraper::EventsStatements, &old, &s, &[]), None);
    }

    #[test]
    fn tables_statement_quotes_schema_names() {
        let mut s = settings();
        assert_eq!(statement(Scraper::Tables, &mariadb(), &s, &[]), None);
        s.table_schemas = vec!["shop".into(), r"it's\'); DROP TABLE x; --".into()];
        let sql = statement(Scraper::Tables, &mariadb(), &s, &[]).expect("tables");
        assert!(
            sql.ends_with(r"WHERE TABLE_SCHEMA IN ('shop', 'it''s\\''); DROP TABLE x; --')"),
            "{sql}"
        );
    }

    // --- value rules ---------------------------------------------------------------------------

    #[test]
    fn parses_words_numbers_dates_and_log_files() {
        let cases: [(&str, Option<f64>); 30] = [
            ("0", Some(0.0)),
            ("151", Some(151.0)),
            ("-3", Some(-3.0)),
            ("0.000227664", Some(0.000_227_664)),
            ("6.03708e-05", Some(6.037_08e-5)),
            ("18446744073709551615", Some(18_446_744_073_709_551_615.0)),
            ("Yes", Some(1.0)),
            ("ON", Some(1.0)),
            ("on", Some(1.0)),
            ("Primary", Some(1.0)),
            ("No", Some(0.0)),
            ("OFF", Some(0.0)),
            ("DISABLED", Some(0.0)),
            ("Connecting", Some(0.0)),
            ("non-Primary", Some(0.0)),
            ("Disconnected", Some(0.0)),
            ("Sep  5 12:00:00 2027 GMT", Some(1_820_145_600.0)),
            ("Jan 01 00:00:00 1970 UTC", Some(0.0)),
            ("Feb 29 23:59:59 2024 GMT", Some(1_709_251_199.0)),
            ("2027-09-05 12:00:00", Some(1_820_145_600.0)),
            ("2000-03-01 00:00:00.5", Some(951_868_800.5)),
            ("mysql-bin.000123", Some(123.0)),
            ("./relay-bin.000002", Some(2.0)),
            ("master-bin.1000001", Some(1_000_001.0)),
            ("", None),
            ("inf", None),
            ("NaN", None),
            ("AUTH_MASTER", None),
            ("TLSv1.2,TLSv1.3", None),
            ("10.11.6", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_value(raw), expected, "{raw:?}");
        }
        for garbage in [
            "Sep 31 12:00:00 2027 GMT",
            "Sep  5 12:00:00 2027 PST",
            "Sep  5 24:00:00 2027 GMT",
            "2027-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2027-9-5 12:00:00",
            "Buffer pool(s) load completed at 261125 16:19:52",
            "0-1-5",
            "73f86016-978b-11ee-ade5-8d2a2a562feb:1-3",
            "127.0.0.1",
            "db.1",
            "slave-relay-bin.2",
            "mysql.slave_master_info",
            "/var/lib/mysql/master.info",
            "INVALID",
        ] {
            assert_eq!(parse_value(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn names_are_normalized_like_mysqld_exporter() {
        let mut buf = String::new();
        push_normalized(
            &mut buf,
            "validate_password.dictionary_file_words_count",
            true,
        );
        assert_eq!(buf, "validate_password_dictionary_file_words_count");
        buf.clear();
        push_normalized(&mut buf, "Buffer_LRU-é", false);
        assert_eq!(buf, "Buffer_LRU__");
        assert_eq!(
            slave_metric_name("Seconds_Behind_Source"),
            "mysql_slave_status_seconds_behind_master"
        );
        assert_eq!(
            slave_metric_name("Replicate_Do_DB"),
            "mysql_slave_status_replicate_do_db"
        );
        assert_eq!(
            sanitize_state("Waiting for table metadata lock"),
            "waiting_for_table_metadata_lock"
        );
        assert_eq!(sanitize_state("Binlog Dump (GTID)"), "binlog_dump_gtid");
        assert_eq!(sanitize_state(""), "unknown");
    }

    #[test]
    fn gcache_size_and_evs_latency() {
        let options = "base_dir = /var/lib/mysql/; gcache.dir = /var/lib/mysql/; \
                       gcache.name = galera.cache; gcache.size = 128M; gcs.fc_limit = 16";
        assert_eq!(gcache_size(options), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(
            gcache_size("gcache.size = 2G"),
            Some(2.0 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(gcache_size("gcache.size = 4096"), Some(4096.0));
        assert_eq!(gcache_size("gcache.name = x"), None);
        assert_eq!(gcache_size(""), None);
        assert_eq!(
            parse_evs_latency("0.000227664/0.00034135/0.000544298/6.03708e-05/212"),
            Some([
                0.000_227_664,
                0.000_341_35,
                0.000_544_298,
                6.037_08e-5,
                212.0
            ])
        );
        assert_eq!(parse_evs_latency("0/0/0/0"), None);
        assert_eq!(parse_evs_latency(""), None);
    }

    // --- global status -------------------------------------------------------------------------

    #[test]
    fn global_status_from_mariadb_fixture() {
        let rows = name_value_tsv(STATUS);
        let f = run(Scraper::GlobalStatus, &rows);
        all_valid(&f);

        let com_select: f64 = fixture_value(&rows, "Com_select").parse().expect("number");
        assert_eq!(
            kind(&f, "mysql_global_status_commands_total"),
            MetricType::COUNTER
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_commands_total",
                &[("command", "select")]
            ),
            Some(com_select)
        );
        assert_eq!(
            label_names(&f, "mysql_global_status_commands_total"),
            ["command"]
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_handlers_total",
                &[("handler", "commit")]
            ),
            Some(12.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_connection_errors_total",
                &[("error", "max_connections")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_performance_schema_lost_total",
                &[("instrumentation", "users_lost")]
            ),
            Some(0.0)
        );

        // Buffer pool pages: states (with the total), dirty, and the changes.
        assert_eq!(
            kind(&f, "mysql_global_status_buffer_pool_pages"),
            MetricType::GAUGE
        );
        assert_eq!(
            label_values(&f, "mysql_global_status_buffer_pool_pages", "state"),
            ["data", "free", "misc", "old", "total"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_buffer_pool_pages",
                &[("state", "total")]
            ),
            Some(1014.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_buffer_pool_pages",
                &[("state", "data")]
            ),
            Some(174.0)
        );
        assert_eq!(
            value(&f, "mysql_global_status_buffer_pool_dirty_pages", &[]),
            Some(22.0)
        );
        assert_eq!(
            kind(&f, "mysql_global_status_buffer_pool_dirty_pages"),
            MetricType::GAUGE
        );
        assert_eq!(
            kind(&f, "mysql_global_status_buffer_pool_page_changes_total"),
            MetricType::COUNTER
        );
        assert_eq!(
            label_values(
                &f,
                "mysql_global_status_buffer_pool_page_changes_total",
                "operation"
            ),
            [
                "flushed",
                "lru_flushed",
                "lru_freed",
                "made_not_young",
                "made_young",
                "split"
            ]
            .map(str::to_owned)
            .into()
        );

        // Ungrouped variables: typed from the table, unknown ones gauges.
        for counter in [
            "mysql_global_status_bytes_received",
            "mysql_global_status_queries",
            "mysql_global_status_innodb_data_fsyncs",
            "mysql_global_status_access_denied_errors",
            "mysql_global_status_binlog_bytes_written",
            "mysql_global_status_feature_json",
            "mysql_global_status_rpl_semi_sync_master_yes_tx",
            "mysql_global_status_threads_created",
        ] {
            assert_eq!(kind(&f, counter), MetricType::COUNTER, "{counter}");
        }
        for gauge in [
            "mysql_global_status_threads_connected",
            "mysql_global_status_threads_running",
            "mysql_global_status_uptime",
            "mysql_global_status_max_used_connections",
            "mysql_global_status_rpl_semi_sync_master_clients",
            "mysql_global_status_innodb_page_size",
            "mysql_global_status_acl_users",
        ] {
            assert_eq!(kind(&f, gauge), MetricType::GAUGE, "{gauge}");
        }
        assert_eq!(
            value(&f, "mysql_global_status_threads_connected", &[]),
            Some(2.0)
        );
        assert_eq!(
            family(&f, "mysql_global_status_uptime").help(),
            "Generic metric from SHOW GLOBAL STATUS."
        );
        // Words, log file names, NULL and empty values.
        assert_eq!(value(&f, "mysql_global_status_compression", &[]), Some(0.0));
        assert_eq!(
            value(&f, "mysql_global_status_innodb_have_punch_hole", &[]),
            Some(1.0)
        );
        assert_eq!(
            value(&f, "mysql_global_status_wsrep_cluster_status", &[]),
            Some(0.0)
        );
        assert_eq!(
            value(&f, "mysql_global_status_binlog_snapshot_file", &[]),
            Some(1.0)
        );
        for absent in [
            "mysql_global_status_max_memory_used",
            "mysql_global_status_ssl_cipher",
            "mysql_global_status_ssl_server_not_after",
            "mysql_global_status_rpl_status",
            "mysql_global_status_innodb_buffer_pool_load_status",
            "mysql_global_status_innodb_buffer_pool_pages_total",
            "mysql_galera_status_info",
            "mysql_galera_evs_repl_latency_avg_seconds",
        ] {
            assert!(!has(&f, absent), "{absent}");
        }
    }

    #[test]
    fn every_parsable_status_row_becomes_exactly_one_sample() {
        let rows = name_value_tsv(STATUS);
        let parsable = rows
            .pairs()
            .filter(|(_, v)| parse_value(v).is_some())
            .count();
        let f = run(Scraper::GlobalStatus, &rows);
        let samples: usize = f.iter().map(|f| f.get_metric().len()).sum();
        assert_eq!(samples, parsable);
    }

    #[test]
    fn galera_status_and_special_pages() {
        let rows = Rows {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: [
                ("wsrep_cluster_status", "Primary"),
                (
                    "wsrep_local_state_uuid",
                    "6c06e583-686f-11e6-b9e3-8336ad58138c",
                ),
                (
                    "wsrep_cluster_state_uuid",
                    "6c06e583-686f-11e6-b9e3-8336ad58138c",
                ),
                ("wsrep_provider_version", "3.16(r5c765eb)"),
                (
                    "wsrep_evs_repl_latency",
                    "0.000227664/0.00034135/0.000544298/6.03708e-05/212",
                ),
                ("wsrep_received_bytes", "1024"),
                ("Innodb_buffer_pool_pages_latched", "3"),
                ("Innodb_rows_read", "8"),
                ("Ssl_server_not_after", "Sep  5 12:00:00 2027 GMT"),
                ("Max_used_connections_time", "2027-09-05 12:00:00"),
                ("Com_select", "-1"),
                ("Com_insert", "4"),
            ]
            .iter()
            .map(|(n, v)| vec![Some((*n).to_owned()), Some((*v).to_owned())])
            .collect(),
        };
        let f = run(Scraper::GlobalStatus, &rows);
        all_valid(&f);
        assert_eq!(
            value(&f, "mysql_global_status_wsrep_cluster_status", &[]),
            Some(1.0)
        );
        assert_eq!(
            label_names(&f, "mysql_galera_status_info"),
            [
                "wsrep_cluster_state_uuid",
                "wsrep_local_state_uuid",
                "wsrep_provider_version"
            ]
        );
        assert_eq!(
            value(
                &f,
                "mysql_galera_status_info",
                &[("wsrep_provider_version", "3.16(r5c765eb)")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&f, "mysql_galera_evs_repl_latency_max_seconds", &[]),
            Some(0.000_544_298)
        );
        assert_eq!(
            value(&f, "mysql_galera_evs_repl_latency_sample_size", &[]),
            Some(212.0)
        );
        assert_eq!(
            kind(&f, "mysql_global_status_wsrep_received_bytes"),
            MetricType::COUNTER
        );
        assert_eq!(
            kind(&f, "mysql_global_status_innodb_buffer_pool_pages_latched"),
            MetricType::GAUGE
        );
        assert!(!has(
            &f,
            "mysql_global_status_buffer_pool_page_changes_total"
        ));
        assert_eq!(
            value(
                &f,
                "mysql_global_status_innodb_row_ops_total",
                &[("operation", "read")]
            ),
            Some(8.0)
        );
        assert_eq!(
            value(&f, "mysql_global_status_ssl_server_not_after", &[]),
            Some(1_820_145_600.0)
        );
        assert_eq!(
            value(&f, "mysql_global_status_max_used_connections_time", &[]),
            Some(1_820_145_600.0)
        );
        // A negative command count is dropped, not allowed to poison the family.
        assert_eq!(
            value(
                &f,
                "mysql_global_status_commands_total",
                &[("command", "insert")]
            ),
            Some(4.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_global_status_commands_total",
                &[("command", "select")]
            ),
            None
        );
    }

    // --- global variables ----------------------------------------------------------------------

    #[test]
    fn global_variables_from_mariadb_fixture() {
        let rows = name_value_tsv(VARIABLES);
        let f = run(Scraper::GlobalVariables, &rows);
        all_valid(&f);
        let gauges: Vec<&MetricFamily> = f
            .iter()
            .filter(|f| f.name().starts_with("mysql_global_variables_"))
            .collect();
        assert!(gauges.len() > 300, "{}", gauges.len());
        assert!(
            gauges
                .iter()
                .all(|f| f.get_field_type() == MetricType::GAUGE)
        );
        assert_eq!(
            value(&f, "mysql_global_variables_max_connections", &[]),
            Some(151.0)
        );
        assert_eq!(
            family(&f, "mysql_global_variables_max_connections").help(),
            "SHOW GLOBAL VARIABLES max_connections"
        );
        assert_eq!(value(&f, "mysql_global_variables_log_bin", &[]), Some(1.0));
        assert_eq!(value(&f, "mysql_global_variables_wsrep_on", &[]), Some(0.0));
        assert!(!has(&f, "mysql_global_variables_tls_version"));
        assert!(!has(&f, "mysql_global_variables_version"));

        assert_eq!(
            label_names(&f, "mysql_version_info"),
            ["innodb_version", "version", "version_comment"]
        );
        assert_eq!(
            value(
                &f,
                "mysql_version_info",
                &[
                    ("innodb_version", ""),
                    ("version", fixture_value(&rows, "version")),
                    ("version_comment", "Debian 12"),
                ]
            ),
            Some(1.0)
        );
        // MariaDB 10.11 only has tx_isolation.
        assert_eq!(
            value(
                &f,
                "mysql_transaction_isolation",
                &[("level", "REPEATABLE-READ")]
            ),
            Some(1.0)
        );
        // Galera is off: no Galera info for the default cluster name.
        assert!(!has(&f, "mysql_galera_variables_info"));
        assert!(!has(&f, "mysql_galera_gcache_size_bytes"));
    }

    #[test]
    fn galera_variables_and_transaction_isolation_precedence() {
        let rows = Rows {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: [
                ("transaction_isolation", "READ-COMMITTED"),
                ("tx_isolation", "REPEATABLE-READ"),
                ("wsrep_on", "ON"),
                ("wsrep_cluster_name", "pxc1"),
                (
                    "wsrep_provider_options",
                    "gcache.name = galera.cache; gcache.size = 1G; ",
                ),
                ("validate_password.length", "8"),
            ]
            .iter()
            .map(|(n, v)| vec![Some((*n).to_owned()), Some((*v).to_owned())])
            .collect(),
        };
        let f = run(Scraper::GlobalVariables, &rows);
        all_valid(&f);
        assert_eq!(
            label_values(&f, "mysql_transaction_isolation", "level"),
            BTreeSet::from(["READ-COMMITTED".to_owned()])
        );
        assert_eq!(
            value(
                &f,
                "mysql_galera_variables_info",
                &[("wsrep_cluster_name", "pxc1")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&f, "mysql_galera_gcache_size_bytes", &[]),
            Some(1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(
            value(&f, "mysql_global_variables_validate_password_length", &[]),
            Some(8.0)
        );
    }

    // --- replication ---------------------------------------------------------------------------

    const SLAVE_LABELS: [&str; 4] = [
        "channel_name",
        "connection_name",
        "master_host",
        "master_uuid",
    ];

    #[test]
    fn mariadb_slave_status_fixture() {
        let rows = vertical(SLAVES);
        assert_eq!(rows.rows.len(), 1);
        let f = run(Scraper::SlaveStatus, &rows);
        all_valid(&f);
        for family in &f {
            assert_eq!(
                family.get_field_type(),
                MetricType::GAUGE,
                "{}",
                family.name()
            );
        }
        let labels = [
            ("master_host", "127.0.0.1"),
            ("master_uuid", ""),
            ("channel_name", ""),
            ("connection_name", ""),
        ];
        for (name, expected) in [
            ("mysql_slave_status_slave_io_running", 1.0),
            ("mysql_slave_status_slave_sql_running", 1.0),
            ("mysql_slave_status_seconds_behind_master", 0.0),
            ("mysql_slave_status_master_log_file", 1.0),
            ("mysql_slave_status_relay_master_log_file", 1.0),
            ("mysql_slave_status_relay_log_file", 2.0),
            ("mysql_slave_status_read_master_log_pos", 1102.0),
            ("mysql_slave_status_exec_master_log_pos", 1102.0),
            ("mysql_slave_status_master_port", 33999.0),
            ("mysql_slave_status_master_server_id", 1.0),
            ("mysql_slave_status_master_ssl_allowed", 0.0),
            ("mysql_slave_status_slave_heartbeat_period", 30.0),
            ("mysql_slave_status_sql_delay", 0.0),
        ] {
            assert_eq!(value(&f, name, &labels), Some(expected), "{name}");
            assert_eq!(label_names(&f, name), SLAVE_LABELS, "{name}");
        }
        for (name, position) in [
            ("mysql_slave_status_gtid_io_pos", 5.0),
            ("mysql_slave_status_gtid_slave_pos", 5.0),
        ] {
            assert_eq!(
                label_names(&f, name),
                [
                    "channel_name",
                    "connection_name",
                    "domain_id",
                    "master_host",
                    "master_uuid",
                    "server_id"
                ]
            );
            assert_eq!(
                value(&f, name, &[("domain_id", "0"), ("server_id", "1")]),
                Some(position)
            );
        }
        for absent in [
            "mysql_slave_status_master_host",
            "mysql_slave_status_connection_name",
            "mysql_slave_status_sql_remaining_delay",
            "mysql_slave_status_using_gtid",
            "mysql_slave_status_until_condition",
        ] {
            assert!(!has(&f, absent), "{absent}");
        }
    }

    #[test]
    fn stopped_sql_thread_has_no_lag_series() {
        let f = run(Scraper::SlaveStatus, &vertical(SLAVES_SQL_STOPPED));
        all_valid(&f);
        assert!(!has(&f, "mysql_slave_status_seconds_behind_master"));
        assert_eq!(
            value(&f, "mysql_slave_status_slave_sql_running", &[]),
            Some(0.0)
        );
        assert_eq!(
            value(&f, "mysql_slave_status_slave_io_running", &[]),
            Some(1.0)
        );
    }

    #[test]
    fn mysql8_replica_status_uses_legacy_names() {
        let rows = vertical(MYSQL8_REPLICA);
        assert_eq!(
            rows.columns.first().map(String::as_str),
            Some("Replica_IO_State")
        );
        let f = run(Scraper::SlaveStatus, &rows);
        all_valid(&f);
        let labels = [
            ("master_host", "127.0.0.1"),
            ("master_uuid", "73f86016-978b-11ee-ade5-8d2a2a562feb"),
            ("channel_name", ""),
            ("connection_name", ""),
        ];
        for (name, expected) in [
            ("mysql_slave_status_slave_io_running", 1.0),
            ("mysql_slave_status_slave_sql_running", 1.0),
            ("mysql_slave_status_seconds_behind_master", 0.0),
            ("mysql_slave_status_master_port", 13000.0),
            ("mysql_slave_status_master_server_id", 1.0),
            ("mysql_slave_status_read_master_log_pos", 927.0),
            ("mysql_slave_status_exec_master_log_pos", 927.0),
            ("mysql_slave_status_master_retry_count", 10.0),
            ("mysql_slave_status_master_ssl_allowed", 0.0),
            ("mysql_slave_status_master_ssl_verify_server_cert", 0.0),
            ("mysql_slave_status_get_master_public_key", 0.0),
            ("mysql_slave_status_master_log_file", 1.0),
            ("mysql_slave_status_relay_master_log_file", 1.0),
            ("mysql_slave_status_relay_log_file", 2.0),
            ("mysql_slave_status_relay_log_pos", 1145.0),
            ("mysql_slave_status_auto_position", 1.0),
            ("mysql_slave_status_connect_retry", 1.0),
        ] {
            assert_eq!(value(&f, name, &labels), Some(expected), "{name}");
            assert_eq!(label_names(&f, name), SLAVE_LABELS, "{name}");
        }
        for family in &f {
            let name = family.name();
            assert!(
                !name.contains("source") && !name.contains("replica_"),
                "{name} keeps a modern name"
            );
        }
        assert!(!has(&f, "mysql_slave_status_sql_remaining_delay"));
    }

    #[test]
    fn mysql57_slave_status_with_multiline_gtid_set() {
        let rows = vertical(MYSQL57_SLAVE);
        let gtids = rows.column("Executed_Gtid_Set").expect("column");
        assert_eq!(
            rows.rows[0][gtids].as_deref(),
            Some(
                "9e520b78-013c-11eb-a84c-0800271bf591:1-109,\n\
                 9f50ba55-0141-11eb-98ab-0800270c8f40:1"
            )
        );
        let f = run(Scraper::SlaveStatus, &rows);
        all_valid(&f);
        let labels = [
            ("master_host", "192.168.0.201"),
            ("master_uuid", "9e520b78-013c-11eb-a84c-0800271bf591"),
            ("channel_name", ""),
            ("connection_name", ""),
        ];
        for (name, expected) in [
            ("mysql_slave_status_seconds_behind_master", 15.0),
            ("mysql_slave_status_master_log_file", 14.0),
            ("mysql_slave_status_relay_log_file", 36.0),
            ("mysql_slave_status_master_server_id", 330_607.0),
            ("mysql_slave_status_read_master_log_pos", 3_973_004.0),
        ] {
            assert_eq!(value(&f, name, &labels), Some(expected), "{name}");
        }
        assert!(!has(&f, "mysql_slave_status_executed_gtid_set"));
        assert!(!has(&f, "mysql_slave_status_master_tls_version"));
    }

    #[test]
    fn not_a_replica_makes_no_families() {
        let columns = vertical(SLAVES).columns;
        let f = run(
            Scraper::SlaveStatus,
            &Rows {
                columns,
                rows: Vec::new(),
            },
        );
        assert!(f.is_empty());
    }

    #[test]
    fn multi_source_rows_and_gtid_lists() {
        let mut rows = vertical(SLAVES);
        let mut second = rows.rows[0].clone();
        let name_i = rows.column("Connection_name").expect("column");
        let io_i = rows.column("Gtid_IO_Pos").expect("column");
        second[name_i] = Some("east".into());
        second[io_i] = Some("0-1-5,\n7-2-42".into());
        rows.rows.push(second);
        let f = run(Scraper::SlaveStatus, &rows);
        all_valid(&f);
        assert_eq!(
            family(&f, "mysql_slave_status_slave_io_running")
                .get_metric()
                .len(),
            2
        );
        assert_eq!(
            value(
                &f,
                "mysql_slave_status_gtid_io_pos",
                &[
                    ("connection_name", "east"),
                    ("domain_id", "7"),
                    ("server_id", "2")
                ]
            ),
            Some(42.0)
        );
    }

    // --- processlist, innodb_metrics, eventsstatements, tables ---------------------------------

    #[test]
    fn processlist_fixture() {
        let rows = header_tsv(PROCESSLIST);
        let f = run(Scraper::Processlist, &rows);
        all_valid(&f);
        let labels = [("command", "query"), ("state", "user_sleep")];
        assert_eq!(
            value(&f, "mysql_info_schema_processlist_threads", &labels),
            Some(5.0)
        );
        assert_eq!(
            value(&f, "mysql_info_schema_processlist_seconds", &labels),
            Some(32.0)
        );
        assert_eq!(
            label_names(&f, "mysql_info_schema_processlist_threads"),
            ["command", "state"]
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_processlist_processes_by_user",
                &[("mysql_user", "app")]
            ),
            Some(4.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_processlist_processes_by_host",
                &[("client_host", "localhost")]
            ),
            Some(5.0)
        );
        for family in &f {
            assert_eq!(family.get_field_type(), MetricType::GAUGE);
        }

        let mut s = settings();
        s.processlist.processes_by_host = false;
        s.processlist.processes_by_user = false;
        let f = run_with(Scraper::Processlist, &rows, &s);
        assert!(!has(&f, "mysql_info_schema_processlist_processes_by_user"));
        assert!(!has(&f, "mysql_info_schema_processlist_processes_by_host"));
    }

    #[test]
    fn processlist_empty_host_and_state() {
        let rows = Rows {
            columns: ["user", "host", "command", "state", "processes", "seconds"]
                .map(str::to_owned)
                .into(),
            rows: vec![
                ["system user", "", "Daemon", "InnoDB purge worker", "4", "0"]
                    .map(|v| Some(v.to_owned()))
                    .into(),
                vec![
                    Some("event_scheduler".into()),
                    Some("localhost".into()),
                    Some("Daemon".into()),
                    Some(String::new()),
                    Some("1".into()),
                    Some("7".into()),
                ],
            ],
        };
        let f = run(Scraper::Processlist, &rows);
        all_valid(&f);
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_processlist_processes_by_host",
                &[("client_host", "unknown")]
            ),
            Some(4.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_processlist_seconds",
                &[("command", "daemon"), ("state", "unknown")]
            ),
            Some(7.0)
        );
    }

    #[test]
    fn innodb_metrics_fixture() {
        let rows = header_tsv(INNODB_METRICS);
        let f = run(Scraper::InnodbMetrics, &rows);
        all_valid(&f);
        assert_eq!(
            label_values(
                &f,
                "mysql_info_schema_innodb_metrics_buffer_pool_pages",
                "state"
            ),
            ["data", "free", "misc"].map(str::to_owned).into()
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_metrics_buffer_pool_pages",
                &[("state", "data")]
            ),
            Some(178.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_metrics_buffer_pool_dirty_pages",
                &[]
            ),
            Some(32.0)
        );
        for (name, expected) in [
            (
                "mysql_info_schema_innodb_metrics_lock_lock_row_lock_time_total",
                MetricType::COUNTER,
            ),
            (
                "mysql_info_schema_innodb_metrics_os_os_pending_reads_total",
                MetricType::COUNTER,
            ),
            (
                "mysql_info_schema_innodb_metrics_lock_lock_deadlocks",
                MetricType::GAUGE,
            ),
            (
                "mysql_info_schema_innodb_metrics_server_buffer_pool_size",
                MetricType::GAUGE,
            ),
            (
                "mysql_info_schema_innodb_metrics_buffer_buffer_LRU_batch_flush_total_pages_total",
                MetricType::COUNTER,
            ),
        ] {
            assert_eq!(kind(&f, name), expected, "{name}");
        }
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_metrics_server_buffer_pool_size",
                &[]
            ),
            Some(1014.0)
        );
        assert_eq!(
            family(&f, "mysql_info_schema_innodb_metrics_lock_lock_deadlocks").help(),
            "Number of deadlocks"
        );
        assert!(!has(
            &f,
            "mysql_info_schema_innodb_metrics_buffer_buffer_pool_pages_total"
        ));
    }

    #[test]
    fn innodb_buffer_page_io_is_grouped() {
        let rows = Rows {
            columns: ["name", "subsystem", "type", "comment", "count"]
                .map(str::to_owned)
                .into(),
            rows: [
                (
                    "buffer_page_read_index_leaf",
                    "buffer_page_io",
                    "counter",
                    "7",
                ),
                (
                    "buffer_page_written_index_leaf",
                    "buffer_page_io",
                    "counter",
                    "3",
                ),
                ("buffer_page_bogus", "buffer_page_io", "counter", "1"),
                ("trx_undo_slots_used", "transaction", "counter", "-2"),
            ]
            .iter()
            .map(|(n, s, t, c)| {
                [*n, *s, *t, "comment", *c]
                    .map(|v| Some(v.to_owned()))
                    .into()
            })
            .collect(),
        };
        let f = run(Scraper::InnodbMetrics, &rows);
        all_valid(&f);
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_metrics_buffer_page_read_total",
                &[("type", "index_leaf")]
            ),
            Some(7.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_metrics_buffer_page_written_total",
                &[("type", "index_leaf")]
            ),
            Some(3.0)
        );
        // Negative counters become gauges without _total, as upstream.
        assert_eq!(
            kind(
                &f,
                "mysql_info_schema_innodb_metrics_transaction_trx_undo_slots_used"
            ),
            MetricType::GAUGE
        );
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn events_statements_fixture() {
        let rows = header_tsv(EVENTS_STATEMENTS);
        let f = run(Scraper::EventsStatements, &rows);
        all_valid(&f);
        assert_eq!(f.len(), DIGEST_COUNTERS.len());
        for family in &f {
            assert_eq!(
                family.get_field_type(),
                MetricType::COUNTER,
                "{}",
                family.name()
            );
            assert_eq!(family.get_metric().len(), 3, "{}", family.name());
            assert_eq!(
                label_names(&f, family.name()),
                ["digest", "digest_text", "schema"]
            );
        }
        let update = [
            ("schema", "shop"),
            ("digest", "cfaf479f46bcea45384d153696470f5c"),
            (
                "digest_text",
                "UPDATE `orders` SET `note` = ? WHERE ID = ? ",
            ),
        ];
        assert_eq!(
            value(&f, "mysql_perf_schema_events_statements_total", &update),
            Some(3.0)
        );
        let seconds = value(
            &f,
            "mysql_perf_schema_events_statements_seconds_total",
            &update,
        )
        .expect("seconds");
        assert!((seconds - 0.002_244_543).abs() < 1e-12, "{seconds}");
        assert_eq!(
            value(
                &f,
                "mysql_perf_schema_events_statements_rows_affected_total",
                &update
            ),
            Some(3.0)
        );
        let join = [("digest", "602597c3ee2be148b131ac82b6de31f2")];
        assert_eq!(
            value(
                &f,
                "mysql_perf_schema_events_statements_no_index_used_total",
                &join
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_perf_schema_events_statements_rows_examined_total",
                &join
            ),
            Some(9.0)
        );
    }

    #[test]
    fn tables_fixture() {
        let rows = header_tsv(TABLES);
        let f = run(Scraper::Tables, &rows);
        all_valid(&f);
        assert_eq!(
            label_names(&f, "mysql_info_schema_table_version"),
            [
                "create_options",
                "engine",
                "row_format",
                "schema",
                "table",
                "type"
            ]
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_table_version",
                &[
                    ("schema", "shop"),
                    ("table", "log"),
                    ("type", "BASE TABLE"),
                    ("engine", "Aria"),
                    ("row_format", "Page"),
                    ("create_options", "transactional=1"),
                ]
            ),
            Some(10.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_table_rows",
                &[("schema", "shop"), ("table", "orders")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_table_size",
                &[("table", "orders"), ("component", "data_length")]
            ),
            Some(16384.0)
        );
        assert_eq!(
            label_values(&f, "mysql_info_schema_table_size", "component"),
            ["data_free", "data_length", "index_length"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            family(&f, "mysql_info_schema_table_size")
                .get_metric()
                .len(),
            9
        );
        for family in &f {
            assert_eq!(family.get_field_type(), MetricType::GAUGE);
        }
    }

    /// Every family from every fixture passes the engine's validator, and no family name is produced
    /// by two sub-collectors.
    #[test]
    fn all_fixture_families_validate() {
        let cases = [
            (Scraper::GlobalStatus, name_value_tsv(STATUS)),
            (Scraper::GlobalVariables, name_value_tsv(VARIABLES)),
            (Scraper::SlaveStatus, vertical(SLAVES)),
            (Scraper::SlaveStatus, vertical(MYSQL8_REPLICA)),
            (Scraper::Processlist, header_tsv(PROCESSLIST)),
            (Scraper::InnodbMetrics, header_tsv(INNODB_METRICS)),
            (Scraper::EventsStatements, header_tsv(EVENTS_STATEMENTS)),
            (Scraper::Tables, header_tsv(TABLES)),
        ];
        let mut out = Families::new();
        let mut expected = 0;
        for (scraper, rows) in &cases {
            let alone = run(*scraper, rows);
            expected += alone.len();
            all_valid(&alone);
            if *scraper == Scraper::SlaveStatus && rows.columns[0] == "Replica_IO_State" {
                continue;
            }
            families(*scraper, rows, &mariadb(), &settings(), &mut out);
        }
        let together = out.finish();
        all_valid(&together);
        let mysql8 = run(Scraper::SlaveStatus, &vertical(MYSQL8_REPLICA)).len();
        assert_eq!(together.len(), expected - mysql8);
    }
}
