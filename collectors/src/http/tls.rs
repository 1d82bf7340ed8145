//! The rustls side of the probe: one client configuration per target, built when the collector is
//! created so a bad PEM file is a config error and not a failed scrape, and what we read back from a
//! finished handshake for the `probe_ssl_*` and `probe_tls_*` families.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, SupportedProtocolVersion};

use super::{SettingsError, TlsSettings, TlsVersion};
use crate::secret::ExposeSecret;
use crate::tls::{AcceptAnyCertificate, both_or_neither, certificates, private_key, root_store};

/// Build the client configuration of one target.
///
/// The ring provider is passed explicitly, so nothing depends on a process-wide default provider.
/// Session resumption is off: blackbox does a full handshake on every probe, and the `tls` phase and
/// the certificate metrics should describe a full handshake too.
pub(crate) fn client_config(tls: &TlsSettings) -> Result<Arc<ClientConfig>, SettingsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    // Parsed even when verification is skipped, so a broken file is reported either way.
    let roots = root_store(tls.ca_pem.as_deref())?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| SettingsError::new("tls.min_version", e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
    } else {
        builder.with_root_certificates(roots)
    };
    let mut config = match (&tls.cert_pem, &tls.key_pem) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                certificates(cert, "tls.cert_file")?,
                private_key(key.expose_secret())?,
            )
            .map_err(|e| SettingsError::new("tls.cert_file", format!("client certificate: {e}")))?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(both_or_neither()),
    };
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a finished handshake tells us, kept for the metrics of the final hop.
#[derive(Debug, Clone, Default)]
pub(super) struct TlsFacts {
    /// Blackbox's spelling of the negotiated version (`TLS 1.3`).
    pub version: Option<&'static str>,
    /// Earliest NotAfter, in Unix seconds, over the certificates the server presented.
    pub earliest_expiry: Option<i64>,
}

impl TlsFacts {
    /// Certificates that do not parse are skipped: the handshake already accepted them (or
    /// verification is off), and one odd certificate should not hide the others' expiry.
    pub(super) fn of(conn: &ClientConnection) -> Self {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => Some("TLS 1.2"),
            Some(ProtocolVersion::TLSv1_3) => Some("TLS 1.3"),
            _ => None,
        };
        let earliest_expiry = conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, cert)| cert.validity().not_after.timestamp())
            .min();
        Self {
            version,
            earliest_expiry,
        }
    }
}
