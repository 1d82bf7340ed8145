//! Scrape latency of the built exporter, with blackbox_exporter's figure beside it when the Debian
//! peer is installed, and the scale curve of `/metrics` over 1 to 1,000 Redis targets (time,
//! exposition size, memory), and what exposure safety costs. Reports figures; asserts nothing. Run
//! with `cargo bench --bench scrape` (or `-- <section>` for one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "scrape/report.rs"]
mod report;

use fanout_testkit::exporter as support;
use fanout_testkit::mariadb;
use fanout_testkit::redis as redis_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Exporter, Peer, free_port, get, write};

const ROUNDS: usize = 500;

/// Median, 99th percentile and mean of `ROUNDS` sequential GETs, after a warm-up.
fn measure(address: SocketAddr, path: &str) -> String {
    warm_up(address, path);
    let times = timed_gets(address, path, &[], 200, ROUNDS);
    let mean = times.iter().sum::<Duration>() / ROUNDS as u32;
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms",
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS * 99 / 100]),
        ms(mean)
    )
}

/// Twenty GETs first, so connections are open and caches warm before anything is timed.
fn warm_up(address: SocketAddr, path: &str) {
    for _ in 0..20 {
        assert_eq!(get(address, path, &[]).status, 200, "{path}");
    }
}

/// The times of `rounds` sequential GETs of `path`, each answered `status`, shortest first.
fn timed_gets(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
    rounds: usize,
) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(get(address, path, headers).status, status, "{path}");
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn rss_kib(pid: u32) -> String {
    format!("VmRSS: {}", mib(status_kib(pid, "VmRSS:")))
}

fn mib(kib: Option<f64>) -> String {
    kib.map_or_else(|| "?".to_owned(), |k| format!("{:.1} MiB", k / 1024.0))
}

/// One part of the bench, run in the shared temporary directory.
type Section = fn(&std::path::Path);

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // `cargo bench --bench scrape -- <section>` runs one section: latency, race, kinds, mysql,
    // redis, scale, concurrency or exposure.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    // `-- --write` puts the figures into README.md and docs/scale.svg: a full run only, so the README
    // never mixes figures from different runs.
    let write_docs = std::env::args().any(|a| a == "--write");
    assert!(
        !(write_docs && only.is_some()),
        "--write needs a full run: leave out the section name"
    );
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if run("latency") {
        latency(dir.path());
    }
    let sections: [(&str, Section); 7] = [
        ("race", race),
        ("kinds", kinds),
        ("mysql", mysql),
        ("redis", redis),
        ("scale", scale),
        ("concurrency", concurrency),
        ("exposure", exposure),
    ];
    for (name, section) in sections {
        if run(name) {
            section(dir.path());
        }
    }
    if write_docs {
        report::write(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    }
}

/// `/probe` and `/metrics` over HTTP targets, beside blackbox_exporter's `/probe`.
fn latency(dir: &std::path::Path) {
    let port = free_port();
    let mut yaml = String::from("http:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "  t{i}:\n    url: http://127.0.0.1:{port}/-/healthy\n"
        ));
    }
    let config = write(dir, "config.yaml", &yaml);
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

    match Peer::blackbox(dir) {
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
}

/// What exposure safety costs: `/metrics` and the status page with 500 connections held open (idle
/// or trickling a request head, until the server drops them after its 5 s head timeout), and basic
/// authentication at bcrypt cost 10, first check and remembered.
fn exposure(dir: &std::path::Path) {
    let port = free_port();
    let config = write(
        dir,
        "exposure.yaml",
        &format!("http:\n  self:\n    url: http://127.0.0.1:{port}/-/healthy\n"),
    );
    let hash = bcrypt::hash("bench", 10).unwrap();
    let web = write(
        dir,
        "exposure-web.yaml",
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    let address = exporter.address;
    println!("fanout_exporter, exposure safety (sequential GETs, 200 each):");
    let quick = |path: &str| {
        let times = timed_gets(address, path, &[], 200, 200);
        format!("p50 {:.3} ms  max {:.3} ms", ms(times[100]), ms(times[199]))
    };
    println!(
        "  /metrics, nothing else open             {}",
        quick("/metrics")
    );
    println!("  /, nothing else open                    {}", quick("/"));
    let held: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut stream = TcpStream::connect(address).unwrap();
            if i % 2 == 1 {
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            stream
        })
        .collect();
    println!(
        "  /metrics, 500 idle/trickling open       {}",
        quick("/metrics")
    );
    println!("  /, 500 idle/trickling open              {}", quick("/"));
    println!("  {} with the 500 open", rss_kib(exporter.pid()));
    drop(held);
    drop(exporter);

    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{}", free_port()),
        &format!("--config.file={}", config.display()),
        &format!("--web.config.file={}", web.display()),
    ]);
    let authorization = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "prometheus:bench"
        )
    );
    let auth = [("Authorization", authorization.as_str())];
    let start = Instant::now();
    assert_eq!(get(exporter.address, "/-/healthy", &auth).status, 200);
    let first = start.elapsed();
    let times = timed_gets(exporter.address, "/-/healthy", &auth, 200, 200);
    let wrong = [("Authorization", "Basic cHJvbWV0aGV1czp3cm9uZw==")];
    let start = Instant::now();
    assert_eq!(get(exporter.address, "/-/healthy", &wrong).status, 401);
    let refused = start.elapsed();
    println!(
        "  basic auth, bcrypt cost 10: first check {:.1} ms, remembered p50 {:.3} ms, wrong password {:.1} ms",
        ms(first),
        ms(times[100]),
        ms(refused)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How long each point of the concurrency curve runs.
const CONCURRENCY_RUN: Duration = Duration::from_secs(3);

/// A configuration with one target of each kind: `db` (MariaDB through its socket, as root), `cache`
/// (Redis) and `web` (`/-/healthy` of the exporter at `web`, a second process, so the CPU measured
/// is the probe's alone, as the peer's is).
fn one_of_each(
    dir: &std::path::Path,
    name: &str,
    mariadb: &mariadb::Mariadb,
    redis: &redis_server::Redis,
    web: SocketAddr,
) -> std::path::PathBuf {
    write(
        dir,
        name,
        &format!(
            "mysql:\n  db:\n    address: unix://{}\n    user: root\n\
             redis:\n  cache:\n    url: {}\n\
             http:\n  web:\n    url: http://{web}/-/healthy\n",
            mariadb.socket().display(),
            redis.url()
        ),
    )
}

/// `/metrics` over three targets (MariaDB through its socket, Redis, one HTTP) scraped by 1, 8 and 64
/// clients at once, each sending its next request when the last one answered: the latency each
/// client sees, and how many statements MariaDB ran per scrape (its `Questions` counter), which
/// shows the scrapes sharing collections.
fn concurrency(dir: &std::path::Path) {
    let mariadb = mariadb::Mariadb::start(mariadb::Opts::default());
    let redis = redis_server::Redis::start(redis_server::Opts::default());
    let port = free_port();
    let web = Exporter::start(&[&format!("--web.listen-address=127.0.0.1:{}", free_port())]);
    let config = one_of_each(dir, "concurrency.yaml", &mariadb, &redis, web.address);
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
        // 64 clients measure the engine, not the limit (default 40).
        "--web.max-requests=0",
    ]);
    let address = exporter.address;
    assert_eq!(get(address, "/metrics", &[]).status, 200);
    println!(
        "fanout_exporter, /metrics over MariaDB 10.11 + Redis 7.0 + HTTP, concurrent clients for {:?} each:",
        CONCURRENCY_RUN
    );
    println!(
        "  {:>7} {:>8} {:>10} {:>10} {:>22}",
        "clients", "scrapes", "p50 ms", "p99 ms", "MariaDB stmts/scrape"
    );
    let mut rows = Vec::new();
    for clients in [1usize, 8, 64] {
        let questions = || mariadb.status("Questions").parse::<f64>().unwrap();
        let before = questions();
        let until = Instant::now() + CONCURRENCY_RUN;
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut times = Vec::new();
                    while Instant::now() < until {
                        let start = Instant::now();
                        assert_eq!(get(address, "/metrics", &[]).status, 200);
                        times.push(start.elapsed());
                    }
                    times
                })
            })
            .collect();
        let mut times: Vec<Duration> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        // The status query itself is one statement.
        let statements = questions() - before - 1.0;
        times.sort();
        println!(
            "  {clients:>7} {:>8} {:>10.2} {:>10.2} {:>22.2}",
            times.len(),
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100]),
            statements / times.len() as f64
        );
        rows.push(vec![
            clients.to_string(),
            times.len().to_string(),
            format!("{:.2}", ms(times[times.len() / 2])),
            format!("{:.2}", ms(times[times.len() * 99 / 100])),
            format!("{:.2}", statements / times.len() as f64),
        ]);
    }
    report::table(
        &format!(
            "Concurrency: `/metrics` over one target of each kind, each client sending its next \
             request when the last one answered, for {} s; statements per scrape from MariaDB's \
             `Questions`, which shows concurrent scrapes sharing collections:",
            CONCURRENCY_RUN.as_secs()
        ),
        &[
            "clients",
            "scrapes",
            "p50 ms",
            "p99 ms",
            "MariaDB statements per scrape",
        ],
        rows,
    );
}

/// Scrapes per point of the scale curve, after one warm-up scrape that opens the connections.
const SCALE_ROUNDS: usize = 5;

/// `/metrics` over N Redis targets that all point at one redis-server, for N = 1, 10, 100, 1000:
/// the median wall time of a scrape, the exposition's size, and the exporter's VmRSS and VmHWM
/// after the scrapes. Twice per N, each time in a fresh exporter: once with a new connection per
/// scrape (what Prometheus does when its interval exceeds the server's 5 s keep-alive), once over
/// one kept-alive connection, which actix keeps on one worker thread. Scrapes themselves run on
/// the exporter's one scrape thread either way, so the two should agree; a gap would mean memory
/// kept per HTTP worker (glibc keeps an arena per allocating thread).
fn scale(dir: &std::path::Path) {
    let server = redis_server::Redis::start(redis_server::Opts::default());
    let keys: Vec<u8> = (0..100)
        .flat_map(|i| redis_server::resp(&[b"SET", format!("key:{i}").as_bytes(), b"1"]))
        .collect();
    server.pipe(&keys);
    println!(
        "fanout_exporter, /metrics over N Redis targets on one Redis 7.0 server (loopback), \
         {SCALE_ROUNDS} scrapes after a warm-up:"
    );
    let columns = |n: &str, size: &str, each: &str, cells: [&str; 6]| {
        println!(
            "  {n:>5} {size:>11} {each:>11} | {:>9} {:>10} {:>10} | {:>9} {:>10} {:>10}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
        );
    };
    println!(
        "  {:>5} {:>11} {:>11} | {:<31} | {:<31}",
        "", "", "", "a new connection per scrape", "one kept-alive connection"
    );
    columns(
        "N",
        "exposition",
        "per target",
        ["median ms", "VmRSS", "VmHWM", "median ms", "VmRSS", "VmHWM"],
    );
    let mut rows = Vec::new();
    for n in [1, 10, 100, 1000] {
        let mut yaml = String::from("redis:\n");
        for i in 0..n {
            yaml.push_str(&format!("  r{i}:\n    url: {}\n", server.url()));
        }
        let config = write(dir, &format!("scale-{n}.yaml"), &yaml);
        let start = || {
            Exporter::start(&[
                &format!("--web.listen-address=127.0.0.1:{}", free_port()),
                &format!("--config.file={}", config.display()),
            ])
        };
        let fresh = start();
        let (fresh_ms, size) = scrape_times(|| get(fresh.address, "/metrics", &[]).body);
        let fresh_memory = memory(fresh.pid());
        let fresh_rss = status_kib(fresh.pid(), "VmRSS:").unwrap_or(0.0) / 1024.0;
        drop(fresh);
        let kept = start();
        let mut connection = KeptAlive::connect(kept.address);
        let (kept_ms, _) = scrape_times(|| connection.get("/metrics"));
        let kept_memory = memory(kept.pid());
        drop(kept);
        rows.push(vec![
            "redis".to_owned(),
            n.to_string(),
            kib(size),
            format!("{fresh_ms:.1} ({kept_ms:.1})"),
            format!("{} ({})", fresh_memory.0, kept_memory.0),
            format!("{} ({})", fresh_memory.1, kept_memory.1),
        ]);
        report::point(report::Point {
            kind: "redis",
            targets: n,
            ms: fresh_ms,
            rss_mib: fresh_rss,
        });
        columns(
            &n.to_string(),
            &kib(size),
            &kib(size / n),
            [
                &format!("{fresh_ms:.1}"),
                &fresh_memory.0,
                &fresh_memory.1,
                &format!("{kept_ms:.1}"),
                &kept_memory.0,
                &kept_memory.1,
            ],
        );
    }
    report::table(
        &format!(
            "Scale of the Redis kind: `/metrics` over N targets on one redis-server, the median of \
             {SCALE_ROUNDS} scrapes after a warm-up with a new connection per scrape (as Prometheus \
             scrapes at intervals above actix's 5 s keep-alive) and, in brackets, over one \
             kept-alive connection; memory after them:"
        ),
        &["kind", "N", "exposition", "median ms", "VmRSS", "VmHWM"],
        rows,
    );
}

/// One warm-up scrape, then the median time of [`SCALE_ROUNDS`] scrapes in ms and the last body's
/// size in bytes.
fn scrape_times(mut scrape: impl FnMut() -> Vec<u8>) -> (f64, usize) {
    let mut size = scrape().len();
    let mut times: Vec<f64> = (0..SCALE_ROUNDS)
        .map(|_| {
            let start = Instant::now();
            size = scrape().len();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[SCALE_ROUNDS / 2], size)
}

fn kib(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// VmRSS and VmHWM of `pid`, in MiB.
fn memory(pid: u32) -> (String, String) {
    (
        mib(status_kib(pid, "VmRSS:")),
        mib(status_kib(pid, "VmHWM:")),
    )
}

/// An HTTP/1.1 client that keeps its connection, as Prometheus does between scrapes (the testkit's
/// `get` opens one per request). Reads bodies with a `Content-Length`, which `/metrics` sends.
struct KeptAlive {
    address: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl KeptAlive {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            address,
            reader: BufReader::new(stream),
        }
    }

    fn get(&mut self, path: &str) -> Vec<u8> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.address);
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut length = None;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.expect("a Content-Length")];
        self.reader.read_exact(&mut body).unwrap();
        body
    }
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

/// Scrapes per side and kind in the race, in `RACE_LEGS` legs taken by the two sides in turn, so
/// that the machine's drift during a run (other tenants, frequency) reaches both sides alike.
const RACE_ROUNDS: usize = 300;
const RACE_LEGS: usize = 6;

/// One side of a race: p50 and p99 of `RACE_ROUNDS` sequential GETs of `path` after a warm-up, the
/// process's CPU time (user + system, from /proc) per 1,000 of them, and its VmRSS after.
struct Lap {
    p50: f64,
    p99: f64,
    cpu_ms_per_1000: f64,
    rss_mib: f64,
}

/// A side of the race as it runs: where it listens, what it is asked, what it has cost so far.
struct Side<'a> {
    address: SocketAddr,
    pid: u32,
    path: &'a str,
    times: Vec<Duration>,
    cpu_ns: u64,
}

impl<'a> Side<'a> {
    fn new(address: SocketAddr, pid: u32, path: &'a str) -> Self {
        warm_up(address, path);
        Self {
            address,
            pid,
            path,
            times: Vec::new(),
            cpu_ns: 0,
        }
    }

    /// One leg of `RACE_ROUNDS / RACE_LEGS` scrapes.
    fn leg(&mut self) {
        let before = cpu_ns(self.pid);
        let rounds = RACE_ROUNDS / RACE_LEGS;
        self.times
            .extend(timed_gets(self.address, self.path, &[], 200, rounds));
        self.cpu_ns += cpu_ns(self.pid).saturating_sub(before);
    }

    fn lap(mut self) -> Lap {
        self.times.sort();
        let n = self.times.len();
        Lap {
            p50: ms(self.times[n / 2]),
            p99: ms(self.times[n * 99 / 100]),
            cpu_ms_per_1000: self.cpu_ns as f64 / 1e6 * 1000.0 / n as f64,
            rss_mib: status_kib(self.pid, "VmRSS:").map_or(f64::NAN, |k| k / 1024.0),
        }
    }
}

/// `sides` scraped in turn, leg by leg.
fn race_legs(mut sides: Vec<Side<'_>>) -> Vec<Lap> {
    for _ in 0..RACE_LEGS {
        for side in &mut sides {
            side.leg();
        }
    }
    sides.into_iter().map(Side::lap).collect()
}

/// CPU time `pid`'s threads have run, in nanoseconds: the first field of each thread's
/// `/proc/<pid>/task/<tid>/schedstat`. `/proc/<pid>/stat` counts in 10 ms ticks, too coarse for a few
/// hundred scrapes of a millisecond; the exporters' threads live as long as the process, so none of
/// the time is lost with an exited thread.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

fn status_kib(pid: u32, key: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .trim_start_matches(key)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// One table: each kind scraped by us and by its Debian peer on the same server, sequentially, with
/// ours/peer ratios (below 1 is ours faster or smaller). A peer that is not installed is said so.
fn race(dir: &std::path::Path) {
    let mariadb = mariadb::Mariadb::start(mariadb::Opts::default());
    let redis = redis_server::Redis::start(redis_server::Opts::default());
    for i in 0..100 {
        redis.cli(&["SET", &format!("key:{i}"), "1"]);
    }
    let port = free_port();
    let web = Exporter::start(&[&format!("--web.listen-address=127.0.0.1:{}", free_port())]);
    let config = one_of_each(dir, "race.yaml", &mariadb, &redis, web.address);
    let ours = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    println!(
        "race, {RACE_ROUNDS} sequential scrapes per side in {RACE_LEGS} alternating legs (MariaDB 10.11 socket, Redis 7.0, HTTP on loopback):"
    );
    println!(
        "  {:<7} {:<17} {:>8} {:>8} {:>14} {:>9} | {:>9} {:>9}",
        "kind", "exporter", "p50 ms", "p99 ms", "CPU ms/1000", "RSS MiB", "p50 ratio", "CPU ratio"
    );
    let rows = std::cell::RefCell::new(Vec::new());
    let row = |kind: &str, who: &str, l: &Lap, ratio: Option<(f64, f64)>| {
        let (p, c) = ratio.map_or(("".to_owned(), "".to_owned()), |(p, c)| {
            (format!("{p:.2}x"), format!("{c:.2}x"))
        });
        println!(
            "  {kind:<7} {who:<17} {:>8.2} {:>8.2} {:>14.0} {:>9.1} | {p:>9} {c:>9}",
            l.p50, l.p99, l.cpu_ms_per_1000, l.rss_mib
        );
        rows.borrow_mut().push(vec![
            kind.to_owned(),
            who.to_owned(),
            format!("{:.2}", l.p50),
            format!("{:.2}", l.p99),
            format!("{:.0}", l.cpu_ms_per_1000),
            format!("{:.1}", l.rss_mib),
            p,
            c,
        ]);
    };
    let kinds: [(&str, String, Option<Peer>, String); 3] = [
        (
            "mysql",
            "/probe?target=db".to_owned(),
            Peer::mysqld(&mariadb.socket()),
            "/metrics".to_owned(),
        ),
        (
            "redis",
            "/probe?target=cache".to_owned(),
            Peer::redis(&redis.url()),
            "/metrics".to_owned(),
        ),
        (
            "http",
            "/probe?target=web".to_owned(),
            Peer::blackbox(dir),
            format!(
                "/probe?module=http_2xx&target=http://{}/-/healthy",
                web.address
            ),
        ),
    ];
    for (kind, path, peer, peer_path) in kinds {
        match peer {
            Some(peer) => {
                let mut laps = race_legs(vec![
                    Side::new(ours.address, ours.pid(), &path),
                    Side::new(peer.address, peer.pid(), &peer_path),
                ])
                .into_iter();
                let (mine, theirs) = (laps.next().unwrap(), laps.next().unwrap());
                row(
                    kind,
                    "fanout_exporter",
                    &mine,
                    Some((
                        mine.p50 / theirs.p50,
                        mine.cpu_ms_per_1000 / theirs.cpu_ms_per_1000.max(f64::MIN_POSITIVE),
                    )),
                );
                row(kind, "peer (Debian)", &theirs, None);
            }
            None => {
                let mine = race_legs(vec![Side::new(ours.address, ours.pid(), &path)]);
                row(kind, "fanout_exporter", &mine[0], None);
                println!("  {kind:<7} peer not installed (scripts/test installs it from Debian)");
            }
        }
    }
    let all = race_legs(vec![Side::new(ours.address, ours.pid(), "/metrics")]);
    row("all", "fanout_exporter", &all[0], None);
    report::table(
        &format!(
            "The race: each kind scraped {RACE_ROUNDS} times by fanout_exporter (`/probe`) and by \
             its Debian peer, in {RACE_LEGS} legs taken in turn, on the same servers (MariaDB through its socket, Redis with 100 \
             keys, HTTP `/-/healthy` of a second exporter), a new connection per scrape; CPU is the \
             exporter's (user and system, from `/proc`) per 1,000 scrapes; ratios are ours/peer. \
             `all` is our `/metrics` with the three targets."
        ),
        &[
            "kind",
            "exporter",
            "p50 ms",
            "p99 ms",
            "CPU ms/1000",
            "RSS MiB",
            "p50 ratio",
            "CPU ratio",
        ],
        rows.take(),
    );
}

/// The scale curve of the other two kinds: `/metrics` over N HTTP targets (all asking a second
/// exporter's `/-/healthy`) and N MySQL targets (one connection each, all on one MariaDB), for
/// N = 1, 10, 100, 1000: the median of a scrape, the exposition's size, VmRSS and VmHWM after.
fn kinds(dir: &std::path::Path) {
    let http_server =
        Exporter::start(&[&format!("--web.listen-address=127.0.0.1:{}", free_port())]);
    let mariadb = mariadb::Mariadb::start(mariadb::Opts {
        extra_args: vec!["--max-connections=1200".to_owned()],
        ..mariadb::Opts::default()
    });
    let socket = mariadb.socket();
    println!(
        "fanout_exporter, /metrics over N targets of one kind, {SCALE_ROUNDS} scrapes after a warm-up:"
    );
    println!(
        "  {:<6} {:>5} {:>11} {:>11} {:>10} {:>10} {:>10}",
        "kind", "N", "exposition", "per target", "median ms", "VmRSS", "VmHWM"
    );
    let mut rows = Vec::new();
    for (kind, target) in [
        (
            "http",
            format!("    url: http://{}/-/healthy\n", http_server.address),
        ),
        (
            "mysql",
            format!(
                "    address: unix://{}\n    user: root\n    max_connections: 1\n",
                socket.display()
            ),
        ),
    ] {
        for n in [1usize, 10, 100, 1000] {
            let mut yaml = format!("{kind}:\n");
            for i in 0..n {
                yaml.push_str(&format!("  t{i}:\n{target}"));
            }
            let config = write(dir, &format!("kinds-{kind}-{n}.yaml"), &yaml);
            let exporter = Exporter::start(&[
                &format!("--web.listen-address=127.0.0.1:{}", free_port()),
                &format!("--config.file={}", config.display()),
                "--web.max-requests=0",
            ]);
            let budget = [("X-Prometheus-Scrape-Timeout-Seconds", "30")];
            let (median, size) = scrape_times(|| get(exporter.address, "/metrics", &budget).body);
            let (rss, hwm) = memory(exporter.pid());
            println!(
                "  {kind:<6} {n:>5} {:>11} {:>11} {median:>10.1} {rss:>10} {hwm:>10}",
                kib(size),
                kib(size / n)
            );
            rows.push(vec![
                kind.to_owned(),
                n.to_string(),
                kib(size),
                format!("{median:.1}"),
                rss.clone(),
                hwm,
            ]);
            report::point(report::Point {
                kind,
                targets: n,
                ms: median,
                rss_mib: status_kib(exporter.pid(), "VmRSS:").unwrap_or(0.0) / 1024.0,
            });
        }
    }
    report::table(
        &format!(
            "Scale of the HTTP and MySQL kinds: `/metrics` over N targets of one kind (HTTP: all \
             asking a second exporter's `/-/healthy`; MySQL: one connection each, all on one \
             MariaDB on the same two cores), the median of {SCALE_ROUNDS} scrapes after a warm-up, \
             memory after them:"
        ),
        &["kind", "N", "exposition", "median ms", "VmRSS", "VmHWM"],
        rows,
    );
}
