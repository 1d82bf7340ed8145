//! Running the tools the deployment checks call (hadolint, docker-compose, promtool, node, openssl,
//! the exporter's `--config.check`, ...): every module's commands go through these.

use std::collections::BTreeMap;
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

/// What `tsc` said about a `check.mts`: whether it passed, everything it printed, its errors by
/// 0-based line of the file (each with its indented continuation lines), and the lines of output it
/// printed about no line of the file.
pub struct TscReport {
    pub passed: bool,
    pub output: String,
    pub errors: BTreeMap<usize, Vec<String>>,
    pub unplaced: Vec<String>,
}

/// Type-check `source` as `check.mts` with `tsc --noEmit --strict` (ES modules, node resolution),
/// run by `node` from the TypeScript under `modules`, which is also where imports resolve. Our
/// schema checks write each object as a typed literal on a line of its own, so that excess-property
/// checks catch unknown fields and the errors name the object by line. `skip_lib_check` leaves the
/// packages' own declarations unchecked.
pub fn tsc(node: &Path, modules: &Path, source: &str, skip_lib_check: bool) -> TscReport {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(modules, dir.path().join("node_modules")).unwrap();
    crate::support::write(dir.path(), "check.mts", source);
    let mut command = Command::new(node);
    command
        .current_dir(dir.path())
        .arg(modules.join("typescript/bin/tsc"))
        .args(["--noEmit", "--strict"]);
    if skip_lib_check {
        command.arg("--skipLibCheck");
    }
    command.args([
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2022",
        "check.mts",
    ]);
    let (passed, output) = run(&mut command);
    let mut errors: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    let mut last: Option<usize> = None;
    for line in output.lines() {
        if let Some(n) = line
            .strip_prefix("check.mts(")
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            errors.entry(n - 1).or_default().push(line.to_owned());
            last = Some(n - 1);
        } else if let (Some(n), true) = (last, line.starts_with(' ')) {
            if let Some(error) = errors.get_mut(&n).and_then(|e| e.last_mut()) {
                error.push('\n');
                error.push_str(line);
            }
        } else if !line.trim().is_empty() {
            unplaced.push(line.to_owned());
            last = None;
        }
    }
    TscReport {
        passed,
        output,
        errors,
        unplaced,
    }
}

/// A Prometheus duration (`15s`, `1m30s`, `500ms`, `1d`) as Prometheus reads it, through
/// promql-parser's port of Prometheus' parser (units in descending order, `y` = 365 days), so that
/// the deployment checks compare durations the way Prometheus does. That parser also takes a bare
/// number of seconds, which Prometheus configuration files do not: promtool rejects those where the
/// checks run it on a configuration.
pub fn duration(text: &str) -> Duration {
    promql_parser::util::parse_duration(text)
        .unwrap_or_else(|e| panic!("not a Prometheus duration {text:?}: {e}"))
}

#[test]
fn durations_are_read_as_prometheus_reads_them() {
    assert_eq!(duration("1m30s"), Duration::from_secs(90));
    assert_eq!(duration("500ms"), Duration::from_millis(500));
    assert_eq!(duration("1d"), Duration::from_secs(86_400));
    assert_eq!(duration("2w"), Duration::from_secs(14 * 86_400));
    assert_eq!(duration("1y"), Duration::from_secs(365 * 86_400));
    assert_eq!(duration("1h30m15s"), Duration::from_secs(5415));
    for bad in ["", "1x", "30s1m", "1.5m", "-1s"] {
        assert!(
            promql_parser::util::parse_duration(bad).is_err(),
            "accepted {bad:?}"
        );
    }
}

/// The kind of a module as an exporter config writes it: its one kind block.
pub fn module_kind(settings: &serde_yaml::Value, module: &str) -> &'static str {
    ["http", "mysql", "redis"]
        .into_iter()
        .find(|k| settings.get(*k).is_some())
        .unwrap_or_else(|| panic!("module {module} has no kind block"))
}

/// The host of `target`, after checking it is written the way a `kind` module takes addresses
/// (`host:port` for mysql, `redis(s)://` for redis, `http(s)://` for http); `context` names the file.
pub fn module_target_host<'a>(kind: &str, target: &'a str, context: &str) -> &'a str {
    let (scheme, rest) = target.split_once("://").unwrap_or(("", target));
    let schemes: &[&str] = match kind {
        "mysql" => &[""],
        "redis" => &["redis", "rediss"],
        _ => &["http", "https"],
    };
    assert!(
        schemes.contains(&scheme),
        "{context}: {target} is not an address a {kind} module takes"
    );
    rest.split(['/', ':']).next().unwrap_or_default()
}
