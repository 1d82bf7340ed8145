//! `tls_server_config`: the exporter's own TLS server, on rustls.
//!
//! The toolkit's options map onto rustls where rustls has the feature; where it does not (TLS 1.0
//! and 1.1, CBC and RSA-key-exchange suites, the P-521 curve) the file is refused with a message
//! that says what is offered instead, rather than silently serving something else.
//!
//! Certificates rotate without a restart: the certificate and key files, and the client CA file, are
//! looked at (modification time and size) at most once a second when a client connects, and read
//! again when they changed. A change that does not load (a key written before its certificate, say)
//! is logged and the previous certificate stays in use until the files are consistent again.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use fanout_collectors::config::{MAX_REFERENCED_FILE_BYTES, read_bounded};
use fanout_collectors::tls::{pem_certificates, pem_private_key};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use serde::Deserialize;

use super::Place;
use crate::config::ConfigError;

/// How often changed certificate files are looked for, at most.
const RECHECK: Duration = Duration::from_secs(1);

/// `tls_server_config` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Section {
    cert: Option<String>,
    /// A `Value`, not a `String`: a serde type error would quote a key written as a number.
    key: Option<serde_yaml::Value>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

impl Section {
    /// Whether the section turns TLS on: any of its certificate or client-auth keys set, as the
    /// toolkit decides it. A section with only, say, `min_version` is a mistake reported as such.
    pub(super) fn enabled(&self) -> bool {
        self.cert.is_some()
            || self.key.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.client_ca.is_some()
            || self.client_ca_file.is_some()
            || self.client_auth_type.is_some()
            || self.min_version.is_some()
            || self.max_version.is_some()
            || !self.cipher_suites.is_empty()
            || !self.curve_preferences.is_empty()
    }
}

/// The built TLS server configuration.
pub struct ServerTls {
    config: Arc<ServerConfig>,
    describe: String,
}

impl ServerTls {
    /// The rustls configuration to listen with.
    pub fn server_config(&self) -> ServerConfig {
        (*self.config).clone()
    }

    /// What is on, for the log: versions and client authentication.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub(super) fn build(section: Section, place: &Place<'_>) -> Result<Self, Vec<ConfigError>> {
        let at = |key: &str, message: String| place.error(&["tls_server_config", key], message);
        let mut errors = Vec::new();

        let versions = versions(&section, place, &mut errors);
        let mut provider = rustls::crypto::ring::default_provider();
        match cipher_suites(&section.cipher_suites) {
            Ok(Some(suites)) => provider.cipher_suites = suites,
            Ok(None) => {}
            Err(why) => errors.push(at("cipher_suites", why)),
        }
        match curves(&section.curve_preferences, &provider) {
            Ok(Some(groups)) => provider.kx_groups = groups,
            Ok(None) => {}
            Err(why) => errors.push(at("curve_preferences", why)),
        }
        let provider = Arc::new(provider);

        let certificate = server_certificate(&section, place, &provider).map_err(|e| {
            errors.push(e);
        });
        let client = client_auth(&section, place, &provider).map_err(|e| errors.push(e));
        let (Ok(certificate), Ok(client), Some(versions)) = (certificate, client, versions) else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| {
                vec![at(
                    "cipher_suites",
                    format!("no cipher suite left for the TLS versions allowed: {e}"),
                )]
            })?;
        let describe = format!(
            "{}, client certificates {}",
            versions
                .iter()
                .map(|v| format!("{:?}", v.version))
                .collect::<Vec<_>>()
                .join("/"),
            client
                .as_ref()
                .map_or("not asked for", |c| c.policy.describe())
        );
        let mut config = match client {
            Some(client) => builder.with_client_cert_verifier(Arc::new(client)),
            None => builder.with_no_client_auth(),
        }
        .with_cert_resolver(Arc::new(certificate));
        // The toolkit's default: the server's order of suites wins.
        config.ignore_client_order = section.prefer_server_cipher_suites.unwrap_or(true);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            describe,
        })
    }
}

/// The versions between `min_version` and `max_version` that rustls implements.
fn versions(
    section: &Section,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<&'static SupportedProtocolVersion>> {
    let mut parse = |key: &str, value: Option<&String>, default: u8| -> Option<u8> {
        let Some(value) = value else {
            return Some(default);
        };
        let version = match value.as_str() {
            "TLS10" => 10,
            "TLS11" => 11,
            "TLS12" => 12,
            "TLS13" => 13,
            _ => {
                errors.push(place.error(
                    &["tls_server_config", key],
                    format!("unknown TLS version {value:?}: expected TLS12 or TLS13"),
                ));
                return None;
            }
        };
        if version < 12 {
            errors.push(place.error(
                &["tls_server_config", key],
                format!(
                    "{value} is not offered: rustls implements TLS 1.2 and 1.3 only (write TLS12, the default, or TLS13)"
                ),
            ));
            return None;
        }
        Some(version)
    };
    let min = parse("min_version", section.min_version.as_ref(), 12);
    let max = parse("max_version", section.max_version.as_ref(), 13);
    let (min, max) = (min?, max?);
    if min > max {
        errors.push(place.error(
            &["tls_server_config", "max_version"],
            "is lower than min_version",
        ));
        return None;
    }
    let mut versions = Vec::new();
    if min <= 13 && max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= 12 {
        versions.push(&rustls::version::TLS12);
    }
    Some(versions)
}

/// Go's names of the TLS 1.3 suites: Go never lets them be configured and ignores them in
/// `cipher_suites`; so do we.
const GO_TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Suites Go offers that rustls does not (CBC modes and RSA key exchange): refused by name.
const GO_ONLY_SUITES: [&str; 10] = [
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// `cipher_suites`, Go's names, in the order written; `None` keeps rustls' defaults. The TLS 1.3
/// suites are always all offered, first, as Go does.
fn cipher_suites(names: &[String]) -> Result<Option<Vec<SupportedCipherSuite>>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    let tls12: Vec<(String, SupportedCipherSuite)> = all
        .iter()
        .filter(|s| s.tls13().is_none())
        .map(|s| (format!("{:?}", s.suite()), *s))
        .collect();
    let mut chosen: Vec<SupportedCipherSuite> = all
        .iter()
        .filter(|s| s.tls13().is_some())
        .copied()
        .collect();
    let mut refused = Vec::new();
    for name in names {
        // Go accepts the CHACHA20 names with and without the `_SHA256` suffix.
        let canonical = match name.as_str() {
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            }
            other => other,
        };
        if GO_TLS13_SUITES.contains(&canonical) {
            continue;
        }
        match tls12.iter().find(|(n, _)| n == canonical) {
            Some((_, suite)) if !chosen.contains(suite) => chosen.push(*suite),
            Some(_) => {}
            None if GO_ONLY_SUITES.contains(&canonical) => {
                refused.push(format!("{name} (not implemented by rustls)"));
            }
            None => refused.push(format!("{name} (unknown)")),
        }
    }
    if !refused.is_empty() {
        let offered: Vec<&str> = tls12.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "cannot offer {}; the TLS 1.2 suites on offer are {}",
            refused.join(", "),
            offered.join(", ")
        ));
    }
    Ok(Some(chosen))
}

/// `curve_preferences`, Go's names, in the order written; `None` keeps rustls' defaults.
fn curves(
    names: &[String],
    provider: &CryptoProvider,
) -> Result<Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut chosen = Vec::new();
    let mut refused = Vec::new();
    for name in names {
        let group = match name.as_str() {
            "CurveP256" => Some(rustls::NamedGroup::secp256r1),
            "CurveP384" => Some(rustls::NamedGroup::secp384r1),
            "X25519" => Some(rustls::NamedGroup::X25519),
            "CurveP521" => {
                refused.push(format!("{name} (not implemented by rustls' ring provider)"));
                None
            }
            _ => {
                refused.push(format!("{name} (unknown)"));
                None
            }
        };
        if let Some(group) = group
            && let Some(kx) = provider.kx_groups.iter().find(|g| g.name() == group)
            && !chosen
                .iter()
                .any(|c: &&dyn rustls::crypto::SupportedKxGroup| c.name() == group)
        {
            chosen.push(*kx);
        }
    }
    if !refused.is_empty() {
        return Err(format!(
            "cannot offer {}; the curves on offer are CurveP256, CurveP384 and X25519",
            refused.join(", ")
        ));
    }
    Ok(Some(chosen))
}

/// The server's certificate: from files (watched) or inline (fixed).
fn server_certificate(
    section: &Section,
    place: &Place<'_>,
    provider: &Arc<CryptoProvider>,
) -> Result<Certificate, ConfigError> {
    let at = |key: &str, message: String| place.error(&["tls_server_config", key], message);
    let cert = match (&section.cert, &section.cert_file) {
        (Some(_), Some(_)) => {
            return Err(at("cert", "give cert or cert_file, not both".into()));
        }
        (Some(pem), None) => Pem::Inline(pem.clone().into_bytes()),
        (None, Some(path)) => Pem::File(place.resolve(path)),
        (None, None) => {
            return Err(at(
                "cert_file",
                "missing: TLS needs a certificate (cert_file, or cert inline)".into(),
            ));
        }
    };
    let key = match (&section.key, &section.key_file) {
        (Some(_), Some(_)) => return Err(at("key", "give key or key_file, not both".into())),
        (Some(serde_yaml::Value::String(pem)), None) => Pem::Inline(pem.clone().into_bytes()),
        (Some(_), None) => {
            return Err(at(
                "key",
                "expected the PEM text of the key, as a string".into(),
            ));
        }
        (None, Some(path)) => Pem::File(place.resolve(path)),
        (None, None) => {
            return Err(at(
                "key_file",
                "missing: TLS needs the certificate's private key (key_file, or key inline)".into(),
            ));
        }
    };
    let load = {
        let provider = Arc::clone(provider);
        let (cert, key) = (cert.clone(), key.clone());
        move || -> Result<Arc<CertifiedKey>, (&'static str, String)> {
            let chain = pem_certificates(&cert.read().map_err(|e| (cert.key("cert"), e))?)
                .map_err(|e| (cert.key("cert"), e))?;
            let key_der = pem_private_key(&key.read().map_err(|e| (key.key("key"), e))?)
                .map_err(|e| (key.key("key"), e))?;
            CertifiedKey::from_der(chain, key_der, &provider)
                .map(Arc::new)
                .map_err(|e| {
                    (
                        key.key("key"),
                        match e {
                            rustls::Error::InconsistentKeys(_) => {
                                "the key does not belong to the certificate".to_owned()
                            }
                            _ => "the key cannot sign for this server (unsupported algorithm)"
                                .to_owned(),
                        },
                    )
                })
        }
    };
    let first = load().map_err(|(key, why)| at(key, why))?;
    let files = [cert, key]
        .into_iter()
        .filter_map(|p| match p {
            Pem::File(path) => Some(path),
            Pem::Inline(_) => None,
        })
        .collect();
    Ok(Certificate(Watched::new(
        "certificate",
        files,
        first,
        Box::new(move || load().map_err(|(key, why)| format!("{key}: {why}"))),
    )))
}

/// PEM text, from a file or written inline.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Inline(Vec<u8>),
}

impl Pem {
    fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => read_bounded(path, MAX_REFERENCED_FILE_BYTES)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Pem::Inline(pem) => Ok(pem.clone()),
        }
    }

    /// The key it was given as: `cert` or `cert_file`, and so on.
    fn key(&self, base: &'static str) -> &'static str {
        match (self, base) {
            (Pem::File(_), "cert") => "cert_file",
            (Pem::File(_), "key") => "key_file",
            (Pem::File(_), _) => "client_ca_file",
            (Pem::Inline(_), base) => base,
        }
    }
}

/// A value loaded from files, loaded again when they change.
struct Watched<T> {
    what: &'static str,
    files: Vec<PathBuf>,
    load: Box<dyn Fn() -> Result<T, String> + Send + Sync>,
    state: Mutex<WatchState<T>>,
}

struct WatchState<T> {
    stamp: Vec<Option<(SystemTime, u64)>>,
    checked: Instant,
    value: T,
}

impl<T: Clone> Watched<T> {
    fn new(
        what: &'static str,
        files: Vec<PathBuf>,
        first: T,
        load: Box<dyn Fn() -> Result<T, String> + Send + Sync>,
    ) -> Self {
        Self {
            what,
            state: Mutex::new(WatchState {
                stamp: stamp(&files),
                checked: Instant::now(),
                value: first,
            }),
            files,
            load,
        }
    }

    /// The current value, read again first if the files changed since they were last looked at.
    fn get(&self) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.files.is_empty() && state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = stamp(&self.files);
            if now != state.stamp {
                // Remembered either way: a change that does not load is reported once, not on every
                // connection, and is tried again when the files change again.
                state.stamp = now;
                match (self.load)() {
                    Ok(value) => {
                        state.value = value;
                        tracing::info!(what = self.what, "reloaded TLS {} files", self.what);
                    }
                    Err(why) => tracing::error!(
                        what = self.what,
                        error = why.as_str(),
                        "changed TLS files do not load; keeping the previous ones"
                    ),
                }
            }
        }
        state.value.clone()
    }
}

fn stamp(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// The server certificate resolver over the watched files.
struct Certificate(Watched<Arc<CertifiedKey>>);

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("files", &self.0.files)
            .finish()
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

/// `client_auth_type`, Go's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

impl Policy {
    fn mandatory(self) -> bool {
        matches!(self, Policy::RequireAny | Policy::RequireAndVerify)
    }

    fn verifies(self) -> bool {
        matches!(self, Policy::VerifyIfGiven | Policy::RequireAndVerify)
    }

    fn describe(self) -> &'static str {
        match self {
            Policy::Request => "asked for, not verified",
            Policy::RequireAny => "required, not verified",
            Policy::VerifyIfGiven => "verified when given",
            Policy::RequireAndVerify => "required and verified",
        }
    }
}

/// Client certificates: the policy, the (watched) CA, and the SANs a certificate must have one of.
struct ClientAuth {
    policy: Policy,
    verifier: Option<Watched<Arc<dyn ClientCertVerifier>>>,
    sans: Option<Vec<String>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("policy", &self.policy)
            .field("sans", &self.sans)
            .finish_non_exhaustive()
    }
}

fn client_auth(
    section: &Section,
    place: &Place<'_>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<ClientAuth>, ConfigError> {
    let at = |key: &str, message: String| place.error(&["tls_server_config", key], message);
    let policy = match section.client_auth_type.as_deref() {
        None | Some("" | "NoClientCert") => None,
        Some("RequestClientCert") => Some(Policy::Request),
        // `RequireClientCert` is the toolkit's older spelling.
        Some("RequireAnyClientCert" | "RequireClientCert") => Some(Policy::RequireAny),
        Some("VerifyClientCertIfGiven") => Some(Policy::VerifyIfGiven),
        Some("RequireAndVerifyClientCert") => Some(Policy::RequireAndVerify),
        Some(other) => {
            return Err(at(
                "client_auth_type",
                format!(
                    "unknown policy {other:?}: expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    let ca = match (&section.client_ca, &section.client_ca_file) {
        (Some(_), Some(_)) => {
            return Err(at(
                "client_ca",
                "give client_ca or client_ca_file, not both".into(),
            ));
        }
        (Some(pem), None) => Some(Pem::Inline(pem.clone().into_bytes())),
        (None, Some(path)) => Some(Pem::File(place.resolve(path))),
        (None, None) => None,
    };
    let Some(policy) = policy else {
        if ca.is_some() {
            return Err(at(
                "client_auth_type",
                "client certificates have a CA but no policy: set client_auth_type (RequireAndVerifyClientCert to require and verify them)".into(),
            ));
        }
        if section.client_allowed_sans.is_some() {
            return Err(at(
                "client_allowed_sans",
                "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert".into(),
            ));
        }
        return Ok(None);
    };
    if section.client_allowed_sans.is_some() && !policy.mandatory() {
        return Err(at(
            "client_allowed_sans",
            "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert: with an optional certificate there may be no SAN to match".into(),
        ));
    }
    let verifier = match (policy.verifies(), ca) {
        (false, _) => None,
        (true, None) => {
            return Err(at(
                "client_ca_file",
                format!(
                    "missing: client_auth_type {} verifies client certificates, which needs the CA that issues them",
                    section.client_auth_type.as_deref().unwrap_or_default()
                ),
            ));
        }
        (true, Some(ca)) => {
            let load = {
                let (provider, ca) = (Arc::clone(provider), ca.clone());
                move || -> Result<Arc<dyn ClientCertVerifier>, String> {
                    let mut roots = RootCertStore::empty();
                    for (i, cert) in pem_certificates(&ca.read()?)?.into_iter().enumerate() {
                        roots
                            .add(cert)
                            .map_err(|e| format!("certificate #{}: {e}", i + 1))?;
                    }
                    let builder = WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        Arc::clone(&provider),
                    );
                    let builder = if policy.mandatory() {
                        builder
                    } else {
                        builder.allow_unauthenticated()
                    };
                    builder.build().map_err(|e| e.to_string())
                }
            };
            let first = load().map_err(|why| at(ca.key("client_ca"), why))?;
            let files = match &ca {
                Pem::File(path) => vec![path.clone()],
                Pem::Inline(_) => Vec::new(),
            };
            Some(Watched::new("client CA", files, first, Box::new(load)))
        }
    };
    Ok(Some(ClientAuth {
        policy,
        verifier,
        sans: section.client_allowed_sans.clone(),
        algorithms: provider.signature_verification_algorithms,
    }))
}

impl ClientCertVerifier for ClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.policy.mandatory()
    }

    /// No hints: the CA may change under us, and clients send their one certificate anyway.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Some(verifier) = &self.verifier {
            verifier
                .get()
                .verify_client_cert(end_entity, intermediates, now)?;
        }
        if let Some(allowed) = &self.sans {
            let sans = subject_alt_names(end_entity);
            if !sans.iter().any(|san| allowed.contains(san)) {
                tracing::warn!(
                    found = sans.join(",").as_str(),
                    "client certificate refused: none of its SANs is in client_allowed_sans"
                );
                return Err(rustls::Error::General(
                    "client certificate has no allowed SAN".into(),
                ));
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate's DNS, e-mail, IP and URI subject alternative names, written as the toolkit
/// compares them.
fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some((*s).to_owned())
            }
            GeneralName::IPAddress(bytes) => ip(bytes).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect()
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// [`cipher_suites`] by name, for the unit tests.
#[cfg(test)]
pub(super) fn cipher_suites_for_test(names: &[String]) -> Vec<String> {
    cipher_suites(names)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default()
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect()
}
