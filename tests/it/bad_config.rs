//! Bad configuration files against the built binary, one class at a time: mistakes (syntax, unknown
//! keys, wrong types, duplicates, bad values) and hostile files (alias bombs, a 50 MB file, binary
//! junk, a FIFO, a device as a secret). Each must be refused at start with exit code 2, before the
//! listen port is bound, with an error naming the file, the line and key path where there are any,
//! and what was expected; `--config.check` must say exactly the same. A subset is also written over
//! the file of a running exporter: the reload (POST /-/reload and SIGHUP) answers or logs the error,
//! and the running configuration keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fanout_testkit::exporter::{Exporter, bin, free_port, on_path, output_within, value, write};

/// Longer than any refusal takes (the slowest, the flat alias bomb, takes about a second in a debug
/// build), short enough that a hang fails the test instead of stalling the run.
const LIMIT: Duration = Duration::from_secs(30);

/// A temporary directory holding `config.yaml` with `contents`; the path of the file.
fn config_file(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn run(command: &mut Command) -> (Output, String) {
    let output = output_within(command, LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// The errors of a refused configuration: what follows `invalid configuration:` on stderr.
fn errors_of(output: &Output, stderr: &str, what: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "{what}: expected exit code 2 (configuration error); stderr:\n{stderr}"
    );
    let (_, errors) = stderr
        .split_once("invalid configuration:\n")
        .unwrap_or_else(|| panic!("{what}: no configuration error on stderr:\n{stderr}"));
    errors.trim_end().to_owned()
}

/// Start the exporter on `file` (through `wrap`, a command prefix such as `setpriv`) and check it
/// refuses to: exit code 2 before it listens; then `--config.check`, which must report the same
/// errors. Returns them.
fn refused_with(file: &Path, wrap: &[String]) -> String {
    let command = |args: &[String]| {
        let mut all: Vec<String> = wrap.to_vec();
        all.push(bin().display().to_string());
        all.extend(args.iter().cloned());
        let mut command = Command::new(&all[0]);
        command.args(&all[1..]);
        command
    };
    let port = free_port();
    let config = format!("--config.file={}", file.display());
    let started = Instant::now();
    let (output, stderr) = run(&mut command(&[
        format!("--web.listen-address=127.0.0.1:{port}"),
        config.clone(),
    ]));
    let at_start = errors_of(&output, &stderr, "start");
    assert!(
        !stderr.contains("listening"),
        "the exporter got as far as listening:\n{stderr}"
    );
    // Nothing listens on the port, and nothing the exporter left behind holds it.
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "something listens on {port}"
    );
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("port {port} is not free after the refusal: {e}"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing took {:?}",
        started.elapsed()
    );

    let (output, stderr) = run(&mut command(&["--config.check".to_owned(), config]));
    let checked = errors_of(&output, &stderr, "--config.check");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("configuration OK"),
        "--config.check passed it"
    );
    assert_eq!(
        at_start, checked,
        "--config.check and the start disagree on the errors"
    );
    at_start
}

fn refused(file: &Path) -> String {
    refused_with(file, &[])
}

/// `contents` as `config.yaml` is refused; `expected` lines (with `{f}` for the file's path) are each
/// found at the start of one error line.
fn assert_refused(contents: &[u8], expected: &[&str]) -> String {
    let (_dir, file) = config_file(contents);
    let errors = refused(&file);
    let f = file.display().to_string();
    for want in expected {
        let want = want.replace("{f}", &f);
        assert!(
            errors.lines().any(|line| line.starts_with(&want)),
            "no error line starts with\n  {want}\nerrors:\n{errors}"
        );
    }
    // Every error names the file.
    for line in errors.lines() {
        assert!(line.starts_with(&f), "an error without the file: {line}");
    }
    errors
}

#[test]
fn yaml_syntax_errors_name_the_line_and_what_was_expected() {
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:1/\n   bad: [\n",
        &["{f}:4: did not find expected key"],
    );
    assert_refused(
        b"global:\n  labels: {env: prod\n",
        &["{f}:3: did not find expected ',' or '}'"],
    );
    assert_refused(
        b"global:\n\tscrape_timeout: 5s\n",
        &["{f}:2: found character that cannot start any token"],
    );
}

#[test]
fn unknown_keys_name_the_key_path_and_the_keys_expected() {
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:1/\n    urll: x\n",
        &["{f}:4: http.web: unknown field `urll`, expected one of `url`, `method`"],
    );
    assert_refused(
        b"globl:\n  scrape_timeout: 5s\n",
        &["{f}:1: unknown field `globl`, expected one of `global`, `modules`, `http`"],
    );
    assert_refused(
        b"modules:\n  m:\n    http: {}\n    allowed_targets: [10.0.0.0/8]\n    max_target: 3\n",
        &["{f}:5: modules.m: unknown field `max_target`, expected one of `allowed_targets`"],
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    assert_refused(
        b"global:\n  max_concurrency: many\n",
        &[
            "{f}:2: global.max_concurrency: invalid type: a string, expected a non-negative whole number",
        ],
    );
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:1/\n    valid_status_codes: 200\n",
        &["{f}:4: http.web.valid_status_codes: invalid type: an integer, expected a sequence"],
    );
    assert_refused(
        b"- http\n- redis\n",
        &["{f}:1: invalid type: expected a mapping of sections"],
    );
}

#[test]
fn duplicate_keys_point_at_the_repeat() {
    assert_refused(
        b"http:\n  web:\n    method: GET\n    url: http://127.0.0.1:1/\n    url: http://127.0.0.1:2/\n",
        &["{f}:5: http.web.url: duplicate key, first at line 4: a key may appear only once"],
    );
}

#[test]
fn duplicate_target_names_are_refused_within_and_across_kinds() {
    // Within a kind the name is a repeated key.
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:1/\n  web:\n    url: http://127.0.0.1:2/\n",
        &["{f}:4: http.web: duplicate key, first at line 2"],
    );
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:1/\nredis:\n  web:\n    url: redis://127.0.0.1:1\n",
        &["{f}:5: redis.web: target name \"web\" is already used under http: names must be unique"],
    );
}

#[test]
fn alias_bombs_are_refused_quickly() {
    // The billion laughs: nine levels of nine aliases each.
    let mut nested = String::from(
        "global: {}\nlaughs:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        nested.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    assert_refused(
        nested.as_bytes(),
        &["{f}: aliases are expanded too often (repetition limit exceeded; an alias bomb?)"],
    );
    // Flat: 5,000 aliases of one 5,000-item list, 25 KB that expand to 25 million values (this took
    // 11 s and 1.8 GB before the loader counted the expansion).
    let items = vec!["1"; 5_000].join(",");
    let aliases = vec!["*x"; 5_000].join(",");
    let errors = assert_refused(
        format!("global: {{}}\nx: &x [{items}]\ny: [{aliases}]\n").as_bytes(),
        &[],
    );
    assert!(
        errors.contains("more than 2000000 values once its aliases are expanded (an alias bomb?)"),
        "{errors}"
    );
}

#[test]
fn a_50_mb_file_is_refused_by_its_size() {
    // Valid YAML throughout: without the limit it would be parsed, several times over.
    let mut yaml = String::from("global:\n  labels:\n");
    let mut i = 0;
    while yaml.len() < 50 << 20 {
        yaml.push_str(&format!("    l{i}: \"{}\"\n", "x".repeat(100)));
        i += 1;
    }
    let size = yaml.len();
    assert_refused(
        yaml.as_bytes(),
        &[&format!(
            "{{f}}: cannot read the file: it is {size} bytes, over the limit of 8388608 bytes (8 MiB)"
        )],
    );
}

#[test]
fn binary_junk_is_located() {
    assert_refused(
        b"global:\n  labels:\n    a: \xff\xfe\n",
        &["{f}:3: invalid UTF-8 (byte 0xff at column 8): expected a YAML text file in UTF-8"],
    );
    assert_refused(
        b"global:\n  labels:\n    a: \"x\0y\"\n",
        &["{f}:3: control character U+0000 at column 10: expected YAML text"],
    );
    // Pseudo-random bytes (xorshift, fixed seed): refused, whatever the first problem is.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    assert_refused(&junk, &["{f}:1: "]);
}

#[test]
fn a_missing_secret_file_names_the_key_and_the_path() {
    let (dir, file) = config_file(
        b"mysql:\n  db:\n    address: 127.0.0.1:1\n    user: u\n    password_file: missing.pw\n",
    );
    let errors = refused(&file);
    let want = format!(
        "{}:5: mysql.db.password_file: cannot read {}: No such file or directory",
        file.display(),
        dir.path().join("missing.pw").display()
    );
    assert!(errors.starts_with(&want), "{errors}");
}

#[test]
fn secret_files_that_are_devices_fifos_or_huge_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pw.fifo");
    mkfifo(&fifo);
    let huge = dir.path().join("huge.pw");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((4 << 20) + 1)
        .unwrap();
    for (secret, message) in [
        (
            PathBuf::from("/dev/zero"),
            "it is not a regular file (a FIFO, socket or device)",
        ),
        (fifo, "it is not a regular file (a FIFO, socket or device)"),
        (
            huge,
            "it is 4194305 bytes, over the limit of 4194304 bytes (4 MiB)",
        ),
    ] {
        let file = write(
            dir.path(),
            "config.yaml",
            &format!(
                "mysql:\n  db:\n    address: 127.0.0.1:1\n    user: u\n    password_file: {}\n",
                secret.display()
            ),
        );
        let errors = refused(&file);
        let want = format!(
            "{}:5: mysql.db.password_file: cannot read {}: {message}",
            file.display(),
            secret.display()
        );
        assert!(errors.starts_with(&want), "{errors}");
    }
}

/// Permissions of secret files are not checked, on purpose: Kubernetes mounts Secret volumes 0644 by
/// default and docker/compose secrets are 0444, so refusing (or warning about) world-readable files
/// would fail (or nag) the ordinary deployments, while what protects those files is the container's
/// file system, not their mode. This pins the choice: such a file loads.
#[test]
fn a_world_readable_secret_file_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "pw", "s3cr3t\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    let file = write(
        dir.path(),
        "config.yaml",
        "mysql:\n  db:\n    address: 127.0.0.1:1\n    user: u\n    password_file: pw\n",
    );
    let (output, stderr) = run(Command::new(bin())
        .arg("--config.check")
        .arg(format!("--config.file={}", file.display())));
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("target db (mysql)"), "{stdout}");
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"));
}

#[test]
fn bad_durations_name_the_key() {
    assert_refused(
        b"global:\n  scrape_timeout: 10 parsecs\n",
        &[
            "{f}:2: global.scrape_timeout: expected a duration such as 10s, 500ms or 1m30s (units ms, s, m, h, d, w, y), not \"10 parsecs\"",
        ],
    );
    assert_refused(
        b"modules:\n  m:\n    http: {}\n    allowed_targets: [10.0.0.0/8]\n    idle_timeout: soon\n",
        &["{f}:5: modules.m.idle_timeout: expected a duration such as 10s, 500ms or 1m30s (units ms, s, m, h, d, w, y), not \"soon\""],
    );
}

#[test]
fn zero_and_negative_timeouts_are_refused() {
    assert_refused(
        b"global:\n  scrape_timeout: 0s\n",
        &[
            "{f}:2: global.scrape_timeout: must be between 100ms and 3600s",
            "{f}:1: global.timeout_offset: must be smaller than scrape_timeout",
        ],
    );
    assert_refused(
        b"global:\n  scrape_timeout: -1s\n",
        &[
            "{f}:2: global.scrape_timeout: expected a duration such as 10s, 500ms or 1m30s (units ms, s, m, h, d, w, y), not \"-1s\"",
        ],
    );
    assert_refused(
        b"modules:\n  m:\n    http: {}\n    allowed_targets: [10.0.0.0/8]\n    idle_timeout: 0s\n",
        &["{f}:5: modules.m.idle_timeout: must be between 1s and 1day"],
    );
}

#[test]
fn bad_urls_name_the_key() {
    assert_refused(
        b"http:\n  web:\n    url: not a url\n",
        &["{f}:3: http.web.url: invalid URL: relative URL without a base"],
    );
    assert_refused(
        b"redis:\n  cache:\n    url: memcached://127.0.0.1:11211\n",
        &["{f}:3: redis.cache.url: unsupported scheme \"memcached\""],
    );
}

#[test]
fn ports_out_of_range_are_refused() {
    assert_refused(
        b"mysql:\n  db:\n    address: 127.0.0.1:70000\n    user: u\n",
        &["{f}:3: mysql.db.address: invalid port: expected 1 to 65535"],
    );
    assert_refused(
        b"mysql:\n  db:\n    address: 127.0.0.1:0\n    user: u\n",
        &["{f}:3: mysql.db.address: invalid port: expected 1 to 65535"],
    );
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:70000/\n",
        &["{f}:3: http.web.url: invalid URL: invalid port number"],
    );
}

#[test]
fn bad_regular_expressions_name_the_key_and_the_reason() {
    assert_refused(
        b"http:\n  web:\n    url: http://127.0.0.1:1/\n    fail_if_body_matches_regexp: ['(']\n",
        &[
            "{f}:4: http.web.fail_if_body_matches_regexp: invalid regular expression \"(\": unclosed group",
        ],
    );
}

#[test]
fn bad_cidrs_in_allowed_targets_name_the_rule() {
    assert_refused(
        b"modules:\n  m:\n    http: {}\n    allowed_targets: [10.0.0.0/8, 10.0.0.0/33]\n",
        &[
            "{f}:4: modules.m.allowed_targets[1]: \"10.0.0.0/33\": the prefix length must be 0 to 32",
        ],
    );
    assert_refused(
        b"modules:\n  m:\n    http: {}\n    allowed_targets:\n      - 10.0.0.0/8\n      - 10.1.2.3/8\n",
        &[
            "{f}:6: modules.m.allowed_targets[1]: \"10.1.2.3/8\": host bits are set; write the network address (10.0.0.0/8)",
        ],
    );
}

#[test]
fn an_empty_file_is_refused() {
    for contents in [&b""[..], b"\n\n", b"# to be written\n"] {
        assert_refused(
            contents,
            &["{f}: the file holds no configuration (it is empty or only comments)"],
        );
    }
}

#[test]
fn deep_nesting_and_several_documents_are_refused() {
    let deep = format!(
        "global:\n  labels:\n    a: {}{}\n",
        "[".repeat(300),
        "]".repeat(300)
    );
    assert_refused(
        deep.as_bytes(),
        &["{f}:3: values nest too deep (recursion limit exceeded"],
    );
    assert_refused(
        b"global: {}\n---\nglobal: {}\n",
        &["{f}: the file holds more than one YAML document"],
    );
}

#[test]
fn a_missing_file_a_directory_and_a_fifo_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let errors = refused(&missing);
    assert!(
        errors.starts_with(&format!(
            "{}: cannot read the file: No such file or directory",
            missing.display()
        )),
        "{errors}"
    );
    // What docker makes of a bind mount whose source does not exist.
    let errors = refused(dir.path());
    assert_eq!(
        errors,
        format!(
            "{}: cannot read the file: it is a directory, not a file",
            dir.path().display()
        )
    );
    // Opening a FIFO blocks until something writes to it: this hung the loader.
    let fifo = dir.path().join("config.yaml");
    mkfifo(&fifo);
    let errors = refused(&fifo);
    assert_eq!(
        errors,
        format!(
            "{}: cannot read the file: it is not a regular file (a FIFO, socket or device), which could block or never end",
            fifo.display()
        )
    );
}

/// The effective user id, from /proc (no libc in the tests).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid line");
    uid.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_unreadable_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = write(dir.path(), "config.yaml", "global: {}\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads any file: run the exporter as nobody then (CI and the dev machines run as root).
    let wrap: Vec<String> = if euid() == 0 {
        let setpriv = on_path("setpriv").unwrap_or_else(|| {
            panic!("running as root, so the test needs setpriv (util-linux) to drop to nobody")
        });
        vec![
            setpriv.display().to_string(),
            "--reuid=65534".into(),
            "--regid=65534".into(),
            "--clear-groups".into(),
        ]
    } else {
        Vec::new()
    };
    let errors = refused_with(&file, &wrap);
    assert_eq!(
        errors,
        format!(
            "{}: cannot read the file: Permission denied (os error 13)",
            file.display()
        )
    );
}

// ---------------------------------------------------------------------------------------------------
// Reloads.

/// A bad file written over the running one.
enum Bad {
    Text(&'static str),
    Bytes(Vec<u8>),
    Fifo,
}

impl Bad {
    fn put(&self, file: &Path) {
        let _ = std::fs::remove_file(file);
        match self {
            Self::Text(text) => std::fs::write(file, text).unwrap(),
            Self::Bytes(bytes) => std::fs::write(file, bytes).unwrap(),
            Self::Fifo => mkfifo(file),
        }
    }
}

fn metrics(exporter: &Exporter) -> String {
    let response = exporter.get("/metrics", &[]);
    assert_eq!(response.status, 200);
    response.text()
}

/// The good configuration serves: its target is scraped and the last reload succeeded (`ok`).
fn assert_serving(exporter: &Exporter, last_reload_ok: bool) {
    let text = metrics(exporter);
    assert_eq!(
        value(&text, "probe_success{target=\"self\"}"),
        Some(1.0),
        "the running configuration's target is gone:\n{text}"
    );
    assert_eq!(
        value(&text, "fanout_exporter_config_last_reload_successful"),
        Some(if last_reload_ok { 1.0 } else { 0.0 }),
        "{text}"
    );
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_file_on_reload_keeps_the_running_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let good = format!("http:\n  self:\n    url: http://127.0.0.1:{port}/-/healthy\n");
    let file = write(dir.path(), "config.yaml", &good);
    let f = file.display().to_string();
    let mut exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={f}"),
    ]);
    assert_serving(&exporter, true);

    let mut big = String::from("global:\n  labels:\n");
    while big.len() < 50 << 20 {
        big.push_str(&format!("    l{}: \"{}\"\n", big.len(), "x".repeat(100)));
    }
    let big_size = big.len();
    let bomb = format!(
        "global: {{}}\nx: &x [{}]\ny: [{}]\n",
        vec!["1"; 5_000].join(","),
        vec!["*x"; 5_000].join(",")
    );
    let cases: Vec<(&str, Bad, String)> = vec![
        (
            "syntax",
            Bad::Text("http:\n  self:\n    url: x\n   bad: [\n"),
            format!("{f}:4: did not find expected key"),
        ),
        (
            "unknown key",
            Bad::Text("http:\n  self:\n    url: http://127.0.0.1:1/\n    urll: x\n"),
            format!("{f}:4: http.self: unknown field `urll`"),
        ),
        (
            "duplicate key",
            Bad::Text(
                "http:\n  self:\n    url: http://127.0.0.1:1/\n    url: http://127.0.0.1:2/\n",
            ),
            format!("{f}:4: http.self.url: duplicate key, first at line 3"),
        ),
        (
            "missing secret",
            Bad::Text(
                "http:\n  self:\n    url: http://127.0.0.1:1/\n    bearer_token_file: /nonexistent/token\n",
            ),
            format!(
                "{f}:4: http.self.bearer_token_file: cannot read /nonexistent/token: No such file"
            ),
        ),
        (
            "empty file",
            Bad::Text(""),
            format!("{f}: the file holds no configuration"),
        ),
        (
            "binary junk",
            Bad::Bytes(b"http:\n  self:\n\xff\xfe\0\n".to_vec()),
            format!("{f}:3: invalid UTF-8 (byte 0xff at column 1)"),
        ),
        (
            "alias bomb",
            Bad::Bytes(bomb.into_bytes()),
            "more than 2000000 values once its aliases are expanded".to_owned(),
        ),
        (
            "50 MB",
            Bad::Bytes(big.into_bytes()),
            format!("{f}: cannot read the file: it is {big_size} bytes, over the limit"),
        ),
        (
            "fifo",
            Bad::Fifo,
            format!("{f}: cannot read the file: it is not a regular file"),
        ),
    ];
    let restore = |exporter: &Exporter| {
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, &good).unwrap();
        let response = exporter.request("POST", "/-/reload");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_serving(exporter, true);
    };
    let failures = |exporter: &Exporter| {
        exporter
            .log()
            .iter()
            .filter(|l| l.contains("reload failed; keeping the running configuration"))
            .count()
    };
    for (class, bad, expected) in &cases {
        // POST /-/reload: 500 with the error.
        bad.put(&file);
        let response = exporter.request("POST", "/-/reload");
        let body = response.text();
        assert_eq!(response.status, 500, "{class}: {body}");
        assert!(
            body.starts_with("invalid configuration:\n"),
            "{class}: {body}"
        );
        assert!(body.contains(expected.as_str()), "{class}: {body}");
        assert_serving(&exporter, false);
        restore(&exporter);

        // SIGHUP: the same error, logged.
        bad.put(&file);
        let before = failures(&exporter);
        exporter.send("-HUP");
        wait_until(&format!("{class}: the SIGHUP reload to fail"), || {
            failures(&exporter) > before
        });
        assert!(exporter.running(), "{class}: SIGHUP stopped the exporter");
        let log = exporter.log().join("\n");
        assert!(
            log.contains(expected.as_str()),
            "{class}: the log lacks {expected}:\n{log}"
        );
        assert_serving(&exporter, false);
        restore(&exporter);
    }
    assert!(exporter.running());
    let status = exporter.terminate();
    assert!(status.success(), "{status:?}");
}

/// A FIFO at `path`: opening it blocks until something writes to it.
fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}
