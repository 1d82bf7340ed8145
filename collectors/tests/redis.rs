//! The Redis collector against real redis-server processes started by the harness
//! (support/redis.rs): family sets, types and label sets on a primary and its replica, keyspace,
//! commandstats and errorstats after known traffic, password and ACL users, TLS, a renamed CONFIG,
//! restarts, deadlines, key checks under a budget and custom commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanout_collectors::family::{MetricType as Kind, validate};
use fanout_collectors::redis::{
    CustomCommand, KeyBudget, ParsedUrl, RedisCollector, RedisSettings, RedisTls,
};
use fanout_collectors::secret::SecretBytes;
use fanout_collectors::{CollectError, Collector, Outcome};
use prometheus::proto::{Metric, MetricFamily, MetricType};
use redis_server::{Opts, Pair, Redis, ServerTls, parse_pairs, resp};
use secrecy::SecretString;
use support::Pki;
use tokio::time::Instant;

/// The gauge that says a scrape's key checks stopped at their budget (1) or finished (0).
const BUDGET_EXCEEDED: &str = "fanout_exporter_key_check_budget_exceeded";

// ---------------------------------------------------------------------------------------------
// Settings and scraping

fn settings_for(url: &str) -> RedisSettings {
    RedisSettings::new(ParsedUrl::parse(url).unwrap())
}

fn settings(server: &Redis) -> RedisSettings {
    settings_for(&server.url())
}

fn build(settings: RedisSettings) -> RedisCollector {
    RedisCollector::new(settings).unwrap()
}

async fn scrape(collector: &RedisCollector, budget: Duration) -> Outcome {
    collector.collect(Instant::now() + budget).await
}

/// Scrape once with a 10 s deadline and insist on success without errors.
async fn scrape_ok(collector: &RedisCollector) -> Outcome {
    let outcome = scrape(collector, Duration::from_secs(10)).await;
    assert!(outcome.up, "down: {:?}", outcome.errors);
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    outcome
}

/// Scrape once with a 10 s deadline and insist the target is up (errors allowed).
async fn scrape_up(collector: &RedisCollector) -> Outcome {
    let outcome = scrape(collector, Duration::from_secs(10)).await;
    assert!(outcome.up, "down: {:?}", outcome.errors);
    outcome
}

// ---------------------------------------------------------------------------------------------
// Reading families

fn names(families: &[MetricFamily]) -> BTreeSet<String> {
    families.iter().map(|f| f.name().to_owned()).collect()
}

fn find<'a>(families: &'a [MetricFamily], name: &str) -> Option<&'a MetricFamily> {
    let mut found = families.iter().filter(|f| f.name() == name);
    let family = found.next()?;
    assert!(found.next().is_none(), "family {name} appears twice");
    Some(family)
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    find(families, name).unwrap_or_else(|| {
        panic!(
            "family {name} missing; present: {:?}",
            names(families).into_iter().collect::<Vec<_>>()
        )
    })
}

fn labels(metric: &Metric) -> BTreeMap<String, String> {
    metric
        .get_label()
        .iter()
        .map(|l| (l.name().to_owned(), l.value().to_owned()))
        .collect()
}

fn label_set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn value(family: &MetricFamily, metric: &Metric) -> f64 {
    match family.get_field_type() {
        MetricType::COUNTER => metric.get_counter().get_value(),
        MetricType::GAUGE => metric.get_gauge().get_value(),
        other => panic!("{}: unexpected type {other:?}", family.name()),
    }
}

/// Every sample of `name` as (labels, value); the family must be present.
fn samples(families: &[MetricFamily], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let family = family(families, name);
    family
        .get_metric()
        .iter()
        .map(|m| (labels(m), value(family, m)))
        .collect()
}

/// The value of the sample of `name` whose labels are exactly `wanted`, if there is one.
fn sample(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let wanted = label_set(wanted);
    let family = find(families, name)?;
    family
        .get_metric()
        .iter()
        .find(|m| labels(m) == wanted)
        .map(|m| value(family, m))
}

/// The value of the sample of `name` with exactly `wanted`; it must be present.
fn must(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> f64 {
    sample(families, name, wanted).unwrap_or_else(|| {
        let present = find(families, name).map(|f| {
            f.get_metric()
                .iter()
                .map(labels)
                .take(20)
                .collect::<Vec<_>>()
        });
        panic!("{name}{wanted:?} missing; samples of {name}: {present:?}")
    })
}

/// The single unlabelled sample of `name`.
fn scalar(families: &[MetricFamily], name: &str) -> f64 {
    must(families, name, &[])
}

fn kind_of(families: &[MetricFamily], name: &str) -> MetricType {
    family(families, name).get_field_type()
}

fn assert_same_names(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(actual).collect();
    let extra: Vec<_> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: family set differs\nmissing: {missing:?}\nunexpected: {extra:?}"
    );
}

/// Every family valid and typed (counter, gauge, histogram, or summary for the quantiles a server
/// computes itself), none empty, none twice.
fn assert_all_valid(families: &[MetricFamily]) {
    let mut seen = BTreeSet::new();
    for family in families {
        assert!(
            seen.insert(family.name().to_owned()),
            "{} appears twice",
            family.name()
        );
        validate(family).unwrap_or_else(|e| panic!("{}: invalid: {e}", family.name()));
        assert!(
            matches!(
                family.get_field_type(),
                MetricType::COUNTER
                    | MetricType::GAUGE
                    | MetricType::HISTOGRAM
                    | MetricType::SUMMARY
            ),
            "{}: type {:?}",
            family.name(),
            family.get_field_type()
        );
    }
}

fn error_chain(error: &CollectError) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// What redis_exporter would report, computed from the live server's INFO (redis-compat.md §2–5)

/// INFO fields exported under their own name, as gauges (§2, plus `hz`, `configured_hz`).
const GAUGES_AS_IS: &[&str] = &[
    "uptime_in_seconds",
    "process_id",
    "io_threads_active",
    "hz",
    "configured_hz",
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
    "pubsub_channels",
    "pubsub_patterns",
    "pubsubshard_channels",
    "tracking_total_keys",
    "tracking_total_items",
    "tracking_total_prefixes",
    "instantaneous_eventloop_cycles_per_sec",
    "instantaneous_eventloop_duration_usec",
    "connected_slaves",
    "master_repl_offset",
    "second_repl_offset",
    "repl_backlog_first_byte_offset",
    "slave_expires_tracked_keys",
    "slave_priority",
    "current_client_thread",
];

/// INFO fields exported under their own name, as counters (§2).
const COUNTERS_AS_IS: &[&str] = &[
    "unexpected_error_replies",
    "total_error_replies",
    "dump_payload_sanitizations",
    "total_reads_processed",
    "total_writes_processed",
    "io_threaded_reads_processed",
    "io_threaded_writes_processed",
    "storage_provider_read_hits",
    "storage_provider_read_misses",
];

/// INFO fields renamed, gauges (§3).
const GAUGES_RENAMED: &[(&str, &str)] = &[
    ("maxclients", "max_clients"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
    ),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("used_memory_vm_eval", "memory_used_vm_eval_bytes"),
    ("used_memory_scripts_eval", "memory_used_scripts_eval_bytes"),
    ("used_memory_vm_functions", "memory_used_vm_functions_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("used_memory_functions", "memory_used_functions_bytes"),
    ("used_memory_vm_total", "memory_used_vm_total"),
    ("maxmemory", "memory_max_bytes"),
    ("maxmemory_reservation", "memory_max_reservation_bytes"),
    ("mem_cluster_links", "mem_cluster_links_bytes"),
    ("mem_aof_buffer", "mem_aof_buffer_bytes"),
    ("mem_replication_backlog", "mem_replication_backlog_bytes"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
    ),
    (
        "mem_total_replication_buffers",
        "mem_total_replication_buffers_bytes",
    ),
    (
        "mem_overhead_db_hashtable_rehashing",
        "mem_overhead_db_hashtable_rehashing_bytes",
    ),
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_muzzy", "allocator_muzzy_bytes"),
    ("expired_stale_perc", "expired_stale_percentage"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("loading", "loading_dump_file"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
    ),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("rdb_last_load_keys_expired", "rdb_last_load_expired_keys"),
    ("rdb_last_load_keys_loaded", "rdb_last_load_loaded_keys"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("latest_fork_usec", "latest_fork_seconds"),
    (
        "current_eviction_exceeded_time",
        "current_eviction_exceeded_time_ms",
    ),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("server_threads", "server_threads_total"),
];

/// INFO fields renamed, counters (§4, and the §3 names upstream types as gauges: §9).
const COUNTERS_RENAMED: &[(&str, &str)] = &[
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    ("rdb_saves", "rdb_saves_total"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    ("cluster_stats_messages_sent", "cluster_messages_sent_total"),
    (
        "cluster_stats_messages_received",
        "cluster_messages_received_total",
    ),
    ("long_lock_waits", "long_lock_waits_total"),
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("total_net_repl_input_bytes", "net_repl_input_bytes_total"),
    ("total_net_repl_output_bytes", "net_repl_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("expired_subkeys", "expired_subkeys_total"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
    ),
    (
        "expire_cycle_cpu_milliseconds",
        "expire_cycle_cpu_time_ms_total",
    ),
    ("evicted_keys", "evicted_keys_total"),
    ("evicted_clients", "evicted_clients_total"),
    ("evicted_scripts", "evicted_scripts_total"),
    (
        "total_eviction_exceeded_time",
        "eviction_exceeded_time_ms_total",
    ),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("eventloop_cycles", "eventloop_cycles_total"),
    (
        "eventloop_duration_sum",
        "eventloop_duration_sum_usec_total",
    ),
    (
        "eventloop_duration_cmd_sum",
        "eventloop_duration_cmd_sum_usec_total",
    ),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
    ),
    (
        "client_query_buffer_limit_disconnections",
        "client_query_buffer_limit_disconnections_total",
    ),
    (
        "client_output_buffer_limit_disconnections",
        "client_output_buffer_limit_disconnections_total",
    ),
    ("reply_buffer_shrinks", "reply_buffer_shrinks_total"),
    ("reply_buffer_expands", "reply_buffer_expands_total"),
    ("acl_access_denied_auth", "acl_access_denied_auth_total"),
    ("acl_access_denied_cmd", "acl_access_denied_cmd_total"),
    ("acl_access_denied_key", "acl_access_denied_key_total"),
    (
        "acl_access_denied_channel",
        "acl_access_denied_channel_total",
    ),
    (
        "used_active_time_main_thread",
        "active_time_main_thread_seconds_total",
    ),
    ("cached_keys", "cached_keys_total"),
];

/// Families whose presence the compatibility notes leave open: the `LATENCY HISTOGRAM` histogram,
/// system memory (opt-in upstream).
const OPTIONAL: &[&str] = &[
    "redis_commands_latencies_usec",
    "redis_total_system_memory_bytes",
];

/// redis_exporter's value rule: ok/true 1, err/fail/false 0, else a float.
fn parses(value: &str) -> bool {
    matches!(value, "ok" | "true" | "err" | "fail" | "false") || value.parse::<f64>().is_ok()
}

/// What the expected family set is made of, with each family's type.
#[derive(Debug, Default)]
struct Expected {
    /// Family name to (type, label names).
    families: BTreeMap<String, (MetricType, BTreeSet<String>)>,
}

impl Expected {
    fn add(&mut self, name: &str, kind: MetricType, labels: &[&str]) {
        let labels = labels.iter().map(|l| (*l).to_owned()).collect();
        self.families
            .insert(format!("redis_{name}"), (kind, labels));
    }

    fn names(&self) -> BTreeSet<String> {
        self.families.keys().cloned().collect()
    }

    /// The family set must be exactly the expected one (plus, at most, the optional families); each
    /// family has its type and label names.
    fn check(&self, families: &[MetricFamily], what: &str) {
        let actual: BTreeSet<String> = names(families)
            .into_iter()
            .filter(|n| !OPTIONAL.contains(&n.as_str()))
            .collect();
        assert_same_names(&actual, &self.names(), what);
        for (name, (kind, wanted)) in &self.families {
            let family = family(families, name);
            assert_eq!(family.get_field_type(), *kind, "{what}: type of {name}");
            for metric in family.get_metric() {
                let got: BTreeSet<String> = labels(metric).into_keys().collect();
                assert_eq!(&got, wanted, "{what}: label names of {name}");
            }
        }
    }
}

const INSTANCE_INFO_LABELS: &[&str] = &[
    "role",
    "redis_version",
    "redis_build_id",
    "redis_mode",
    "os",
    "maxmemory_policy",
    "tcp_port",
    "run_id",
    "process_id",
    "master_replid",
];

/// The families the core scrape must produce from `info` (INFO ALL), with CONFIG available when
/// `config` and latency events when `latency`.
fn expected_families(info: &BTreeMap<String, String>, config: bool, latency: bool) -> Expected {
    let mut e = Expected::default();
    for (field, value) in info {
        if !parses(value) {
            continue;
        }
        let field = field.as_str();
        if GAUGES_AS_IS.contains(&field) {
            e.add(field, MetricType::GAUGE, &[]);
        } else if COUNTERS_AS_IS.contains(&field) {
            e.add(field, MetricType::COUNTER, &[]);
        } else if let Some((_, name)) = GAUGES_RENAMED.iter().find(|(f, _)| *f == field) {
            e.add(name, MetricType::GAUGE, &[]);
        } else if let Some((_, name)) = COUNTERS_RENAMED.iter().find(|(f, _)| *f == field) {
            e.add(name, MetricType::COUNTER, &[]);
        } else if field.starts_with("cluster_") {
            e.add(field, MetricType::GAUGE, &[]);
        }
    }
    for (field, value) in info {
        if field.starts_with("db") && field[2..].parse::<u32>().is_ok() {
            e.add("db_avg_ttl_seconds", MetricType::GAUGE, &["db"]);
        }
        if let Some(_cmd) = field.strip_prefix("cmdstat_") {
            let items = parse_pairs(value);
            e.add("commands_total", MetricType::COUNTER, &["cmd"]);
            e.add(
                "commands_duration_seconds_total",
                MetricType::COUNTER,
                &["cmd"],
            );
            if items.contains_key("rejected_calls") {
                e.add(
                    "commands_rejected_calls_total",
                    MetricType::COUNTER,
                    &["cmd"],
                );
            }
            if items.contains_key("failed_calls") {
                e.add("commands_failed_calls_total", MetricType::COUNTER, &["cmd"]);
            }
        }
        if field.starts_with("latency_percentiles_usec_") {
            e.add("latency_percentiles_usec", MetricType::SUMMARY, &["cmd"]);
        }
        if field.starts_with("errorstat_") {
            e.add("errors_total", MetricType::COUNTER, &["err"]);
        }
        if field.starts_with("slave") && field[5..].parse::<u32>().is_ok() {
            let labels = ["slave_ip", "slave_port", "slave_state"];
            e.add("connected_slave_offset_bytes", MetricType::GAUGE, &labels);
            e.add("connected_slave_lag_seconds", MetricType::GAUGE, &labels);
        }
    }
    // Zero-filled for every database, so always present.
    e.add("db_keys", MetricType::GAUGE, &["db"]);
    e.add("db_keys_expiring", MetricType::GAUGE, &["db"]);
    if info.get("role").map(String::as_str) == Some("slave") {
        let labels = ["master_host", "master_port"];
        for name in [
            "master_link_up",
            "master_last_io_seconds_ago",
            "master_sync_in_progress",
            "slave_repl_offset",
        ] {
            e.add(name, MetricType::GAUGE, &labels);
        }
        e.add(
            "slave_info",
            MetricType::GAUGE,
            &["master_host", "master_port", "read_only"],
        );
    }
    e.add("instance_info", MetricType::GAUGE, INSTANCE_INFO_LABELS);
    e.add("start_time_seconds", MetricType::GAUGE, &[]);
    if config {
        for name in [
            "config_maxmemory",
            "config_maxclients",
            "config_io_threads",
            "config_repl_backlog_size",
        ] {
            e.add(name, MetricType::GAUGE, &[]);
        }
        e.add(
            "config_client_output_buffer_limit_bytes",
            MetricType::GAUGE,
            &["class", "limit"],
        );
        e.add(
            "config_client_output_buffer_limit_overcome_seconds",
            MetricType::GAUGE,
            &["class", "limit"],
        );
    }
    // Upstream reports the newest entry as id 0, duration 0 while the slowlog is empty.
    e.add("slowlog_length", MetricType::GAUGE, &[]);
    e.add("slowlog_last_id", MetricType::GAUGE, &[]);
    e.add(
        "last_slow_execution_duration_seconds",
        MetricType::GAUGE,
        &[],
    );
    // redis_exporter's per-scrape self metrics.
    e.add(
        "exporter_last_scrape_duration_seconds",
        MetricType::GAUGE,
        &[],
    );
    e.add(
        "exporter_last_scrape_connect_time_seconds",
        MetricType::GAUGE,
        &[],
    );
    if latency {
        e.add("latency_spike_last", MetricType::GAUGE, &["event_name"]);
        e.add(
            "latency_spike_duration_seconds",
            MetricType::GAUGE,
            &["event_name"],
        );
    }
    e
}

/// `redis_instance_info`'s labels as the server reports them.
fn instance_labels(info: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    INSTANCE_INFO_LABELS
        .iter()
        .map(|l| {
            let value = info.get(*l).unwrap_or_else(|| panic!("INFO has no {l}"));
            ((*l).to_owned(), value.clone())
        })
        .collect()
}

/// The zero-filled `db` label values `db0`..`db15` with `known` values; everything else 0.
fn db_values(known: &[(&str, f64)]) -> BTreeMap<BTreeMap<String, String>, f64> {
    (0..16)
        .map(|i| {
            let db = format!("db{i}");
            let value = known
                .iter()
                .find(|(d, _)| *d == db)
                .map_or(0.0, |(_, v)| *v);
            (label_set(&[("db", &db)]), value)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A primary and its replica

#[tokio::test(flavor = "multi_thread")]
async fn primary_and_replica_report_redis_exporters_families_typed_and_labelled() {
    let pair = Pair::start();
    let (primary, replica) = (&pair.primary, &pair.replica);

    // Known keys: db0 has 5, 2 of them expiring; db3 has 2, 1 expiring.
    for i in 1..=5 {
        primary.cli(&["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    primary.cli(&["EXPIRE", "k1", "1000"]);
    primary.cli(&["EXPIRE", "k2", "2000"]);
    primary.cli(&["-n", "3", "SET", "a", "1"]);
    primary.cli(&["-n", "3", "SET", "b", "2"]);
    primary.cli(&["-n", "3", "EXPIRE", "a", "3000"]);
    // Known commands: GETs on existing keys, one CONFIG GET.
    const GETS: usize = 7;
    for _ in 0..GETS {
        primary.cli(&["GET", "k3"]);
    }
    primary.cli(&["CONFIG", "GET", "maxmemory"]);
    // Known errors: an unknown command (ERR) and a list command on a string (WRONGTYPE).
    assert!(primary.try_cli(&["NOSUCHCOMMAND"]).is_err());
    assert!(primary.try_cli(&["LPUSH", "k4", "x"]).is_err());
    // A slowlog entry and a latency event: a 50 ms command with the latency monitor at 1 ms.
    primary.cli(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    primary.cli(&["DEBUG", "SLEEP", "0.05"]);
    primary.cli(&["CONFIG", "SET", "latency-monitor-threshold", "0"]);
    pair.wait_replicated(Duration::from_secs(20));
    let errors_before = primary.info_number("stats", "total_error_replies");
    assert_eq!(errors_before, 2.0, "server counted other errors");

    let primary_collector = build(settings(primary));
    let replica_collector = build(settings(replica));
    let p = scrape_ok(&primary_collector).await;
    let r = scrape_ok(&replica_collector).await;
    let p_info = primary.info("all");
    let r_info = replica.info("all");
    assert_all_valid(&p.families);
    assert_all_valid(&r.families);

    // Exact family sets, types and label names, from what each server's INFO holds.
    let slowlog_len: f64 = primary.cli(&["SLOWLOG", "LEN"]).parse().unwrap();
    assert!(slowlog_len >= 1.0, "DEBUG SLEEP 0.05 not in the slowlog");
    expected_families(&p_info, true, true).check(&p.families, "primary");
    expected_families(&r_info, true, false).check(&r.families, "replica");

    // The collector itself provoked no error reply.
    assert_eq!(
        primary.info_number("stats", "total_error_replies"),
        errors_before,
        "the scrape caused error replies on the primary"
    );
    assert_eq!(
        replica.info_number("stats", "total_error_replies"),
        0.0,
        "the scrape caused error replies on the replica"
    );

    // Replication, primary side.
    assert_eq!(scalar(&p.families, "redis_connected_slaves"), 1.0);
    let replica_port = replica.port().to_string();
    let slave = [
        ("slave_ip", "127.0.0.1"),
        ("slave_port", replica_port.as_str()),
        ("slave_state", "online"),
    ];
    let offsets = samples(&p.families, "redis_connected_slave_offset_bytes");
    assert_eq!(offsets.len(), 1, "{offsets:?}");
    let offset = offsets[&label_set(&slave)];
    let primary_offset: f64 = p_info["master_repl_offset"].parse().unwrap();
    assert!(
        offset > 0.0 && offset <= primary_offset,
        "replica offset {offset}, primary at {primary_offset}"
    );
    let lag = must(&p.families, "redis_connected_slave_lag_seconds", &slave);
    assert!((0.0..=5.0).contains(&lag), "lag {lag}");

    // Replication, replica side.
    let primary_port = primary.port().to_string();
    let master = [
        ("master_host", "127.0.0.1"),
        ("master_port", primary_port.as_str()),
    ];
    assert_eq!(must(&r.families, "redis_master_link_up", &master), 1.0);
    assert_eq!(
        must(&r.families, "redis_master_sync_in_progress", &master),
        0.0
    );
    let last_io = must(&r.families, "redis_master_last_io_seconds_ago", &master);
    assert!((0.0..=15.0).contains(&last_io), "last io {last_io}");
    let replica_offset = must(&r.families, "redis_slave_repl_offset", &master);
    assert!(replica_offset > 0.0, "replica offset {replica_offset}");
    assert_eq!(
        samples(&r.families, "redis_slave_info"),
        BTreeMap::from([(
            label_set(&[
                ("master_host", "127.0.0.1"),
                ("master_port", &primary_port),
                ("read_only", "1"),
            ]),
            1.0
        )])
    );
    assert_eq!(scalar(&r.families, "redis_connected_slaves"), 0.0);
    assert!(find(&p.families, "redis_master_link_up").is_none());

    // Keyspace, zero-filled over the 16 databases, on both sides.
    for (what, families) in [("primary", &p.families), ("replica", &r.families)] {
        assert_eq!(
            samples(families, "redis_db_keys"),
            db_values(&[("db0", 5.0), ("db3", 2.0)]),
            "{what}"
        );
        assert_eq!(
            samples(families, "redis_db_keys_expiring"),
            db_values(&[("db0", 2.0), ("db3", 1.0)]),
            "{what}"
        );
    }
    let ttls = samples(&p.families, "redis_db_avg_ttl_seconds");
    assert_eq!(
        ttls.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([label_set(&[("db", "db0")]), label_set(&[("db", "db3")])])
    );
    let ttl0 = ttls[&label_set(&[("db", "db0")])];
    assert!(
        (900.0..=2000.0).contains(&ttl0),
        "avg TTL of db0 (1000 s and 2000 s keys) in seconds: {ttl0}"
    );

    // Commandstats: exactly the GETs we ran (the scrape runs none), `config|get` keeps its `|`.
    assert_eq!(
        must(&p.families, "redis_commands_total", &[("cmd", "get")]),
        GETS as f64
    );
    let config_get = must(
        &p.families,
        "redis_commands_total",
        &[("cmd", "config|get")],
    );
    let server_config_get = redis_server::parse_pairs(&p_info["cmdstat_config|get"])["calls"]
        .parse::<f64>()
        .unwrap();
    assert!(
        config_get >= 1.0 && config_get <= server_config_get,
        "config|get calls {config_get}, server says {server_config_get} after the scrape"
    );
    assert_eq!(
        must(&p.families, "redis_commands_total", &[("cmd", "set")]),
        7.0,
        "5 SETs in db0, 2 in db3"
    );
    assert_eq!(
        must(
            &p.families,
            "redis_commands_failed_calls_total",
            &[("cmd", "lpush")]
        ),
        1.0
    );
    let get_seconds = must(
        &p.families,
        "redis_commands_duration_seconds_total",
        &[("cmd", "get")],
    );
    let get_usec: f64 = redis_server::parse_pairs(&p_info["cmdstat_get"])["usec"]
        .parse()
        .unwrap();
    assert!(
        (get_seconds - get_usec / 1e6).abs() < 1e-9,
        "{get_seconds} s vs {get_usec} µs"
    );
    // Latencystats: a summary per command, quantiles as redis_exporter writes them (50, 99, 99.9),
    // count and sum from commandstats.
    let summary = family(&p.families, "redis_latency_percentiles_usec")
        .get_metric()
        .iter()
        .find(|m| labels(m) == label_set(&[("cmd", "get")]))
        .expect("no latency summary for get")
        .get_summary();
    assert_eq!(summary.sample_count(), GETS as u64);
    assert_eq!(summary.sample_sum(), get_usec);
    let percentiles = parse_pairs(&p_info["latency_percentiles_usec_get"]);
    let quantiles: Vec<(f64, f64)> = summary
        .get_quantile()
        .iter()
        .map(|q| (q.quantile(), q.value()))
        .collect();
    let wanted: Vec<(f64, f64)> = [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)]
        .iter()
        .map(|(k, q)| (*q, percentiles[*k].parse().unwrap()))
        .collect();
    assert_eq!(quantiles, wanted);
    assert_eq!(
        scalar(&p.families, "redis_keyspace_hits_total"),
        p_info["keyspace_hits"].parse::<f64>().unwrap()
    );
    assert!(scalar(&p.families, "redis_keyspace_hits_total") >= GETS as f64);

    // Errorstats: the prefix only, one per kind provoked.
    assert_eq!(
        samples(&p.families, "redis_errors_total"),
        BTreeMap::from([
            (label_set(&[("err", "ERR")]), 1.0),
            (label_set(&[("err", "WRONGTYPE")]), 1.0),
        ])
    );
    assert_eq!(scalar(&p.families, "redis_total_error_replies"), 2.0);

    // Slowlog and latency from the DEBUG SLEEP.
    assert_eq!(scalar(&p.families, "redis_slowlog_length"), slowlog_len);
    let newest = primary.cli(&["SLOWLOG", "GET", "1"]);
    let newest_id: f64 = newest.lines().next().unwrap().parse().unwrap();
    assert_eq!(scalar(&p.families, "redis_slowlog_last_id"), newest_id);
    let spike = must(
        &p.families,
        "redis_latency_spike_duration_seconds",
        &[("event_name", "command")],
    );
    assert!((0.05..1.0).contains(&spike), "latency spike of {spike} s");
    let spike_at = must(
        &p.families,
        "redis_latency_spike_last",
        &[("event_name", "command")],
    );
    assert!((now() - spike_at).abs() < 120.0, "spike at {spike_at}");

    // Instance info and a few plain values, against the server.
    for (what, families, info) in [
        ("primary", &p.families, &p_info),
        ("replica", &r.families, &r_info),
    ] {
        let wanted = instance_labels(info);
        assert_eq!(
            samples(families, "redis_instance_info"),
            BTreeMap::from([(wanted, 1.0)]),
            "{what}"
        );
        assert_eq!(
            scalar(families, "redis_max_clients"),
            info["maxclients"].parse::<f64>().unwrap(),
            "{what}"
        );
        assert_eq!(
            scalar(families, "redis_config_maxclients"),
            info["maxclients"].parse::<f64>().unwrap(),
            "{what}"
        );
        assert_eq!(
            scalar(families, "redis_process_id"),
            info["process_id"].parse::<f64>().unwrap(),
            "{what}"
        );
        let uptime: f64 = info["uptime_in_seconds"].parse().unwrap();
        let start = scalar(families, "redis_start_time_seconds");
        assert!(
            (start - (now() - uptime)).abs() < 5.0,
            "{what}: start time {start}, uptime {uptime}"
        );
        assert_eq!(scalar(families, "redis_rdb_last_bgsave_status"), 1.0);
    }
    assert_eq!(p_info["role"], "master");
    assert_eq!(r_info["role"], "slave");
    assert_eq!(p_info["tcp_port"], primary.port().to_string());
    let fork_usec: f64 = p_info["latest_fork_usec"].parse().unwrap();
    let fork_seconds = scalar(&p.families, "redis_latest_fork_seconds");
    assert!(
        fork_usec > 0.0 && (fork_seconds - fork_usec / 1e6).abs() < 1e-12,
        "{fork_seconds} s vs {fork_usec} µs"
    );

    // Counters typed as counters, gauges as gauges (the full check is in `Expected::check`).
    for name in [
        "redis_commands_processed_total",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_connections_received_total",
        "redis_net_input_bytes_total",
        "redis_cpu_sys_seconds_total",
        "redis_expired_keys_total",
        "redis_evicted_keys_total",
        "redis_commands_total",
        "redis_errors_total",
        "redis_rdb_saves_total",
        "redis_replica_resyncs_full",
        "redis_defrag_hits",
        "redis_total_error_replies",
    ] {
        assert_eq!(kind_of(&p.families, name), MetricType::COUNTER, "{name}");
    }
    for name in [
        "redis_connected_clients",
        "redis_memory_used_bytes",
        "redis_db_keys",
        "redis_migrate_cached_sockets_total",
        "redis_memory_used_vm_total",
    ] {
        assert_eq!(kind_of(&p.families, name), MetricType::GAUGE, "{name}");
    }
    assert!(
        !names(&p.families).contains("redis_up"),
        "redis_up is the engine's"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Password authentication

/// A password with characters URL and shell quoting would break.
const PASSWORD: &str = "s3cr#t pw/'\"x";
const WRONG: &str = "Wr0ng-pa55word-9fj2";

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn assert_secret_hidden(collector: &RedisCollector, outcome: &Outcome, secrets: &[&str]) {
    let mut texts = vec![format!("{collector:?}"), format!("{outcome:?}")];
    texts.extend(outcome.errors.iter().map(error_chain));
    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} shown in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requirepass_authenticates_and_never_shows_the_password() {
    let server = Redis::start(Opts {
        password: Some(PASSWORD.to_owned()),
        ..Opts::default()
    });
    let encoded = percent_encode(PASSWORD);

    // Right password in the settings.
    let mut good = settings(&server);
    good.password = Some(SecretString::from(PASSWORD.to_owned()));
    let good = build(good);
    let outcome = scrape_ok(&good).await;
    assert!(find(&outcome.families, "redis_instance_info").is_some());
    assert_secret_hidden(&good, &outcome, &[PASSWORD, &encoded]);

    // Wrong password: down, and neither password anywhere.
    let mut bad = settings(&server);
    bad.password = Some(SecretString::from(WRONG.to_owned()));
    let bad = build(bad);
    let outcome = scrape(&bad, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a wrong password");
    assert!(!outcome.errors.is_empty());
    assert!(find(&outcome.families, "redis_instance_info").is_none());
    assert_secret_hidden(&bad, &outcome, &[PASSWORD, WRONG, &encoded]);

    // No password: down.
    let none = build(settings(&server));
    let outcome = scrape(&none, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up without a password");

    // Password in the URL (percent-encoded): works, shown nowhere.
    let url = format!("redis://:{encoded}@127.0.0.1:{}", server.port());
    let parsed = ParsedUrl::parse(&url).unwrap();
    assert!(!format!("{parsed:?}").contains(&encoded));
    let in_url = build(RedisSettings::new(parsed));
    let outcome = scrape_ok(&in_url).await;
    assert_secret_hidden(&in_url, &outcome, &[PASSWORD, &encoded]);

    // Wrong password in the URL: down, shown nowhere.
    let url = format!("redis://:{WRONG}@127.0.0.1:{}", server.port());
    let wrong_in_url = build(settings_for(&url));
    let outcome = scrape(&wrong_in_url, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a wrong password in the URL");
    assert_secret_hidden(&wrong_in_url, &outcome, &[PASSWORD, WRONG, &encoded]);

    // The server saw the failed attempts as auth failures, not as something else.
    assert!(server.info_item("errorstats", "errorstat_WRONGPASS", "count") >= 2.0);
}

// ---------------------------------------------------------------------------------------------
// 3. An ACL user with limited rights

const LIMITED_PASSWORD: &str = "limited pw";

/// The server-side counters a refused command moves.
fn refusals(server: &Redis) -> BTreeMap<&'static str, f64> {
    BTreeMap::from([
        (
            "errorstat_NOPERM",
            server.info_item("errorstats", "errorstat_NOPERM", "count"),
        ),
        (
            "total_error_replies",
            server.info_number("stats", "total_error_replies"),
        ),
        (
            "config|get rejected",
            server.info_item("commandstats", "cmdstat_config|get", "rejected_calls"),
        ),
        (
            "latency|latest rejected",
            server.info_item("commandstats", "cmdstat_latency|latest", "rejected_calls"),
        ),
        (
            "slowlog|len rejected",
            server.info_item("commandstats", "cmdstat_slowlog|len", "rejected_calls"),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again() {
    let server = Redis::start(Opts {
        args: [
            "--user",
            "limited",
            "on",
            &format!(">{LIMITED_PASSWORD}"),
            "~*",
            "&*",
            "-@all",
            "+@connection",
            "+info",
            "+select",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Opts::default()
    });
    // The user is what we think it is.
    let acl = server.cli(&["ACL", "GETUSER", "limited"]);
    assert!(acl.contains("+info"), "{acl}");
    server.cli(&["SET", "some", "key"]);

    let mut limited = settings(&server);
    limited.user = Some("limited".to_owned());
    limited.password = Some(SecretString::from(LIMITED_PASSWORD.to_owned()));
    let limited = build(limited);

    let first = scrape_up(&limited).await;
    let after_first = refusals(&server);
    let second = scrape_ok(&limited).await;
    let after_second = refusals(&server);
    let third = scrape_ok(&limited).await;
    let after_third = refusals(&server);
    eprintln!("refusals after scrapes 1, 2, 3: {after_first:?} {after_second:?} {after_third:?}");

    for (what, outcome) in [("first", &first), ("second", &second), ("third", &third)] {
        assert_all_valid(&outcome.families);
        let names = names(&outcome.families);
        let forbidden: Vec<_> = names
            .iter()
            .filter(|n| {
                n.starts_with("redis_config_")
                    || n.starts_with("redis_slowlog_")
                    || n.starts_with("redis_latency_spike")
                    || *n == "redis_last_slow_execution_duration_seconds"
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "{what} scrape: families from refused commands: {forbidden:?}"
        );
        // INFO works: the core families are there.
        for name in [
            "redis_instance_info",
            "redis_connected_clients",
            "redis_commands_processed_total",
            "redis_db_keys",
        ] {
            assert!(names.contains(name), "{what} scrape: {name} missing");
        }
    }
    // Later scrapes do not send the refused commands again.
    assert_eq!(after_second, after_first, "scrape 2 was refused again");
    assert_eq!(after_third, after_second, "scrape 3 was refused again");
}

// ---------------------------------------------------------------------------------------------
// 4. TLS

fn tls_server(pki: &Pki, auth_clients: bool) -> Redis {
    let leaf = pki.leaf(
        &["localhost", "127.0.0.1"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = pki.client_leaf();
    Redis::start(Opts {
        tls: Some(ServerTls {
            ca_pem: pki.ca_pem.clone(),
            cert_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            auth_clients,
            client: Some((client.cert_pem, client.key_pem)),
        }),
        ..Opts::default()
    })
}

fn with_ca(server: &Redis, ca_pem: &str) -> RedisSettings {
    let mut settings = settings(server);
    assert!(settings.url.tls, "a TLS server's URL is rediss://");
    settings.tls = Some(RedisTls {
        ca_pem: Some(ca_pem.as_bytes().to_vec()),
        ..RedisTls::default()
    });
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verifies_the_server_against_the_configured_ca() {
    let pki = Pki::new("redis test CA");
    let server = tls_server(&pki, false);

    let verified = build(with_ca(&server, &pki.ca_pem));
    let outcome = scrape_ok(&verified).await;
    assert_eq!(
        must(
            &outcome.families,
            "redis_instance_info",
            &instance_labels(&server.info("all"))
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>()
        ),
        1.0
    );

    // A server certificate from another CA is refused.
    let other = Pki::new("another CA");
    let refused = build(with_ca(&server, &other.ca_pem));
    let outcome = scrape(&refused, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a server certificate from another CA");
    assert!(
        matches!(outcome.errors.as_slice(), [CollectError::Connect { .. }]),
        "{:?}",
        outcome.errors
    );

    // Plain RESP to the TLS port does not pass for a server.
    let plain = build(settings_for(&format!(
        "redis://127.0.0.1:{}",
        server.port()
    )));
    let outcome = scrape(&plain, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up speaking plain RESP to a TLS port");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_client_certificate_when_the_server_requires_one() {
    let pki = Pki::new("redis mTLS CA");
    let server = tls_server(&pki, true);

    // Without a client certificate: refused.
    let anonymous = build(with_ca(&server, &pki.ca_pem));
    let outcome = scrape(&anonymous, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up without a client certificate");

    // With one signed by the CA the server trusts: up.
    let client = pki.client_leaf();
    let mut settings = with_ca(&server, &pki.ca_pem);
    let tls = settings.tls.as_mut().unwrap();
    tls.cert_pem = Some(client.cert_pem.as_bytes().to_vec());
    tls.key_pem = Some(SecretBytes::from(client.key_pem.as_bytes().to_vec()));
    let authenticated = build(settings);
    let outcome = scrape_ok(&authenticated).await;
    assert!(find(&outcome.families, "redis_connected_clients").is_some());
    let debug = format!("{authenticated:?}");
    assert!(
        !debug.contains("PRIVATE KEY"),
        "key material in Debug: {debug}"
    );

    // With one from a CA the server does not trust: refused.
    let stranger = Pki::new("stranger CA").client_leaf();
    let mut settings = with_ca(&server, &pki.ca_pem);
    let tls = settings.tls.as_mut().unwrap();
    tls.cert_pem = Some(stranger.cert_pem.as_bytes().to_vec());
    tls.key_pem = Some(SecretBytes::from(stranger.key_pem.as_bytes().to_vec()));
    let outcome = scrape(&build(settings), Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a client certificate from another CA");
}

// ---------------------------------------------------------------------------------------------
// 5. CONFIG renamed

#[tokio::test(flavor = "multi_thread")]
async fn config_renamed_away_is_skipped_without_error_spam() {
    let server = Redis::start(Opts {
        args: ["--rename-command", "CONFIG", ""]
            .map(str::to_owned)
            .to_vec(),
        ..Opts::default()
    });
    let errors = |server: &Redis| {
        (
            server.info_number("stats", "total_error_replies"),
            server.info_item("errorstats", "errorstat_ERR", "count"),
        )
    };
    assert_eq!(errors(&server), (0.0, 0.0));
    let collector = build(settings(&server));

    let first = scrape_up(&collector).await;
    let after_first = errors(&server);
    let mut later = Vec::new();
    for _ in 0..2 {
        later.push(scrape_ok(&collector).await);
        assert_eq!(
            errors(&server),
            after_first,
            "a scrape after the first sent the missing CONFIG again"
        );
    }
    for outcome in std::iter::once(&first).chain(&later) {
        assert_all_valid(&outcome.families);
        let config: Vec<_> = names(&outcome.families)
            .into_iter()
            .filter(|n| n.starts_with("redis_config_"))
            .collect();
        assert!(
            config.is_empty(),
            "config families without CONFIG: {config:?}"
        );
        assert!(find(&outcome.families, "redis_instance_info").is_some());
    }

    // `config_command: None` never sends it: not even the first scrape costs an error.
    let mut never = settings(&server);
    never.config_command = None;
    let never = build(never);
    let before = errors(&server);
    for _ in 0..2 {
        let outcome = scrape_ok(&never).await;
        assert!(
            !names(&outcome.families)
                .iter()
                .any(|n| n.starts_with("redis_config_"))
        );
    }
    assert_eq!(errors(&server), before, "config_command None still sent it");
}

/// redis-compat.md §5: without `CONFIG GET databases` (CONFIG refused or renamed away), redis_exporter
/// zero-fills `redis_db_keys` and `redis_db_keys_expiring` for 16 databases.
#[tokio::test(flavor = "multi_thread")]
async fn without_config_the_keyspace_is_zero_filled_for_16_databases_as_upstream() {
    let server = Redis::start(Opts {
        args: ["--rename-command", "CONFIG", ""]
            .map(str::to_owned)
            .to_vec(),
        ..Opts::default()
    });
    server.cli(&["SET", "one", "1"]);
    let collector = build(settings(&server));
    for _ in 0..2 {
        let outcome = scrape_up(&collector).await;
        assert_eq!(
            samples(&outcome.families, "redis_db_keys"),
            db_values(&[("db0", 1.0)]),
        );
        assert_eq!(
            samples(&outcome.families, "redis_db_keys_expiring"),
            db_values(&[]),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn config_renamed_to_another_name_is_used_under_that_name() {
    let server = Redis::start(Opts {
        args: ["--rename-command", "CONFIG", "MYCONFIG"]
            .map(str::to_owned)
            .to_vec(),
        ..Opts::default()
    });
    server.cli(&["MYCONFIG", "SET", "maxclients", "1234"]);
    let mut renamed = settings(&server);
    renamed.config_command = Some("MYCONFIG".to_owned());
    let renamed = build(renamed);
    for _ in 0..2 {
        let outcome = scrape_ok(&renamed).await;
        assert_eq!(scalar(&outcome.families, "redis_config_maxclients"), 1234.0);
        let maxmemory: f64 = server
            .cli(&["MYCONFIG", "GET", "maxmemory"])
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            scalar(&outcome.families, "redis_config_maxmemory"),
            maxmemory
        );
        assert!(
            find(
                &outcome.families,
                "redis_config_client_output_buffer_limit_bytes"
            )
            .is_some()
        );
    }
    assert_eq!(
        server.info_number("stats", "total_error_replies"),
        0.0,
        "scraping with the renamed CONFIG caused error replies"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Restart

#[tokio::test(flavor = "multi_thread")]
async fn the_same_collector_recovers_after_the_server_is_killed_and_restarted() {
    let mut server = Redis::start(Opts::default());
    let collector = build(settings(&server));
    let before = scrape_ok(&collector).await;
    let run_id = |outcome: &Outcome| {
        let family = family(&outcome.families, "redis_instance_info");
        labels(&family.get_metric()[0])["run_id"].clone()
    };
    let first_run = run_id(&before);
    assert_eq!(first_run, server.info("server")["run_id"]);

    // Killed: down by the deadline, not hanging on the dead connection.
    server.kill_server();
    let start = Instant::now();
    let down = scrape(&collector, Duration::from_secs(2)).await;
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(!down.up, "up with the server killed");
    assert!(!down.errors.is_empty());

    // Restarted on the same port: the next scrape is up again, from the new server.
    server.restart();
    let after = scrape_ok(&collector).await;
    let second_run = run_id(&after);
    assert_eq!(second_run, server.info("server")["run_id"]);
    assert_ne!(second_run, first_run);

    // Killed and restarted between two scrapes (the kept connection is dead but nobody noticed):
    // up again by the second scrape at the latest.
    server.kill_server();
    server.restart();
    let third_run = server.info("server")["run_id"].clone();
    let mut outcome = scrape(&collector, Duration::from_secs(5)).await;
    if !outcome.up {
        eprintln!("first scrape after an unseen restart: {:?}", outcome.errors);
        outcome = scrape(&collector, Duration::from_secs(5)).await;
    }
    assert!(outcome.up, "still down: {:?}", outcome.errors);
    assert_eq!(run_id(&outcome), third_run);
}

// ---------------------------------------------------------------------------------------------
// 7. A listener that never answers

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_listener_is_down_with_a_timeout_by_the_deadline() {
    let addr = support::silent().await;
    let collector = build(settings_for(&format!("redis://{addr}")));
    let budget = Duration::from_secs(1);
    for what in ["first scrape", "second scrape"] {
        let start = Instant::now();
        let outcome = scrape(&collector, budget).await;
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{what}: took {elapsed:?}");
        assert!(!outcome.up, "{what}: up against a silent peer");
        assert!(
            matches!(outcome.errors.as_slice(), [CollectError::Timeout(_)]),
            "{what}: {:?}",
            outcome.errors
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Key checks

const POPULATED: usize = 100_000;

fn populated() -> Redis {
    let server = Redis::start(Opts::default());
    server.cli(&["DEBUG", "POPULATE", &POPULATED.to_string(), "key"]);
    assert_eq!(server.cli(&["DBSIZE"]), POPULATED.to_string());
    server
}

fn key_sizes(families: &[MetricFamily]) -> BTreeMap<String, f64> {
    find(families, "redis_key_size")
        .map(|f| {
            f.get_metric()
                .iter()
                .map(|m| {
                    let labels = labels(m);
                    assert_eq!(labels.len(), 2, "{labels:?}");
                    assert_eq!(labels["db"], "db0");
                    (labels["key"].clone(), value(f, m))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn key_checks_on_100k_keys_stay_within_the_budget() {
    let server = populated();
    let mut settings = settings(&server);
    settings.check_keys = vec!["key:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1000,
        max_time: Duration::from_millis(200),
    };
    let collector = build(settings);
    for _ in 0..2 {
        let start = Instant::now();
        let outcome = scrape_up(&collector).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_millis(200) + Duration::from_millis(1300),
            "a 200 ms key budget took {elapsed:?}"
        );
        assert_all_valid(&outcome.families);
        let sizes = key_sizes(&outcome.families);
        assert!(
            !sizes.is_empty() && sizes.len() <= 1000,
            "{} keys sized",
            sizes.len()
        );
        // DEBUG POPULATE's values are `value:<n>` for `key:<n>`: sizes are their lengths.
        for (key, size) in sizes.iter().take(20) {
            let n = key.strip_prefix("key:").unwrap();
            assert_eq!(*size, format!("value:{n}").len() as f64, "{key}");
        }
        assert_eq!(scalar(&outcome.families, BUDGET_EXCEEDED), 1.0);
    }

    // The key budget alone stops the checks too.
    let mut few = settings_for(&server.url());
    few.check_keys = vec!["key:*".to_owned()];
    few.key_check_budget = KeyBudget {
        max_keys: 50,
        max_time: Duration::from_secs(5),
    };
    let outcome = scrape_up(&build(few)).await;
    let sizes = key_sizes(&outcome.families);
    assert!(
        !sizes.is_empty() && sizes.len() <= 50,
        "{} keys",
        sizes.len()
    );
    assert_eq!(scalar(&outcome.families, BUDGET_EXCEEDED), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_counts_single_keys_and_values_within_a_sufficient_budget() {
    let server = populated();
    for i in 0..3 {
        server.cli(&["SET", &format!("small:{i}"), "x"]);
    }
    server.cli(&["RPUSH", "jobs:pending", "a", "b", "c", "d"]);
    server.cli(&["SET", "counter", "42"]);
    let mut settings = settings(&server);
    settings.check_keys = vec!["small:*".to_owned()];
    settings.check_single_keys = vec![
        "jobs:pending".to_owned(),
        "counter".to_owned(),
        "missing".to_owned(),
    ];
    settings.count_keys = vec!["small:*".to_owned(), "key:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1_000_000,
        max_time: Duration::from_secs(20),
    };
    let collector = build(settings);
    let outcome = scrape_up(&collector).await;
    assert_all_valid(&outcome.families);
    assert_eq!(scalar(&outcome.families, BUDGET_EXCEEDED), 0.0);

    let sizes = key_sizes(&outcome.families);
    assert_eq!(
        sizes,
        BTreeMap::from([
            ("small:0".to_owned(), 1.0),
            ("small:1".to_owned(), 1.0),
            ("small:2".to_owned(), 1.0),
            ("jobs:pending".to_owned(), 4.0),
            ("counter".to_owned(), 2.0),
        ]),
        "sizes of the matched and single keys; the missing key absent"
    );
    assert_eq!(
        must(
            &outcome.families,
            "redis_key_value",
            &[("db", "db0"), ("key", "counter")]
        ),
        42.0
    );
    assert!(
        sample(
            &outcome.families,
            "redis_key_value",
            &[("db", "db0"), ("key", "jobs:pending")]
        )
        .is_none(),
        "a list has no value"
    );
    assert_eq!(
        samples(&outcome.families, "redis_keys_count"),
        BTreeMap::from([
            (label_set(&[("db", "db0"), ("key", "small:*")]), 3.0),
            (
                label_set(&[("db", "db0"), ("key", "key:*")]),
                POPULATED as f64
            ),
        ])
    );
    assert_eq!(
        kind_of(&outcome.families, "redis_keys_count"),
        MetricType::GAUGE
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Custom commands

fn custom(metric: &str, command: &[&str], kind: Kind) -> CustomCommand {
    CustomCommand {
        metric: metric.to_owned(),
        help: format!("{metric} from a custom command"),
        command: command.iter().map(|c| (*c).to_owned()).collect(),
        kind,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_read_only_commands_become_metrics_and_fail_alone() {
    let server = Redis::start(Opts::default());
    server.cli(&["RPUSH", "jobs:pending", "a", "b", "c", "d", "e"]);
    server.cli(&["SET", "plain", "text"]);

    let mut settings = settings(&server);
    settings.commands = vec![
        custom("redis_queue_length", &["LLEN", "jobs:pending"], Kind::Gauge),
        // LLEN on a string: WRONGTYPE.
        custom("redis_broken_length", &["LLEN", "plain"], Kind::Gauge),
    ];
    let collector = build(settings);
    let outcome = scrape_up(&collector).await;
    assert_all_valid(&outcome.families);
    assert_eq!(scalar(&outcome.families, "redis_queue_length"), 5.0);
    assert_eq!(
        kind_of(&outcome.families, "redis_queue_length"),
        MetricType::GAUGE
    );
    assert!(
        find(&outcome.families, "redis_broken_length").is_none(),
        "a failed command still produced its metric"
    );
    assert!(find(&outcome.families, "redis_instance_info").is_some());
    server.cli(&["RPUSH", "jobs:pending", "f"]);
    let outcome = scrape_up(&collector).await;
    assert_eq!(scalar(&outcome.families, "redis_queue_length"), 6.0);

    // Commands off the read-only allow-list are refused when the collector is built.
    for command in [
        &["DEL", "jobs:pending"][..],
        &["FLUSHALL"],
        &["CONFIG", "SET", "maxmemory", "1"],
        &["EVAL", "return redis.call('DEL', 'jobs:pending')", "0"],
        &["SET", "plain", "1"],
        &["LPOP", "jobs:pending"],
    ] {
        let mut settings = settings_for(&server.url());
        settings.commands = vec![custom("redis_bad", command, Kind::Gauge)];
        match RedisCollector::new(settings) {
            Err(error) => assert!(
                error.field.starts_with("commands"),
                "{command:?}: field {:?}",
                error.field
            ),
            Ok(_) => panic!("{command:?} accepted as a custom command"),
        }
    }
    assert_eq!(server.cli(&["LLEN", "jobs:pending"]), "6", "something ran");
}

// ---------------------------------------------------------------------------------------------
// 10. Transient errors, awkward keys, key checks without GET, settings refused up front

/// A Lua script that keeps the server busy for 2 to 3 seconds (whole seconds of `TIME` apart).
const BUSY_SCRIPT: &str = "local t=redis.call('TIME') while true do local n=redis.call('TIME') \
                           if n[1]-t[1]>=3 then break end end return 1";

/// BUSY is an answer about now, not a refusal: a scrape while a script runs may be down, but once the
/// script is over the next scrape has INFO ALL (commandstats, latencystats), CONFIG, LATENCY and
/// SLOWLOG data again.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_script_is_transient_and_the_next_scrape_has_everything_again() {
    let server = Redis::start(Opts {
        args: [
            "--busy-reply-threshold",
            "100",
            // Only the script is slow enough for the latency monitor and the slowlog, so the newest
            // event and entry are the script's even on a loaded machine.
            "--latency-monitor-threshold",
            "500",
            "--slowlog-log-slower-than",
            "500000",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Opts::default()
    });
    server.cli(&["SET", "k", "v"]);
    let collector = build(settings(&server));
    let before = scrape_ok(&collector).await;
    for name in ["redis_commands_total", "redis_latency_percentiles_usec"] {
        assert!(
            find(&before.families, name).is_some(),
            "{name} missing before"
        );
    }

    // The script runs; wait until the server answers BUSY, then scrape while it still does.
    let script = server.cli_background(&["EVAL", BUSY_SCRIPT, "0"]);
    let mut busy_probes = 0.0;
    let waiting = std::time::Instant::now();
    loop {
        match server.try_cli(&["PING"]) {
            Err(text) if text.contains("BUSY") => {
                busy_probes += 1.0;
                break;
            }
            Err(text) => panic!("PING failed otherwise: {text}"),
            Ok(_) => {
                assert!(
                    waiting.elapsed() < Duration::from_secs(10),
                    "the server never became busy"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let during = scrape(&collector, Duration::from_secs(5)).await;
    eprintln!(
        "scrape during the script: up {}, errors {:?}",
        during.up, during.errors
    );
    let output = script.wait(Duration::from_secs(30));
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "1",
        "the script failed: {output:?}"
    );
    // The scrape really was answered BUSY (else this test shows nothing).
    let busy_replies = server.info_item("errorstats", "errorstat_BUSY", "count");
    assert!(
        busy_replies > busy_probes,
        "the scrape during the script got no BUSY reply ({busy_replies} BUSY replies, \
         {busy_probes} ours)"
    );

    // The next scrape: everything again, from INFO ALL, CONFIG, LATENCY LATEST and SLOWLOG.
    let after = scrape_ok(&collector).await;
    let info = server.info("all");
    assert_all_valid(&after.families);
    let eval_calls: f64 = parse_pairs(&info["cmdstat_eval"])["calls"].parse().unwrap();
    assert_eq!(
        must(&after.families, "redis_commands_total", &[("cmd", "eval")]),
        eval_calls,
        "commandstats (INFO ALL) missing after the script ended"
    );
    assert!(
        family(&after.families, "redis_latency_percentiles_usec")
            .get_metric()
            .iter()
            .any(|m| labels(m) == label_set(&[("cmd", "eval")])),
        "latencystats (INFO ALL) missing after the script ended"
    );
    assert_eq!(
        must(&after.families, "redis_errors_total", &[("err", "BUSY")]),
        info["errorstat_BUSY"]
            .strip_prefix("count=")
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        "errorstats (INFO ALL)"
    );
    assert_eq!(
        scalar(&after.families, "redis_config_maxclients"),
        info["maxclients"].parse::<f64>().unwrap(),
        "CONFIG not asked again after BUSY"
    );
    let spike = must(
        &after.families,
        "redis_latency_spike_duration_seconds",
        &[("event_name", "command")],
    );
    assert!(
        spike >= 1.0,
        "LATENCY LATEST: the script's {spike} s spike (the script ran 2 s or more)"
    );
    let slowlog_len: f64 = server.cli(&["SLOWLOG", "LEN"]).parse().unwrap();
    assert_eq!(
        scalar(&after.families, "redis_slowlog_length"),
        slowlog_len,
        "SLOWLOG not asked again after BUSY"
    );
    let slowest = scalar(
        &after.families,
        "redis_last_slow_execution_duration_seconds",
    );
    assert!(
        slowest >= 1.0,
        "newest slowlog entry (the script): {slowest} s"
    );
    // Nothing that was there before the script is missing after it.
    let missing: Vec<_> = names(&before.families)
        .difference(&names(&after.families))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "gone after a BUSY scrape: {missing:?}");
}

/// A key whose name is not UTF-8 does not fail the key checks: the other keys are sized, and that one
/// is either sized under its lossy name (`q:\u{fffd}`) or left out.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_name_that_is_not_utf8_does_not_fail_the_key_checks() {
    let server = Redis::start(Opts::default());
    server.pipe(&resp(&[b"SET", b"q:\xff", b"1"]));
    server.cli(&["SET", "q:plain", "hello"]);
    server.cli(&["RPUSH", "q:list", "a", "b", "c"]);
    server.cli(&["SET", "other", "x"]);
    // The raw key is there, under its raw name.
    let listed = server.cli(&["--no-raw", "SCAN", "0", "MATCH", "q:*", "COUNT", "1000"]);
    assert!(listed.contains(r"q:\xff"), "{listed}");
    assert_eq!(server.cli(&["DBSIZE"]), "4");

    let mut settings = settings(&server);
    settings.check_keys = vec!["q:*".to_owned()];
    let collector = build(settings);
    for what in ["first", "second"] {
        let outcome = scrape_ok(&collector).await;
        assert_all_valid(&outcome.families);
        assert_eq!(
            scalar(&outcome.families, BUDGET_EXCEEDED),
            0.0,
            "{what} scrape"
        );
        let mut sizes = key_sizes(&outcome.families);
        assert_eq!(
            sizes.remove("q:plain"),
            Some(5.0),
            "{what} scrape: {sizes:?}"
        );
        assert_eq!(
            sizes.remove("q:list"),
            Some(3.0),
            "{what} scrape: {sizes:?}"
        );
        match sizes.remove("q:\u{fffd}") {
            Some(size) => {
                assert_eq!(size, 1.0, "{what} scrape: the lossy-named key's size");
                eprintln!("{what} scrape: the non-UTF-8 key is sized under q:\\u{{fffd}}");
            }
            None => eprintln!("{what} scrape: the non-UTF-8 key is skipped"),
        }
        assert!(
            sizes.is_empty(),
            "{what} scrape: other keys sized: {sizes:?}"
        );
    }
}

const NO_GET_PASSWORD: &str = "no get pw";

/// A user that may size keys but not read them: sizes without values, no errors, and GET is not
/// refused again on later scrapes.
#[tokio::test(flavor = "multi_thread")]
async fn key_checks_under_an_acl_user_without_get_size_keys_and_remember_the_refusal() {
    let server = Redis::start(Opts {
        args: [
            "--user",
            "noget",
            "on",
            &format!(">{NO_GET_PASSWORD}"),
            "~*",
            "&*",
            "-@all",
            "+@connection",
            "+info",
            "+scan",
            "+type",
            "+strlen",
            "+llen",
            "+config|get",
            "+latency",
            "+slowlog",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Opts::default()
    });
    // The user is what we think it is: STRLEN yes, GET no.
    assert_eq!(
        server.cli(&["ACL", "DRYRUN", "noget", "STRLEN", "s:text"]),
        "OK"
    );
    let dry = server.cli(&["ACL", "DRYRUN", "noget", "GET", "s:text"]);
    assert!(dry.contains("no permissions"), "{dry}");
    server.cli(&["SET", "s:text", "hello"]);
    server.cli(&["SET", "s:number", "42"]);
    server.cli(&["RPUSH", "s:list", "a", "b", "c", "d"]);

    let mut noget = settings(&server);
    noget.user = Some("noget".to_owned());
    noget.password = Some(SecretString::from(NO_GET_PASSWORD.to_owned()));
    noget.check_keys = vec!["s:*".to_owned()];
    let noget = build(noget);

    let first = scrape_up(&noget).await;
    let after_first = refusals(&server);
    let second = scrape_ok(&noget).await;
    let after_second = refusals(&server);
    let third = scrape_ok(&noget).await;
    let after_third = refusals(&server);
    eprintln!(
        "first scrape errors: {:?}; refusals after scrapes 1, 2, 3: {after_first:?} \
         {after_second:?} {after_third:?}",
        first.errors
    );
    let wanted = BTreeMap::from([
        ("s:list".to_owned(), 4.0),
        ("s:number".to_owned(), 2.0),
        ("s:text".to_owned(), 5.0),
    ]);
    for (what, outcome) in [("first", &first), ("second", &second), ("third", &third)] {
        assert_all_valid(&outcome.families);
        assert_eq!(key_sizes(&outcome.families), wanted, "{what} scrape");
        assert!(
            find(&outcome.families, "redis_key_value").is_none(),
            "{what} scrape: a value without GET"
        );
        assert_eq!(
            scalar(&outcome.families, BUDGET_EXCEEDED),
            0.0,
            "{what} scrape"
        );
    }
    assert_eq!(
        after_third, after_second,
        "scrape 3 was refused again (GET sent again?)"
    );
}

/// A numeric string gives its value; a long string is sized but never read.
#[tokio::test(flavor = "multi_thread")]
async fn a_numeric_key_gives_its_value_and_a_long_string_is_sized_but_never_read() {
    const LONG: usize = 1 << 20;
    let server = Redis::start(Opts::default());
    // A long string that would parse as a number (42) if it were read.
    let mut long = vec![b'0'; LONG - 2];
    long.extend_from_slice(b"42");
    server.pipe(&resp(&[b"SET", b"big", &long]));
    assert_eq!(server.cli(&["STRLEN", "big"]), LONG.to_string());
    server.cli(&["SET", "n:number", "42.5"]);

    // Only the long key matched: no GET, and far less than its size sent.
    let mut only_long = settings(&server);
    only_long.check_keys = vec!["big*".to_owned()];
    let only_long = build(only_long);
    scrape_ok(&only_long).await; // the connection is made; its setup is not what is measured
    for _ in 0..2 {
        let gets_before = server.info_item("commandstats", "cmdstat_get", "calls");
        let sent_before = server.info_number("stats", "total_net_output_bytes");
        let outcome = scrape_ok(&only_long).await;
        let sent = server.info_number("stats", "total_net_output_bytes") - sent_before;
        let gets = server.info_item("commandstats", "cmdstat_get", "calls") - gets_before;
        assert_eq!(
            key_sizes(&outcome.families),
            BTreeMap::from([("big".to_owned(), LONG as f64)])
        );
        assert!(
            find(&outcome.families, "redis_key_value").is_none(),
            "the long string's value was reported"
        );
        assert_eq!(gets, 0.0, "GET sent for the long string");
        assert!(
            sent < (LONG / 4) as f64,
            "the server sent {sent} bytes during a scrape of a {LONG}-byte key"
        );
    }

    // Both: the number's value, the long string's size only.
    let mut both = settings(&server);
    both.check_keys = vec!["n:*".to_owned(), "big*".to_owned()];
    let both = build(both);
    let outcome = scrape_ok(&both).await;
    assert_eq!(
        key_sizes(&outcome.families),
        BTreeMap::from([
            ("big".to_owned(), LONG as f64),
            ("n:number".to_owned(), 4.0)
        ])
    );
    assert_eq!(
        samples(&outcome.families, "redis_key_value"),
        BTreeMap::from([(label_set(&[("db", "db0"), ("key", "n:number")]), 42.5)])
    );
}

/// How long one full `SCAN 0 MATCH pattern COUNT 1000` pass takes on `server` (the best of three).
async fn full_scan_time(server: &Redis, pattern: &str) -> (Duration, usize) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let mut cursor = 0u64;
        found = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            found += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        best = best.min(start.elapsed());
    }
    (best, found)
}

/// A selective pattern on 100k keys with a time budget shorter than a full SCAN: the keys found
/// before the time runs out are sized (as SCAN batches come in), not dropped with the unfinished
/// SCAN.
#[tokio::test(flavor = "multi_thread")]
async fn a_selective_pattern_cut_off_by_time_still_sizes_the_keys_found_so_far() {
    const MATCHING: usize = 200;
    let server = populated();
    // q:<i> holds i+1 bytes.
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..MATCHING {
        mset.push(format!("q:{i}"));
        mset.push("v".repeat(i + 1));
    }
    server.cli(&mset.iter().map(String::as_str).collect::<Vec<_>>());
    let (full, found) = full_scan_time(&server, "q:*").await;
    assert_eq!(found, MATCHING);
    // 50 ms, or less on a machine that SCANs 100k keys in under 150 ms: the budget must cut the SCAN.
    let max_time = Duration::from_millis(50).min(full / 3);
    eprintln!("a full SCAN takes {full:?}; max_time {max_time:?}");

    let mut settings = settings(&server);
    settings.check_keys = vec!["q:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1000,
        max_time,
    };
    let collector = build(settings);
    for what in ["first", "second"] {
        let start = Instant::now();
        let outcome = scrape_up(&collector).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed < max_time + Duration::from_millis(1300),
            "{what} scrape: a {max_time:?} key budget took {elapsed:?}"
        );
        assert!(
            outcome.errors.is_empty(),
            "{what} scrape: {:?}",
            outcome.errors
        );
        assert_all_valid(&outcome.families);
        assert_eq!(
            scalar(&outcome.families, BUDGET_EXCEEDED),
            1.0,
            "{what} scrape: the SCAN finished within {max_time:?} (a full one takes {full:?})"
        );
        let sizes = key_sizes(&outcome.families);
        eprintln!("{what} scrape: {} of {MATCHING} keys sized", sizes.len());
        assert!(
            !sizes.is_empty(),
            "{what} scrape: the keys found before the time ran out were not sized"
        );
        assert!(sizes.len() <= MATCHING, "{what} scrape: {sizes:?}");
        for (key, size) in &sizes {
            let i: usize = key.strip_prefix("q:").unwrap().parse().unwrap();
            assert_eq!(*size, (i + 1) as f64, "{what} scrape: {key}");
        }
    }
}

/// A key-check time budget beyond reason is refused when the collector is built, not met with a panic
/// (an `Instant` overflow) at scrape time.
#[tokio::test(flavor = "multi_thread")]
async fn an_absurd_key_check_max_time_is_refused_up_front() {
    let server = Redis::start(Opts::default());
    server.cli(&["SET", "a:1", "x"]);
    for max_time in [
        Duration::from_secs(100 * 365 * 86400),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let mut settings = settings(&server);
        settings.check_keys = vec!["a:*".to_owned()];
        settings.key_check_budget = KeyBudget {
            max_keys: 1000,
            max_time,
        };
        match RedisCollector::new(settings) {
            Err(error) => assert_eq!(
                error.field, "key_check_budget.max_time",
                "{max_time:?}: {error:?}"
            ),
            Ok(_) => panic!("max_time {max_time:?} accepted"),
        }
    }
    // A long but sane budget is accepted and scrapes.
    let mut settings = settings(&server);
    settings.check_keys = vec!["a:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1000,
        max_time: Duration::from_secs(30 * 60),
    };
    let outcome = scrape_ok(&build(settings)).await;
    assert_eq!(
        key_sizes(&outcome.families),
        BTreeMap::from([("a:1".to_owned(), 1.0)])
    );
}

/// A custom metric may not take the name of a family the collector emits itself, nor the exporter's
/// own prefix.
#[test]
fn a_custom_metric_named_like_a_built_in_family_is_refused() {
    let url = "redis://127.0.0.1:6399";
    for metric in [
        "redis_db_keys",
        "redis_connected_clients",
        "fanout_exporter_key_check_budget_exceeded",
        "fanout_exporter_queue_length",
    ] {
        let mut settings = settings_for(url);
        settings.commands = vec![custom(metric, &["LLEN", "jobs"], Kind::Gauge)];
        match RedisCollector::new(settings) {
            Err(error) => assert_eq!(error.field, "commands[0].metric", "{metric}: {error:?}"),
            Ok(_) => panic!("custom metric {metric} accepted"),
        }
    }
    // A name of its own is fine.
    let mut settings = settings_for(url);
    settings.commands = vec![custom("redis_jobs_length", &["LLEN", "jobs"], Kind::Gauge)];
    RedisCollector::new(settings).unwrap();
}
