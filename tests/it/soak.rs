//! A soak of /metrics through the built binary: 64 concurrent scrapers for 60 s over real targets (a
//! MariaDB, a redis-server, an HTTP server). Every response must be a complete 200 with every target
//! up, and the exporter's resident memory must stay flat within a generous margin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::mariadb;
use fanout_testkit::process::{MIB, Memory};

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fanout_testkit::exporter::write;
use fanout_testkit::hostile::{Hostile, Script, Then, Wait};

use super::hostile::start;

const SCRAPERS: usize = 64;
const SOAK: Duration = Duration::from_secs(60);

/// One GET /metrics on a fresh connection: the body, or what was wrong (status, framing, timeout).
/// Errors are returned, not raised, so that one bad response is counted with the rest.
fn fetch(address: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read after {} bytes: {e}", raw.len()))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("status {status}: {head}"));
    }
    let body = &raw[split + 4..];
    let header = |name: &str| {
        head.split("\r\n").find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(body)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| "bad Content-Length")?;
        if body.len() != length {
            return Err(format!(
                "body of {} bytes, Content-Length {length}",
                body.len()
            ));
        }
        body.to_vec()
    } else {
        return Err("neither chunked nor Content-Length".into());
    };
    String::from_utf8(body).map_err(|_| "body is not UTF-8".into())
}

/// A chunked body, which must end with its last (empty) chunk: a response cut short fails here.
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("cut inside a chunk size line")?;
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or("bad chunk size")?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(format!("cut inside a chunk of {size} bytes"));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// What every response must hold: each target up, and the exporter's own build info.
const EXPECTED: [&str; 4] = [
    "\nmysql_up{target=\"db\"} 1\n",
    "\nredis_up{target=\"cache\"} 1\n",
    "\nprobe_success{target=\"web\"} 1\n",
    "\nfanout_exporter_build_info{",
];

fn check(text: &str) -> Result<(), String> {
    match EXPECTED.iter().find(|e| !text.contains(*e)) {
        Some(missing) => Err(format!("missing {missing:?}")),
        None if !text.ends_with('\n') => Err("body does not end with a newline".into()),
        None => Ok(()),
    }
}

#[test]
fn sixty_four_scrapers_for_a_minute_get_complete_answers_and_memory_stays_flat() {
    let (db, cache) = fanout_testkit::mariadb_and_redis();
    let web = Hostile::start(Script {
        wait: Wait::HttpHead,
        first: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
        then: Then::Close,
    });
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", mariadb::EXPORTER_PASSWORD);
    let yaml = format!(
        "mysql:\n  db:\n    address: 127.0.0.1:{}\n    user: exporter\n    password_file: mysql.pw\n\
         redis:\n  cache:\n    url: {}\n\
         http:\n  web:\n    url: http://127.0.0.1:{}/\n",
        db.port(),
        cache.url(),
        web.port()
    );
    // 64 scrapers stay under the request limit: `--web.max-requests` (default 40, 503 past it) is
    // raised to 128, since this soak measures errors and memory, not the limit (tests/it/limits.rs).
    let exporter = start(dir.path(), &yaml, &["--web.max-requests=128"]);
    for _ in 0..3 {
        check(&fetch(exporter.address).unwrap()).unwrap();
    }
    let before = Memory::of(exporter.pid());
    let address = exporter.address;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let scrapers: Vec<_> = (0..SCRAPERS)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut errors, mut slowest) = (0usize, Vec::new(), Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match fetch(address).and_then(|text| check(&text)) {
                        Ok(()) => ok += 1,
                        Err(e) => errors.push(e),
                    }
                    slowest = slowest.max(t.elapsed());
                }
                (ok, errors, slowest)
            })
        })
        .collect();
    // Memory sampled through the soak, not only at its ends.
    let mut peak_rss = before.rss;
    while started.elapsed() < SOAK {
        std::thread::sleep(Duration::from_secs(1));
        peak_rss = peak_rss.max(Memory::of(exporter.pid()).rss);
    }
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut errors, mut slowest) = (0, Vec::new(), Duration::ZERO);
    for scraper in scrapers {
        let (o, e, s) = scraper.join().unwrap();
        ok += o;
        errors.extend(e);
        slowest = slowest.max(s);
    }
    let elapsed = started.elapsed();
    let after = Memory::of(exporter.pid());
    eprintln!(
        "{SCRAPERS} scrapers x {elapsed:?}: {ok} complete 200s ({:.0}/s), {} errors, slowest \
         {slowest:?}; exporter at start {before}, at end {after}, peak VmRSS during {:.1} MiB",
        ok as f64 / elapsed.as_secs_f64(),
        errors.len(),
        peak_rss as f64 / MIB as f64
    );
    assert!(
        errors.is_empty(),
        "{} errors, the first: {:?}",
        errors.len(),
        errors.iter().take(5).collect::<Vec<_>>()
    );
    assert!(ok > SCRAPERS, "only {ok} scrapes in {elapsed:?}");
    assert!(
        after.rss < 3 * before.rss + 50 * MIB,
        "memory grew from {before} to {after}"
    );
}
