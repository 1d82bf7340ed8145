//! Servers that misbehave on purpose, for the hostile-input tests: a loopback listener that answers
//! every connection with a fixed [`Script`] of bytes (garbage, a truncated packet, a length that
//! announces far more than ever comes, or an endless stream). They speak no protocol; they are the
//! input a broken or malicious peer could send, written byte by byte.
//!
//! Each connection is served on a thread of its own with blocking sockets, so a reader that stops
//! reading (the exporter gave up at its deadline) ends the stream with a write error. Dropping the
//! [`Hostile`] stops the listener and every stream within a few milliseconds, so nothing keeps
//! writing after its test.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the server waits for before it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: it speaks first, as a MySQL server does.
    Nothing,
    /// Any bytes at all (a RESP command).
    AnyBytes,
    /// A whole HTTP request head (up to `\r\n\r\n`).
    HttpHead,
}

/// What follows the first bytes.
#[derive(Debug, Clone)]
pub enum Then {
    /// Close the connection.
    Close,
    /// Keep the connection open and send nothing more.
    Hold,
    /// Send these bytes again and again, with a pause between.
    Trickle(Vec<u8>, Duration),
    /// Send these bytes again and again, as fast as the reader takes them.
    Flood(Vec<u8>),
}

/// The bytes one connection gets.
#[derive(Debug, Clone)]
pub struct Script {
    pub wait: Wait,
    pub first: Vec<u8>,
    pub then: Then,
}

/// A listener on a free port of 127.0.0.1 running one [`Script`] per connection; stopped on drop.
pub struct Hostile {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Hostile {
    /// Start serving `script`.
    pub fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Non-blocking accept, so the loop sees `stop` without a connection to wake it.
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (loop_stop, loop_accepted) = (Arc::clone(&stop), Arc::clone(&accepted));
        let script = Arc::new(script);
        std::thread::spawn(move || {
            while !loop_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        loop_accepted.fetch_add(1, Ordering::Relaxed);
                        let (stop, script) = (Arc::clone(&loop_stop), Arc::clone(&script));
                        std::thread::spawn(move || run(stream, &script, &stop));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            address,
            stop,
            accepted,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Connections accepted so far: proof that the exporter did come and read the garbage.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serve one connection; every error just ends it (the peer went away, which is the point).
fn run(mut stream: TcpStream, script: &Script, stop: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    // Short timeouts so that every loop below looks at `stop` often.
    let tick = Duration::from_millis(50);
    let _ = stream.set_read_timeout(Some(tick));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let ready = |seen: &[u8]| match script.wait {
        Wait::Nothing => true,
        Wait::AnyBytes => !seen.is_empty(),
        Wait::HttpHead => seen.windows(4).any(|w| w == b"\r\n\r\n"),
    };
    while !ready(&seen) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
    if !write_all(&mut stream, &script.first, stop) {
        return;
    }
    match &script.then {
        Then::Close => {
            let _ = stream.shutdown(Shutdown::Both);
        }
        Then::Hold => {
            // Read and drop whatever comes, until the peer closes or the test ends.
            while !stop.load(Ordering::Relaxed) {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => return,
                }
            }
        }
        Then::Trickle(bytes, pause) => {
            while !stop.load(Ordering::Relaxed) && write_all(&mut stream, bytes, stop) {
                std::thread::sleep(*pause);
            }
        }
        Then::Flood(bytes) => {
            while !stop.load(Ordering::Relaxed) && write_all(&mut stream, bytes, stop) {}
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Write all of `bytes`; false once the peer is gone or the test ends. A reader that is merely slow
/// (a full socket buffer) is waited for.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> bool {
    while !bytes.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match stream.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if is_timeout(&e) => {}
            Err(_) => return false,
        }
    }
    true
}

/// `n` bytes that look random and are the same on every run (xorshift from a fixed seed): garbage
/// that cannot be mistaken for any protocol's framing by chance, and reproducible when it fails.
pub fn noise(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A MySQL packet: 3-byte little-endian payload length, sequence id, payload.
pub fn mysql_packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    assert!(len < 1 << 24, "a MySQL packet payload is below 16 MiB");
    let mut out = len.to_le_bytes()[..3].to_vec();
    out.push(sequence);
    out.extend_from_slice(payload);
    out
}

/// The start of a plausible MySQL protocol-10 initial handshake (version string, connection id, the
/// first salt bytes): enough for a client to commit to parsing it.
pub fn mysql_handshake_start() -> Vec<u8> {
    let mut payload = vec![10u8];
    payload.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
    payload.extend_from_slice(&7u32.to_le_bytes());
    payload.extend_from_slice(b"abcdefgh\0");
    payload
}
