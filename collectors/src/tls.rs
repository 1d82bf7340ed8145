//! Client TLS material every kind shares: the `tls` section of a target's config, reading and checking
//! CA bundles, certificates and private keys, and the database kinds' [`ClientTls`].
//!
//! Material is checked when the config is loaded, so a bad PEM file is a config error naming its key
//! and not a failed scrape. The HTTP prober builds its rustls configuration from the same loaders; the
//! database drivers load the material themselves at connect time, which is why they are checked here
//! first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::SettingsError;
use crate::config::{Context, Text};
use crate::secret::{ExposeSecret, SecretBytes};

/// Lowest TLS version accepted from a server, spelt as blackbox spells it (`TLS12`, `TLS13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 (rustls supports nothing older).
    #[default]
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLS13")]
    Tls13,
}

/// A target's `tls` section as written. Files are named here and read by [`TlsConfig::read`] or the
/// kind, relative to the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA bundle to verify the server against instead of the bundled web roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that ask for one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// Name to verify the certificate against (HTTP only).
    pub server_name: Option<Text>,
    /// Encrypt without verifying the server's certificate.
    pub insecure_skip_verify: bool,
    /// Lowest protocol version accepted (HTTP only).
    pub min_version: Option<TlsVersion>,
}

/// The three files of a `tls` section, read.
#[derive(Debug, Default)]
pub struct TlsFiles {
    /// Contents of `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    /// Contents of `cert_file`.
    pub cert_pem: Option<Vec<u8>>,
    /// Contents of `key_file`, held as a secret from the moment it is read.
    pub key_pem: Option<SecretBytes>,
}

impl TlsConfig {
    /// Read the files the section names; a file that cannot be read is an error on its key.
    pub fn read(&self, ctx: &mut Context<'_>) -> TlsFiles {
        let mut read =
            |key: &str, file: Option<&Path>| file.and_then(|f| ctx.read_file(&["tls", key], f));
        TlsFiles {
            ca_pem: read("ca_file", self.ca_file.as_deref()),
            cert_pem: read("cert_file", self.cert_file.as_deref()),
            key_pem: read("key_file", self.key_file.as_deref()).map(SecretBytes::from),
        }
    }

    /// A database target's `tls` section, files read. The drivers verify the certificate against the
    /// host they connect to and have no separate name or version floor to set, so accepting those
    /// keys would promise a check that does not happen.
    pub fn client_tls(&self, kind: &str, ctx: &mut Context<'_>) -> ClientTls {
        for (key, set) in [
            ("server_name", self.server_name.is_some()),
            ("min_version", self.min_version.is_some()),
        ] {
            if set {
                ctx.error(
                    &["tls", key],
                    format!("not supported for {kind} targets: the certificate is verified against the host the target's address names"),
                );
            }
        }
        let files = self.read(ctx);
        ClientTls {
            ca_pem: files.ca_pem,
            cert_pem: files.cert_pem,
            key_pem: files.key_pem,
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }
}

/// Client TLS settings of a database target, file contents already read by the caller.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA bundle to verify the server against instead of the bundled web roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate, for servers that ask for one.
    pub cert_pem: Option<Vec<u8>>,
    /// PEM private key of the client certificate.
    pub key_pem: Option<SecretBytes>,
    /// Encrypt without verifying the server's certificate.
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// Check the material the way a rustls client would load it (PEM blocks readable, certificate and
    /// key given together and matching), since the database drivers only load it at connect time.
    pub(crate) fn check(&self) -> Result<(), SettingsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SettingsError::new("tls", e.to_string()))?
            .with_root_certificates(root_store(self.ca_pem.as_deref())?);
        match (&self.cert_pem, &self.key_pem) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    certificates(cert, "tls.cert_file")?,
                    private_key(key.expose_secret())?,
                )
                .map(drop)
                .map_err(|e| {
                    SettingsError::new("tls.cert_file", format!("client certificate: {e}"))
                }),
            (None, None) => Ok(()),
            _ => Err(both_or_neither()),
        }
    }
}

/// The error for a certificate without its key or a key without its certificate.
pub(crate) fn both_or_neither() -> SettingsError {
    SettingsError::new(
        "tls",
        "a client certificate and its key must be given together",
    )
}

/// The trust store: the CA bundle when one is given, the bundled web roots otherwise.
pub(crate) fn root_store(ca_pem: Option<&[u8]>) -> Result<RootCertStore, SettingsError> {
    let Some(pem) = ca_pem else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    for (index, cert) in certificates(pem, "tls.ca_file")?.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            SettingsError::new("tls.ca_file", format!("certificate #{}: {e}", index + 1))
        })?;
    }
    Ok(store)
}

/// Every certificate of a PEM bundle; at least one.
pub(crate) fn certificates(
    pem: &[u8],
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, SettingsError> {
    pem_certificates(pem).map_err(|why| SettingsError::new(field, why))
}

/// Every certificate of a PEM bundle, at least one: shared with the exporter's own TLS server, whose
/// errors name its own keys.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block found".to_owned());
    }
    Ok(certs)
}

/// The private key of `tls.key_file`.
pub(crate) fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, SettingsError> {
    pem_private_key(pem).map_err(|why| SettingsError::new("tls.key_file", why))
}

/// The private key of a PEM file. The parser's error is not passed on: this is key material, and a
/// decoder message is not worth the risk of quoting a piece of it.
pub fn pem_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| "no readable PKCS#8, PKCS#1 or SEC1 private key in PEM form".to_owned())
}

/// For `insecure_skip_verify` and the exporter's own healthcheck: any chain and name are accepted, but the handshake signatures are still
/// checked against the presented leaf (as Go does), and the chain stays readable through
/// `peer_certificates()` for the expiry metrics.
#[derive(Debug)]
pub struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl AcceptAnyCertificate {
    /// Signatures are checked with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
