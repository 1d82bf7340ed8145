//! The MySQL collector against real MariaDB servers started by the harness (support/mariadb.rs):
//! family sets and types, replication status, privileges, failures, deadlines, connection reuse and
//! custom queries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mariadb.rs"]
mod mariadb;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use fanout_collectors::family::MetricType as Kind;
use fanout_collectors::mysql::{
    Address, MysqlCollector, MysqlSettings, QueryMetric, QuerySettings, Scraper,
};
use fanout_collectors::{CollectError, Collector, Outcome};
use mariadb::*;
use prometheus::proto::{Metric, MetricFamily, MetricType};
use regex::Regex;
use secrecy::SecretString;
use sqlx::ConnectOptions;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Settings and scraping

fn settings_for(server: &Mariadb, user: &str, password: &str) -> MysqlSettings {
    let mut settings = MysqlSettings::new(
        Address::Tcp {
            host: "127.0.0.1".into(),
            port: server.port(),
        },
        user,
    );
    settings.password = Some(SecretString::from(password.to_owned()));
    settings
}

fn exporter(server: &Mariadb) -> MysqlSettings {
    settings_for(server, "exporter", EXPORTER_PASSWORD)
}

fn limited(server: &Mariadb) -> MysqlSettings {
    settings_for(server, "limited", LIMITED_PASSWORD)
}

async fn scrape(collector: &MysqlCollector, budget: Duration) -> Outcome {
    collector.collect(Instant::now() + budget).await
}

/// Scrape once with a 10 s deadline and insist on success without errors.
async fn scrape_ok(collector: &MysqlCollector) -> Outcome {
    let outcome = scrape(collector, Duration::from_secs(10)).await;
    assert!(outcome.up, "down: {:?}", outcome.errors);
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    outcome
}

// ---------------------------------------------------------------------------------------------
// Reading families

fn names(families: &[MetricFamily]) -> BTreeSet<String> {
    families.iter().map(|f| f.name().to_owned()).collect()
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    let mut found = families.iter().filter(|f| f.name() == name);
    let family = found
        .next()
        .unwrap_or_else(|| panic!("family {name} missing among {}", families.len()));
    assert!(found.next().is_none(), "family {name} appears twice");
    family
}

fn labels(metric: &Metric) -> BTreeMap<String, String> {
    metric
        .get_label()
        .iter()
        .map(|l| (l.name().to_owned(), l.value().to_owned()))
        .collect()
}

fn value(family: &MetricFamily, metric: &Metric) -> f64 {
    match family.get_field_type() {
        MetricType::COUNTER => metric.get_counter().get_value(),
        MetricType::GAUGE => metric.get_gauge().get_value(),
        other => panic!("{}: unexpected type {other:?}", family.name()),
    }
}

/// The value of the sample of `name` whose labels are exactly `wanted`, if there is one.
fn sample(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = wanted
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let family = families.iter().find(|f| f.name() == name)?;
    family
        .get_metric()
        .iter()
        .find(|m| labels(m) == wanted)
        .map(|m| value(family, m))
}

/// Every sample of `name` as (labels, value).
fn samples(families: &[MetricFamily], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let family = family(families, name);
    family
        .get_metric()
        .iter()
        .map(|m| (labels(m), value(family, m)))
        .collect()
}

fn success(outcome: &Outcome, collector: &str) -> Option<f64> {
    sample(
        &outcome.families,
        "mysql_exporter_collector_success",
        &[("collector", collector)],
    )
}

fn kind_of(families: &[MetricFamily], name: &str) -> MetricType {
    family(families, name).get_field_type()
}

fn label_set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn assert_same_names(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(actual).collect();
    let extra: Vec<_> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: family set differs\nmissing: {missing:?}\nunexpected: {extra:?}"
    );
}

fn error_chain(error: &CollectError) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// What mysqld_exporter would report, computed from the live server as root

/// mysqld_exporter's `parseStatus`: booleans and a few states as 0/1, two date formats, binary and
/// relay log names (`mysql-bin.000001`) as their sequence number, else a finite float.
fn parses(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "yes"
            | "on"
            | "no"
            | "off"
            | "disabled"
            | "connecting"
            | "primary"
            | "non-primary"
            | "disconnected"
    ) {
        return true;
    }
    static PATTERNS: LazyLock<(Regex, Regex)> = LazyLock::new(|| {
        let dates = r"^(?:[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \d{4} [A-Z]+|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})$";
        let log_file = r"^[^\s,]*[A-Za-z][^\s,]*\.\d{6,}$";
        (Regex::new(dates).unwrap(), Regex::new(log_file).unwrap())
    });
    let (dates, log_file) = &*PATTERNS;
    dates.is_match(value)
        || log_file.is_match(value)
        || value.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The family a `SHOW GLOBAL STATUS` row lands in (mysqld_exporter's names; the buffer pool page
/// counts that are levels, `total` included, are states of `buffer_pool_pages`, except `dirty`, which
/// has a family of its own).
fn status_family(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    let grouped = [
        ("com_", "commands_total"),
        ("handler_", "handlers_total"),
        ("connection_errors_", "connection_errors_total"),
        ("innodb_rows_", "innodb_row_ops_total"),
        ("performance_schema_", "performance_schema_lost_total"),
    ];
    for (prefix, family) in grouped {
        if key.starts_with(prefix) {
            return format!("mysql_global_status_{family}");
        }
    }
    if let Some(state) = key.strip_prefix("innodb_buffer_pool_pages_") {
        return match state {
            "data" | "free" | "misc" | "old" | "total" => {
                "mysql_global_status_buffer_pool_pages".into()
            }
            "dirty" => "mysql_global_status_buffer_pool_dirty_pages".into(),
            "latched" => "mysql_global_status_innodb_buffer_pool_pages_latched".into(),
            _ => "mysql_global_status_buffer_pool_page_changes_total".into(),
        };
    }
    format!("mysql_global_status_{key}")
}

fn pairs(server: &Mariadb, statement: &str) -> Vec<(String, Option<String>)> {
    let (_, rows) = server.query(statement);
    rows.into_iter()
        .map(|mut row| {
            let value = row.get_mut(1).and_then(Option::take);
            (row[0].clone().unwrap(), value)
        })
        .collect()
}

/// The families the default sub-collectors must produce on `server`: global status, global variables
/// (with the version, isolation and, with wsrep on, Galera info families), slave status when it
/// replicates, and the collector self metrics.
fn expected_default_families(server: &Mariadb) -> BTreeSet<String> {
    let mut expected = BTreeSet::new();
    for (key, value) in pairs(server, "SHOW GLOBAL STATUS") {
        if value.as_deref().is_some_and(parses) {
            expected.insert(status_family(&key));
        }
    }
    let mut text = BTreeMap::new();
    for (key, value) in pairs(server, "SHOW GLOBAL VARIABLES") {
        let key = key.to_ascii_lowercase();
        match value {
            Some(v) if parses(&v) => {
                expected.insert(format!("mysql_global_variables_{key}"));
            }
            Some(v) => {
                text.insert(key, v);
            }
            None => {}
        }
    }
    expected.insert("mysql_version_info".into());
    let nonempty = |k: &str| text.get(k).is_some_and(|v| !v.is_empty());
    if nonempty("transaction_isolation") || nonempty("tx_isolation") {
        expected.insert("mysql_transaction_isolation".into());
    }
    // MariaDB names a default cluster with Galera off; only a server with wsrep on has Galera info.
    let galera = server.scalar("SELECT @@wsrep_on") == "1";
    if galera && nonempty("wsrep_cluster_name") {
        expected.insert("mysql_galera_variables_info".into());
    }
    if galera && nonempty("wsrep_provider_options") {
        expected.insert("mysql_galera_gcache_size_bytes".into());
    }
    let (columns, rows) = server.query("SHOW ALL SLAVES STATUS");
    let labels = [
        "Master_Host",
        "Master_UUID",
        "Channel_Name",
        "Connection_name",
    ];
    let gtid = Regex::new(r"(^|,)\s*\d+-\d+-\d+\s*(,|$)").unwrap();
    for row in rows {
        for (column, value) in columns.iter().zip(row) {
            if labels.contains(&column.as_str()) {
                continue;
            }
            // MariaDB GTID positions: one series per replication domain when there is a GTID.
            if column == "Gtid_IO_Pos" || column == "Gtid_Slave_Pos" {
                if value.as_deref().is_some_and(|v| gtid.is_match(v)) {
                    expected.insert(format!(
                        "mysql_slave_status_{}",
                        column.to_ascii_lowercase()
                    ));
                }
                continue;
            }
            if value.as_deref().is_some_and(parses) {
                expected.insert(format!(
                    "mysql_slave_status_{}",
                    column.to_ascii_lowercase()
                ));
            }
        }
    }
    expected.insert("mysql_exporter_collector_success".into());
    expected.insert("mysql_exporter_collector_duration_seconds".into());
    expected
}

// ---------------------------------------------------------------------------------------------
// Direct connections for the tests' own observations

async fn root_connection(server: &Mariadb) -> MySqlConnection {
    MySqlConnectOptions::new()
        .socket(server.socket())
        .username("root")
        .connect()
        .await
        .unwrap()
}

async fn tcp_connection(server: &Mariadb, user: &str, password: &str) -> MySqlConnection {
    MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(server.port())
        .username(user)
        .password(password)
        .ssl_mode(MySqlSslMode::Disabled)
        .connect()
        .await
        .unwrap()
}

async fn count_connections(root: &mut MySqlConnection, user: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?",
    )
    .bind(user)
    .fetch_one(root)
    .await
    .unwrap()
}

async fn global_status(root: &mut MySqlConnection, name: &str) -> f64 {
    let text: String = sqlx::query_scalar(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?",
    )
    .bind(name)
    .fetch_one(root)
    .await
    .unwrap();
    text.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Default sub-collectors on a primary and its replica

#[tokio::test]
async fn default_families_on_primary_and_replica() {
    let pair = shared_pair();
    for (server, replica) in [(&pair.primary, false), (&pair.replica, true)] {
        let role = if replica { "replica" } else { "primary" };
        let collector = MysqlCollector::new(exporter(server)).unwrap();
        let outcome = scrape_ok(&collector).await;
        let f = &outcome.families;

        assert_same_names(&names(f), &expected_default_families(server), role);
        for family in f {
            assert_ne!(
                family.get_field_type(),
                MetricType::UNTYPED,
                "{}",
                family.name()
            );
        }

        // Types: what only goes up is a counter, what goes up and down a gauge.
        for name in [
            "mysql_global_status_questions",
            "mysql_global_status_queries",
            "mysql_global_status_bytes_received",
            "mysql_global_status_bytes_sent",
            "mysql_global_status_connections",
            "mysql_global_status_aborted_connects",
            "mysql_global_status_slow_queries",
            "mysql_global_status_created_tmp_tables",
            "mysql_global_status_select_scan",
            "mysql_global_status_commands_total",
            "mysql_global_status_handlers_total",
            "mysql_global_status_buffer_pool_page_changes_total",
            "mysql_global_status_connection_errors_total",
        ] {
            assert_eq!(kind_of(f, name), MetricType::COUNTER, "{role}: {name}");
        }
        for name in [
            "mysql_global_status_threads_connected",
            "mysql_global_status_threads_running",
            "mysql_global_status_threads_cached",
            "mysql_global_status_open_tables",
            "mysql_global_status_open_files",
            "mysql_global_status_buffer_pool_pages",
            "mysql_global_status_innodb_buffer_pool_bytes_data",
            "mysql_version_info",
            "mysql_transaction_isolation",
            "mysql_exporter_collector_success",
            "mysql_exporter_collector_duration_seconds",
        ] {
            assert_eq!(kind_of(f, name), MetricType::GAUGE, "{role}: {name}");
        }
        for family in f
            .iter()
            .filter(|f| f.name().starts_with("mysql_global_variables_"))
        {
            assert_eq!(
                family.get_field_type(),
                MetricType::GAUGE,
                "{}",
                family.name()
            );
        }

        // Labelled status families carry the right label and real values.
        let select = sample(
            f,
            "mysql_global_status_commands_total",
            &[("command", "select")],
        )
        .unwrap_or_else(|| panic!("{role}: commands_total{{command=\"select\"}} missing"));
        let later: f64 = server.status("Com_select").parse().unwrap();
        assert!(
            select >= 1.0 && select <= later,
            "{role}: {select} vs {later}"
        );
        let questions = sample(f, "mysql_global_status_questions", &[]).unwrap();
        let later: f64 = server.status("Questions").parse().unwrap();
        assert!(
            questions >= 1.0 && questions <= later,
            "{role}: {questions} vs {later}"
        );
        assert!(
            sample(
                f,
                "mysql_global_status_handlers_total",
                &[("handler", "commit")]
            )
            .is_some(),
            "{role}: handlers_total{{handler=\"commit\"}}"
        );
        let pages = |state: &str| {
            sample(
                f,
                "mysql_global_status_buffer_pool_pages",
                &[("state", state)],
            )
            .unwrap_or_else(|| panic!("{role}: buffer_pool_pages{{state=\"{state}\"}} missing"))
        };
        for state in ["data", "free", "misc"] {
            assert!(pages(state) >= 0.0);
        }
        // The pool's size in pages does not move.
        let total: f64 = server
            .status("Innodb_buffer_pool_pages_total")
            .parse()
            .unwrap();
        assert!(total > 0.0);
        assert_eq!(pages("total"), total, "{role}: pool size in pages");

        // Variables and the info families.
        let max_connections: f64 = server.scalar("SELECT @@max_connections").parse().unwrap();
        assert_eq!(
            sample(f, "mysql_global_variables_max_connections", &[]),
            Some(max_connections),
            "{role}"
        );
        // A variable the server lacks (MariaDB 10.11 has no innodb_version) is an empty label.
        let variable = |name: &str| {
            pairs(
                server,
                &format!("SHOW GLOBAL VARIABLES LIKE {}", sql_quote(name)),
            )
            .into_iter()
            .find_map(|(n, v)| (n == name).then_some(v))
            .flatten()
            .unwrap_or_default()
        };
        let version_labels = [
            ("version", variable("version")),
            ("innodb_version", variable("innodb_version")),
            ("version_comment", variable("version_comment")),
        ];
        assert!(!version_labels[0].1.is_empty());
        let version_labels: Vec<(&str, &str)> = version_labels
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        assert_eq!(
            samples(f, "mysql_version_info"),
            BTreeMap::from([(label_set(&version_labels), 1.0)]),
            "{role}"
        );
        let level = server.scalar("SELECT @@tx_isolation");
        assert_eq!(
            samples(f, "mysql_transaction_isolation"),
            BTreeMap::from([(label_set(&[("level", &level)]), 1.0)]),
            "{role}"
        );

        // Self metrics.
        for scraper in ["global_status", "global_variables", "slave_status"] {
            let collector = format!("collect.{scraper}");
            assert_eq!(
                success(&outcome, &collector),
                Some(1.0),
                "{role}: {collector}"
            );
        }
        let durations = samples(f, "mysql_exporter_collector_duration_seconds");
        for collector in [
            "connection",
            "collect.global_status",
            "collect.global_variables",
            "collect.slave_status",
        ] {
            let took = durations
                .get(&label_set(&[("collector", collector)]))
                .unwrap_or_else(|| panic!("{role}: no duration for {collector}"));
            assert!(
                (0.0..10.0).contains(took),
                "{role}: {collector} took {took}"
            );
        }

        // Replication.
        let slave: Vec<&MetricFamily> = f
            .iter()
            .filter(|f| f.name().starts_with("mysql_slave_status_"))
            .collect();
        if !replica {
            assert!(slave.is_empty(), "primary reports slave status");
            continue;
        }
        let replica_labels = label_set(&[
            ("master_host", "127.0.0.1"),
            ("master_uuid", ""),
            ("channel_name", ""),
            ("connection_name", ""),
        ]);
        let primary_id = pair.primary.scalar("SELECT @@server_id");
        for family in &slave {
            assert_eq!(family.get_metric().len(), 1, "{}", family.name());
            let mut got = labels(&family.get_metric()[0]);
            if family.name().starts_with("mysql_slave_status_gtid_") {
                // Per replication domain: domain 0, transactions written by the primary.
                assert_eq!(got.remove("domain_id").as_deref(), Some("0"));
                assert_eq!(got.remove("server_id"), Some(primary_id.clone()));
                assert!(value(family, &family.get_metric()[0]) >= 1.0);
            }
            assert_eq!(got, replica_labels, "{}", family.name());
        }
        for gtid in ["gtid_io_pos", "gtid_slave_pos"] {
            let name = format!("mysql_slave_status_{gtid}");
            assert!(slave.iter().any(|f| f.name() == name), "{name} missing");
        }
        let status = |name: &str| {
            let got = samples(f, &format!("mysql_slave_status_{name}"));
            assert_eq!(got.len(), 1, "{name}");
            got[&replica_labels]
        };
        assert_eq!(status("slave_io_running"), 1.0);
        assert_eq!(status("slave_sql_running"), 1.0);
        assert!(status("seconds_behind_master") >= 0.0);
        assert_eq!(
            kind_of(f, "mysql_slave_status_seconds_behind_master"),
            MetricType::GAUGE
        );
        assert_eq!(status("master_port"), f64::from(pair.primary.port()));
        assert_eq!(
            status("master_server_id"),
            primary_id.parse::<f64>().unwrap()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Refused credentials and unknown hosts

#[tokio::test]
async fn wrong_password_is_a_connect_error_that_hides_the_password() {
    let primary = &shared_pair().primary;
    let wrong = "not#the 'password\" 123";
    let collector = MysqlCollector::new(settings_for(primary, "exporter", wrong)).unwrap();
    let outcome = scrape(&collector, Duration::from_secs(10)).await;
    assert!(!outcome.up);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    let error = &outcome.errors[0];
    assert!(
        matches!(error, CollectError::Connect { .. }),
        "expected a connect error, got {error:?}"
    );
    let text = error_chain(error);
    assert!(text.contains(&primary.port().to_string()), "{text}");
    assert!(
        text.contains("denied"),
        "the server's reason is kept: {text}"
    );
    for secret in [wrong, "not#the", "password\" 123", EXPORTER_PASSWORD] {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
    let debug = format!("{collector:?}");
    assert!(!debug.contains("not#the"), "{debug}");
}

#[tokio::test]
async fn unknown_host_is_down_quickly() {
    let settings = MysqlSettings::new(
        Address::Tcp {
            host: "nonexistent.invalid".into(),
            port: 3306,
        },
        "exporter",
    );
    let collector = MysqlCollector::new(settings).unwrap();
    let start = Instant::now();
    let outcome = scrape(&collector, Duration::from_secs(10)).await;
    let elapsed = start.elapsed();
    assert!(!outcome.up);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    let error = &outcome.errors[0];
    assert!(matches!(error, CollectError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("nonexistent.invalid"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// 3. The server goes away and comes back

#[tokio::test]
async fn same_collector_recovers_after_a_server_restart() {
    let mut server = Mariadb::start(Opts::default());
    server.create_users();
    let collector = MysqlCollector::new(exporter(&server)).unwrap();
    // Two scrapes at once, so that the cache holds two connections that the restart will break.
    let (a, b) = tokio::join!(
        scrape(&collector, Duration::from_secs(10)),
        scrape(&collector, Duration::from_secs(10))
    );
    assert!(a.up && a.errors.is_empty(), "{:?}", a.errors);
    assert!(b.up && b.errors.is_empty(), "{:?}", b.errors);

    server.stop();
    let start = Instant::now();
    let down = scrape(&collector, Duration::from_secs(5)).await;
    assert!(!down.up, "up while the server is stopped");
    assert!(!down.errors.is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );

    server.restart();
    // Connections cached before the restart are dead; the first scrape after it must not fail on
    // them (a spurious mysql_up 0 per stale connection would page someone).
    let up = scrape(&collector, Duration::from_secs(10)).await;
    assert!(up.up, "still down after the restart: {:?}", up.errors);
    assert!(up.errors.is_empty(), "{:?}", up.errors);
    assert_eq!(success(&up, "collect.global_status"), Some(1.0));
}

// ---------------------------------------------------------------------------------------------
// 4. A peer that never answers

/// A collector for a listener that accepts connections and never answers.
async fn silent_target(max_connections: u32) -> MysqlCollector {
    let addr = support::silent().await;
    let mut settings = MysqlSettings::new(
        Address::Tcp {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        "exporter",
    );
    settings.password = Some(SecretString::from("x".to_owned()));
    settings.max_connections = max_connections;
    MysqlCollector::new(settings).unwrap()
}

#[tokio::test]
async fn silent_listener_times_out_at_the_deadline() {
    let collector = silent_target(2).await;
    let budget = Duration::from_secs(1);
    let start = Instant::now();
    let outcome = scrape(&collector, budget).await;
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert!(!outcome.up);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert!(
        matches!(outcome.errors[0], CollectError::Timeout(_)),
        "{:?}",
        outcome.errors
    );
}

/// A target that accepts connections and never answers must not hold up the scrapes after the one
/// that met it: each later scrape, back to back or overlapping the first, is down with a timeout by
/// its own deadline. One slot, so a connection attempt abandoned at a deadline that kept its slot
/// would make the next scrape wait for it.
#[tokio::test]
async fn a_hung_target_never_blocks_later_scrapes_beyond_their_own_deadline() {
    let collector = silent_target(1).await;
    let budget = Duration::from_secs(1);
    let check = |what: &str, outcome: &Outcome, elapsed: Duration| {
        assert!(
            elapsed >= Duration::from_millis(900),
            "{what}: gave up early: {elapsed:?}"
        );
        assert!(
            elapsed < budget + Duration::from_millis(1500),
            "{what}: returned {elapsed:?} after a {budget:?} deadline"
        );
        assert!(!outcome.up, "{what}: up against a silent peer");
        assert!(
            matches!(outcome.errors.as_slice(), [CollectError::Timeout(_)]),
            "{what}: {:?}",
            outcome.errors
        );
    };

    // Back to back: the second scrape starts the moment the first one returned at its deadline.
    for what in ["first scrape", "second scrape", "third scrape"] {
        let start = Instant::now();
        let outcome = scrape(&collector, budget).await;
        check(what, &outcome, start.elapsed());
    }

    // Overlapping: a scrape that starts while another one hangs waits at most until its own deadline.
    let timed = |delay: Duration| {
        let collector = &collector;
        async move {
            tokio::time::sleep(delay).await;
            let started = Instant::now();
            let outcome = scrape(collector, budget).await;
            (outcome, started.elapsed())
        }
    };
    let (early, late) = tokio::join!(timed(Duration::ZERO), timed(Duration::from_millis(300)));
    check("overlapped first", &early.0, early.1);
    check("overlapped second", &late.0, late.1);
}

// ---------------------------------------------------------------------------------------------
// 5. An account without PROCESS and replication privileges

fn processes_by_user(outcome: &Outcome) -> BTreeMap<String, f64> {
    samples(
        &outcome.families,
        "mysql_info_schema_processlist_processes_by_user",
    )
    .into_iter()
    .map(|(labels, value)| (labels["mysql_user"].clone(), value))
    .collect()
}

#[tokio::test]
async fn limited_user_loses_only_what_needs_privileges() {
    let replica = &shared_pair().replica;
    // Idle sessions of other accounts and of `limited` itself, for the processlist to show or hide.
    let _root = root_connection(replica).await;
    let _own = tcp_connection(replica, "limited", LIMITED_PASSWORD).await;
    let mut collect = Scraper::DEFAULT.to_vec();
    collect.push(Scraper::Processlist);

    let mut settings = limited(replica);
    settings.collect = collect.clone();
    let collector = MysqlCollector::new(settings).unwrap();
    let outcome = scrape(&collector, Duration::from_secs(10)).await;
    assert!(outcome.up, "{:?}", outcome.errors);
    // SHOW ALL SLAVES STATUS needs SLAVE MONITOR (or SUPER) on MariaDB 10.11: refused, reported once.
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert_eq!(success(&outcome, "collect.global_status"), Some(1.0));
    assert_eq!(success(&outcome, "collect.global_variables"), Some(1.0));
    assert_eq!(success(&outcome, "collect.slave_status"), Some(0.0));
    assert_eq!(
        success(&outcome, "collect.info_schema.processlist"),
        Some(1.0)
    );
    let f = &outcome.families;
    assert!(f.iter().any(|f| f.name() == "mysql_global_status_uptime"));
    assert!(
        f.iter()
            .all(|f| !f.name().starts_with("mysql_slave_status_")),
        "{:?}",
        names(f)
    );
    // Without PROCESS the account sees its own threads only.
    let users = processes_by_user(&outcome);
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        ["limited"],
        "limited sees {users:?}"
    );
    assert!(users["limited"] >= 1.0);

    // The same sub-collectors as `exporter`: everything succeeds and other accounts show.
    let mut settings = exporter(replica);
    settings.collect = collect;
    let outcome = scrape_ok(&MysqlCollector::new(settings).unwrap()).await;
    assert_eq!(success(&outcome, "collect.slave_status"), Some(1.0));
    let users = processes_by_user(&outcome);
    for user in ["root", "limited"] {
        assert!(users.contains_key(user), "exporter sees {users:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Connection reuse and the connection cap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stay_under_the_cap_and_are_reused() {
    let server = Mariadb::start(Opts::default());
    server.create_users();
    server.sql("SET GLOBAL userstat = 1");
    let mut root = root_connection(&server).await;
    let connections_before = global_status(&mut root, "CONNECTIONS").await;

    // Sample the exporter's sessions on the server while the scrapes run.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, most, taken) = (stop.clone(), most.clone(), taken.clone());
        let mut conn = root_connection(&server).await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = count_connections(&mut conn, "exporter").await;
                most.fetch_max(n, Ordering::Relaxed);
                taken.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut settings = exporter(&server);
    settings.max_connections = 2;
    settings.collect = vec![Scraper::GlobalStatus];
    settings.queries = vec![
        query(
            "ok",
            "SELECT 1 AS v",
            None,
            Duration::ZERO,
            vec![gauge("reuse_ok", &[], &["v"])],
        ),
        query(
            "broken",
            "SELECT v FROM no_such_schema.no_such_table",
            None,
            Duration::ZERO,
            vec![gauge("reuse_broken", &[], &["v"])],
        ),
    ];
    let collector = MysqlCollector::new(settings).unwrap();

    let (mut shorts, mut ups) = (0u32, 0u32);
    for round in 0..50 {
        // Four at a time; every tenth round one of them gets a deadline too short to finish, which
        // may cost its connection.
        let budgets: Vec<Duration> = (0..4)
            .map(|i| {
                if round % 10 == 5 && i == 0 {
                    Duration::from_millis(3)
                } else {
                    Duration::from_secs(10)
                }
            })
            .collect();
        let outcomes =
            futures_util::future::join_all(budgets.iter().map(|b| scrape(&collector, *b))).await;
        for (budget, outcome) in budgets.iter().zip(outcomes) {
            if *budget < Duration::from_secs(1) {
                shorts += 1;
                continue;
            }
            assert!(outcome.up, "round {round}: {:?}", outcome.errors);
            ups += 1;
            assert_eq!(success(&outcome, "query.ok"), Some(1.0), "round {round}");
            assert_eq!(
                success(&outcome, "query.broken"),
                Some(0.0),
                "round {round}"
            );
            assert_eq!(sample(&outcome.families, "reuse_ok", &[]), Some(1.0));
            assert_eq!(
                outcome.errors.len(),
                1,
                "the broken query: {:?}",
                outcome.errors
            );
        }
    }
    assert_eq!((ups, shorts), (195, 5));

    // Statements abandoned at a deadline finish on their own; give them a moment, then look again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let sampled = taken.load(Ordering::Relaxed);
    let most = most.load(Ordering::Relaxed);
    assert!(sampled > 20, "only {sampled} samples");
    assert!(most >= 1, "the sampler never saw the exporter");
    assert!(most <= 2, "{most} exporter sessions at once, cap 2");
    assert!(count_connections(&mut root, "exporter").await <= 2);

    // Far fewer connections than scrapes: at most the two slots plus one per cut-off scrape.
    let bound = 2.0 + f64::from(shorts);
    let opened = global_status(&mut root, "CONNECTIONS").await - connections_before - 1.0;
    assert!(
        opened <= bound,
        "{opened} connections for 200 scrapes (sampler excluded)"
    );
    let per_user: i64 = sqlx::query_scalar(
        "SELECT TOTAL_CONNECTIONS FROM information_schema.USER_STATISTICS WHERE USER = 'exporter'",
    )
    .fetch_one(&mut root)
    .await
    .unwrap();
    assert!(
        per_user >= 1 && per_user as f64 <= bound,
        "{per_user} logins"
    );

    // A dropped collector leaves nothing behind on the server.
    drop(collector);
    let start = Instant::now();
    while count_connections(&mut root, "exporter").await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "exporter sessions outlive the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Custom queries

fn query(
    name: &str,
    sql: &str,
    timeout: Option<Duration>,
    min_interval: Duration,
    metrics: Vec<QueryMetric>,
) -> QuerySettings {
    QuerySettings {
        name: name.into(),
        query: sql.into(),
        timeout,
        min_interval,
        metrics,
    }
}

fn metric(name: &str, kind: Kind, keys: &[&str], values: &[&str]) -> QueryMetric {
    QueryMetric {
        metric: name.into(),
        kind,
        help: format!("Test metric {name}."),
        key_labels: keys.iter().map(|k| (*k).to_owned()).collect(),
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        value_label: None,
        static_labels: BTreeMap::new(),
    }
}

fn gauge(name: &str, keys: &[&str], values: &[&str]) -> QueryMetric {
    metric(name, Kind::Gauge, keys, values)
}

#[tokio::test]
async fn custom_queries() {
    let primary = &shared_pair().primary;
    primary.sql(
        "CREATE DATABASE custom_queries_test;
         CREATE TABLE custom_queries_test.t (k VARCHAR(8) PRIMARY KEY, a INT NULL, b INT NULL);
         INSERT INTO custom_queries_test.t VALUES ('x', 1, 10), ('y', 2, 20), ('z', 3, NULL),
                                                  ('w', NULL, NULL);",
    );
    let rows: f64 = primary
        .scalar("SELECT COUNT(*) FROM custom_queries_test.t")
        .parse()
        .unwrap();

    let mut two_values = metric("custom_ab_total", Kind::Counter, &["k"], &["a", "b"]);
    two_values.value_label = Some("column".into());
    two_values.static_labels = BTreeMap::from([("source".to_owned(), "test".to_owned())]);
    let mut settings = exporter(primary);
    settings.queries = vec![
        query(
            "rows",
            "SELECT k, a, b FROM custom_queries_test.t",
            None,
            Duration::ZERO,
            vec![gauge("custom_a", &["k"], &["a"]), two_values],
        ),
        query(
            "count",
            "SELECT COUNT(*) AS n FROM custom_queries_test.t",
            None,
            Duration::ZERO,
            vec![metric("custom_rows_total", Kind::Counter, &[], &["n"])],
        ),
        query(
            "slow",
            "SELECT SLEEP(3) AS v",
            Some(Duration::from_millis(500)),
            Duration::ZERO,
            vec![gauge("custom_slow", &[], &["v"])],
        ),
        query(
            "cached",
            "SELECT a FROM custom_queries_test.t WHERE k = 'x'",
            None,
            Duration::from_secs(600),
            vec![gauge("custom_cached", &[], &["a"])],
        ),
        query(
            "fresh",
            "SELECT a FROM custom_queries_test.t WHERE k = 'x'",
            None,
            Duration::ZERO,
            vec![gauge("custom_fresh", &[], &["a"])],
        ),
    ];
    let collector = MysqlCollector::new(settings).unwrap();

    let start = Instant::now();
    let first = scrape(&collector, Duration::from_secs(10)).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "the slow query was not cut at its timeout: {elapsed:?}"
    );
    assert!(first.up, "{:?}", first.errors);
    assert_eq!(
        first.errors.len(),
        1,
        "only the slow query fails: {:?}",
        first.errors
    );
    for (collector, expected) in [
        ("collect.global_status", 1.0),
        ("collect.global_variables", 1.0),
        ("collect.slave_status", 1.0),
        ("query.rows", 1.0),
        ("query.count", 1.0),
        ("query.slow", 0.0),
        ("query.cached", 1.0),
        ("query.fresh", 1.0),
    ] {
        assert_eq!(success(&first, collector), Some(expected), "{collector}");
    }
    let f = &first.families;
    assert!(f.iter().all(|f| f.name() != "custom_slow"));

    // Gauge with a key label; the row whose value is NULL has no sample.
    assert_eq!(kind_of(f, "custom_a"), MetricType::GAUGE);
    assert_eq!(
        samples(f, "custom_a"),
        BTreeMap::from([
            (label_set(&[("k", "x")]), 1.0),
            (label_set(&[("k", "y")]), 2.0),
            (label_set(&[("k", "z")]), 3.0),
        ])
    );
    assert_eq!(
        family(f, "custom_a").help(),
        "Test metric custom_a.",
        "configured HELP"
    );
    // Two value columns told apart by value_label, static labels on every sample, NULLs skipped.
    assert_eq!(kind_of(f, "custom_ab_total"), MetricType::COUNTER);
    let ab = |k: &str, column: &str, v: f64| {
        (
            label_set(&[("k", k), ("column", column), ("source", "test")]),
            v,
        )
    };
    assert_eq!(
        samples(f, "custom_ab_total"),
        BTreeMap::from([
            ab("x", "a", 1.0),
            ab("x", "b", 10.0),
            ab("y", "a", 2.0),
            ab("y", "b", 20.0),
            ab("z", "a", 3.0),
        ])
    );
    assert_eq!(kind_of(f, "custom_rows_total"), MetricType::COUNTER);
    assert_eq!(sample(f, "custom_rows_total", &[]), Some(rows));
    assert_eq!(sample(f, "custom_cached", &[]), Some(1.0));
    assert_eq!(sample(f, "custom_fresh", &[]), Some(1.0));

    // Within min_interval the cached query serves its last result although the table changed.
    primary.sql("UPDATE custom_queries_test.t SET a = 100 WHERE k = 'x'");
    let second = scrape(&collector, Duration::from_secs(10)).await;
    assert!(second.up, "{:?}", second.errors);
    let f = &second.families;
    assert_eq!(
        sample(f, "custom_fresh", &[]),
        Some(100.0),
        "the table changed"
    );
    assert_eq!(
        sample(f, "custom_cached", &[]),
        Some(1.0),
        "served from the cache"
    );
    let help = family(f, "custom_cached").help().to_ascii_lowercase();
    assert!(
        help.contains("cach"),
        "HELP should say the value is cached: {help:?}"
    );
    assert_eq!(success(&second, "query.slow"), Some(0.0));
    assert_eq!(success(&second, "query.fresh"), Some(1.0));
}

// ---------------------------------------------------------------------------------------------
// 8. A password that DSN parsers and shells get wrong

#[tokio::test]
async fn password_with_hash_quotes_and_spaces_works() {
    for c in ['#', '\'', '"', ' ', '\\'] {
        assert!(EXPORTER_PASSWORD.contains(c), "{c:?}");
    }
    let primary = &shared_pair().primary;
    let settings = exporter(primary);
    let debug = format!("{settings:?}");
    assert!(!debug.contains(EXPORTER_PASSWORD), "{debug}");
    let outcome = scrape_ok(&MysqlCollector::new(settings).unwrap()).await;
    assert_eq!(success(&outcome, "collect.global_status"), Some(1.0));
    assert_eq!(success(&outcome, "collect.global_variables"), Some(1.0));
}

// ---------------------------------------------------------------------------------------------
// 9. Session limits set at connect

#[tokio::test]
async fn session_limits_are_applied() {
    let primary = &shared_pair().primary;
    let statement_timeout = Duration::from_secs(7);
    let lock_wait_timeout = Duration::from_secs(3);
    // Below a second, so a limit cut to whole seconds (0: no limit at all) shows.
    let own_limit = Duration::from_millis(250);
    // The server's own defaults differ, so the values below can only come from the collector.
    let global = |name: &str| -> f64 {
        primary
            .scalar(&format!("SELECT @@GLOBAL.{name}"))
            .parse()
            .unwrap()
    };
    assert_ne!(
        global("max_statement_time"),
        statement_timeout.as_secs_f64()
    );
    assert_ne!(global("lock_wait_timeout"), lock_wait_timeout.as_secs_f64());

    let limits = |metric_name: &str| {
        let mut m = gauge(metric_name, &[], &["mst", "lwt"]);
        m.value_label = Some("variable".into());
        m
    };
    let sql = "SELECT @@SESSION.max_statement_time AS mst, @@SESSION.lock_wait_timeout AS lwt";
    let mut settings = exporter(primary);
    settings.collect = Vec::new();
    settings.statement_timeout = statement_timeout;
    settings.lock_wait_timeout = lock_wait_timeout;
    // On MariaDB every custom query runs as `SET STATEMENT max_statement_time = <limit> FOR ...`,
    // with <limit> the query's timeout capped at statement_timeout, or statement_timeout without
    // one. Within that statement @@SESSION.max_statement_time is <limit>, not the session value set
    // at connect (checked by hand on 10.11: `SET SESSION max_statement_time = 7; SET STATEMENT
    // max_statement_time = 2 FOR SELECT @@SESSION.max_statement_time` shows 2), and MariaDB offers
    // no other session's variables to read (no performance_schema.variables_by_thread). So:
    // - without a timeout the limit is statement_timeout: the session limit the collector sets;
    // - a timeout above statement_timeout is capped to it;
    // - a timeout below it shows that the value seen is the per-query one.
    // lock_wait_timeout is not wrapped: every query sees the session value set at connect.
    settings.queries = vec![
        query(
            "session",
            sql,
            None,
            Duration::ZERO,
            vec![limits("limits_session")],
        ),
        query(
            "capped",
            sql,
            Some(statement_timeout * 4),
            Duration::ZERO,
            vec![limits("limits_capped")],
        ),
        query(
            "own",
            sql,
            Some(own_limit),
            Duration::ZERO,
            vec![limits("limits_own")],
        ),
    ];
    let outcome = scrape_ok(&MysqlCollector::new(settings).unwrap()).await;
    let f = &outcome.families;
    for (metric, mst) in [
        ("limits_session", statement_timeout),
        ("limits_capped", statement_timeout),
        ("limits_own", own_limit),
    ] {
        assert_eq!(
            samples(f, metric),
            BTreeMap::from([
                (label_set(&[("variable", "mst")]), mst.as_secs_f64()),
                (
                    label_set(&[("variable", "lwt")]),
                    lock_wait_timeout.as_secs_f64()
                ),
            ]),
            "{metric}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10. A statement that outlives the scrape's deadline keeps its slot, then gives it back

/// The exporter's sessions running `SELECT SLEEP(...)`: (id, info).
async fn exporter_sleeps(root: &mut MySqlConnection) -> Vec<(i64, String)> {
    sqlx::query_as::<_, (i64, String)>(
        "SELECT id, info FROM information_schema.processlist \
         WHERE user = 'exporter' AND info LIKE '%SLEEP(%'",
    )
    .fetch_all(root)
    .await
    .unwrap()
}

/// Ids of every exporter session on the server.
async fn exporter_ids(root: &mut MySqlConnection) -> Vec<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT id FROM information_schema.processlist WHERE user = 'exporter' ORDER BY id",
    )
    .fetch_all(root)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_statement_past_the_deadline_keeps_its_slot_until_it_ends_then_its_connection_is_reused()
{
    // A server of its own: nothing else may connect while the counters are compared.
    let server = Mariadb::start(Opts::default());
    server.create_users();
    let mut root = root_connection(&server).await;
    let sleep = Duration::from_secs(2);
    let mut settings = exporter(&server);
    settings.max_connections = 1;
    settings.collect = Vec::new();
    settings.queries = vec![query(
        "late",
        &format!("SELECT SLEEP({}) AS v", sleep.as_secs()),
        Some(Duration::from_secs(5)),
        Duration::ZERO,
        vec![gauge("late_v", &[], &["v"])],
    )];
    let collector = MysqlCollector::new(settings).unwrap();
    let budget = Duration::from_millis(500);
    let margin = Duration::from_millis(700);
    let connections_at_start = global_status(&mut root, "CONNECTIONS").await;

    // The scrape returns at its deadline: connected (up), the query cut off as a timeout.
    let start = Instant::now();
    let first = scrape(&collector, budget).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= budget - Duration::from_millis(50),
        "returned before its deadline: {elapsed:?}"
    );
    assert!(elapsed < budget + margin, "{elapsed:?}");
    assert!(first.up, "{:?}", first.errors);
    assert!(
        matches!(first.errors.as_slice(), [CollectError::Timeout(_)]),
        "{:?}",
        first.errors
    );
    assert_eq!(success(&first, "query.late"), Some(0.0));
    assert!(first.families.iter().all(|f| f.name() != "late_v"));
    let connections_before = global_status(&mut root, "CONNECTIONS").await;
    assert_eq!(
        connections_before - connections_at_start,
        1.0,
        "the first scrape opened one connection"
    );

    // The statement goes on on the server.
    let running = exporter_sleeps(&mut root).await;
    assert_eq!(running.len(), 1, "{running:?}");
    let (late_id, info) = running[0].clone();
    assert!(info.contains("SLEEP(2)"), "{info}");

    // Its slot is still taken: the next scrape cannot get a connection before its deadline.
    let start = Instant::now();
    let second = scrape(&collector, budget).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= budget - Duration::from_millis(50),
        "returned before its deadline: {elapsed:?}"
    );
    assert!(elapsed < budget + margin, "{elapsed:?}");
    assert!(!second.up, "got a connection while the only slot was busy");
    assert!(
        matches!(second.errors.as_slice(), [CollectError::Timeout(_)]),
        "{:?}",
        second.errors
    );
    // Still the same statement, so it was the busy slot the second scrape waited for.
    assert_eq!(
        exporter_sleeps(&mut root).await,
        running,
        "the late statement ended before the second scrape did; the check proves nothing"
    );
    assert_eq!(exporter_ids(&mut root).await, vec![late_id]);

    // Once the statement has ended the connection is back: the next scrape succeeds on it.
    let waited = Instant::now();
    while !exporter_sleeps(&mut root).await.is_empty() {
        assert!(
            waited.elapsed() < sleep + Duration::from_secs(5),
            "the late statement never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = scrape_ok(&collector).await;
    assert_eq!(success(&third, "query.late"), Some(1.0));
    // SLEEP returns 0 when it was not interrupted.
    assert_eq!(sample(&third.families, "late_v", &[]), Some(0.0));
    assert_eq!(
        global_status(&mut root, "CONNECTIONS").await,
        connections_before,
        "a new connection instead of the one the late statement gave back"
    );
    assert_eq!(exporter_ids(&mut root).await, vec![late_id]);
}

// ---------------------------------------------------------------------------------------------
// 11. The sub-collectors that are off by default, on a live server

/// mysqld_exporter's name form: every character outside `[a-zA-Z0-9_]` becomes `_`.
fn normalized(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn label_names(family: &MetricFamily) -> BTreeSet<BTreeSet<String>> {
    family
        .get_metric()
        .iter()
        .map(|m| labels(m).into_keys().collect())
        .collect()
}

fn name_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Every sample of `name` has exactly the label names `expected`.
fn assert_label_names(families: &[MetricFamily], name: &str, expected: &[&str]) {
    let family = family(families, name);
    assert!(!family.get_metric().is_empty(), "{name} has no samples");
    assert_eq!(
        label_names(family),
        BTreeSet::from([name_set(expected)]),
        "{name}"
    );
}

/// The innodb_metrics families the enabled rows of `information_schema.innodb_metrics` make, by
/// mysqld_exporter's rules: (family, label names, whether a counter could also be a gauge).
fn expected_innodb_families(server: &Mariadb) -> BTreeMap<String, BTreeSet<String>> {
    let (_, rows) = server
        .query("SELECT name, subsystem FROM information_schema.innodb_metrics WHERE enabled = 1");
    let mut expected = BTreeMap::new();
    let prefix = "mysql_info_schema_innodb_metrics_";
    for row in rows {
        let (name, subsystem) = (row[0].clone().unwrap(), row[1].clone().unwrap());
        let (family, labels) = if subsystem == "buffer_page_io" {
            if name.starts_with("buffer_page_read_") {
                (
                    format!("{prefix}buffer_page_read_total"),
                    name_set(&["type"]),
                )
            } else {
                (
                    format!("{prefix}buffer_page_written_total"),
                    name_set(&["type"]),
                )
            }
        } else if subsystem == "buffer"
            && let Some(state) = name.strip_prefix("buffer_pool_pages_")
        {
            match state {
                "total" => continue,
                "dirty" => (format!("{prefix}buffer_pool_dirty_pages"), BTreeSet::new()),
                _ => (format!("{prefix}buffer_pool_pages"), name_set(&["state"])),
            }
        } else {
            (
                format!("{prefix}{}_{}", normalized(&subsystem), normalized(&name)),
                BTreeSet::new(),
            )
        };
        expected.insert(family, labels);
    }
    expected
}

#[tokio::test]
async fn off_by_default_sub_collectors_on_a_live_server() {
    // performance_schema is OFF by default in MariaDB; digests need it on.
    let server = Mariadb::start(Opts {
        extra_args: vec!["--performance-schema=ON".into()],
        ..Opts::default()
    });
    assert_eq!(server.scalar("SELECT @@performance_schema"), "1");
    server.create_users();
    let schema = "subcollector_tables";
    server.sql(&format!(
        "CREATE DATABASE {schema};
         CREATE TABLE {schema}.inno (id INT PRIMARY KEY, k INT, v VARCHAR(64), KEY (k)) ENGINE=InnoDB;
         INSERT INTO {schema}.inno SELECT seq, seq % 7, REPEAT('x', 50) FROM {schema}.seq_1_to_300;
         CREATE TABLE {schema}.mine (id INT) ENGINE=MyISAM;
         INSERT INTO {schema}.mine VALUES (1), (2), (3), (4), (5);
         ANALYZE TABLE {schema}.inno, {schema}.mine;
         CREATE DATABASE not_listed;
         CREATE TABLE not_listed.t (id INT);
         INSERT INTO not_listed.t VALUES (1);"
    ));
    // A statement run a few times with a default schema (digests without one are left out, as
    // upstream leaves them out).
    let runs = 3;
    for _ in 0..runs {
        server.sql(&format!(
            "USE {schema}; SELECT COUNT(*) FROM inno WHERE k = 3"
        ));
    }
    // Sessions for the processlist: an exporter session that is not the collector's, and root's.
    let _other_exporter = tcp_connection(&server, "exporter", EXPORTER_PASSWORD).await;
    let mut root = root_connection(&server).await;

    let (_, digest_rows) = server.query(&format!(
        "SELECT DIGEST, LEFT(DIGEST_TEXT, 120), COUNT_STAR \
         FROM performance_schema.events_statements_summary_by_digest \
         WHERE SCHEMA_NAME = '{schema}' AND DIGEST_TEXT LIKE 'SELECT COUNT%'"
    ));
    assert_eq!(digest_rows.len(), 1, "{digest_rows:?}");
    let digest = digest_rows[0][0].clone().unwrap();
    let digest_text = digest_rows[0][1].clone().unwrap();
    let count_before: f64 = digest_rows[0][2].as_deref().unwrap().parse().unwrap();
    assert!(count_before >= f64::from(runs));

    let (_, table_rows) = server.query(&format!(
        "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE \
         FROM information_schema.tables WHERE TABLE_SCHEMA = '{schema}' ORDER BY TABLE_NAME"
    ));
    let expected_innodb = expected_innodb_families(&server);
    assert!(!expected_innodb.is_empty(), "no enabled innodb metrics");

    let mut settings = exporter(&server);
    settings.collect = vec![
        Scraper::Processlist,
        Scraper::InnodbMetrics,
        Scraper::EventsStatements,
        Scraper::Tables,
    ];
    settings.table_schemas = vec![schema.to_owned()];
    let collector = MysqlCollector::new(settings).unwrap();
    // Two overlapping scrapes leave the collector two idle connections, so the scrape below has a
    // connection open besides the one the processlist statement runs on, which must be left out as
    // well. (One scrape alone opens its second connection only when the slot is free at that moment.)
    tokio::join!(scrape_ok(&collector), scrape_ok(&collector));
    assert_eq!(
        count_connections(&mut root, "exporter").await,
        3,
        "the outside session and the collector's two"
    );
    let outcome = scrape_ok(&collector).await;
    let f = &outcome.families;
    for name in [
        "info_schema.processlist",
        "info_schema.innodb_metrics",
        "perf_schema.eventsstatements",
        "info_schema.tables",
    ] {
        assert_eq!(
            success(&outcome, &format!("collect.{name}")),
            Some(1.0),
            "{name}"
        );
    }

    // Processlist: threads and seconds by command and state, processes by user and by host. The
    // collector's own sessions are left out; other sessions of the same account are not.
    for name in [
        "mysql_info_schema_processlist_threads",
        "mysql_info_schema_processlist_seconds",
    ] {
        assert_label_names(f, name, &["command", "state"]);
    }
    assert_label_names(
        f,
        "mysql_info_schema_processlist_processes_by_user",
        &["mysql_user"],
    );
    assert_label_names(
        f,
        "mysql_info_schema_processlist_processes_by_host",
        &["client_host"],
    );
    let users = processes_by_user(&outcome);
    assert_eq!(
        users.get("exporter"),
        Some(&1.0),
        "only the session outside the collector: {users:?}"
    );
    assert!(users.get("root").is_some_and(|n| *n >= 1.0), "{users:?}");
    let threads: f64 = samples(f, "mysql_info_schema_processlist_threads")
        .values()
        .sum();
    assert_eq!(threads, users.values().sum::<f64>(), "threads vs by user");
    let hosts: f64 = samples(f, "mysql_info_schema_processlist_processes_by_host")
        .values()
        .sum();
    assert_eq!(hosts, threads, "by host vs threads");

    // InnoDB metrics: one family per enabled counter, none for disabled ones.
    let produced: BTreeSet<String> = names(f)
        .into_iter()
        .filter(|n| n.starts_with("mysql_info_schema_innodb_metrics_"))
        .collect();
    assert!(!produced.is_empty(), "no innodb_metrics families");
    for (name, labels) in &expected_innodb {
        // A counter is a gauge without `_total` while negative (MySQL bug 75966).
        let found = [format!("{name}_total"), name.clone()]
            .into_iter()
            .find(|n| produced.contains(n))
            .unwrap_or_else(|| panic!("{name}(_total) missing"));
        let family = family(f, &found);
        assert_eq!(
            label_names(family),
            BTreeSet::from([labels.clone()]),
            "{found}"
        );
        let kind = family.get_field_type();
        if found.ends_with("_total") {
            assert_eq!(kind, MetricType::COUNTER, "{found}");
        } else {
            assert_eq!(kind, MetricType::GAUGE, "{found}");
        }
    }
    let unexpected: Vec<_> = produced
        .iter()
        .filter(|n| {
            !expected_innodb.contains_key(n.as_str())
                && !n
                    .strip_suffix("_total")
                    .is_some_and(|b| expected_innodb.contains_key(b))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "families of disabled rows: {unexpected:?}"
    );

    // Statement digests: our statement under its digest, counted at least as often as it ran.
    let digest_families: Vec<&MetricFamily> = f
        .iter()
        .filter(|f| f.name().starts_with("mysql_perf_schema_events_statements_"))
        .collect();
    assert_eq!(digest_families.len(), 12, "{:?}", names(f));
    for family in &digest_families {
        assert_eq!(
            family.get_field_type(),
            MetricType::COUNTER,
            "{}",
            family.name()
        );
        assert_label_names(f, family.name(), &["schema", "digest", "digest_text"]);
    }
    let ours = [
        ("schema", schema),
        ("digest", digest.as_str()),
        ("digest_text", digest_text.as_str()),
    ];
    let count = sample(f, "mysql_perf_schema_events_statements_total", &ours)
        .unwrap_or_else(|| panic!("no digest {ours:?}"));
    let (_, after) = server.query(&format!(
        "SELECT COUNT_STAR FROM performance_schema.events_statements_summary_by_digest \
         WHERE SCHEMA_NAME = '{schema}' AND DIGEST = '{digest}'"
    ));
    let count_after: f64 = after[0][0].as_deref().unwrap().parse().unwrap();
    assert!(
        count_before <= count && count <= count_after,
        "{count_before} <= {count} <= {count_after}"
    );
    let rows_sent = sample(
        f,
        "mysql_perf_schema_events_statements_rows_sent_total",
        &ours,
    );
    assert_eq!(rows_sent, Some(count), "one row per COUNT(*)");

    // Tables: rows and sizes of the listed schema's tables as the server reports them, nothing of
    // other schemas.
    assert_label_names(f, "mysql_info_schema_table_rows", &["schema", "table"]);
    assert_label_names(
        f,
        "mysql_info_schema_table_size",
        &["schema", "table", "component"],
    );
    assert_label_names(
        f,
        "mysql_info_schema_table_version",
        &[
            "schema",
            "table",
            "type",
            "engine",
            "row_format",
            "create_options",
        ],
    );
    let mut expected_rows = BTreeMap::new();
    let mut expected_sizes = BTreeMap::new();
    for row in &table_rows {
        let table = row[0].as_deref().unwrap();
        let number = |i: usize| row[i].as_deref().unwrap().parse::<f64>().unwrap();
        expected_rows.insert(
            label_set(&[("schema", schema), ("table", table)]),
            number(1),
        );
        for (i, component) in [(2, "data_length"), (3, "index_length"), (4, "data_free")] {
            expected_sizes.insert(
                label_set(&[
                    ("schema", schema),
                    ("table", table),
                    ("component", component),
                ]),
                number(i),
            );
        }
    }
    assert_eq!(expected_rows.len(), 2, "{table_rows:?}");
    assert_eq!(samples(f, "mysql_info_schema_table_rows"), expected_rows);
    assert_eq!(samples(f, "mysql_info_schema_table_size"), expected_sizes);
    let exact: f64 = server
        .scalar(&format!("SELECT COUNT(*) FROM {schema}.mine"))
        .parse()
        .unwrap();
    assert_eq!(
        sample(
            f,
            "mysql_info_schema_table_rows",
            &[("schema", schema), ("table", "mine")]
        ),
        Some(exact),
        "MyISAM counts rows exactly"
    );
    let engines: BTreeMap<String, String> = family(f, "mysql_info_schema_table_version")
        .get_metric()
        .iter()
        .map(|m| {
            let l = labels(m);
            (l["table"].clone(), l["engine"].clone())
        })
        .collect();
    assert_eq!(
        engines,
        BTreeMap::from([
            ("inno".to_owned(), "InnoDB".to_owned()),
            ("mine".to_owned(), "MyISAM".to_owned())
        ])
    );
}

/// With performance_schema OFF (MariaDB's default) its tables still exist, empty: the digest
/// statement returns no rows, so the sub-collector succeeds with no families (it is not the
/// "table missing" skip, and not a failure).
#[tokio::test]
async fn eventsstatements_with_performance_schema_off_succeeds_empty() {
    let primary = &shared_pair().primary;
    assert_eq!(primary.scalar("SELECT @@performance_schema"), "0");
    // Statements that would have digests if performance_schema were on.
    for _ in 0..3 {
        primary.sql("USE mysql; SELECT COUNT(*) FROM user WHERE user = 'exporter'");
        primary.sql("USE replicated; SELECT 1");
    }
    let mut settings = exporter(primary);
    settings.collect = vec![Scraper::EventsStatements];
    let outcome = scrape_ok(&MysqlCollector::new(settings).unwrap()).await;
    assert_eq!(
        success(&outcome, "collect.perf_schema.eventsstatements"),
        Some(1.0)
    );
    let digests: Vec<_> = names(&outcome.families)
        .into_iter()
        .filter(|n| n.starts_with("mysql_perf_schema_"))
        .collect();
    assert!(digests.is_empty(), "{digests:?}");
}
