use super::*;

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
    let instance: Vec<String> = instance_labels(info).into_keys().collect();
    let instance: Vec<&str> = instance.iter().map(String::as_str).collect();
    e.add("instance_info", MetricType::GAUGE, &instance);
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

/// `redis_instance_info`'s labels as the server reports them: redis_exporter's set, with Valkey's
/// `server_mode` under the name `redis_mode`, plus `valkey_version` and `valkey_release_stage` where
/// the server has them and a non-empty `availability_zone`.
pub(super) fn instance_labels(info: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = INSTANCE_INFO_LABELS
        .iter()
        .map(|l| {
            let value = info
                .get(*l)
                .or_else(|| {
                    (*l == "redis_mode")
                        .then(|| info.get("server_mode"))
                        .flatten()
                })
                .unwrap_or_else(|| panic!("INFO has no {l}"));
            ((*l).to_owned(), value.clone())
        })
        .collect();
    for optional in ["valkey_version", "valkey_release_stage"] {
        if let Some(value) = info.get(optional) {
            labels.insert(optional.to_owned(), value.clone());
        }
    }
    if let Some(zone) = info.get("availability_zone").filter(|z| !z.is_empty()) {
        labels.insert("availability_zone".to_owned(), zone.clone());
    }
    labels
}

/// The zero-filled `db` label values `db0`..`db15` with `known` values; everything else 0.
pub(super) fn db_values(known: &[(&str, f64)]) -> BTreeMap<BTreeMap<String, String>, f64> {
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
    primary_and_replica_report_redis_exporters_families_typed_and_labelled_on(Server::Redis).await;
}

/// [`primary_and_replica_report_redis_exporters_families_typed_and_labelled`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn primary_and_replica_report_redis_exporters_families_typed_and_labelled_on(
    server: Server,
) {
    let pair = Pair::start_on(server);
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
