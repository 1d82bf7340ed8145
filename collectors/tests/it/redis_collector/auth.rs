use super::*;

/// A password with characters URL and shell quoting would break.
const PASSWORD: &str = "s3cr#t pw/'\"x";
const WRONG: &str = "Wr0ng-pa55word-9fj2";

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn assert_secret_hidden(collector: &RedisCollector, outcome: &Outcome, secrets: &[&str]) {
    let mut texts = vec![format!("{collector:?}"), format!("{outcome:?}")];
    texts.extend(outcome.errors.iter().map(error_chain));
    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} shown in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requirepass_authenticates_and_never_shows_the_password() {
    requirepass_authenticates_and_never_shows_the_password_on(Server::Redis).await;
}

/// [`requirepass_authenticates_and_never_shows_the_password`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn requirepass_authenticates_and_never_shows_the_password_on(server: Server) {
    let server = Redis::start(Opts {
        password: Some(PASSWORD.to_owned()),
        server,
        ..Opts::default()
    });
    let encoded = percent_encode(PASSWORD);

    // Right password in the settings.
    let mut good = settings(&server);
    good.password = Some(SecretString::from(PASSWORD.to_owned()));
    let good = build(good);
    let outcome = scrape_ok(&good).await;
    assert!(find(&outcome.families, "redis_instance_info").is_some());
    assert_secret_hidden(&good, &outcome, &[PASSWORD, &encoded]);

    // Wrong password: down, and neither password anywhere.
    let mut bad = settings(&server);
    bad.password = Some(SecretString::from(WRONG.to_owned()));
    let bad = build(bad);
    let outcome = scrape(&bad, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a wrong password");
    assert!(!outcome.errors.is_empty());
    assert!(find(&outcome.families, "redis_instance_info").is_none());
    assert_secret_hidden(&bad, &outcome, &[PASSWORD, WRONG, &encoded]);

    // No password: down.
    let none = build(settings(&server));
    let outcome = scrape(&none, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up without a password");

    // Password in the URL (percent-encoded): works, shown nowhere.
    let url = format!("redis://:{encoded}@127.0.0.1:{}", server.port());
    let parsed = ParsedUrl::parse(&url).unwrap();
    assert!(!format!("{parsed:?}").contains(&encoded));
    let in_url = build(RedisSettings::new(parsed));
    let outcome = scrape_ok(&in_url).await;
    assert_secret_hidden(&in_url, &outcome, &[PASSWORD, &encoded]);

    // Wrong password in the URL: down, shown nowhere.
    let url = format!("redis://:{WRONG}@127.0.0.1:{}", server.port());
    let wrong_in_url = build(settings_for(&url));
    let outcome = scrape(&wrong_in_url, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a wrong password in the URL");
    assert_secret_hidden(&wrong_in_url, &outcome, &[PASSWORD, WRONG, &encoded]);

    // The server saw the failed attempts as auth failures, not as something else.
    assert!(server.info_item("errorstats", "errorstat_WRONGPASS", "count") >= 2.0);
}

// ---------------------------------------------------------------------------------------------
// 3. An ACL user with limited rights

const LIMITED_PASSWORD: &str = "limited pw";

/// The server-side counters a refused command moves.
pub(super) fn refusals(server: &Redis) -> BTreeMap<&'static str, f64> {
    BTreeMap::from([
        (
            "errorstat_NOPERM",
            server.info_item("errorstats", "errorstat_NOPERM", "count"),
        ),
        (
            "total_error_replies",
            server.info_number("stats", "total_error_replies"),
        ),
        (
            "config|get rejected",
            server.info_item("commandstats", "cmdstat_config|get", "rejected_calls"),
        ),
        (
            "latency|latest rejected",
            server.info_item("commandstats", "cmdstat_latency|latest", "rejected_calls"),
        ),
        (
            "slowlog|len rejected",
            server.info_item("commandstats", "cmdstat_slowlog|len", "rejected_calls"),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again() {
    an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again_on(Server::Redis)
        .await;
}

/// [`an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again_on(
    server: Server,
) {
    let server = Redis::start(Opts {
        args: [
            "--user",
            "limited",
            "on",
            &format!(">{LIMITED_PASSWORD}"),
            "~*",
            "&*",
            "-@all",
            "+@connection",
            "+info",
            "+select",
        ]
        .map(str::to_owned)
        .to_vec(),
        server,
        ..Opts::default()
    });
    // The user is what we think it is.
    let acl = server.cli(&["ACL", "GETUSER", "limited"]);
    assert!(acl.contains("+info"), "{acl}");
    server.cli(&["SET", "some", "key"]);

    let mut limited = settings(&server);
    limited.user = Some("limited".to_owned());
    limited.password = Some(SecretString::from(LIMITED_PASSWORD.to_owned()));
    let limited = build(limited);

    let first = scrape_up(&limited).await;
    let after_first = refusals(&server);
    let second = scrape_ok(&limited).await;
    let after_second = refusals(&server);
    let third = scrape_ok(&limited).await;
    let after_third = refusals(&server);
    eprintln!("refusals after scrapes 1, 2, 3: {after_first:?} {after_second:?} {after_third:?}");

    for (what, outcome) in [("first", &first), ("second", &second), ("third", &third)] {
        assert_all_valid(&outcome.families);
        let names = names(&outcome.families);
        let forbidden: Vec<_> = names
            .iter()
            .filter(|n| {
                n.starts_with("redis_config_")
                    || n.starts_with("redis_slowlog_")
                    || n.starts_with("redis_latency_spike")
                    || *n == "redis_last_slow_execution_duration_seconds"
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "{what} scrape: families from refused commands: {forbidden:?}"
        );
        // INFO works: the core families are there.
        for name in [
            "redis_instance_info",
            "redis_connected_clients",
            "redis_commands_processed_total",
            "redis_db_keys",
        ] {
            assert!(names.contains(name), "{what} scrape: {name} missing");
        }
    }
    // Later scrapes do not send the refused commands again.
    assert_eq!(after_second, after_first, "scrape 2 was refused again");
    assert_eq!(after_third, after_second, "scrape 3 was refused again");
}

// ---------------------------------------------------------------------------------------------
// 4. TLS

fn tls_server(pki: &Pki, auth_clients: bool) -> Redis {
    let leaf = pki.leaf(
        &["localhost", "127.0.0.1"],
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = pki.client_leaf();
    Redis::start(Opts {
        tls: Some(ServerTls {
            ca_pem: pki.ca_pem.clone(),
            cert_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            auth_clients,
            client: Some((client.cert_pem, client.key_pem)),
        }),
        ..Opts::default()
    })
}

fn with_ca(server: &Redis, ca_pem: &str) -> RedisSettings {
    let mut settings = settings(server);
    assert!(settings.url.tls, "a TLS server's URL is rediss://");
    settings.tls = Some(RedisTls {
        ca_pem: Some(ca_pem.as_bytes().to_vec()),
        ..RedisTls::default()
    });
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verifies_the_server_against_the_configured_ca() {
    let pki = Pki::new("redis test CA");
    let server = tls_server(&pki, false);

    let verified = build(with_ca(&server, &pki.ca_pem));
    let outcome = scrape_ok(&verified).await;
    assert_eq!(
        must(
            &outcome.families,
            "redis_instance_info",
            &instance_labels(&server.info("all"))
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>()
        ),
        1.0
    );

    // A server certificate from another CA is refused.
    let other = Pki::new("another CA");
    let refused = build(with_ca(&server, &other.ca_pem));
    let outcome = scrape(&refused, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a server certificate from another CA");
    assert!(
        matches!(outcome.errors.as_slice(), [e] if e.class() == ErrorClass::Tls),
        "{:?}",
        outcome.errors
    );

    // Plain RESP to the TLS port does not pass for a server.
    let plain = build(settings_for(&format!(
        "redis://127.0.0.1:{}",
        server.port()
    )));
    let outcome = scrape(&plain, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up speaking plain RESP to a TLS port");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_client_certificate_when_the_server_requires_one() {
    let pki = Pki::new("redis mTLS CA");
    let server = tls_server(&pki, true);

    // Without a client certificate: refused.
    let anonymous = build(with_ca(&server, &pki.ca_pem));
    let outcome = scrape(&anonymous, Duration::from_secs(5)).await;
    assert!(!outcome.up, "up without a client certificate");

    // With one signed by the CA the server trusts: up.
    let client = pki.client_leaf();
    let mut settings = with_ca(&server, &pki.ca_pem);
    let tls = settings.tls.as_mut().unwrap();
    tls.cert_pem = Some(client.cert_pem.as_bytes().to_vec());
    tls.key_pem = Some(SecretBytes::from(client.key_pem.as_bytes().to_vec()));
    let authenticated = build(settings);
    let outcome = scrape_ok(&authenticated).await;
    assert!(find(&outcome.families, "redis_connected_clients").is_some());
    let debug = format!("{authenticated:?}");
    assert!(
        !debug.contains("PRIVATE KEY"),
        "key material in Debug: {debug}"
    );

    // With one from a CA the server does not trust: refused.
    let stranger = Pki::new("stranger CA").client_leaf();
    let mut settings = with_ca(&server, &pki.ca_pem);
    let tls = settings.tls.as_mut().unwrap();
    tls.cert_pem = Some(stranger.cert_pem.as_bytes().to_vec());
    tls.key_pem = Some(SecretBytes::from(stranger.key_pem.as_bytes().to_vec()));
    let outcome = scrape(&build(settings), Duration::from_secs(5)).await;
    assert!(!outcome.up, "up with a client certificate from another CA");
}

// ---------------------------------------------------------------------------------------------
// 5. CONFIG renamed
