//! Why a target is down, against real components: every kind, pointed at a closed port, an
//! unresolvable name, another kind's real server, a real server with the wrong password, a TLS server
//! with an untrusted certificate, a listener that never answers and a port whose connect never
//! completes, reports the class and a message that says the true cause (issue 14).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fanout_collectors::http::{HttpCollector, HttpSettings};
use fanout_collectors::mysql::{Address, MysqlCollector, MysqlSettings};
use fanout_collectors::redis::{ParsedUrl, RedisCollector, RedisSettings};
use fanout_collectors::{CollectError, Collector, ErrorClass, Outcome};
use fanout_testkit::http::{self as support, Pki, reply, server_tls};
use fanout_testkit::mariadb::{EXPORTER_PASSWORD, shared_pair};
use fanout_testkit::redis::{Opts, Redis};
use secrecy::SecretString;
use tokio::time::Instant;
use url::Url;

/// The deadline of the timeout cases, as the issue words it.
const BUDGET: Duration = Duration::from_millis(2500);

/// A password no message may ever show.
const WRONG_PASSWORD: &str = "Wr0ng-canary-pw";

/// The password of the redis-server started here.
const REDIS_PASSWORD: &str = "redis-canary-pw";

fn mysql(host: &str, port: u16, password: &str) -> MysqlCollector {
    let mut settings = MysqlSettings::new(
        Address::Tcp {
            host: host.into(),
            port,
        },
        "exporter",
    );
    settings.password = Some(SecretString::from(password.to_owned()));
    MysqlCollector::new(settings).unwrap()
}

fn redis(url: &str) -> RedisCollector {
    RedisCollector::new(RedisSettings::new(ParsedUrl::parse(url).unwrap())).unwrap()
}

fn http(url: &str) -> HttpCollector {
    HttpCollector::new(HttpSettings::new(Url::parse(url).unwrap())).unwrap()
}

/// Collect once under `budget`; the outcome and how long it took.
async fn collect(collector: &dyn Collector, budget: Duration) -> (Outcome, Duration) {
    let start = Instant::now();
    let outcome = collector.collect(start + budget).await;
    (outcome, start.elapsed())
}

/// The one error of a down target, of `class`, whose message has every one of `needles` and no
/// password.
fn assert_down(what: &str, outcome: &Outcome, class: ErrorClass, needles: &[&str]) -> String {
    assert!(!outcome.up, "{what}: up");
    let [error] = outcome.errors.as_slice() else {
        panic!("{what}: expected one error, got {:?}", outcome.errors)
    };
    assert_class(what, error, class, needles)
}

fn assert_class(what: &str, error: &CollectError, class: ErrorClass, needles: &[&str]) -> String {
    let message = error.to_string();
    // Shown with --nocapture: what an operator reads for each case.
    eprintln!("{what}: [{}] {message}", error.class());
    assert_eq!(error.class(), class, "{what}: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{what}: {needle:?} missing from: {message}"
        );
    }
    for secret in [WRONG_PASSWORD, REDIS_PASSWORD, EXPORTER_PASSWORD] {
        assert!(
            !message.contains(secret),
            "{what}: password shown: {message}"
        );
    }
    message
}

fn redis_with_password() -> Redis {
    Redis::start(Opts {
        password: Some(REDIS_PASSWORD.into()),
        ..Opts::default()
    })
}

#[tokio::test]
async fn a_closed_port_is_refused_for_every_kind() {
    let port = support::closed_port().await.port();
    let needle = format!("127.0.0.1:{port} refused the connection: nothing listens there");
    let collectors: [(&str, Box<dyn Collector>); 3] = [
        ("mysql", Box::new(mysql("127.0.0.1", port, WRONG_PASSWORD))),
        (
            "redis",
            Box::new(redis(&format!("redis://127.0.0.1:{port}"))),
        ),
        ("http", Box::new(http(&format!("http://127.0.0.1:{port}/")))),
    ];
    for (kind, collector) in &collectors {
        let (outcome, elapsed) = collect(collector.as_ref(), BUDGET).await;
        assert_down(kind, &outcome, ErrorClass::Refused, &[&needle]);
        assert!(elapsed < Duration::from_secs(1), "{kind}: took {elapsed:?}");
    }
}

#[tokio::test]
async fn an_unresolvable_name_is_a_dns_error_for_every_kind() {
    let collectors: [(&str, Box<dyn Collector>); 3] = [
        (
            "mysql",
            Box::new(mysql("nonexistent.invalid", 3306, WRONG_PASSWORD)),
        ),
        ("redis", Box::new(redis("redis://nonexistent.invalid:6379"))),
        ("http", Box::new(http("http://nonexistent.invalid:8080/"))),
    ];
    for (kind, collector) in &collectors {
        let (outcome, _) = collect(collector.as_ref(), Duration::from_secs(10)).await;
        assert_down(
            kind,
            &outcome,
            ErrorClass::Dns,
            &["nonexistent.invalid", "does not resolve"],
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_kinds_port_says_which_protocol_answered() {
    let db = &shared_pair().primary;
    let cache = redis_with_password();

    // Redis and HTTP clients speak first; MariaDB's greeting comes before their request is read.
    let (outcome, _) = collect(&redis(&format!("redis://127.0.0.1:{}", db.port())), BUDGET).await;
    let text = assert_down(
        "redis kind at the MariaDB port",
        &outcome,
        ErrorClass::Protocol,
        &["does not speak Redis (it looks like MySQL)"],
    );
    assert!(!text.contains("broken pipe"), "{text}");
    let (outcome, _) = collect(&http(&format!("http://127.0.0.1:{}/", db.port())), BUDGET).await;
    assert_down(
        "http kind at the MariaDB port",
        &outcome,
        ErrorClass::Protocol,
        &["does not speak HTTP (it looks like MySQL)"],
    );

    // Redis never speaks first: the MySQL client hears nothing, asks on a second connection, and
    // gives up at once when Redis answers, well before the deadline.
    let (outcome, elapsed) =
        collect(&mysql("127.0.0.1", cache.port(), WRONG_PASSWORD), BUDGET).await;
    assert_down(
        "mysql kind at the redis port",
        &outcome,
        ErrorClass::Protocol,
        &["does not speak MySQL (it looks like Redis)"],
    );
    assert!(elapsed < BUDGET - Duration::from_millis(500), "{elapsed:?}");

    let (outcome, _) = collect(
        &http(&format!("http://127.0.0.1:{}/", cache.port())),
        BUDGET,
    )
    .await;
    assert_down(
        "http kind at the redis port",
        &outcome,
        ErrorClass::Protocol,
        &["does not speak HTTP (it looks like Redis)"],
    );

    // An HTTP server is silent until asked, too; it answers the probe with a 400 status line.
    let (web, _) = support::serve(None, |_| async { reply(200, "ok") }).await;
    let (outcome, _) = collect(&mysql("127.0.0.1", web.port(), WRONG_PASSWORD), BUDGET).await;
    assert_down(
        "mysql kind at an HTTP port",
        &outcome,
        ErrorClass::Protocol,
        &["does not speak MySQL (it looks like HTTP)"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_an_auth_error_that_does_not_show_it() {
    let db = &shared_pair().primary;
    let (outcome, _) = collect(&mysql("127.0.0.1", db.port(), WRONG_PASSWORD), BUDGET).await;
    assert_down(
        "mariadb",
        &outcome,
        ErrorClass::Auth,
        &["rejected the login", "Access denied for user 'exporter'"],
    );

    let cache = redis_with_password();
    let wrong = redis(&format!(
        "redis://:{WRONG_PASSWORD}@127.0.0.1:{}",
        cache.port()
    ));
    let (outcome, _) = collect(&wrong, BUDGET).await;
    assert_down(
        "redis, wrong password",
        &outcome,
        ErrorClass::Auth,
        &["rejected the credentials"],
    );
    let (outcome, _) = collect(&redis(&cache.url()), BUDGET).await;
    assert_down(
        "redis, no password",
        &outcome,
        ErrorClass::Auth,
        &["requires a password, and none is configured"],
    );
}

#[tokio::test]
async fn tls_failures_say_whether_the_certificate_or_the_handshake_failed() {
    let pki = Pki::new("untrusted test CA");
    let tls = server_tls(&pki.server_leaf(), None, false);
    let (addr, _) = support::serve(Some(tls), |_| async { reply(200, "ok") }).await;
    let (outcome, _) = collect(
        &http(&format!("https://localhost:{}/", addr.port())),
        BUDGET,
    )
    .await;
    assert_down(
        "a certificate from an unknown CA",
        &outcome,
        ErrorClass::Tls,
        &[
            "TLS certificate verification of localhost:",
            "UnknownIssuer",
            "set tls.ca_file",
        ],
    );

    let (plain, _) = support::serve(None, |_| async { reply(200, "ok") }).await;
    let (outcome, _) = collect(
        &http(&format!("https://127.0.0.1:{}/", plain.port())),
        BUDGET,
    )
    .await;
    assert_down(
        "https to a plain HTTP port",
        &outcome,
        ErrorClass::Tls,
        &[
            "TLS handshake with 127.0.0.1:",
            "does not speak TLS (it looks like HTTP)",
        ],
    );
}

/// A listener that accepts and never answers is a timeout that says the connection was made.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_listener_is_a_timeout_after_connecting() {
    let addr = support::silent().await;
    let ep = format!("127.0.0.1:{}", addr.port());
    let (my, re, ht) = tokio::join!(
        async { collect(&mysql("127.0.0.1", addr.port(), WRONG_PASSWORD), BUDGET).await },
        async { collect(&redis(&format!("redis://{ep}")), BUDGET).await },
        async { collect(&http(&format!("http://{ep}/")), BUDGET).await },
    );
    let cases = [
        (
            "mysql",
            my,
            format!(
                "connected to {ep}, but the server did not answer within 2.5 s (no MySQL greeting)"
            ),
        ),
        (
            "redis",
            re,
            format!("connected to {ep}, but the server did not answer within 2.5 s"),
        ),
        (
            "http",
            ht,
            format!("connected to {ep}, but no response came within 2.5 s"),
        ),
    ];
    for (kind, (outcome, elapsed), message) in &cases {
        assert_down(kind, outcome, ErrorClass::Timeout, &[message]);
        assert!(
            *elapsed >= BUDGET - Duration::from_millis(50)
                && *elapsed < BUDGET + Duration::from_secs(1),
            "{kind}: {elapsed:?}"
        );
    }
}

/// A port whose TCP connect never completes (its accept queue is full, so the kernel drops our SYN)
/// is a timeout that says connecting is what hung, unlike the silent listener above.
#[tokio::test(flavor = "multi_thread")]
async fn a_connect_that_never_completes_is_a_connect_timeout() {
    let port = support::unconnectable().await;
    let ep = format!("{}", port.addr);
    let (my, re, ht) = tokio::join!(
        async {
            collect(
                &mysql("127.0.0.1", port.addr.port(), WRONG_PASSWORD),
                BUDGET,
            )
            .await
        },
        async { collect(&redis(&format!("redis://{ep}")), BUDGET).await },
        async { collect(&http(&format!("http://{ep}/")), BUDGET).await },
    );
    let message = format!("connecting to {ep} timed out: no connection within 2.5 s");
    for (kind, (outcome, elapsed)) in [("mysql", my), ("redis", re), ("http", ht)] {
        assert_down(kind, &outcome, ErrorClass::Timeout, &[&message]);
        assert!(
            elapsed >= BUDGET - Duration::from_millis(50)
                && elapsed < BUDGET + Duration::from_secs(1),
            "{kind}: {elapsed:?}"
        );
    }
}
