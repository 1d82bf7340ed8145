//! Helpers for tests that run the built `fanout_exporter` binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this test run.
///
/// `CARGO_BIN_EXE_fanout_exporter` is only set while compiling the root package's own tests and
/// benches, not this crate, so the binary is found where cargo puts it for them: next to the
/// directory of the running test executable (`target/<profile>/deps/<test>` beside
/// `target/<profile>/fanout_exporter`).
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile.join("fanout_exporter");
    assert!(
        bin.is_file(),
        "{} not found: run the tests with cargo test, which builds the binary first",
        bin.display()
    );
    bin
}

/// A running exporter, killed when dropped. Its stderr is collected for assertions.
pub struct Exporter {
    child: Child,
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Exporter {
    /// Start the binary with `args` and wait until it logs the address it listens on.
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(Command::new(bin()).args(args))
    }

    /// [`Exporter::start`] with exactly the environment `env`, nothing inherited (as a container
    /// would run it).
    pub fn start_with_env(args: &[&str], env: &[(String, String)]) -> Self {
        Self::spawn(
            Command::new(bin())
                .args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v))),
        )
    }

    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fanout_exporter");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // logfmt: `address=127.0.0.1:1234`; JSON: `"address":"127.0.0.1:1234"`.
                let logfmt = line
                    .split(" address=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next());
                let json = line
                    .split("\"address\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next());
                if let Some(address) = logfmt.or(json) {
                    let _ = tx.send(address.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("address in log"),
            Err(_) => {
                // Disconnected: stderr closed, most likely because the process exited.
                let exited = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "exporter did not log its address (exit status: {exited:?}); log: {:?}",
                    log.lock().unwrap()
                );
            }
        };
        Self {
            child,
            address,
            log,
        }
    }

    /// GET `path` from the exporter.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        get(self.address, path, headers)
    }

    /// `method` `path` on the exporter.
    pub fn request(&self, method: &str, path: &str) -> Response {
        request(self.address, method, path, &[])
    }

    /// Send `signal` (as `kill` spells it) and return at once; the process may go on running.
    pub fn send(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Process id, for reading its resource use.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Send SIGTERM and wait for the process to exit.
    pub fn terminate(self) -> ExitStatus {
        self.signal("-TERM")
    }

    /// Send `signal` (as `kill` spells it) and wait for the process to exit.
    pub fn signal(mut self, signal: &str) -> ExitStatus {
        self.send(signal);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough to see exactly what the exporter sends.
pub fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(address, "GET", path, headers)
}

/// [`get`] with another method and an empty body.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(&mut stream, address, method, path, headers).expect("an HTTP answer")
}

/// [`get`] that says what failed instead of panicking: for servers expected to refuse.
pub fn try_get(address: SocketAddr, path: &str) -> Result<Response, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(&mut stream, address, "GET", path, &[])
}

/// GET `path` over TLS with `client`'s settings; `Err` says why the connection or handshake failed
/// (a refused client certificate, say).
pub fn get_tls(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    client: Arc<rustls::ClientConfig>,
) -> Result<Response, String> {
    let tcp = TcpStream::connect(address).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(client, name).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    exchange(&mut stream, address, "GET", path, headers)
}

/// Send one request on `stream` and read the whole answer (the request says `Connection: close`).
fn exchange(
    stream: &mut (impl Read + Write),
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Response, String> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        // A TLS peer that closes without close_notify still sent a whole answer.
        if raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
            return Err(format!("reading: {e}"));
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

pub use crate::watched::free_port;

/// Write `text` to `name` in `dir` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `binary` in one of the directories of PATH, the first that has it.
pub fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    })
}

/// `promtool`, or a failure that says what to install.
pub fn promtool() -> PathBuf {
    on_path("promtool").unwrap_or_else(|| {
        panic!(
            "promtool not found on PATH: install the Debian package `prometheus` (apt-get install prometheus), or run scripts/test, which does"
        )
    })
}

/// `promtool check metrics` on `body`: whether it passed, and everything it printed.
pub fn promtool_check(body: &[u8]) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Every family of an exposition: name -> (TYPE, label names of its samples). The `_bucket`, `_sum`
/// and `_count` series of a histogram or summary count under their family.
pub type Shapes = std::collections::BTreeMap<String, (String, std::collections::BTreeSet<String>)>;

/// The [`Shapes`] of an exposition.
pub fn families(text: &str) -> Shapes {
    let mut out = Shapes::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line has a type");
            out.entry(name.to_owned()).or_default().0 = kind.to_owned();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let series = line.rsplit_once(' ').expect("sample line has a value").0;
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or(l)),
            None => (series, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| {
                out.get(*base)
                    .is_some_and(|(kind, _)| kind == "histogram" || kind == "summary")
            })
            .unwrap_or(name)
            .to_owned();
        let entry = out.entry(family).or_default();
        for (label, _) in split_labels(labels) {
            entry.1.insert(label);
        }
    }
    out
}

/// `a="x",b="y"` into pairs; values may contain commas and escaped quotes.
pub fn split_labels(labels: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').to_owned(), value));
        rest = &after[end..];
    }
    out
}

/// Compare a peer exporter's families with ours: the peer's families we lack (other than
/// `peer_only` prefixes), and the ones whose label names (ours add `target`, and may add the
/// `extra_labels` a newer upstream has) or type (`type_ok(name, peer's, ours)`) differ.
pub fn compare_with_peer(
    theirs: &Shapes,
    mine: &Shapes,
    peer_only: &[(&str, &str)],
    type_ok: impl Fn(&str, &str, &str) -> bool,
    extra_labels: &[(&str, &str)],
) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, (kind, labels)) in theirs {
        if peer_only.iter().any(|(prefix, _)| name.starts_with(prefix)) {
            continue;
        }
        let Some((our_kind, our_labels)) = mine.get(name) else {
            missing.push(name.clone());
            continue;
        };
        let mut expected = labels.clone();
        expected.insert("target".to_owned());
        for (family, label) in extra_labels {
            if family == name && our_labels.contains(*label) {
                expected.insert((*label).to_owned());
            }
        }
        if *our_labels != expected {
            mismatched.push(format!("{name}: labels {our_labels:?}, peer {labels:?}"));
        }
        if !type_ok(name, kind, our_kind) {
            mismatched.push(format!("{name}: type {our_kind}, peer {kind}"));
        }
    }
    (missing, mismatched)
}

/// `promtool check metrics` on `body` must parse it and find nothing but the `accepted` lint
/// findings: `(name prefix, finding)` pairs of names inherited from a peer exporter.
pub fn assert_promtool_accepts(body: &[u8], accepted: &[(&str, &str)]) {
    let (passed, output) = promtool_check(body);
    assert!(
        !output.contains("error while linting"),
        "promtool could not parse the exposition:\n{output}"
    );
    let unexpected: Vec<&str> = output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|line| {
            !accepted
                .iter()
                .any(|(name, finding)| line.starts_with(name) && line.contains(finding))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool findings outside the inherited-name exceptions:\n{}",
        unexpected.join("\n")
    );
    // promtool exits non-zero on lint findings too; without any, it must pass.
    if output.trim().is_empty() {
        assert!(passed, "promtool failed without output");
    }
}

/// Every one of `targets` of `kind` is up (`up_metric` 1) and scraped without error in `text`.
pub fn assert_targets_up(
    exporter: &Exporter,
    text: &str,
    kind: &str,
    up_metric: &str,
    targets: &[&str],
) {
    for target in targets {
        assert_eq!(
            value(text, &format!("{up_metric}{{target=\"{target}\"}}")),
            Some(1.0),
            "{target} is down:\n{}",
            exporter.log().join("\n")
        );
        assert_eq!(
            value(
                text,
                &format!(
                    "fanout_exporter_scrape_success{{collector=\"{kind}\",target=\"{target}\"}}"
                )
            ),
            Some(1.0),
            "{target} scrape failed:\n{}",
            exporter.log().join("\n")
        );
    }
}

/// Every series (name and labels) of an exposition, in order.
pub fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').expect("sample line has a value").0)
        .collect()
}

/// The value of one series, if present.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.parse().expect("numeric value"))
}

/// Debian's blackbox_exporter binary.
pub const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";
/// Debian's mysqld_exporter binary.
pub const MYSQLD_EXPORTER: &str = "/usr/bin/prometheus-mysqld-exporter";
/// Debian's redis_exporter binary.
pub const REDIS_EXPORTER: &str = "/usr/bin/prometheus-redis-exporter";

/// A running peer exporter from Debian (the one we replace), on a free port, killed when dropped.
/// The constructors return `None` when its package is not installed, so callers decide whether that
/// is a failure (tests) or a note (benchmarks).
pub struct Peer {
    /// Where it listens.
    pub address: SocketAddr,
    child: Child,
}

impl Peer {
    /// blackbox_exporter with one `http_2xx` module (IPv4 first, as ours), its config in `dir`.
    pub fn blackbox(dir: &Path) -> Option<Self> {
        let config = write(
            dir,
            "blackbox.yml",
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n",
        );
        Self::start(
            BLACKBOX,
            &[format!("--config.file={}", config.display())],
            &[],
        )
    }

    /// mysqld_exporter (0.14) scraping one server through its socket as root, with the
    /// sub-collectors our default set has: its own defaults less `info_schema.query_response_time`
    /// (a Percona and MariaDB plugin's table, which we do not build).
    pub fn mysqld(socket: &Path) -> Option<Self> {
        Self::start(
            MYSQLD_EXPORTER,
            &["--no-collect.info_schema.query_response_time".to_owned()],
            &[(
                "DATA_SOURCE_NAME",
                format!("root@unix({})/", socket.display()),
            )],
        )
    }

    /// redis_exporter (1.45) scraping the server at `url`.
    pub fn redis(url: &str) -> Option<Self> {
        Self::start(REDIS_EXPORTER, &[format!("--redis.addr={url}")], &[])
    }

    fn start(binary: &str, args: &[String], env: &[(&str, String)]) -> Option<Self> {
        if !Path::new(binary).is_file() {
            return None;
        }
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let peer = Self {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(peer.address).is_err() {
            assert!(Instant::now() < deadline, "{binary} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(peer)
    }

    /// Process id, for reading its resource use.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `command` to completion in a process group of its own, stdin closed, stdout and stderr
/// captured (read as they come, so a chatty program cannot fill a pipe and stall); the whole group is
/// killed and the test fails after `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // The whole group: programs such as Chromium fork helpers that must not outlive the test.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}
