//! Hostile input through the built binary: loopback servers that pose as Redis, MySQL and HTTP targets
//! and send garbage, truncated packets, lengths that announce far more than ever comes, and endless
//! streams, each configured beside a healthy target of the same kind. A bad target must cost only its
//! own up gauge: the scrape answers 200 within its deadline, the healthy target stays up, the exporter
//! stays alive, and its memory stays within a generous bound of where it started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;
use fanout_testkit::hostile::{
    Hostile, Script, Then, Wait, mysql_handshake_start, mysql_packet, noise,
};
use fanout_testkit::mariadb;
use fanout_testkit::process::{MIB, Memory};
use fanout_testkit::redis as redis_server;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Exporter, value, write};

/// The `X-Prometheus-Scrape-Timeout-Seconds` every scrape here sends: a 2.5 s budget after the
/// default 0.5 s offset.
pub(crate) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);
/// How far past [`SCRAPE_TIMEOUT`] a scrape may answer: rendering and a loaded 2-core machine.
pub(crate) const MARGIN: Duration = Duration::from_secs(1);
/// Most the exporter's memory may grow from idle to the high-water mark after the hostile scrapes.
const MEMORY_BOUND: u64 = 200 * MIB;

/// Start the exporter on a free port with `yaml` as its config file in `dir`, plus `args`.
pub(crate) fn start(dir: &Path, yaml: &str, args: &[&str]) -> Exporter {
    let config = write(dir, "config.yaml", yaml);
    let mut all = vec![
        "--web.listen-address=127.0.0.1:0".to_owned(),
        format!("--config.file={}", config.display()),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    Exporter::start(&all)
}

/// GET /metrics with a `timeout` scrape header: the body and how long the answer took. Fails unless
/// it is a 200.
pub(crate) fn scrape(exporter: &Exporter, timeout: Duration) -> (String, Duration) {
    let started = Instant::now();
    let header = format!("{}", timeout.as_secs_f64());
    let response = exporter.get(
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", header.as_str())],
    );
    let took = started.elapsed();
    assert_eq!(response.status, 200, "{}", response.text());
    (response.text(), took)
}

/// The value of `<metric>{target="<target>"}`, which must be present.
pub(crate) fn up(text: &str, metric: &str, target: &str) -> f64 {
    value(text, &format!("{metric}{{target=\"{target}\"}}"))
        .unwrap_or_else(|| panic!("{metric} of {target} missing:\n{text}"))
}

/// Three scrapes of `exporter`, whose config has `healthy` and the `hostile` targets of one kind
/// (`up_metric`): each answers in time with only the hostile ones down; the exporter is alive after
/// and its memory bounded. `servers` are the hostile listeners, which must each have been reached.
/// Returns the last scrape.
fn assert_costs_only_its_own_target(
    exporter: &mut Exporter,
    up_metric: &str,
    healthy: &str,
    hostile: &[(&str, &Hostile)],
) -> String {
    let idle = Memory::of(exporter.pid());
    let mut last = String::new();
    for round in 1..=3 {
        let (text, took) = scrape(exporter, SCRAPE_TIMEOUT);
        eprintln!("{up_metric} round {round}: scrape answered in {took:?}");
        assert!(
            took < SCRAPE_TIMEOUT + MARGIN,
            "round {round}: the scrape took {took:?}; log:\n{}",
            exporter.log().join("\n")
        );
        assert_eq!(
            up(&text, up_metric, healthy),
            1.0,
            "round {round}: the healthy target is down; log:\n{}",
            exporter.log().join("\n")
        );
        for (name, _) in hostile {
            assert_eq!(up(&text, up_metric, name), 0.0, "round {round}: {name}");
        }
        last = text;
    }
    for (name, server) in hostile {
        assert!(server.connections() > 0, "{name} was never connected to");
    }
    assert!(exporter.running(), "the exporter died");
    let health = exporter.get("/-/healthy", &[]);
    assert_eq!(health.status, 200, "{}", health.text());
    let after = Memory::of(exporter.pid());
    eprintln!("{up_metric}: exporter memory idle {idle}; after 3 hostile scrapes {after}");
    assert!(
        after.hwm.saturating_sub(idle.rss) < MEMORY_BOUND,
        "exporter memory grew from {idle} to {after}"
    );
    let log = exporter.log().join("\n");
    assert!(!log.contains("panicked"), "{log}");
    last
}

fn resp(first: &[u8], then: Then) -> Hostile {
    Hostile::start(Script {
        wait: Wait::AnyBytes,
        first: first.to_vec(),
        then,
    })
}

#[test]
fn redis_servers_speaking_garbage_cost_only_their_own_target() {
    let healthy = redis_server::Redis::start(redis_server::Opts::default());
    let huge = b"$9999999999\r\n";
    let servers = [
        // Not RESP at all: the first byte is no reply type.
        ("noise", resp(&noise(512), Then::Close)),
        // RESP framing with values that do not parse.
        ("malformed", resp(b"*2\r\n:twelve\r\n$-7x\r\n", Then::Hold)),
        // An error reply where INFO is expected, then the connection closes.
        ("error_reply", resp(b"-ERR no\r\n", Then::Close)),
        // A bulk string of ~10 GB announced, then nothing, then a byte every 100 ms.
        ("huge_bulk_silent", resp(huge, Then::Hold)),
        (
            "huge_bulk_trickle",
            resp(
                huge,
                Then::Trickle(b"x".to_vec(), Duration::from_millis(100)),
            ),
        ),
        // The same, then as many bytes as the exporter reads: only a cap on what one reply may
        // buffer keeps memory bounded here.
        (
            "huge_bulk_flood",
            resp(huge, Then::Flood(vec![b'x'; 64 << 10])),
        ),
        // A simple string that never ends (no CRLF).
        (
            "endless_line",
            resp(b"+", Then::Flood(vec![b'y'; 64 << 10])),
        ),
    ];
    let mut yaml = format!("redis:\n  healthy:\n    url: {}\n", healthy.url());
    for (name, server) in &servers {
        yaml.push_str(&format!(
            "  {name}:\n    url: redis://127.0.0.1:{}\n",
            server.port()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut exporter = start(dir.path(), &yaml, &[]);
    let hostile: Vec<(&str, &Hostile)> = servers.iter().map(|(n, s)| (*n, s)).collect();
    let text = assert_costs_only_its_own_target(&mut exporter, "redis_up", "healthy", &hostile);
    // The floods end at the read cap, long before the deadline.
    for name in ["huge_bulk_flood", "endless_line"] {
        let took = duration(&text, "redis", name);
        assert!(took < 1.5, "{name} took {took} s:\n{text}");
    }
}

fn mysql(first: Vec<u8>, then: Then) -> Hostile {
    Hostile::start(Script {
        wait: Wait::Nothing,
        first,
        then,
    })
}

#[test]
fn ports_posing_as_mysql_cost_only_their_own_target() {
    let healthy = mariadb::Mariadb::start(mariadb::Opts::default());
    healthy.create_users();
    let handshake = mysql_handshake_start();
    let mut truncated = mysql_packet(0, &handshake);
    // The header promises the whole handshake; half of it comes.
    truncated.truncate(4 + handshake.len() / 2);
    // A header claiming a payload of 16 MiB - 1, the most one packet holds.
    let huge_header = vec![0xff, 0xff, 0xff, 0x00];
    let servers = [
        ("noise", mysql(noise(512), Then::Close)),
        ("noise_then_silence", mysql(noise(64), Then::Hold)),
        ("truncated_handshake", mysql(truncated, Then::Hold)),
        (
            "truncated_then_close",
            mysql(truncated_clone(&handshake), Then::Close),
        ),
        ("huge_header_silent", mysql(huge_header.clone(), Then::Hold)),
        (
            "huge_header_trickle",
            mysql(
                huge_header,
                Then::Trickle(vec![0u8; 16], Duration::from_millis(100)),
            ),
        ),
    ];
    let hostile: Vec<(&str, &Hostile)> = servers.iter().map(|(n, s)| (*n, s)).collect();
    let (mut exporter, _dir) = mysql_exporter(&healthy, &hostile);
    assert_costs_only_its_own_target(&mut exporter, "mysql_up", "healthy", &hostile);
}

/// A port that answers with an endless chain of full-size packets (a full-size packet means
/// "continued in the next one"), which sqlx gathers into one payload with no limit but the deadline:
/// it buffers what the server sends, about a gigabyte a second on loopback. sqlx 0.8 has no packet
/// size limit and no way to hand it a stream of our own, so the collector cannot bound this; the test
/// stays, ignored, as the measurement of the known gap (run it with `--ignored`).
#[test]
#[ignore = "known gap: sqlx buffers a chained MySQL packet without limit until the deadline"]
fn a_port_posing_as_mysql_with_endless_packets_costs_only_its_own_target() {
    let healthy = mariadb::Mariadb::start(mariadb::Opts::default());
    healthy.create_users();
    let mut chained = vec![0xff, 0xff, 0xff, 0x00];
    chained.extend(std::iter::repeat_n(0u8, (1 << 24) - 1));
    let server = mysql(Vec::new(), Then::Flood(chained));
    let hostile = [("endless_packets", &server)];
    let (mut exporter, _dir) = mysql_exporter(&healthy, &hostile);
    assert_costs_only_its_own_target(&mut exporter, "mysql_up", "healthy", &hostile);
}

/// An exporter with `healthy` and the `hostile` ports as mysql targets, and its config directory.
fn mysql_exporter(
    healthy: &mariadb::Mariadb,
    hostile: &[(&str, &Hostile)],
) -> (Exporter, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mysql.pw", mariadb::EXPORTER_PASSWORD);
    let target = |name: &str, port: u16| {
        format!(
            "  {name}:\n    address: 127.0.0.1:{port}\n    user: exporter\n    password_file: mysql.pw\n"
        )
    };
    let mut yaml = format!("mysql:\n{}", target("healthy", healthy.port()));
    for (name, server) in hostile {
        yaml.push_str(&target(name, server.port()));
    }
    let exporter = start(dir.path(), &yaml, &[]);
    (exporter, dir)
}

/// A handshake packet cut after its header and a third of its payload.
fn truncated_clone(handshake: &[u8]) -> Vec<u8> {
    let mut packet = mysql_packet(0, handshake);
    packet.truncate(4 + handshake.len() / 3);
    packet
}

fn http(first: &[u8], then: Then) -> Hostile {
    Hostile::start(Script {
        wait: Wait::HttpHead,
        first: first.to_vec(),
        then,
    })
}

#[test]
fn http_targets_with_endless_headers_or_bodies_cost_only_their_own_target() {
    let healthy = http(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        Then::Close,
    );
    let chunk = {
        let data = vec![b'z'; 64 << 10];
        let mut c = format!("{:x}\r\n", data.len()).into_bytes();
        c.extend_from_slice(&data);
        c.extend_from_slice(b"\r\n");
        c
    };
    let servers = [
        (
            "endless_headers",
            http(
                b"HTTP/1.1 200 OK\r\n",
                Then::Flood(
                    b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(256),
                ),
            ),
        ),
        (
            "endless_header_line",
            http(
                b"HTTP/1.1 200 OK\r\nX-Long: ",
                Then::Flood(vec![b'a'; 64 << 10]),
            ),
        ),
        (
            "endless_chunked_body",
            http(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Then::Flood(chunk),
            ),
        ),
        (
            "endless_body_until_close",
            http(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                Then::Flood(vec![b'b'; 64 << 10]),
            ),
        ),
        (
            "huge_content_length_trickle",
            http(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                Then::Trickle(b"c".to_vec(), Duration::from_millis(100)),
            ),
        ),
        ("garbage_status_line", http(&noise(512), Then::Close)),
    ];
    let mut yaml = format!(
        "http:\n  healthy:\n    url: http://127.0.0.1:{}/\n",
        healthy.port()
    );
    for (name, server) in &servers {
        yaml.push_str(&format!(
            "  {name}:\n    url: http://127.0.0.1:{}/\n",
            server.port()
        ));
    }
    // The endless body again, once with a body regexp (the body is kept for it) and once with a
    // body_size_limit: both must stop reading at their cap, not at the deadline.
    let endless = &servers[3].1;
    yaml.push_str(&format!(
        "  endless_body_regexp:\n    url: http://127.0.0.1:{}/\n    fail_if_body_not_matches_regexp: ['never-there']\n\
         \x20 endless_body_limited:\n    url: http://127.0.0.1:{}/\n    body_size_limit: 1MiB\n",
        endless.port(),
        endless.port()
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut exporter = start(dir.path(), &yaml, &[]);
    let mut hostile: Vec<(&str, &Hostile)> = servers.iter().map(|(n, s)| (*n, s)).collect();
    hostile.push(("endless_body_regexp", endless));
    hostile.push(("endless_body_limited", endless));
    let text =
        assert_costs_only_its_own_target(&mut exporter, "probe_success", "healthy", &hostile);
    // hyper's limit on a response head, and the body caps, end those probes early.
    for name in [
        "endless_headers",
        "endless_header_line",
        "endless_body_regexp",
        "endless_body_limited",
    ] {
        let took = duration(&text, "http", name);
        eprintln!("{name}: {took} s");
        assert!(took < 1.5, "{name} took {took} s:\n{text}");
    }
    let length = |name: &str| {
        value(
            &text,
            &format!("probe_http_uncompressed_body_length{{target=\"{name}\"}}"),
        )
        .unwrap()
    };
    assert_eq!(length("endless_body_limited"), f64::from(1u32 << 20));
    assert_eq!(length("endless_body_regexp"), f64::from(16u32 << 20));
    // Without a cap the probe reads (and drops) the body until the deadline, as blackbox does; the
    // memory bound above holds for it too.
    assert!(
        length("endless_body_until_close") > f64::from(1u32 << 20),
        "{text}"
    );
}

/// `fanout_exporter_scrape_duration_seconds` of one target.
fn duration(text: &str, kind: &str, target: &str) -> f64 {
    value(
        text,
        &format!(
            "fanout_exporter_scrape_duration_seconds{{collector=\"{kind}\",target=\"{target}\"}}"
        ),
    )
    .unwrap_or_else(|| panic!("no duration for {target}:\n{text}"))
}
