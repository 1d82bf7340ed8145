//! Scrape latency of the built exporter, with blackbox_exporter's figure beside it when the Debian
//! peer is installed. Reports figures; asserts nothing. Run with `cargo bench --bench scrape`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::mariadb;
use fanout_testkit::redis as redis_server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Exporter, Peer, free_port, get, write};

const ROUNDS: usize = 500;

/// Median, 99th percentile and mean of `ROUNDS` sequential GETs, after a warm-up.
fn measure(address: SocketAddr, path: &str) -> String {
    for _ in 0..20 {
        assert_eq!(get(address, path, &[]).status, 200, "{path}");
    }
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let response = get(address, path, &[]);
            let elapsed = start.elapsed();
            assert_eq!(response.status, 200);
            elapsed
        })
        .collect();
    times.sort();
    let mean = times.iter().sum::<Duration>() / ROUNDS as u32;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms",
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS * 99 / 100]),
        ms(mean)
    )
}

fn rss_kib(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.to_owned())
        })
        .unwrap_or_else(|| "VmRSS: unknown".into())
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut yaml = String::from("http:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "  t{i}:\n    url: http://127.0.0.1:{port}/-/healthy\n"
        ));
    }
    let config = write(dir.path(), "config.yaml", &yaml);
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    println!("fanout_exporter, {ROUNDS} sequential requests each:");
    println!(
        "  /probe (1 HTTP target)     {}",
        measure(exporter.address, "/probe?target=t0")
    );
    println!(
        "  /metrics (20 HTTP targets) {}",
        measure(exporter.address, "/metrics")
    );
    println!("  {}", rss_kib(exporter.pid()));

    match Peer::blackbox(dir.path()) {
        None => println!(
            "blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter)"
        ),
        Some(blackbox) => {
            let path = format!("/probe?module=http_2xx&target=http://127.0.0.1:{port}/-/healthy");
            println!("blackbox_exporter (Debian), same target:");
            println!(
                "  /probe (1 HTTP target)     {}",
                measure(blackbox.address, &path)
            );
            println!("  {}", rss_kib(blackbox.pid()));
        }
    }
    drop(exporter);
    mysql(dir.path());
    redis(dir.path());
}

/// One redis-server with a few keys and commands run, scraped by us and by Debian's redis_exporter.
fn redis(dir: &std::path::Path) {
    let server = redis_server::Redis::start(redis_server::Opts::default());
    for i in 0..100 {
        server.cli(&["SET", &format!("key:{i}"), "1"]);
    }
    let port = free_port();
    let config = write(
        dir,
        "redis.yaml",
        &format!("redis:\n  cache:\n    url: {}\n", server.url()),
    );
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    println!("fanout_exporter, Redis 7.0 on loopback:");
    println!(
        "  /probe (1 Redis target)    {}",
        measure(exporter.address, "/probe?target=cache")
    );
    println!("  {}", rss_kib(exporter.pid()));
    match Peer::redis(&server.url()) {
        None => {
            println!("redis_exporter: not installed (apt-get install prometheus-redis-exporter)")
        }
        Some(peer) => {
            println!("redis_exporter (Debian), same server:");
            println!(
                "  /metrics                   {}",
                measure(peer.address, "/metrics")
            );
            println!("  {}", rss_kib(peer.pid()));
        }
    }
}

/// One MariaDB server scraped with the default sub-collectors (global status, global variables,
/// replica status) through its socket as root, by us and by Debian's mysqld_exporter.
fn mysql(dir: &std::path::Path) {
    let server = mariadb::Mariadb::start(mariadb::Opts::default());
    let socket = server.socket();
    let port = free_port();
    let config = write(
        dir,
        "mysql.yaml",
        &format!(
            "mysql:\n  db:\n    address: unix://{}\n    user: root\n",
            socket.display()
        ),
    );
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    println!("fanout_exporter, MariaDB 10.11 on a unix socket:");
    println!(
        "  /probe (1 MySQL target)    {}",
        measure(exporter.address, "/probe?target=db")
    );
    println!("  {}", rss_kib(exporter.pid()));
    match Peer::mysqld(&socket) {
        None => {
            println!("mysqld_exporter: not installed (apt-get install prometheus-mysqld-exporter)")
        }
        Some(peer) => {
            println!("mysqld_exporter (Debian), same server and sub-collectors:");
            println!(
                "  /metrics                   {}",
                measure(peer.address, "/metrics")
            );
            println!("  {}", rss_kib(peer.pid()));
        }
    }
}
