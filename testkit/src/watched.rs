//! Server processes under a watchdog, for the test harnesses that start real servers (mariadb.rs,
//! redis.rs): [`Watched`], plus fresh temporary directories and free ports.
//!
//! # Cleanup
//! Every server process gets a watchdog: a tiny `sh` whose stdin is a pipe whose only write end this
//! test process holds (std opens it close-on-exec, so no other child inherits it). The watchdog blocks
//! in `read` on that pipe. When the test process ends in any way (returns, panics, is killed with
//! SIGKILL), the kernel closes the write end, `read` sees end-of-file, and the watchdog kills the server
//! with SIGKILL and removes the temporary directory. Servers owned by a test are cleaned up earlier by
//! `Drop` (watchdog killed before it acts, server killed and reaped; the harness then removes the
//! directory); servers shared through a `static` are never dropped and rely on the watchdog at process
//! exit. The server pid cannot be reused while the watchdog may signal it: the server is our unreaped
//! child until we wait for it, and the watchdog is killed and reaped before the server is reaped on
//! every path ([`Watched::signal_and_reap`], [`Watched::kill`], `Drop`).

use std::fs;
use std::io::{self, ErrorKind};
use std::net::Ipv4Addr;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running server process and its watchdog; both killed and reaped when dropped.
#[derive(Debug)]
pub struct Watched {
    server: Child,
    watchdog: Child,
}

impl Watched {
    /// Spawn `command` (stdin, stdout and stderr set to null) and its watchdog, which removes `dir`
    /// once it has killed the server. An error when the server cannot be spawned; panics (after killing
    /// the server) when the watchdog cannot.
    pub fn spawn(command: &mut Command, dir: &Path) -> io::Result<Self> {
        let mut server = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(
                // $0: server pid, $1: directory. `read` returns only at end-of-file: this test
                // process is gone. Kill the server, give it a moment to go, remove its files.
                r#"read -r _ignored; kill -KILL "$0" 2>/dev/null; i=0; while kill -0 "$0" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -rf "$1""#,
            )
            .arg(server.id().to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(Self { server, watchdog }),
            Err(e) => {
                let _ = server.kill();
                let _ = server.wait();
                panic!("starting the watchdog shell: {e}");
            }
        }
    }

    /// The server's exit status if it has exited (reaping it), `None` while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.server.try_wait()
    }

    /// The server process id.
    pub fn id(&self) -> u32 {
        self.server.id()
    }

    /// Kill the watchdog, send `signal` (`-TERM`, `-KILL`) to the server and wait up to `timeout` for
    /// it to exit. On timeout the server is killed with SIGKILL and reaped, and the error says so.
    pub fn signal_and_reap(mut self, signal: &str, timeout: Duration) -> Result<(), String> {
        self.stop_watchdog();
        let status = Command::new("kill")
            .args([signal, &self.server.id().to_string()])
            .status()
            .map_err(|e| format!("running kill {signal}: {e}"))?;
        if !status.success() {
            return Err(format!("kill {signal} failed"));
        }
        let start = Instant::now();
        while self
            .server
            .try_wait()
            .map_err(|e| format!("waiting after kill {signal}: {e}"))?
            .is_none()
        {
            if start.elapsed() > timeout {
                self.kill();
                return Err(format!("ignored {signal} for {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn stop_watchdog(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }

    /// Kill the watchdog, then the server (SIGKILL), reaping both. Harmless when done already.
    pub fn kill(&mut self) {
        self.stop_watchdog();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh directory `<prefix>-<pid>-<n>-<nanos>` under the system temp dir, unique to this process
/// and call.
pub fn temp_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir).unwrap();
    dir
}

/// Remove `dir` and everything in it; a failure other than its absence is printed, not raised (this
/// runs in `Drop`).
pub fn remove_dir(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir)
        && e.kind() != ErrorKind::NotFound
    {
        eprintln!("removing {}: {e}", dir.display());
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run `start` on a free port and return the port. Another process may take the port between the
/// probe and the server's bind, so a start whose log contains `in_use` is tried again on a new
/// port, three times at most; any other failure panics with the log.
pub fn on_free_port(
    server: &str,
    in_use: &str,
    mut start: impl FnMut(u16) -> Result<(), String>,
) -> u16 {
    for attempt in 1..=3 {
        let port = free_port();
        match start(port) {
            Ok(()) => return port,
            Err(log) if attempt < 3 && log.contains(in_use) => {}
            Err(log) => panic!("{server} did not start:\n{log}"),
        }
    }
    unreachable!("the third attempt returns or panics")
}
