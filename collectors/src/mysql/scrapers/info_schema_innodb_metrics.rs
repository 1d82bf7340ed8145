//! `information_schema.innodb_metrics` (mysqld_exporter's `info_schema_innodb_metrics.go`): the
//! enabled InnoDB counters, typed by their own `type` column, with buffer page I/O and pool pages
//! grouped by label.

use super::super::{Flavor, MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use super::values::{counter_sample, push_normalized};
use crate::Families;

/// `collect.info_schema.innodb_metrics`: the column that says "enabled" depends on flavor and version.
pub(super) struct InnodbMetrics;

impl SubCollector for InnodbMetrics {
    fn statement(&self, server: &ServerInfo, _: &MysqlSettings, _: &[u64]) -> Option<String> {
        innodb_metrics_statement(server).map(str::to_owned)
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        innodb_metrics(rows, out);
    }
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

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::Scraper;

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
            ..Rows::default()
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
}
