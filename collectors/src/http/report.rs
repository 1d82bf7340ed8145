//! What one probe learned, filled in step by step so that a probe cut off by the deadline still
//! reports everything it got to, and turned into blackbox's `probe_*` families at the end.

use std::net::{IpAddr, SocketAddr};

use hyper::Version;
use prometheus::proto::MetricFamily;
use tokio::time::Instant;

use super::tls::TlsFacts;
use crate::{CollectError, ErrorClass, Families};

/// Phases of `probe_http_duration_seconds`, in blackbox's order.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
}

const PHASE_NAMES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

/// The final response as far as it was received.
#[derive(Debug, Default)]
pub(super) struct Response {
    pub status: u16,
    pub version: Option<Version>,
    /// `Content-Length`, -1 when absent or unreadable.
    pub content_length: i64,
    pub last_modified: Option<i64>,
}

/// Everything the metrics are made of.
#[derive(Debug, Default)]
pub(super) struct Report {
    phases: [f64; 5],
    /// The phase in progress and when it began, so a timeout can still account for it.
    pending: Option<(Phase, Instant)>,
    /// DNS time and address of the first hop (the configured target), as blackbox reports them.
    /// `None` inside when the lookup failed.
    pub target_address: Option<(f64, Option<SocketAddr>)>,
    pub redirects: u32,
    /// Reset on every hop: only the final hop's response and handshake are reported.
    pub response: Option<Response>,
    pub tls: Option<TlsFacts>,
    pub body_length: u64,
    pub failed_due_to_regex: bool,
}

impl Report {
    pub(super) fn begin(&mut self, phase: Phase) {
        self.settle();
        self.pending = Some((phase, Instant::now()));
    }

    /// Close the phase in progress, if any.
    pub(super) fn settle(&mut self) {
        if let Some((phase, start)) = self.pending.take() {
            self.phases[phase as usize] += start.elapsed().as_secs_f64();
        }
    }

    /// Run `step` as one timed phase.
    pub(super) async fn timed<T>(&mut self, phase: Phase, step: impl Future<Output = T>) -> T {
        self.begin(phase);
        let out = step.await;
        self.settle();
        out
    }

    /// The timeout of a probe cut off by its deadline, worded by the phase it was in. The endpoint
    /// is the configured one: the phase may belong to a later hop of a redirect.
    pub(super) fn timeout(&self, endpoint: &str, budget: std::time::Duration) -> CollectError {
        use crate::diagnose::{Stage, human, timeout};
        let hop = if self.redirects > 0 {
            format!("{endpoint} (after {} redirects)", self.redirects)
        } else {
            endpoint.to_owned()
        };
        match self.pending.map(|(phase, _)| phase) {
            Some(Phase::Resolve) => timeout(Stage::Resolving, &hop, budget),
            Some(Phase::Connect) => timeout(Stage::Connecting, &hop, budget),
            Some(Phase::Tls) => timeout(Stage::Tls, &hop, budget),
            Some(Phase::Processing) => CollectError::new(
                ErrorClass::Timeout,
                format!(
                    "connected to {hop}, but no response came within {}",
                    human(budget)
                ),
            ),
            Some(Phase::Transfer) => CollectError::new(
                ErrorClass::Timeout,
                format!(
                    "{hop} answered, but the body had not all arrived within {}",
                    human(budget)
                ),
            ),
            None => timeout(Stage::Rest, &hop, budget),
        }
    }

    pub(super) fn phase(&self, phase: Phase) -> f64 {
        self.phases[phase as usize]
    }

    pub(super) fn start_hop(&mut self) {
        self.response = None;
        self.tls = None;
        self.body_length = 0;
    }

    pub(super) fn families(&self, duration: f64) -> Vec<MetricFamily> {
        let mut f = Families::new();
        let response = self.response.as_ref();
        let version = response.and_then(|r| r.version).map_or(0.0, version_number);
        let address = self.target_address;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let tls = self.tls.as_ref();
        let expiry = tls.and_then(|t| t.earliest_expiry).map(|t| t as f64);
        let gauges: [(&str, &str, Option<f64>); 14] = [
            (
                "probe_duration_seconds",
                "Returns how long the probe took to complete in seconds",
                Some(duration),
            ),
            (
                "probe_dns_lookup_time_seconds",
                "Returns the time taken for probe dns lookup in seconds",
                address.map(|(seconds, _)| seconds),
            ),
            (
                "probe_ip_protocol",
                "Specifies whether probe ip protocol is IP4 or IP6",
                address.map(|(_, a)| match a {
                    Some(a) if a.is_ipv4() => 4.0,
                    Some(_) => 6.0,
                    None => 0.0,
                }),
            ),
            (
                "probe_ip_addr_hash",
                "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
                address.map(|(_, a)| a.map_or(0.0, |a| f64::from(ip_hash(a.ip())))),
            ),
            (
                "probe_http_status_code",
                "Response HTTP status code",
                Some(response.map_or(0.0, |r| f64::from(r.status))),
            ),
            (
                "probe_http_content_length",
                "Length of http content response",
                Some(response.map_or(0.0, |r| r.content_length as f64)),
            ),
            (
                "probe_http_uncompressed_body_length",
                "Length of uncompressed response body",
                Some(self.body_length as f64),
            ),
            (
                "probe_http_redirects",
                "The number of redirects",
                Some(f64::from(self.redirects)),
            ),
            (
                "probe_http_ssl",
                "Indicates if SSL was used for the final redirect",
                // Both are reset on every hop: a response and a handshake of the final hop.
                Some(flag(response.is_some() && tls.is_some())),
            ),
            (
                "probe_http_version",
                "Returns the version of HTTP of the probe response",
                Some(version),
            ),
            (
                "probe_failed_due_to_regex",
                "Indicates if probe failed due to regex",
                Some(flag(self.failed_due_to_regex)),
            ),
            (
                "probe_http_last_modified_timestamp_seconds",
                "Returns the Last-Modified HTTP response header in unixtime",
                response.and_then(|r| r.last_modified).map(|t| t as f64),
            ),
            (
                "probe_ssl_earliest_cert_expiry",
                "Returns last SSL chain expiry in unixtime",
                expiry,
            ),
            // Blackbox takes the latest, over Go's verified chains, of each chain's earliest expiry.
            // rustls does not hand the verified chain back, so this is the earliest expiry of the
            // chain as presented: the same number when the server sends its full chain minus the
            // root (a presented root or cross-signed extra can only make ours earlier).
            (
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Returns last SSL chain expiry in timestamp",
                expiry,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                f.gauge(name, help).set(&[], value);
            }
        }
        let phases = f.gauge(
            "probe_http_duration_seconds",
            "Duration of http request by phase, summed over all redirects",
        );
        for (name, seconds) in PHASE_NAMES.into_iter().zip(self.phases) {
            phases.set(&[("phase", name)], seconds);
        }
        if let Some(version) = tls.and_then(|t| t.version) {
            f.info(
                "probe_tls_version_info",
                "Returns the TLS version used or NaN when unknown",
                &[("version", version)],
            );
        }
        f.finish()
    }
}

/// blackbox's `probe_ip_addr_hash`: 32-bit FNV-1a over the address's octets, 4 for IPv4 and 16 for
/// IPv6 (what blackbox 0.23 hashes, for a literal and a looked-up name alike: checked against it in
/// tests/it/compat.rs). A gauge that changes when a name starts resolving elsewhere, without putting
/// the address itself in a label.
fn ip_hash(ip: IpAddr) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let octets: &[u8] = match &ip {
        IpAddr::V4(v4) => &v4.octets(),
        IpAddr::V6(v6) => &v6.octets(),
    };
    octets.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(PRIME)
    })
}

fn version_number(version: Version) -> f64 {
    match version {
        Version::HTTP_09 => 0.9,
        Version::HTTP_10 => 1.0,
        Version::HTTP_11 => 1.1,
        Version::HTTP_2 => 2.0,
        Version::HTTP_3 => 3.0,
        _ => 0.0,
    }
}

/// Blackbox's spelling, which `valid_http_versions` is written in.
pub(super) fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values blackbox_exporter 0.23 reported for these addresses (the IPv4 ones given as literals
    /// and as `localhost`, which gave the same hash).
    #[test]
    fn ip_hash_is_fnv1a_over_the_octets() {
        for (ip, blackbox) in [
            ("127.0.0.1", 3_668_918_509u32),
            ("127.0.0.2", 3_618_585_652),
            ("127.1.2.3", 1_704_651_018),
            ("::1", 1_751_717_746),
        ] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(ip_hash(ip), blackbox, "{ip}");
        }
    }
}
