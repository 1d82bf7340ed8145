//! A whole run with one canary password in every place a credential goes (MySQL password, password
//! file, a wrong password, a Redis URL, a Redis password, HTTP basic auth and a bearer token, a
//! module, a URL's userinfo, the environment) against real servers that accept it, then every output
//! of the run searched for it: the debug log, every page, every error answer, `--config.check`, a
//! refused reload and an address written with credentials in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use fanout_testkit::exporter::{Exporter, bin, request, value, write};
use fanout_testkit::http::{reply, serve};
use fanout_testkit::mariadb::{self, Mariadb, sql_quote};
use fanout_testkit::redis::{self as redis_server, Redis};

const CANARY: &str = "Canary7f3a9c-do-not-print";

#[test]
fn a_canary_password_never_appears_in_anything_a_run_prints_or_serves() {
    let mariadb = Mariadb::start(mariadb::Opts::default());
    mariadb.sql(&format!(
        "CREATE USER 'canary'@'%' IDENTIFIED BY {};
         GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'canary'@'%';",
        sql_quote(CANARY)
    ));
    let redis = Redis::start(redis_server::Opts {
        password: Some(CANARY.to_owned()),
        ..Default::default()
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (http, seen) = runtime.block_on(serve(None, |_| async { reply(200, "ok") }));

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "canary.pw", &format!("{CANARY}\n"));
    let (mport, rport) = (mariadb.port(), redis.port());
    let config = format!(
        "mysql:
  db:
    address: 127.0.0.1:{mport}
    user: canary
    password: {CANARY}
  db_file:
    address: 127.0.0.1:{mport}
    user: canary
    password_file: canary.pw
  wrong:
    address: 127.0.0.1:{mport}
    user: canary
    password: wrong-{CANARY}
  down:
    address: 127.0.0.1:1
    user: canary
    password: {CANARY}
redis:
  cache:
    url: redis://:{CANARY}@127.0.0.1:{rport}
  cache_password:
    url: redis://127.0.0.1:{rport}
    password: {CANARY}
  cache_down:
    url: redis://:{CANARY}@127.0.0.1:1
http:
  basic:
    url: http://127.0.0.1:{http_port}/basic
    basic_auth:
      username: prometheus
      password: {CANARY}
  bearer:
    url: http://127.0.0.1:{http_port}/bearer
    bearer_token: {CANARY}
  userinfo:
    url: http://prometheus:{CANARY}@127.0.0.1:{http_port}/userinfo
modules:
  db:
    allowed_targets: [127.0.0.1]
    mysql:
      user: canary
      password: {CANARY}
",
        http_port = http.port()
    );
    let config_path = write(dir.path(), "config.yml", &config);
    let env = [(
        "FANOUT_EXPORTER_REDIS__CACHE_ENV__URL".to_owned(),
        format!("redis://:{CANARY}@127.0.0.1:{rport}"),
    )];
    let mut outputs: Vec<(String, String)> = Vec::new();
    let check = |file: &std::path::Path| {
        let output = Command::new(bin())
            .args([
                "--config.check",
                &format!("--config.file={}", file.display()),
            ])
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    let (code, text) = check(&config_path);
    assert_eq!(code, Some(0), "{text}");
    outputs.push(("--config.check".into(), text));

    let mut environment: Vec<(String, String)> = std::env::vars().collect();
    environment.extend(env.iter().cloned());
    let exporter = Exporter::start_with_env(
        &[
            "--web.listen-address=127.0.0.1:0",
            &format!("--config.file={}", config_path.display()),
            "--log.level=debug",
        ],
        &environment,
    );
    let get = |path: &str| {
        let response = exporter.get(path, &[("X-Prometheus-Scrape-Timeout-Seconds", "5")]);
        (response.status, response.text())
    };
    let (status, metrics) = get("/metrics");
    assert_eq!(status, 200);
    // The canary was really used: the servers accepted it.
    for (series, up) in [
        ("mysql_up{target=\"db\"}", 1.0),
        ("mysql_up{target=\"db_file\"}", 1.0),
        ("mysql_up{target=\"wrong\"}", 0.0),
        ("redis_up{target=\"cache\"}", 1.0),
        ("redis_up{target=\"cache_password\"}", 1.0),
        ("redis_up{target=\"cache_env\"}", 1.0),
        ("probe_success{target=\"basic\"}", 1.0),
    ] {
        assert_eq!(value(&metrics, series), Some(up), "{series}\n{metrics}");
    }
    let authorizations: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| s.header("authorization").map(str::to_owned))
        .collect();
    assert!(
        authorizations
            .iter()
            .any(|a| a == &format!("Bearer {CANARY}")),
        "{authorizations:?}"
    );
    outputs.push(("/metrics".into(), metrics));
    for path in [
        "/",
        "/config",
        "/probe?target=db",
        "/probe?target=wrong",
        "/probe?target=cache_down",
        &format!("/probe?target=127.0.0.1:{mport}&module=db"),
        &format!("/probe?target=mysql://canary:{CANARY}@127.0.0.1:{mport}/&module=db"),
        &format!("/probe?target=canary:{CANARY}@tcp(127.0.0.1:{mport})/&module=db"),
        &format!("/probe?target=127.0.0.2:{mport}&module=db"),
        &format!("/probe?target=127.0.0.1:{mport}?password={CANARY}&module=db"),
    ] {
        let (status, text) = get(path);
        outputs.push((format!("{path} ({status})"), text));
    }
    // Addresses written with credentials in them, as a new user would: refused at reload and by
    // --config.check, quoting none of it.
    let bad = [
        format!("mysql:\n  db:\n    address: mysql://canary:{CANARY}@127.0.0.1:{mport}/\n"),
        format!("mysql:\n  db:\n    address: canary:{CANARY}@tcp(127.0.0.1:{mport})/\n"),
        format!("mysql:\n  db:\n    address: 127.0.0.1:{mport}?password={CANARY}\n"),
        format!("redis:\n  cache:\n    url: redis://:{CANARY}/x?#@127.0.0.1:{rport}\n"),
        format!("mysql:\n  db:\n    address: 127.0.0.1\n    password: [{CANARY}]\n"),
        format!("mysql:\n  db:\n    address: 127.0.0.1\n    pasword: {CANARY}\n"),
    ];
    for (i, text) in bad.iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.yml"), text);
        let (code, text) = check(&file);
        assert_eq!(code, Some(2), "bad{i}: {text}");
        outputs.push((format!("--config.check bad{i}"), text));
        std::fs::copy(&file, &config_path).unwrap();
        let reload = request(exporter.address, "POST", "/-/reload", &[]);
        assert_eq!(reload.status, 500, "bad{i}: {}", reload.text());
        outputs.push((format!("reload bad{i}"), reload.text()));
    }
    exporter.send("-HUP");
    std::thread::sleep(Duration::from_millis(500));
    let (_, after) = get("/metrics");
    assert_eq!(
        value(&after, "fanout_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    outputs.push(("/metrics after the bad reloads".into(), after));
    let log = exporter.log();
    assert!(exporter.terminate().success());
    assert!(log.len() > 20, "a debug log has more to say: {log:?}");
    outputs.push(("log".into(), log.join("\n")));

    let leaks: Vec<&(String, String)> =
        outputs.iter().filter(|(_, t)| t.contains(CANARY)).collect();
    assert!(
        leaks.is_empty(),
        "the canary appears in: {}",
        leaks
            .iter()
            .map(|(what, text)| format!("\n--- {what}:\n{text}"))
            .collect::<String>()
    );
}
