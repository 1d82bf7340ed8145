//! The image's Dockerfile (hadolint, the build stage against scripts/test's release build, the
//! distroless runtime stage) and .dockerignore with the build context it leaves, read by cargo.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug)]
pub(super) struct Instruction {
    keyword: String,
    args: String,
    line: usize,
}

#[derive(Debug)]
pub(super) struct Stage {
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
pub(super) fn dockerfile() -> Vec<Stage> {
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
pub(super) fn binary_copy(stages: &[Stage]) -> (&Stage, String, String) {
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
pub(super) struct DockerIgnore {
    rules: Vec<(bool, Regex, String)>,
}

impl DockerIgnore {
    pub(super) fn load() -> Self {
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

    pub(super) fn excluded(&self, path: &str) -> bool {
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
