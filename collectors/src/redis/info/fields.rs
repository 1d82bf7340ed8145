//! Which INFO fields become which metric: redis_exporter's name tables, the family names the
//! collector builds itself, and the rules for reading a field's value as a sample.
//!
//! Names and label names are redis_exporter's (the dashboards and alerts listed in
//! `redis-compat.md` §8 query them); types are corrected where upstream exports a monotonic count as
//! a gauge (`rdb_saves_total`, `replica_resyncs_full`, `defrag_*`, ...). Like upstream, INFO fields
//! are exported from a whitelist only: a new server version adding fields must not add series.

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    Gauge,
    Counter,
}

/// Where a whitelisted scalar INFO field goes.
#[derive(Debug)]
pub(super) struct Mapping {
    /// Full metric name, `redis_` included, built once.
    pub(super) metric: String,
    pub(super) kind: Type,
    /// Unit conversion (`latest_fork_usec` is microseconds, the metric seconds).
    pub(super) scale: f64,
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
pub(super) static FIELDS: LazyLock<HashMap<&'static str, Mapping, foldhash::fast::RandomState>> =
    LazyLock::new(|| {
        let mut map = HashMap::default();
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

/// redis_exporter's value rule: `ok`/`true` are 1, `err`/`fail`/`false` are 0, anything else must
/// parse as a number.
pub(super) fn value(raw: &str) -> Option<f64> {
    match raw {
        "ok" | "true" => Some(1.0),
        "err" | "fail" | "false" => Some(0.0),
        _ => raw.parse::<f64>().ok(),
    }
}

/// The builder refuses (and drops the family for) a negative or non-finite counter sample.
pub(super) fn counter_ok(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}
