//! `SHOW GLOBAL STATUS` (mysqld_exporter's `global_status.go`): the grouped families, the curated
//! table that types the rest, and the Galera status families.

use super::super::{MysqlSettings, Rows, ServerInfo};
use super::values::{counter_sample, parse_value, push_normalized};
use super::{SubCollector, packed};
use crate::Families;

/// `collect.global_status`: the same pairs on every server, read the cheapest way the flavor offers.
pub(super) struct GlobalStatus;

impl SubCollector for GlobalStatus {
    /// One packed row from `information_schema` on MariaDB (see `packed`), `SHOW GLOBAL STATUS`
    /// elsewhere: the same pairs either way.
    fn statement(&self, server: &ServerInfo, _: &MysqlSettings, _: &[u64]) -> Option<String> {
        Some(packed::pairs_statement(
            server,
            "GLOBAL_STATUS",
            "SHOW GLOBAL STATUS",
        ))
    }

    fn rows(&self, fetched: Rows) -> Result<Rows, String> {
        packed::unpack(fetched)
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        global_status(rows, out);
    }
}

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

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::Scraper;

    #[test]
    fn statement_is_packed_on_mariadb_and_show_global_status() {
        let s = settings();
        let on = |flavor| statement(Scraper::GlobalStatus, &server(flavor, (8, 0, 36)), &s, &[]);
        assert_eq!(
            statement(Scraper::GlobalStatus, &mariadb(), &s, &[]),
            Some(super::packed::statement("GLOBAL_STATUS"))
        );
        assert_eq!(
            on(crate::mysql::Flavor::MySql).as_deref(),
            Some("SHOW GLOBAL STATUS")
        );
        assert_eq!(
            on(crate::mysql::Flavor::Percona).as_deref(),
            Some("SHOW GLOBAL STATUS")
        );
    }

    #[test]
    fn evs_latency() {
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
            ..Rows::default()
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

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn evs_latency_never_panics(raw in any::<String>()) {
                prop_assert!(parse_evs_latency(&raw).is_none_or(|v| v.iter().all(|x| x.is_finite())));
            }

            #[test]
            fn evs_latency_parses_back(values in proptest::array::uniform5(-1e12f64..1e12)) {
                let text: Vec<String> = values.iter().map(f64::to_string).collect();
                prop_assert_eq!(parse_evs_latency(&text.join("/")), Some(values));
            }
        }
    }
}
