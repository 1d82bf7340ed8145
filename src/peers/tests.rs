//! The peers' flags, variables and `.my.cnf` on their own.

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::*;

fn hint(args: &[&str]) -> Option<String> {
    flag_hint(args.iter().map(OsString::from))
}

#[test]
fn each_peer_flag_is_named_with_what_to_write_instead_and_ours_pass() {
    let redis = hint(&["-redis.addr", "redis://cache:6379"]).unwrap();
    assert!(
        redis.starts_with("-redis.addr is a flag of redis_exporter") && redis.contains("`url:`"),
        "{redis}"
    );
    let collect = hint(&["--collect.info_schema.processlist"]).unwrap();
    assert!(collect.contains("collect: ["), "{collect}");
    let processlist = hint(&["--collect.info_schema.processlist.min_time=5"]).unwrap();
    assert!(
        processlist.contains("processlist: {min_time"),
        "{processlist}"
    );
    let lock = hint(&["--exporter.lock_wait_timeout=3"]).unwrap();
    assert!(lock.contains("lock_wait_timeout: 2s"), "{lock}");
    let no_collect = hint(&["--no-collect.global_status"]).unwrap();
    assert!(no_collect.contains("leave it out"), "{no_collect}");
    let password = hint(&["--redis.password-file=/etc/pw.json"]).unwrap();
    assert!(password.contains("JSON map"), "{password}");
    let go_style = hint(&["-web.listen-address=:9121"]).unwrap();
    assert!(go_style.contains("--web.listen-address"), "{go_style}");
    for ours in [
        &["--web.listen-address=:9930", "--config.file", "c.yml"][..],
        &["--web.config.file=web.yml", "--log.level", "debug"],
        &["healthcheck", "--timeout=3s"],
        &["--", "--redis.addr"],
    ] {
        assert_eq!(hint(ours), None, "{ours:?}");
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn a_data_source_name_becomes_one_mysql_target_and_its_password_is_not_in_the_equivalent() {
    for (dsn, address) in [
        (
            "exporter:p@ss/w:rd@tcp(db.internal:3307)/",
            "db.internal:3307",
        ),
        ("exporter:p@ss/w:rd@(db.internal:3307)/", "db.internal:3307"),
        (
            "exporter:p@ss/w:rd@unix(/run/mysqld/mysqld.sock)/",
            "unix:///run/mysqld/mysqld.sock",
        ),
        ("exporter:p@ss/w:rd@/", "127.0.0.1:3306"),
    ] {
        let generated = from_environment(&env(&[("DATA_SOURCE_NAME", dsn)]), None)
            .unwrap()
            .unwrap();
        let config = yaml(&generated.text);
        assert_eq!(config["mysql"]["mysql"]["address"], address, "{dsn}");
        assert_eq!(config["mysql"]["mysql"]["user"], "exporter");
        assert_eq!(config["mysql"]["mysql"]["password"], "p@ss/w:rd");
        assert!(
            !generated.equivalent.contains("p@ss"),
            "{}",
            generated.equivalent
        );
        assert!(generated.source.contains("DATA_SOURCE_NAME"));
        assert!(!format!("{generated:?}").contains("p@ss"));
    }
    let skip = from_environment(
        &env(&[("DATA_SOURCE_NAME", "u:p@tcp(h:1)/?tls=skip-verify")]),
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        yaml(&skip.text)["mysql"]["mysql"]["tls"]["insecure_skip_verify"],
        true
    );
    let overridden = from_environment(
        &env(&[
            ("DATA_SOURCE_NAME", "u:old@tcp(h:1)/"),
            ("MYSQLD_EXPORTER_PASSWORD", "new"),
        ]),
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!(yaml(&overridden.text)["mysql"]["mysql"]["password"], "new");
}

#[test]
fn a_malformed_data_source_name_is_refused_without_quoting_it() {
    for dsn in [
        "mysql://u:secret-canary@h/",
        "u:secret-canary@h:3306",
        "u:secret-canary@udp(h:1)/",
    ] {
        let Err(e) = from_environment(&env(&[("DATA_SOURCE_NAME", dsn)]), None) else {
            panic!("{dsn} accepted");
        };
        assert!(e.contains("DATA_SOURCE_NAME"), "{e}");
        assert!(!e.contains("secret-canary"), "{e}");
    }
    let e = from_environment(&env(&[("MYSQLD_EXPORTER_PASSWORD", "x")]), None).unwrap_err();
    assert!(e.contains("no DATA_SOURCE_NAME"), "{e}");
}

#[test]
fn redis_variables_become_one_redis_target_as_redis_exporter_reads_them() {
    let generated = from_environment(
        &env(&[
            ("REDIS_ADDR", "cache.internal:6380"),
            ("REDIS_USER", "exporter"),
            ("REDIS_PASSWORD", "redis-secret"),
        ]),
        None,
    )
    .unwrap()
    .unwrap();
    let config = yaml(&generated.text);
    assert_eq!(
        config["redis"]["redis"]["url"],
        "redis://cache.internal:6380"
    );
    assert_eq!(config["redis"]["redis"]["user"], "exporter");
    assert_eq!(config["redis"]["redis"]["password"], "redis-secret");
    assert!(!generated.equivalent.contains("redis-secret"));
    let defaulted = from_environment(&env(&[("REDIS_PASSWORD", "x")]), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        yaml(&defaulted.text)["redis"]["redis"]["url"],
        "redis://localhost:6379"
    );
    assert!(
        from_environment(&env(&[("HOME", "/root")]), None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_my_cnf_client_section_becomes_one_mysql_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".my.cnf");
    std::fs::write(
        &path,
        "[mysqld]\nport = 1\n[client]\nuser = exporter\npassword = \"pw # not a comment\"\nhost = db.internal\nport = 3307\nssl-ca = /etc/ca.pem\n",
    )
    .unwrap();
    let generated = from_environment(&BTreeMap::new(), Some(&path))
        .unwrap()
        .unwrap();
    let config = yaml(&generated.text);
    assert_eq!(config["mysql"]["mysql"]["address"], "db.internal:3307");
    assert_eq!(config["mysql"]["mysql"]["password"], "pw # not a comment");
    assert_eq!(config["mysql"]["mysql"]["tls"]["ca_file"], "/etc/ca.pem");
    std::fs::write(
        &path,
        "[client]\nuser=root\nsocket=/run/mysqld/mysqld.sock\n",
    )
    .unwrap();
    let socket = from_environment(&BTreeMap::new(), Some(&path))
        .unwrap()
        .unwrap();
    assert_eq!(
        yaml(&socket.text)["mysql"]["mysql"]["address"],
        "unix:///run/mysqld/mysqld.sock"
    );
    std::fs::write(&path, "[mysqld]\nuser=mysql\n").unwrap();
    let e = from_environment(&BTreeMap::new(), Some(&path)).unwrap_err();
    assert!(e.contains("no [client] section"), "{e}");
}
