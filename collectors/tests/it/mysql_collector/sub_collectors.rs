use super::*;

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

/// `info_schema.innodb_cmp` and `innodb_cmpmem`, on by default: on a server with a compressed table
/// every row of both tables becomes one sample per column, with the server's values (compression
/// counted, pages in use seen), mysqld_exporter's label names, and the pages in use as gauges.
#[tokio::test]
async fn compression_tables_on_a_live_server() {
    let server = Mariadb::start(Opts::default());
    server.create_users();
    // 4 KiB compressed pages: enough rows to compress pages and keep some in the buffer pool.
    server.sql(
        "CREATE DATABASE packed;
         CREATE TABLE packed.t (id INT PRIMARY KEY, v VARCHAR(200))
           ENGINE=InnoDB ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=4;
         INSERT INTO packed.t SELECT seq, REPEAT(MD5(seq), 5) FROM packed.seq_1_to_5000;",
    );
    let collector = MysqlCollector::new(exporter(&server)).unwrap();
    let outcome = scrape_ok(&collector).await;
    let f = &outcome.families;
    for collector in [
        "collect.info_schema.innodb_cmp",
        "collect.info_schema.innodb_cmpmem",
    ] {
        assert_eq!(success(&outcome, collector), Some(1.0), "{collector}");
    }

    // What the tables hold now (nothing writes in between: the values must be the same).
    let (_, cmp) = server.query(
        "SELECT page_size, compress_ops, compress_ops_ok, compress_time, uncompress_ops, \
         uncompress_time FROM information_schema.innodb_cmp",
    );
    let (_, cmpmem) = server.query(
        "SELECT page_size, buffer_pool_instance, pages_used, pages_free, relocation_ops, \
         relocation_time FROM information_schema.innodb_cmpmem",
    );
    let number = |v: &Option<String>| v.as_deref().unwrap().parse::<f64>().unwrap();
    let cmp_families = [
        "mysql_info_schema_innodb_cmp_compress_ops_total",
        "mysql_info_schema_innodb_cmp_compress_ops_ok_total",
        "mysql_info_schema_innodb_cmp_compress_time_seconds_total",
        "mysql_info_schema_innodb_cmp_uncompress_ops_total",
        "mysql_info_schema_innodb_cmp_uncompress_time_seconds_total",
    ];
    for (i, name) in cmp_families.iter().enumerate() {
        assert_eq!(kind_of(f, name), MetricType::COUNTER, "{name}");
        let wanted: BTreeMap<_, _> = cmp
            .iter()
            .map(|row| {
                let page_size = row[0].as_deref().unwrap();
                (label_set(&[("page_size", page_size)]), number(&row[i + 1]))
            })
            .collect();
        assert_eq!(samples(f, name), wanted, "{name}");
    }
    let cmpmem_families = [
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
    ];
    for (i, (name, kind)) in cmpmem_families.iter().enumerate() {
        assert_eq!(kind_of(f, name), *kind, "{name}");
        let wanted: BTreeMap<_, _> = cmpmem
            .iter()
            .map(|row| {
                let (page_size, pool) = (row[0].as_deref().unwrap(), row[1].as_deref().unwrap());
                (
                    label_set(&[("page_size", page_size), ("buffer_pool", pool)]),
                    number(&row[i + 2]),
                )
            })
            .collect();
        assert_eq!(samples(f, name), wanted, "{name}");
    }
    // The compressed table really was compressed and is in the pool at 4 KiB, so the comparison
    // above was not one of zeros only.
    let at_4k = [("page_size", "4096")];
    assert!(must(f, "mysql_info_schema_innodb_cmp_compress_ops_total", &at_4k) > 0.0);
    let pool_4k = [("page_size", "4096"), ("buffer_pool", "0")];
    assert!(
        must(
            f,
            "mysql_info_schema_innodb_cmpmem_pages_used_total",
            &pool_4k
        ) > 0.0
    );
}
