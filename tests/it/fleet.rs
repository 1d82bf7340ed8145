//! The fleet engine through the built binary, against real servers: modules probing addresses that
//! service discovery names, the allow-list refusing before any connection, pooled connections closed
//! when idle, reloads (HTTP and SIGHUP) that keep unchanged targets' connections, and concurrent
//! scrapes sharing one collection, counted on the servers themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::mariadb;
use fanout_testkit::redis as redis_server;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::{Exporter, series, value, write};

fn start(dir: &Path, yaml: &str) -> Exporter {
    let config = write(dir, "config.yaml", yaml);
    Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", config.display()),
        // Above the 48 concurrent scrapes of the coalescing tests: they measure sharing, not the
        // limit (which has its own test in `web`).
        "--web.max-requests=64",
    ])
}

/// The exporter's connections to `redis` (the redis-cli asking is left out), as `db=N` fields and
/// client ids.
fn redis_clients(redis: &redis_server::Redis) -> Vec<(String, String)> {
    redis
        .cli(&["CLIENT", "LIST"])
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("db"), field("id"))
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP server that counts requests and answers each after `delay`: a target whose collection
/// is slow enough for concurrent scrapes to overlap, with the count kept on the server side.
fn slow_http(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    http_server(
        delay,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into(),
    )
}

/// An HTTP server that answers every request with `response` after `delay`, counting requests.
fn http_server(delay: Duration, response: String) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = Arc::clone(&seen);
            let response = response.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(delay);
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    (address, count)
}

#[test]
fn a_module_probes_addresses_of_each_kind_with_the_configured_names() {
    let pair = mariadb::shared_pair();
    let redis = redis_server::Redis::start(redis_server::Opts::default());
    let (http, _) = slow_http(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", mariadb::EXPORTER_PASSWORD);
    let exporter = start(
        dir.path(),
        &format!(
            "modules:\n\
             \x20 db:\n    mysql:\n      user: exporter\n      password_file: mysql.pw\n      collect: [global_status]\n    allowed_targets: [127.0.0.1/32]\n\
             \x20 cache:\n    redis: {{labels: {{tier: cache}}}}\n    allowed_targets: [127.0.0.1/32]\n\
             \x20 web:\n    http:\n      valid_status_codes: [200]\n    allowed_targets: ['http://127.0.0.1:{}/']\n",
            http.port()
        ),
    );
    let probe = |target: &str, module: &str| {
        let response = exporter.get(&format!("/probe?target={target}&module={module}"), &[]);
        assert_eq!(response.status, 200, "{}", response.text());
        response.text()
    };
    let mysql = probe(&format!("127.0.0.1:{}", pair.primary.port()), "db");
    assert_eq!(value(&mysql, "mysql_up"), Some(1.0), "{mysql}");
    assert!(
        value(&mysql, "mysql_global_status_questions").unwrap() > 0.0,
        "{mysql}"
    );
    let redis_text = probe(&format!("redis://127.0.0.1:{}", redis.port()), "cache");
    assert_eq!(
        value(&redis_text, "redis_up{tier=\"cache\"}"),
        Some(1.0),
        "{redis_text}"
    );
    assert!(
        series(&redis_text)
            .iter()
            .any(|s| s.starts_with("redis_connected_clients"))
    );
    let web = probe(&format!("http://127.0.0.1:{}/health", http.port()), "web");
    assert_eq!(value(&web, "probe_success"), Some(1.0), "{web}");
    assert_eq!(value(&web, "probe_http_status_code"), Some(200.0), "{web}");
    // As with blackbox: Prometheus sets `instance`; no `target` label.
    for text in [&mysql, &redis_text, &web] {
        assert!(!text.contains("target=\""), "{text}");
        assert!(
            value(text, "fanout_exporter_scrape_success{collector=\"mysql\"}")
                .or(value(
                    text,
                    "fanout_exporter_scrape_success{collector=\"redis\",tier=\"cache\"}"
                ))
                .or(value(
                    text,
                    "fanout_exporter_scrape_success{collector=\"http\"}"
                ))
                == Some(1.0),
            "{text}"
        );
    }
    // The status page lists the live dynamic targets under their module, credentials left out.
    let page = exporter.get("/", &[]).text();
    assert!(page.contains("id=\"module-db\""), "{page}");
    assert!(page.contains("1 of at most 1000 targets live"), "{page}");
    assert!(
        page.contains(&format!("127.0.0.1:{} as exporter", pair.primary.port())),
        "{page}"
    );
    assert!(!page.contains(mariadb::EXPORTER_PASSWORD), "{page}");
    let metrics = exporter.get("/metrics", &[]).text();
    assert_eq!(
        value(&metrics, "fanout_exporter_dynamic_targets"),
        Some(3.0),
        "{metrics}"
    );
}

#[test]
fn refused_addresses_get_403_and_are_never_connected_to() {
    let dir = tempfile::tempdir().unwrap();
    // A listener the allow-list does not cover: it must see no connection attempt.
    let bait = TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let port = bait.local_addr().unwrap().port();
    // An allowed address that redirects to a refused one: the redirect is not followed.
    let (redirector, _) = http_server(
        Duration::ZERO,
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    let exporter = start(
        dir.path(),
        &format!(
            "modules:\n\
         \x20 hop:\n    http: {{}}\n    allowed_targets: ['http://127.0.0.1:{}/']\n\
         \x20 db:\n    mysql: {{user: exporter, password: s3cr3t-canary}}\n    allowed_targets: [10.0.0.0/8]\n\
         \x20 cache:\n    redis: {{password: s3cr3t-canary}}\n    allowed_targets: ['*.redis.internal']\n\
         \x20   max_targets: 1\n\
         \x20 web:\n    http: {{}}\n    allowed_targets: ['https://status.example.com/']\n",
            redirector.port()
        ),
    );
    for (target, module) in [
        (format!("127.0.0.1:{port}"), "db"),
        (format!("redis://127.0.0.1:{port}"), "cache"),
        (format!("redis://localhost:{port}"), "cache"),
        (format!("http://127.0.0.1:{port}/"), "web"),
        // A prefix match on text would let this one through.
        (
            format!("https://status.example.com.127.0.0.1.nip.io:{port}/"),
            "web",
        ),
    ] {
        let response = exporter.get(&format!("/probe?target={target}&module={module}"), &[]);
        assert_eq!(response.status, 403, "{target}: {}", response.text());
        let text = response.text();
        assert!(
            text.contains("is not in the allowed_targets of module"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t-canary"), "{text}");
    }
    let response = exporter.get(
        &format!(
            "/probe?target=http://127.0.0.1:{}/&module=hop",
            redirector.port()
        ),
        &[],
    );
    assert_eq!(response.status, 200);
    assert!(
        exporter
            .get("/", &[])
            .text()
            .contains("not in the module&#39;s allowed_targets"),
        "the status page says why"
    );
    let text = response.text();
    assert_eq!(value(&text, "probe_success"), Some(0.0), "{text}");
    assert_eq!(
        value(&text, "probe_http_status_code"),
        Some(302.0),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(200));
    match bait.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the refused address was connected to: {other:?}"),
    }
    // Other refusals say what is wrong with a status of their own.
    let status = |path: &str| {
        let r = exporter.get(path, &[]);
        (r.status, r.text())
    };
    let (code, text) = status("/probe?target=x&module=nope");
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("unknown module \"nope\": the configuration has modules cache, db, hop, web"),
        "{text}"
    );
    let (code, text) = status("/probe?target=mysql://10.0.0.1&module=db");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("not a mysql address"), "{text}");
    let (code, text) = status("/probe?target=nope");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("add &module=<name>"), "{text}");
    // max_targets: the second live address of `cache` is refused until the first goes idle.
    let (code, text) = status("/probe?target=redis://a.redis.internal:1&module=cache");
    assert_eq!(code, 200, "{text}");
    assert_eq!(value(&text, "redis_up"), Some(0.0), "{text}");
    let (code, text) = status("/probe?target=redis://b.redis.internal:1&module=cache");
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("max_targets"), "{text}");
    let log = exporter.log().join("\n");
    assert!(!log.contains("s3cr3t-canary"), "{log}");
}

#[test]
fn dynamic_targets_keep_their_connection_and_close_it_when_idle() {
    let redis = redis_server::Redis::start(redis_server::Opts::default());
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        dir.path(),
        "modules:\n  cache:\n    redis: {}\n    allowed_targets: [127.0.0.1]\n    idle_timeout: 2s\n",
    );
    let path = format!(
        "/probe?target=redis://127.0.0.1:{}/3&module=cache",
        redis.port()
    );
    for _ in 0..3 {
        assert_eq!(exporter.get(&path, &[]).status, 200);
    }
    // One pooled connection for three scrapes.
    let clients = redis_clients(&redis);
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(clients[0].0, "3");
    wait_until(
        "the idle connection to close",
        Duration::from_secs(10),
        || redis_clients(&redis).is_empty(),
    );
    // The address comes back: a new connection.
    assert_eq!(exporter.get(&path, &[]).status, 200);
    assert_eq!(redis_clients(&redis).len(), 1);
}

#[test]
fn reload_adds_changes_and_removes_targets_and_keeps_unchanged_connections() {
    let redis = redis_server::Redis::start(redis_server::Opts::default());
    let dir = tempfile::tempdir().unwrap();
    let url = |db: u8| format!("redis://127.0.0.1:{}/{db}", redis.port());
    let targets = |entries: &[(&str, u8)]| {
        let mut yaml = String::from("redis:\n");
        for (name, db) in entries {
            yaml.push_str(&format!("  {name}:\n    url: {}\n", url(*db)));
        }
        yaml
    };
    let mut exporter = start(
        dir.path(),
        &targets(&[("kept", 1), ("changed", 2), ("removed", 3)]),
    );
    let scrape = |exporter: &Exporter| {
        let r = exporter.get("/metrics", &[]);
        assert_eq!(r.status, 200);
        r.text()
    };
    let text = scrape(&exporter);
    for name in ["kept", "changed", "removed"] {
        assert_eq!(
            value(&text, &format!("redis_up{{target=\"{name}\"}}")),
            Some(1.0),
            "{text}"
        );
    }
    let before = redis_clients(&redis);
    assert_eq!(before.len(), 3, "{before:?}");
    let id_of = |clients: &[(String, String)], db: &str| {
        clients
            .iter()
            .find(|(d, _)| d == db)
            .map(|(_, id)| id.clone())
    };
    let kept_id = id_of(&before, "1").expect("kept's connection");
    assert_eq!(
        value(&text, "fanout_exporter_config_last_reload_successful"),
        Some(1.0)
    );
    let started = value(
        &text,
        "fanout_exporter_config_last_reload_success_timestamp_seconds",
    )
    .expect("timestamp");

    // GET is not how a reload is asked for.
    assert_eq!(exporter.request("GET", "/-/reload").status, 405);

    // `changed` moves to db 4, `removed` goes, `added` comes.
    write(
        dir.path(),
        "config.yaml",
        &targets(&[("kept", 1), ("changed", 4), ("added", 5)]),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let response = exporter.request("POST", "/-/reload");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .text()
            .contains("3 targets (1 kept with their connections)"),
        "{}",
        response.text()
    );
    let text = scrape(&exporter);
    assert!(!text.contains("target=\"removed\""), "{text}");
    for name in ["kept", "changed", "added"] {
        assert_eq!(
            value(&text, &format!("redis_up{{target=\"{name}\"}}")),
            Some(1.0),
            "{text}"
        );
    }
    assert!(
        value(
            &text,
            "fanout_exporter_config_last_reload_success_timestamp_seconds"
        )
        .unwrap()
            > started
    );
    wait_until(
        "the retired connections to close",
        Duration::from_secs(10),
        || {
            let dbs: Vec<String> = redis_clients(&redis)
                .into_iter()
                .map(|(db, _)| db)
                .collect();
            let mut dbs = dbs;
            dbs.sort();
            dbs == ["1", "4", "5"]
        },
    );
    assert_eq!(
        id_of(&redis_clients(&redis), "1"),
        Some(kept_id.clone()),
        "kept its connection"
    );

    // A bad file: 500 naming file, key and line; the running configuration stays.
    write(
        dir.path(),
        "config.yaml",
        &format!("{}    urll: x\n", targets(&[("kept", 1)])),
    );
    let response = exporter.request("PUT", "/-/reload");
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(
        response
            .text()
            .contains("config.yaml:4: redis.kept: unknown field `urll`"),
        "{}",
        response.text()
    );
    let text = scrape(&exporter);
    assert_eq!(
        value(&text, "fanout_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "redis_up{target=\"added\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        exporter
            .log()
            .join("\n")
            .contains("reload failed; keeping the running configuration")
    );

    // SIGHUP reloads too, and does not stop the process.
    write(
        dir.path(),
        "config.yaml",
        &targets(&[("kept", 1), ("hup", 6)]),
    );
    exporter.send("-HUP");
    wait_until("the SIGHUP reload", Duration::from_secs(10), || {
        scrape(&exporter).contains("redis_up{target=\"hup\"} 1")
    });
    assert!(exporter.running(), "SIGHUP must not stop the exporter");
    let text = scrape(&exporter);
    assert_eq!(
        value(&text, "fanout_exporter_config_last_reload_successful"),
        Some(1.0)
    );
    assert!(!text.contains("target=\"added\""), "{text}");
    assert_eq!(
        id_of(&redis_clients(&redis), "1"),
        Some(kept_id),
        "kept its connection"
    );
}

/// `n` scrapes of `path` released at once; returns each one's wall time.
fn concurrently(address: SocketAddr, path: &str, n: usize) -> Vec<Duration> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let path = path.to_owned();
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let response = support::get(address, &path, &[]);
                assert_eq!(response.status, 200);
                (start.elapsed(), response.text())
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| {
            let (took, text) = t.join().unwrap();
            assert!(text.contains("probe_success"), "{text}");
            took
        })
        .collect()
}

#[test]
fn concurrent_scrapes_of_a_target_share_one_collection() {
    let (http, requests) = slow_http(Duration::from_millis(800));
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        dir.path(),
        &format!(
            "http:\n  slow:\n    url: http://127.0.0.1:{}/\n  other:\n    url: http://127.0.0.1:{}/other\n",
            http.port(),
            http.port()
        ),
    );
    // 48 scrapers at once: each target is collected once.
    let took = concurrently(exporter.address, "/metrics", 48);
    let probes = concurrently(exporter.address, "/probe?target=slow", 1);
    let collections = requests.load(Ordering::SeqCst);
    // Two targets, one collection each for the 48 (97 requests without sharing); the later probe
    // starts a fresh one. One straggler that missed the window is tolerated.
    assert!(
        collections <= 4,
        "{collections} requests for 49 scrapes of 2 targets"
    );
    eprintln!(
        "48 concurrent /metrics: {collections} target requests; slowest {:?}; probe {:?}",
        took.iter().max(),
        probes
    );
    let joined = std::thread::scope(|s| {
        let before = requests.load(Ordering::SeqCst);
        let a = s.spawn(|| concurrently(exporter.address, "/probe?target=slow", 8));
        std::thread::sleep(Duration::from_millis(200));
        let b = s.spawn(|| concurrently(exporter.address, "/metrics", 8));
        a.join().unwrap();
        b.join().unwrap();
        requests.load(Ordering::SeqCst) - before
    });
    // `slow` once for all 16 (the /metrics scrapes joined the probes' collection), `other` once.
    assert!(joined <= 3, "{joined} target requests");
}

#[test]
fn a_scrape_in_flight_finishes_on_the_configuration_it_started_with() {
    let (http, requests) = slow_http(Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        dir.path(),
        &format!(
            "http:\n  slow:\n    url: http://127.0.0.1:{}/\n",
            http.port()
        ),
    );
    let address = exporter.address;
    let scrape = std::thread::spawn(move || support::get(address, "/metrics", &[]).text());
    wait_until(
        "the scrape to reach the target",
        Duration::from_secs(10),
        || requests.load(Ordering::SeqCst) == 1,
    );
    write(dir.path(), "config.yaml", "http: {}\n");
    let response = exporter.request("POST", "/-/reload");
    assert_eq!(response.status, 200, "{}", response.text());
    // The reload did not wait for the scrape, and the scrape kept its target.
    assert!(!scrape.is_finished(), "the reload waited for the scrape");
    let text = scrape.join().unwrap();
    assert_eq!(
        value(&text, "probe_success{target=\"slow\"}"),
        Some(1.0),
        "{text}"
    );
    let after = exporter.get("/metrics", &[]).text();
    assert!(!after.contains("target=\"slow\""), "{after}");
}
