use super::*;

pub(super) fn query(
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

pub(super) fn metric(name: &str, kind: Kind, keys: &[&str], values: &[&str]) -> QueryMetric {
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

pub(super) fn gauge(name: &str, keys: &[&str], values: &[&str]) -> QueryMetric {
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
        matches!(first.errors.as_slice(), [e] if e.class() == ErrorClass::Timeout),
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
        matches!(second.errors.as_slice(), [e] if e.class() == ErrorClass::Timeout),
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
