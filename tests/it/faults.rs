//! Database faults through the built binary, against real MariaDB and redis-server processes: killed
//! in the middle of a scrape, killed between scrapes and restarted, frozen with SIGSTOP and thawed. The
//! target's up gauge follows (0, then 1 again) without restarting the exporter, a frozen server costs
//! the scrape no more than its deadline and the other targets nothing, and a thousand scrapes with
//! such failures mixed in leave the servers with no more connections from the exporter than its pools
//! allow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::hostile::{Hostile, Script, Then, Wait};
use fanout_testkit::mariadb::{self, Mariadb};
use fanout_testkit::process::signal;
use fanout_testkit::redis::Redis;

use std::time::{Duration, Instant};

use super::hostile::{MARGIN, SCRAPE_TIMEOUT, scrape, start, up};
use support::{Exporter, value, write};

/// Connections one mysql target keeps at most (`max_connections`, `MysqlSettings`' default).
const MYSQL_POOL: usize = 2;
/// Connections one redis target keeps: the one multiplexed connection of `redis::conn::Target`.
const REDIS_POOL: usize = 1;

/// A plain HTTP target that is always fine.
fn web() -> Hostile {
    Hostile::start(Script {
        wait: Wait::HttpHead,
        first: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
        then: Then::Close,
    })
}

fn mysql_target(name: &str, db: &Mariadb, extra: &str) -> String {
    format!(
        "  {name}:\n    address: 127.0.0.1:{}\n    user: exporter\n    password_file: mysql.pw\n{extra}",
        db.port()
    )
}

/// A config with mysql targets `mysql` (name, extra keys) on `db`, redis targets `redis` (name,
/// database) on `cache`, and the `web` target.
fn config(
    db: &Mariadb,
    mysql: &[(&str, &str)],
    cache: &Redis,
    redis: &[(&str, u8)],
    web: &Hostile,
) -> String {
    let mut yaml = String::from("mysql:\n");
    for (name, extra) in mysql {
        yaml.push_str(&mysql_target(name, db, extra));
    }
    yaml.push_str("redis:\n");
    for (name, database) in redis {
        yaml.push_str(&format!("  {name}:\n    url: {}/{database}\n", cache.url()));
    }
    yaml.push_str(&format!(
        "http:\n  web:\n    url: http://127.0.0.1:{}/\n",
        web.port()
    ));
    yaml
}

/// The exporter's connections as MariaDB counts them.
fn mysql_connections(db: &Mariadb) -> usize {
    db.scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'exporter'")
        .parse()
        .unwrap()
}

/// The exporter's connections as redis-server counts them (the redis-cli asking left out).
fn redis_connections(cache: &Redis) -> usize {
    cache
        .cli(&["CLIENT", "LIST"])
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .count()
}

fn started_servers() -> (Mariadb, Redis, Hostile, tempfile::TempDir) {
    let (db, cache) = fanout_testkit::mariadb_and_redis();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", mariadb::EXPORTER_PASSWORD);
    (db, cache, web(), dir)
}

/// A victim server as the sequence below needs it.
struct Victim<'a> {
    up_metric: &'a str,
    target: &'a str,
    kill: &'a mut dyn FnMut(),
    restart: &'a mut dyn FnMut(),
    pid: &'a dyn Fn() -> u32,
}

/// Scrape once: the victim's up gauge must be `victim_up`, every one of `others` up, and the answer
/// within the scrape's deadline (plus the rendering margin).
fn check(
    exporter: &Exporter,
    victim: &Victim<'_>,
    victim_up: f64,
    others: &[(&str, &str)],
    step: &str,
) {
    let (text, took) = scrape(exporter, SCRAPE_TIMEOUT);
    eprintln!("{}: {step}: scrape answered in {took:?}", victim.target);
    assert!(
        took < SCRAPE_TIMEOUT + MARGIN,
        "{step}: the scrape took {took:?}"
    );
    assert_eq!(
        up(&text, victim.up_metric, victim.target),
        victim_up,
        "{step}: {} of {}; log:\n{}",
        victim.up_metric,
        victim.target,
        exporter.log().join("\n")
    );
    for (metric, target) in others {
        assert_eq!(up(&text, metric, target), 1.0, "{step}: {target} is down");
    }
}

/// Up; killed: down; restarted: up; SIGSTOPped: down within the deadline; SIGCONT: up. The same
/// exporter process throughout.
fn down_and_back(exporter: &mut Exporter, victim: &mut Victim<'_>, others: &[(&str, &str)]) {
    let pid = exporter.pid();
    check(exporter, victim, 1.0, others, "healthy");
    (victim.kill)();
    check(exporter, victim, 0.0, others, "killed");
    check(exporter, victim, 0.0, others, "still dead");
    (victim.restart)();
    check(exporter, victim, 1.0, others, "restarted");
    let server = (victim.pid)();
    signal(server, "-STOP");
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check(exporter, victim, 0.0, others, "SIGSTOPped");
        check(exporter, victim, 0.0, others, "still SIGSTOPped");
    }));
    // Thawed before any failure is raised, so the server can be shut down normally.
    signal(server, "-CONT");
    if let Err(panic) = stopped {
        std::panic::resume_unwind(panic);
    }
    check(exporter, victim, 1.0, others, "SIGCONTinued");
    assert!(exporter.running());
    assert_eq!(exporter.pid(), pid, "the same exporter throughout");
}

#[test]
fn mariadb_killed_restarted_and_sigstopped_goes_down_and_back_up_alone() {
    let (mut db, cache, web, dir) = started_servers();
    let yaml = config(&db, &[("db", "")], &cache, &[("cache", 0)], &web);
    let mut exporter = start(dir.path(), &yaml, &[]);
    let db = std::cell::RefCell::new(&mut db);
    down_and_back(
        &mut exporter,
        &mut Victim {
            up_metric: "mysql_up",
            target: "db",
            kill: &mut || db.borrow_mut().kill_server(),
            restart: &mut || db.borrow_mut().restart(),
            pid: &|| db.borrow().pid().unwrap(),
        },
        &[("redis_up", "cache"), ("probe_success", "web")],
    );
}

#[test]
fn redis_killed_restarted_and_sigstopped_goes_down_and_back_up_alone() {
    let (db, mut cache, web, dir) = started_servers();
    let yaml = config(&db, &[("db", "")], &cache, &[("cache", 0)], &web);
    let mut exporter = start(dir.path(), &yaml, &[]);
    let cache = std::cell::RefCell::new(&mut cache);
    down_and_back(
        &mut exporter,
        &mut Victim {
            up_metric: "redis_up",
            target: "cache",
            kill: &mut || cache.borrow_mut().kill_server(),
            restart: &mut || cache.borrow_mut().restart(),
            pid: &|| cache.borrow().pid().unwrap(),
        },
        &[("mysql_up", "db"), ("probe_success", "web")],
    );
}

/// Wait until `done`, polling; fails after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scrape in flight when its server dies ends at once (the connection breaks), not at the
/// deadline, and the other targets in it are unaffected. MariaDB is held mid-scrape by a custom
/// query that sleeps; Redis by `DEBUG SLEEP` from another client.
#[test]
fn a_server_killed_mid_scrape_ends_that_scrape_early_and_only_its_target_fails() {
    let (mut db, mut cache, web, dir) = started_servers();
    let sleepy = "    queries:\n      - name: sleep\n        query: SELECT SLEEP(8) AS slept\n        metric: fault_slept\n        type: gauge\n        values: [slept]\n";
    let yaml = config(&db, &[("db", sleepy)], &cache, &[("cache", 0)], &web);
    let exporter = start(dir.path(), &yaml, &[]);
    let address = exporter.address;
    // The deadline (9.5 s) is past the sleep (8 s): only the kill can end the scrape early.
    let in_flight = move || {
        std::thread::spawn(move || {
            let started = Instant::now();
            let r = support::get(
                address,
                "/metrics",
                &[("X-Prometheus-Scrape-Timeout-Seconds", "10")],
            );
            (r.status, r.text(), started.elapsed())
        })
    };
    let scrape = in_flight();
    wait_until("the sleeping query", Duration::from_secs(10), || {
        db.scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'exporter' AND INFO LIKE '%SLEEP(8)%'",
        ) == "1"
    });
    db.kill_server();
    let (status, text, took) = scrape.join().unwrap();
    eprintln!("MariaDB killed mid-scrape: the scrape answered after {took:?}");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        value(
            &text,
            "fanout_exporter_scrape_success{collector=\"mysql\",target=\"db\"}"
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(up(&text, "redis_up", "cache"), 1.0);
    assert_eq!(up(&text, "probe_success", "web"), 1.0);
    // Both servers down in one scrape now: redis is held by DEBUG SLEEP and killed mid-scrape.
    let sleeping = cache.cli_background(&["DEBUG", "SLEEP", "8"]);
    // The server answers no one while it sleeps, so there is nothing to poll: give the command time
    // to arrive, then the scrape time to send its own and wait.
    std::thread::sleep(Duration::from_millis(300));
    let scrape = in_flight();
    std::thread::sleep(Duration::from_millis(500));
    cache.kill_server();
    drop(sleeping);
    let (status, text, took) = scrape.join().unwrap();
    eprintln!("redis-server killed mid-scrape: the scrape answered after {took:?}");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(up(&text, "redis_up", "cache"), 0.0, "{text}");
    assert_eq!(up(&text, "mysql_up", "db"), 0.0, "{text}");
    assert_eq!(up(&text, "probe_success", "web"), 1.0);
}

#[test]
fn a_thousand_scrapes_with_failures_mixed_in_leak_no_connections() {
    let (mut db, mut cache, web, dir) = started_servers();
    let mysql_targets = [("db_a", ""), ("db_b", "")];
    let redis_targets = [("cache_a", 0), ("cache_b", 1)];
    let yaml = config(&db, &mysql_targets, &cache, &redis_targets, &web);
    let exporter = start(dir.path(), &yaml, &[]);
    let mysql_bound = mysql_targets.len() * MYSQL_POOL;
    let redis_bound = redis_targets.len() * REDIS_POOL;
    let healthy = Duration::from_secs(5);
    // Header 1 s: a 0.5 s budget for scrapes of frozen servers, which all end at their deadline
    // (a ping or a pipeline left unanswered, a connection that never got its handshake).
    let frozen = Duration::from_secs(1);
    let started = Instant::now();
    let (mut failed, mut max_mysql, mut max_redis) = (0, 0, 0);
    let mut checkpoints = Vec::new();
    let mut stopped: Option<(u32, u32)> = None;
    for i in 0..1000 {
        match i {
            150 | 600 => {
                db.kill_server();
                cache.kill_server();
            }
            170 | 620 => {
                db.restart();
                cache.restart();
            }
            400 | 800 => {
                let pids = (db.pid().unwrap(), cache.pid().unwrap());
                signal(pids.0, "-STOP");
                signal(pids.1, "-STOP");
                stopped = Some(pids);
            }
            410 | 810 => {
                let (a, b) = stopped.take().unwrap();
                signal(a, "-CONT");
                signal(b, "-CONT");
            }
            _ => {}
        }
        let timeout = if stopped.is_some() { frozen } else { healthy };
        let (text, took) = scrape(&exporter, timeout);
        assert!(
            took < timeout + MARGIN,
            "scrape {i} took {took:?} for a {timeout:?} header"
        );
        let all_up = mysql_targets
            .iter()
            .all(|(t, _)| up(&text, "mysql_up", t) == 1.0)
            && redis_targets
                .iter()
                .all(|(t, _)| up(&text, "redis_up", t) == 1.0);
        if !all_up {
            failed += 1;
        }
        // Checkpoints in healthy stretches, long after the last failure: connections the servers
        // saw abandoned (while frozen) have been cleaned up by then.
        if [140, 390, 590, 790, 999].contains(&i) {
            let (m, r) = (mysql_connections(&db), redis_connections(&cache));
            max_mysql = max_mysql.max(m);
            max_redis = max_redis.max(r);
            checkpoints.push(format!("scrape {i}: MariaDB {m}, Redis {r}"));
            assert!(
                m <= mysql_bound,
                "scrape {i}: {m} MariaDB connections from the exporter, at most {mysql_bound} allowed"
            );
            assert!(
                r <= redis_bound,
                "scrape {i}: {r} Redis connections from the exporter, at most {redis_bound} allowed"
            );
            assert!(
                m > 0 && r > 0,
                "scrape {i}: the pools keep their connections"
            );
        }
    }
    eprintln!(
        "1000 scrapes in {:?}, {failed} with the database targets down; most connections from the exporter {max_mysql} MariaDB (bound {mysql_bound}), \
         {max_redis} Redis (bound {redis_bound}): {}",
        started.elapsed(),
        checkpoints.join("; ")
    );
    // The failures were real: the killed and frozen stretches at least.
    assert!(failed >= 60, "only {failed} scrapes saw a failure");
    let log = exporter.log().join("\n");
    assert!(!log.contains("panicked"), "{log}");
}
