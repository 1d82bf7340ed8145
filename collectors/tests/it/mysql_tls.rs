//! TLS to a real MariaDB started with certificates from a test PKI: verification against a CA, a
//! client certificate without a CA (mysqld_exporter only honours one with a CA), and refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::http as support;
use fanout_testkit::mariadb;

use std::time::Duration;

use fanout_collectors::family::MetricType;
use fanout_collectors::mysql::{
    Address, MysqlCollector, MysqlSettings, MysqlTls, QueryMetric, QuerySettings,
};
use fanout_collectors::secret::SecretBytes;
use fanout_collectors::{CollectError, Collector, ErrorClass, Outcome};
use rcgen::ExtendedKeyUsagePurpose;
use secrecy::SecretString;
use support::{Leaf, Pki, gauge};
use tokio::time::Instant;

/// A server presenting a certificate for 127.0.0.1 from `pki`, trusting client certificates from
/// `client_ca`; an account `tls_user` (password `pw`) that must present one (`REQUIRE X509`).
struct TlsServer {
    server: mariadb::Mariadb,
    _files: tempfile::TempDir,
}

fn start(pki: &Pki, client_ca: &Pki) -> TlsServer {
    start_for(pki, client_ca, &["127.0.0.1"])
}

/// As [`start`], with a server certificate issued for `names`.
fn start_for(pki: &Pki, client_ca: &Pki, names: &[&str]) -> TlsServer {
    let files = tempfile::tempdir().unwrap();
    let leaf = pki.leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
    let path = |name: &str, text: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let server = mariadb::Mariadb::start(mariadb::Opts {
        extra_args: vec![
            format!("--ssl-ca={}", path("ca.pem", &client_ca.ca_pem)),
            format!("--ssl-cert={}", path("server.pem", &leaf.cert_pem)),
            format!("--ssl-key={}", path("server-key.pem", &leaf.key_pem)),
        ],
        ..mariadb::Opts::default()
    });
    server.sql(
        "CREATE USER 'tls_user'@'%' IDENTIFIED BY 'pw' REQUIRE X509;
         GRANT SELECT ON *.* TO 'tls_user'@'%';
         CREATE USER 'plain'@'%' IDENTIFIED BY 'pw';
         GRANT SELECT ON *.* TO 'plain'@'%';",
    );
    TlsServer {
        server,
        _files: files,
    }
}

/// Settings for `user` with `tls`, and a custom query that reports whether the session is encrypted.
fn settings(server: &TlsServer, user: &str, tls: Option<MysqlTls>) -> MysqlSettings {
    let mut s = MysqlSettings::new(
        Address::Tcp {
            host: "127.0.0.1".into(),
            port: server.server.port(),
        },
        user,
    );
    s.password = Some(SecretString::from("pw"));
    s.tls = tls;
    s.collect = Vec::new();
    s.queries = vec![QuerySettings {
        name: "tls".into(),
        query: "SELECT VARIABLE_VALUE <> '' AS encrypted FROM information_schema.SESSION_STATUS \
                WHERE VARIABLE_NAME = 'Ssl_cipher'"
            .into(),
        timeout: None,
        min_interval: Duration::ZERO,
        metrics: vec![QueryMetric {
            metric: "session_encrypted".into(),
            kind: MetricType::Gauge,
            help: "Whether this session uses TLS.".into(),
            key_labels: Vec::new(),
            values: vec!["encrypted".into()],
            value_label: None,
            static_labels: Default::default(),
        }],
    }];
    s
}

fn client_tls(ca: Option<&Pki>, client: Option<&Leaf>, insecure: bool) -> MysqlTls {
    MysqlTls {
        ca_pem: ca.map(|p| p.ca_pem.clone().into_bytes()),
        cert_pem: client.map(|l| l.cert_pem.clone().into_bytes()),
        key_pem: client.map(|l| SecretBytes::from(l.key_pem.clone().into_bytes())),
        insecure_skip_verify: insecure,
    }
}

async fn scrape(settings: MysqlSettings) -> Outcome {
    let collector = MysqlCollector::new(settings).unwrap();
    collector
        .collect(Instant::now() + Duration::from_secs(5))
        .await
}

fn encrypted(outcome: &Outcome) -> Option<f64> {
    gauge(&outcome.families, "session_encrypted", &[])
}

#[tokio::test]
async fn verified_tls_with_a_ca_and_client_certificates_with_or_without_one() {
    let pki = Pki::new("mysql test CA");
    let clients = Pki::new("mysql client CA");
    let server = start(&pki, &clients);
    let client = clients.client_leaf();

    // Verified against the CA and the address's IP: encrypted.
    let outcome = scrape(settings(
        &server,
        "plain",
        Some(client_tls(Some(&pki), None, false)),
    ))
    .await;
    assert!(
        outcome.up && outcome.errors.is_empty(),
        "{:?}",
        outcome.errors
    );
    assert_eq!(encrypted(&outcome), Some(1.0));

    // A client certificate with the CA, and without any CA (verification skipped): both accepted
    // by an account that requires one.
    for tls in [
        client_tls(Some(&pki), Some(&client), false),
        client_tls(None, Some(&client), true),
    ] {
        let outcome = scrape(settings(&server, "tls_user", Some(tls))).await;
        assert!(
            outcome.up && outcome.errors.is_empty(),
            "{:?}",
            outcome.errors
        );
        assert_eq!(encrypted(&outcome), Some(1.0));
    }

    // Without the certificate that account is refused.
    let outcome = scrape(settings(
        &server,
        "tls_user",
        Some(client_tls(Some(&pki), None, false)),
    ))
    .await;
    assert!(!outcome.up);
    assert!(
        matches!(outcome.errors.as_slice(), [e] if matches!(e.class(), ErrorClass::Auth | ErrorClass::Tls)),
        "{:?}",
        outcome.errors
    );

    // Without a tls section, the session is encrypted when the server offers it (the MySQL default).
    let outcome = scrape(settings(&server, "plain", None)).await;
    assert!(outcome.up, "{:?}", outcome.errors);
    assert_eq!(encrypted(&outcome), Some(1.0));
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("mysql test CA");
    let other = Pki::new("someone else's CA");
    let server = start(&pki, &pki);
    let outcome = scrape(settings(
        &server,
        "plain",
        Some(client_tls(Some(&other), None, false)),
    ))
    .await;
    assert!(!outcome.up);
    let error = tls_error(&outcome, server.server.port());
    assert!(
        error.message().contains("certificate verification")
            && error.message().contains("UnknownIssuer"),
        "{error}"
    );

    // The same CA mistake with verification off connects, encrypted.
    let outcome = scrape(settings(
        &server,
        "plain",
        Some(client_tls(Some(&other), None, true)),
    ))
    .await;
    assert!(outcome.up, "{:?}", outcome.errors);
    assert_eq!(encrypted(&outcome), Some(1.0));
}

#[tokio::test]
async fn a_server_certificate_for_another_host_name_is_refused_unless_verification_is_off() {
    let pki = Pki::new("mysql test CA");
    // Issued by the trusted CA, but for a name that is not the address we connect to.
    let server = start_for(&pki, &pki, &["db.example"]);
    let outcome = scrape(settings(
        &server,
        "plain",
        Some(client_tls(Some(&pki), None, false)),
    ))
    .await;
    assert!(
        !outcome.up,
        "a certificate for db.example accepted at 127.0.0.1"
    );
    let error = tls_error(&outcome, server.server.port());
    // Refused for the name, not for the chain: the CA is the right one (rustls: "certificate not
    // valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\"db.example\")").
    let reason = error.message();
    assert!(
        reason.contains("not valid for name") && reason.contains("db.example"),
        "{reason}"
    );

    // Verification off: the same certificate is accepted and the session encrypted.
    let outcome = scrape(settings(
        &server,
        "plain",
        Some(client_tls(Some(&pki), None, true)),
    ))
    .await;
    assert!(
        outcome.up && outcome.errors.is_empty(),
        "{:?}",
        outcome.errors
    );
    assert_eq!(encrypted(&outcome), Some(1.0));
}

/// The one error of a scrape refused at the TLS step, which names the endpoint.
fn tls_error(outcome: &Outcome, port: u16) -> &CollectError {
    let [error] = outcome.errors.as_slice() else {
        panic!("{:?}", outcome.errors)
    };
    assert_eq!(error.class(), ErrorClass::Tls, "{error}");
    assert!(
        error.message().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    error
}
