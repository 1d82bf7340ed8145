//! `SHOW GLOBAL VARIABLES` (mysqld_exporter's `global_variables.go`): a gauge per numeric variable,
//! the version, isolation level and Galera info families, and the gcache size.

use super::super::{MysqlSettings, Rows, ServerInfo};
use super::values::{parse_value, push_normalized};
use super::{SubCollector, packed};
use crate::Families;

/// `collect.global_variables`: the same pairs on every server, read the cheapest way the flavor offers.
pub(super) struct GlobalVariables;

impl SubCollector for GlobalVariables {
    /// One packed row from `information_schema` on MariaDB (see `packed`), `SHOW GLOBAL VARIABLES`
    /// elsewhere: the same pairs either way.
    fn statement(&self, server: &ServerInfo, _: &MysqlSettings, _: &[u64]) -> Option<String> {
        Some(packed::pairs_statement(
            server,
            "GLOBAL_VARIABLES",
            "SHOW GLOBAL VARIABLES",
        ))
    }

    fn rows(&self, fetched: Rows) -> Result<Rows, String> {
        packed::unpack(fetched)
    }

    fn families(&self, rows: &Rows, _: &ServerInfo, _: &MysqlSettings, out: &mut Families) {
        global_variables(rows, out);
    }
}

/// `SHOW GLOBAL VARIABLES`: a gauge per numeric or boolean variable, plus mysqld_exporter's info
/// families built from the text ones.
///
/// HELP names the variable (`SHOW GLOBAL VARIABLES max_connections`), as the compat notes ask, since
/// one generic line for 600 families tells nobody anything. `mysql_version_info` is always emitted
/// (empty labels for what the server lacks, e.g. `innodb_version` on MariaDB 10.10+), as upstream;
/// the isolation level comes from `transaction_isolation`, else `tx_isolation` (MariaDB < 11.1,
/// MySQL 5.7); the Galera families only when `wsrep_on` is not OFF.
fn global_variables(rows: &Rows, out: &mut Families) {
    let mut name = String::with_capacity(64);
    let mut metric = String::with_capacity(96);
    let mut help = String::with_capacity(96);
    let mut innodb_version = "";
    let mut version = "";
    let mut version_comment = "";
    let mut transaction_isolation = "";
    let mut tx_isolation = "";
    let mut cluster_name = "";
    let mut provider_options = "";
    let mut wsrep_on = None;
    for (raw_name, raw_value) in rows.pairs() {
        name.clear();
        push_normalized(&mut name, raw_name, true);
        match name.as_str() {
            "innodb_version" => innodb_version = raw_value,
            "version" => version = raw_value,
            "version_comment" => version_comment = raw_value,
            "transaction_isolation" => transaction_isolation = raw_value,
            "tx_isolation" => tx_isolation = raw_value,
            "wsrep_cluster_name" => cluster_name = raw_value,
            "wsrep_provider_options" => provider_options = raw_value,
            "wsrep_on" => wsrep_on = parse_value(raw_value),
            _ => {}
        }
        let Some(value) = parse_value(raw_value) else {
            continue;
        };
        metric.clear();
        metric.push_str("mysql_global_variables_");
        metric.push_str(&name);
        help.clear();
        help.push_str("SHOW GLOBAL VARIABLES ");
        help.push_str(raw_name);
        out.gauge(&metric, &help).set(&[], value);
    }
    out.info(
        "mysql_version_info",
        "MySQL version and distribution.",
        &[
            ("innodb_version", innodb_version),
            ("version", version),
            ("version_comment", version_comment),
        ],
    );
    let level = if transaction_isolation.is_empty() {
        tx_isolation
    } else {
        transaction_isolation
    };
    if !level.is_empty() {
        out.info(
            "mysql_transaction_isolation",
            "MySQL/MariaDB transaction isolation level.",
            &[("level", level)],
        );
    }
    // MariaDB reports a default cluster name (`my_wsrep_cluster`) with Galera off; mysqld_exporter
    // then claims a Galera cluster on every MariaDB server. `wsrep_on = OFF` says there is none.
    if wsrep_on == Some(0.0) {
        return;
    }
    if !cluster_name.is_empty() {
        out.info(
            "mysql_galera_variables_info",
            "PXC/Galera variables information.",
            &[("wsrep_cluster_name", cluster_name)],
        );
    }
    if let Some(bytes) = gcache_size(provider_options) {
        out.gauge("mysql_galera_gcache_size_bytes", "PXC/Galera gcache size.")
            .set(&[], bytes);
    }
}

/// `gcache.size` out of `wsrep_provider_options` (`…; gcache.size = 128M; …`) in bytes.
///
/// mysqld_exporter reports 0 when the option is missing; we report nothing, since 0 would read as a
/// real (and alarming) size. Galera accepts K/M/G/T suffixes (powers of 1024); upstream only M/G.
fn gcache_size(options: &str) -> Option<f64> {
    let value = options.split(';').find_map(|option| {
        let (key, value) = option.split_once('=')?;
        (key.trim() == "gcache.size").then_some(value.trim())
    })?;
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, suffix) = value.split_at(digits_end);
    let number = digits.parse::<f64>().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "K" | "k" => 1024.0,
        "M" | "m" => 1024.0 * 1024.0,
        "G" | "g" => 1024.0 * 1024.0 * 1024.0,
        "T" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * scale)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prometheus::proto::{MetricFamily, MetricType};

    use super::super::statement;
    use super::super::test_support::*;
    use super::*;
    use crate::mysql::Scraper;

    #[test]
    fn statement_is_packed_on_mariadb_and_show_global_variables() {
        let s = settings();
        let on = |flavor| {
            statement(
                Scraper::GlobalVariables,
                &server(flavor, (8, 0, 36)),
                &s,
                &[],
            )
        };
        assert_eq!(
            statement(Scraper::GlobalVariables, &mariadb(), &s, &[]),
            Some(super::packed::statement("GLOBAL_VARIABLES"))
        );
        assert_eq!(
            on(crate::mysql::Flavor::MySql).as_deref(),
            Some("SHOW GLOBAL VARIABLES")
        );
        assert_eq!(
            on(crate::mysql::Flavor::Percona).as_deref(),
            Some("SHOW GLOBAL VARIABLES")
        );
    }

    #[test]
    fn gcache_size_from_provider_options() {
        let options = "base_dir = /var/lib/mysql/; gcache.dir = /var/lib/mysql/; \
                       gcache.name = galera.cache; gcache.size = 128M; gcs.fc_limit = 16";
        assert_eq!(gcache_size(options), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(
            gcache_size("gcache.size = 2G"),
            Some(2.0 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(gcache_size("gcache.size = 4096"), Some(4096.0));
        assert_eq!(gcache_size("gcache.name = x"), None);
        assert_eq!(gcache_size(""), None);
    }

    #[test]
    fn global_variables_from_mariadb_fixture() {
        let rows = name_value_tsv(VARIABLES);
        let f = run(Scraper::GlobalVariables, &rows);
        all_valid(&f);
        let gauges: Vec<&MetricFamily> = f
            .iter()
            .filter(|f| f.name().starts_with("mysql_global_variables_"))
            .collect();
        assert!(gauges.len() > 300, "{}", gauges.len());
        assert!(
            gauges
                .iter()
                .all(|f| f.get_field_type() == MetricType::GAUGE)
        );
        assert_eq!(
            value(&f, "mysql_global_variables_max_connections", &[]),
            Some(151.0)
        );
        assert_eq!(
            family(&f, "mysql_global_variables_max_connections").help(),
            "SHOW GLOBAL VARIABLES max_connections"
        );
        assert_eq!(value(&f, "mysql_global_variables_log_bin", &[]), Some(1.0));
        assert_eq!(value(&f, "mysql_global_variables_wsrep_on", &[]), Some(0.0));
        assert!(!has(&f, "mysql_global_variables_tls_version"));
        assert!(!has(&f, "mysql_global_variables_version"));

        assert_eq!(
            label_names(&f, "mysql_version_info"),
            ["innodb_version", "version", "version_comment"]
        );
        assert_eq!(
            value(
                &f,
                "mysql_version_info",
                &[
                    ("innodb_version", ""),
                    ("version", fixture_value(&rows, "version")),
                    ("version_comment", "Debian 12"),
                ]
            ),
            Some(1.0)
        );
        // MariaDB 10.11 only has tx_isolation.
        assert_eq!(
            value(
                &f,
                "mysql_transaction_isolation",
                &[("level", "REPEATABLE-READ")]
            ),
            Some(1.0)
        );
        // Galera is off: no Galera info for the default cluster name.
        assert!(!has(&f, "mysql_galera_variables_info"));
        assert!(!has(&f, "mysql_galera_gcache_size_bytes"));
    }

    #[test]
    fn galera_variables_and_transaction_isolation_precedence() {
        let rows = Rows {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: [
                ("transaction_isolation", "READ-COMMITTED"),
                ("tx_isolation", "REPEATABLE-READ"),
                ("wsrep_on", "ON"),
                ("wsrep_cluster_name", "pxc1"),
                (
                    "wsrep_provider_options",
                    "gcache.name = galera.cache; gcache.size = 1G; ",
                ),
                ("validate_password.length", "8"),
            ]
            .iter()
            .map(|(n, v)| vec![Some((*n).to_owned()), Some((*v).to_owned())])
            .collect(),
            ..Rows::default()
        };
        let f = run(Scraper::GlobalVariables, &rows);
        all_valid(&f);
        assert_eq!(
            label_values(&f, "mysql_transaction_isolation", "level"),
            BTreeSet::from(["READ-COMMITTED".to_owned()])
        );
        assert_eq!(
            value(
                &f,
                "mysql_galera_variables_info",
                &[("wsrep_cluster_name", "pxc1")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&f, "mysql_galera_gcache_size_bytes", &[]),
            Some(1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(
            value(&f, "mysql_global_variables_validate_password_length", &[]),
            Some(8.0)
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn gcache_size_never_panics(options in any::<String>()) {
                let _ = gcache_size(&options);
            }

            #[test]
            fn gcache_size_parses_back(
                n in 0u64..1_000_000,
                unit in proptest::sample::select(vec![("", 1u64), ("K", 1 << 10), ("m", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)]),
                before in "([a-z.]{1,10} = [a-z0-9]{0,5}; ){0,3}",
            ) {
                let options = format!("{before}gcache.size = {n}{}; gcache.page_size = 128M", unit.0);
                prop_assert_eq!(gcache_size(&options), Some((n * unit.1) as f64));
            }
        }
    }
}
