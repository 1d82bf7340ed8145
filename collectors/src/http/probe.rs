//! One probe: hop by hop over fresh connections, then the checks in blackbox's order.
//!
//! Each step is an explicit await wrapped in its phase, which is why this uses hyper's connection-level
//! client and not a pooled client: the phases measure real DNS, TCP and TLS work on every probe.

use std::io;
use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::header::{
    AUTHORIZATION, CONTENT_LENGTH, COOKIE, HOST, HeaderMap, HeaderValue, LAST_MODIFIED, LOCATION,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

use super::HttpCollector;
use super::report::{Phase, Report, Response, version_name};
use super::tls::TlsFacts;
use crate::diagnose::{self, Protocol, Sniff, Step};
use crate::{BoxError, CollectError, ErrorClass};

/// How much body is kept for regexp matching when no `body_size_limit` bounds it.
const BUFFER_CAP: usize = 16 << 20;

/// `host:port` of a URL: what error messages and logs may show (no userinfo, path or query).
pub(super) fn endpoint(url: &Url) -> String {
    match (url.host(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    }
}

/// Run the probe, recording into `report` as it goes.
pub(super) async fn run(c: &HttpCollector, report: &mut Report) -> Result<(), CollectError> {
    let s = &c.settings;
    let mut hop = Hop {
        url: s.url.clone(),
        method: c.method.clone(),
        body: s.body.clone().map(Bytes::from),
        host_header: c.host_header.clone(),
    };
    loop {
        report.start_hop();
        let endpoint = endpoint(&hop.url);
        let exchange = exchange(c, &hop, report).await?;
        let status = exchange.response.status();
        if s.follow_redirects
            && is_redirect(status)
            && let Some(location) = exchange.response.headers().get(LOCATION)
        {
            if report.redirects >= s.max_redirects {
                return Err(CollectError::check(format!(
                    "stopped after {} redirects (last status {})",
                    report.redirects,
                    status.as_u16()
                )));
            }
            hop = hop.redirected(status, location).map_err(|why| {
                CollectError::new(ErrorClass::Protocol, format!("{endpoint}: {why}"))
            })?;
            if let Some(guard) = &s.redirect_guard {
                let allowed =
                    super::config::destination(hop.url.as_str()).is_ok_and(|d| guard.allows(&d));
                if !allowed {
                    return Err(CollectError::check(format!(
                        "redirect to {} refused: not in the module's allowed_targets",
                        self::endpoint(&hop.url)
                    )));
                }
            }
            report.redirects += 1;
            continue;
        }
        let version = exchange.response.version();
        let sniff = exchange.sniff.clone();
        let body = read_body(c, exchange.response.into_body(), report).await;
        return check(c, report, status, version, body, endpoint, &sniff);
    }
}

/// Go's client follows exactly these.
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// What changes from one hop to the next.
struct Hop {
    url: Url,
    method: Method,
    body: Option<Bytes>,
    /// A configured `Host` header; kept across relative redirects only, as Go does.
    host_header: Option<String>,
}

impl Hop {
    /// Go's rules: 301/302/303 turn anything but GET and HEAD into GET and drop the body; 307/308
    /// repeat the request as it was.
    fn redirected(&self, status: StatusCode, location: &HeaderValue) -> Result<Self, String> {
        let location = location
            .to_str()
            .map_err(|_| "redirect Location is not valid text".to_owned())?;
        let url = self
            .url
            .join(location)
            .map_err(|e| format!("redirect Location is not a valid URL: {e}"))?;
        let repeat = matches!(status.as_u16(), 307 | 308);
        let method = if repeat || self.method == Method::GET || self.method == Method::HEAD {
            self.method.clone()
        } else {
            Method::GET
        };
        let relative = Url::parse(location).is_err() && !location.starts_with("//");
        Ok(Self {
            url,
            method,
            body: self.body.clone().filter(|_| repeat),
            host_header: self.host_header.clone().filter(|_| relative),
        })
    }
}

/// Credentials and the configured TLS server name belong to the configured host; Go's client also
/// drops credentials on redirects to another host.
fn same_host(a: &Url, b: &Url) -> bool {
    a.host_str() == b.host_str()
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts the spawned hyper connection task when the hop is done or the probe is cancelled, so no
/// socket outlives its probe.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A response with its headers read, and what keeps its connection alive while the body is read.
struct Exchange {
    response: hyper::Response<Incoming>,
    _sender: http1::SendRequest<Full<Bytes>>,
    _connection: AbortOnDrop,
    /// The first bytes of the response, for explaining a body that breaks off.
    sniff: Sniff,
}

/// One hop: resolve, connect, TLS, send, read the headers. Records the final-hop facts.
async fn exchange(
    c: &HttpCollector,
    hop: &Hop,
    report: &mut Report,
) -> Result<Exchange, CollectError> {
    let url = &hop.url;
    let endpoint = endpoint(url);
    let (host, port) = match (url.host(), url.port_or_known_default()) {
        (Some(host), Some(port)) if matches!(url.scheme(), "http" | "https") => (host, port),
        _ => {
            let scheme = url.scheme();
            return Err(CollectError::new(
                ErrorClass::Other,
                format!("cannot probe a {scheme} URL ({endpoint}), only http and https"),
            ));
        }
    };
    let request = request(c, hop).map_err(|e| {
        CollectError::new(
            ErrorClass::Other,
            format!("the request to {endpoint} cannot be built: {e}"),
        )
    })?;

    let resolved = match &host {
        Host::Domain(name) => report.timed(Phase::Resolve, resolve(name, port)).await,
        Host::Ipv4(ip) => Ok(literal(report, SocketAddr::from((*ip, port))).await),
        Host::Ipv6(ip) => Ok(literal(report, SocketAddr::from((*ip, port))).await),
    };
    if report.target_address.is_none() {
        // Recorded for a failed lookup too: blackbox reports its time and protocol 0.
        let chosen = resolved.as_ref().ok().copied();
        report.target_address = Some((report.phase(Phase::Resolve), chosen));
    }
    let addr = resolved.map_err(|e| {
        let error = diagnose::io_error(&endpoint, "HTTP", Step::Connect, e, None);
        match error.class() {
            ErrorClass::Dns => error,
            // `resolve` found no address at all.
            _ => CollectError::new(
                ErrorClass::Dns,
                format!("the host of {endpoint} resolves to no address"),
            ),
        }
    })?;
    let tcp = report
        .timed(Phase::Connect, TcpStream::connect(addr))
        .await
        .map_err(|e| diagnose::io_error(&endpoint, "HTTP", Step::Connect, e, None))?;
    // Only latency, never correctness, depends on this.
    let _ = tcp.set_nodelay(true);
    // The first bytes of the response (above TLS): a port of another service gives itself away.
    let sniff = Sniff::new();
    let io: Box<dyn Io> = if url.scheme() == "https" {
        let name = server_name(c, hop, &host)
            .map_err(|e| CollectError::new(ErrorClass::Tls, format!("{endpoint}: {e}")))?;
        let connector = TlsConnector::from(c.tls.clone());
        // What came instead of a TLS answer says what listens there.
        let raw = Sniff::new();
        let tls = report
            .timed(
                Phase::Tls,
                connector.connect(name, diagnose::sniffed(tcp, raw.clone())),
            )
            .await
            .map_err(|e| diagnose::io_error(&endpoint, "HTTP", Step::Tls, e, Some(&raw)))?;
        report.tls = Some(TlsFacts::of(tls.get_ref().1));
        Box::new(diagnose::sniffed(tls, sniff.clone()))
    } else {
        Box::new(diagnose::sniffed(tcp, sniff.clone()))
    };

    report.begin(Phase::Processing);
    let (mut sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(&endpoint, e, &sniff))?;
    let connection = AbortOnDrop(tokio::spawn(connection).abort_handle());
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(e) if e.is_incomplete_message() && !sniff.received() && url.scheme() == "http" => {
            return Err(hung_up(&endpoint, addr, e).await);
        }
        Err(e) => return Err(hyper_error(&endpoint, e, &sniff)),
    };
    report.settle();

    let headers = response.headers();
    report.response = Some(Response {
        status: response.status().as_u16(),
        version: Some(response.version()),
        content_length: header_str(headers, CONTENT_LENGTH)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1),
        last_modified: header_str(headers, LAST_MODIFIED)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok()),
    });
    Ok(Exchange {
        response,
        _sender: sender,
        _connection: connection,
        sniff,
    })
}

/// How long [`hung_up`] spends finding out what listens on a port.
const ASK_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// The error for a server at `addr` that closed the connection on our request without a word.
/// Some servers of other protocols do that on purpose (Redis drops a client that sends `Host:`,
/// as a defence against cross-protocol attacks from browsers), so a second connection asks what
/// listens there ([`diagnose::listen`]); an HTTP server answers its probe with a status line.
async fn hung_up(endpoint: &str, addr: SocketAddr, e: hyper::Error) -> CollectError {
    let heard = diagnose::listen(
        addr,
        std::time::Duration::from_millis(100),
        tokio::time::Instant::now() + ASK_BUDGET,
    )
    .await;
    match heard {
        diagnose::Heard::Greeting(Some(seen)) | diagnose::Heard::Answer(Some(seen))
            if seen != Protocol::Http =>
        {
            diagnose::mismatch(endpoint, "HTTP", Some(seen)).with_source(e)
        }
        _ => CollectError::new(
            ErrorClass::Closed,
            format!("{endpoint} closed the connection without answering"),
        )
        .with_source(e),
    }
}

/// What `e`, from hyper on a connection that received what `sniff` holds, means for `endpoint`:
/// another protocol's answer (a MySQL greeting, a Redis error reply) is the wrong port, not a
/// broken HTTP server.
fn hyper_error(endpoint: &str, e: hyper::Error, sniff: &Sniff) -> CollectError {
    let seen = sniff.protocol().filter(|p| *p != Protocol::Http);
    if seen.is_some() || e.is_parse() {
        return diagnose::mismatch(endpoint, "HTTP", seen).with_source(with_causes(&e));
    }
    if e.is_incomplete_message() {
        let message = if sniff.received() {
            format!("{endpoint} closed the connection in the middle of its response")
        } else {
            format!("{endpoint} closed the connection without answering")
        };
        return CollectError::new(ErrorClass::Closed, message).with_source(e);
    }
    let io = std::error::Error::source(&e)
        .and_then(|cause| cause.downcast_ref::<io::Error>())
        .map(|io| io::Error::new(io.kind(), io.to_string()));
    if let Some(io) = io {
        return diagnose::io_error(endpoint, "HTTP", Step::Exchange, io, Some(sniff));
    }
    let class = if e.is_closed() || e.is_canceled() {
        ErrorClass::Closed
    } else {
        ErrorClass::Other
    };
    let text = with_causes(&e);
    CollectError::new(class, format!("talking to {endpoint}: {text}")).with_source(text)
}

/// hyper's own message names only the outer layer ("connection error"); the causes say what happened
/// (a TLS alert, a reset).
fn with_causes(error: &hyper::Error) -> BoxError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message.into()
}

fn header_str(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The address of an IP literal, timed as the resolve phase on the first hop. blackbox hands the
/// configured host to its resolver whatever it is, so for a literal it still reports the
/// microseconds of that lookup as `probe_dns_lookup_time_seconds` and in the resolve phase; timing
/// our choice keeps both the same kind of small, non-zero value. Later hops are looked up by
/// blackbox's HTTP client, which times names only.
async fn literal(report: &mut Report, addr: SocketAddr) -> SocketAddr {
    if report.target_address.is_some() {
        return addr;
    }
    report.timed(Phase::Resolve, async { addr }).await
}

/// Blackbox's default choice: IPv4 when there is one, else the first address; one attempt, no
/// happy eyeballs.
async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address found"))
}

/// SNI and verification name: `tls.server_name` on the configured host, else a configured `Host`
/// header (without port), else the URL's host.
fn server_name(
    c: &HttpCollector,
    hop: &Hop,
    host: &Host<&str>,
) -> Result<ServerName<'static>, BoxError> {
    let configured =
        (c.settings.tls.server_name.as_deref()).filter(|_| same_host(&hop.url, &c.settings.url));
    let name = match (configured, hop.host_header.as_deref()) {
        (Some(name), _) => name.to_owned(),
        (None, Some(header)) => strip_port(header).to_owned(),
        (None, None) => match host {
            Host::Domain(name) => (*name).to_owned(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        },
    };
    ServerName::try_from(name).map_err(|e| format!("invalid TLS server name: {e}").into())
}

/// `example.com:8443` → `example.com`, `[::1]:8443` → `::1`.
fn strip_port(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.split(':').next().unwrap_or(host),
    }
}

fn request(c: &HttpCollector, hop: &Hop) -> Result<Request<Full<Bytes>>, BoxError> {
    let url = &hop.url;
    let mut headers = c.headers.clone();
    if same_host(url, &c.settings.url) {
        if let Some(auth) = &c.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
    } else {
        for name in [AUTHORIZATION, WWW_AUTHENTICATE, COOKIE] {
            headers.remove(name);
        }
    }
    let host = match (&hop.host_header, url.port()) {
        (Some(header), _) => header.clone(),
        (None, Some(port)) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        (None, None) => url.host_str().unwrap_or_default().to_owned(),
    };
    headers.insert(HOST, HeaderValue::from_str(&host)?);
    let mut request = Request::builder()
        .method(hop.method.clone())
        .uri(&url[Position::BeforePath..Position::AfterQuery])
        .body(Full::new(hop.body.clone().unwrap_or_default()))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// How reading the final body ended.
enum BodyEnd {
    /// Read to the end; holds the body when regexps need it.
    Complete(Vec<u8>),
    /// Stopped at a limit; holds the reason.
    TooLarge(String),
    /// The connection broke mid-body.
    Broken(hyper::Error),
}

/// Read the whole body to count it, keeping it only when a regexp will look at it.
async fn read_body(c: &HttpCollector, mut body: Incoming, report: &mut Report) -> BodyEnd {
    let keep = c.buffer_body;
    let (cap, reason) = match c.settings.body_size_limit {
        Some(limit) => (
            usize::try_from(limit).unwrap_or(usize::MAX),
            format!("body is larger than body_size_limit ({limit} bytes)"),
        ),
        None if keep => (
            BUFFER_CAP,
            format!(
                "body is larger than the {} MiB kept for regexp matching; set body_size_limit to \
                 allow more",
                BUFFER_CAP >> 20
            ),
        ),
        None => (usize::MAX, String::new()),
    };
    let mut kept = Vec::new();
    let mut read = 0usize;
    report.begin(Phase::Transfer);
    let end = loop {
        let data = match body.frame().await {
            None => break BodyEnd::Complete(kept),
            Some(Err(e)) => break BodyEnd::Broken(e),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
        };
        let take = data.len().min(cap.saturating_sub(read));
        read += take;
        report.body_length = read as u64;
        if keep {
            kept.extend_from_slice(data.get(..take).unwrap_or_default());
        }
        if take < data.len() {
            break BodyEnd::TooLarge(reason);
        }
    };
    report.settle();
    end
}

/// The checks on the final response, in blackbox's order; the first failure is the reason.
fn check(
    c: &HttpCollector,
    report: &mut Report,
    status: StatusCode,
    version: Version,
    body: BodyEnd,
    endpoint: String,
    sniff: &Sniff,
) -> Result<(), CollectError> {
    let s = &c.settings;
    let fail = |reason: String| Err(CollectError::check(reason));
    let code = status.as_u16();
    let refused = if s.valid_status_codes.is_empty() {
        (!status.is_success()).then(|| format!("status code {code} is not 2xx"))
    } else {
        (!s.valid_status_codes.contains(&code))
            .then(|| format!("status code {code} is not in valid_status_codes"))
    };
    if let Some(reason) = refused {
        // 401 is the server asking for (other) credentials: worth its own class.
        if code == 401 {
            let why = if c.auth.is_some() {
                "the server rejected the configured credentials"
            } else {
                "the server wants credentials, and none are configured"
            };
            return Err(CollectError::new(
                ErrorClass::Auth,
                format!("{reason}: {why}"),
            ));
        }
        return fail(reason);
    }
    let body = match body {
        BodyEnd::Complete(body) => body,
        BodyEnd::TooLarge(reason) => return fail(reason),
        BodyEnd::Broken(e) => return Err(hyper_error(&endpoint, e, sniff)),
    };
    if c.buffer_body {
        // Go matches bytes; invalid UTF-8 becomes U+FFFD here, which only matters to patterns
        // that look for it.
        let text = String::from_utf8_lossy(&body);
        let matched = s
            .fail_if_body_matches_regexp
            .iter()
            .find(|re| re.is_match(&text));
        let missed = s
            .fail_if_body_not_matches_regexp
            .iter()
            .find(|re| !re.is_match(&text));
        report.failed_due_to_regex = matched.is_some() || missed.is_some();
        if let Some(re) = matched {
            return fail(format!(
                "body matched fail_if_body_matches_regexp {:?}",
                re.as_str()
            ));
        }
        if let Some(re) = missed {
            return fail(format!(
                "body did not match fail_if_body_not_matches_regexp {:?}",
                re.as_str()
            ));
        }
    }
    let name = version_name(version);
    if !s.valid_http_versions.is_empty() && !s.valid_http_versions.iter().any(|v| v == name) {
        return fail(format!("{name} is not in valid_http_versions"));
    }
    let tls = report.tls.is_some();
    if s.fail_if_ssl && tls {
        return fail("the final response came over TLS and fail_if_ssl is set".into());
    }
    if s.fail_if_not_ssl && !tls {
        return fail("the final response did not come over TLS and fail_if_not_ssl is set".into());
    }
    Ok(())
}
