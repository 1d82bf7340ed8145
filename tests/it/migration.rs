//! Coming from the peers, against the built binary and real servers: mysqld_exporter's
//! `DATA_SOURCE_NAME` and `--config.my-cnf`, redis_exporter's `REDIS_ADDR`/`REDIS_PASSWORD`, each a
//! one-target configuration when no file is given; their flags refused with what to write instead;
//! their variables reported as unused beside a file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use fanout_testkit::exporter::{Exporter, bin, value, write};
use fanout_testkit::mariadb;
use fanout_testkit::redis::{self as redis_server, Redis};

/// The process environment plus `extra`, as a container that set the peer's variables would run.
fn environment(extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !fanout_exporter::peers::VARIABLES.contains(&k.as_str()))
        .collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

#[test]
fn data_source_name_and_redis_addr_without_a_file_are_one_target_each() {
    let (db, cache) = (
        mariadb::Mariadb::start(mariadb::Opts::default()),
        Redis::start(redis_server::Opts {
            password: Some("redis pw#1".to_owned()),
            ..Default::default()
        }),
    );
    db.create_users();
    let env = environment(&[
        (
            "DATA_SOURCE_NAME",
            format!(
                "exporter:{}@tcp(127.0.0.1:{})/",
                mariadb::EXPORTER_PASSWORD,
                db.port()
            ),
        ),
        ("REDIS_ADDR", format!("127.0.0.1:{}", cache.port())),
        ("REDIS_PASSWORD", "redis pw#1".to_owned()),
    ]);
    let exporter = Exporter::start_with_env(&["--web.listen-address=127.0.0.1:0"], &env);
    let text = exporter.get("/metrics", &[]).text();
    assert_eq!(
        value(&text, "mysql_up{target=\"mysql\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "redis_up{target=\"redis\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("probe_success"),
        "no self-probe beside them: {text}"
    );
    let log = exporter.log().join("\n");
    assert!(
        log.contains("configuration built from another exporter's settings")
            && log.contains("DATA_SOURCE_NAME")
            && log.contains("REDIS_ADDR"),
        "{log}"
    );
    for secret in [mariadb::EXPORTER_PASSWORD, "redis pw#1"] {
        assert!(!log.contains(secret), "{log}");
        assert!(!exporter.get("/", &[]).text().contains(secret));
    }
}

#[test]
fn a_my_cnf_is_one_mysql_target() {
    let db = mariadb::Mariadb::start(mariadb::Opts::default());
    let dir = tempfile::tempdir().unwrap();
    let cnf = write(
        dir.path(),
        ".my.cnf",
        &format!(
            "[client]\nuser = root\nsocket = {}\n",
            db.socket().display()
        ),
    );
    let exporter = Exporter::start_with_env(
        &[
            "--web.listen-address=127.0.0.1:0",
            &format!("--config.my-cnf={}", cnf.display()),
        ],
        &environment(&[]),
    );
    let text = exporter.get("/metrics", &[]).text();
    assert_eq!(
        value(&text, "mysql_up{target=\"mysql\"}"),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn peer_flags_are_refused_with_what_to_write_instead() {
    for (args, expected) in [
        (
            &["-redis.addr=redis://cache:6379"][..],
            "is a flag of redis_exporter",
        ),
        (&["--collect.info_schema.processlist"], "collect: ["),
        (
            &["--mysqld.address=db:3306"],
            "`address:` of a mysql target",
        ),
        (&["-web.listen-address=:9121"], "--web.listen-address"),
    ] {
        let output = Command::new(bin()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("did you mean"), "{args:?}: {stderr}");
    }
}

#[test]
fn peer_variables_beside_a_file_are_reported_unused_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "config.yml",
        "http:\n  down:\n    url: http://127.0.0.1:1/\n",
    );
    let exporter = Exporter::start_with_env(
        &[
            "--web.listen-address=127.0.0.1:0",
            &format!("--config.file={}", config.display()),
        ],
        &environment(&[("REDIS_ADDR", "cache:6379".to_owned())]),
    );
    assert!(
        exporter
            .log()
            .iter()
            .any(|l| l.contains("REDIS_ADDR") && l.contains("not used")),
        "{:?}",
        exporter.log()
    );
    let output = Command::new(bin())
        .arg("--config.check")
        .env_clear()
        .env("DATA_SOURCE_NAME", "mysql://u:dsn-canary@db/")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DATA_SOURCE_NAME is not a DSN"), "{stderr}");
    assert!(!stderr.contains("dsn-canary"), "{stderr}");
}

#[test]
fn a_blackbox_configuration_given_as_ours_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let blackbox = write(
        dir.path(),
        "blackbox.yml",
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      method: GET\n",
    );
    let output = Command::new(bin())
        .args([
            "--config.check",
            &format!("--config.file={}", blackbox.display()),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("blackbox.yml:3: modules.http_2xx")
            && stderr.contains("this is a blackbox_exporter module"),
        "{stderr}"
    );
}
