//! Running the tools the deployment checks call (hadolint, docker-compose, promtool, node, openssl,
//! the exporter's `--config.check`, ...): every module's commands go through these.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where scripts/test installs the npm packages of the schema checks: the Prometheus Operator's types
/// and validators (kubernetes.rs), Grafana's dashboard types (rules.rs), and `tsc`.
pub const NPM_PREFIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/npm-schemas");
/// The command that installs them, for the message when one is missing.
pub const NPM_INSTALL: &str = "npm install --prefix target/npm-schemas --no-audit --no-fund \
     @kubernetes-models/prometheus-operator@6.0.0 typescript@5.9.3 @grafana/schema@12.1.1 \
     (scripts/test does)";

/// The `node_modules` directory under [`NPM_PREFIX`], after checking that each of `packages` is
/// installed there.
pub fn npm_modules(packages: &[&str]) -> PathBuf {
    let modules = Path::new(NPM_PREFIX).join("node_modules");
    for package in packages {
        assert!(
            modules.join(package).join("package.json").is_file(),
            "{package} not found under {}: {NPM_INSTALL}",
            modules.display()
        );
    }
    modules
}

/// Run `command` to completion, stdin closed, its stdout and stderr captured.
pub fn output(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// [`output`], killing the command and failing after `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
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
            let _ = child.kill();
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

/// Run `command` as [`output`] does: whether it succeeded, and its stdout followed by its stderr.
pub fn run(command: &mut Command) -> (bool, String) {
    let output = output(command);
    (output.status.success(), printed(&output))
}

/// Everything a command printed: stdout, then stderr.
pub fn printed(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// A command's exit status and its stdout and stderr, labelled, for failure messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Call `check` every `interval` until it gives a value, which is returned, or `limit` has passed
/// since the first call (`None`).
pub fn poll<T>(
    limit: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}
