//! `information_schema.innodb_cmpmem` (mysqld_exporter's `info_schema_innodb_cmpmem.go`): the
//! compressed pages in the buffer pool by page size and buffer pool instance, and the buddy
//! allocator's relocations.
//!
//! # Compatibility
//! Names, label names and HELP are mysqld_exporter's, with two corrections:
//! - `..._pages_used_total` and `..._pages_free_total` are gauges. They count the blocks in use or
//!   free *now* and go down as often as up; mysqld_exporter types them counters, which tells tools
//!   that a drop is a reset. The names stay, so queries keep working.
//! - `..._relocation_time_seconds_total` is the column as the server has it, in whole seconds
//!   (InnoDB divides its microsecond sum by 10^6 when it fills the table). mysqld_exporter divides
//!   that again by 1000, so its value is a thousandth of the real time.

use super::super::{MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use super::info_schema_innodb_cmp::has_compression_tables;
use super::values::counter_sample;
use crate::Families;

/// `collect.info_schema.innodb_cmpmem`: needs the PROCESS privilege, like `innodb_cmp`.
pub(super) struct InnodbCmpmem;

impl SubCollector for InnodbCmpmem {
    fn statement(&self, server: &ServerInfo, _: &MysqlSettings, _: &[u64]) -> Option<String> {
        has_compression_tables(server).then(|| {
            "SELECT page_size, buffer_pool_instance, pages_used, pages_free, relocation_ops, \
             relocation_time FROM information_schema.innodb_cmpmem"
                .to_owned()
        })
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        innodb_cmpmem(rows, out);
    }
}

/// Whether a column is a level (gauge) or a running total (counter).
#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// The columns, as (column, family, HELP, kind), in mysqld_exporter's order.
const COLUMNS: [(&str, &str, &str, Kind); 4] = [
    (
        "pages_used",
        "mysql_info_schema_innodb_cmpmem_pages_used_total",
        "Number of blocks of the size PAGE_SIZE that are currently in use.",
        Kind::Gauge,
    ),
    (
        "pages_free",
        "mysql_info_schema_innodb_cmpmem_pages_free_total",
        "Number of blocks of the size PAGE_SIZE that are currently available for allocation.",
        Kind::Gauge,
    ),
    (
        "relocation_ops",
        "mysql_info_schema_innodb_cmpmem_relocation_ops_total",
        "Number of times a block of the size PAGE_SIZE has been relocated.",
        Kind::Counter,
    ),
    (
        "relocation_time",
        "mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total",
        "Total time in seconds spent in relocating blocks.",
        Kind::Counter,
    ),
];

/// One sample per column, page size and buffer pool instance (label `buffer_pool`, as upstream names
/// it). Rows without a page size or instance, and values that are not numbers, are left out.
fn innodb_cmpmem(rows: &Rows, out: &mut Families) {
    let (Some(page_size_i), Some(pool_i)) = (
        rows.column("page_size"),
        rows.column("buffer_pool_instance"),
    ) else {
        tracing::debug!("innodb_cmpmem: unexpected columns {:?}", rows.columns);
        return;
    };
    let columns = COLUMNS.map(|(column, name, help, kind)| (rows.column(column), name, help, kind));
    for row in &rows.rows {
        let text = |i: usize| row.get(i).and_then(|v| v.as_deref());
        let (Some(page_size), Some(pool)) = (text(page_size_i), text(pool_i)) else {
            continue;
        };
        let labels = [("page_size", page_size), ("buffer_pool", pool)];
        for (index, name, help, kind) in columns {
            let Some(value) = index
                .and_then(text)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
            else {
                continue;
            };
            match kind {
                Kind::Gauge => {
                    out.gauge(name, help).set(&labels, value);
                }
                Kind::Counter => counter_sample(out, name, help, &labels, value),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::{Flavor, Scraper};

    #[test]
    fn innodb_cmpmem_statement_is_gated_at_5_5() {
        let s = settings();
        let sql =
            |flavor, version| statement(Scraper::InnodbCmpmem, &server(flavor, version), &s, &[]);
        let sql_10 = sql(Flavor::MariaDb, (10, 11, 19)).expect("10.11");
        assert!(
            sql_10.ends_with("FROM information_schema.innodb_cmpmem"),
            "{sql_10}"
        );
        assert!(sql(Flavor::MySql, (8, 0, 36)).is_some());
        assert_eq!(sql(Flavor::Percona, (5, 1, 73)), None);
    }

    #[test]
    fn innodb_cmpmem_fixture() {
        let rows = header_tsv(INNODB_CMPMEM);
        let f = run(Scraper::InnodbCmpmem, &rows);
        all_valid(&f);
        let names: Vec<&str> = f.iter().map(|f| f.name()).collect();
        let expected: Vec<&str> = COLUMNS.iter().map(|(_, name, _, _)| *name).collect();
        assert_eq!(names, expected);
        for family in &f {
            assert_eq!(family.get_metric().len(), 5, "{}", family.name());
            assert_eq!(label_names(&f, family.name()), ["buffer_pool", "page_size"]);
        }
        for (name, kind) in [
            (
                "mysql_info_schema_innodb_cmpmem_pages_used_total",
                MetricType::GAUGE,
            ),
            (
                "mysql_info_schema_innodb_cmpmem_pages_free_total",
                MetricType::GAUGE,
            ),
            (
                "mysql_info_schema_innodb_cmpmem_relocation_ops_total",
                MetricType::COUNTER,
            ),
            (
                "mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total",
                MetricType::COUNTER,
            ),
        ] {
            assert_eq!(family(&f, name).get_field_type(), kind, "{name}");
        }
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmpmem_pages_used_total",
                &[("page_size", "4096"), ("buffer_pool", "0")]
            ),
            Some(400.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmpmem_pages_used_total",
                &[("page_size", "1024")]
            ),
            Some(0.0)
        );
    }

    /// The relocation time is the server's number of seconds, not a thousandth of it.
    #[test]
    fn innodb_cmpmem_relocation_time_is_not_rescaled() {
        let rows = Rows {
            columns: [
                "page_size",
                "buffer_pool_instance",
                "relocation_ops",
                "relocation_time",
            ]
            .map(str::to_owned)
            .into(),
            rows: vec![
                vec![
                    Some("8192".into()),
                    Some("1".into()),
                    Some("12".into()),
                    Some("3".into()),
                ],
                vec![
                    Some("1024".into()),
                    None,
                    Some("5".into()),
                    Some("1".into()),
                ],
            ],
            ..Rows::default()
        };
        let f = run(Scraper::InnodbCmpmem, &rows);
        all_valid(&f);
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total",
                &[("page_size", "8192"), ("buffer_pool", "1")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmpmem_relocation_ops_total",
                &[("page_size", "8192"), ("buffer_pool", "1")]
            ),
            Some(12.0)
        );
        for family in &f {
            assert_eq!(family.get_metric().len(), 1, "{}", family.name());
        }
    }
}
