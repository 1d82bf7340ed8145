//! `--web.config.file` against the built binary: TLS, client certificates, basic authentication,
//! headers, rate limit, certificate rotation, bad files, and the real promtool's verdict on the same
//! files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fanout_testkit::exporter::{Exporter, get, get_tls, promtool, try_get, write};
use fanout_testkit::http::Pki;
use rcgen::ExtendedKeyUsagePurpose;

/// A config whose one target is down: what is served does not matter here, only how.
const CONFIG: &str = "http:\n  down:\n    url: http://127.0.0.1:1/\n";

fn start(dir: &Path, web: &str, extra: &[&str]) -> Exporter {
    let config = write(dir, "config.yml", CONFIG);
    let web = write(dir, "web.yml", web);
    let mut args = vec![
        "--web.listen-address",
        "127.0.0.1:0",
        "--config.file",
        config.to_str().unwrap(),
        "--web.config.file",
        web.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Exporter::start(&args)
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Write a server leaf of `pki` as tls/server.crt and tls/server.key under `dir`.
fn write_server_leaf(dir: &Path, pki: &Pki) {
    write_leaf_as(dir, pki, "server");
}

/// Write a server leaf of `pki` as tls/<name>.crt and tls/<name>.key under `dir`.
fn write_leaf_as(dir: &Path, pki: &Pki, name: &str) {
    let leaf = pki.server_leaf();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join(format!("tls/{name}.crt")), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join(format!("tls/{name}.key")), &leaf.key_pem).unwrap();
}

#[test]
fn tls_serves_every_endpoint_with_paths_relative_to_the_web_config_and_plain_http_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("web test CA");
    write_server_leaf(dir.path(), &pki);
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n",
        &[],
    );
    for path in ["/metrics", "/-/healthy", "/", "/probe?target=down"] {
        let response = get_tls(exporter.address, path, &[], pki.client(None)).unwrap();
        assert_eq!(response.status, 200, "{path}");
    }
    let metrics = get_tls(exporter.address, "/metrics", &[], pki.client(None)).unwrap();
    assert!(
        metrics.text().contains("probe_success{"),
        "{}",
        metrics.text()
    );
    // A plain-HTTP client gets no HTTP answer from a TLS port.
    let plain = try_get(exporter.address, "/metrics");
    assert!(
        plain.is_err(),
        "plain HTTP was answered: {:?}",
        plain.map(|r| r.status)
    );
    assert!(
        exporter.log().iter().any(|l| l.contains("tls=true")),
        "{:?}",
        exporter.log()
    );
}

#[test]
fn client_certificates_must_come_from_the_ca_and_carry_an_allowed_san() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("web test CA");
    let other = Pki::new("someone else's CA");
    write_server_leaf(dir.path(), &pki);
    std::fs::write(dir.path().join("tls/clients.pem"), &pki.ca_pem).unwrap();
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: tls/clients.pem\n  client_allowed_sans: [prometheus.monitoring]\n",
        &[],
    );
    let allowed = pki.leaf(
        &["prometheus.monitoring"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let ok = get_tls(
        exporter.address,
        "/metrics",
        &[],
        pki.client(Some(&allowed)),
    )
    .unwrap();
    assert_eq!(ok.status, 200);

    let refused = |client, what: &str| match get_tls(exporter.address, "/metrics", &[], client) {
        Ok(response) => panic!("{what}: answered {}", response.status),
        Err(why) => eprintln!("{what}: refused ({why})"),
    };
    refused(pki.client(None), "no client certificate");
    let foreign = other.leaf(
        &["prometheus.monitoring"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    refused(pki.client(Some(&foreign)), "a certificate of another CA");
    let wrong_san = pki.leaf(
        &["intruder.monitoring"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    refused(
        pki.client(Some(&wrong_san)),
        "a certificate without an allowed SAN",
    );
}

#[test]
fn basic_authentication_covers_every_endpoint_and_configured_headers_reach_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("correct horse", 6).unwrap();
    let exporter = start(
        dir.path(),
        &format!(
            "basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n"
        ),
        &[],
    );
    let good = basic("prometheus", "correct horse");
    for path in ["/metrics", "/-/healthy", "/", "/config"] {
        let response = get(exporter.address, path, &[("Authorization", &good)]);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("x-frame-options"), Some("deny"), "{path}");
        let refused = get(exporter.address, path, &[]);
        assert_eq!(refused.status, 401, "{path} without credentials");
        assert_eq!(refused.header("www-authenticate"), Some("Basic"));
        assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));
    }
    for (user, password) in [("prometheus", "wrong"), ("nobody", "correct horse")] {
        let response = get(
            exporter.address,
            "/metrics",
            &[("Authorization", &basic(user, password))],
        );
        assert_eq!(response.status, 401, "{user}:{password}");
    }
    let log = exporter.log().join("\n");
    assert!(!log.contains(&hash), "the hash was logged:\n{log}");
}

#[test]
fn the_rate_limit_answers_429_past_its_burst() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(dir.path(), "rate_limit:\n  interval: 1m\n  burst: 2\n", &[]);
    let statuses: Vec<u16> = (0..4)
        .map(|_| get(exporter.address, "/-/healthy", &[]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[test]
fn rotated_certificates_are_served_without_a_restart_and_a_broken_rotation_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::new("first CA");
    write_server_leaf(dir.path(), &first);
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n",
        &[],
    );
    assert!(get_tls(exporter.address, "/-/healthy", &[], first.client(None)).is_ok());

    let second = Pki::new("second CA");
    write_server_leaf(dir.path(), &second);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_tls(exporter.address, "/-/healthy", &[], second.client(None)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        get_tls(exporter.address, "/-/healthy", &[], first.client(None)).is_err(),
        "the old certificate is still served"
    );

    // A half-written rotation: the new certificate does not match the key on disk.
    let third = Pki::new("third CA");
    std::fs::write(
        dir.path().join("tls/server.crt"),
        third.server_leaf().cert_pem,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exporter
        .log()
        .iter()
        .any(|l| l.contains("changed TLS files do not load"))
    {
        assert!(Instant::now() < deadline, "{:?}", exporter.log());
        // Connections are what make the files be looked at.
        let _ = get_tls(exporter.address, "/-/healthy", &[], second.client(None));
        std::thread::sleep(Duration::from_millis(200));
    }
    let still = get_tls(exporter.address, "/-/healthy", &[], second.client(None)).unwrap();
    assert_eq!(still.status, 200);
}

/// Bad web configuration files: each is refused by `--config.check` and at start (exit 2, before
/// listening) with the file, the line and the key in the message.
#[test]
fn bad_web_configs_are_refused_before_anything_listens_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("web test CA");
    write_server_leaf(dir.path(), &pki);
    std::fs::write(dir.path().join("tls/junk.key"), "not a key\n").unwrap();
    let tls = "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "basic_auth_users:\n  prometheus: not-a-hash\n".into(),
            "web.yml:2: basic_auth_users.prometheus",
            "not a bcrypt hash",
        ),
        (
            "tls_server_config:\n  cert_file: tls/missing.crt\n  key_file: tls/server.key\n".into(),
            "web.yml:2: tls_server_config.cert_file",
            "cannot read",
        ),
        (
            "tls_server_config:\n  cert_file: /dev/zero\n  key_file: tls/server.key\n".into(),
            "web.yml:2: tls_server_config.cert_file",
            "not a regular file",
        ),
        (
            "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/junk.key\n".into(),
            "web.yml:3: tls_server_config.key_file",
            "no readable",
        ),
        (
            "tls_server_config:\n  key_file: tls/server.key\n".into(),
            "tls_server_config.cert_file",
            "missing",
        ),
        (
            format!("{tls}  min_version: TLS10\n"),
            "web.yml:4: tls_server_config.min_version",
            "TLS 1.2 and 1.3 only",
        ),
        (
            format!("{tls}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"),
            "web.yml:4: tls_server_config.cipher_suites",
            "not implemented by rustls",
        ),
        (
            format!("{tls}  client_ca_file: tls/server.crt\n"),
            "tls_server_config.client_auth_type",
            "no policy",
        ),
        (
            format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"),
            "tls_server_config.client_ca_file",
            "missing",
        ),
        (
            "tls_server_config:\n  certfile: tls/server.crt\n".into(),
            "web.yml:2",
            "unknown field `certfile`",
        ),
        (
            "http_server_config:\n  headers:\n    Server: nginx\n".into(),
            "web.yml:3: http_server_config.headers.Server",
            "cannot be set",
        ),
    ];
    let config = write(dir.path(), "config.yml", CONFIG);
    for (text, place, message) in cases {
        let web = write(dir.path(), "web.yml", &text);
        for check in [true, false] {
            let port = fanout_testkit::exporter::free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut command = Command::new(fanout_testkit::exporter::bin());
            command.args([
                "--web.listen-address",
                &listen,
                "--config.file",
                config.to_str().unwrap(),
                "--web.config.file",
                web.to_str().unwrap(),
            ]);
            if check {
                command.arg("--config.check");
            }
            let output = command.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{text}\n{stderr}");
            assert!(
                stderr.contains(place) && stderr.contains(message),
                "expected {place:?} and {message:?} for\n{text}\ngot:\n{stderr}"
            );
            assert!(!stderr.contains("listening"), "{stderr}");
        }
    }
}

/// The same files given to the real promtool (`promtool check web-config`): where both know the
/// option, both agree on good and bad. Ours also refuses what rustls cannot do, which promtool
/// (Go's TLS) accepts; those are not compared.
#[test]
fn promtool_and_we_agree_on_web_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("web test CA");
    write_server_leaf(dir.path(), &pki);
    std::fs::write(dir.path().join("tls/clients.pem"), &pki.ca_pem).unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let tls = "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n";
    let cases = [
        (tls.to_owned(), true),
        (
            format!(
                "{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: tls/clients.pem\n  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\nbasic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  http2: false\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"
            ),
            true,
        ),
        (format!("basic_auth_users:\n  prometheus: {hash}\n"), true),
        (
            "tls_server_config:\n  cert_file: tls/missing.crt\n  key_file: tls/server.key\n".into(),
            false,
        ),
        (format!("{tls}  client_ca_file: tls/clients.pem\n"), false),
        (format!("{tls}  client_auth_type: Sometimes\n"), false),
        (format!("{tls}  cipher_suites: [TLS_INVENTED]\n"), false),
        ("tls_server_config:\n  certfile: x\n".into(), false),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(),
            false,
        ),
    ];
    let promtool = promtool();
    for (text, good) in cases {
        let web = write(dir.path(), "web.yml", &text);
        let theirs = Command::new(&promtool)
            .args(["check", "web-config", web.to_str().unwrap()])
            .output()
            .unwrap();
        let ours = fanout_exporter::web::load(&web);
        assert_eq!(
            theirs.status.success(),
            good,
            "promtool on\n{text}\n{}",
            String::from_utf8_lossy(&theirs.stdout)
        );
        assert_eq!(
            ours.is_ok(),
            good,
            "ours on\n{text}\n{:?}",
            ours.err().map(|e| e.to_string())
        );
    }
}

/// `fanout_exporter healthcheck` given the server's web configuration: TLS is spoken, and basic
/// authentication's challenge counts as alive (the container healthcheck has no password).
#[test]
fn the_healthcheck_subcommand_speaks_tls_and_takes_an_authentication_challenge_as_alive() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("web test CA");
    write_server_leaf(dir.path(), &pki);
    let hash = bcrypt::hash("pw", 4).unwrap();
    let exporter = start(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
        &[],
    );
    let listen = format!("--web.listen-address={}", exporter.address);
    let web = format!("--web.config.file={}", dir.path().join("web.yml").display());
    let run = |args: &[&str]| {
        Command::new(fanout_testkit::exporter::bin())
            .args(args)
            .output()
            .unwrap()
    };
    let healthy = run(&["healthcheck", &listen, &web]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    // Without the web configuration it speaks plain HTTP to a TLS port, and says so.
    let plain = run(&["healthcheck", &listen]);
    assert!(!plain.status.success());
    let stopped = exporter.terminate();
    assert!(stopped.success());
    let gone = run(&["healthcheck", &listen, &web]);
    assert!(!gone.status.success());
}

/// The README's web configuration example, with certificates where it says: promtool and we accept
/// it, and the exporter serves it to a client with a certificate of the CA and the password, and to
/// no other.
#[test]
fn the_readme_web_config_example_is_accepted_and_works_as_documented() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let at = readme
        .find("# /etc/fanout_exporter/web.yml")
        .expect("the example in the README");
    let example = &readme[at..];
    let example = &example[..example.find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("README CA");
    write_leaf_as(dir.path(), &pki, "tls");
    std::fs::write(dir.path().join("tls/clients-ca.crt"), &pki.ca_pem).unwrap();
    let web = write(dir.path(), "web.yml", example);
    let promtool = Command::new(promtool())
        .args(["check", "web-config", web.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        promtool.status.success(),
        "{}",
        String::from_utf8_lossy(&promtool.stdout)
    );
    let exporter = start(dir.path(), example, &[]);
    let prometheus = pki.leaf(
        &["prometheus.monitoring.svc"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let password = basic("prometheus", "change-me");
    let served = get_tls(
        exporter.address,
        "/metrics",
        &[("Authorization", &password)],
        pki.client(Some(&prometheus)),
    )
    .unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(served.header("x-frame-options"), Some("deny"));
    let no_password = get_tls(
        exporter.address,
        "/metrics",
        &[],
        pki.client(Some(&prometheus)),
    )
    .unwrap();
    assert_eq!(no_password.status, 401);
    assert!(
        get_tls(
            exporter.address,
            "/metrics",
            &[("Authorization", &password)],
            pki.client(None)
        )
        .is_err()
    );
}

/// A reload (SIGHUP or `/-/reload`) re-reads the web configuration with the configuration: a new
/// password takes effect, a bad file keeps the running one, and a TLS change is reported as needing
/// a restart instead of being half applied.
#[test]
fn a_reload_rereads_the_web_configuration_and_a_bad_one_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let users = |password: &str| {
        format!(
            "basic_auth_users:\n  prometheus: {}\n",
            bcrypt::hash(password, 4).unwrap()
        )
    };
    let exporter = start(dir.path(), &users("one"), &[]);
    let status = |password: &str| {
        get(
            exporter.address,
            "/-/healthy",
            &[("Authorization", &basic("prometheus", password))],
        )
        .status
    };
    let reload = |password: &str| {
        let response = fanout_testkit::exporter::request(
            exporter.address,
            "POST",
            "/-/reload",
            &[("Authorization", &basic("prometheus", password))],
        );
        (response.status, response.text())
    };
    assert_eq!(status("one"), 200);
    write(dir.path(), "web.yml", &users("two"));
    let (code, text) = reload("one");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("web configuration reloaded"), "{text}");
    assert_eq!((status("one"), status("two")), (401, 200));

    write(
        dir.path(),
        "web.yml",
        "basic_auth_users:\n  prometheus: plain-text\n",
    );
    let (code, text) = reload("two");
    assert_eq!(code, 500, "{text}");
    assert!(
        text.contains("web.yml:2: basic_auth_users.prometheus") && !text.contains("plain-text"),
        "{text}"
    );
    assert_eq!(status("two"), 200, "the running web configuration stays");

    write(
        dir.path(),
        "web.yml",
        &format!(
            "{}tls_server_config:\n  cert_file: tls/nowhere.crt\n  key_file: tls/nowhere.key\n",
            users("two")
        ),
    );
    let (code, text) = reload("two");
    assert_eq!(
        code, 500,
        "a TLS section is checked even though it waits for a restart: {text}"
    );
    let pki = Pki::new("later CA");
    write_leaf_as(dir.path(), &pki, "nowhere");
    let (code, text) = reload("two");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("need a restart"), "{text}");
    assert_eq!(status("two"), 200, "still plain HTTP until restarted");
}
