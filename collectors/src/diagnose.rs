//! Telling why a target is down, in words that say the true cause: the [`CollectError`]s every kind
//! builds from the errors of its client library (I/O, rustls), the names of the protocols a wrong port
//! turns out to speak, and the wording of each kind of timeout.
//!
//! # Why this exists
//! A client library reports what failed in its own terms: "broken pipe" for a Redis client pointed at
//! a MySQL port, "deadline exceeded" for both a firewalled port and a hung server. Operators have to
//! act on the cause (fix the port, the password, the CA, wake the server), so every kind maps its
//! library's errors through here, where the mapping is written once.
//!
//! # Recognising another protocol
//! [`Sniffed`] keeps the first bytes a connection received; [`looks_like`] names the protocol they
//! belong to. A kind whose server never speaks first (Redis, HTTP) learns that way that the port
//! belongs to a server that does (MySQL greets every client at once). For a kind whose server speaks
//! first (MySQL), a silent port is asked with [`listen`]: on a second connection, only while the first
//! is still waiting for its greeting. Only the protocol's name is ever shown, never the bytes: a port
//! that echoes would otherwise put our own request, credentials included, into the message.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::CertificateError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::watched_io::{ReadWatch, Watched};
use crate::{CollectError, ErrorClass};

/// `2.5 s`, `500 ms`: a budget as people write it, to the nearest 100 ms from a second up and the
/// nearest 10 ms below. A collector measures its budget from when it starts, a moment after the
/// engine set the deadline (longer on a busy machine), so the exact value would read `999 ms` for a
/// budget of one second, or `2.49 s` for 2.5.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 0.995 {
        return format!("{} ms", (secs * 100.0).round() * 10.0);
    }
    let text = format!("{:.1}", (secs * 10.0).round() / 10.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

/// The step a collection was in when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Looking the host name up.
    Resolving,
    /// The TCP (or unix socket) connect: no connection yet.
    Connecting,
    /// Connected; the TLS handshake had not finished.
    Tls,
    /// Connected; the server had not answered at all (no greeting, no reply, no response head).
    Answer,
    /// The server answered, and the rest of the collection was not finished.
    Rest,
}

/// The timeout error for a collection of `endpoint` that was in `stage` when `budget` ran out.
pub fn timeout(stage: Stage, endpoint: &str, budget: Duration) -> CollectError {
    let within = human(budget);
    let message = match stage {
        Stage::Resolving => format!("resolving the host of {endpoint} took longer than {within}"),
        Stage::Connecting => {
            format!("connecting to {endpoint} timed out: no connection within {within}")
        }
        Stage::Tls => {
            format!("connected to {endpoint}, but the TLS handshake did not finish within {within}")
        }
        Stage::Answer => {
            format!("connected to {endpoint}, but the server did not answer within {within}")
        }
        Stage::Rest => {
            format!("{endpoint} answered, but the collection did not finish within {within}")
        }
    };
    CollectError::new(ErrorClass::Timeout, message)
}

/// A protocol recognised from the first bytes a server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// A MySQL/MariaDB initial handshake (or its error packet).
    Mysql,
    /// A RESP reply.
    Redis,
    /// An HTTP/1 status line.
    Http,
    /// A TLS record (handshake or alert).
    Tls,
    /// An SSH banner.
    Ssh,
}

impl Protocol {
    /// The name people know it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mysql => "MySQL",
            Self::Redis => "Redis",
            Self::Http => "HTTP",
            Self::Tls => "TLS",
            Self::Ssh => "SSH",
        }
    }
}

/// The protocol the first bytes a server sent belong to, when they are recognisable.
pub fn looks_like(first: &[u8]) -> Option<Protocol> {
    if first.starts_with(b"HTTP/1.") || first.starts_with(b"HTTP/2") {
        return Some(Protocol::Http);
    }
    if first.starts_with(b"SSH-") {
        return Some(Protocol::Ssh);
    }
    // A TLS record: content type alert (21) or handshake (22), then version 3.x.
    if let [21 | 22, 3, 0..=4, ..] = first {
        return Some(Protocol::Tls);
    }
    // A MySQL packet: a 3-byte length, sequence id 0, then protocol version 10 (the greeting) or
    // 0xff (an error packet a server sends instead, "too many connections", "host blocked").
    if let [l0, l1, l2, 0, kind, ..] = first {
        let length = usize::from(*l0) | usize::from(*l1) << 8 | usize::from(*l2) << 16;
        if (*kind == 10 || *kind == 0xff) && (5..=1024).contains(&length) {
            return Some(Protocol::Mysql);
        }
    }
    // RESP: a type byte and a line. Redis answers `-ERR ...` to anything it cannot parse.
    if let Some(&kind) = first.first()
        && b"+-:$*_,#!=(%~>|".contains(&kind)
        && first.windows(2).any(|w| w == b"\r\n")
    {
        return Some(Protocol::Redis);
    }
    None
}

/// The error for `endpoint` answering in something other than `expected`.
pub fn mismatch(endpoint: &str, expected: &str, seen: Option<Protocol>) -> CollectError {
    let message = match seen {
        Some(seen) => {
            format!(
                "{endpoint} does not speak {expected} (it looks like {})",
                seen.name()
            )
        }
        None => format!("{endpoint} does not speak {expected}: its answer is not {expected}"),
    };
    CollectError::new(ErrorClass::Protocol, message)
}

/// Longest prefix of a connection's input kept for [`looks_like`].
const SNIFF_BYTES: usize = 64;

/// The first bytes a connection received, shared between the connection's stream and whoever
/// explains its errors.
#[derive(Debug, Clone, Default)]
pub struct Sniff(Arc<Mutex<Vec<u8>>>);

impl Sniff {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The protocol of what arrived first, if recognisable.
    pub fn protocol(&self) -> Option<Protocol> {
        looks_like(&self.bytes())
    }

    /// Whether anything arrived at all.
    pub fn received(&self) -> bool {
        !self.bytes().is_empty()
    }

    fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, data: &[u8]) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let room = SNIFF_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
    }
}

/// A stream that records the first bytes it reads into a [`Sniff`].
pub type Sniffed<S> = Watched<S, Recorder>;

/// `inner`, the first bytes it reads recorded into `sniff`.
pub fn sniffed<S>(inner: S, sniff: Sniff) -> Sniffed<S> {
    Watched::new(inner, Recorder { sniff, full: false })
}

/// What a [`Sniffed`] stream records into. Costs one lock per read until [`SNIFF_BYTES`] have
/// arrived, nothing after.
pub struct Recorder {
    sniff: Sniff,
    full: bool,
}

impl ReadWatch for Recorder {
    fn after_read(&mut self, read: &[u8]) -> io::Result<()> {
        if !self.full {
            self.sniff.record(read);
            self.full = self.sniff.bytes().len() >= SNIFF_BYTES;
        }
        Ok(())
    }
}

/// Where an I/O error happened, which changes what it means: a reset while connecting is a refusal,
/// in the middle of an exchange the server dropping us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Resolving or connecting (TCP or unix socket).
    Connect,
    /// The TLS handshake.
    Tls,
    /// On an established connection.
    Exchange,
}

/// The rustls error inside `e`, if TLS is what failed (tokio-rustls and sqlx wrap it in the I/O
/// error they return).
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref())
}

/// Whether `e` is a failed name lookup. std reports those as an uncategorised error with a fixed
/// prefix (getaddrinfo's own text follows); tokio and sqlx pass it on unchanged.
fn is_lookup_failure(e: &io::Error) -> bool {
    let text = e.to_string();
    text.starts_with("failed to lookup address information")
        || text.contains("could not resolve to any address")
}

/// The error for `e`, an I/O error at `step` with `endpoint`. `sniff` holds what the connection
/// received, when the caller kept it, so that an error caused by another protocol on the port says so.
pub fn io_error(
    endpoint: &str,
    expected: &str,
    step: Step,
    e: io::Error,
    sniff: Option<&Sniff>,
) -> CollectError {
    let seen = sniff.and_then(Sniff::protocol);
    if let Some(tls) = rustls_error(&e) {
        // The raw bytes under a failed handshake say what answered instead of TLS.
        let error = tls_error(endpoint, tls, seen);
        return error.with_source(e);
    }
    use io::ErrorKind as K;
    // A client that connects and logs in in one call (sqlx) reports the server hanging up during
    // the login as a connect error; the connection was made, so it is the server closing it.
    let step = match (step, e.kind()) {
        (
            Step::Connect,
            K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe,
        ) => Step::Exchange,
        _ => step,
    };
    let (class, message) = match (step, e.kind()) {
        (_, _) if is_lookup_failure(&e) => (
            ErrorClass::Dns,
            format!("the host of {endpoint} does not resolve: {e}"),
        ),
        (Step::Connect, K::ConnectionRefused) => (
            ErrorClass::Refused,
            format!("{endpoint} refused the connection: nothing listens there"),
        ),
        (Step::Connect, K::NotFound) => (
            ErrorClass::Refused,
            format!("no socket at {endpoint}: nothing listens there"),
        ),
        (Step::Connect, K::TimedOut) => (
            ErrorClass::Timeout,
            format!("connecting to {endpoint} timed out (the system gave up): {e}"),
        ),
        (Step::Connect, K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable) => (
            ErrorClass::Connect,
            format!("{endpoint} cannot be reached: {e}"),
        ),
        (Step::Connect, _) => (
            ErrorClass::Connect,
            format!("connecting to {endpoint} failed: {e}"),
        ),
        (Step::Tls, K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe) => {
            let what = match seen {
                Some(Protocol::Tls) | None => String::new(),
                Some(p) => format!(" (it looks like {}, not TLS)", p.name()),
            };
            (
                ErrorClass::Tls,
                format!(
                    "TLS handshake with {endpoint} failed: the server closed the connection{what}"
                ),
            )
        }
        (Step::Tls, _) => (
            ErrorClass::Tls,
            format!("TLS handshake with {endpoint} failed: {e}"),
        ),
        (Step::Exchange, _) => {
            // A server of another protocol often gives up on our first request and closes.
            if let Some(seen) = seen.filter(|p| p.name() != expected) {
                return mismatch(endpoint, expected, Some(seen)).with_source(e);
            }
            match e.kind() {
                K::UnexpectedEof => (
                    ErrorClass::Closed,
                    format!("{endpoint} closed the connection before it answered"),
                ),
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::NotConnected => (
                    ErrorClass::Closed,
                    format!("{endpoint} closed the connection: {e}"),
                ),
                K::TimedOut => (
                    ErrorClass::Timeout,
                    format!("{endpoint} stopped answering: {e}"),
                ),
                _ => (
                    ErrorClass::Other,
                    format!("the connection to {endpoint} failed: {e}"),
                ),
            }
        }
    };
    CollectError::new(class, message).with_source(e)
}

/// The error for a failed TLS handshake with `endpoint`: certificate verification or the handshake
/// itself, each said as such. `seen` is what answered instead, when the raw bytes were kept.
pub fn tls_error(endpoint: &str, e: &rustls::Error, seen: Option<Protocol>) -> CollectError {
    let message = match e {
        rustls::Error::InvalidCertificate(cert) => {
            let hint = match cert {
                CertificateError::UnknownIssuer => {
                    " (it is not signed by a CA this target trusts: set tls.ca_file to the CA that \
                     issued it)"
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    " (it was issued for another name: connect by a name it carries, or set \
                     tls.server_name on an http target)"
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    " (it has expired)"
                }
                _ => "",
            };
            format!(
                "TLS certificate verification of {endpoint} failed: the server's certificate was \
                 refused: {e}{hint}"
            )
        }
        rustls::Error::InvalidMessage(_) => match seen {
            Some(p) if p != Protocol::Tls => format!(
                "TLS handshake with {endpoint} failed: the server does not speak TLS (it looks like {})",
                p.name()
            ),
            _ => format!(
                "TLS handshake with {endpoint} failed: the server's answer is not TLS ({e})"
            ),
        },
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            let hint = match alert {
                A::CertificateRequired => " (it wants a client certificate: set tls.cert_file)",
                A::BadCertificate | A::UnknownCA | A::CertificateUnknown => {
                    " (it did not accept our client certificate)"
                }
                A::ProtocolVersion | A::HandshakeFailure => {
                    " (no TLS version or cipher suite in common)"
                }
                _ => "",
            };
            format!(
                "TLS handshake with {endpoint} failed: the server sent the alert {alert:?}{hint}"
            )
        }
        _ => format!("TLS handshake with {endpoint} failed: {e}"),
    };
    CollectError::new(ErrorClass::Tls, message)
}

/// What [`listen`] heard on a port whose server should have greeted us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// No connection by the deadline (or it failed): the connect itself is what hangs.
    NoConnection,
    /// Connected, and nothing came: not a greeting, and no answer to a probe either.
    Silence,
    /// The server spoke first; in this protocol, if recognisable.
    Greeting(Option<Protocol>),
    /// The server only answered our probe; in this protocol, if recognisable.
    Answer(Option<Protocol>),
}

/// Bytes sent to a port that stays silent, to make whatever listens there answer: Redis replies
/// `+PONG` (or `-NOAUTH`) to an inline `PING`, an HTTP server rejects it with a 400 status line.
const PROBE: &[u8] = b"PING\r\n";

/// Connect to `address` and find out what listens there, by `deadline`: wait up to `patience` for a
/// greeting, then send [`PROBE`] and wait for any answer. For kinds whose own connection heard
/// nothing: a server that should have greeted us, or one that hung up on our request without a
/// word. It costs the server one more connection, so callers only use it once their own exchange
/// has already failed or stalled.
pub async fn listen(
    address: impl tokio::net::ToSocketAddrs,
    patience: Duration,
    deadline: Instant,
) -> Heard {
    let Ok(Ok(mut tcp)) = timeout_at(deadline, TcpStream::connect(address)).await else {
        return Heard::NoConnection;
    };
    let mut buf = [0u8; SNIFF_BYTES];
    let greeting_by = (Instant::now() + patience).min(deadline);
    match timeout_at(greeting_by, tcp.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => return Heard::Silence,
        Ok(Ok(n)) => return Heard::Greeting(looks_like(buf.get(..n).unwrap_or_default())),
        Err(_) => {}
    }
    if !matches!(timeout_at(deadline, tcp.write_all(PROBE)).await, Ok(Ok(()))) {
        return Heard::Silence;
    }
    match timeout_at(deadline, tcp.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Heard::Answer(looks_like(buf.get(..n).unwrap_or_default())),
        _ => Heard::Silence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(human(Duration::from_secs(10)), "10 s");
        assert_eq!(human(Duration::from_millis(500)), "500 ms");
        assert_eq!(human(Duration::from_millis(1240)), "1.2 s");
        assert_eq!(human(Duration::from_micros(999_700)), "1 s");
        assert_eq!(human(Duration::from_micros(2_499_600)), "2.5 s");
        // A collector that started 40 ms late on a busy machine still names the budget.
        assert_eq!(human(Duration::from_millis(2_460)), "2.5 s");
        assert_eq!(human(Duration::from_millis(123)), "120 ms");
        assert_eq!(human(Duration::ZERO), "0 ms");
    }

    #[test]
    fn first_bytes_name_their_protocol() {
        let mut greeting = vec![0x5b, 0, 0, 0, 10];
        greeting.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        assert_eq!(looks_like(&greeting), Some(Protocol::Mysql));
        assert_eq!(
            looks_like(&[0x17, 0, 0, 0, 0xff, 0x10, 0x04]),
            Some(Protocol::Mysql)
        );
        assert_eq!(looks_like(b"+PONG\r\n"), Some(Protocol::Redis));
        assert_eq!(
            looks_like(b"-NOAUTH Authentication required.\r\n"),
            Some(Protocol::Redis)
        );
        assert_eq!(
            looks_like(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(Protocol::Http)
        );
        assert_eq!(looks_like(&[22, 3, 3, 0, 90, 2]), Some(Protocol::Tls));
        assert_eq!(looks_like(&[21, 3, 1, 0, 2, 2, 70]), Some(Protocol::Tls));
        assert_eq!(looks_like(b"SSH-2.0-OpenSSH_9.6\r\n"), Some(Protocol::Ssh));
        // A line without its end, noise, nothing.
        assert_eq!(looks_like(b"+PON"), None);
        assert_eq!(looks_like(&[0x9e, 0x37, 0x79, 0xb9, 0x7f]), None);
        assert_eq!(looks_like(b""), None);
    }

    #[test]
    fn a_sniff_keeps_only_the_first_bytes() {
        let sniff = Sniff::new();
        assert!(!sniff.received());
        sniff.record(b"HTTP/1.1 400 Bad Request\r\n");
        sniff.record(&[b'x'; 100]);
        assert_eq!(sniff.bytes().len(), SNIFF_BYTES);
        assert_eq!(sniff.protocol(), Some(Protocol::Http));
    }

    #[test]
    fn io_errors_are_classed_by_step() {
        let e = |kind| io::Error::new(kind, "x");
        let class = |step, kind| io_error("h:1", "Redis", step, e(kind), None).class();
        assert_eq!(
            class(Step::Connect, io::ErrorKind::ConnectionRefused),
            ErrorClass::Refused
        );
        assert_eq!(
            class(Step::Exchange, io::ErrorKind::ConnectionReset),
            ErrorClass::Closed
        );
        assert_eq!(
            class(Step::Tls, io::ErrorKind::UnexpectedEof),
            ErrorClass::Tls
        );
        let lookup =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            io_error("x.invalid:1", "Redis", Step::Connect, lookup, None).class(),
            ErrorClass::Dns
        );
        // A broken connection after a MySQL greeting is the wrong port, not a dropped connection.
        let sniff = Sniff::new();
        sniff.record(&[0x5b, 0, 0, 0, 10, b'5']);
        let error = io_error(
            "h:3306",
            "Redis",
            Step::Exchange,
            e(io::ErrorKind::BrokenPipe),
            Some(&sniff),
        );
        assert_eq!(error.class(), ErrorClass::Protocol);
        assert_eq!(
            error.to_string(),
            "h:3306 does not speak Redis (it looks like MySQL)"
        );
    }
}
