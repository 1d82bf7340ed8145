//! The redis kind through the built binary, against real redis-server processes (a primary and a
//! replica): the exposition checked by the real `promtool`, and compared side by side with Debian's
//! redis_exporter scraping the same server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::redis as redis_server;
use redis_server::Server;

use std::collections::BTreeSet;
use std::path::Path;

use support::{
    Exporter, Peer, assert_promtool_accepts, assert_targets_up, compare_with_peer, families,
    series, value, write,
};

/// promtool lint findings we accept, all on names inherited from redis_exporter that dashboards and
/// alerts use as they are: (name, finding).
const INHERITED_LINTS: &[(&str, &str)] = &[
    // Counters named without `_total` by redis_exporter (its counter map keeps INFO's names).
    (
        "redis_total_error_replies",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_unexpected_error_replies",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_dump_payload_sanitizations",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_total_reads_processed",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_total_writes_processed",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_io_threaded_reads_processed",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_io_threaded_writes_processed",
        "counter metrics should have \"_total\" suffix",
    ),
    // Counters redis_exporter types as gauges; ours are counters under the same names (§9 of
    // redis-compat.md), which promtool then wants with `_total`.
    (
        "redis_replica_resyncs_full",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_replica_partial_resync_accepted",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_replica_partial_resync_denied",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_defrag_hits",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_defrag_misses",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_defrag_key_hits",
        "counter metrics should have \"_total\" suffix",
    ),
    (
        "redis_defrag_key_misses",
        "counter metrics should have \"_total\" suffix",
    ),
    // Gauges whose inherited names end in `_total` (a memory size, a count of open sockets).
    (
        "redis_memory_used_vm_total",
        "non-counter metrics should not have \"_total\" suffix",
    ),
    (
        "redis_migrate_cached_sockets_total",
        "non-counter metrics should not have \"_total\" suffix",
    ),
    // Units as redis_exporter spells them (`_usec`, `_ms`, `_sec`).
    ("redis_", "use base unit"),
    (
        "redis_",
        "metric names should not contain abbreviated units",
    ),
    // INFO calls an event-loop rate `..._per_sec`.
    (
        "redis_instantaneous_eventloop_cycles_per_sec",
        "use base unit",
    ),
];

/// Families redis_exporter (1.45) has that we do not, each with the reason.
const PEER_ONLY: &[(&str, &str)] = &[
    // Its own process, build and scrape bookkeeping; ours are fanout_exporter_* and process_*.
    ("redis_exporter_build_info", "exporter's own"),
    ("redis_exporter_scrapes_total", "exporter's own"),
    (
        "redis_exporter_scrape_duration_seconds",
        "exporter's own (a summary of its scrapes)",
    ),
    (
        "redis_exporter_last_scrape_error",
        "error text in a label; ours: fanout_exporter_scrape_success",
    ),
    ("redis_target_scrape_request_errors_total", "exporter's own"),
    // Timing of `--check-key-groups`, a feature we do not build.
    (
        "redis_last_key_groups_scrape_duration_milliseconds",
        "key groups not built",
    ),
    ("go_", "peer runtime"),
    ("promhttp_", "peer runtime"),
    ("process_", "peer runtime"),
];

/// Families redis_exporter types as gauges that are counters (redis-compat.md §9).
const COUNTERS_NOT_GAUGES: &[&str] = &[
    "redis_rdb_saves_total",
    "redis_replica_resyncs_full",
    "redis_replica_partial_resync_accepted",
    "redis_replica_partial_resync_denied",
    "redis_defrag_hits",
    "redis_defrag_misses",
    "redis_defrag_key_hits",
    "redis_defrag_key_misses",
    "redis_cluster_messages_sent_total",
    "redis_cluster_messages_received_total",
    // A counter in redis-compat.md §4; redis_exporter 1.45 still has it in its gauge map.
    "redis_expired_time_cap_reached_total",
];

/// Labels current redis_exporter (1.88, the reference of redis-compat.md) has and Debian's 1.45 does
/// not: (family, label).
const NEWER_UPSTREAM_LABELS: &[(&str, &str)] = &[
    ("redis_instance_info", "master_replid"),
    // On Valkey only.
    ("redis_instance_info", "valkey_version"),
    ("redis_instance_info", "valkey_release_stage"),
];

/// The built exporter on a free port with `yaml` as its config, written to `dir`.
fn exporter_with(dir: &Path, yaml: &str) -> Exporter {
    let config = write(dir, "config.yaml", yaml);
    Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", config.display()),
    ])
}

#[test]
fn both_servers_scrape_cleanly_and_promtool_lints_only_inherited_names() {
    scrape_cleanly_and_lint(Server::Redis);
}

#[test]
fn valkey_primary_and_replica_scrape_cleanly_and_promtool_lints_only_inherited_names() {
    scrape_cleanly_and_lint(Server::Valkey);
}

/// A primary and its replica of `server`, both targets of one exporter: up, replicating, no
/// duplicate or untyped series, and promtool finds only the inherited names' lints.
fn scrape_cleanly_and_lint(server: Server) {
    let pair = redis_server::Pair::start_on(server);
    pair.primary.cli(&["SET", "greeting", "hello"]);
    pair.primary.cli(&["GET", "greeting"]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_with(
        dir.path(),
        &format!(
            "redis:\n  primary:\n    url: {}\n  replica:\n    url: {}\n",
            pair.primary.url(),
            pair.replica.url()
        ),
    );
    let response = exporter.get("/metrics", &[]);
    assert_eq!(response.status, 200);
    let text = response.text();
    assert_targets_up(
        &exporter,
        &text,
        "redis",
        "redis_up",
        &["primary", "replica"],
    );
    assert_eq!(
        value(&text, "redis_connected_slaves{target=\"primary\"}"),
        Some(1.0)
    );
    assert!(
        text.lines().any(|l| l.starts_with("redis_master_link_up{")
            && l.contains("target=\"replica\"")
            && l.ends_with(" 1")),
        "the replica's link is not up in the exposition"
    );

    let all = series(&text);
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "duplicate series in the exposition"
    );
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE redis_"))
        .collect();
    assert!(!types.is_empty(), "no redis families");
    assert!(
        types.iter().all(|t| !t.ends_with(" untyped")),
        "an untyped family"
    );

    assert_promtool_accepts(&response.body, INHERITED_LINTS);
}

#[test]
fn names_types_and_labels_match_redis_exporter_on_the_same_servers() {
    compare_with_redis_exporter(Server::Redis);
}

/// redis_exporter 1.45 predates Valkey (it reads `redis_mode`, which Valkey calls `server_mode`, so
/// its `redis_mode` label is empty there, and it maps fewer INFO fields): everything it has, we have.
#[test]
fn names_types_and_labels_match_redis_exporter_on_valkey() {
    compare_with_redis_exporter(Server::Valkey);
}

/// Debian's redis_exporter and ours on the same primary and on its replica, both of `server`: we
/// have every family it has, with its label names and type (or the counter type it gets wrong).
fn compare_with_redis_exporter(server: Server) {
    let pair = redis_server::Pair::start_on(server);
    pair.primary.cli(&["SET", "greeting", "hello"]);
    pair.primary.cli(&["EXPIRE", "greeting", "600"]);
    pair.primary.cli(&["GET", "greeting"]);
    let _ = pair.primary.try_cli(&["NOSUCHCOMMAND"]);
    let dir = tempfile::tempdir().unwrap();
    for (role, server) in [("primary", &pair.primary), ("replica", &pair.replica)] {
        let peer = Peer::redis(&server.url()).unwrap_or_else(|| {
            panic!(
                "{} not found: install the Debian package prometheus-redis-exporter (apt-get install prometheus-redis-exporter), or run scripts/test, which does",
                support::REDIS_EXPORTER
            )
        });
        let ours = exporter_with(
            dir.path(),
            &format!("redis:\n  {role}:\n    url: {}\n", server.url()),
        );
        let peer_text = support::get(peer.address, "/metrics", &[]).text();
        let our_text = ours.get("/metrics", &[]).text();
        assert_eq!(
            value(&peer_text, "redis_up"),
            Some(1.0),
            "peer cannot reach the {role}"
        );
        let theirs = families(&peer_text);
        let mine = families(&our_text);
        let (missing, mismatched) = compare_with_peer(
            &theirs,
            &mine,
            PEER_ONLY,
            |name, peer, ours| {
                peer == ours
                    || peer == "gauge" && ours == "counter" && COUNTERS_NOT_GAUGES.contains(&name)
            },
            NEWER_UPSTREAM_LABELS,
        );
        assert!(
            missing.is_empty(),
            "{role}: families redis_exporter has and we do not:\n{}",
            missing.join("\n")
        );
        assert!(mismatched.is_empty(), "{role}:\n{}", mismatched.join("\n"));
        // The mode under redis_exporter's label name, whether the server calls the field
        // `redis_mode` (Redis) or `server_mode` (Valkey 8).
        let mode = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("redis_instance_info{"))
                .map(|l| l.contains("redis_mode=\"standalone\""))
        };
        assert_eq!(mode(&our_text), Some(true), "{role}: our redis_mode");
        let peer_reads_it = server.server() == Server::Redis;
        assert_eq!(
            mode(&peer_text),
            Some(peer_reads_it),
            "{role}: redis_exporter 1.45's redis_mode"
        );
    }
}

/// Next to redis_exporter, ours reads one client fewer: both count their own connection, and the
/// peer also counts ours, which stays open between scrapes, while the peer's connection lives only
/// for its scrape and is gone when we look. Alone on the server, each reads the same.
#[test]
fn connected_clients_differs_from_redis_exporter_only_by_our_kept_connection() {
    let server = redis_server::Redis::start(redis_server::Opts::default());
    let dir = tempfile::tempdir().unwrap();
    let ours = exporter_with(
        dir.path(),
        &format!("redis:\n  db:\n    url: {}\n", server.url()),
    );
    let peer = Peer::redis(&server.url()).unwrap_or_else(|| {
        panic!(
            "{} not found: install the Debian package prometheus-redis-exporter (apt-get install prometheus-redis-exporter), or run scripts/test, which does",
            support::REDIS_EXPORTER
        )
    });
    let our_clients = || {
        let text = ours.get("/metrics", &[]).text();
        value(&text, "redis_connected_clients{target=\"db\"}").expect("our connected_clients")
    };
    let peer_clients = || {
        let text = support::get(peer.address, "/metrics", &[]).text();
        value(&text, "redis_connected_clients").expect("the peer's connected_clients")
    };
    // The server lists a client until it has processed the close: wait for `count` (redis-cli's own
    // connection included).
    let wait_for = |count: f64| {
        let start = std::time::Instant::now();
        while server.info_number("clients", "connected_clients") != count {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the server still lists {} clients",
                server.info_number("clients", "connected_clients")
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };

    // Ours: only its own connection (kept from here on).
    assert_eq!(our_clients(), 1.0);
    // The peer: its own connection and ours.
    assert_eq!(peer_clients(), 2.0);
    // Ours again, once the server has seen the peer's connection close: only its own.
    wait_for(2.0);
    assert_eq!(our_clients(), 1.0);
    // Ours stopped: the peer alone counts only itself, as ours alone did.
    assert!(ours.terminate().success());
    wait_for(1.0);
    assert_eq!(peer_clients(), 1.0);
}
