//! `fanout_exporter healthcheck`: the container image has no shell, curl or wget, so a compose
//! healthcheck (or any probe that can only run a command) asks the binary itself whether the server
//! it runs beside answers `/-/healthy`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use fanout_collectors::tls::AcceptAnyCertificate;
use rustls::pki_types::ServerName;

/// Where to reach a server listening on `listen`: an unspecified address (`:9930`, `0.0.0.0`, `[::]`)
/// is reached over loopback, anything else as it is.
pub fn reach(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Ask `address` for `/-/healthy` within `timeout` (for each of connect, send and receive); `Ok` only
/// for a 200 answer, or a 401 when the server requires basic authentication (an authentication
/// challenge proves it is up and serving; the healthcheck has no password to give). With `tls`, it
/// speaks TLS without verifying the certificate: it asks the server it runs beside whether it is
/// alive, not who it is. The error says what went wrong, for the healthcheck's log.
pub fn check(address: SocketAddr, timeout: Duration, tls: bool) -> Result<(), String> {
    let stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("cannot set timeouts: {e}"))?;
    if !tls {
        return ask(stream, address);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
        .with_no_client_auth();
    let name = ServerName::IpAddress(address.ip().into());
    let connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS: {e}"))?;
    ask(rustls::StreamOwned::new(connection, stream), address)
}

fn ask(mut stream: impl Read + Write, address: SocketAddr) -> Result<(), String> {
    let request = format!(
        "GET /-/healthy HTTP/1.0\r\nHost: {address}\r\nUser-Agent: fanout_exporter-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request to {address}: {e}"))?;
    // The status line is all we need; a healthy answer is a few dozen bytes.
    let mut head = Vec::with_capacity(128);
    if let Err(e) = stream.take(1024).read_to_end(&mut head)
        && head.is_empty()
    {
        return Err(format!("no answer from {address}: {e}"));
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or_default();
    let mut parts = status.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some("200" | "401")) if version.starts_with("HTTP/1.") => Ok(()),
        _ if status.is_empty() => Err(format!("{address} closed the connection without an answer")),
        _ => Err(format!("{address}/-/healthy answered {status:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serve one connection with `answer`, as a server would.
    fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 512];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(answer);
            }
        });
        address
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_over_loopback() {
        assert_eq!(
            reach("0.0.0.0:9930".parse().unwrap()),
            "127.0.0.1:9930".parse().unwrap()
        );
        assert_eq!(
            reach("[::]:9930".parse().unwrap()),
            "[::1]:9930".parse().unwrap()
        );
        assert_eq!(
            reach("10.1.2.3:9930".parse().unwrap()),
            "10.1.2.3:9930".parse().unwrap()
        );
    }

    #[test]
    fn only_a_200_or_an_authentication_challenge_is_healthy() {
        let t = Duration::from_secs(5);
        assert_eq!(
            check(
                serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nHealthy\n"),
                t,
                false
            ),
            Ok(())
        );
        assert_eq!(
            check(
                serve_once(b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic\r\n\r\n"),
                t,
                false
            ),
            Ok(())
        );
        let error = check(
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            t,
            false,
        )
        .unwrap_err();
        assert!(error.contains("503"), "{error}");
        let error = check(serve_once(b""), t, false).unwrap_err();
        assert!(error.contains("without an answer"), "{error}");
        let error = check(serve_once(b"SSH-2.0-OpenSSH\r\n"), t, false).unwrap_err();
        assert!(error.contains("SSH-2.0"), "{error}");
    }

    #[test]
    fn a_closed_port_or_a_silent_server_fails_within_the_timeout() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let error = check(closed, Duration::from_secs(5), false).unwrap_err();
        assert!(error.contains("cannot connect"), "{error}");

        // Accepts (the kernel does, from the backlog) but never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let started = std::time::Instant::now();
        let error = check(
            silent.local_addr().unwrap(),
            Duration::from_millis(300),
            false,
        )
        .unwrap_err();
        assert!(error.contains("no answer"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
