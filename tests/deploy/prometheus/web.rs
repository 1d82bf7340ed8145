//! The HTTP targets of the real-Prometheus test: a plain and an HTTPS server on loopback, and the
//! CA and certificate of the HTTPS one, made with `openssl`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::LEAF_DAYS;
use crate::common::run;
use crate::support;

/// A CA (`ca.crt`) and a server certificate for 127.0.0.1 and localhost signed by it (`server.crt`,
/// `server.key`, valid [`LEAF_DAYS`]), made with the `openssl` command in `dir`.
pub fn make_pki(dir: &Path) {
    let p256 = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &p256,
            &["-keyout", "ca.key", "-out", "ca.crt", "-days", "3650"],
            &["-subj", "/CN=fanout_exporter test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req", "-new"][..],
            &p256,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
    );
    support::write(
        dir,
        "server.ext",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    let days = LEAF_DAYS.to_string();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            &days,
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let openssl = support::on_path("openssl").unwrap_or_else(|| {
        panic!("openssl not found on PATH: install the Debian package `openssl` (apt-get install openssl)")
    });
    let (passed, output) = run(Command::new(openssl).args(args).current_dir(dir));
    assert!(passed, "openssl {args:?} failed: {output}");
}

/// A rustls server configuration with `server.crt` and `server.key` from `dir` (ring only, as the
/// exporter).
pub fn server_tls(dir: &Path) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.crt"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}

/// An HTTP/1.1 server on a free port of 127.0.0.1, over TLS with `tls`, answering every request
/// `200 ok` and closing the connection. A thread per connection; the threads end with the process.
pub fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tls = tls.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
                match tls {
                    None => {
                        let mut stream = stream;
                        answer(&mut stream);
                    }
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut stream = rustls::StreamOwned::new(connection, stream);
                        answer(&mut stream);
                        stream.conn.send_close_notify();
                        let _ = stream.flush();
                    }
                }
            });
        }
    });
    address
}

/// Read one request's head, answer `200 ok`.
fn answer(stream: &mut (impl Read + Write)) {
    let mut request = Vec::new();
    let mut buf = [0; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 65536 {
            return;
        }
    }
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
    );
    let _ = stream.flush();
}
