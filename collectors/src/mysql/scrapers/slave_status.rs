//! Replication status (mysqld_exporter's `slave_status.go`): the statement for the flavor and
//! version, legacy names for the 8.0.22 renames, and MariaDB GTID positions per domain.

use super::super::{Flavor, MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use super::values::{parse_value, push_normalized};
use crate::Families;

/// `collect.slave_status`: the statement depends on flavor and version, the families do not.
pub(super) struct SlaveStatus;

impl SubCollector for SlaveStatus {
    fn statement(&self, server: &ServerInfo, _: &MysqlSettings, _: &[u64]) -> Option<String> {
        Some(slave_status_statement(server).to_owned())
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        slave_status(rows, out);
    }
}

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

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::Scraper;

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
    }

    #[test]
    fn column_names_are_normalized_to_the_legacy_names() {
        assert_eq!(
            slave_metric_name("Seconds_Behind_Source"),
            "mysql_slave_status_seconds_behind_master"
        );
        assert_eq!(
            slave_metric_name("Replicate_Do_DB"),
            "mysql_slave_status_replicate_do_db"
        );
    }

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
                ..Rows::default()
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

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn gtid_never_panics(raw in any::<String>()) {
                let _ = parse_gtid(&raw);
            }

            #[test]
            fn gtid_parses_back(domain in any::<u32>(), server in any::<u32>(), sequence in any::<u64>()) {
                let (d, s) = (domain.to_string(), server.to_string());
                let text = format!(" {domain}-{server}-{sequence} ");
                prop_assert_eq!(parse_gtid(&text), Some((d.as_str(), s.as_str(), sequence as f64)));
            }
        }
    }
}
