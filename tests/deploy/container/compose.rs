//! The docker-compose stack: `docker-compose config` on docker-compose.yml, the exporter service
//! (built from the Dockerfile, its healthcheck, config mount and file secrets), loopback-only ports,
//! the exporter's config checked with the secrets the service mounts, and the MariaDB init grants
//! against a real MariaDB.

use super::dockerfile::{DockerIgnore, binary_copy};
#[allow(clippy::wildcard_imports)]
use super::*;

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

    let stages = super::dockerfile::dockerfile();
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
        Command::new(support::bin())
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
        // The modules of deploy/prometheus/prometheus.yml's fanout-sd job.
        "module mysql_stack (mysql)",
        "module redis_stack (redis)",
        "module http_2xx (http)",
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
            Command::new(support::bin())
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
