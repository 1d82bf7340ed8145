//! INFO and the other replies of the core scrape, turned into redis_exporter's families.
//!
//! Names and label names are redis_exporter's (the dashboards and alerts listed in
//! `redis-compat.md` §8 query them); types are corrected where upstream exports a monotonic count as
//! a gauge (`rdb_saves_total`, `replica_resyncs_full`, `defrag_*`, ...). Like upstream, INFO fields
//! are exported from a whitelist only: a new server version adding fields must not add series.
//!
//! Everything here is pure and runs on text the server sent, so it never panics and never fails:
//! an unreadable line or value is skipped, and counter samples that are negative or not finite are
//! left out rather than handed to the builder, which would drop the whole family for one bad value.
//!
//! `latency_percentiles_usec_*` lines (Latencystats) become the summary
//! `redis_latency_percentiles_usec{cmd}` with `quantile="50"|"99"|"99.9"` as redis_exporter writes
//! them (alerts match `quantile="99.9"`), its count and sum taken from the command's commandstats.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use crate::Families;
use crate::family::is_valid_metric_name;

/// An INFO reply: every `key:value` line with the section it appeared in, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Info {
    /// `(section, key, value)`, sections lowercased (`server`, `keyspace`, ...).
    pub fields: Vec<(String, String, String)>,
}

impl Info {
    /// Parse INFO text (`# Section` headers, `key:value` lines, CRLF or LF). Never panics; lines it
    /// cannot read are skipped.
    pub fn parse(text: &str) -> Self {
        let mut fields = Vec::new();
        let mut section = String::new();
        // `lines` splits on LF and drops a CR before it; the trim also covers a lone trailing CR
        // and the padding some proxies add.
        for line in text.lines() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix('#') {
                section = header.trim().to_ascii_lowercase();
                continue;
            }
            // Split at the first colon: values may contain colons (`executable`, IPv6 hosts).
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            fields.push((section.clone(), key.to_owned(), value.trim().to_owned()));
        }
        Self { fields }
    }

    /// The value of `key` (first occurrence), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.as_str())
    }
}

/// One `LATENCY LATEST` entry: event name, Unix time of the latest spike, latest and all-time
/// maximum latency in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyEvent {
    pub event: String,
    pub timestamp: i64,
    pub latest_ms: i64,
    pub max_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Gauge,
    Counter,
}

/// Where a whitelisted scalar INFO field goes.
#[derive(Debug)]
struct Mapping {
    /// Full metric name, `redis_` included, built once.
    metric: String,
    kind: Type,
    /// Unit conversion (`latest_fork_usec` is microseconds, the metric seconds).
    scale: f64,
}

/// Families this collector builds itself besides the INFO field map (which [`is_builtin`] also
/// consults), so a custom command cannot take one of their names.
const STRUCTURED: &[&str] = &[
    "redis_active_time_io_thread_seconds_total",
    "redis_commands_duration_seconds_total",
    "redis_commands_failed_calls_total",
    "redis_commands_rejected_calls_total",
    "redis_commands_total",
    "redis_config_client_output_buffer_limit_bytes",
    "redis_config_client_output_buffer_limit_overcome_seconds",
    "redis_config_io_threads",
    "redis_config_maxclients",
    "redis_config_maxmemory",
    "redis_config_repl_backlog_size",
    "redis_connected_slave_lag_seconds",
    "redis_connected_slave_offset_bytes",
    "redis_db_avg_ttl_seconds",
    "redis_db_keys",
    "redis_db_keys_cached",
    "redis_db_keys_expiring",
    "redis_db_keys_with_expiring_items",
    "redis_errors_total",
    "redis_instance_info",
    "redis_key_size",
    "redis_key_value",
    "redis_keys_count",
    "redis_last_slow_execution_duration_seconds",
    "redis_latency_percentiles_usec",
    "redis_latency_spike_duration_seconds",
    "redis_latency_spike_last",
    "redis_master_last_io_seconds_ago",
    "redis_master_link_up",
    "redis_master_sync_in_progress",
    "redis_slave_info",
    "redis_slave_repl_offset",
    "redis_slowlog_last_id",
    "redis_slowlog_length",
    "redis_start_time_seconds",
    "redis_up",
];

/// Whether the collector itself may build a family called `name` (or one that a summary's
/// `_sum`/`_count` series would clash with).
pub(crate) fn is_builtin(name: &str) -> bool {
    let base = name
        .strip_suffix("_sum")
        .or_else(|| name.strip_suffix("_count"))
        .unwrap_or(name);
    STRUCTURED.contains(&name)
        || STRUCTURED.contains(&base)
        || name.starts_with("redis_cluster_")
        || name.starts_with("redis_exporter_")
        || name.starts_with("fanout_exporter_")
        || FIELDS.values().any(|m| m.metric == name)
}

/// INFO fields exported as a gauge of the same name.
const GAUGES_SAME_NAME: &[&str] = &[
    // Server
    "uptime_in_seconds",
    "process_id",
    "io_threads_active",
    "hz",
    "configured_hz",
    // Clients
    "connected_clients",
    "blocked_clients",
    "tracking_clients",
    "clients_in_timeout_table",
    "pubsub_clients",
    "watching_clients",
    "total_watched_keys",
    "total_blocking_keys",
    "total_blocking_keys_on_nokey",
    "client_longest_output_list",
    "client_biggest_input_buf",
    // Memory
    "mem_fragmentation_ratio",
    "mem_fragmentation_bytes",
    "mem_clients_slaves",
    "mem_clients_normal",
    "allocator_frag_ratio",
    "allocator_frag_bytes",
    "allocator_rss_ratio",
    "allocator_rss_bytes",
    "number_of_cached_scripts",
    "number_of_functions",
    "number_of_libraries",
    "lazyfree_pending_objects",
    "lazyfreed_objects",
    "active_defrag_running",
    // Persistence
    "async_loading",
    "rdb_changes_since_last_save",
    "rdb_bgsave_in_progress",
    "rdb_last_bgsave_status",
    "aof_enabled",
    "aof_rewrite_in_progress",
    "aof_rewrite_scheduled",
    "aof_pending_rewrite",
    "aof_buffer_length",
    "aof_rewrite_buffer_length",
    "aof_pending_bio_fsync",
    "aof_delayed_fsync",
    "aof_last_bgrewrite_status",
    "aof_last_write_status",
    "module_fork_in_progress",
    "module_fork_last_cow_size",
    // Stats
    "pubsub_channels",
    "pubsub_patterns",
    "pubsubshard_channels",
    "tracking_total_keys",
    "tracking_total_items",
    "tracking_total_prefixes",
    "instantaneous_eventloop_cycles_per_sec",
    "instantaneous_eventloop_duration_usec",
    // Replication
    "connected_slaves",
    "master_repl_offset",
    "second_repl_offset",
    "repl_backlog_first_byte_offset",
    "slave_expires_tracked_keys",
    "slave_priority",
    // KeyDB
    "current_client_thread",
];

/// INFO fields exported as a counter of the same name (upstream's counter map, no `_total`).
const COUNTERS_SAME_NAME: &[&str] = &[
    "unexpected_error_replies",
    "total_error_replies",
    "dump_payload_sanitizations",
    "total_reads_processed",
    "total_writes_processed",
    "io_threaded_reads_processed",
    "io_threaded_writes_processed",
    // KeyDB
    "storage_provider_read_hits",
    "storage_provider_read_misses",
];

/// INFO fields exported as a gauge under another name: `(field, metric without redis_, scale)`.
const GAUGES_RENAMED: &[(&str, &str, f64)] = &[
    ("maxclients", "max_clients", 1.0),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
        1.0,
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
        1.0,
    ),
    ("used_memory", "memory_used_bytes", 1.0),
    ("used_memory_rss", "memory_used_rss_bytes", 1.0),
    ("used_memory_peak", "memory_used_peak_bytes", 1.0),
    ("used_memory_lua", "memory_used_lua_bytes", 1.0),
    ("used_memory_overhead", "memory_used_overhead_bytes", 1.0),
    ("used_memory_startup", "memory_used_startup_bytes", 1.0),
    ("used_memory_dataset", "memory_used_dataset_bytes", 1.0),
    ("used_memory_vm_eval", "memory_used_vm_eval_bytes", 1.0),
    (
        "used_memory_scripts_eval",
        "memory_used_scripts_eval_bytes",
        1.0,
    ),
    (
        "used_memory_vm_functions",
        "memory_used_vm_functions_bytes",
        1.0,
    ),
    ("used_memory_scripts", "memory_used_scripts_bytes", 1.0),
    ("used_memory_functions", "memory_used_functions_bytes", 1.0),
    ("used_memory_vm_total", "memory_used_vm_total", 1.0),
    ("maxmemory", "memory_max_bytes", 1.0),
    ("maxmemory_reservation", "memory_max_reservation_bytes", 1.0),
    (
        "maxmemory_desired_reservation",
        "memory_max_reservation_desired_bytes",
        1.0,
    ),
    (
        "maxfragmentationmemory_reservation",
        "memory_max_fragmentation_reservation_bytes",
        1.0,
    ),
    (
        "maxfragmentationmemory_desired_reservation",
        "memory_max_fragmentation_reservation_desired_bytes",
        1.0,
    ),
    ("mem_cluster_links", "mem_cluster_links_bytes", 1.0),
    ("mem_aof_buffer", "mem_aof_buffer_bytes", 1.0),
    (
        "mem_replication_backlog",
        "mem_replication_backlog_bytes",
        1.0,
    ),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
        1.0,
    ),
    (
        "mem_total_replication_buffers",
        "mem_total_replication_buffers_bytes",
        1.0,
    ),
    (
        "mem_overhead_db_hashtable_rehashing",
        "mem_overhead_db_hashtable_rehashing_bytes",
        1.0,
    ),
    ("allocator_active", "allocator_active_bytes", 1.0),
    ("allocator_allocated", "allocator_allocated_bytes", 1.0),
    ("allocator_resident", "allocator_resident_bytes", 1.0),
    ("allocator_muzzy", "allocator_muzzy_bytes", 1.0),
    ("expired_stale_perc", "expired_stale_percentage", 1.0),
    // A current count despite the name; upstream's name is kept.
    (
        "migrate_cached_sockets",
        "migrate_cached_sockets_total",
        1.0,
    ),
    // Upstream needs --include-system-metrics; the memory alerts of redis-mixin divide by it.
    ("total_system_memory", "total_system_memory_bytes", 1.0),
    ("loading", "loading_dump_file", 1.0),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds", 1.0),
    (
        "rdb_last_bgsave_time_sec",
        "rdb_last_bgsave_duration_sec",
        1.0,
    ),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
        1.0,
    ),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes", 1.0),
    (
        "rdb_last_load_keys_expired",
        "rdb_last_load_expired_keys",
        1.0,
    ),
    (
        "rdb_last_load_keys_loaded",
        "rdb_last_load_loaded_keys",
        1.0,
    ),
    (
        "aof_last_rewrite_time_sec",
        "aof_last_rewrite_duration_sec",
        1.0,
    ),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
        1.0,
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes", 1.0),
    ("aof_current_size", "aof_current_size_bytes", 1.0),
    ("aof_base_size", "aof_base_size_bytes", 1.0),
    ("latest_fork_usec", "latest_fork_seconds", 1e-6),
    (
        "current_eviction_exceeded_time",
        "current_eviction_exceeded_time_ms",
        1.0,
    ),
    ("repl_backlog_size", "replication_backlog_bytes", 1.0),
    ("repl_backlog_active", "repl_backlog_is_active", 1.0),
    ("repl_backlog_histlen", "repl_backlog_history_bytes", 1.0),
    // KeyDB: a thread count, a gauge despite the name.
    ("server_threads", "server_threads_total", 1.0),
];

/// INFO fields exported as a counter under another name. The first block is exported as a gauge
/// upstream although the values only grow (redis-compat.md §9); same names, typed right here.
const COUNTERS_RENAMED: &[(&str, &str, f64)] = &[
    ("active_defrag_hits", "defrag_hits", 1.0),
    ("active_defrag_misses", "defrag_misses", 1.0),
    ("active_defrag_key_hits", "defrag_key_hits", 1.0),
    ("active_defrag_key_misses", "defrag_key_misses", 1.0),
    ("rdb_saves", "rdb_saves_total", 1.0),
    ("sync_full", "replica_resyncs_full", 1.0),
    ("sync_partial_ok", "replica_partial_resync_accepted", 1.0),
    ("sync_partial_err", "replica_partial_resync_denied", 1.0),
    (
        "cluster_stats_messages_sent",
        "cluster_messages_sent_total",
        1.0,
    ),
    (
        "cluster_stats_messages_received",
        "cluster_messages_received_total",
        1.0,
    ),
    ("long_lock_waits", "long_lock_waits_total", 1.0),
    // Counters upstream too.
    (
        "total_connections_received",
        "connections_received_total",
        1.0,
    ),
    ("total_commands_processed", "commands_processed_total", 1.0),
    ("rejected_connections", "rejected_connections_total", 1.0),
    ("total_net_input_bytes", "net_input_bytes_total", 1.0),
    ("total_net_output_bytes", "net_output_bytes_total", 1.0),
    (
        "total_net_repl_input_bytes",
        "net_repl_input_bytes_total",
        1.0,
    ),
    (
        "total_net_repl_output_bytes",
        "net_repl_output_bytes_total",
        1.0,
    ),
    ("expired_keys", "expired_keys_total", 1.0),
    ("expired_subkeys", "expired_subkeys_total", 1.0),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
        1.0,
    ),
    (
        "expire_cycle_cpu_milliseconds",
        "expire_cycle_cpu_time_ms_total",
        1.0,
    ),
    ("evicted_keys", "evicted_keys_total", 1.0),
    ("evicted_clients", "evicted_clients_total", 1.0),
    ("evicted_scripts", "evicted_scripts_total", 1.0),
    (
        "total_eviction_exceeded_time",
        "eviction_exceeded_time_ms_total",
        1.0,
    ),
    ("keyspace_hits", "keyspace_hits_total", 1.0),
    ("keyspace_misses", "keyspace_misses_total", 1.0),
    ("eventloop_cycles", "eventloop_cycles_total", 1.0),
    (
        "eventloop_duration_sum",
        "eventloop_duration_sum_usec_total",
        1.0,
    ),
    (
        "eventloop_duration_cmd_sum",
        "eventloop_duration_cmd_sum_usec_total",
        1.0,
    ),
    ("used_cpu_sys", "cpu_sys_seconds_total", 1.0),
    ("used_cpu_user", "cpu_user_seconds_total", 1.0),
    (
        "used_cpu_sys_children",
        "cpu_sys_children_seconds_total",
        1.0,
    ),
    (
        "used_cpu_user_children",
        "cpu_user_children_seconds_total",
        1.0,
    ),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
        1.0,
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
        1.0,
    ),
    (
        "client_query_buffer_limit_disconnections",
        "client_query_buffer_limit_disconnections_total",
        1.0,
    ),
    (
        "client_output_buffer_limit_disconnections",
        "client_output_buffer_limit_disconnections_total",
        1.0,
    ),
    ("reply_buffer_shrinks", "reply_buffer_shrinks_total", 1.0),
    ("reply_buffer_expands", "reply_buffer_expands_total", 1.0),
    (
        "acl_access_denied_auth",
        "acl_access_denied_auth_total",
        1.0,
    ),
    ("acl_access_denied_cmd", "acl_access_denied_cmd_total", 1.0),
    ("acl_access_denied_key", "acl_access_denied_key_total", 1.0),
    (
        "acl_access_denied_channel",
        "acl_access_denied_channel_total",
        1.0,
    ),
    // Valkey 9.1 reports active time in microseconds (like its other per-thread times).
    (
        "used_active_time_main_thread",
        "active_time_main_thread_seconds_total",
        1e-6,
    ),
    // KeyDB
    ("cached_keys", "cached_keys_total", 1.0),
];

/// The whitelist, keyed by INFO field; built once instead of matching names per line.
static FIELDS: LazyLock<HashMap<&'static str, Mapping>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    let mut add = |field: &'static str, metric: &str, kind: Type, scale: f64| {
        map.insert(
            field,
            Mapping {
                metric: format!("redis_{metric}"),
                kind,
                scale,
            },
        );
    };
    for &field in GAUGES_SAME_NAME {
        add(field, field, Type::Gauge, 1.0);
    }
    for &field in COUNTERS_SAME_NAME {
        add(field, field, Type::Counter, 1.0);
    }
    for &(field, metric, scale) in GAUGES_RENAMED {
        add(field, metric, Type::Gauge, scale);
    }
    for &(field, metric, scale) in COUNTERS_RENAMED {
        add(field, metric, Type::Counter, scale);
    }
    map
});

/// Upper bound on the zero-filled databases: `databases` comes from the server's config, and a
/// typo there (or a hostile server) must not make us emit millions of series.
const MAX_ZERO_FILL_DATABASES: u32 = 4096;

/// redis_exporter's value rule: `ok`/`true` are 1, `err`/`fail`/`false` are 0, anything else must
/// parse as a number.
fn value(raw: &str) -> Option<f64> {
    match raw {
        "ok" | "true" => Some(1.0),
        "err" | "fail" | "false" => Some(0.0),
        _ => raw.parse::<f64>().ok(),
    }
}

/// The builder refuses (and drops the family for) a negative or non-finite counter sample.
fn counter_ok(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// `a=1,b=2` into pairs, in order; parts without `=` are skipped.
fn pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split(',').filter_map(|part| part.split_once('='))
}

/// The value of `name` in an `a=1,b=2` list, as a number.
fn pair_value(raw: &str, name: &str) -> Option<f64> {
    pairs(raw)
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse::<f64>().ok())
}

/// The value of `name` in an `a=1,b=2` list, as text.
fn pair_text<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    pairs(raw).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// `prefix` followed by decimal digits only (`db0`, `slave12`).
fn numbered<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `master_<suffix>` or KeyDB's multi-master `master_<N>_<suffix>`.
fn is_master_field(key: &str, suffix: &str) -> bool {
    let Some(rest) = key.strip_prefix("master_") else {
        return false;
    };
    if rest == suffix {
        return true;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && rest
            .get(digits..)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|r| r == suffix)
}

/// What the replication walk has seen so far: upstream labels the replica-side series with the
/// most recent `master[_N]_host`/`_port`, which is how KeyDB's multi-master lines pair up.
#[derive(Default)]
struct MasterLabels {
    host: String,
    port: String,
}

/// The families made from INFO: every mapped field, keyspace, commandstats, latencystats,
/// errorstats, replication, `redis_instance_info`, `redis_start_time_seconds`. `now` is the Unix time
/// of the scrape. `databases` (from `CONFIG GET databases`, when known) zero-fills `redis_db_keys` and
/// `redis_db_keys_expiring` for empty databases, as redis_exporter does.
pub(crate) fn families(info: &Info, now: f64, databases: Option<u32>, out: &mut Families) {
    let mut master = MasterLabels::default();
    // First occurrence wins everywhere: a duplicated line must not produce a duplicated series.
    let mut seen_fields: HashSet<&str> = HashSet::new();
    let mut seen_dbs: HashSet<&str> = HashSet::new();
    let mut seen_cmds: HashSet<&str> = HashSet::new();
    let mut seen_errors: HashSet<&str> = HashSet::new();
    let mut seen_latencies: HashSet<&str> = HashSet::new();
    let mut seen_slaves: HashSet<(&str, &str, &str)> = HashSet::new();
    let mut seen_masters: HashSet<(&str, String, String)> = HashSet::new();

    for (section, key, raw) in &info.fields {
        let (section, key, raw) = (section.as_str(), key.as_str(), raw.as_str());
        if is_master_field(key, "host") {
            master.host = raw.to_owned();
        } else if is_master_field(key, "port") {
            master.port = raw.to_owned();
        }
        match section {
            "keyspace" => {
                if numbered(key, "db").is_some() && seen_dbs.insert(key) && !keyspace(key, raw, out)
                {
                    seen_dbs.remove(key);
                }
                continue;
            }
            "commandstats" => {
                if let Some(cmd) = key.strip_prefix("cmdstat_")
                    && seen_cmds.insert(cmd)
                {
                    commandstat(cmd, raw, out);
                }
                continue;
            }
            "errorstats" => {
                if let Some(err) = key.strip_prefix("errorstat_")
                    && let Some(count) = pair_value(raw, "count").filter(|v| counter_ok(*v))
                    && seen_errors.insert(err)
                {
                    out.counter(
                        "redis_errors_total",
                        "INFO errorstats: error replies by prefix",
                    )
                    .set(&[("err", err)], count);
                }
                continue;
            }
            "latencystats" => {
                if let Some(cmd) = key.strip_prefix("latency_percentiles_usec_")
                    && seen_latencies.insert(cmd)
                {
                    latency_percentiles(info, cmd, raw, out);
                }
                continue;
            }
            // Valkey 9.1 puts CLUSTER INFO into INFO ALL; `cluster_families` exports it.
            "cluster info" => continue,
            // The replication series; the section's plain fields fall through to the whitelist.
            "replication"
                if replication(key, raw, &master, &mut seen_slaves, &mut seen_masters, out) =>
            {
                continue;
            }
            _ => {}
        }
        if !seen_fields.insert(key) {
            continue;
        }
        scalar(section, key, raw, now, out);
    }

    if let Some(databases) = databases {
        for index in 0..databases.min(MAX_ZERO_FILL_DATABASES) {
            let db = format!("db{index}");
            if !seen_dbs.contains(db.as_str()) {
                db_keys(out, &db, 0.0, 0.0);
            }
        }
    }

    instance_info(info, out);
}

fn db_keys(out: &mut Families, db: &str, keys: f64, expiring: f64) {
    out.gauge("redis_db_keys", "INFO keyspace: keys in the database")
        .set(&[("db", db)], keys);
    out.gauge(
        "redis_db_keys_expiring",
        "INFO keyspace: keys with an expiry in the database",
    )
    .set(&[("db", db)], expiring);
}

/// One `dbN:keys=..,expires=..,avg_ttl=..[,...]` line, read by field name (positions differ between
/// Redis, Valkey, KeyDB and Dragonfly). False when `keys` or `expires` is missing or unreadable.
fn keyspace(db: &str, raw: &str, out: &mut Families) -> bool {
    let (Some(keys), Some(expires)) = (pair_value(raw, "keys"), pair_value(raw, "expires")) else {
        return false;
    };
    db_keys(out, db, keys, expires);
    let labels = [("db", db)];
    if let Some(ttl) = pair_value(raw, "avg_ttl") {
        out.gauge(
            "redis_db_avg_ttl_seconds",
            "INFO keyspace: average time to live of keys with an expiry",
        )
        .set(&labels, ttl / 1000.0);
    }
    if let Some(cached) = pair_value(raw, "cached_keys") {
        out.gauge("redis_db_keys_cached", "INFO keyspace: KeyDB cached keys")
            .set(&labels, cached);
    }
    if let Some(items) =
        pair_value(raw, "subexpiry").or_else(|| pair_value(raw, "keys_with_volatile_items"))
    {
        out.gauge(
            "redis_db_keys_with_expiring_items",
            "INFO keyspace: keys holding fields with an expiry (subexpiry, keys_with_volatile_items)",
        )
        .set(&labels, items);
    }
    true
}

/// One `latency_percentiles_usec_<cmd>:p50=..,p99=..,p99.9=..` line; count and sum come from the
/// command's `cmdstat_<cmd>` line (calls, usec), as redis_exporter takes them.
fn latency_percentiles(info: &Info, cmd: &str, raw: &str, out: &mut Families) {
    let quantiles: Vec<(f64, f64)> = pairs(raw)
        .filter_map(|(k, v)| {
            let q = k.strip_prefix('p')?.parse::<f64>().ok()?;
            let v = v.parse::<f64>().ok()?;
            (q.is_finite() && v.is_finite()).then_some((q, v))
        })
        .collect();
    if quantiles.is_empty() {
        return;
    }
    let stats = info.get(&format!("cmdstat_{cmd}")).unwrap_or_default();
    let count = pair_value(stats, "calls")
        .filter(|c| counter_ok(*c))
        .unwrap_or_default();
    let sum = pair_value(stats, "usec")
        .filter(|s| counter_ok(*s))
        .unwrap_or_default();
    out.summary(
        "redis_latency_percentiles_usec",
        "INFO latencystats: latency percentiles per command, in microseconds",
    )
    .quantiles(&[("cmd", cmd)], &quantiles, sum, count as u64);
}

/// One `cmdstat_<cmd>:calls=..,usec=..[,rejected_calls=..,failed_calls=..]` line. `calls` and
/// `usec` are required, as upstream; the 6.2+ fields are added when present.
fn commandstat(cmd: &str, raw: &str, out: &mut Families) {
    let calls = pair_value(raw, "calls").filter(|v| counter_ok(*v));
    let usec = pair_value(raw, "usec").filter(|v| counter_ok(*v));
    let (Some(calls), Some(usec)) = (calls, usec) else {
        return;
    };
    let labels = [("cmd", cmd)];
    out.counter(
        "redis_commands_total",
        "INFO commandstats: calls per command",
    )
    .set(&labels, calls);
    out.counter(
        "redis_commands_duration_seconds_total",
        "INFO commandstats: time spent per command",
    )
    .set(&labels, usec / 1e6);
    if let Some(rejected) = pair_value(raw, "rejected_calls").filter(|v| counter_ok(*v)) {
        out.counter(
            "redis_commands_rejected_calls_total",
            "INFO commandstats: calls rejected before execution per command",
        )
        .set(&labels, rejected);
    }
    if let Some(failed) = pair_value(raw, "failed_calls").filter(|v| counter_ok(*v)) {
        out.counter(
            "redis_commands_failed_calls_total",
            "INFO commandstats: calls that failed during execution per command",
        )
        .set(&labels, failed);
    }
}

/// The replica- and master-side series of the Replication section. True when the field was one of
/// them (and is not also a plain whitelisted field).
fn replication<'a>(
    key: &'a str,
    raw: &'a str,
    master: &MasterLabels,
    seen_slaves: &mut HashSet<(&'a str, &'a str, &'a str)>,
    seen_masters: &mut HashSet<(&'a str, String, String)>,
    out: &mut Families,
) -> bool {
    let master_labels = [
        ("master_host", master.host.as_str()),
        ("master_port", master.port.as_str()),
    ];
    let direct = if is_master_field(key, "link_status") {
        Some((
            "redis_master_link_up",
            "INFO replication: 1 when the link to the master is up",
            Some(if raw == "up" { 1.0 } else { 0.0 }),
        ))
    } else if is_master_field(key, "last_io_seconds_ago") {
        Some((
            "redis_master_last_io_seconds_ago",
            "INFO replication master_last_io_seconds_ago",
            value(raw),
        ))
    } else if is_master_field(key, "sync_in_progress") {
        Some((
            "redis_master_sync_in_progress",
            "INFO replication master_sync_in_progress",
            value(raw),
        ))
    } else if key == "slave_repl_offset" {
        Some((
            "redis_slave_repl_offset",
            "INFO replication slave_repl_offset",
            value(raw),
        ))
    } else {
        None
    };
    if let Some((name, help, v)) = direct {
        // Two identical master host/port pairs would make duplicate series; keep the first.
        if let Some(v) = v
            && seen_masters.insert((name, master.host.clone(), master.port.clone()))
        {
            out.gauge(name, help).set(&master_labels, v);
        }
        return true;
    }
    if numbered(key, "slave").is_some() {
        let ip = pair_text(raw, "ip").unwrap_or_default();
        let port = pair_text(raw, "port").unwrap_or_default();
        let state = pair_text(raw, "state").unwrap_or_default();
        let Some(offset) = pair_value(raw, "offset") else {
            return true;
        };
        // Two replicas behind one NAT address report the same ip:port (helm/charts#16622).
        if !seen_slaves.insert((ip, port, state)) {
            return true;
        }
        let labels = [
            ("slave_ip", ip),
            ("slave_port", port),
            ("slave_state", state),
        ];
        out.gauge(
            "redis_connected_slave_offset_bytes",
            "INFO replication: replication offset acknowledged by a replica",
        )
        .set(&labels, offset);
        // No `lag` before Redis 3.0.
        if let Some(lag) = pair_value(raw, "lag") {
            out.gauge(
                "redis_connected_slave_lag_seconds",
                "INFO replication: seconds since a replica last acknowledged",
            )
            .set(&labels, lag);
        }
        return true;
    }
    false
}

/// A plain `key:value` field: the whitelist maps, the Server extras, `cluster_*` and the per-thread
/// active times. Everything else is dropped.
fn scalar(section: &str, key: &str, raw: &str, now: f64, out: &mut Families) {
    if key == "uptime_in_seconds"
        && let Some(uptime) = value(raw).filter(|v| v.is_finite())
    {
        out.gauge(
            "redis_start_time_seconds",
            "Unix time the server started (scrape time minus INFO server uptime_in_seconds)",
        )
        .set(&[], now - uptime);
    }
    if let Some(mapping) = FIELDS.get(key) {
        let Some(v) = value(raw).map(|v| v * mapping.scale) else {
            return;
        };
        let help = format!("INFO {section} {key}");
        match mapping.kind {
            Type::Gauge => {
                out.gauge(&mapping.metric, &help).set(&[], v);
            }
            Type::Counter if counter_ok(v) => {
                out.counter(&mapping.metric, &help).set(&[], v);
            }
            Type::Counter => {}
        }
        return;
    }
    if let Some(thread) = numbered(key, "used_active_time_io_thread_") {
        if let Some(v) = value(raw).map(|v| v * 1e-6).filter(|v| counter_ok(*v)) {
            out.counter(
                "redis_active_time_io_thread_seconds_total",
                "INFO stats used_active_time_io_thread_N: busy time per I/O thread",
            )
            .set(&[("thread", thread)], v);
        }
        return;
    }
    if key.starts_with("cluster_") {
        cluster_gauge(&format!("INFO {section} {key}"), key, raw, out);
    }
}

/// `redis_<key>` for a `cluster_*` field, which upstream passes through as a gauge.
fn cluster_gauge(help: &str, key: &str, raw: &str, out: &mut Families) {
    let name = format!("redis_{key}");
    // Field names come from the server; an odd one must not become an invalid family.
    if !is_valid_metric_name(&name) {
        return;
    }
    if let Some(v) = value(raw) {
        out.gauge(&name, help).set(&[], v);
    }
}

/// `redis_instance_info` (and `redis_slave_info` on replicas), with upstream's label set. `run_id`,
/// `process_id` and `master_replid` start a new series on every restart or failover; upstream has
/// them and alerts count `redis_instance_info{role="master"}`, so they stay.
fn instance_info(info: &Info, out: &mut Families) {
    if info.fields.is_empty() {
        return;
    }
    let get = |key: &str| info.get(key).unwrap_or_default();
    let role = get("role");
    // Valkey 8 renamed `redis_mode` to `server_mode`; the label keeps upstream's name.
    let mode = info
        .get("redis_mode")
        .or_else(|| info.get("server_mode"))
        .unwrap_or_default();
    let mut labels = vec![
        ("role", role),
        ("redis_version", get("redis_version")),
        ("redis_build_id", get("redis_build_id")),
        ("redis_mode", mode),
        ("os", get("os")),
        ("maxmemory_policy", get("maxmemory_policy")),
        ("tcp_port", get("tcp_port")),
        ("run_id", get("run_id")),
        ("process_id", get("process_id")),
        ("master_replid", get("master_replid")),
    ];
    for optional in ["valkey_version", "valkey_release_stage"] {
        if let Some(v) = info.get(optional) {
            labels.push((optional, v));
        }
    }
    // Managed services (ElastiCache) fill it; empty elsewhere, and then left out as upstream does.
    if let Some(zone) = info.get("availability_zone").filter(|z| !z.is_empty()) {
        labels.push(("availability_zone", zone));
    }
    out.info(
        "redis_instance_info",
        "Information about the Redis instance (INFO server and replication)",
        &labels,
    );
    if role == "slave" {
        let read_only = info
            .get("slave_read_only")
            .or_else(|| info.get("replica_read_only"))
            .unwrap_or_default();
        out.info(
            "redis_slave_info",
            "Information about the Redis replica (INFO replication)",
            &[
                ("master_host", get("master_host")),
                ("master_port", get("master_port")),
                ("read_only", read_only),
            ],
        );
    }
}

/// `redis_config_*` from `CONFIG GET` name/value pairs.
pub(crate) fn config_families(pairs: &[(String, String)], out: &mut Families) {
    let mut seen: HashSet<&str> = HashSet::new();
    for (name, raw) in pairs {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let metric = match name.as_str() {
            "maxmemory" => "redis_config_maxmemory",
            "maxclients" => "redis_config_maxclients",
            "io-threads" => "redis_config_io_threads",
            "repl-backlog-size" => "redis_config_repl_backlog_size",
            "client-output-buffer-limit" => {
                client_output_buffer_limits(raw, out);
                continue;
            }
            _ => continue,
        };
        if let Ok(v) = raw.trim().parse::<f64>() {
            out.gauge(metric, &format!("CONFIG GET {name}")).set(&[], v);
        }
    }
}

/// `normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60`: per class the hard
/// limit, the soft limit (bytes) and the soft limit's seconds. The class label is what the server
/// says (`slave` on Redis 7.0, as upstream exports it).
fn client_output_buffer_limits(raw: &str, out: &mut Families) {
    let words: Vec<&str> = raw.split_ascii_whitespace().collect();
    let mut seen: HashSet<&str> = HashSet::new();
    for group in words.chunks_exact(4) {
        let [class, hard, soft, seconds] = group else {
            continue;
        };
        if !seen.insert(class) {
            continue;
        }
        let bytes_help = "CONFIG GET client-output-buffer-limit: limit in bytes per client class";
        for (limit, raw) in [("hard", hard), ("soft", soft)] {
            if let Ok(v) = raw.parse::<f64>() {
                out.gauge("redis_config_client_output_buffer_limit_bytes", bytes_help)
                    .set(&[("class", class), ("limit", limit)], v);
            }
        }
        if let Ok(v) = seconds.parse::<f64>() {
            out.gauge(
                "redis_config_client_output_buffer_limit_overcome_seconds",
                "CONFIG GET client-output-buffer-limit: seconds over the soft limit before disconnect",
            )
            .set(&[("class", class), ("limit", "soft")], v);
        }
    }
}

/// `redis_latency_spike_last` and `redis_latency_spike_duration_seconds` from `LATENCY LATEST`.
pub(crate) fn latency_families(events: &[LatencyEvent], out: &mut Families) {
    let mut seen: HashSet<&str> = HashSet::new();
    for event in events {
        if !seen.insert(event.event.as_str()) {
            continue;
        }
        let labels = [("event_name", event.event.as_str())];
        let (timestamp, latest) = (event.timestamp as f64, event.latest_ms as f64);
        out.gauge(
            "redis_latency_spike_last",
            "LATENCY LATEST: Unix time of the latest latency spike per event",
        )
        .set(&labels, timestamp);
        out.gauge(
            "redis_latency_spike_duration_seconds",
            "LATENCY LATEST: duration of the latest latency spike per event",
        )
        .set(&labels, latest / 1000.0);
    }
}

/// `redis_slowlog_length`, and from the newest entry `redis_slowlog_last_id` and
/// `redis_last_slow_execution_duration_seconds` (`last` is `(id, duration in microseconds)`).
/// With an empty slow log the last two are 0, as redis_exporter reports them.
pub(crate) fn slowlog_families(length: i64, last: Option<(i64, i64)>, out: &mut Families) {
    let (id, micros) = last.unwrap_or((0, 0));
    let (length, id, micros) = (length as f64, id as f64, micros as f64);
    out.gauge(
        "redis_slowlog_length",
        "SLOWLOG LEN: entries in the slow log",
    )
    .set(&[], length);
    out.gauge(
        "redis_slowlog_last_id",
        "SLOWLOG GET 1: id of the newest slow log entry",
    )
    .set(&[], id);
    out.gauge(
        "redis_last_slow_execution_duration_seconds",
        "SLOWLOG GET 1: execution time of the newest slow log entry",
    )
    .set(&[], micros / 1e6);
}

/// The `redis_cluster_*` families from `CLUSTER INFO` text (same `key:value` lines as INFO).
pub(crate) fn cluster_families(text: &str, out: &mut Families) {
    let info = Info::parse(text);
    let mut seen: HashSet<&str> = HashSet::new();
    for (_, key, raw) in &info.fields {
        // Only `cluster_*` lines: the text comes from the server, and an INFO-like line such as
        // `uptime_in_seconds` must not turn into an INFO family here.
        if !key.starts_with("cluster_") || !seen.insert(key.as_str()) {
            continue;
        }
        let help = format!("CLUSTER INFO {key}");
        if let Some(mapping) = FIELDS.get(key.as_str()) {
            if let Some(v) = value(raw)
                .map(|v| v * mapping.scale)
                .filter(|v| mapping.kind == Type::Gauge || counter_ok(*v))
            {
                match mapping.kind {
                    Type::Gauge => out.gauge(&mapping.metric, &help).set(&[], v),
                    Type::Counter => out.counter(&mapping.metric, &help).set(&[], v),
                };
            }
        } else {
            cluster_gauge(&help, key, raw, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::validate;
    use prometheus::proto::{MetricFamily, MetricType};

    const PRIMARY: &str = include_str!("testdata/redis-7.0-primary-info-all.txt");
    const REPLICA: &str = include_str!("testdata/redis-7.0-replica-info-all.txt");
    const REDIS6: &str = include_str!("testdata/redis-6.0-info.txt");
    const KEYDB: &str = include_str!("testdata/keydb-6.3-info.txt");
    const VALKEY: &str = include_str!("testdata/valkey-8.1-info-server.txt");
    const NOW: f64 = 1_795_627_000.0;

    fn build(f: impl FnOnce(&mut Families)) -> Vec<MetricFamily> {
        let mut out = Families::new();
        f(&mut out);
        let families = out.finish();
        for family in &families {
            assert_eq!(validate(family), Ok(()), "{}", family.name());
            assert_ne!(family.get_field_type(), MetricType::UNTYPED);
        }
        families
    }

    fn info_families(text: &str, databases: Option<u32>) -> Vec<MetricFamily> {
        build(|out| families(&Info::parse(text), NOW, databases, out))
    }

    fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    fn names(families: &[MetricFamily]) -> Vec<&str> {
        let mut names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names
    }

    /// The value of the sample with exactly these labels (order-insensitive).
    fn value_of(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
        let family = family(families, name);
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort_unstable();
        for metric in family.get_metric() {
            let mut have: Vec<(&str, &str)> = metric
                .get_label()
                .iter()
                .map(|p| (p.name(), p.value()))
                .collect();
            have.sort_unstable();
            if have == want {
                return match family.get_field_type() {
                    MetricType::COUNTER => metric.get_counter().get_value(),
                    _ => metric.get_gauge().get_value(),
                };
            }
        }
        panic!("{name} has no sample {labels:?}");
    }

    fn kind(families: &[MetricFamily], name: &str) -> MetricType {
        family(families, name).get_field_type()
    }

    fn label_names(families: &[MetricFamily], name: &str) -> Vec<String> {
        let mut names: Vec<String> = family(families, name).get_metric()[0]
            .get_label()
            .iter()
            .map(|p| p.name().to_owned())
            .collect();
        names.sort_unstable();
        names
    }

    fn labels_of(families: &[MetricFamily], name: &str) -> HashMap<String, String> {
        family(families, name).get_metric()[0]
            .get_label()
            .iter()
            .map(|p| (p.name().to_owned(), p.value().to_owned()))
            .collect()
    }

    #[test]
    fn parse_sections_separators_and_junk() {
        let info = Info::parse(
            "# Server\r\nredis_version:7.0.15\r\nexecutable:/a:b\r\n\r\n#Stats\nno colon here\n:empty_key\n  padded : 1 \r\n# Keyspace\ndb0:keys=1,expires=0\n",
        );
        assert_eq!(
            info.fields,
            [
                ("server", "redis_version", "7.0.15"),
                ("server", "executable", "/a:b"),
                ("stats", "padded", "1"),
                ("keyspace", "db0", "keys=1,expires=0"),
            ]
            .map(|(s, k, v)| (s.to_owned(), k.to_owned(), v.to_owned()))
        );
        assert_eq!(info.get("executable"), Some("/a:b"));
        assert_eq!(info.get("missing"), None);
        assert!(Info::parse("").fields.is_empty());
    }

    #[test]
    fn latency_percentiles_are_a_summary_with_redis_exporters_quantiles() {
        let f = info_families(PRIMARY, None);
        let family = f
            .iter()
            .find(|f| f.name() == "redis_latency_percentiles_usec")
            .expect("latency family");
        assert_eq!(family.get_field_type(), MetricType::SUMMARY);
        let get = family
            .get_metric()
            .iter()
            .find(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "cmd" && l.value() == "get")
            })
            .expect("get");
        let s = get.get_summary();
        let quantiles: Vec<(f64, f64)> = s
            .get_quantile()
            .iter()
            .map(|q| (q.quantile(), q.value()))
            .collect();
        assert_eq!(quantiles, [(50.0, 6.015), (99.0, 6.015), (99.9, 6.015)]);
        // Count and sum from `cmdstat_get:calls=1,usec=6`.
        assert_eq!((s.sample_count(), s.sample_sum()), (1, 6.0));
        assert!(
            family
                .get_metric()
                .iter()
                .any(|m| m.get_label().iter().any(|l| l.value() == "config|get")),
            "subcommands keep their `|`"
        );
    }

    #[test]
    fn primary_fixture_families() {
        let f = info_families(PRIMARY, Some(16));
        assert_eq!(
            names(&f),
            [
                "redis_active_defrag_running",
                "redis_allocator_active_bytes",
                "redis_allocator_allocated_bytes",
                "redis_allocator_frag_bytes",
                "redis_allocator_frag_ratio",
                "redis_allocator_resident_bytes",
                "redis_allocator_rss_bytes",
                "redis_allocator_rss_ratio",
                "redis_aof_current_rewrite_duration_sec",
                "redis_aof_enabled",
                "redis_aof_last_bgrewrite_status",
                "redis_aof_last_cow_size_bytes",
                "redis_aof_last_rewrite_duration_sec",
                "redis_aof_last_write_status",
                "redis_aof_rewrite_in_progress",
                "redis_aof_rewrite_scheduled",
                "redis_async_loading",
                "redis_blocked_clients",
                "redis_client_recent_max_input_buffer_bytes",
                "redis_client_recent_max_output_buffer_bytes",
                "redis_clients_in_timeout_table",
                "redis_cluster_connections",
                "redis_cluster_enabled",
                "redis_commands_duration_seconds_total",
                "redis_commands_failed_calls_total",
                "redis_commands_processed_total",
                "redis_commands_rejected_calls_total",
                "redis_commands_total",
                "redis_configured_hz",
                "redis_connected_clients",
                "redis_connected_slave_lag_seconds",
                "redis_connected_slave_offset_bytes",
                "redis_connected_slaves",
                "redis_connections_received_total",
                "redis_cpu_sys_children_seconds_total",
                "redis_cpu_sys_main_thread_seconds_total",
                "redis_cpu_sys_seconds_total",
                "redis_cpu_user_children_seconds_total",
                "redis_cpu_user_main_thread_seconds_total",
                "redis_cpu_user_seconds_total",
                "redis_current_eviction_exceeded_time_ms",
                "redis_db_avg_ttl_seconds",
                "redis_db_keys",
                "redis_db_keys_expiring",
                "redis_defrag_hits",
                "redis_defrag_key_hits",
                "redis_defrag_key_misses",
                "redis_defrag_misses",
                "redis_dump_payload_sanitizations",
                "redis_errors_total",
                "redis_evicted_clients_total",
                "redis_evicted_keys_total",
                "redis_eviction_exceeded_time_ms_total",
                "redis_expire_cycle_cpu_time_ms_total",
                "redis_expired_keys_total",
                "redis_expired_stale_percentage",
                "redis_expired_time_cap_reached_total",
                "redis_hz",
                "redis_instance_info",
                "redis_io_threaded_reads_processed",
                "redis_io_threaded_writes_processed",
                "redis_io_threads_active",
                "redis_keyspace_hits_total",
                "redis_keyspace_misses_total",
                "redis_latency_percentiles_usec",
                "redis_latest_fork_seconds",
                "redis_lazyfree_pending_objects",
                "redis_lazyfreed_objects",
                "redis_loading_dump_file",
                "redis_master_repl_offset",
                "redis_max_clients",
                "redis_mem_aof_buffer_bytes",
                "redis_mem_clients_normal",
                "redis_mem_clients_slaves",
                "redis_mem_cluster_links_bytes",
                "redis_mem_fragmentation_bytes",
                "redis_mem_fragmentation_ratio",
                "redis_mem_not_counted_for_eviction_bytes",
                "redis_mem_replication_backlog_bytes",
                "redis_mem_total_replication_buffers_bytes",
                "redis_memory_max_bytes",
                "redis_memory_used_bytes",
                "redis_memory_used_dataset_bytes",
                "redis_memory_used_functions_bytes",
                "redis_memory_used_lua_bytes",
                "redis_memory_used_overhead_bytes",
                "redis_memory_used_peak_bytes",
                "redis_memory_used_rss_bytes",
                "redis_memory_used_scripts_bytes",
                "redis_memory_used_scripts_eval_bytes",
                "redis_memory_used_startup_bytes",
                "redis_memory_used_vm_eval_bytes",
                "redis_memory_used_vm_functions_bytes",
                "redis_memory_used_vm_total",
                "redis_migrate_cached_sockets_total",
                "redis_module_fork_in_progress",
                "redis_module_fork_last_cow_size",
                "redis_net_input_bytes_total",
                "redis_net_output_bytes_total",
                "redis_net_repl_input_bytes_total",
                "redis_net_repl_output_bytes_total",
                "redis_number_of_cached_scripts",
                "redis_number_of_functions",
                "redis_number_of_libraries",
                "redis_process_id",
                "redis_pubsub_channels",
                "redis_pubsub_patterns",
                "redis_pubsubshard_channels",
                "redis_rdb_bgsave_in_progress",
                "redis_rdb_changes_since_last_save",
                "redis_rdb_current_bgsave_duration_sec",
                "redis_rdb_last_bgsave_duration_sec",
                "redis_rdb_last_bgsave_status",
                "redis_rdb_last_cow_size_bytes",
                "redis_rdb_last_load_expired_keys",
                "redis_rdb_last_load_loaded_keys",
                "redis_rdb_last_save_timestamp_seconds",
                "redis_rdb_saves_total",
                "redis_rejected_connections_total",
                "redis_repl_backlog_first_byte_offset",
                "redis_repl_backlog_history_bytes",
                "redis_repl_backlog_is_active",
                "redis_replica_partial_resync_accepted",
                "redis_replica_partial_resync_denied",
                "redis_replica_resyncs_full",
                "redis_replication_backlog_bytes",
                "redis_reply_buffer_expands_total",
                "redis_reply_buffer_shrinks_total",
                "redis_second_repl_offset",
                "redis_slave_expires_tracked_keys",
                "redis_start_time_seconds",
                "redis_total_error_replies",
                "redis_total_reads_processed",
                "redis_total_system_memory_bytes",
                "redis_total_writes_processed",
                "redis_tracking_clients",
                "redis_tracking_total_items",
                "redis_tracking_total_keys",
                "redis_tracking_total_prefixes",
                "redis_unexpected_error_replies",
                "redis_uptime_in_seconds",
            ]
        );
    }

    #[test]
    fn primary_fixture_values_types_and_labels() {
        let f = info_families(PRIMARY, Some(16));
        // Counters, including the ones upstream types as gauges.
        for name in [
            "redis_commands_processed_total",
            "redis_rdb_saves_total",
            "redis_replica_resyncs_full",
            "redis_replica_partial_resync_accepted",
            "redis_replica_partial_resync_denied",
            "redis_defrag_hits",
            "redis_defrag_key_misses",
            "redis_expired_time_cap_reached_total",
            "redis_total_error_replies",
            "redis_commands_total",
            "redis_errors_total",
            "redis_cpu_user_seconds_total",
        ] {
            assert_eq!(kind(&f, name), MetricType::COUNTER, "{name}");
        }
        for name in [
            "redis_memory_used_bytes",
            "redis_migrate_cached_sockets_total",
            "redis_memory_used_vm_total",
            "redis_db_keys",
            "redis_instance_info",
        ] {
            assert_eq!(kind(&f, name), MetricType::GAUGE, "{name}");
        }
        assert_eq!(value_of(&f, "redis_commands_processed_total", &[]), 13.0);
        assert_eq!(value_of(&f, "redis_replica_resyncs_full", &[]), 1.0);
        assert_eq!(value_of(&f, "redis_rdb_last_bgsave_status", &[]), 1.0);
        assert_eq!(value_of(&f, "redis_memory_used_bytes", &[]), 1_157_576.0);
        assert!((value_of(&f, "redis_latest_fork_seconds", &[]) - 0.00059).abs() < 1e-12);
        let uptime = value_of(&f, "redis_uptime_in_seconds", &[]);
        assert_eq!(value_of(&f, "redis_start_time_seconds", &[]), NOW - uptime);
        assert_eq!(value_of(&f, "redis_hz", &[]), 10.0);

        // Keyspace, with the zero-fill up to `databases`.
        assert_eq!(value_of(&f, "redis_db_keys", &[("db", "db0")]), 2.0);
        assert_eq!(
            value_of(&f, "redis_db_keys_expiring", &[("db", "db0")]),
            0.0
        );
        assert_eq!(value_of(&f, "redis_db_keys", &[("db", "db15")]), 0.0);
        assert_eq!(family(&f, "redis_db_keys").get_metric().len(), 16);
        assert_eq!(family(&f, "redis_db_keys_expiring").get_metric().len(), 16);
        assert_eq!(family(&f, "redis_db_avg_ttl_seconds").get_metric().len(), 1);

        // Commandstats keep the `|` of subcommands; duration in seconds.
        let cmd = [("cmd", "config|get")];
        assert_eq!(value_of(&f, "redis_commands_total", &cmd), 1.0);
        assert!(
            (value_of(&f, "redis_commands_duration_seconds_total", &cmd) - 16e-6).abs() < 1e-12
        );
        assert_eq!(
            value_of(&f, "redis_commands_rejected_calls_total", &cmd),
            0.0
        );
        assert_eq!(value_of(&f, "redis_commands_failed_calls_total", &cmd), 0.0);
        assert_eq!(
            value_of(&f, "redis_commands_total", &[("cmd", "replconf")]),
            6.0
        );
        assert_eq!(family(&f, "redis_commands_total").get_metric().len(), 8);
        assert_eq!(value_of(&f, "redis_errors_total", &[("err", "ERR")]), 1.0);

        // Master side of replication.
        let replica = [
            ("slave_ip", "127.0.0.1"),
            ("slave_port", "36380"),
            ("slave_state", "online"),
        ];
        assert_eq!(
            value_of(&f, "redis_connected_slave_offset_bytes", &replica),
            95.0
        );
        assert_eq!(
            value_of(&f, "redis_connected_slave_lag_seconds", &replica),
            1.0
        );
        assert!(f.iter().all(|x| x.name() != "redis_master_link_up"));
        assert!(f.iter().all(|x| x.name() != "redis_slave_info"));

        let labels = labels_of(&f, "redis_instance_info");
        let expected: HashMap<String, String> = [
            ("role", "master"),
            ("redis_version", "7.0.15"),
            ("redis_build_id", "ae4d7c971a948f0"),
            ("redis_mode", "standalone"),
            ("os", "Linux 6.18.44-fc-v669 x86_64"),
            ("maxmemory_policy", "noeviction"),
            ("tcp_port", "36379"),
            ("run_id", "efbe815df9d873bf83fe5642cc87cec0ea0b6d2c"),
            ("process_id", "27328"),
            ("master_replid", "ca4e659c0e7be652a22422b696d87ccdf827bb79"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(labels, expected);
        let info = family(&f, "redis_instance_info").get_metric();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].get_gauge().get_value(), 1.0);
    }

    #[test]
    fn without_databases_only_reported_dbs() {
        let f = info_families(PRIMARY, None);
        assert_eq!(family(&f, "redis_db_keys").get_metric().len(), 1);
        let f = info_families(PRIMARY, Some(u32::MAX));
        assert_eq!(
            family(&f, "redis_db_keys").get_metric().len(),
            MAX_ZERO_FILL_DATABASES as usize
        );
    }

    #[test]
    fn replica_fixture() {
        let f = info_families(REPLICA, Some(16));
        let master = [("master_host", "127.0.0.1"), ("master_port", "36379")];
        assert_eq!(value_of(&f, "redis_master_link_up", &master), 1.0);
        assert_eq!(
            value_of(&f, "redis_master_last_io_seconds_ago", &master),
            3.0
        );
        assert_eq!(value_of(&f, "redis_master_sync_in_progress", &master), 0.0);
        assert_eq!(value_of(&f, "redis_slave_repl_offset", &master), 95.0);
        assert_eq!(
            value_of(
                &f,
                "redis_slave_info",
                &[
                    ("master_host", "127.0.0.1"),
                    ("master_port", "36379"),
                    ("read_only", "1"),
                ]
            ),
            1.0
        );
        assert_eq!(value_of(&f, "redis_slave_priority", &[]), 100.0);
        assert_eq!(labels_of(&f, "redis_instance_info")["role"], "slave");
        assert!(
            f.iter()
                .all(|x| x.name() != "redis_connected_slave_offset_bytes")
        );
        assert!(f.iter().all(|x| x.name() != "redis_errors_total"));
    }

    #[test]
    fn redis_6_fixture() {
        let f = info_families(REDIS6, Some(16));
        // Redis prints `nan` when it has no RSS reading; a NaN gauge, as upstream exports it.
        assert!(value_of(&f, "redis_allocator_frag_ratio", &[]).is_nan());
        assert_eq!(value_of(&f, "redis_db_keys", &[("db", "db0")]), 0.0);
        for absent in [
            "redis_commands_total",
            "redis_errors_total",
            "redis_db_avg_ttl_seconds",
            "redis_total_error_replies",
        ] {
            assert!(f.iter().all(|x| x.name() != absent), "{absent}");
        }
        let labels = labels_of(&f, "redis_instance_info");
        assert_eq!(labels["redis_version"], "6.0.9");
        assert_eq!(
            labels["master_replid"],
            "0746201791068712f7468292cc49f2a7e980ef64"
        );
        assert_eq!(
            value_of(&f, "redis_rdb_last_save_timestamp_seconds", &[]),
            1_607_837_738.0
        );
    }

    #[test]
    fn keydb_fixture() {
        let f = info_families(KEYDB, None);
        let db0 = [("db", "db0")];
        assert_eq!(value_of(&f, "redis_db_keys", &db0), 526_496.0);
        assert_eq!(value_of(&f, "redis_db_keys_cached", &db0), 526_496.0);
        assert_eq!(
            kind(&f, "redis_storage_provider_read_hits"),
            MetricType::COUNTER
        );
        assert_eq!(kind(&f, "redis_long_lock_waits_total"), MetricType::COUNTER);
        assert_eq!(kind(&f, "redis_server_threads_total"), MetricType::GAUGE);
        assert_eq!(value_of(&f, "redis_server_threads_total", &[]), 2.0);
        assert_eq!(value_of(&f, "redis_current_client_thread", &[]), 0.0);
        assert_eq!(value_of(&f, "redis_errors_total", &[("err", "ERR")]), 6.0);
        assert_eq!(value_of(&f, "redis_keyspace_hits_total", &[]), 11_518_840.0);
        // Empty availability_zone is left out, as upstream does.
        assert_eq!(
            label_names(&f, "redis_instance_info"),
            [
                "master_replid",
                "maxmemory_policy",
                "os",
                "process_id",
                "redis_build_id",
                "redis_mode",
                "redis_version",
                "role",
                "run_id",
                "tcp_port",
            ]
        );
    }

    #[test]
    fn valkey_fixture() {
        let f = info_families(VALKEY, None);
        let labels = labels_of(&f, "redis_instance_info");
        assert_eq!(labels["valkey_version"], "8.1.0");
        assert_eq!(labels["valkey_release_stage"], "ga");
        assert_eq!(labels["redis_mode"], "standalone");
        assert_eq!(labels["redis_version"], "7.2.4");
        assert!(!labels.contains_key("availability_zone"));
        assert_eq!(labels.len(), 12);
        assert_eq!(value_of(&f, "redis_uptime_in_seconds", &[]), 54.0);
    }

    #[test]
    fn keyspace_is_read_by_name() {
        let text = "# Keyspace\r\n\
            db0:keys=10,expires=2,avg_ttl=2500,subexpiry=3\r\n\
            db1:keys=17,expires=5,avg_ttl=0,keys_with_volatile_items=4\r\n\
            db2:keys=1,expires=0,hits=7,misses=0,hit_ratio=0.00,avg_ttl=-1\r\n\
            db3:expires=1\r\n\
            db4:keys=x,expires=1\r\n\
            dbx:keys=1,expires=1\r\n\
            db0:keys=99,expires=99\r\n";
        let f = info_families(text, Some(5));
        assert_eq!(value_of(&f, "redis_db_keys", &[("db", "db0")]), 10.0);
        assert_eq!(
            value_of(&f, "redis_db_avg_ttl_seconds", &[("db", "db0")]),
            2.5
        );
        assert_eq!(
            value_of(&f, "redis_db_keys_with_expiring_items", &[("db", "db0")]),
            3.0
        );
        assert_eq!(
            value_of(&f, "redis_db_keys_with_expiring_items", &[("db", "db1")]),
            4.0
        );
        // Dragonfly's `hits` must not land in avg_ttl (redis_exporter#1076).
        assert_eq!(
            value_of(&f, "redis_db_avg_ttl_seconds", &[("db", "db2")]),
            -0.001
        );
        // Unreadable lines count as empty databases for the zero-fill.
        assert_eq!(value_of(&f, "redis_db_keys", &[("db", "db3")]), 0.0);
        assert_eq!(value_of(&f, "redis_db_keys", &[("db", "db4")]), 0.0);
        assert_eq!(family(&f, "redis_db_keys").get_metric().len(), 5);
    }

    #[test]
    fn values_and_whitelist() {
        let text = "# Persistence\nrdb_last_bgsave_status:err\naof_last_write_status:fail\n\
            aof_enabled:true\nrdb_saves:-3\nloading:abc\n# Stats\ninstantaneous_ops_per_sec:5\n\
            total_forks:2\nexpired_keys:inf\nkeyspace_hits:1e3\n\
            used_active_time_io_thread_1:2500000\nused_active_time_io_thread_x:1\n\
            # Clients\ncluster_connections:3\ncluster_bad-name:1\n";
        let f = info_families(text, None);
        assert_eq!(value_of(&f, "redis_rdb_last_bgsave_status", &[]), 0.0);
        assert_eq!(value_of(&f, "redis_aof_last_write_status", &[]), 0.0);
        assert_eq!(value_of(&f, "redis_aof_enabled", &[]), 1.0);
        assert_eq!(value_of(&f, "redis_keyspace_hits_total", &[]), 1000.0);
        assert_eq!(
            value_of(
                &f,
                "redis_active_time_io_thread_seconds_total",
                &[("thread", "1")]
            ),
            2.5
        );
        assert_eq!(value_of(&f, "redis_cluster_connections", &[]), 3.0);
        for absent in [
            "redis_rdb_saves_total",
            "redis_loading_dump_file",
            "redis_instantaneous_ops_per_sec",
            "redis_total_forks",
            "redis_expired_keys_total",
        ] {
            assert!(f.iter().all(|x| x.name() != absent), "{absent}");
        }
        assert_eq!(
            family(&f, "redis_rdb_last_bgsave_status").help(),
            "INFO persistence rdb_last_bgsave_status"
        );
    }

    #[test]
    fn keydb_multi_master_and_duplicate_replicas() {
        let text = "# Replication\nrole:slave\nmaster_host:a\nmaster_port:1\n\
            master_link_status:up\nmaster_last_io_seconds_ago:2\n\
            master_1_host:b\nmaster_1_port:2\nmaster_1_link_status:down\n\
            master_1_last_io_seconds_ago:-1\nslave_repl_offset:7\nslave_read_only:1\n\
            slave0:ip=10.0.0.1,port=6379,state=online,offset=5,lag=0\n\
            slave1:ip=10.0.0.1,port=6379,state=online,offset=6,lag=1\n\
            slave2:ip=10.0.0.2,port=6379,state=wait_bgsave,offset=0\n\
            slave3:garbage\n";
        let f = info_families(text, None);
        let a = [("master_host", "a"), ("master_port", "1")];
        let b = [("master_host", "b"), ("master_port", "2")];
        assert_eq!(value_of(&f, "redis_master_link_up", &a), 1.0);
        assert_eq!(value_of(&f, "redis_master_link_up", &b), 0.0);
        assert_eq!(value_of(&f, "redis_master_last_io_seconds_ago", &b), -1.0);
        assert_eq!(value_of(&f, "redis_slave_repl_offset", &b), 7.0);
        assert_eq!(
            family(&f, "redis_connected_slave_offset_bytes")
                .get_metric()
                .len(),
            2
        );
        assert_eq!(
            family(&f, "redis_connected_slave_lag_seconds")
                .get_metric()
                .len(),
            1
        );
        assert_eq!(
            value_of(
                &f,
                "redis_connected_slave_offset_bytes",
                &[
                    ("slave_ip", "10.0.0.1"),
                    ("slave_port", "6379"),
                    ("slave_state", "online"),
                ]
            ),
            5.0
        );
    }

    #[test]
    fn config() {
        let pairs: Vec<(String, String)> = [
            ("maxmemory", "104857600"),
            ("maxclients", "10000"),
            ("io-threads", "4"),
            ("repl-backlog-size", "1048576"),
            ("databases", "16"),
            ("requirepass", "secret"),
            (
                "client-output-buffer-limit",
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            ),
            ("maxmemory", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let f = build(|out| config_families(&pairs, out));
        assert_eq!(
            names(&f),
            [
                "redis_config_client_output_buffer_limit_bytes",
                "redis_config_client_output_buffer_limit_overcome_seconds",
                "redis_config_io_threads",
                "redis_config_maxclients",
                "redis_config_maxmemory",
                "redis_config_repl_backlog_size",
            ]
        );
        assert_eq!(value_of(&f, "redis_config_maxmemory", &[]), 104_857_600.0);
        assert_eq!(value_of(&f, "redis_config_io_threads", &[]), 4.0);
        let bytes = "redis_config_client_output_buffer_limit_bytes";
        assert_eq!(family(&f, bytes).get_metric().len(), 6);
        assert_eq!(
            value_of(&f, bytes, &[("class", "slave"), ("limit", "hard")]),
            268_435_456.0
        );
        assert_eq!(
            value_of(&f, bytes, &[("class", "pubsub"), ("limit", "soft")]),
            8_388_608.0
        );
        assert_eq!(
            value_of(
                &f,
                "redis_config_client_output_buffer_limit_overcome_seconds",
                &[("class", "pubsub"), ("limit", "soft")]
            ),
            60.0
        );
        // A truncated value yields the complete groups only.
        let truncated = vec![(
            "client-output-buffer-limit".to_owned(),
            "normal 0 0 0 replica 1".to_owned(),
        )];
        let f = build(|out| config_families(&truncated, out));
        assert_eq!(family(&f, bytes).get_metric().len(), 2);
    }

    #[test]
    fn latency_slowlog_cluster() {
        let events = [
            LatencyEvent {
                event: "command".to_owned(),
                timestamp: 1_700_000_000,
                latest_ms: 250,
                max_ms: 1000,
            },
            LatencyEvent {
                event: "command".to_owned(),
                timestamp: 1,
                latest_ms: 1,
                max_ms: 1,
            },
        ];
        let f = build(|out| latency_families(&events, out));
        let labels = [("event_name", "command")];
        assert_eq!(
            value_of(&f, "redis_latency_spike_last", &labels),
            1_700_000_000.0
        );
        assert_eq!(
            value_of(&f, "redis_latency_spike_duration_seconds", &labels),
            0.25
        );
        assert_eq!(family(&f, "redis_latency_spike_last").get_metric().len(), 1);

        let f = build(|out| slowlog_families(3, Some((41, 15_000)), out));
        assert_eq!(value_of(&f, "redis_slowlog_length", &[]), 3.0);
        assert_eq!(value_of(&f, "redis_slowlog_last_id", &[]), 41.0);
        assert_eq!(
            value_of(&f, "redis_last_slow_execution_duration_seconds", &[]),
            0.015
        );
        let f = build(|out| slowlog_families(0, None, out));
        assert_eq!(value_of(&f, "redis_slowlog_last_id", &[]), 0.0);

        let text = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_fail:0\r\n\
            cluster_known_nodes:6\r\ncluster_stats_messages_ping_sent:100\r\n\
            cluster_stats_messages_sent:250\r\ncluster_stats_messages_received:240\r\n\
            total_cluster_links_buffer_limit_exceeded:0\r\nuptime_in_seconds:5\r\n";
        let f = build(|out| cluster_families(text, out));
        assert_eq!(value_of(&f, "redis_cluster_state", &[]), 1.0);
        assert_eq!(value_of(&f, "redis_cluster_slots_assigned", &[]), 16384.0);
        assert_eq!(
            kind(&f, "redis_cluster_messages_sent_total"),
            MetricType::COUNTER
        );
        assert_eq!(
            value_of(&f, "redis_cluster_messages_received_total", &[]),
            240.0
        );
        assert_eq!(
            kind(&f, "redis_cluster_stats_messages_ping_sent"),
            MetricType::GAUGE
        );
        assert!(f.iter().all(|x| x.name() != "redis_uptime_in_seconds"));
        assert!(
            f.iter()
                .all(|x| x.name() != "redis_total_cluster_links_buffer_limit_exceeded")
        );
        let f = build(|out| cluster_families("cluster_state:fail\n", out));
        assert_eq!(value_of(&f, "redis_cluster_state", &[]), 0.0);
    }

    /// xorshift64: deterministic, dependency-free randomness for the robustness test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn random_inputs_never_panic_and_always_validate() {
        let fixtures = [PRIMARY, REPLICA, REDIS6, KEYDB, VALKEY];
        let keys = [
            "db0",
            "db7",
            "dbx",
            "cmdstat_get",
            "cmdstat_",
            "errorstat_ERR",
            "slave0",
            "slave",
            "master_host",
            "master_2_port",
            "master_link_status",
            "master_3_last_io_seconds_ago",
            "slave_repl_offset",
            "role",
            "rdb_saves",
            "used_memory",
            "cluster_enabled",
            "cluster_x-y",
            "used_active_time_io_thread_9",
            "latency_percentiles_usec_get",
            "uptime_in_seconds",
            "keyspace_hits",
            "",
        ];
        let values = [
            "1",
            "-1",
            "NaN",
            "inf",
            "-inf",
            "1e308",
            "1e309",
            "184467440737095516150000",
            "ok",
            "err",
            "keys=1,expires=2,avg_ttl=3",
            "keys=-1,expires=nan",
            "calls=-5,usec=inf,rejected_calls=NaN,failed_calls=1",
            "calls=1,usec=2",
            "count=-1",
            "count=1e400",
            "ip=,port=,state=,offset=NaN,lag=-inf",
            "=,=,,=",
            "p50=1,p99=x",
            "\u{fffd}\u{0}",
        ];
        let separators = [":", "::", "=", " : ", ":\r", ""];
        let headers = [
            "# Keyspace",
            "# Commandstats",
            "# Errorstats",
            "# Replication",
            "# Cluster Info",
            "#",
            "# ",
            "",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let base = fixtures[round % fixtures.len()].as_bytes();
            let mut bytes = base[..rng.below(base.len() + 1)].to_vec();
            for _ in 0..rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = u8::try_from(rng.next() & 0xff).unwrap_or(0);
                }
            }
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            for _ in 0..rng.below(12) {
                text.push_str(if rng.next().is_multiple_of(2) {
                    "\r\n"
                } else {
                    "\n"
                });
                text.push_str(rng.pick(&headers));
                text.push('\n');
                text.push_str(rng.pick(&keys));
                text.push_str(rng.pick(&separators));
                text.push_str(rng.pick(&values));
            }
            let databases = (round % 3 == 0).then(|| u32::try_from(rng.below(40)).unwrap_or(0));
            let info = build(|out| families(&Info::parse(&text), NOW, databases, out));
            // Separately: CLUSTER INFO and INFO share no `cluster_*` field on real servers, but
            // random text can put the same one in both.
            let cluster = build(|out| cluster_families(&text, out));
            let config = build(|out| {
                let words: Vec<&str> = text.split_whitespace().take(13).collect();
                config_families(
                    &[
                        ("client-output-buffer-limit".to_owned(), words.join(" ")),
                        ("maxmemory".to_owned(), rng.pick(&values).to_owned()),
                    ],
                    out,
                );
            });
            // Every family is typed and valid (checked in `build`); no family may carry the
            // same label set twice.
            for family in info.iter().chain(&cluster).chain(&config) {
                let mut sets = HashSet::new();
                for metric in family.get_metric() {
                    let mut labels: Vec<(String, String)> = metric
                        .get_label()
                        .iter()
                        .map(|p| (p.name().to_owned(), p.value().to_owned()))
                        .collect();
                    labels.sort_unstable();
                    assert!(sets.insert(labels), "duplicate series in {}", family.name());
                }
            }
        }
    }
}
