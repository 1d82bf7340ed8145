//! What the built binary logs about each target's collections (issue 14): at `--log.level debug` one
//! line per collection of each target with its name, kind, duration, outcome and error class; at
//! `trace` the timing of each part of a collection as well; at `info` none of those, as before. The
//! status page's last error says the true cause. Targets up and down, one of each with a password,
//! against a real MariaDB and a real redis-server; no password in any line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use fanout_testkit::exporter::{Exporter, write};
use fanout_testkit::mariadb::{self, EXPORTER_PASSWORD, Mariadb};
use fanout_testkit::redis::{self as redis_server, Redis};

use super::hostile::{scrape, start};

const REDIS_PASSWORD: &str = "redis-Canary-d14g";

/// The fields of a logfmt line, unquoted.
fn fields(line: &str) -> BTreeMap<String, String> {
    // logfmt: `k=v` pairs separated by spaces, the value quoted (with `\"` inside) when it needs it.
    let mut out = BTreeMap::new();
    let mut rest = line.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_owned();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut end = 0;
            let bytes = quoted.as_bytes();
            while end < bytes.len()
                && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\'))
            {
                end += 1;
            }
            (
                quoted[..end].replace("\\\"", "\""),
                quoted.get(end + 1..).unwrap_or(""),
            )
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = tail.trim_start();
    }
    out
}

/// The `msg="target collected"` lines of `log`, by target name.
fn collected(log: &[String]) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut by_target: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in log {
        let f = fields(line);
        if f.get("msg").map(String::as_str) == Some("target collected") {
            by_target
                .entry(f.get("target_name").cloned().unwrap_or_default())
                .or_default()
                .push(f);
        }
    }
    by_target
}

fn assert_no_password(what: &str, log: &[String]) {
    for line in log {
        for secret in [EXPORTER_PASSWORD, REDIS_PASSWORD] {
            assert!(!line.contains(secret), "{what}: a password in: {line}");
        }
    }
}

/// Wait until every target has a debug line (the collection logs as it finishes, just before the
/// scrape's answer is written).
fn wait_for_lines(exporter: &Exporter, targets: &[&str]) -> Vec<String> {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = exporter.log();
        let seen = collected(&log);
        if targets.iter().all(|t| seen.contains_key(*t)) || std::time::Instant::now() > until {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn debug_logs_one_line_per_collection_with_its_outcome_and_info_logs_none() {
    let (db, cache) = std::thread::scope(|s| {
        let db = s.spawn(|| {
            let db = Mariadb::start(mariadb::Opts::default());
            db.create_users();
            db
        });
        let cache = s.spawn(|| {
            Redis::start(redis_server::Opts {
                password: Some(REDIS_PASSWORD.into()),
                ..Default::default()
            })
        });
        (db.join().unwrap(), cache.join().unwrap())
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", EXPORTER_PASSWORD);
    let yaml = format!(
        "mysql:
  db:
    address: 127.0.0.1:{db_port}
    user: exporter
    password_file: mysql.pw
  wrong_port:
    address: 127.0.0.1:{redis_port}
    user: exporter
    password_file: mysql.pw
redis:
  cache:
    url: redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_port}
  gone:
    url: redis://127.0.0.1:{closed_port}
",
        db_port = db.port(),
        redis_port = cache.port(),
    );
    let targets = ["db", "wrong_port", "cache", "gone"];

    // debug: one line per collection of each target, up or down, with the true class.
    let exporter = start(dir.path(), &yaml, &["--log.level=debug"]);
    let (text, _) = scrape(&exporter, Duration::from_secs(5));
    assert!(text.contains("mysql_up{target=\"db\"} 1"), "{text}");
    let log = wait_for_lines(&exporter, &targets);
    let lines = collected(&log);
    let expected = [
        ("db", "mysql", "up", "none", ""),
        ("cache", "redis", "up", "none", ""),
        (
            "wrong_port",
            "mysql",
            "down",
            "protocol",
            "does not speak MySQL (it looks like Redis)",
        ),
        (
            "gone",
            "redis",
            "down",
            "refused",
            "refused the connection: nothing listens there",
        ),
    ];
    for (target, kind, outcome, class, error) in expected {
        let got = lines
            .get(target)
            .unwrap_or_else(|| panic!("no debug line for {target}:\n{}", log.join("\n")));
        assert_eq!(got.len(), 1, "one collection, one line: {got:?}");
        let line = &got[0];
        assert_eq!(line["level"], "debug", "{line:?}");
        assert_eq!(line["collector"], kind, "{line:?}");
        assert_eq!(line["outcome"], outcome, "{line:?}");
        assert_eq!(line["class"], class, "{line:?}");
        assert!(line["error"].contains(error), "{line:?}");
        let seconds: f64 = line["duration_seconds"].parse().unwrap();
        assert!((0.0..5.0).contains(&seconds), "{line:?}");
    }
    // The page shows the same message as the last error.
    let page = exporter.get("/", &[]).text();
    assert!(
        page.contains("does not speak MySQL (it looks like Redis)"),
        "{page}"
    );
    assert_no_password("debug", &log);
    drop(exporter);

    // trace: the parts of each collection too.
    let exporter = start(dir.path(), &yaml, &["--log.level=trace"]);
    scrape(&exporter, Duration::from_secs(5));
    let log = wait_for_lines(&exporter, &targets);
    let steps: Vec<BTreeMap<String, String>> = log
        .iter()
        .map(|l| fields(l))
        .filter(|f| f.get("level").map(String::as_str) == Some("trace"))
        .collect();
    let mysql_step = steps
        .iter()
        .find(|f| {
            f.get("msg").map(String::as_str) == Some("mysql step finished")
                && f.get("collector").map(String::as_str) == Some("collect.global_status")
        })
        .unwrap_or_else(|| panic!("no trace of collect.global_status:\n{}", log.join("\n")));
    assert_eq!(mysql_step["endpoint"], format!("127.0.0.1:{}", db.port()));
    assert!(mysql_step["duration_seconds"].parse::<f64>().is_ok());
    assert!(
        steps.iter().any(|f| {
            f.get("msg").map(String::as_str) == Some("redis step finished")
                && f.get("step").map(String::as_str) == Some("core")
        }),
        "no trace of the redis core round trip:\n{}",
        log.join("\n")
    );
    assert_no_password("trace", &log);
    drop(exporter);

    // info: as before, no per-collection lines; the down targets' warnings still come.
    let exporter = start(dir.path(), &yaml, &["--log.level=info"]);
    scrape(&exporter, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let log = exporter.log();
    assert!(collected(&log).is_empty(), "{}", log.join("\n"));
    assert!(
        log.iter()
            .all(|l| !l.contains("level=debug") && !l.contains("level=trace")),
        "{}",
        log.join("\n")
    );
    let warned: Vec<BTreeMap<String, String>> = log
        .iter()
        .map(|l| fields(l))
        .filter(|f| f.get("msg").map(String::as_str) == Some("target scrape failed"))
        .collect();
    let classes: BTreeMap<&str, &str> = warned
        .iter()
        .map(|f| (f["target_name"].as_str(), f["class"].as_str()))
        .collect();
    assert_eq!(
        classes,
        BTreeMap::from([("gone", "refused"), ("wrong_port", "protocol")]),
        "{}",
        log.join("\n")
    );
    assert_no_password("info", &log);
}
