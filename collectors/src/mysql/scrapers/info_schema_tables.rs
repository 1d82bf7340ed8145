//! `information_schema.tables` (mysqld_exporter's `info_schema_tables.go`): rows, sizes and versions
//! of the tables in the configured schemas.

use super::super::{MysqlSettings, Rows, ServerInfo};
use super::SubCollector;
use super::values::push_sql_string;
use crate::Families;

/// `collect.info_schema.tables`: only for the schemas named in the config.
pub(super) struct Tables;

impl SubCollector for Tables {
    fn statement(&self, _: &ServerInfo, settings: &MysqlSettings, _: &[u64]) -> Option<String> {
        tables_statement(&settings.table_schemas)
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        tables(rows, out);
    }
}

/// mysqld_exporter's `information_schema.tables` query, for the configured schemas in one statement
/// rather than one per schema. `None` without schemas: listing every schema is what makes the upstream
/// collector slow on servers with many tables, so it is opt-in by name only.
fn tables_statement(schemas: &[String]) -> Option<String> {
    if schemas.is_empty() {
        return None;
    }
    let mut sql = String::from(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, \
         IFNULL(ENGINE, 'NONE') AS ENGINE, IFNULL(VERSION, '0') AS VERSION, \
         IFNULL(ROW_FORMAT, 'NONE') AS ROW_FORMAT, IFNULL(TABLE_ROWS, '0') AS TABLE_ROWS, \
         IFNULL(DATA_LENGTH, '0') AS DATA_LENGTH, IFNULL(INDEX_LENGTH, '0') AS INDEX_LENGTH, \
         IFNULL(DATA_FREE, '0') AS DATA_FREE, IFNULL(CREATE_OPTIONS, 'NONE') AS CREATE_OPTIONS \
         FROM information_schema.tables WHERE TABLE_SCHEMA IN (",
    );
    for (i, schema) in schemas.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        push_sql_string(&mut sql, schema);
    }
    sql.push(')');
    Some(sql)
}

/// mysqld_exporter's info_schema.tables families: rows, sizes by component, and the table version
/// with the table's type, engine, row format and create options as labels.
fn tables(rows: &Rows, out: &mut Families) {
    let at = |name: &str| rows.column(name);
    let (Some(schema_i), Some(table_i)) = (at("TABLE_SCHEMA"), at("TABLE_NAME")) else {
        tracing::debug!("info_schema.tables: unexpected columns {:?}", rows.columns);
        return;
    };
    let (type_i, engine_i, version_i, format_i, options_i) = (
        at("TABLE_TYPE"),
        at("ENGINE"),
        at("VERSION"),
        at("ROW_FORMAT"),
        at("CREATE_OPTIONS"),
    );
    let (rows_i, data_i, index_i, free_i) = (
        at("TABLE_ROWS"),
        at("DATA_LENGTH"),
        at("INDEX_LENGTH"),
        at("DATA_FREE"),
    );
    for row in &rows.rows {
        let text = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .and_then(|v| v.as_deref())
                .unwrap_or("")
        };
        let number = |i: Option<usize>| text(i).parse::<f64>().ok().filter(|v| v.is_finite());
        let (schema, table) = (text(Some(schema_i)), text(Some(table_i)));
        if let Some(version) = number(version_i) {
            out.gauge(
                "mysql_info_schema_table_version",
                "The version number of the table's .frm file",
            )
            .set(
                &[
                    ("schema", schema),
                    ("table", table),
                    ("type", text(type_i)),
                    ("engine", text(engine_i)),
                    ("row_format", text(format_i)),
                    ("create_options", text(options_i)),
                ],
                version,
            );
        }
        if let Some(count) = number(rows_i) {
            out.gauge(
                "mysql_info_schema_table_rows",
                "The estimated number of rows in the table from information_schema.tables",
            )
            .set(&[("schema", schema), ("table", table)], count);
        }
        for (component, index) in [
            ("data_length", data_i),
            ("index_length", index_i),
            ("data_free", free_i),
        ] {
            if let Some(bytes) = number(index) {
                out.gauge(
                    "mysql_info_schema_table_size",
                    "The size of the table components from information_schema.tables",
                )
                .set(
                    &[
                        ("schema", schema),
                        ("table", table),
                        ("component", component),
                    ],
                    bytes,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::super::statement;
    use super::super::test_support::*;
    use crate::mysql::Scraper;

    #[test]
    fn tables_statement_quotes_schema_names() {
        let mut s = settings();
        assert_eq!(statement(Scraper::Tables, &mariadb(), &s, &[]), None);
        s.table_schemas = vec!["shop".into(), r"it's\'); DROP TABLE x; --".into()];
        let sql = statement(Scraper::Tables, &mariadb(), &s, &[]).expect("tables");
        assert!(
            sql.ends_with(r"WHERE TABLE_SCHEMA IN ('shop', 'it''s\\''); DROP TABLE x; --')"),
            "{sql}"
        );
    }

    #[test]
    fn tables_fixture() {
        let rows = header_tsv(TABLES);
        let f = run(Scraper::Tables, &rows);
        all_valid(&f);
        assert_eq!(
            label_names(&f, "mysql_info_schema_table_version"),
            [
                "create_options",
                "engine",
                "row_format",
                "schema",
                "table",
                "type"
            ]
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_table_version",
                &[
                    ("schema", "shop"),
                    ("table", "log"),
                    ("type", "BASE TABLE"),
                    ("engine", "Aria"),
                    ("row_format", "Page"),
                    ("create_options", "transactional=1"),
                ]
            ),
            Some(10.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_table_rows",
                &[("schema", "shop"), ("table", "orders")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &f,
                "mysql_info_schema_table_size",
                &[("table", "orders"), ("component", "data_length")]
            ),
            Some(16384.0)
        );
        assert_eq!(
            label_values(&f, "mysql_info_schema_table_size", "component"),
            ["data_free", "data_length", "index_length"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            family(&f, "mysql_info_schema_table_size")
                .get_metric()
                .len(),
            9
        );
        for family in &f {
            assert_eq!(family.get_field_type(), MetricType::GAUGE);
        }
    }
}
