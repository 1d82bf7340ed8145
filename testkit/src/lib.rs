//! Test support shared by every test binary of the workspace (dev-only, never published): real
//! servers started on loopback and cleaned up whatever happens to the test, the built exporter as a
//! child process, and readers for what it serves.
//!
//! # Layout
//! - [`watched`]: server processes under a watchdog, temporary directories, free ports.
//! - [`mariadb`], [`redis`]: real MariaDB (primary/replica pairs) and redis-server harnesses.
//! - [`families`]: reading the families a collector returned (names, samples, types).
//! - [`http`]: in-process HTTP/HTTPS/mTLS servers, a test PKI, readers of a probe's families.
//! - [`exporter`]: the built `fanout_exporter` as a child process, a small HTTP client, promtool,
//!   the Debian peer exporters, bounded command runs.
//! - [`hostile`]: loopback servers that send garbage, truncated packets and endless streams.
//! - [`process`]: a process's memory from /proc, signals by pid (SIGSTOP, SIGCONT).
//!
//! A failed setup must fail the test that needed it, loudly and at once, so this crate unwraps.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod exporter;
pub mod families;
pub mod hostile;
pub mod http;
pub mod mariadb;
pub mod process;
pub mod redis;
pub mod watched;

/// A MariaDB server with the test accounts and a redis-server, started side by side (each takes a
/// second or two): for tests that need one of each.
pub fn mariadb_and_redis() -> (mariadb::Mariadb, redis::Redis) {
    std::thread::scope(|s| {
        let db = s.spawn(|| {
            let db = mariadb::Mariadb::start(mariadb::Opts::default());
            db.create_users();
            db
        });
        let cache = s.spawn(|| redis::Redis::start(redis::Opts::default()));
        (
            db.join().expect("MariaDB started"),
            cache.join().expect("redis-server started"),
        )
    })
}
