//! `information_schema.processlist` (mysqld_exporter's `info_schema_processlist.go`): thread counts
//! and seconds by command and state, processes by user and by client host.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::super::{MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use crate::Families;

/// `collect.info_schema.processlist`: the statement leaves out our own connections and threads
/// younger than the configured minimum.
pub(super) struct Processlist;

impl SubCollector for Processlist {
    fn statement(&self, _: &ServerInfo, settings: &MysqlSettings, own: &[u64]) -> Option<String> {
        Some(processlist_statement(settings, own))
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, settings: &MysqlSettings, out: &mut Families) {
        processlist(rows, settings, out);
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
/// Unlike upstream, a state of punctuation only (`:`) is `unknown` too, not an empty label value,
/// which Prometheus would read as no label at all.
fn sanitize_state(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            ';' | ',' | ':' | '.' | '(' | ')' => {}
            ' ' | '-' => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
    }
    if out.is_empty() {
        out.push_str("unknown");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::Scraper;

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
    fn states_are_sanitized_like_mysqld_exporter() {
        assert_eq!(
            sanitize_state("Waiting for table metadata lock"),
            "waiting_for_table_metadata_lock"
        );
        assert_eq!(sanitize_state("Binlog Dump (GTID)"), "binlog_dump_gtid");
        assert_eq!(sanitize_state(""), "unknown");
        assert_eq!(sanitize_state("(:)"), "unknown");
    }

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
            ..Rows::default()
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

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn states_sanitize_to_one_word(raw in any::<String>()) {
                let label = sanitize_state(&raw);
                prop_assert!(!label.is_empty());
                prop_assert!(!label.contains([' ', '-', ';', ',', ':', '.', '(', ')']));
                prop_assert_eq!(sanitize_state(&label), label.clone(), "sanitizing is idempotent");
            }
        }
    }
}
