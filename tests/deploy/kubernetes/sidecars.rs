//! The two sidecars end to end: each exporter container, run as its pod runs it, scrapes a real
//! MariaDB prepared by the manifest's init script or a real Redis configured by its init container.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The server a sidecar test runs, and how the sidecar's config must name it.
struct Server<'a> {
    /// The collector: the config's section and the `{kind}_up` gauge.
    kind: &'a str,
    /// For failure messages.
    name: &'a str,
    /// The target's field that names the server: `{scheme}127.0.0.1:{pod_port}`, the server on
    /// the pod's loopback. Without a scheme that is the whole value (an address); with one, the
    /// start of a URL.
    field: &'a str,
    scheme: &'a str,
    pod_port: u16,
    /// Where this test's server listens on 127.0.0.1.
    port: u16,
    /// The server's log, for failure messages.
    log: &'a dyn Fn() -> String,
}

/// The name of the one `kind` target of a sidecar's config.
fn only_target(config: &Value, kind: &str) -> String {
    let targets: Vec<String> = string_map(config.get(kind)).into_keys().collect();
    assert_eq!(targets.len(), 1, "one {kind} target");
    targets.into_iter().next().unwrap()
}

/// The end of both sidecar tests: the sidecar's `config` (with its one `server.kind` target) pointed
/// at this test's server instead of the pod's loopback port, written to `dir` and run as the
/// container would be, with the pod's environment. Its probes pass, the target is up and scraped
/// without error. Returns the exporter, still running, and its `/metrics` text.
fn assert_sidecar_scrapes(
    m: &Manifests,
    (pod, exporter): (&Pod, &Value),
    overrides: Overrides,
    dir: &Path,
    config: &Value,
    server: Server,
) -> (Exporter, String) {
    let Server { kind, name, .. } = server;
    let mut config = config.clone();
    let target = &only_target(&config, kind);
    let field = &mut config[kind][target.as_str()][server.field];
    let manifest = field.as_str().unwrap_or_default().to_owned();
    let loopback = format!("127.0.0.1:{}", server.pod_port);
    let expected = format!("{}{loopback}", server.scheme);
    assert!(
        manifest == expected || (!server.scheme.is_empty() && manifest.starts_with(&expected)),
        "the sidecar reaches {name} over the pod's loopback: {kind}.{target}.{} is {manifest:?}, \
         expected {expected:?}{}",
        server.field,
        if server.scheme.is_empty() { "" } else { "..." }
    );
    *field = Value::from(manifest.replace(&loopback, &format!("127.0.0.1:{}", server.port)));
    let path = write_config(dir, &config);
    let running = Exporter::start_with_env(
        &[
            &format!("--config.file={}", path.display()),
            "--web.listen-address=127.0.0.1:0",
        ],
        &pod_environment(m, pod, exporter, overrides),
    );
    assert_probes_pass(&running, exporter);
    let body = running.get("/metrics", &[]).text();
    assert_eq!(
        support::value(&body, &format!("{kind}_up{{target=\"{target}\"}}")),
        Some(1.0),
        "{body}\n{}\n{}",
        running.log().join("\n"),
        (server.log)()
    );
    assert_eq!(
        support::value(
            &body,
            &format!("fanout_exporter_scrape_success{{collector=\"{kind}\",target=\"{target}\"}}")
        ),
        Some(1.0),
        "{}",
        running.log().join("\n")
    );
    (running, body)
}

#[test]
fn mariadb_sidecar_scrapes_a_real_mariadb_prepared_by_its_init_script() {
    use crate::mariadb_server::{EXPORTER_PASSWORD, Mariadb, sql_quote};
    let m = manifests();
    let (pod, exporter) = container_of(m, "mariadb", is_exporter);
    let (_, database) = container_of(m, "mariadb", |c| !is_exporter(c));
    // The Secret's example password is replaced by one with a #, both quotes, a backslash, spaces
    // and a trailing newline (as `kubectl create secret --from-file` of an edited file has), so that
    // the init script's SQL quoting is tested; both containers get it from the same key.
    let password = format!("{EXPORTER_PASSWORD}\n");
    let overrides = [(
        "mariadb-credentials",
        "exporter-password",
        password.as_str(),
    )];
    let server = Mariadb::start(Default::default());
    let dir = tempfile::tempdir().unwrap();

    // The init scripts, run as the image's entrypoint runs them on an empty volume: sorted, `.sql`
    // piped to the client, `.sh` sourced by bash with docker_process_sql (the entrypoint's function)
    // defined as the client as root.
    let client = on_path("mariadb")
        .expect("mariadb not found: install mariadb-client (apt-get install mariadb-client)");
    let (source, volume, _) = list(database, "volumeMounts")
        .iter()
        .find(|v| text(v, "mountPath") == Some("/docker-entrypoint-initdb.d"))
        .and_then(|v| volume_object(&pod, text(v, "name")?))
        .expect("the database container mounts /docker-entrypoint-initdb.d");
    assert_eq!(source, Source::ConfigMap, "init scripts from a ConfigMap");
    let scripts = string_map(at(&m.object("ConfigMap", volume).unwrap().value, "data"));
    assert!(!scripts.is_empty(), "ConfigMap {volume} has init scripts");
    let db_env = pod_environment(m, &pod, database, &overrides);
    for (name, script) in &scripts {
        let path = support::write(dir.path(), name, script);
        let shell = if name.ends_with(".sh") {
            "docker_process_sql() { \"$CLIENT\" --no-defaults -uroot -S \"$SOCKET\" --batch \"$@\"; }; set -e; source \"$1\""
        } else {
            assert!(name.ends_with(".sql"), "init file {name}: .sh or .sql");
            "\"$CLIENT\" --no-defaults -uroot -S \"$SOCKET\" --batch < \"$1\""
        };
        let (passed, output) = run(Command::new("bash")
            .args(["-c", shell, "init", &path.display().to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(db_env.iter().map(|(k, v)| (k, v)))
            .env("CLIENT", &client)
            .env("SOCKET", server.socket()));
        assert!(passed, "init script {name}:\n{output}");
    }

    // The exporter's config, with the server's port for 3306 (the pod's loopback).
    let config = runnable_config(m, &pod, exporter, dir.path(), &overrides);
    let target = &only_target(&config, "mysql");

    // Least privilege, as in the docker-compose stack: no data of any schema but
    // performance_schema, for every account of the exporter's user.
    let user = text(&config["mysql"][target.as_str()], "user").expect("the target's user");
    let (_, hosts) = server.query(&format!(
        "SELECT host FROM mysql.user WHERE user = {}",
        sql_quote(user)
    ));
    assert!(
        !hosts.is_empty(),
        "the init scripts create no {user} account"
    );
    for host in hosts.iter().map(|row| row[0].clone().unwrap()) {
        let account = format!("{}@{}", sql_quote(user), sql_quote(&host));
        let grants = server.sql(&format!("SHOW GRANTS FOR {account}"));
        for grant in grants.lines() {
            let Some((privileges, rest)) = grant
                .strip_prefix("GRANT ")
                .and_then(|g| g.split_once(" ON "))
            else {
                continue;
            };
            let on = rest.split(" TO ").next().unwrap();
            let reads = privileges
                .split(',')
                .map(str::trim)
                .any(|p| p == "SELECT" || p == "ALL PRIVILEGES" || p == "ALL");
            assert!(
                !reads || on == "`performance_schema`.*",
                "{account} may read data on {on} (no SELECT ON *.*, nor any schema but \
                 performance_schema): {grant}"
            );
        }
    }
    let (running, body) = assert_sidecar_scrapes(
        m,
        (&pod, exporter),
        &overrides,
        dir.path(),
        &config,
        Server {
            kind: "mysql",
            name: "MariaDB",
            field: "address",
            scheme: "",
            pod_port: 3306,
            port: server.port(),
            log: &String::new,
        },
    );
    // The init script's grants cover every configured sub-collector.
    let collect = list(&config["mysql"][target.as_str()], "collect").len();
    let results: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("mysql_exporter_collector_success{") && l.contains("collector=\"collect.")
        })
        .collect();
    assert_eq!(
        results.len(),
        collect,
        "one result per configured collector:\n{body}"
    );
    for line in results {
        assert!(line.ends_with(" 1"), "{line}\n{}", running.log().join("\n"));
    }
}

/// `redis-cli PING` against 127.0.0.1:`port`, authenticated with `password` (in the environment)
/// when given: (succeeded, output).
fn redis_ping(port: u16, password: Option<&str>) -> (bool, String) {
    let cli = on_path("redis-cli")
        .expect("redis-cli not found: install redis-server (apt-get install redis-server)");
    let mut command = Command::new(cli);
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-e", "PING"])
        .env_remove("REDISCLI_AUTH");
    if let Some(password) = password {
        command.env("REDISCLI_AUTH", password);
    }
    run(&mut command)
}

#[test]
fn redis_sidecar_scrapes_a_real_redis_configured_by_its_init_container() {
    let m = manifests();
    let (pod, exporter) = container_of(m, "redis", is_exporter);
    let (_, database) = container_of(m, "redis", |c| !is_exporter(c));
    // The Secret's example password is replaced by one with a #, both quotes, a backslash, spaces and
    // a trailing newline (as `kubectl create secret --from-file` of an edited file has), so that the
    // init container's encoding is tested; redis-server and the exporter get it from the same key.
    let password = "re#dis 'pa\"ss\\ word\n";
    let secret = list(exporter, "env")
        .iter()
        .find_map(|v| at(v, "valueFrom.secretKeyRef"))
        .expect("the exporter takes Redis' password from a Secret");
    let overrides = [(
        text(secret, "name").unwrap(),
        text(secret, "key").unwrap(),
        password,
    )];
    let dir = tempfile::tempdir().unwrap();

    // The init containers, run here as the pod runs them (their command, their environment, their
    // mounts mapped to local directories), in order, each to success.
    for init in list(pod.spec, "initContainers") {
        let context = format!("{} init container {}", pod.doc.id(), container_name(init));
        let mounts = local_mounts(m, &pod, init, dir.path(), &overrides);
        let env = pod_environment(m, &pod, init, &overrides);
        let argv: Vec<String> = command_line(init, &env)
            .iter()
            .map(|a| map_paths(a, &mounts))
            .collect();
        assert!(!argv.is_empty(), "{context}: no command");
        let (passed, output) = run(Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v))));
        assert!(passed, "{context}: {argv:?}\n{output}");
    }

    // redis-server with the Redis container's arguments (the image's entrypoint runs them when the
    // first is redis-server), its mounts mapped likewise, and nothing from the pod's Secret but what
    // the init containers wrote. Then this test's port, loopback and log, which come last and so win.
    assert!(
        list(database, "command").is_empty(),
        "the Redis container keeps the image's entrypoint"
    );
    assert!(
        list(database, "env").is_empty(),
        "the Redis container has no environment (the password is not in it either)"
    );
    let mounts = local_mounts(m, &pod, database, dir.path(), &overrides);
    let argv: Vec<String> = command_line(database, &[])
        .iter()
        .map(|a| map_paths(a, &mounts))
        .collect();
    assert_eq!(
        argv.first().map(String::as_str),
        Some("redis-server"),
        "the Redis container's arguments start with redis-server"
    );
    let redis_server = on_path("redis-server")
        .expect("redis-server not found: install redis-server (apt-get install redis-server)");
    let log = dir.path().join("redis-server.log");
    let mut server = None;
    let port = watched::on_free_port("redis-server", "Address already in use", |port| {
        let _ = fs::remove_file(&log);
        let mut command = Command::new(&redis_server);
        command
            .args(&argv[1..])
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(&log);
        let mut process = watched::Watched::spawn(&mut command, dir.path())
            .map_err(|e| format!("running redis-server: {e}"))?;
        let log_text = || fs::read_to_string(&log).unwrap_or_default();
        // Up once it answers, whatever it answers.
        poll(Duration::from_secs(20), Duration::from_millis(50), || {
            let (passed, output) = redis_ping(port, None);
            if passed || output.contains("NOAUTH") {
                return Some(Ok(()));
            }
            // Still starting: poll again.
            let status = process.try_wait().unwrap()?;
            // Configuration errors go to stderr, which the watchdog discards: run it once more
            // (bounded) for them.
            let (_, stderr) = run(Command::new("timeout")
                .arg("5")
                .arg(&redis_server)
                .args(&argv[1..])
                .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""]));
            Some(Err(format!(
                "exited with {status}:\n{}{stderr}",
                log_text()
            )))
        })
        .unwrap_or_else(|| Err(format!("not answering after 20 s:\n{}", log_text())))?;
        server = Some(process);
        Ok(())
    });
    let server_log = || fs::read_to_string(&log).unwrap_or_default();
    let (passed, output) = redis_ping(port, None);
    assert!(
        !passed && output.contains("NOAUTH"),
        "redis-server must require a password: {output}\n{}",
        server_log()
    );
    let (passed, output) = redis_ping(port, Some(password));
    assert!(
        passed && output.starts_with("PONG"),
        "redis-server must accept the Secret's password, exactly: {output}\n{}",
        server_log()
    );

    // The exporter, as its container runs it, against that server.
    let config = runnable_config(m, &pod, exporter, dir.path(), &overrides);
    let (running, _) = assert_sidecar_scrapes(
        m,
        (&pod, exporter),
        &overrides,
        dir.path(),
        &config,
        Server {
            kind: "redis",
            name: "Redis",
            field: "url",
            scheme: "redis://",
            pod_port: 6379,
            port,
            log: &server_log,
        },
    );
    drop(running);
    drop(server);
}
