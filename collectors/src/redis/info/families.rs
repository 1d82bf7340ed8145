//! The families made from one INFO reply: the whitelisted scalar fields, keyspace, commandstats,
//! latencystats, errorstats, replication, `redis_instance_info` and `redis_start_time_seconds`.
//!
//! It walks the parsed [`Info`] in order and never fails: counter samples that are negative or not
//! finite are left out rather than handed to the builder, which would drop the whole family for one
//! bad value.
//!
//! `latency_percentiles_usec_*` lines (Latencystats) become the summary
//! `redis_latency_percentiles_usec{cmd}` with `quantile="50"|"99"|"99.9"` as redis_exporter writes
//! them (alerts match `quantile="99.9"`), its count and sum taken from the command's commandstats.

use std::collections::HashSet;
use std::fmt::Write as _;

/// What a scrape has already seen of one kind of INFO line.
type Seen<T> = HashSet<T, foldhash::fast::RandomState>;

use super::fields::{FIELDS, Type, counter_ok, value};
use super::parse::{Info, is_master_field, numbered, pair_text, pair_value, pairs};
use crate::Families;
use crate::family::is_valid_metric_name;

/// Upper bound on the zero-filled databases: `databases` comes from the server's config, and a
/// typo there (or a hostile server) must not make us emit millions of series.
const MAX_ZERO_FILL_DATABASES: u32 = 4096;

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
    // Seeded hashing (foldhash): the keys are the server's, and SipHash was a tenth of a scrape.
    let mut seen_fields: Seen<&str> = Seen::default();
    let mut seen_dbs: Seen<&str> = Seen::default();
    let mut seen_cmds: Seen<&str> = Seen::default();
    let mut seen_errors: Seen<&str> = Seen::default();
    let mut seen_latencies: Seen<&str> = Seen::default();
    let mut seen_slaves: Seen<(&str, &str, &str)> = Seen::default();
    let mut seen_masters: Seen<(&str, String, String)> = Seen::default();

    let mut help = String::with_capacity(64);
    for (section, key, raw) in info.fields() {
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
        scalar(section, key, raw, now, &mut help, out);
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
    seen_slaves: &mut Seen<(&'a str, &'a str, &'a str)>,
    seen_masters: &mut Seen<(&'a str, String, String)>,
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
/// `help` is a buffer reused for every field's HELP text.
fn scalar(section: &str, key: &str, raw: &str, now: f64, help: &mut String, out: &mut Families) {
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
        help.clear();
        let _ = write!(help, "INFO {section} {key}");
        match mapping.kind {
            Type::Gauge => {
                out.gauge(&mapping.metric, help).set(&[], v);
            }
            Type::Counter if counter_ok(v) => {
                out.counter(&mapping.metric, help).set(&[], v);
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
pub(super) fn cluster_gauge(help: &str, key: &str, raw: &str, out: &mut Families) {
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
    if info.is_empty() {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prometheus::proto::{MetricFamily, MetricType};

    use super::*;
    use crate::redis::info::testing::*;

    fn info_families(text: &str, databases: Option<u32>) -> Vec<MetricFamily> {
        build(|out| families(&Info::parse(text), NOW, databases, out))
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
}
