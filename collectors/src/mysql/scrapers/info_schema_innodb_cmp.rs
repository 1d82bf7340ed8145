//! `information_schema.innodb_cmp` (mysqld_exporter's `info_schema_innodb_cmp.go`): how often InnoDB
//! compressed and uncompressed B-tree pages of each compressed page size, and how long it took.
//!
//! On by default in mysqld_exporter's code (not in its README), so dashboards for compressed tables
//! (`ROW_FORMAT=COMPRESSED`) find these names on every server; the table has one row per page size
//! (1 KiB to 16 KiB) whether or not any table is compressed, so it costs five rows a scrape.

use super::super::{Flavor, MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use super::values::counter_sample;
use crate::Families;

/// `collect.info_schema.innodb_cmp`: needs the PROCESS privilege (without it the server refuses the
/// statement, and only this sub-collector fails).
pub(super) struct InnodbCmp;

impl SubCollector for InnodbCmp {
    fn statement(&self, server: &ServerInfo, _: &MysqlSettings, _: &[u64]) -> Option<String> {
        has_compression_tables(server).then(|| {
            "SELECT page_size, compress_ops, compress_ops_ok, compress_time, uncompress_ops, \
             uncompress_time FROM information_schema.innodb_cmp"
                .to_owned()
        })
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        innodb_cmp(rows, out);
    }
}

/// Whether `information_schema.innodb_cmp` and `innodb_cmpmem` exist: from the InnoDB plugin of
/// MySQL 5.5 (mysqld_exporter's gate for both), and in every MariaDB 5.5 and later. On an older
/// server the sub-collector is skipped instead of failing each scrape on an unknown table.
pub(super) fn has_compression_tables(server: &ServerInfo) -> bool {
    match server.flavor {
        Flavor::MySql | Flavor::Percona | Flavor::MariaDb => server.at_least(5, 5, 0),
    }
}

/// The columns, as (column, family, HELP): the names and HELP texts are mysqld_exporter's, so
/// dashboards and `promtool` see the same metadata. The server keeps the times in whole seconds
/// (InnoDB divides its microsecond sums before filling the table), so they pass through unscaled.
const COLUMNS: [(&str, &str, &str); 5] = [
    (
        "compress_ops",
        "mysql_info_schema_innodb_cmp_compress_ops_total",
        "Number of times a B-tree page of the size PAGE_SIZE has been compressed.",
    ),
    (
        "compress_ops_ok",
        "mysql_info_schema_innodb_cmp_compress_ops_ok_total",
        "Number of times a B-tree page of the size PAGE_SIZE has been successfully compressed.",
    ),
    (
        "compress_time",
        "mysql_info_schema_innodb_cmp_compress_time_seconds_total",
        "Total time in seconds spent in attempts to compress B-tree pages.",
    ),
    (
        "uncompress_ops",
        "mysql_info_schema_innodb_cmp_uncompress_ops_total",
        "Number of times a B-tree page of the size PAGE_SIZE has been uncompressed.",
    ),
    (
        "uncompress_time",
        "mysql_info_schema_innodb_cmp_uncompress_time_seconds_total",
        "Total time in seconds spent in uncompressing B-tree pages.",
    ),
];

/// One counter per column and page size. A row without a page size, or a value that is not a
/// number, is left out (a column missing from the result leaves out its family only), so a server
/// that changes the table costs samples, not the scrape.
fn innodb_cmp(rows: &Rows, out: &mut Families) {
    let Some(page_size_i) = rows.column("page_size") else {
        tracing::debug!("innodb_cmp: unexpected columns {:?}", rows.columns);
        return;
    };
    let columns = COLUMNS.map(|(column, name, help)| (rows.column(column), name, help));
    for row in &rows.rows {
        let text = |i: usize| row.get(i).and_then(|v| v.as_deref());
        let Some(page_size) = text(page_size_i) else {
            continue;
        };
        for (index, name, help) in columns {
            if let Some(value) = index.and_then(text).and_then(|v| v.parse::<f64>().ok()) {
                counter_sample(out, name, help, &[("page_size", page_size)], value);
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
    use crate::mysql::Scraper;

    #[test]
    fn innodb_cmp_statement_is_gated_at_5_5() {
        let s = settings();
        let sql =
            |flavor, version| statement(Scraper::InnodbCmp, &server(flavor, version), &s, &[]);
        for (flavor, version) in [
            (Flavor::MariaDb, (10, 11, 19)),
            (Flavor::MariaDb, (5, 5, 68)),
            (Flavor::MySql, (8, 4, 3)),
            (Flavor::Percona, (5, 7, 44)),
        ] {
            let sql = sql(flavor, version).expect("supported");
            assert!(sql.ends_with("FROM information_schema.innodb_cmp"), "{sql}");
        }
        assert_eq!(sql(Flavor::MySql, (5, 1, 73)), None);
    }

    #[test]
    fn innodb_cmp_fixture() {
        let rows = header_tsv(INNODB_CMP);
        let f = run(Scraper::InnodbCmp, &rows);
        all_valid(&f);
        let names: Vec<&str> = f.iter().map(|f| f.name()).collect();
        let expected: Vec<&str> = COLUMNS.iter().map(|(_, name, _)| *name).collect();
        assert_eq!(names, expected);
        for family in &f {
            assert_eq!(family.get_field_type(), MetricType::COUNTER);
            assert_eq!(family.get_metric().len(), 5, "{}", family.name());
            assert_eq!(label_names(&f, family.name()), ["page_size"]);
        }
        assert_eq!(
            label_values(
                &f,
                "mysql_info_schema_innodb_cmp_compress_ops_total",
                "page_size"
            ),
            ["1024", "16384", "2048", "4096", "8192"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmp_compress_ops_total",
                &[("page_size", "4096")]
            ),
            Some(2889.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmp_compress_ops_ok_total",
                &[("page_size", "4096")]
            ),
            Some(2889.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmp_uncompress_ops_total",
                &[("page_size", "8192")]
            ),
            Some(0.0)
        );
        assert_eq!(
            family(
                &f,
                "mysql_info_schema_innodb_cmp_compress_time_seconds_total"
            )
            .help(),
            "Total time in seconds spent in attempts to compress B-tree pages."
        );
    }

    #[test]
    fn innodb_cmp_skips_what_does_not_parse() {
        let rows = Rows {
            columns: ["page_size", "compress_ops", "compress_time"]
                .map(str::to_owned)
                .into(),
            rows: vec![
                vec![Some("1024".into()), Some("7".into()), None],
                vec![None, Some("3".into()), Some("1".into())],
                vec![Some("2048".into()), Some("x".into()), Some("2".into())],
            ],
            ..Rows::default()
        };
        let f = run(Scraper::InnodbCmp, &rows);
        all_valid(&f);
        assert_eq!(
            f.iter().map(|f| f.name()).collect::<Vec<_>>(),
            [
                "mysql_info_schema_innodb_cmp_compress_ops_total",
                "mysql_info_schema_innodb_cmp_compress_time_seconds_total"
            ]
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmp_compress_ops_total",
                &[("page_size", "1024")]
            ),
            Some(7.0)
        );
        assert_eq!(
            family(&f, "mysql_info_schema_innodb_cmp_compress_ops_total")
                .get_metric()
                .len(),
            1
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_innodb_cmp_compress_time_seconds_total",
                &[("page_size", "2048")]
            ),
            Some(2.0)
        );
    }
}
