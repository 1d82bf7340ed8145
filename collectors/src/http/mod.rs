//! The HTTP status collector: blackbox_exporter's `http` prober, with its `probe_*` metric names.
//!
//! Every probe opens fresh connections (one per redirect hop), so the connect and TLS phases measure
//! something real. The whole probe runs under the scrape deadline; a probe that is refused or times out
//! still reports what it learned (`probe_http_status_code 0`, the phase timings so far) and the engine
//! reports `probe_success 0`.
//!
//! # Layout
//! - `config`: the `http` section of the config file, validated into [`HttpSettings`].
//! - `probe`: the hops (resolve, connect, TLS, request, body) and the checks, in blackbox's order.
//! - `tls`: the rustls client configuration built once per target, and what a handshake tells us.
//! - `report`: what a probe learned so far, and the `probe_*` families made from it.
//!
//! # Where we knowingly differ from blackbox
//! - `probe_http_redirects` counts the redirects actually followed: 0 when `follow_redirects` is off
//!   (blackbox reports 1), and `max_redirects` when the cap stops the probe.
//! - A body over `body_size_limit` fails as a size failure before the body regexps run, so
//!   `probe_failed_due_to_regex` stays 0 (blackbox's regexps hit the read error and report 1).
//! - `probe_ssl_last_chain_expiry_timestamp_seconds` is computed from the presented chain, not the
//!   verified one (see `report`).
//! - `auth` is sent only to hops on the configured host (blackbox's round tripper adds it to every
//!   hop, whatever the host). `tls.server_name` also stays with the configured host, and a `Host`
//!   header override survives relative redirects only, both as in blackbox.

mod config;
mod probe;
mod report;
mod tls;

pub use config::{BasicAuthConfig, HttpConfig};
/// The Redis kind's TLS streams load their material with the same rules as the probe.
pub(crate) use tls::client_config;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::future::BoxFuture;
use hyper::Method;
use hyper::header::{
    AUTHORIZATION, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHORIZATION,
    USER_AGENT,
};
use regex::Regex;
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use url::Url;

pub use crate::SettingsError;
use crate::config::Guard;
use crate::secret::SecretBytes;
use crate::tls::TlsVersion;

use crate::{Collector, Kind, Outcome};

/// The `http` kind.
pub static KIND: Kind = Kind {
    name: "http",
    up_metric: "probe_success",
    up_help: "Displays whether or not the probe was a success",
};

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
///
/// `Debug` shows the endpoint and path only, and header names only: the URL's userinfo or query and
/// configured header values may carry credentials.
#[derive(Clone)]
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
    /// Where redirects may lead, for a module's target (its allow-list); any host otherwise.
    pub redirect_guard: Option<Guard>,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("endpoint", &probe::endpoint(&self.url))
            .field("path", &self.url.path())
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body", &self.body.as_ref().map(|b| b.len()))
            .field("valid_status_codes", &self.valid_status_codes)
            .field("valid_http_versions", &self.valid_http_versions)
            .field("follow_redirects", &self.follow_redirects)
            .field("max_redirects", &self.max_redirects)
            .field("fail_if_ssl", &self.fail_if_ssl)
            .field("fail_if_not_ssl", &self.fail_if_not_ssl)
            .field(
                "fail_if_body_matches_regexp",
                &self.fail_if_body_matches_regexp,
            )
            .field(
                "fail_if_body_not_matches_regexp",
                &self.fail_if_body_not_matches_regexp,
            )
            .field("body_size_limit", &self.body_size_limit)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .finish()
    }
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
            redirect_guard: None,
        }
    }
}

/// An HTTP target ready to probe.
///
/// Everything that can be checked or built without the network is done once in [`HttpCollector::new`],
/// so a probe only does network work and a config mistake is reported at load time.
pub struct HttpCollector {
    settings: HttpSettings,
    method: Method,
    /// Configured headers without `Host`, plus our User-Agent unless one is configured.
    headers: HeaderMap,
    /// A configured `Host` header, which also names the TLS server unless `tls.server_name` does.
    host_header: Option<String>,
    /// The `Authorization` value built from [`Auth`], marked sensitive.
    auth: Option<HeaderValue>,
    tls: Arc<ClientConfig>,
    /// Body regexps are configured, so the body must be kept and not only counted.
    buffer_body: bool,
}

impl fmt::Debug for HttpCollector {
    /// Only the endpoint: the URL may carry credentials in its userinfo or query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCollector")
            .field("endpoint", &probe::endpoint(&self.settings.url))
            .finish_non_exhaustive()
    }
}

impl HttpCollector {
    /// Check the settings and prepare what can be prepared once (the TLS client configuration).
    pub fn new(settings: HttpSettings) -> Result<Self, SettingsError> {
        let url = &settings.url;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(SettingsError::new(
                "url",
                format!(
                    "only http and https URLs with a host can be probed (scheme is {:?})",
                    url.scheme()
                ),
            ));
        }
        let method = Method::from_bytes(settings.method.as_bytes()).map_err(|_| {
            SettingsError::new(
                "method",
                format!("{:?} is not an HTTP method", settings.method),
            )
        })?;
        let (headers, host_header) = headers(&settings.headers)?;
        let auth = settings.auth.as_ref().map(auth_header).transpose()?;
        let tls = tls::client_config(&settings.tls)?;
        let buffer_body = !settings.fail_if_body_matches_regexp.is_empty()
            || !settings.fail_if_body_not_matches_regexp.is_empty();
        Ok(Self {
            settings,
            method,
            headers,
            host_header,
            auth,
            tls,
            buffer_body,
        })
    }
}

fn headers(
    configured: &BTreeMap<String, String>,
) -> Result<(HeaderMap, Option<String>), SettingsError> {
    let mut headers = HeaderMap::new();
    let mut host = None;
    for (name, value) in configured {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SettingsError::new("headers", format!("{name:?} is not a header name")))?;
        // The value is not quoted: configured headers may carry credentials.
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            SettingsError::new(
                "headers",
                format!("the value of {name} is not a valid header value"),
            )
        })?;
        if name == HOST {
            host = Some(value.to_str().unwrap_or_default().to_owned());
            continue;
        }
        value.set_sensitive([AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE].contains(&name));
        headers.append(name, value);
    }
    headers
        .entry(USER_AGENT)
        .or_insert(HeaderValue::from_static(concat!(
            "fanout_exporter/",
            env!("CARGO_PKG_VERSION")
        )));
    Ok((headers, host))
}

fn auth_header(auth: &Auth) -> Result<HeaderValue, SettingsError> {
    let value = match auth {
        Auth::Basic { username, password } => {
            let pair = format!("{username}:{}", password.expose_secret());
            format!("Basic {}", BASE64.encode(pair))
        }
        Auth::Bearer(token) => format!("Bearer {}", token.expose_secret()),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        SettingsError::new(
            "auth",
            "the credentials contain characters not allowed in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl Collector for HttpCollector {
    fn endpoint(&self) -> String {
        // Userinfo, path and query may all hold credentials; the target's name tells checks of one
        // host apart.
        let url = &self.settings.url;
        format!("{}://{}", url.scheme(), probe::endpoint(url))
    }

    fn kind(&self) -> &'static Kind {
        &KIND
    }

    /// The deadline is enforced here, around every hop and the body read, so that a probe cut off
    /// by it still reports its status code (0), phases and whatever else it learned.
    fn collect(&self, deadline: Instant) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let start = Instant::now();
            let mut report = report::Report::default();
            let result = tokio::time::timeout_at(deadline, probe::run(self, &mut report))
                .await
                .unwrap_or_else(|_| {
                    let budget = deadline.saturating_duration_since(start);
                    Err(report.timeout(&probe::endpoint(&self.settings.url), budget))
                });
            report.settle();
            Outcome::from_result(report.families(start.elapsed().as_secs_f64()), result)
        })
    }
}
