//! The HTTP collector against real in-process servers: exact metric values and results per case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::http as support;

use std::time::Duration;

use fanout_collectors::ErrorClass;
use fanout_collectors::http::{Auth, HttpCollector, HttpSettings};
use fanout_collectors::secret::SecretBytes;
use fanout_collectors::tls::TlsVersion;
use prometheus::proto::MetricType;
use regex::Regex;
use secrecy::SecretString;
use support::*;
use tokio::time::Instant;
use url::Url;

fn https(port: u16, host: &str) -> HttpSettings {
    HttpSettings::new(Url::parse(&format!("https://{host}:{port}/")).unwrap())
}

fn assert_check(outcome: &Probed, needle: &str) {
    match &outcome.result {
        Err(e) if e.class() == ErrorClass::Check => {
            assert!(e.message().contains(needle), "{e}")
        }
        other => panic!("expected a failed check mentioning {needle:?}, got {other:?}"),
    }
}

fn assert_connect(outcome: &Probed) {
    assert!(
        matches!(&outcome.result, Err(e) if matches!(e.class(), ErrorClass::Refused | ErrorClass::Dns | ErrorClass::Connect | ErrorClass::Tls)),
        "{:?}",
        outcome.result
    );
    assert_eq!(value(outcome, "probe_http_status_code"), 0.0);
    assert_eq!(value(outcome, "probe_http_content_length"), 0.0);
    assert_eq!(value(outcome, "probe_http_ssl"), 0.0);
}

async fn text_server(status: u16, body: &'static str) -> std::net::SocketAddr {
    serve(None, move |_| async move { reply(status, body) })
        .await
        .0
}

#[tokio::test]
async fn plain_200() {
    let (addr, log) = serve(None, |_| async { reply(200, "hello world") }).await;
    let outcome = probe(settings(addr, "/path?x=1")).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    for (name, expected) in [
        ("probe_http_status_code", 200.0),
        ("probe_http_content_length", 11.0),
        ("probe_http_uncompressed_body_length", 11.0),
        ("probe_http_redirects", 0.0),
        ("probe_http_ssl", 0.0),
        ("probe_http_version", 1.1),
        ("probe_failed_due_to_regex", 0.0),
        ("probe_ip_protocol", 4.0),
        // blackbox's value for 127.0.0.1: FNV-1a over its 4 octets.
        ("probe_ip_addr_hash", 3_668_918_509.0),
    ] {
        assert_eq!(value(&outcome, name), expected, "{name}");
    }
    for p in PHASES {
        assert!(phase(&outcome, p) >= 0.0);
    }
    // An IP literal is still "looked up", as blackbox does it: a measured, tiny time, which is also
    // the resolve phase.
    let lookup = value(&outcome, "probe_dns_lookup_time_seconds");
    assert!(
        lookup > 0.0 && lookup < 0.1,
        "lookup of a literal took {lookup} s"
    );
    assert_eq!(phase(&outcome, "resolve"), lookup);
    assert_eq!(phase(&outcome, "tls"), 0.0);
    let phases: f64 = PHASES.iter().map(|p| phase(&outcome, p)).sum();
    assert!(value(&outcome, "probe_duration_seconds") >= phases);
    let f = &outcome.families;
    assert!(f.iter().all(|f| f.get_field_type() == MetricType::GAUGE));
    for absent in [
        "probe_success",
        "probe_ssl_earliest_cert_expiry",
        "probe_tls_version_info",
        "probe_http_last_modified_timestamp_seconds",
    ] {
        assert!(f.iter().all(|f| f.name() != absent), "{absent}");
    }

    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/path?x=1");
    assert_eq!(seen.header("host"), Some(addr.to_string().as_str()));
    let agent = format!("fanout_exporter/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(seen.header("user-agent"), Some(agent.as_str()));
    assert_eq!(seen.header("accept-encoding"), None);
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn configured_headers_and_host_override() {
    let (addr, log) = serve(None, |_| async { reply(200, "") }).await;
    let mut s = settings(addr, "/");
    for (name, value) in [
        ("Host", "example.test"),
        ("User-Agent", "mine"),
        ("X-A", "1"),
    ] {
        s.headers.insert(name.into(), value.into());
    }
    assert!(probe(s).await.result.is_ok());
    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.header("host"), Some("example.test"));
    assert_eq!(seen.header("user-agent"), Some("mine"));
    assert_eq!(seen.header("x-a"), Some("1"));
}

#[tokio::test]
async fn tls_with_trusted_ca() {
    let pki = Pki::new("test CA");
    let tls = server_tls(&pki.server_leaf(), None, false);
    let (addr, _) = serve(Some(tls), |_| async { reply(200, "secure") }).await;
    let mut s = https(addr.port(), "localhost");
    s.tls.ca_pem = Some(pki.ca_pem.clone().into_bytes());
    let outcome = probe(s).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(value(&outcome, "probe_http_ssl"), 1.0);
    assert_eq!(value(&outcome, "probe_http_status_code"), 200.0);
    assert_eq!(value(&outcome, "probe_ip_protocol"), 4.0);
    // `localhost` looked up, IPv4 chosen: the hash of 127.0.0.1, as for the literal.
    assert_eq!(value(&outcome, "probe_ip_addr_hash"), 3_668_918_509.0);
    assert_eq!(
        value(&outcome, "probe_ssl_earliest_cert_expiry"),
        LEAF_NOT_AFTER
    );
    assert_eq!(
        value(&outcome, "probe_ssl_last_chain_expiry_timestamp_seconds"),
        LEAF_NOT_AFTER
    );
    let info = |v| {
        gauge(
            &outcome.families,
            "probe_tls_version_info",
            &[("version", v)],
        )
    };
    assert_eq!(info("TLS 1.3"), Some(1.0));
    assert_eq!(info("TLS 1.2"), None);
    assert!(phase(&outcome, "tls") > 0.0);
}

#[tokio::test]
async fn tls_versions() {
    let pki = Pki::new("test CA");
    let tls = server_tls(&pki.server_leaf(), None, true);
    let (addr, _) = serve(Some(tls), |_| async { reply(200, "old") }).await;
    let mut s = https(addr.port(), "localhost");
    s.tls.ca_pem = Some(pki.ca_pem.clone().into_bytes());
    let outcome = probe(s.clone()).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let info = gauge(
        &outcome.families,
        "probe_tls_version_info",
        &[("version", "TLS 1.2")],
    );
    assert_eq!(info, Some(1.0));

    s.tls.min_version = TlsVersion::Tls13;
    assert_connect(&probe(s).await);
}

#[tokio::test]
async fn tls_server_name_from_settings_or_host_header() {
    let pki = Pki::new("test CA");
    let tls = server_tls(&pki.server_leaf(), None, false);
    let (addr, _) = serve(Some(tls), |_| async { reply(200, "") }).await;
    // The leaf names only "localhost", so the IP literal alone does not verify.
    let mut s = https(addr.port(), "127.0.0.1");
    s.tls.ca_pem = Some(pki.ca_pem.clone().into_bytes());
    assert_connect(&probe(s.clone()).await);

    let mut by_header = s.clone();
    by_header.headers.insert("Host".into(), "localhost".into());
    let outcome = probe(by_header).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);

    s.tls.server_name = Some("localhost".into());
    let outcome = probe(s).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

#[tokio::test]
async fn tls_untrusted_then_insecure() {
    let other = Pki::new("someone else's CA");
    let tls = server_tls(&other.server_leaf(), None, false);
    let (addr, _) = serve(Some(tls), |_| async { reply(200, "") }).await;

    let mut s = https(addr.port(), "localhost");
    assert_connect(&probe(s.clone()).await); // bundled web roots
    s.tls.ca_pem = Some(Pki::new("test CA").ca_pem.into_bytes());
    let outcome = probe(s.clone()).await;
    assert_connect(&outcome);
    let message = outcome.result.unwrap_err().to_string();
    assert!(
        message.contains(&format!("localhost:{}", addr.port())),
        "{message}"
    );
    assert!(
        outcome
            .families
            .iter()
            .all(|f| f.name() != "probe_ssl_earliest_cert_expiry")
    );

    s.tls.insecure_skip_verify = true;
    let outcome = probe(s).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(value(&outcome, "probe_http_ssl"), 1.0);
    assert_eq!(
        value(&outcome, "probe_ssl_earliest_cert_expiry"),
        LEAF_NOT_AFTER
    );
}

#[tokio::test]
async fn mutual_tls() {
    let pki = Pki::new("test CA");
    let tls = server_tls(&pki.server_leaf(), Some(&pki), false);
    let (addr, _) = serve(Some(tls), |_| async { reply(200, "") }).await;
    let client = pki.client_leaf();
    let with_cert = |mut s: HttpSettings| {
        s.tls.cert_pem = Some(client.cert_pem.clone().into_bytes());
        s.tls.key_pem = Some(SecretBytes::from(client.key_pem.clone().into_bytes()));
        s
    };

    let mut trusted = https(addr.port(), "localhost");
    trusted.tls.ca_pem = Some(pki.ca_pem.clone().into_bytes());
    let outcome = probe(with_cert(trusted.clone())).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);

    // The client certificate does not depend on a custom CA being configured.
    let mut insecure = https(addr.port(), "localhost");
    insecure.tls.insecure_skip_verify = true;
    let outcome = probe(with_cert(insecure)).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);

    // Without a certificate the server refuses us (after the handshake, under TLS 1.3).
    let outcome = probe(trusted).await;
    assert!(outcome.result.is_err());
    assert_eq!(value(&outcome, "probe_http_status_code"), 0.0);
}

#[tokio::test]
async fn status_codes() {
    let addr = text_server(404, "nope").await;
    let outcome = probe(settings(addr, "/")).await;
    assert_check(&outcome, "status code 404 is not 2xx");
    assert_eq!(value(&outcome, "probe_http_status_code"), 404.0);
    assert_eq!(value(&outcome, "probe_http_uncompressed_body_length"), 4.0);

    let mut s = settings(addr, "/");
    s.valid_status_codes = vec![404];
    assert!(probe(s).await.result.is_ok());

    let addr = text_server(500, "").await;
    let mut s = settings(addr, "/");
    s.valid_status_codes = vec![200, 404];
    assert_check(
        &probe(s).await,
        "status code 500 is not in valid_status_codes",
    );
}

#[tokio::test]
async fn redirect_chain_is_followed() {
    let (addr, log) = serve(None, |seen| async move {
        match seen.target.as_str() {
            "/a" => redirect(302, "/b"),
            "/b" => redirect(301, &format!("http://{}/c", seen.header("host").unwrap())),
            _ => reply(200, "done"),
        }
    })
    .await;
    let outcome = probe(settings(addr, "/a")).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(value(&outcome, "probe_http_redirects"), 2.0);
    assert_eq!(value(&outcome, "probe_http_status_code"), 200.0);
    assert_eq!(value(&outcome, "probe_http_content_length"), 4.0);
    assert_eq!(value(&outcome, "probe_http_uncompressed_body_length"), 4.0);
    let targets: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(targets, ["/a", "/b", "/c"]);
}

#[tokio::test]
async fn redirect_loop_stops_at_the_cap() {
    let (addr, log) = serve(None, |_| async { redirect(302, "/loop") }).await;
    let mut s = settings(addr, "/loop");
    s.max_redirects = 3;
    let outcome = probe(s).await;
    assert_check(&outcome, "stopped after 3 redirects");
    assert_eq!(value(&outcome, "probe_http_redirects"), 3.0);
    assert_eq!(value(&outcome, "probe_http_status_code"), 302.0);
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn redirects_not_followed() {
    let (addr, _) = serve(None, |_| async { redirect(302, "/elsewhere") }).await;
    let mut s = settings(addr, "/");
    s.follow_redirects = false;
    let outcome = probe(s).await;
    assert_check(&outcome, "status code 302 is not 2xx");
    assert_eq!(value(&outcome, "probe_http_status_code"), 302.0);
    assert_eq!(value(&outcome, "probe_http_redirects"), 0.0);
}

#[tokio::test]
async fn post_body_and_method_across_redirects() {
    let (addr, log) = serve(None, |seen| async move {
        match seen.target.as_str() {
            "/see-other" => redirect(303, "/after"),
            "/temporary" => redirect(307, "/after"),
            _ => reply(200, "ok"),
        }
    })
    .await;
    for path in ["/see-other", "/temporary"] {
        let mut s = settings(addr, path);
        s.method = "POST".into();
        s.body = Some("payload".into());
        assert!(probe(s).await.result.is_ok());
    }
    let seen: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.method.to_string(), s.target.clone(), s.body.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST".into(), "/see-other".into(), "payload".into()),
            ("GET".into(), "/after".into(), "".into()),
            ("POST".into(), "/temporary".into(), "payload".into()),
            ("POST".into(), "/after".into(), "payload".into()),
        ]
    );
    assert_eq!(log.lock().unwrap()[0].header("content-length"), Some("7"));
}

async fn auth_server(expected: &'static str) -> std::net::SocketAddr {
    serve(None, move |seen| async move {
        match seen.header("authorization") {
            Some(got) if got == expected => reply(200, "welcome"),
            _ => reply(401, "who are you"),
        }
    })
    .await
    .0
}

#[tokio::test]
async fn basic_auth_and_bearer_reach_the_server() {
    let addr = auth_server("Basic dXNlcjpzM2NyM3Q=").await; // user:s3cr3t
    let mut s = settings(addr, "/");
    s.auth = Some(Auth::Basic {
        username: "user".into(),
        password: SecretString::from("s3cr3t"),
    });
    assert!(probe(s).await.result.is_ok());

    let addr = auth_server("Bearer t0ken").await;
    let mut s = settings(addr, "/");
    s.auth = Some(Auth::Bearer(SecretString::from("t0ken")));
    assert!(probe(s.clone()).await.result.is_ok());
    s.auth = Some(Auth::Bearer(SecretString::from("wrong")));
    // A 401 is the server refusing the credentials: its own class, not a failed check.
    match &probe(s).await.result {
        Err(e) if e.class() == ErrorClass::Auth => assert_eq!(
            e.message(),
            "status code 401 is not 2xx: the server rejected the configured credentials"
        ),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn credentials_stay_on_the_configured_host() {
    let (addr, log) = serve(None, |seen| async move {
        match seen.target.as_str() {
            "/start" => redirect(
                302,
                &format!(
                    "http://localhost:{}/end",
                    seen.header("host").unwrap().rsplit(':').next().unwrap()
                ),
            ),
            _ => reply(200, ""),
        }
    })
    .await;
    let mut s = settings(addr, "/start");
    s.auth = Some(Auth::Bearer(SecretString::from("t0ken")));
    assert!(probe(s).await.result.is_ok());
    let auth: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(auth, [Some("Bearer t0ken".to_owned()), None]);
}

fn regexps(patterns: &[&str]) -> Vec<Regex> {
    patterns.iter().map(|p| Regex::new(p).unwrap()).collect()
}

#[tokio::test]
async fn body_regexps() {
    let addr = text_server(200, "all systems nominal").await;
    let run = |matches: &[&str], not_matches: &[&str]| {
        let mut s = settings(addr, "/");
        s.fail_if_body_matches_regexp = regexps(matches);
        s.fail_if_body_not_matches_regexp = regexps(not_matches);
        probe(s)
    };

    let outcome = run(&["nominal"], &[]).await;
    assert_check(&outcome, "fail_if_body_matches_regexp \"nominal\"");
    assert_eq!(value(&outcome, "probe_failed_due_to_regex"), 1.0);

    let outcome = run(&["error"], &["systems", "^all"]).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(value(&outcome, "probe_failed_due_to_regex"), 0.0);
    assert_eq!(value(&outcome, "probe_http_uncompressed_body_length"), 19.0);

    let outcome = run(&[], &["systems", "healthy"]).await;
    assert_check(&outcome, "fail_if_body_not_matches_regexp \"healthy\"");
    assert_eq!(value(&outcome, "probe_failed_due_to_regex"), 1.0);
}

#[tokio::test]
async fn body_size_limit() {
    let addr = text_server(200, "hello world").await;
    let mut s = settings(addr, "/");
    s.body_size_limit = Some(5);
    let outcome = probe(s.clone()).await;
    assert_check(&outcome, "body_size_limit");
    assert_eq!(value(&outcome, "probe_http_uncompressed_body_length"), 5.0);
    assert_eq!(value(&outcome, "probe_http_content_length"), 11.0);

    s.body_size_limit = Some(11);
    assert!(probe(s).await.result.is_ok());
}

#[tokio::test]
async fn regexp_buffer_is_capped_without_a_size_limit() {
    let size = (16 << 20) + 1;
    let big = "a".repeat(size);
    let (addr, _) = serve(None, move |_| {
        let big = big.clone();
        async move { reply(200, &big) }
    })
    .await;
    // Only counted, not kept: no cap.
    let outcome = probe(settings(addr, "/")).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(
        value(&outcome, "probe_http_uncompressed_body_length"),
        size as f64
    );

    let mut s = settings(addr, "/");
    s.fail_if_body_not_matches_regexp = regexps(&["a"]);
    let outcome = probe(s.clone()).await;
    assert_check(&outcome, "16 MiB kept for regexp matching");
    assert_eq!(
        value(&outcome, "probe_http_uncompressed_body_length"),
        (16 << 20) as f64
    );
    assert_eq!(value(&outcome, "probe_failed_due_to_regex"), 0.0);

    s.body_size_limit = Some(32 << 20);
    assert!(probe(s).await.result.is_ok());
}

#[tokio::test]
async fn ssl_requirements() {
    let addr = text_server(200, "").await;
    let mut s = settings(addr, "/");
    s.fail_if_not_ssl = true;
    assert_check(&probe(s).await, "fail_if_not_ssl");

    let pki = Pki::new("test CA");
    let tls = server_tls(&pki.server_leaf(), None, false);
    let (addr, _) = serve(Some(tls), |_| async { reply(200, "") }).await;
    let mut s = https(addr.port(), "localhost");
    s.tls.ca_pem = Some(pki.ca_pem.clone().into_bytes());
    s.fail_if_not_ssl = true;
    assert!(probe(s.clone()).await.result.is_ok());
    s.fail_if_ssl = true;
    assert_check(&probe(s).await, "fail_if_ssl");
}

#[tokio::test]
async fn http_1_0_without_content_length() {
    let addr =
        raw(b"HTTP/1.0 200 OK\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nhello").await;
    let outcome = probe(settings(addr, "/")).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(value(&outcome, "probe_http_version"), 1.0);
    assert_eq!(value(&outcome, "probe_http_content_length"), -1.0);
    assert_eq!(value(&outcome, "probe_http_uncompressed_body_length"), 5.0);
    assert_eq!(
        value(&outcome, "probe_http_last_modified_timestamp_seconds"),
        784_111_777.0
    );

    let mut s = settings(addr, "/");
    s.valid_http_versions = vec!["HTTP/1.1".into()];
    assert_check(
        &probe(s.clone()).await,
        "HTTP/1.0 is not in valid_http_versions",
    );
    s.valid_http_versions.push("HTTP/1.0".into());
    assert!(probe(s).await.result.is_ok());
}

async fn assert_times_out(addr: std::net::SocketAddr) {
    let budget = Duration::from_millis(500);
    let start = Instant::now();
    let outcome = probe_until(settings(addr, "/"), start + budget).await;
    let elapsed = start.elapsed();
    assert!(elapsed < budget + Duration::from_secs(2), "{elapsed:?}");
    assert!(
        matches!(&outcome.result, Err(e) if e.class() == ErrorClass::Timeout),
        "{:?}",
        outcome.result
    );
    assert_eq!(value(&outcome, "probe_http_status_code"), 0.0);
    assert_eq!(value(&outcome, "probe_http_content_length"), 0.0);
    for p in PHASES {
        assert!(phase(&outcome, p) >= 0.0);
    }
    // The phase cut off by the deadline is still accounted for.
    assert!(phase(&outcome, "processing") > 0.2);
}

#[tokio::test]
async fn slow_server_times_out() {
    let (addr, _) = serve(None, |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        reply(200, "too late")
    })
    .await;
    assert_times_out(addr).await;
}

#[tokio::test]
async fn silent_listener_times_out() {
    assert_times_out(silent().await).await;
}

#[tokio::test]
async fn refused_port() {
    let addr = closed_port().await;
    let outcome = probe(settings(addr, "/")).await;
    assert_connect(&outcome);
    assert_eq!(value(&outcome, "probe_http_uncompressed_body_length"), 0.0);
    assert_eq!(value(&outcome, "probe_http_version"), 0.0);
    for p in PHASES {
        assert!(phase(&outcome, p) >= 0.0);
    }
}

#[tokio::test]
async fn unresolvable_host_reports_lookup_time_and_no_protocol() {
    // `.invalid` never resolves (RFC 6761); the lookup fails fast without any network.
    let url = Url::parse("http://fanout-exporter-test.invalid/").unwrap();
    let outcome = probe(HttpSettings::new(url)).await;
    assert_connect(&outcome);
    assert_eq!(value(&outcome, "probe_ip_protocol"), 0.0);
    assert_eq!(value(&outcome, "probe_ip_addr_hash"), 0.0);
    assert!(value(&outcome, "probe_dns_lookup_time_seconds") >= 0.0);
    assert_eq!(
        value(&outcome, "probe_dns_lookup_time_seconds"),
        phase(&outcome, "resolve")
    );
}

#[tokio::test]
async fn errors_never_show_credentials() {
    let addr = closed_port().await;
    let url = format!("http://user:hunter2@{addr}/?token=abc123");
    let mut settings = HttpSettings::new(Url::parse(&url).unwrap());
    settings
        .headers
        .insert("X-Api-Key".into(), "k3y-value".into());
    let debug = format!("{settings:?}");
    assert!(
        debug.contains("X-Api-Key") && !debug.contains("k3y-value"),
        "{debug}"
    );
    assert!(
        !debug.contains("hunter2") && !debug.contains("abc123"),
        "{debug}"
    );
    let outcome = probe(settings).await;
    let message = outcome.result.unwrap_err().to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(
        !message.contains("hunter2") && !message.contains("abc123"),
        "{message}"
    );
}

#[test]
fn bad_settings_are_refused() {
    let url = Url::parse("https://localhost/").unwrap();
    let new = |f: &dyn Fn(&mut HttpSettings)| {
        let mut s = HttpSettings::new(url.clone());
        f(&mut s);
        HttpCollector::new(s).unwrap_err().to_string()
    };
    let pki = Pki::new("test CA");
    let client = pki.client_leaf();

    assert!(new(&|s| s.tls.ca_pem = Some(b"not a pem".to_vec())).contains("tls.ca_file"));
    let garbled_key =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
    let message = new(&|s| {
        s.tls.cert_pem = Some(client.cert_pem.clone().into_bytes());
        s.tls.key_pem = Some(SecretBytes::from(garbled_key.as_bytes().to_vec()));
    });
    assert!(message.contains("tls"), "{message}");
    assert!(!message.contains("c2VjcmV0"), "{message}");
    let message = new(&|s| s.tls.cert_pem = Some(client.cert_pem.clone().into_bytes()));
    assert!(message.contains("together"), "{message}");
    assert!(new(&|s| s.method = "BAD METHOD".into()).contains("method"));
    assert!(new(&|s| s.url = Url::parse("ftp://localhost/").unwrap()).contains("url"));
    let message = new(&|s| {
        s.headers
            .insert("X-Token".into(), "line\nbreak-secret".into());
    });
    assert!(!message.contains("secret"), "{message}");
}
