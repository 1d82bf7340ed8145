//! The built binary end to end: real listeners, real HTTP targets (the exporter's own endpoints, a
//! listener that never answers), and the real `promtool`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;

use std::io::Read as _;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Exporter, promtool_check, series, value, write};

const SECRET: &str = "e2e-s3cret-token";

/// A config whose targets are the exporter itself (`port`): one healthy, one 404 with a bearer token
/// (which must never show up anywhere), and `hung_port`, a listener that accepts and never answers.
fn config(port: u16, hung_port: u16) -> String {
    format!(
        "global:\n  scrape_timeout: 5s\n  labels: {{env: e2e}}\n\
         http:\n  self:\n    url: http://127.0.0.1:{port}/-/healthy\n    labels: {{team: obs}}\n\
         \x20 missing:\n    url: http://127.0.0.1:{port}/nonexistent\n    bearer_token: {SECRET}\n\
         \x20 hung:\n    url: http://127.0.0.1:{hung_port}/\n"
    )
}

struct Setup {
    exporter: Exporter,
    _hung: TcpListener,
    _dir: tempfile::TempDir,
}

fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = support::free_port();
    let path = write(
        dir.path(),
        "config.yaml",
        &config(port, hung.local_addr().unwrap().port()),
    );
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", path.display()),
    ]);
    Setup {
        exporter,
        _hung: hung,
        _dir: dir,
    }
}

/// Run the binary to completion: exit code, stdout, stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(support::bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn metrics_serves_every_target_within_the_deadline_and_promtool_is_clean() {
    let s = start();
    let started = Instant::now();
    let r = s
        .exporter
        .get("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
    let elapsed = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();

    // The hung target cost the scrape its 1.5 s budget (2 s header - 0.5 s offset) and nothing more.
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(
        value(&text, "fanout_exporter_scrape_timeout_seconds"),
        Some(1.5)
    );

    assert_eq!(
        value(
            &text,
            r#"probe_success{target="self",env="e2e",team="obs"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"probe_success{target="missing",env="e2e"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"probe_success{target="hung",env="e2e"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"probe_http_status_code{target="self",env="e2e",team="obs"}"#
        ),
        Some(200.0)
    );
    assert_eq!(
        value(
            &text,
            r#"probe_http_status_code{target="missing",env="e2e"}"#
        ),
        Some(404.0)
    );
    assert_eq!(
        value(&text, r#"probe_http_status_code{target="hung",env="e2e"}"#),
        Some(0.0)
    );
    for (target, up) in [("self", 1.0), ("missing", 0.0), ("hung", 0.0)] {
        let labels = if target == "self" {
            ",team=\"obs\""
        } else {
            ""
        };
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"fanout_exporter_scrape_success{{collector="http",target="{target}",env="e2e"{labels}}}"#
                )
            ),
            Some(up),
            "{target}: {text}"
        );
        assert!(
            text.contains(&format!(
                "fanout_exporter_scrape_duration_seconds{{collector=\"http\",target=\"{target}\""
            )),
            "{target}"
        );
    }
    assert!(
        text.contains("\nfanout_exporter_build_info{version=\""),
        "{text}"
    );
    assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");

    // One TYPE line per name, no series twice (promtool does not check this; Prometheus rejects it).
    let all = series(&text);
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), unique.len(), "duplicate series in:\n{text}");
    let types: Vec<_> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let unique_types: std::collections::HashSet<_> =
        types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(types.len(), unique_types.len());

    let (ok, output) = promtool_check(&r.body);
    assert!(ok, "promtool check metrics failed:\n{output}");
    assert_eq!(output.trim(), "", "promtool reported:\n{output}");

    // The failures are logged with the target name and reason, and the secret appears nowhere.
    let log = s.exporter.log().join("\n");
    assert!(
        log.contains("target_name=missing") && log.contains("status code 404"),
        "{log}"
    );
    assert!(log.contains("target_name=hung"), "{log}");
    assert!(
        !log.contains(SECRET) && !text.contains(SECRET),
        "secret leaked"
    );
}

#[test]
fn metrics_are_gzipped_when_the_client_asks() {
    let s = start();
    let r = s.exporter.get(
        "/metrics",
        &[
            ("Accept-Encoding", "gzip"),
            ("X-Prometheus-Scrape-Timeout-Seconds", "1"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("# TYPE probe_success gauge\n"), "{text}");

    let plain = s
        .exporter
        .get("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "1")]);
    assert_eq!(plain.header("content-encoding"), None);
}

#[test]
fn probe_serves_one_target_without_a_target_label() {
    let s = start();
    let r = s.exporter.get("/probe?target=self", &[]);
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(
        value(&text, r#"probe_success{env="e2e",team="obs"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("target="), "{text}");
    assert!(
        !text.contains("missing") && !text.contains("process_"),
        "{text}"
    );
    let (ok, output) = promtool_check(&r.body);
    assert!(ok && output.trim().is_empty(), "{output}");

    let r = s.exporter.get("/probe", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "missing parameter \"target\" (the name of a configured target, or an address with \"module\")\n"
    );
    let r = s.exporter.get("/probe?target=nope", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "unknown target \"nope\": not in the configuration (to probe an address, add &module=<name>)\n"
    );
}

/// The table row of `target` on the status page.
fn status_row<'a>(page: &'a str, target: &str) -> &'a str {
    let start = page
        .find(&format!("<tr id=\"target-{target}\">"))
        .unwrap_or_else(|| panic!("no row for {target} in:\n{page}"));
    let end = page[start..].find("</tr>").unwrap() + start;
    &page[start..end]
}

#[test]
fn status_page_shows_each_targets_latest_scrape() {
    let s = start();
    let port = s.exporter.address.port();
    let r = s.exporter.get("/", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let page = r.text();
    for expected in [
        "<h1>fanout_exporter</h1>",
        "<a href=\"/metrics\">/metrics</a>",
        "<a href=\"/config\">configuration summary</a>",
        "3 targets: 0 up, 0 down, 3 not scraped yet.",
    ] {
        assert!(page.contains(expected), "{expected} missing from:\n{page}");
    }
    assert!(
        !page.contains("<script"),
        "the page works without JavaScript"
    );
    let row = status_row(&page, "self");
    assert!(row.contains("PENDING") && row.contains("never"), "{row}");

    // A probe of one target updates that target's row only.
    assert_eq!(s.exporter.get("/probe?target=self", &[]).status, 200);
    let page = s.exporter.get("/", &[]).text();
    assert!(
        page.contains("3 targets: 1 up, 0 down, 2 not scraped yet."),
        "{page}"
    );
    assert!(status_row(&page, "self").contains("UP"), "{page}");
    assert!(status_row(&page, "hung").contains("PENDING"), "{page}");

    // Prometheus scrapes (with a short timeout, so the hung target is cut off quickly).
    let scrape = s.exporter.get(
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    assert_eq!(scrape.status, 200);
    let page = s.exporter.get("/", &[]).text();
    assert!(
        page.contains("3 targets: 1 up, 2 down, 0 not scraped yet."),
        "{page}"
    );
    let row = status_row(&page, "self");
    for expected in [
        "<td>http</td>",
        &format!("<code>http://127.0.0.1:{port}</code>"),
        "<span class=\"state up\">UP</span>",
        "<a href=\"/probe?target=self\">probe</a>",
        " UTC<br><span class=\"muted\">",
        " ms</td>",
    ] {
        assert!(row.contains(expected), "{expected} missing from {row}");
    }
    let row = status_row(&page, "missing");
    assert!(
        row.contains("<span class=\"state down\">DOWN</span>"),
        "{row}"
    );
    assert!(row.contains("404"), "the error names the status: {row}");
    let row = status_row(&page, "hung");
    assert!(row.contains("DOWN"), "{row}");
    assert!(
        row.contains(&format!(
            "connected to 127.0.0.1:{}, but no response came within 1 s",
            s._hung.local_addr().unwrap().port()
        )),
        "the error says the server did not answer in time: {row}"
    );
    // Paths may carry tokens: neither the page nor the summary shows them.
    assert!(
        !page.contains(SECRET) && !page.contains("nonexistent"),
        "{page}"
    );

    let config = s.exporter.get("/config", &[]);
    assert_eq!(config.status, 200);
    let config = config.text();
    assert!(
        config.contains(&format!(
            "target missing (http) http://127.0.0.1:{port} labels: {{env=\"e2e\"}}"
        )),
        "{config}"
    );
    assert!(config.contains("scrape_timeout=5s"), "{config}");
    assert!(
        !config.contains(SECRET) && !config.contains("nonexistent"),
        "{config}"
    );
}

#[test]
fn healthcheck_subcommand_reports_the_servers_health() {
    let s = start();
    let address = format!("--web.listen-address={}", s.exporter.address);
    let (code, stdout, stderr) = run(&["healthcheck", &address]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "healthy\n");
    // `:port` (every interface) is reached over loopback, as inside a container.
    let port = format!("--web.listen-address=:{}", s.exporter.address.port());
    assert_eq!(run(&[&port, "healthcheck"]).0, Some(0));

    let Setup { exporter, .. } = s;
    let stopped = exporter.address;
    assert!(exporter.terminate().success());
    let (code, stdout, stderr) = run(&["healthcheck", &format!("--web.listen-address={stopped}")]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.starts_with("unhealthy: cannot connect to"),
        "{stderr}"
    );
}

#[test]
fn health_endpoints() {
    let s = start();
    let r = s.exporter.get("/-/healthy", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Healthy\n"));
    let r = s.exporter.get("/-/ready", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Ready\n"));
    assert_eq!(s.exporter.get("/nope", &[]).status, 404);
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let s = start();
        assert_eq!(s.exporter.get("/-/healthy", &[]).status, 200);
        let Setup { exporter, .. } = s;
        let status = exporter.signal(signal);
        assert!(status.success(), "{signal}: {status:?}");
    }
}

#[test]
fn version_names_the_release_and_revision() {
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    let expected = format!("fanout_exporter {} (revision ", env!("CARGO_PKG_VERSION"));
    assert!(stdout.starts_with(&expected), "{stdout}");
}

#[test]
fn sigterm_lets_an_in_flight_scrape_finish() {
    let s = start();
    let address = s.exporter.address;
    // The hung target holds this scrape for its whole 2.5 s budget.
    let scrape = std::thread::spawn(move || {
        support::get(
            address,
            "/metrics",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "3")],
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let Setup { exporter, .. } = s;
    let status = exporter.terminate();
    let response = scrape.join().unwrap();
    assert_eq!(response.status, 200);
    assert!(
        response
            .text()
            .contains("probe_success{target=\"hung\",env=\"e2e\"} 0\n")
    );
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_a_config_file_it_probes_itself() {
    let exporter = Exporter::start(&["--web.listen-address=127.0.0.1:0", "--log.format=json"]);
    let text = exporter.get("/metrics", &[]).text();
    assert_eq!(
        value(&text, r#"probe_success{target="fanout_exporter"}"#),
        Some(1.0),
        "{text}"
    );
    let log = exporter.log();
    assert!(
        log[0].starts_with('{') && log[0].contains("\"message\":\"listening\""),
        "{log:?}"
    );
}

#[test]
fn the_telemetry_path_flag_moves_the_scrape_endpoint() {
    let exporter = Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        "--web.telemetry-path=/custom",
    ]);
    assert_eq!(exporter.get("/custom", &[]).status, 200);
    assert_eq!(exporter.get("/metrics", &[]).status, 404);
}

#[test]
fn config_check_validates_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", &config(1, 2));
    let (code, stdout, _) = run(&[
        "--config.check",
        &format!("--config.file={}", good.display()),
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(stdout.contains("target self (http)"), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");

    let bad = write(
        dir.path(),
        "bad.yaml",
        "http:\n  web:\n    url: http://x/\n    timeout: 3s\n",
    );
    let (code, _, stderr) = run(&[
        "--config.check",
        &format!("--config.file={}", bad.display()),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!("{}:4: http.web: unknown field `timeout`", bad.display());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_bad_config_stops_start_up_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", "global:\n  max_concurrency: 0\n");
    let port = support::free_port();
    let (code, _, stderr) = run(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", bad.display()),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "{}:2: global.max_concurrency: must be between 1 and 10000",
        bad.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// The example configuration: as shipped it checks and serves on any port; each commented block
/// (a `#<section>:` line and the `#` lines under it) uncommented on its own, and all of them
/// together, is a valid configuration, with the password files it names put next to it.
#[test]
fn the_example_config_runs_on_any_port_and_every_commented_block_uncomments_into_a_valid_one() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shipped = support::write(dir.path(), "shipped.yaml", &example);
    let (code, stdout, stderr) = run(&[
        "--config.check",
        &format!("--config.file={}", shipped.display()),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let exporter = Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", shipped.display()),
    ]);
    assert_eq!(exporter.get("/metrics", &[]).status, 200);
    let page = exporter.get("/", &[]).text();
    assert!(
        !page.contains("DOWN"),
        "a target of the example is down as shipped: {page}"
    );
    drop(exporter);

    let lines: Vec<&str> = example.lines().collect();
    let is_block_start = |l: &str| {
        l.strip_prefix('#').is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_lowercase()) && rest.trim_end().ends_with(':')
        })
    };
    // Inside a block: `#` then YAML, which is indented (or a nested comment); prose is `# text`.
    let is_block_line = |l: &str| {
        l.strip_prefix('#')
            .is_some_and(|rest| rest.starts_with("  ") || rest.starts_with("- "))
    };
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_block_start(lines[i]) {
            let section = lines[i][1..].trim_end_matches(':').to_owned();
            let mut block = String::new();
            block.push_str(&lines[i][1..]);
            block.push('\n');
            i += 1;
            while i < lines.len() && is_block_line(lines[i]) {
                block.push_str(&lines[i][1..]);
                block.push('\n');
                i += 1;
            }
            blocks.push((section, block));
        } else {
            i += 1;
        }
    }
    let sections: Vec<&str> = blocks.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        sections,
        ["http", "mysql", "redis", "modules"],
        "the example's blocks"
    );
    for file in ["api-password", "mysql-password", "redis-password"] {
        support::write(dir.path(), file, "example-password\n");
    }
    let check = |name: &str, text: &str| {
        let path = support::write(dir.path(), name, text);
        let (code, stdout, stderr) = run(&[
            "--config.check",
            &format!("--config.file={}", path.display()),
        ]);
        assert_eq!(code, Some(0), "{name}:\n{text}\n{stdout}{stderr}");
        stdout
    };
    let mut all = example.clone();
    for (section, block) in &blocks {
        let summary = check(&format!("{section}.yaml"), &format!("{example}\n{block}"));
        if section != "modules" {
            assert!(
                summary.contains(&format!("({section})")),
                "{section}: {summary}"
            );
        }
        all.push('\n');
        all.push_str(block);
    }
    check("all.yaml", &all);
}
