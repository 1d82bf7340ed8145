//! `performance_schema.events_statements_summary_by_digest` (mysqld_exporter's
//! `perf_schema_events_statements.go`): the most expensive statement digests, one counter family per
//! summary column.

use super::super::{Flavor, MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use super::values::counter_sample;
use crate::Families;

/// `collect.perf_schema.eventsstatements`: skipped on servers without digest tables, bounded by the
/// configured limits otherwise.
pub(super) struct EventsStatements;

impl SubCollector for EventsStatements {
    fn statement(
        &self,
        server: &ServerInfo,
        settings: &MysqlSettings,
        _: &[u64],
    ) -> Option<String> {
        has_statement_digests(server).then(|| events_statements_statement(settings))
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        events_statements(rows, out);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::Scraper;

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
}
