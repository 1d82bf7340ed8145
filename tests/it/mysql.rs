//! The mysql kind through the built binary, against real MariaDB servers (a primary and a replica
//! replicating from it): the exposition checked by the real `promtool`, and compared side by side with
//! Debian's mysqld_exporter scraping the same server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::mariadb;

use std::collections::{BTreeMap, BTreeSet};

use support::{
    Exporter, Peer, assert_promtool_accepts, assert_targets_up, compare_with_peer, families,
    series, value, write,
};

/// promtool lint findings we accept, all on names inherited from mysqld_exporter that dashboards and
/// alerts use as they are. Each entry is (name prefix, finding), matched against promtool's output.
const INHERITED_LINTS: &[(&str, &str)] = &[
    // SHOW GLOBAL STATUS counters keep the variable's own name (`mysql_global_status_questions`,
    // `..._bytes_received`, ...); mysqld_exporter never added `_total` to them.
    (
        "mysql_global_status_",
        "counter metrics should have \"_total\" suffix",
    ),
    // `Innodb_data_read`, `Innodb_data_written`, ... are byte counters named without a unit.
    ("mysql_global_status_", "use base unit"),
    // Variables named by the server (`innodb_lock_wait_timeout` in seconds, `long_query_time`, ...).
    ("mysql_global_variables_", "use base unit"),
    // Server names ending in `_count` (`Prepared_stmt_count`, `max_error_count`, ...): plain gauges
    // and counters that promtool takes for a summary's or histogram's `_count` series.
    (
        "mysql_global_status_",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    (
        "mysql_global_variables_",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    // `histogram_size`, `innodb_stats_modified_counter`: variable names that contain a type word.
    (
        "mysql_global_variables_",
        "metric name should not include type",
    ),
    // Compressed blocks in use and free now: gauges (they go down), under mysqld_exporter's names,
    // which end in `_total`.
    (
        "mysql_info_schema_innodb_cmpmem_pages_",
        "non-counter metrics should not have \"_total\" suffix",
    ),
    // `Skip_Counter` of SHOW SLAVE STATUS (a gauge: events left to skip).
    (
        "mysql_slave_status_skip_counter",
        "metric name should not include type",
    ),
];

/// Families Debian's mysqld_exporter (0.14) has that we do not, each with the reason.
const PEER_ONLY: &[(&str, &str)] = &[
    // Removed upstream in 0.15 (prometheus/mysqld_exporter#722); not to be revived.
    ("mysql_exporter_scrapes_total", "removed upstream"),
    ("mysql_exporter_scrape_errors_total", "removed upstream"),
    ("mysql_exporter_last_scrape_error", "removed upstream"),
    ("mysql_last_scrape_failed", "removed upstream"),
    // The peer claims a Galera cluster on every MariaDB server (wsrep_cluster_name has a default);
    // ours emits it only when wsrep_on is ON.
    ("mysql_galera_variables_info", "only with Galera"),
    // The peer's own build info; ours is fanout_exporter_build_info.
    ("mysqld_exporter_build_info", "exporter's own"),
    // Go runtime and HTTP handler metrics of the peer's process.
    ("go_", "peer runtime"),
    ("promhttp_", "peer runtime"),
    ("process_", "peer runtime"),
];

/// Families mysqld_exporter types as counters that are levels (the compressed blocks in use and free
/// at the moment): gauges in ours, under the same names.
const GAUGES_NOT_COUNTERS: &[&str] = &[
    "mysql_info_schema_innodb_cmpmem_pages_used_total",
    "mysql_info_schema_innodb_cmpmem_pages_free_total",
];

/// HELP lines of `text` by family name.
fn helps(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_once(' '))
        .collect()
}

/// The samples of family `name` in `text`: label pairs (in any order) and value.
fn labelled_samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .map(|rest| {
            let (labels, value) = rest.rsplit_once("} ").unwrap();
            let labels = support::split_labels(labels).into_iter().collect();
            (labels, value.parse().unwrap())
        })
        .collect()
}

/// An exporter with both servers as targets, as the `exporter` account (whose password has `#`,
/// quotes, a backslash and spaces), plus the directory holding its config.
fn start_exporter(pair: &mariadb::Pair) -> (Exporter, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", mariadb::EXPORTER_PASSWORD);
    let exporter = exporter_with(
        dir.path(),
        &format!(
            "mysql:\n  primary:\n    address: 127.0.0.1:{}\n    user: exporter\n    password_file: mysql.pw\n\
             \x20 replica:\n    address: 127.0.0.1:{}\n    user: exporter\n    password_file: mysql.pw\n",
            pair.primary.port(),
            pair.replica.port()
        ),
    );
    (exporter, dir)
}

/// The built exporter on a free port with `yaml` as its config, written to `dir`.
fn exporter_with(dir: &std::path::Path, yaml: &str) -> Exporter {
    let config = write(dir, "config.yaml", yaml);
    Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", config.display()),
    ])
}

#[test]
fn both_servers_scrape_cleanly_and_promtool_lints_only_inherited_names() {
    let pair = mariadb::shared_pair();
    let (exporter, _dir) = start_exporter(pair);
    let response = exporter.get("/metrics", &[]);
    assert_eq!(response.status, 200);
    let text = response.text();

    assert_targets_up(
        &exporter,
        &text,
        "mysql",
        "mysql_up",
        &["primary", "replica"],
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("mysql_slave_status_slave_io_running{")
                && l.contains("target=\"replica\"")
                && l.ends_with(" 1")),
        "no running replica in the exposition"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("mysql_slave_status_") && l.contains("target=\"primary\"")),
        "the primary reports replica metrics"
    );

    let all = series(&text);
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "duplicate series in the exposition"
    );
    // Every family is typed: TYPE lines are there, and none of them says untyped.
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    assert!(
        types.iter().any(|l| l.starts_with("# TYPE mysql_")),
        "no TYPE lines for mysql families"
    );
    let untyped: Vec<&&str> = types
        .iter()
        .filter(|l| l.split_whitespace().nth(3) == Some("untyped"))
        .collect();
    assert!(untyped.is_empty(), "untyped families: {untyped:?}");
    // And every sampled family has its TYPE line (a family without one is untyped to a parser).
    // Histogram and summary series (`_bucket`, `_sum`, `_count`) go by their family's TYPE line.
    let all_families = families(&text);
    let kind_of = |name: &str| all_families.get(name).map(|(kind, _)| kind.as_str());
    let without_type: Vec<&String> = all_families
        .iter()
        .filter(|(name, (kind, _))| {
            kind.is_empty()
                && !["_bucket", "_sum", "_count"].iter().any(|suffix| {
                    name.strip_suffix(suffix)
                        .is_some_and(|base| matches!(kind_of(base), Some("histogram" | "summary")))
                })
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        without_type.is_empty(),
        "series without a TYPE line: {without_type:?}"
    );

    assert_promtool_accepts(&response.body, INHERITED_LINTS);
}

#[test]
fn names_types_and_labels_match_mysqld_exporter_on_the_same_replica() {
    let pair = mariadb::shared_pair();
    let socket = pair.replica.socket();
    let peer = Peer::mysqld(&socket).unwrap_or_else(|| {
        panic!(
            "{} not found: install the Debian package prometheus-mysqld-exporter (apt-get install prometheus-mysqld-exporter), or run scripts/test, which does",
            support::MYSQLD_EXPORTER
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let ours = exporter_with(
        dir.path(),
        &format!(
            "mysql:\n  replica:\n    address: unix://{}\n    user: root\n",
            socket.display()
        ),
    );
    let peer_text = support::get(peer.address, "/metrics", &[]).text();
    let our_text = ours.get("/metrics", &[]).text();
    assert_eq!(
        value(&peer_text, "mysql_up"),
        Some(1.0),
        "peer cannot reach the server"
    );
    let theirs = families(&peer_text);
    let mine = families(&our_text);
    // The peer leaves ungrouped status variables untyped; ours types them. It types the compressed
    // blocks in use and free now as counters; ours are gauges under the same names.
    let (missing, mismatched) = compare_with_peer(
        &theirs,
        &mine,
        PEER_ONLY,
        |name, peer, ours| {
            peer == ours
                || peer == "untyped" && (ours == "counter" || ours == "gauge")
                || peer == "counter" && ours == "gauge" && GAUGES_NOT_COUNTERS.contains(&name)
        },
        &[],
    );
    assert!(
        missing.is_empty(),
        "families mysqld_exporter has and we do not:\n{}",
        missing.join("\n")
    );
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n"));
    assert!(
        mine.values().all(|(kind, _)| kind != "untyped"),
        "we emit an untyped family"
    );

    // info_schema.innodb_cmp and innodb_cmpmem, on by default in both: the same HELP, the same
    // series, and (no compressed table on this server, nothing compresses between the scrapes) the
    // same values. mysqld_exporter divides the relocation time, already in seconds, by 1000 again:
    // with it at 0 here that makes no difference.
    let (peer_help, our_help) = (helps(&peer_text), helps(&our_text));
    let cmp: Vec<&&str> = peer_help
        .keys()
        .filter(|n| n.starts_with("mysql_info_schema_innodb_cmp"))
        .collect();
    assert_eq!(cmp.len(), 9, "the peer's innodb_cmp* families: {cmp:?}");
    for name in cmp {
        assert_eq!(our_help.get(name), peer_help.get(name), "HELP of {name}");
        let peer_samples = labelled_samples(&peer_text, name);
        assert_eq!(peer_samples.len(), 5, "{name}: {peer_samples:?}");
        let mut our_samples = labelled_samples(&our_text, name);
        for (labels, _) in our_samples.iter_mut() {
            assert_eq!(labels.remove("target").as_deref(), Some("replica"));
        }
        let our_samples: BTreeMap<_, _> = our_samples.into_iter().collect();
        let peer_samples: BTreeMap<_, _> = peer_samples.into_iter().collect();
        assert_eq!(our_samples, peer_samples, "{name}");
    }

    // Server settings do not move between two scrapes: the values must agree exactly.
    let mut differ = Vec::new();
    for line in peer_text
        .lines()
        .filter(|l| l.starts_with("mysql_global_variables_"))
    {
        let (series, peer_value) = line.rsplit_once(' ').unwrap();
        let our_series = if series.contains('{') {
            series.replacen('}', ",target=\"replica\"}", 1)
        } else {
            format!("{series}{{target=\"replica\"}}")
        };
        let peer_value: f64 = peer_value.parse().unwrap();
        match value(&our_text, &our_series) {
            Some(v) if v == peer_value => {}
            other => differ.push(format!("{series}: ours {other:?}, peer {peer_value}")),
        }
    }
    assert!(
        differ.is_empty(),
        "global variables that differ from mysqld_exporter's:\n{}",
        differ.join("\n")
    );
}

#[test]
fn stopping_the_exporter_closes_its_connections_politely() {
    let server = mariadb::Mariadb::start(mariadb::Opts::default());
    server.create_users();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", mariadb::EXPORTER_PASSWORD);
    let exporter = exporter_with(
        dir.path(),
        &format!(
            "mysql:\n  db:\n    address: 127.0.0.1:{}\n    user: exporter\n    password_file: mysql.pw\n",
            server.port()
        ),
    );
    for _ in 0..3 {
        let text = exporter.get("/metrics", &[]).text();
        assert_eq!(value(&text, "mysql_up{target=\"db\"}"), Some(1.0), "{text}");
    }
    let sessions = "SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'exporter'";
    assert_ne!(server.scalar(sessions), "0", "no idle connection to close");
    let aborted = server.status("Aborted_clients");

    assert!(exporter.terminate().success());
    // A connection closed without COM_QUIT counts in Aborted_clients and is logged by the server as
    // "Aborted connection" (mysqld_exporter#582); ours say goodbye.
    assert_eq!(server.status("Aborted_clients"), aborted);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.scalar(sessions) != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "exporter sessions still open after it stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
