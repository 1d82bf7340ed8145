//! The `http` section of the config file: one entry per target, in blackbox's module vocabulary
//! (`valid_status_codes`, `fail_if_body_matches_regexp`, `body_size_limit`, ...), validated into
//! [`HttpSettings`] and a ready [`HttpCollector`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{Auth, HttpCollector, HttpSettings, KIND, TlsSettings};
use crate::config::{Context, Destination, KindConfig, Labels, Pattern, Secret, Text, text_map};
use crate::secret::SecretString;
use crate::tls::{TlsConfig, TlsVersion};
use crate::{Collector, Kind};

/// One HTTP target as written. Keys and defaults follow blackbox's `http` prober.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The URL probed.
    pub url: Text,
    /// Request method, `GET` by default.
    #[serde(default)]
    pub method: Option<Text>,
    /// Extra request headers (values may be credentials: never shown).
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// Request body.
    #[serde(default)]
    pub body: Option<Text>,
    /// Status codes that count as success; any 2xx when empty.
    #[serde(default)]
    pub valid_status_codes: Vec<u16>,
    /// Accepted HTTP versions (`HTTP/1.0`, `HTTP/1.1`); any when empty.
    #[serde(default)]
    pub valid_http_versions: Vec<String>,
    /// Follow redirects (default true).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Redirect cap (default 10).
    #[serde(default)]
    pub max_redirects: Option<u32>,
    /// Fail when the final response came over TLS.
    #[serde(default)]
    pub fail_if_ssl: bool,
    /// Fail when the final response did not come over TLS.
    #[serde(default)]
    pub fail_if_not_ssl: bool,
    /// Fail when any of these matches the body.
    #[serde(default)]
    pub fail_if_body_matches_regexp: Vec<Pattern>,
    /// Fail unless every one of these matches the body.
    #[serde(default)]
    pub fail_if_body_not_matches_regexp: Vec<Pattern>,
    /// Largest body accepted, in bytes or with a unit (`1MB`, `512KiB`).
    #[serde(default)]
    pub body_size_limit: Option<Text>,
    /// Client TLS.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// Bearer token, inline.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// Bearer token, from a file.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// The target's own labels.
    #[serde(default)]
    pub labels: Labels,
}

/// `basic_auth` of an HTTP target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub username: Text,
    /// Password, inline.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Password, from a file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl KindConfig for HttpConfig {
    const KIND: &'static Kind = &KIND;
    const ADDRESS_KEY: &'static str = "url";
    // https, so that a module's TLS settings are checked as they will be used.
    const CHECK_ADDRESS: &'static str = "https://module-check.invalid/";

    fn destination(address: &str) -> Result<Destination, String> {
        destination(address)
    }

    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn build(self, ctx: &mut Context<'_>) -> Option<Arc<dyn Collector>> {
        let settings = self.settings(ctx)?;
        match HttpCollector::new(settings) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                ctx.settings_error(e, false);
                None
            }
        }
    }
}

/// Where an HTTP(S) URL leads: for the allow-list of a module, and of every redirect it follows.
pub(super) fn destination(address: &str) -> Result<Destination, String> {
    let url = url::Url::parse(address).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported scheme {:?}: expected http or https",
            url.scheme()
        ));
    }
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    Destination::net(url.scheme(), host, port, url.path())
}

impl HttpConfig {
    /// The settings; scheme, method, headers and TLS material are checked by [`HttpCollector::new`].
    fn settings(self, ctx: &mut Context<'_>) -> Option<HttpSettings> {
        let errors_before = ctx.error_count();
        let url = ctx.ok(
            &["url"],
            url::Url::parse(&self.url.0).map_err(|e| format!("invalid URL: {e}")),
        );
        for version in &self.valid_http_versions {
            // The probe speaks HTTP/1.x only; accepting HTTP/2.0 would make a check that never passes.
            if !matches!(version.as_str(), "HTTP/1.0" | "HTTP/1.1") {
                ctx.error(
                    &["valid_http_versions"],
                    format!("unsupported version {version:?}: expected HTTP/1.0 or HTTP/1.1"),
                );
            }
        }
        if self.fail_if_ssl && self.fail_if_not_ssl {
            ctx.error(&[], "fail_if_ssl and fail_if_not_ssl cannot both be true");
        }
        let body_size_limit = match self
            .body_size_limit
            .as_ref()
            .map(|t| (t, parse_byte_size(&t.0)))
        {
            Some((_, Some(limit))) => Some(limit).filter(|&l| l > 0),
            Some((text, None)) => {
                ctx.error(
                    &["body_size_limit"],
                    format!(
                        "invalid size {:?}: expected bytes as an integer or with a unit (KB, MB, GB, KiB, MiB, GiB)",
                        text.0
                    ),
                );
                None
            }
            None => None,
        };
        let files = self.tls.read(ctx);
        let tls = TlsSettings {
            ca_pem: files.ca_pem,
            cert_pem: files.cert_pem,
            key_pem: files.key_pem,
            server_name: self.tls.server_name.map(|t| t.0),
            insecure_skip_verify: self.tls.insecure_skip_verify,
            min_version: self.tls.min_version.unwrap_or(TlsVersion::Tls12),
        };
        let basic = self.basic_auth.map(|b| {
            let password = ctx.secret(
                &["basic_auth"],
                "password",
                b.password,
                b.password_file.as_deref(),
            );
            Auth::Basic {
                username: b.username.0,
                password: password.unwrap_or_else(|| SecretString::from(String::new())),
            }
        });
        let bearer = ctx
            .secret(
                &[],
                "bearer_token",
                self.bearer_token,
                self.bearer_token_file.as_deref(),
            )
            .map(Auth::Bearer);
        let auth = match (basic, bearer) {
            (Some(_), Some(_)) => {
                ctx.error(&[], "basic_auth and bearer_token are mutually exclusive");
                None
            }
            (a, b) => a.or(b),
        };
        if ctx.error_count() > errors_before {
            return None;
        }
        let mut settings = HttpSettings::new(url?);
        if let Some(m) = self.method {
            settings.method = m.0.to_ascii_uppercase();
        }
        settings.headers = text_map(self.headers);
        settings.body = self.body.map(|b| b.0);
        settings.valid_status_codes = self.valid_status_codes;
        settings.valid_http_versions = self.valid_http_versions;
        settings.follow_redirects = self.follow_redirects.unwrap_or(settings.follow_redirects);
        settings.max_redirects = self.max_redirects.unwrap_or(settings.max_redirects);
        settings.fail_if_ssl = self.fail_if_ssl;
        settings.fail_if_not_ssl = self.fail_if_not_ssl;
        settings.fail_if_body_matches_regexp = patterns(self.fail_if_body_matches_regexp);
        settings.fail_if_body_not_matches_regexp = patterns(self.fail_if_body_not_matches_regexp);
        settings.body_size_limit = body_size_limit;
        settings.tls = tls;
        settings.redirect_guard = ctx.guard();
        settings.auth = auth;
        Some(settings)
    }
}

fn patterns(list: Vec<Pattern>) -> Vec<regex::Regex> {
    list.into_iter().map(|p| p.0).collect()
}

/// A byte count: an integer, or a number with a unit as blackbox writes them (`1MB`, `512KiB`; units are
/// powers of 1024, as in Prometheus' `units.Base2Bytes`).
fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "KiB" | "K" => 1 << 10,
        "MB" | "MiB" | "M" => 1 << 20,
        "GB" | "GiB" | "G" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_from_files_and_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("password"), "s3cr3t-pass\n").expect("write");
        let raw: HttpConfig = serde_yaml::from_str(
            "url: http://x/\nbasic_auth: {username: u, password_file: password}\n",
        )
        .expect("raw");
        let mut ctx = Context::new(Some(dir.path()), std::time::Duration::from_secs(10));
        let settings = raw.settings(&mut ctx).expect("settings");
        let debug = format!("{settings:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        match settings.auth {
            Some(Auth::Basic { username, password }) => {
                assert_eq!(username, "u");
                assert_eq!(
                    crate::secret::ExposeSecret::expose_secret(&password),
                    "s3cr3t-pass",
                    "read relative to the config, newline trimmed"
                );
            }
            other => panic!("expected basic auth, got {other:?}"),
        }
    }

    #[test]
    fn byte_sizes_use_base_two_units() {
        assert_eq!(parse_byte_size("512"), Some(512));
        assert_eq!(parse_byte_size("1KB"), Some(1024));
        assert_eq!(parse_byte_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_byte_size("1 GB"), Some(1 << 30));
        assert_eq!(parse_byte_size("1TB"), None);
        assert_eq!(parse_byte_size("MB"), None);
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn byte_sizes_never_panic(text in any::<String>()) {
                let _ = parse_byte_size(&text);
            }

            #[test]
            fn byte_sizes_parse_back(
                n in any::<u64>(),
                unit in proptest::sample::select(vec![("", 1u64), ("B", 1), ("KB", 1 << 10), ("KiB", 1 << 10), ("M", 1 << 20), ("MiB", 1 << 20), ("GB", 1 << 30)]),
                space in "[ ]{0,1}",
            ) {
                prop_assert_eq!(parse_byte_size(&format!("{n}{space}{}", unit.0)), n.checked_mul(unit.1));
            }

            #[test]
            fn destinations_never_panic_nor_show_credentials(
                tail in "[ -~]{0,30}",
                password in "[a-z]{3}[A-Z]{3}[0-9]{2}",
                scheme in proptest::sample::select(vec!["http", "https", "ftp", "HTTP"]),
            ) {
                let _ = destination(&tail);
                let text = format!("{scheme}://user:{password}@{tail}");
                if let Err(e) = destination(&text) {
                    prop_assert!(!e.contains(&password), "{}: {}", text, e);
                }
            }

            #[test]
            fn destinations_keep_host_port_and_path(
                https in any::<bool>(),
                host in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{1,5}){0,2}",
                port in proptest::option::of(1u16..),
                path in "(/[a-z0-9_-][a-z0-9._-]{0,7}){0,3}",
            ) {
                // `xn--` starts a punycode label, which must then decode: not a plain name.
                prop_assume!(!host.split('.').any(|label| label.starts_with("xn--")));
                let scheme = if https { "https" } else { "http" };
                let text = match port {
                    Some(p) => format!("{scheme}://{host}:{p}{path}"),
                    None => format!("{scheme}://{host}{path}"),
                };
                let expected = Destination::net(
                    scheme,
                    &host,
                    port.unwrap_or(if https { 443 } else { 80 }),
                    if path.is_empty() { "/" } else { &path },
                );
                prop_assert_eq!(destination(&text), expected);
            }
        }
    }
}
