//! Real in-process servers (plain, TLS, mTLS, raw and silent TCP), a test PKI, and readers for the
//! families a probe returned.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fanout_collectors::http::{HttpCollector, HttpSettings};
use fanout_collectors::{CollectError, Collector};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, LOCATION};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use prometheus::proto::MetricFamily;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use url::Url;

/// NotAfter of every leaf: 2031-01-01T00:00:00Z.
pub const LEAF_NOT_AFTER: f64 = 1_924_992_000.0;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub type Reply = Response<Full<Bytes>>;

pub fn reply(status: u16, body: &str) -> Reply {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

pub fn redirect(status: u16, location: &str) -> Reply {
    Response::builder()
        .status(status)
        .header(LOCATION, location)
        .body(Full::default())
        .unwrap()
}

/// Every request a server received, in order.
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// Serve `handler` over HTTP/1.1 (over TLS when `tls` is given) on a fresh port of 127.0.0.1.
pub async fn serve<F, Fut>(tls: Option<Arc<ServerConfig>>, handler: F) -> (SocketAddr, Log)
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let handler = Arc::new(handler);
    let acceptor = tls.map(TlsAcceptor::from);
    let server_log = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (handler, acceptor, log) = (handler.clone(), acceptor.clone(), server_log.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (handler, log) = (handler.clone(), log.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let seen = Seen {
                            method: parts.method,
                            target: parts.uri.to_string(),
                            headers: parts.headers,
                            body: body.collect().await.unwrap().to_bytes(),
                        };
                        log.lock().unwrap().push(seen.clone());
                        Ok::<_, Infallible>(handler(seen).await)
                    }
                });
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve_connection(tls, service).await;
                        }
                    }
                    None => serve_connection(tcp, service).await,
                }
            });
        }
    });
    (addr, log)
}

async fn serve_connection<I, S>(io: I, service: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Reply, Error = Infallible>,
    S::Future: Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A server that reads the request head, writes `response` verbatim and closes.
pub async fn raw(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(response).await;
            });
        }
    });
    addr
}

/// A listener that accepts connections and never answers.
pub async fn silent() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

/// A port whose TCP connect never completes: a listener with a backlog of 0 that never accepts,
/// its accept queue filled first. Linux drops the SYN of every further connect while the queue is
/// full (whether or not SYN cookies are on), so the client keeps retransmitting it until it gives up:
/// on loopback, what a firewall that drops packets looks like. Dropping it closes the listener and
/// the connections that fill it.
pub struct Unconnectable {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _filling: Vec<TcpStream>,
}

pub async fn unconnectable() -> Unconnectable {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    // The kernel may keep a connection or two more than the backlog says: connect until one hangs.
    loop {
        assert!(
            filling.len() < 16,
            "the accept queue of {addr} never filled"
        );
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => filling.push(tcp),
            Ok(Err(e)) => panic!("filling the accept queue of {addr}: {e}"),
            Err(_) => break,
        }
    }
    Unconnectable {
        addr,
        _listener: listener,
        _filling: filling,
    }
}

/// A port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A certificate authority for one test.
pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate: the chain a server sends (leaf, CA) and the PEM files a client is given.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, valid until [`LEAF_NOT_AFTER`].
    pub fn leaf(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.extended_key_usages = vec![purpose];
        params.use_authority_key_identifier_extension = true;
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2031, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn server_leaf(&self) -> Leaf {
        self.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client_leaf(&self) -> Leaf {
        self.leaf(&["probe.client"], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client that trusts this CA, presenting `leaf` when given, TLS 1.2 and 1.3.
    pub fn client(&self, leaf: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots());
        Arc::new(match leaf {
            Some(leaf) => builder
                .with_client_auth_cert(leaf.chain.clone(), leaf.key.clone_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        })
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        Arc::new(roots)
    }
}

/// A server configuration presenting `leaf`; requiring a client certificate from `client_ca` when
/// given; TLS 1.2 only when `tls12_only`.
pub fn server_tls(leaf: &Leaf, client_ca: Option<&Pki>, tls12_only: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(ca.roots(), provider)
                .build()
                .unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    Arc::new(
        builder
            .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
            .unwrap(),
    )
}

/// Default settings for `http://<addr><path>`.
pub fn settings(addr: SocketAddr, path: &str) -> HttpSettings {
    HttpSettings::new(Url::parse(&format!("http://{addr}{path}")).unwrap())
}

/// Probe once with a 5 s deadline.
/// A probe's outcome with its one possible reason: the HTTP collector reports down with exactly one
/// error and up with none, which `probe_until` checks.
#[derive(Debug)]
pub struct Probed {
    pub families: Vec<MetricFamily>,
    pub result: Result<(), CollectError>,
}

pub async fn probe(settings: HttpSettings) -> Probed {
    probe_until(settings, Instant::now() + Duration::from_secs(5)).await
}

pub async fn probe_until(settings: HttpSettings, deadline: Instant) -> Probed {
    let outcome = HttpCollector::new(settings)
        .unwrap()
        .collect(deadline)
        .await;
    assert_eq!(outcome.up, outcome.errors.is_empty(), "{outcome:?}");
    let mut errors = outcome.errors.into_iter();
    let result = errors.next().map_or(Ok(()), Err);
    assert!(errors.next().is_none(), "at most one reason");
    Probed {
        families: outcome.families,
        result,
    }
}

/// The value of the gauge `name` with exactly `labels`, if present.
pub fn gauge(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric())
        .find(|m| {
            let pairs = m.get_label();
            pairs.len() == labels.len()
                && labels
                    .iter()
                    .all(|(n, v)| pairs.iter().any(|p| p.name() == *n && p.value() == *v))
        })
        .map(|m| m.get_gauge().get_value())
}

/// The unlabelled gauge `name`, which must be present.
pub fn value(outcome: &Probed, name: &str) -> f64 {
    gauge(&outcome.families, name, &[]).unwrap_or_else(|| panic!("{name} missing"))
}

pub fn phase(outcome: &Probed, phase: &str) -> f64 {
    gauge(
        &outcome.families,
        "probe_http_duration_seconds",
        &[("phase", phase)],
    )
    .unwrap_or_else(|| panic!("phase {phase} missing"))
}

pub const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];
