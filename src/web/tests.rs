//! The web configuration file on its own: what each option turns into, and the errors.

use std::path::Path;

use super::parse;

fn errors(text: &str) -> String {
    match parse("web.yml", text, Path::new(".")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_file_turns_nothing_on() {
    for text in [
        "",
        "\n",
        "basic_auth_users: {}\n",
        "http_server_config:\n  http2: false\n",
    ] {
        let web = parse("web.yml", text, Path::new(".")).unwrap();
        assert!(web.tls.is_none() && web.auth.is_none(), "{text}");
    }
}

#[test]
fn a_duplicate_user_is_an_error_not_an_overwrite() {
    let hash = bcrypt::hash("x", 4).unwrap();
    let e = errors(&format!("basic_auth_users:\n  a: {hash}\n  a: {hash}\n"));
    assert!(
        e.contains("web.yml:2") && e.contains("duplicate entry with key \"a\""),
        "{e}"
    );
}

#[test]
fn a_password_written_where_its_hash_belongs_is_not_quoted() {
    let e = errors("basic_auth_users:\n  prometheus: hunter2-canary\n");
    assert!(e.contains("basic_auth_users.prometheus"), "{e}");
    assert!(!e.contains("hunter2-canary"), "{e}");
    let e = errors("tls_server_config:\n  cert_file: a\n  key: 123456789\n");
    assert!(!e.contains("123456789"), "{e}");
}

#[test]
fn versions_curves_and_header_values_rustls_or_the_toolkit_cannot_honour_are_refused() {
    let tls = "tls_server_config:\n  cert: x\n  key: y\n";
    for (extra, expected) in [
        (
            "  min_version: TLS13\n  max_version: TLS12\n",
            "max_version: is lower",
        ),
        ("  max_version: TLS11\n", "TLS 1.2 and 1.3 only"),
        ("  min_version: SSL3\n", "unknown TLS version"),
        ("  curve_preferences: [CurveP521]\n", "ring provider"),
        (
            "  curve_preferences: [Curve25519]\n",
            "Curve25519 (unknown)",
        ),
        (
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
            "not implemented",
        ),
    ] {
        let e = errors(&format!("{tls}{extra}"));
        assert!(e.contains(expected), "{extra}: {e}");
    }
    let e = errors("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n");
    assert!(e.contains("expected one of nosniff"), "{e}");
    let e = errors("rate_limit:\n  interval: 1s\n  burst: 0\n");
    assert!(e.contains("rate_limit.burst"), "{e}");
}

#[test]
fn go_suite_names_map_onto_rustls_suites_in_the_order_written() {
    let suites = super::tls::cipher_suites_for_test(&[
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".to_owned(),
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_owned(),
        "TLS_AES_128_GCM_SHA256".to_owned(),
    ]);
    assert_eq!(
        suites,
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS13_AES_128_GCM_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ]
    );
}

mod props {
    use proptest::prelude::*;

    use super::super::parse;

    /// Pieces of web configuration files, right and wrong, to be strung together.
    fn web_ish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            proptest::sample::select(vec![
                "tls_server_config:",
                "basic_auth_users:",
                "http_server_config:",
                "rate_limit:",
                "headers:",
                "cert_file: ",
                "key_file: ",
                "cert: ",
                "key: ",
                "client_auth_type: ",
                "client_ca_file: ",
                "client_allowed_sans: ",
                "min_version: ",
                "cipher_suites: ",
                "curve_preferences: ",
                "interval: ",
                "burst: ",
                "prometheus: ",
                "X-Frame-Options: ",
                "RequireAndVerifyClientCert",
                "TLS13",
                "TLS10",
                "CurveP521",
                "1s",
                "0",
                "-1",
                "$2y$10$",
                "/dev/zero",
                "\n",
                "\n  ",
                "\n    ",
                "- ",
                "[",
                "]",
                "{",
                "}",
                "&a ",
                "*a",
                "'",
                "\"",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,8}",
        ];
        proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
    }

    proptest! {
        /// Whatever the file holds, reading it never panics, and every error names the file.
        #[test]
        fn any_text_is_read_or_refused_naming_the_file(text in web_ish()) {
            if let Err(errors) = parse("web.yml", &text, std::path::Path::new("/nonexistent")) {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert_eq!(&e.source, "web.yml");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }
}
