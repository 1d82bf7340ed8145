//! `--web.config.file`: exporter-toolkit's web configuration (TLS, client certificates, basic
//! authentication, response headers, rate limit), read with the toolkit's semantics so that a file
//! written for node_exporter or mysqld_exporter works here unchanged.
//!
//! Everything is checked when the file is read, before the listener opens: a bad hash, a missing
//! certificate, an unreadable key or an option rustls cannot honour is an error naming the file, the
//! key and its line. Paths are relative to the file's directory, as in the toolkit. The certificate,
//! key and client CA files are re-read when they change (see [`tls`]); the rest of the file is read
//! again on every reload, except `tls_server_config`, which the listener is bound with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use fanout_collectors::config::read_bounded;

use crate::config::locate::{key_path, locate};
use crate::config::{ConfigError, ConfigErrors};
use crate::redact::redact;

pub mod auth;
pub mod tls;

/// The web configuration, validated and ready to serve with.
pub struct WebConfig {
    /// The file it came from, for the log.
    pub source: String,
    /// The TLS server settings, when `tls_server_config` enables TLS.
    pub tls: Option<tls::ServerTls>,
    /// Basic authentication, when `basic_auth_users` has users.
    pub auth: Option<auth::BasicAuth>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit`, when its interval is not zero.
    pub rate_limit: Option<RateLimit>,
    /// `http_server_config.http2`. Accepted for compatibility; this server speaks HTTP/1.1 only,
    /// which is what Prometheus scrapes with unless told otherwise.
    pub http2: bool,
    /// A digest of `tls_server_config` as written (never the text: it may hold a key inline), to
    /// tell whether a reload changed it.
    tls_written: [u8; 32],
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("source", &self.source)
            .field("tls", &self.tls.is_some())
            .field(
                "users",
                &self.auth.as_ref().map_or(0, auth::BasicAuth::users),
            )
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// `tls_server_config` as written: a reload cannot apply a change to it (the listener is bound
    /// with it), only say so.
    pub fn tls_fingerprint(&self) -> [u8; 32] {
        self.tls_written
    }

    /// One line for the log and `--config.check`: what the file turns on.
    pub fn summary(&self) -> String {
        let mut on = Vec::new();
        if let Some(tls) = &self.tls {
            on.push(format!("TLS ({})", tls.describe()));
        }
        if let Some(auth) = &self.auth {
            on.push(format!("basic authentication ({} users)", auth.users()));
        }
        if !self.headers.is_empty() {
            on.push(format!("{} response headers", self.headers.len()));
        }
        if let Some(limit) = &self.rate_limit {
            on.push(format!(
                "rate limit (one request per {:?}, burst {})",
                limit.interval, limit.burst
            ));
        }
        if on.is_empty() {
            "nothing (plain HTTP, no authentication)".to_owned()
        } else {
            on.join(", ")
        }
    }
}

/// The file as written. Unknown keys are errors, as the toolkit's strict YAML reading makes them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<tls::Section>,
    http_server_config: Option<HttpSection>,
    basic_auth_users: Option<BTreeMap<String, serde_yaml::Value>>,
    rate_limit: Option<RateLimitSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitSection {
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
    #[serde(default)]
    burst: u32,
}

/// Where an error is reported: the file, its text (to find lines in) and the key path.
pub(crate) struct Place<'a> {
    source: &'a str,
    text: &'a str,
    /// Directory relative paths are read from.
    dir: &'a Path,
}

impl Place<'_> {
    /// An error at `path` (keys from the top), with the line of its last key.
    pub(crate) fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError {
            source: self.source.to_owned(),
            path: key_path(path),
            line: locate(self.text, path),
            message: message.into(),
        }
    }

    /// `path` as the toolkit reads it: relative to the web config file's directory.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.dir.join(path)
        }
    }
}

/// Read and validate the web configuration file, building everything it enables.
pub fn load(path: &Path) -> Result<WebConfig, ConfigErrors> {
    let source = path.display().to_string();
    let refuse = |message: String| {
        ConfigErrors(vec![ConfigError {
            source: source.clone(),
            path: String::new(),
            line: None,
            message,
        }])
    };
    // Bounded like the configuration file: a FIFO or a device named by mistake must not hang the
    // start or a reload.
    let bytes = read_bounded(path, crate::config::MAX_FILE_BYTES)
        .map_err(|e| refuse(format!("cannot read the web configuration file: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| refuse("the web configuration file is not UTF-8 text".to_owned()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&source, &text, dir)
}

/// [`load`] on a file's text.
pub fn parse(source: &str, text: &str, dir: &Path) -> Result<WebConfig, ConfigErrors> {
    let place = Place { source, text, dir };
    let yaml_error = |e: serde_yaml::Error| {
        ConfigErrors(vec![ConfigError {
            source: source.to_owned(),
            path: String::new(),
            line: e.location().map(|l| l.line()),
            message: redact(&e.to_string()),
        }])
    };
    // A `Value` first: it refuses duplicate keys (a second user of the same name, say), which a map
    // would silently overwrite.
    let document = serde_yaml::from_str::<serde_yaml::Value>(text).map_err(yaml_error)?;
    let tls_written = {
        use sha2::Digest as _;
        let written = document
            .get("tls_server_config")
            .and_then(|section| serde_yaml::to_string(section).ok())
            .unwrap_or_default();
        sha2::Sha256::digest(written.as_bytes()).into()
    };
    let file = match document {
        serde_yaml::Value::Null => File::default(),
        _ => serde_yaml::from_str::<File>(text).map_err(yaml_error)?,
    };
    let mut errors = Vec::new();
    let tls = match file.tls_server_config.filter(tls::Section::enabled) {
        Some(section) => match tls::ServerTls::build(section, &place) {
            Ok(tls) => Some(tls),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        },
        None => None,
    };
    let auth = match file.basic_auth_users.filter(|users| !users.is_empty()) {
        Some(users) => match auth::BasicAuth::new(users, &place) {
            Ok(auth) => Some(auth),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        },
        None => None,
    };
    let (http2, headers) = match file.http_server_config {
        Some(http) => (
            http.http2.unwrap_or(true),
            response_headers(http.headers, &place, &mut errors),
        ),
        None => (true, Vec::new()),
    };
    let rate_limit = file.rate_limit.and_then(|section| {
        let interval = section.interval.filter(|i| !i.is_zero())?;
        if section.burst == 0 {
            errors.push(place.error(
                &["rate_limit", "burst"],
                "must be at least 1 when an interval is set: with 0 every request would be refused",
            ));
            return None;
        }
        Some(RateLimit::new(interval, section.burst))
    });
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(WebConfig {
        source: source.to_owned(),
        tls,
        auth,
        headers,
        rate_limit,
        http2,
        tls_written,
    })
}

/// The headers the toolkit lets a file set, and the values it accepts for some of them.
const HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Content-Security-Policy", None),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-XSS-Protection", None),
    ("Strict-Transport-Security", None),
];

fn response_headers(
    headers: BTreeMap<String, String>,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let at = ["http_server_config", "headers", name.as_str()];
        let Some((_, allowed)) = HEADERS.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) else {
            let names: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
            errors.push(place.error(
                &at,
                format!(
                    "this header cannot be set here; the ones that can are {}",
                    names.join(", ")
                ),
            ));
            continue;
        };
        // Blank means unset, as in the toolkit.
        if value.trim().is_empty() {
            continue;
        }
        if let Some(allowed) = allowed
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim()))
        {
            errors.push(place.error(
                &at,
                format!("expected one of {}, got {value:?}", allowed.join(", ")),
            ));
            continue;
        }
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(name), Ok(value)) => out.push((name, value)),
            _ => errors.push(place.error(&at, "not a valid HTTP header value")),
        }
    }
    out
}

/// `rate_limit`: a token bucket over every request, as the toolkit has it; past it, 429.
pub struct RateLimit {
    interval: Duration,
    burst: u32,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst,
            bucket: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Take one token; `false` when the bucket is empty.
    pub fn allow(&self) -> bool {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        let now = Instant::now();
        let refill = now.duration_since(*last).as_secs_f64() / self.interval.as_secs_f64();
        *tokens = (*tokens + refill).min(f64::from(self.burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
