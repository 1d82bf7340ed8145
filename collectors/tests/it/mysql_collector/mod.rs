//! The MySQL collector against real MariaDB servers started by the harness (support/mariadb.rs):
//! family sets and types, replication status, privileges, failures, deadlines, connection reuse and
//! custom queries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::families::*;
use fanout_testkit::http as support;
use fanout_testkit::mariadb;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use fanout_collectors::family::MetricType as Kind;
use fanout_collectors::mysql::{
    Address, MysqlCollector, MysqlSettings, QueryMetric, QuerySettings, Scraper,
};
use fanout_collectors::{Collector, ErrorClass, Outcome};
use mariadb::*;
use prometheus::proto::{MetricFamily, MetricType};
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

fn success(outcome: &Outcome, collector: &str) -> Option<f64> {
    sample(
        &outcome.families,
        "mysql_exporter_collector_success",
        &[("collector", collector)],
    )
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
    // innodb_cmp and innodb_cmpmem: one family per numeric column, whatever the values (the tables
    // have a row per compressed page size even without a compressed table).
    for (table, key_columns, prefix) in [
        (
            "innodb_cmp",
            &["page_size"][..],
            "mysql_info_schema_innodb_cmp_",
        ),
        (
            "innodb_cmpmem",
            &["page_size", "buffer_pool_instance"][..],
            "mysql_info_schema_innodb_cmpmem_",
        ),
    ] {
        let (columns, rows) = server.query(&format!("SELECT * FROM information_schema.{table}"));
        assert!(!rows.is_empty(), "information_schema.{table} is empty");
        for column in columns {
            let column = column.to_ascii_lowercase();
            if key_columns.contains(&column.as_str()) {
                continue;
            }
            let unit = if column.ends_with("_time") {
                "_seconds"
            } else {
                ""
            };
            expected.insert(format!("{prefix}{column}{unit}_total"));
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
        for scraper in [
            "global_status",
            "global_variables",
            "slave_status",
            "info_schema.innodb_cmp",
            "info_schema.innodb_cmpmem",
        ] {
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
            "collect.info_schema.innodb_cmp",
            "collect.info_schema.innodb_cmpmem",
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
        error.class() == ErrorClass::Auth,
        "expected an auth error, got {error:?}"
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
    assert_eq!(error.class(), ErrorClass::Dns, "{error:?}");
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
        outcome.errors[0].class() == ErrorClass::Timeout,
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
            matches!(outcome.errors.as_slice(), [e] if e.class() == ErrorClass::Timeout),
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
    // SHOW ALL SLAVES STATUS needs SLAVE MONITOR (or SUPER) on MariaDB 10.11, innodb_cmp and
    // innodb_cmpmem need PROCESS: each refused, reported once.
    assert_eq!(outcome.errors.len(), 3, "{:?}", outcome.errors);
    assert_eq!(success(&outcome, "collect.global_status"), Some(1.0));
    assert_eq!(success(&outcome, "collect.global_variables"), Some(1.0));
    assert_eq!(success(&outcome, "collect.slave_status"), Some(0.0));
    assert_eq!(
        success(&outcome, "collect.info_schema.innodb_cmp"),
        Some(0.0)
    );
    assert_eq!(
        success(&outcome, "collect.info_schema.innodb_cmpmem"),
        Some(0.0)
    );
    assert_eq!(
        success(&outcome, "collect.info_schema.processlist"),
        Some(1.0)
    );
    let f = &outcome.families;
    assert!(f.iter().any(|f| f.name() == "mysql_global_status_uptime"));
    assert!(
        f.iter()
            .all(|f| !f.name().starts_with("mysql_slave_status_")
                && !f.name().starts_with("mysql_info_schema_innodb_cmp")),
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

mod connections;
mod custom;
mod sub_collectors;

use custom::{gauge, query};
