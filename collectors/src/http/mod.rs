//! The HTTP status collector: blackbox_exporter's `http` prober, with its `probe_*` metric names.
//!
//! Every probe opens fresh connections (one per redirect hop), so the connect and TLS phases measure
//! something real. The whole probe runs under the scrape deadline; a probe that is refused or times out
//! still reports what it learned (`probe_http_status_code 0`, the phase timings so far) and the engine
//! reports `probe_success 0`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use regex::Regex;
use secrecy::SecretString;
use tokio::time::Instant;
use url::Url;

use crate::{Collector, Kind, Outcome};

/// The `http` kind.
pub static KIND: Kind = Kind {
    name: "http",
    up_metric: "probe_success",
    up_help: "Displays whether or not the probe was a success",
};

/// Lowest TLS version accepted from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 (rustls supports nothing older).
    #[default]
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Client TLS settings, with file contents already read by the caller.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM CA bundle to trust instead of the bundled web roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain, for servers that ask for one.
    pub cert_pem: Option<Vec<u8>>,
    /// PEM private key of the client certificate. Never printed.
    pub key_pem: Option<SecretBytes>,
    /// Name to send as SNI and to verify the certificate against, instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any certificate (the chain is still read for the expiry metrics).
    pub insecure_skip_verify: bool,
    /// Lowest protocol version accepted.
    pub min_version: TlsVersion,
}

/// Bytes that must not appear in Debug output (private keys).
#[derive(Clone, Default)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

/// Credentials sent with every request of the probe (including redirect hops to the same host).
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// `Authorization: Bearer ...`.
    Bearer(SecretString),
}

/// Typed, validated settings of one HTTP target. Built by the binary's config layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The URL probed (`http` or `https`).
    pub url: Url,
    /// Request method, `GET` by default.
    pub method: String,
    /// Extra request headers; a `Host` header here overrides the Host sent (and the SNI name unless
    /// `tls.server_name` is set), as in blackbox.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// Status codes that count as success; empty means any 2xx.
    pub valid_status_codes: Vec<u16>,
    /// Accepted versions as blackbox spells them (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`); empty means any.
    pub valid_http_versions: Vec<String>,
    /// Follow redirects (up to `max_redirects`).
    pub follow_redirects: bool,
    /// Redirect cap; blackbox's is 10.
    pub max_redirects: u32,
    /// Fail when the final response came over TLS.
    pub fail_if_ssl: bool,
    /// Fail when the final response did not come over TLS.
    pub fail_if_not_ssl: bool,
    /// Fail when any of these matches the body.
    pub fail_if_body_matches_regexp: Vec<Regex>,
    /// Fail unless every one of these matches the body.
    pub fail_if_body_not_matches_regexp: Vec<Regex>,
    /// Fail when the body is larger than this many bytes; `None` is unlimited (blackbox's 0).
    pub body_size_limit: Option<u64>,
    /// TLS client settings.
    pub tls: TlsSettings,
    /// Credentials.
    pub auth: Option<Auth>,
}

impl HttpSettings {
    /// Settings with blackbox's defaults for `url`.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            method: "GET".to_owned(),
            headers: BTreeMap::new(),
            body: None,
            valid_status_codes: Vec::new(),
            valid_http_versions: Vec::new(),
            follow_redirects: true,
            max_redirects: 10,
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            fail_if_body_matches_regexp: Vec::new(),
            fail_if_body_not_matches_regexp: Vec::new(),
            body_size_limit: None,
            tls: TlsSettings::default(),
            auth: None,
        }
    }
}

/// Why settings could not be turned into a collector (bad TLS material, for instance).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// An HTTP target ready to probe.
#[derive(Debug)]
pub struct HttpCollector {
    settings: Arc<HttpSettings>,
}

impl HttpCollector {
    /// Check the settings and prepare what can be prepared once (the TLS client configuration).
    pub fn new(settings: HttpSettings) -> Result<Self, SettingsError> {
        Ok(Self {
            settings: Arc::new(settings),
        })
    }
}

impl Collector for HttpCollector {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Outcome> {
        let _ = (deadline, Duration::ZERO, &self.settings);
        Box::pin(async move {
            Outcome {
                families: Vec::new(),
                result: Err(crate::CollectError::Internal("not built yet".into())),
            }
        })
    }
}
