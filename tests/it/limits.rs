//! Request limits of the built binary: `--web.max-requests`, oversized request heads and URIs, and
//! idle or trickling (slowloris) connections, which must not keep the server from answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use fanout_testkit::exporter::{Exporter, get, write};

/// A target that accepts connections (the kernel does, into the backlog) and never answers, so a
/// scrape of it lasts its whole budget.
fn hanging_target() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn start(dir: &Path, target: &TcpListener, extra: &[&str]) -> Exporter {
    let config = write(
        dir,
        "config.yml",
        &format!(
            "http:\n  hangs:\n    url: http://{}/\n",
            target.local_addr().unwrap()
        ),
    );
    let mut args = vec![
        "--web.listen-address=127.0.0.1:0".to_owned(),
        format!("--config.file={}", config.display()),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}

#[test]
fn scrapes_past_max_requests_get_503_while_health_and_the_status_page_answer() {
    let target = hanging_target();
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(dir.path(), &target, &["--web.max-requests=2"]);
    let address = exporter.address;
    let budget = [("X-Prometheus-Scrape-Timeout-Seconds", "3")];
    let running: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(address, "/metrics", &budget).status))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let refused = get(address, "/metrics", &budget);
    assert_eq!(refused.status, 503);
    assert!(
        refused
            .text()
            .contains("Limit of concurrent requests reached (2)"),
        "{}",
        refused.text()
    );
    assert_eq!(get(address, "/probe?target=hangs", &budget).status, 503);
    assert_eq!(get(address, "/-/healthy", &[]).status, 200);
    assert_eq!(get(address, "/", &[]).status, 200);
    for scrape in running {
        assert_eq!(scrape.join().unwrap(), 200);
    }
    // The places are given back.
    assert_eq!(
        get(
            address,
            "/metrics",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "1")]
        )
        .status,
        200
    );
}

/// Send `head` and return the status of the answer (0 if the connection closed without one).
fn status_of(address: std::net::SocketAddr, head: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer and close before the whole head is written.
    let _ = stream.write_all(head);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn oversized_uris_and_request_heads_are_refused_and_cost_nothing_else() {
    let target = hanging_target();
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(dir.path(), &target, &[]);
    let long_uri = format!("/probe?target={}", "a".repeat(10_000));
    assert_eq!(get(exporter.address, &long_uri, &[]).status, 414);
    let huge_header = format!(
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    assert_eq!(status_of(exporter.address, huge_header.as_bytes()), 431);
    let many_headers = format!(
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let status = status_of(exporter.address, many_headers.as_bytes());
    assert!((400..500).contains(&status), "200 headers: {status}");
    assert_eq!(get(exporter.address, "/-/healthy", &[]).status, 200);
}

#[test]
fn five_hundred_idle_and_trickling_connections_neither_block_answers_nor_stay_open() {
    let target = hanging_target();
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(dir.path(), &target, &[]);
    let opened = Instant::now();
    let mut held: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut stream = TcpStream::connect(exporter.address).unwrap();
            // Half send nothing; half start a request and never finish it.
            if i % 2 == 1 {
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
            }
            stream
        })
        .collect();
    let mut times = Vec::new();
    for path in ["/metrics", "/", "/-/healthy"].repeat(5) {
        let start = Instant::now();
        let response = get(
            exporter.address,
            path,
            &[("X-Prometheus-Scrape-Timeout-Seconds", "1")],
        );
        assert_eq!(response.status, 200, "{path} with 500 connections held");
        times.push((path, start.elapsed()));
    }
    let worst = times.iter().map(|(_, t)| *t).max().unwrap();
    eprintln!(
        "with 500 idle/trickling connections open: {} answers, slowest {worst:?} (/metrics waits out its hanging target's 0.5 s budget)",
        times.len()
    );
    // Every held connection is closed by the server once its time to send a request head is up
    // (5 s), some after a 408 answer.
    let deadline = opened + Duration::from_secs(25);
    let mut answered_408 = 0;
    for stream in &mut held {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "a held connection is still open after {:?}: {e}",
                opened.elapsed()
            ),
        }
        if answer.starts_with(b"HTTP/1.1 408") {
            answered_408 += 1;
        }
    }
    eprintln!(
        "all 500 closed by the server within {:?} ({answered_408} with 408)",
        opened.elapsed()
    );
    assert_eq!(get(exporter.address, "/-/healthy", &[]).status, 200);
}
