//! Real MariaDB servers for the MySQL collector's tests: one `mariadbd` per [`Mariadb`], on a free
//! port of 127.0.0.1 and a fresh temporary directory, plus a primary+replica pair.
//!
//! Cleanup: each server runs under a watchdog that kills it when the test process dies; see watched.rs.

// Each harness has its own copy; a crate including both (benches/scrape.rs) loads the file twice.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::watched::{self, Watched};

const INSTALL_HINT: &str = "install mariadb-server (apt-get install mariadb-server)";

/// Password of the `exporter` account: a `#`, both quote kinds, a backslash and spaces, so that any
/// DSN-style parsing or shell quoting on the way would break it.
pub const EXPORTER_PASSWORD: &str = "pa#ss 'wo\"rd\\ x";
/// Password of the `limited` account.
pub const LIMITED_PASSWORD: &str = "limited pw";
/// Password of the replication account.
const REPL_PASSWORD: &str = "repl#pw";

/// How a server is started.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `--server-id`.
    pub server_id: u32,
    /// Write a binary log (`--log-bin=mysql-bin`), as a primary must.
    pub log_bin: bool,
    /// More server options (`--ssl-cert=...`).
    pub extra_args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            server_id: 1,
            log_bin: false,
            extra_args: Vec::new(),
        }
    }
}

/// One running (or stopped) MariaDB server owned by this test process.
#[derive(Debug)]
pub struct Mariadb {
    dir: PathBuf,
    port: u16,
    opts: Opts,
    server: Option<Watched>,
}

fn need(binary: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
        || Path::new("/usr/sbin").join(binary).is_file();
    assert!(found, "{binary} not found: {INSTALL_HINT}");
}

/// The path of `binary`, also looking in /usr/sbin (not on every user's PATH).
fn program(binary: &str) -> PathBuf {
    need(binary);
    let sbin = Path::new("/usr/sbin").join(binary);
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or(sbin)
}

pub use crate::watched::free_port;

/// A string as a single-quoted SQL literal.
pub fn sql_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn output_text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl Mariadb {
    /// Initialise a data directory and start a server on a free port; returns once it accepts
    /// connections.
    pub fn start(opts: Opts) -> Self {
        // Built first so that `Drop` removes the directory whatever fails below.
        let mut server = Self {
            dir: watched::temp_dir("fanout-mariadb"),
            port: 0,
            opts,
            server: None,
        };
        let data = server.dir.join("data");
        // A private tmpdir: bootstrap servers running side by side must not meet in /tmp.
        fs::create_dir(server.dir.join("tmp")).unwrap();
        let output = Command::new(program("mariadb-install-db"))
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", server.dir.join("tmp").display()))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running mariadb-install-db: {e}: {INSTALL_HINT}"));
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            output_text(&output)
        );
        server.port = watched::on_free_port("mariadbd", "Bind on TCP/IP port", |port| {
            server.port = port;
            server.spawn()
        });
        server
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Unix socket of the server.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("err.log")).unwrap_or_default()
    }

    /// Start `mariadbd` with its watchdog and wait until it answers; the error log on failure.
    fn spawn(&mut self) -> Result<(), String> {
        let _ = fs::remove_file(self.dir.join("err.log"));
        let mut command = Command::new(program("mariadbd"));
        command
            .args(["--no-defaults", "--user=root"])
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            .arg(format!(
                "--log-error={}",
                self.dir.join("err.log").display()
            ))
            .args(["--innodb-buffer-pool-size=16M", "--skip-name-resolve"])
            .arg(format!("--server-id={}", self.opts.server_id))
            .args(&self.opts.extra_args);
        if self.opts.log_bin {
            command.arg("--log-bin=mysql-bin");
        } else {
            command.arg("--relay-log=relay-bin");
        }
        let server = Watched::spawn(&mut command, &self.dir)
            .unwrap_or_else(|e| panic!("running mariadbd: {e}: {INSTALL_HINT}"));
        self.server = Some(server);
        let start = Instant::now();
        loop {
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                self.server = None;
                return Err(format!("exited with {status}:\n{}", self.error_log()));
            }
            if self
                .client()
                .arg("-e")
                .arg("SELECT 1")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.server = None;
                return Err(format!("not ready after 30 s:\n{}", self.error_log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `mariadb` client as root over the socket, in batch mode.
    fn client(&self) -> Command {
        let mut command = Command::new(program("mariadb"));
        command
            .args(["--no-defaults", "-uroot", "--batch"])
            .arg("-S")
            .arg(self.socket())
            .stdin(Stdio::null());
        command
    }

    /// Run `statements` as root; the tab-separated output without the header. Panics with the
    /// client's stderr when the server refuses.
    pub fn sql(&self, statements: &str) -> String {
        let output = self
            .client()
            .arg("--skip-column-names")
            .arg("-e")
            .arg(statements)
            .output()
            .unwrap_or_else(|e| panic!("running mariadb: {e}: {INSTALL_HINT}"));
        assert!(
            output.status.success(),
            "SQL failed on port {}: {statements}\n{}",
            self.port,
            output_text(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Run one query as root: column names and rows of values (`NULL` as `None`).
    pub fn query(&self, statement: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        let output = self
            .client()
            .arg("-e")
            .arg(statement)
            .output()
            .unwrap_or_else(|e| panic!("running mariadb: {e}: {INSTALL_HINT}"));
        assert!(
            output.status.success(),
            "SQL failed on port {}: {statement}\n{}",
            self.port,
            output_text(&output)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        let mut lines = text.lines();
        let columns = lines
            .next()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .unwrap_or_default();
        let rows = lines
            .map(|line| {
                line.split('\t')
                    .map(|v| (v != "NULL").then(|| unescape(v)))
                    .collect()
            })
            .collect();
        (columns, rows)
    }

    /// The single value `statement` returns.
    pub fn scalar(&self, statement: &str) -> String {
        let text = self.sql(statement);
        let mut lines = text.lines();
        let value = lines
            .next()
            .unwrap_or_else(|| panic!("{statement}: no row"));
        assert!(lines.next().is_none(), "{statement}: more than one row");
        unescape(value)
    }

    /// A global status value as root sees it.
    pub fn status(&self, name: &str) -> String {
        let text = self.sql(&format!("SHOW GLOBAL STATUS LIKE {}", sql_quote(name)));
        text.lines()
            .find_map(|l| {
                l.split_once('\t')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.to_owned())
            .unwrap_or_else(|| panic!("no status {name}"))
    }

    /// Create `exporter` (the documented grants, plus SLAVE MONITOR: on MariaDB 10.5.9+ REPLICATION
    /// CLIENT is BINLOG MONITOR and no longer lets one run SHOW SLAVE STATUS) and `limited` (SELECT
    /// only). Kept out of the binary log so a replica can create the same accounts itself.
    pub fn create_users(&self) {
        self.sql(&format!(
            "SET SESSION sql_log_bin = 0;
             CREATE USER 'exporter'@'%' IDENTIFIED BY {};
             GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'%';
             CREATE USER 'limited'@'%' IDENTIFIED BY {};
             GRANT SELECT ON *.* TO 'limited'@'%';",
            sql_quote(EXPORTER_PASSWORD),
            sql_quote(LIMITED_PASSWORD)
        ));
    }

    /// Stop the server with SIGTERM and wait for it to exit. The data directory stays.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take()
            && let Err(e) = server.signal_and_reap("-TERM", Duration::from_secs(30))
        {
            panic!("mariadbd {e}:\n{}", self.error_log());
        }
    }

    /// Kill the server with SIGKILL, as a crash would, and reap it. The data directory stays
    /// (InnoDB recovers it on [`Mariadb::restart`]).
    pub fn kill_server(&mut self) {
        if let Some(server) = self.server.take()
            && let Err(e) = server.signal_and_reap("-KILL", Duration::from_secs(30))
        {
            panic!("mariadbd {e}:\n{}", self.error_log());
        }
    }

    /// The server process id, while it runs (for SIGSTOP and SIGCONT).
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Watched::id)
    }

    /// Start the stopped server again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "restart needs a stopped server");
        if let Err(log) = self.spawn() {
            panic!("mariadbd did not restart on port {}:\n{log}", self.port);
        }
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        // Watchdog, then server, killed and reaped before the directory goes.
        self.server = None;
        watched::remove_dir(&self.dir);
    }
}

/// Undo the `mariadb` client's batch-mode escapes.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A primary with a binary log and a replica replicating from it with GTIDs; both have the
/// `exporter` and `limited` accounts.
#[derive(Debug)]
pub struct Pair {
    pub primary: Mariadb,
    pub replica: Mariadb,
}

impl Pair {
    /// Start both servers (in parallel), set up replication and wait until the replica runs.
    pub fn start() -> Self {
        let (primary, replica) = std::thread::scope(|s| {
            let primary = s.spawn(|| {
                Mariadb::start(Opts {
                    server_id: 1,
                    log_bin: true,
                    ..Opts::default()
                })
            });
            let replica = s.spawn(|| {
                Mariadb::start(Opts {
                    server_id: 2,
                    log_bin: false,
                    ..Opts::default()
                })
            });
            (primary.join().unwrap(), replica.join().unwrap())
        });
        primary.create_users();
        replica.create_users();
        primary.sql(&format!(
            "SET SESSION sql_log_bin = 0;
             CREATE USER 'repl'@'%' IDENTIFIED BY {pw};
             GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';",
            pw = sql_quote(REPL_PASSWORD)
        ));
        replica.sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
             MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
             START SLAVE;",
            primary.port(),
            sql_quote(REPL_PASSWORD)
        ));
        let pair = Self { primary, replica };
        pair.wait_replicating(Duration::from_secs(20));
        // One replicated transaction, so that the replica has GTID positions from the start.
        pair.primary.sql("CREATE DATABASE replicated");
        pair.wait_replicated(Duration::from_secs(20));
        pair
    }

    /// Wait until the replica has applied everything the primary has written so far.
    pub fn wait_replicated(&self, timeout: Duration) {
        let target = self.primary.scalar("SELECT @@gtid_binlog_pos");
        let start = Instant::now();
        loop {
            let applied = self.replica.scalar("SELECT @@gtid_slave_pos");
            if applied == target {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "replica at {applied:?}, primary at {target:?} after {timeout:?}:\n{}",
                self.replica.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the replica's IO and SQL threads both run; panics with SHOW ALL SLAVES STATUS.
    pub fn wait_replicating(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let (columns, rows) = self.replica.query("SHOW ALL SLAVES STATUS");
            let field = |name: &str| {
                let i = columns.iter().position(|c| c == name)?;
                rows.first()?.get(i)?.clone()
            };
            if field("Slave_IO_Running").as_deref() == Some("Yes")
                && field("Slave_SQL_Running").as_deref() == Some("Yes")
            {
                return;
            }
            if start.elapsed() > timeout {
                let status: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let v = rows.first().and_then(|r| r.get(i).cloned().flatten());
                        format!("{c}: {}", v.as_deref().unwrap_or("NULL"))
                    })
                    .collect();
                panic!(
                    "replication not running after {timeout:?}:\n{}\nreplica log:\n{}",
                    status.join("\n"),
                    self.replica.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A pair shared by the tests that only read. Never dropped: its servers go with the process,
/// through their watchdogs.
pub fn shared_pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(Pair::start)
}
