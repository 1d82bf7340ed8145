//! A process seen from outside: its memory as the kernel counts it, and signals sent to it, for the
//! fault tests that stop, kill and measure servers and the exporter by pid.

use std::fs;
use std::process::Command;

/// Memory of a process from `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most that was ever resident (the high-water mark).
    pub hwm: u64,
}

/// One MiB, for printing and bounds.
pub const MIB: u64 = 1 << 20;

impl Memory {
    /// The memory of `pid` now; panics when the process is gone (a dead exporter must fail the test).
    pub fn of(pid: u32) -> Self {
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .map(|kib| kib.trim().parse::<u64>().unwrap() * 1024)
                .unwrap_or_else(|| panic!("{name} missing in {path}:\n{status}"))
        };
        Self {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            self.rss as f64 / MIB as f64,
            self.hwm as f64 / MIB as f64
        )
    }
}

/// Send `signal` (as `kill` spells it: `-STOP`, `-CONT`) to `pid`; panics when it cannot be sent.
///
/// Only for processes the test owns and has not reaped (a server under [`crate::watched::Watched`]),
/// so the pid cannot belong to anyone else.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}
