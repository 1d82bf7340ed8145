//! The byte stream under a target's connection, opened here rather than by the redis crate so that
//! what one scrape may read from a server is bounded.
//!
//! # Why
//! The crate's reply parser keeps a bulk string, or a line, in its buffer until the whole of it has
//! arrived, whatever length was announced: a server (or anything posing as one on that port) that
//! answers `$9999999999` and then streams bytes, or sends a `+` line that never ends, has the exporter
//! buffer everything it sends until the scrape deadline, about a gigabyte a second on loopback. The
//! crate has no reply size limit, but it runs its connection over any stream it is given, so the
//! stream counts what it reads and fails once a scrape has read [`READ_LIMIT`]; the connection then
//! breaks like any I/O error and the next scrape opens a new one.
//!
//! The cap is per scrape, not per reply, and is checked after each socket read, so a scrape may read
//! past it by one read's worth of bytes.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::diagnose::{self, Sniff, Stage, Step};
use crate::watched_io::{ReadWatch, Watched};
use crate::{CollectError, ErrorClass};

/// Most bytes one scrape reads from a target. A sane server's replies are `INFO ALL` (tens of
/// kilobytes), one slow log entry (the server cuts its arguments short), CONFIG values, and small
/// replies for each key check (at most `max_keys`) and custom command: this leaves room for hundreds
/// of times that, and bounds what a misbehaving server can make the exporter hold (the parser's
/// buffer may reach twice this while it grows).
pub(super) const READ_LIMIT: usize = 16 << 20;

/// What the current scrape may still read from a connection; shared by the connection's stream and
/// the scrapes that use it.
#[derive(Clone)]
pub(super) struct Allowance(Arc<AtomicUsize>);

impl Allowance {
    pub(super) fn new() -> Self {
        Self(Arc::new(AtomicUsize::new(READ_LIMIT)))
    }

    /// A scrape starts with the whole [`READ_LIMIT`].
    pub(super) fn refill(&self) {
        self.0.store(READ_LIMIT, Ordering::Relaxed);
    }

    /// Count `n` bytes read; false once the scrape has read more than its limit.
    fn spend(&self, n: usize) -> bool {
        let before = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(n))
            })
            .unwrap_or_default();
        before >= n
    }

    fn exhausted(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// Every kind of stream a target's connection runs over.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A stream that fails reads once its [`Allowance`] is spent.
pub(super) type Metered = Watched<Box<dyn Io>, Allowance>;

fn over_limit() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the server sent more than {} MiB in one scrape; the connection is closed",
            READ_LIMIT >> 20
        ),
    )
}

impl ReadWatch for Allowance {
    fn before_read(&mut self) -> io::Result<()> {
        if self.exhausted() {
            Err(over_limit())
        } else {
            Ok(())
        }
    }

    fn after_read(&mut self, read: &[u8]) -> io::Result<()> {
        if self.spend(read.len()) {
            Ok(())
        } else {
            Err(over_limit())
        }
    }
}

/// Where and how to open a target's stream.
pub(super) enum Transport {
    Tcp {
        host: String,
        port: u16,
    },
    Tls {
        host: String,
        port: u16,
        config: Arc<ClientConfig>,
    },
    Unix(std::path::PathBuf),
}

/// An opened stream: metered by a fresh [`Allowance`] (for the scrapes to refill), its first bytes
/// kept in a [`Sniff`] (the application bytes, above TLS), so that an error caused by another
/// protocol on the port can say which.
pub(super) struct Opened {
    pub(super) stream: Metered,
    pub(super) allowance: Allowance,
    pub(super) sniff: Sniff,
}

impl Transport {
    /// Open the stream by `deadline`. Each step (resolving, connecting, the TLS handshake) is timed
    /// out on its own, so that a timeout says which one hung; errors are classed where they happen.
    pub(super) async fn open(
        &self,
        endpoint: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Opened, CollectError> {
        let sniff = Sniff::new();
        let inner: Box<dyn Io> = match self {
            Self::Tcp { host, port } => Box::new(diagnose::sniffed(
                tcp(host, *port, endpoint, deadline, budget).await?,
                sniff.clone(),
            )),
            Self::Tls { host, port, config } => {
                let name = ServerName::try_from(host.clone()).map_err(|e| {
                    CollectError::new(
                        ErrorClass::Tls,
                        format!("{host} cannot be a TLS server name: {e}"),
                    )
                })?;
                let tcp = tcp(host, *port, endpoint, deadline, budget).await?;
                // What came instead of a TLS answer says what listens there.
                let raw = Sniff::new();
                let handshake = TlsConnector::from(Arc::clone(config))
                    .connect(name, diagnose::sniffed(tcp, raw.clone()));
                match timeout_at(deadline, handshake).await {
                    Ok(Ok(tls)) => Box::new(diagnose::sniffed(tls, sniff.clone())),
                    Ok(Err(e)) => {
                        return Err(diagnose::io_error(
                            endpoint,
                            "Redis",
                            Step::Tls,
                            e,
                            Some(&raw),
                        ));
                    }
                    Err(_) => return Err(diagnose::timeout(Stage::Tls, endpoint, budget)),
                }
            }
            Self::Unix(path) => Box::new(diagnose::sniffed(
                unix(path, endpoint, deadline, budget).await?,
                sniff.clone(),
            )),
        };
        let allowance = Allowance::new();
        Ok(Opened {
            stream: Metered::new(inner, allowance.clone()),
            allowance,
            sniff,
        })
    }
}

/// Resolve, then connect to the addresses in turn (as the crate does), each step under the deadline.
async fn tcp(
    host: &str,
    port: u16,
    endpoint: &str,
    deadline: Instant,
    budget: Duration,
) -> Result<TcpStream, CollectError> {
    let connect_error = |e| diagnose::io_error(endpoint, "Redis", Step::Connect, e, None);
    let addresses: Vec<std::net::SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => return Err(diagnose::timeout(Stage::Resolving, endpoint, budget)),
        };
    if addresses.is_empty() {
        return Err(CollectError::new(
            ErrorClass::Dns,
            format!("the host of {endpoint} resolves to no address"),
        ));
    }
    let tcp = match timeout_at(deadline, TcpStream::connect(&addresses[..])).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(connect_error(e)),
        Err(_) => return Err(diagnose::timeout(Stage::Connecting, endpoint, budget)),
    };
    // Commands are small and answered one round trip at a time: no Nagle delay, as the crate does.
    tcp.set_nodelay(true).map_err(connect_error)?;
    Ok(tcp)
}

async fn unix(
    path: &Path,
    endpoint: &str,
    deadline: Instant,
    budget: Duration,
) -> Result<UnixStream, CollectError> {
    match timeout_at(deadline, UnixStream::connect(path)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(diagnose::io_error(
            endpoint,
            "Redis",
            Step::Connect,
            e,
            None,
        )),
        Err(_) => Err(diagnose::timeout(Stage::Connecting, endpoint, budget)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allowance_is_spent_by_reads_and_refilled_per_scrape() {
        let allowance = Allowance::new();
        assert!(allowance.spend(READ_LIMIT - 10));
        assert!(!allowance.exhausted());
        // The read that crosses the limit fails, and so does every read after it.
        assert!(!allowance.spend(11));
        assert!(allowance.exhausted());
        allowance.refill();
        assert!(!allowance.exhausted());
        assert!(allowance.spend(READ_LIMIT));
        assert!(allowance.exhausted());
    }
}
