// figment::Jail::expect_with takes closures returning figment::Result, whose error is large by design.
#![allow(clippy::result_large_err)]

use fanout_collectors::http::HttpConfig;
use figment::Jail;
use secrecy::ExposeSecret;

use super::*;

/// Load `yaml` as `config.yaml` in a jail (own directory, own environment), after `setup`.
fn load_in_jail(
    yaml: &str,
    setup: impl FnOnce(&mut Jail),
    flags: FlagOverrides,
) -> Result<Config, ConfigErrors> {
    let mut out = None;
    Jail::expect_with(|jail| {
        jail.create_file("config.yaml", yaml)?;
        setup(jail);
        out = Some(load(&Input::File("config.yaml".into()), &flags));
        Ok(())
    });
    out.expect("jail ran")
}

fn ok(yaml: &str) -> Config {
    load_in_jail(yaml, |_| (), FlagOverrides::default()).expect("valid config")
}

/// The single error for `yaml`, displayed.
fn error(yaml: &str) -> String {
    let errors = load_in_jail(yaml, |_| (), FlagOverrides::default()).expect_err("invalid config");
    assert_eq!(errors.0.len(), 1, "{errors}");
    errors.to_string()
}

const VALID: &str = "\
global:
  scrape_timeout: 5s
  timeout_offset: 250ms
  max_concurrency: 8
  labels: {env: prod}
http:
  web:
    url: http://127.0.0.1:1/healthz
    valid_status_codes: [200, 204]
    labels: {team: web, env: staging}
  api:
    url: https://api.example/
    method: post
    body_size_limit: 1MB
    fail_if_body_not_matches_regexp: ['ok']
mysql: {}
redis: {}
";

#[test]
fn a_valid_file_yields_sorted_targets_with_merged_labels() {
    let config = ok(VALID);
    assert_eq!(config.source, "config.yaml");
    assert_eq!(config.global.scrape_timeout, Duration::from_secs(5));
    assert_eq!(config.global.timeout_offset, Duration::from_millis(250));
    assert_eq!(config.global.max_concurrency, 8);
    let names: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(
        config.targets[0].labels,
        [("env".to_owned(), "prod".to_owned())]
    );
    assert_eq!(
        config.targets[1].labels,
        [
            ("env".to_owned(), "staging".to_owned()),
            ("team".to_owned(), "web".to_owned())
        ],
        "a target's own labels win over global ones"
    );
    assert!(config.targets.iter().all(|t| t.kind() == "http"));
}

#[test]
fn defaults_apply_to_a_file_of_empty_sections() {
    let config = ok("global:\n");
    assert_eq!(config.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(config.global.timeout_offset, Duration::from_millis(500));
    assert_eq!(config.global.max_concurrency, 64);
    assert!(config.targets.is_empty());
}

#[test]
fn the_embedded_default_probes_our_own_health_endpoint() {
    let config = load(
        &Input::Text(crate::cli::embedded_default(9930)),
        &FlagOverrides::default(),
    )
    .expect("valid");
    assert_eq!(config.source, "<embedded default>");
    assert_eq!(config.targets.len(), 1);
    assert_eq!(config.targets[0].name, "fanout_exporter");
}

#[test]
fn yaml_syntax_errors_name_file_and_line() {
    let e = error("global:\n  scrape_timeout: 5s\n  labels: {env: prod\n");
    assert!(e.starts_with("config.yaml:4:"), "{e}");
    assert!(e.contains("did not find expected ',' or '}'"), "{e}");
}

#[test]
fn unknown_keys_name_the_key_path_line_and_expected_keys() {
    let e = error("http:\n  web:\n    url: http://x/\n    urll: http://y/\n");
    assert!(
        e.starts_with("config.yaml:4: http.web: unknown field `urll`, expected one of `url`"),
        "{e}"
    );
    let e = error("globl: {}\n");
    assert!(
        e.starts_with(
            "config.yaml:1: unknown field `globl`, expected one of `global`, `modules`, `http`"
        ),
        "{e}"
    );
}

#[test]
fn wrong_types_name_the_key_path_and_what_was_expected() {
    let e = error("global:\n  max_concurrency: many\n");
    assert!(
        e.starts_with(
            "config.yaml:2: global.max_concurrency: invalid type: a string, expected a non-negative whole number"
        ),
        "{e}"
    );
    let e = error("http:\n  web:\n    url: http://x/\n    valid_status_codes: 200\n");
    assert!(
        e.contains("http.web.valid_status_codes: invalid type: an integer, expected a sequence"),
        "{e}"
    );
}

#[test]
fn bad_durations_name_the_key() {
    let e = error("global:\n  scrape_timeout: 10 parsecs\n");
    assert!(
        e.starts_with("config.yaml:2: global.scrape_timeout: "),
        "{e}"
    );
    assert!(
        e.contains("expected a duration such as 10s, 500ms or 1m30s (units ms, s, m, h, d, w, y), not \"10 parsecs\""),
        "{e}"
    );
    // A bare number is told the unit it lacks.
    let e = error("global:\n  scrape_timeout: 10\n");
    assert!(e.contains("10 has no unit: write 10s for seconds"), "{e}");
    let e = error(
        "mysql:\n  db:\n    address: 127.0.0.1:3306\n    user: u\n    max_connections: 5000000000\n",
    );
    assert!(
        e.starts_with("config.yaml:5: mysql.db.max_connections: ")
            && e.contains("expected a whole number from 0 to 4294967295"),
        "{e}"
    );
    let e = error("global:\n  scrape_timeout: 1s\n  timeout_offset: 2s\n");
    assert_eq!(
        e,
        "config.yaml:3: global.timeout_offset: must be smaller than scrape_timeout"
    );
}

#[test]
fn invalid_and_duplicate_target_names_are_refused() {
    let e = error("http:\n  'bad name':\n    url: http://x/\n");
    assert_eq!(
        e,
        "config.yaml:2: http.bad name: invalid target name: expected [A-Za-z0-9_.-]+"
    );
    let e = error("http:\n  web:\n    url: http://x/\n  web:\n    url: http://y/\n");
    assert_eq!(
        e,
        "config.yaml:4: http.web: duplicate key, first at line 2: a key may appear only once in a mapping"
    );
    let errors = load_in_jail(
        "http:\n  db:\n    url: http://x/\nmysql:\n  db: {address: 'x:3306', user: u}\n",
        |_| (),
        FlagOverrides::default(),
    )
    .expect_err("duplicate across kinds");
    let text = errors.to_string();
    assert!(
        text.contains("config.yaml:5: mysql.db: target name \"db\" is already used under http"),
        "{text}"
    );
}

#[test]
fn missing_secret_files_name_the_key_and_the_path() {
    let e = error("http:\n  web:\n    url: http://x/\n    bearer_token_file: /nonexistent/token\n");
    assert!(
        e.starts_with(
            "config.yaml:4: http.web.bearer_token_file: cannot read /nonexistent/token: "
        ),
        "{e}"
    );
    let e =
        error("http:\n  web:\n    url: http://x/\n    bearer_token: a\n    bearer_token_file: t\n");
    assert_eq!(
        e,
        "config.yaml:4: http.web.bearer_token: set either bearer_token or bearer_token_file, not both"
    );
}

#[test]
fn bad_values_inside_targets_are_located() {
    let e = error("http:\n  web:\n    url: 'not a url'\n");
    assert_eq!(
        e,
        "config.yaml:3: http.web.url: invalid URL: relative URL without a base"
    );
    let e = error("http:\n  web:\n    url: ftp://x/\n");
    assert_eq!(
        e,
        "config.yaml:3: http.web.url: only http and https URLs with a host can be probed (scheme is \"ftp\")"
    );
    let e = error("http:\n  web:\n    url: http://x/\n    fail_if_body_matches_regexp: ['(']\n");
    assert!(
        e.starts_with("config.yaml:4: http.web.fail_if_body_matches_regexp: invalid regular expression \"(\": unclosed group"),
        "{e}"
    );
    let e = error("http:\n  web:\n    url: http://x/\n    body_size_limit: lots\n");
    assert!(
        e.starts_with("config.yaml:4: http.web.body_size_limit: invalid size \"lots\""),
        "{e}"
    );
    let e = error("http:\n  web:\n    url: http://x/\n    labels: {job: x}\n");
    assert!(
        e.starts_with("config.yaml:4: http.web.labels.job: label name \"job\" is reserved"),
        "{e}"
    );
    let e = error("global:\n  labels:\n    bad-label: x\n");
    assert!(
        e.starts_with("config.yaml:3: global.labels.bad-label: invalid label name"),
        "{e}"
    );
    let e = error("http:\n  web:\n    url: https://x/\n    tls: {ca_file: ca.pem}\n");
    assert!(
        e.starts_with("config.yaml:4: http.web.tls.ca_file: cannot read ca.pem: "),
        "{e}"
    );
}

#[test]
fn a_redis_section_becomes_collectors_and_hides_url_passwords() {
    let config = ok("\
redis:
  cache:
    url: redis://app:s3cr3t-in-url@cache.internal:6380/2
    labels: {tier: cache}
    check_keys: ['queue:*']
    count_keys: ['session:*']
    commands:
      - {metric: redis_queue_length, help: Jobs waiting., command: [LLEN, 'jobs:pending'], type: gauge}
    key_check_budget: {max_keys: 500, max_time: 200ms}
  valkey:
    url: valkeys://v.internal
    config_command: ''
");
    let names: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["cache", "valkey"]);
    assert_eq!(config.targets[0].collector.kind().name, "redis");
    let debug = format!("{:?}", config.targets[0].collector);
    assert!(debug.contains("cache.internal:6380"), "{debug}");
    assert!(debug.contains("db: 2"), "{debug}");
    assert!(
        !debug.contains("s3cr3t"),
        "the URL's password leaked: {debug}"
    );
    assert!(format!("{:?}", config.targets[1].collector).contains("tls: true"));
}

#[test]
fn redis_mistakes_name_the_key_and_line_without_quoting_the_url() {
    let e = error("redis:\n  cache:\n    url: ftp://u:s3cr3t@x/\n");
    assert!(
        e.starts_with("config.yaml:3: redis.cache.url: unsupported scheme \"ftp\""),
        "{e}"
    );
    assert!(!e.contains("s3cr3t"), "{e}");
    let e = error("redis:\n  cache:\n    url: redis://u:s3cr3t@x/notadb\n");
    assert!(
        e.starts_with("config.yaml:3: redis.cache.url: the path must be a database index"),
        "{e}"
    );
    assert!(!e.contains("s3cr3t"), "{e}");
    let e = error(
        "redis:\n  cache:\n    url: redis://x\n    commands:\n      - {metric: m, command: [FLUSHALL]}\n",
    );
    assert!(
        e.starts_with("config.yaml:5: redis.cache.commands[0].command: \"FLUSHALL\" is not one of the read-only commands"),
        "{e}"
    );
    let e = error("redis:\n  cache:\n    url: rediss://x\n    tls: {server_name: y}\n");
    assert!(
        e.starts_with(
            "config.yaml:4: redis.cache.tls.server_name: not supported for redis targets"
        ),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let errors = load(
        &Input::File("/nonexistent/fanout.yaml".into()),
        &FlagOverrides::default(),
    )
    .expect_err("missing");
    let text = errors.to_string();
    assert!(
        text.starts_with("/nonexistent/fanout.yaml: cannot read the file: "),
        "{text}"
    );
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let config = load_in_jail(
        VALID,
        |jail| {
            jail.set_env("FANOUT_EXPORTER_GLOBAL__SCRAPE_TIMEOUT", "3s");
            jail.set_env("FANOUT_EXPORTER_GLOBAL__TIMEOUT_OFFSET", "100ms");
            jail.set_env("FANOUT_EXPORTER_HTTP__WEB__LABELS__VERSION", "1.10");
        },
        FlagOverrides {
            timeout_offset: Some(Duration::from_millis(50)),
        },
    )
    .expect("valid");
    assert_eq!(config.global.scrape_timeout, Duration::from_secs(3));
    assert_eq!(config.global.timeout_offset, Duration::from_millis(50));
    let web = config
        .targets
        .iter()
        .find(|t| t.name == "web")
        .expect("web");
    assert!(
        web.labels
            .contains(&("version".to_owned(), "1.10".to_owned())),
        "environment values stay strings: {:?}",
        web.labels
    );
}

#[test]
fn environment_values_are_not_reinterpreted() {
    let mut raw = None;
    Jail::expect_with(|jail| {
        jail.set_env("FANOUT_EXPORTER_HTTP__WEB__URL", "http://x/");
        jail.set_env("FANOUT_EXPORTER_HTTP__WEB__BEARER_TOKEN", "000123");
        jail.set_env("FANOUT_EXPORTER_HTTP__WEB__HEADERS__X_FLAG", "true");
        jail.set_env(
            "FANOUT_EXPORTER_HTTP__WEB__VALID_STATUS_CODES",
            "[200, 204]",
        );
        jail.set_env("FANOUT_EXPORTER_GLOBAL__MAX_CONCURRENCY", "12");
        let figment = Figment::new().merge(EnvLayer::from_process());
        raw = Some((
            figment.extract_lossy::<Section<HttpConfig>>(),
            figment.extract_lossy::<GlobalSection>(),
        ));
        Ok(())
    });
    let (http, global) = raw.expect("ran");
    let (http, global) = (http.expect("valid"), global.expect("valid"));
    let web = &http.0["web"];
    let token = web.bearer_token.as_ref().expect("token");
    assert_eq!(token.0.expose_secret(), "000123");
    assert_eq!(web.headers["x_flag"].0, "true");
    assert_eq!(web.valid_status_codes, [200, 204]);
    assert_eq!(global.global.max_concurrency, 12);
}

#[test]
fn a_bad_flag_value_is_blamed_on_the_flag() {
    let errors = load_in_jail(
        "global:\n  scrape_timeout: 1s\n",
        |_| (),
        FlagOverrides {
            timeout_offset: Some(Duration::from_secs(2)),
        },
    )
    .expect_err("offset above timeout");
    assert_eq!(
        errors.to_string(),
        "--timeout-offset: global.timeout_offset: must be smaller than scrape_timeout"
    );
}

#[test]
fn environment_variables_reach_targets_whose_names_have_dashes_dots_or_capitals() {
    let yaml = "http:\n  exporter-health:\n    url: http://a/\n  db.Primary:\n    url: http://a/\n";
    let config = load_in_jail(
        yaml,
        |jail| {
            jail.set_env("FANOUT_EXPORTER_HTTP__EXPORTER_HEALTH__LABELS__TEAM", "obs");
            jail.set_env("FANOUT_EXPORTER_HTTP__DB_PRIMARY__LABELS__ROLE", "primary");
        },
        FlagOverrides::default(),
    )
    .expect("valid");
    let labels = |name: &str| {
        config
            .targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.labels.clone())
            .expect(name)
    };
    assert!(labels("exporter-health").contains(&("team".to_owned(), "obs".to_owned())));
    assert!(labels("db.Primary").contains(&("role".to_owned(), "primary".to_owned())));
    assert_eq!(config.targets.len(), 2, "no new target from the variables");
    // An error on such a target names the variable as it was written.
    let errors = load_in_jail(
        yaml,
        |jail| jail.set_env("FANOUT_EXPORTER_HTTP__EXPORTER_HEALTH__TIMEOUT", "soon"),
        FlagOverrides::default(),
    )
    .expect_err("bad env");
    assert!(
        errors
            .to_string()
            .contains("FANOUT_EXPORTER_HTTP__EXPORTER_HEALTH__TIMEOUT"),
        "{errors}"
    );
}

#[test]
fn bad_environment_values_name_the_variable() {
    let errors = load_in_jail(
        VALID,
        |jail| {
            jail.set_env("FANOUT_EXPORTER_GLOBAL__MAX_CONCURRENCY", "lots");
        },
        FlagOverrides::default(),
    )
    .expect_err("bad env");
    let text = errors.to_string();
    assert!(text.contains("global.max_concurrency"), "{text}");
    assert!(
        text.contains("FANOUT_EXPORTER_GLOBAL__MAX_CONCURRENCY"),
        "{text}"
    );
}

#[test]
fn kubernetes_service_links_are_not_configuration() {
    // What Kubernetes sets in every container of a namespace with a Service named fanout-exporter.
    let links = [
        ("FANOUT_EXPORTER_PORT", "tcp://10.0.0.1:9930"),
        ("FANOUT_EXPORTER_PORT_9930_TCP", "tcp://10.0.0.1:9930"),
        ("FANOUT_EXPORTER_PORT_9930_TCP_ADDR", "10.0.0.1"),
        ("FANOUT_EXPORTER_PORT_9930_TCP_PORT", "9930"),
        ("FANOUT_EXPORTER_PORT_9930_TCP_PROTO", "tcp"),
        ("FANOUT_EXPORTER_SERVICE_HOST", "10.0.0.1"),
        ("FANOUT_EXPORTER_SERVICE_PORT", "9930"),
        ("FANOUT_EXPORTER_SERVICE_PORT_METRICS", "9930"),
        // ... and for one named fanout-exporter-probe, with a port named http-metrics.
        ("FANOUT_EXPORTER_PROBE_PORT", "tcp://10.0.0.2:9930"),
        ("FANOUT_EXPORTER_PROBE_PORT_9930_TCP_ADDR", "10.0.0.2"),
        ("FANOUT_EXPORTER_PROBE_SERVICE_HOST", "10.0.0.2"),
        ("FANOUT_EXPORTER_PROBE_SERVICE_PORT_HTTP_METRICS", "9930"),
    ];
    let config = load_in_jail(
        VALID,
        |jail| {
            for (name, value) in links {
                jail.set_env(name, value);
            }
        },
        FlagOverrides::default(),
    )
    .expect("service links are ignored");
    assert!(config.targets.iter().any(|t| t.name == "web"));

    // Anything else unknown is still an error, naming the variable.
    for near_miss in [
        "FANOUT_EXPORTER_PORTS",
        "FANOUT_EXPORTER_PORT_X_TCP",
        "FANOUT_EXPORTER_PORT_9930_TCP_HOST",
        "FANOUT_EXPORTER_SERVICEHOST",
        "FANOUT_EXPORTER_GLOBAL_SCRAPE_TIMEOUT",
        "FANOUT_EXPORTER_PROBE_PORT_9930",
    ] {
        let errors = load_in_jail(
            VALID,
            |jail| jail.set_env(near_miss, "1"),
            FlagOverrides::default(),
        )
        .expect_err(near_miss);
        assert!(
            errors.to_string().contains(near_miss),
            "{near_miss}: {errors}"
        );
    }
}

#[test]
fn values_under_the_wrong_key_are_not_quoted_in_errors() {
    let e = error("http:\n  a:\n    url: http://x/\n    basic_auth: \"admin:hunter2\"\n");
    assert!(!e.contains("hunter2"), "{e}");
    assert!(
        e.contains("http.a.basic_auth: invalid type: a string, expected a mapping"),
        "{e}"
    );
    let errors = load_in_jail(
        "http:\n  a:\n    url: http://x/\n",
        |jail| jail.set_env("FANOUT_EXPORTER_HTTP__A__BASIC_AUTH", "admin:hunter2"),
        FlagOverrides::default(),
    )
    .expect_err("a string is not a mapping");
    let text = errors.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("FANOUT_EXPORTER_HTTP__A__BASIC_AUTH"),
        "{text}"
    );
}

#[test]
fn global_settings_are_bounded() {
    let e = error("global:\n  scrape_timeout: 2h\n");
    assert_eq!(
        e,
        "config.yaml:2: global.scrape_timeout: must be between 100ms and 3600s"
    );
    let e = error("global:\n  max_concurrency: 18446744073709551615\n");
    assert_eq!(
        e,
        "config.yaml:2: global.max_concurrency: must be between 1 and 10000"
    );
    let e = error("global:\n  labels: {le: x}\n");
    assert!(
        e.contains("global.labels.le: label name \"le\" is reserved"),
        "{e}"
    );
    let e = error("http:\n  a:\n    url: http://x/\n    valid_http_versions: [HTTP/2.0]\n");
    assert_eq!(
        e,
        "config.yaml:4: http.a.valid_http_versions: unsupported version \"HTTP/2.0\": expected HTTP/1.0 or HTTP/1.1"
    );
}

const MYSQL: &str = "\
global:
  scrape_timeout: 4s
mysql:
  primary:
    address: db1.internal:3307
    user: exporter
    password_file: secret.txt
    collect: [global_status, info_schema.processlist]
    max_connections: 3
    processlist: {min_time: 1s}
    labels: {cluster: main}
    queries:
      - query: SELECT state, COUNT(*) AS n FROM shop.orders GROUP BY state
        metric: shop_orders
        type: gauge
        key_labels: [state]
        values: [n]
      - name: sizes
        query: SELECT 1 AS a, 2 AS b
        min_interval: 1m
        metrics:
          - {metric: shop_a, type: counter, help: A., values: [a]}
          - {metric: shop_b, type: gauge, help: B., values: [a, b], value_label: col}
  socket:
    address: unix:///run/mysqld/mysqld.sock
    user: exporter
";

#[test]
fn a_mysql_section_becomes_collectors() {
    let config = load_in_jail(
        MYSQL,
        |jail| {
            jail.create_file("secret.txt", "p#ss 'w\"rd\n")
                .expect("write");
        },
        FlagOverrides::default(),
    )
    .expect("valid mysql config");
    let names: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["primary", "socket"]);
    let primary = &config.targets[0];
    assert_eq!(primary.collector.kind().name, "mysql");
    assert_eq!(primary.labels, [("cluster".to_owned(), "main".to_owned())]);
    let debug = format!("{:?}", primary.collector);
    assert!(debug.contains("db1.internal:3307"), "{debug}");
    assert!(debug.contains("max_connections: 3"), "{debug}");
    assert!(debug.contains("Processlist"), "{debug}");
    assert!(
        !debug.contains("p#ss"),
        "the password leaked into Debug: {debug}"
    );
    assert!(format!("{:?}", config.targets[1].collector).contains("mysqld.sock"));
}

#[test]
fn mysql_mistakes_name_the_key_and_line() {
    let e = error("mysql:\n  db:\n    address: 'x:99999'\n    user: u\n");
    assert_eq!(
        e,
        "config.yaml:3: mysql.db.address: invalid port: expected 1 to 65535"
    );
    let e = error(
        "mysql:\n  db:\n    address: x\n    user: u\n    collect: [global_status, slave_hosts]\n",
    );
    assert!(
        e.starts_with("config.yaml:5: mysql.db.collect: unknown sub-collector \"slave_hosts\": expected one of global_status, "),
        "{e}"
    );
    let e = error("mysql:\n  db:\n    address: x\n    user: u\n    tls: {server_name: db}\n");
    assert!(
        e.starts_with("config.yaml:5: mysql.db.tls.server_name: not supported for mysql targets"),
        "{e}"
    );
    let e = error(
        "mysql:\n  db:\n    address: x\n    user: u\n    password: a\n    password_file: b\n",
    );
    assert_eq!(
        e,
        "config.yaml:5: mysql.db.password: set either password or password_file, not both"
    );
    let e =
        error("mysql:\n  db:\n    address: x\n    user: u\n    collect: [info_schema.tables]\n");
    assert!(
        e.starts_with("config.yaml:2: mysql.db.table_schemas: info_schema.tables needs"),
        "{e}"
    );
    let e = error("mysql:\n  db:\n    address: x\n    user: u\n    lock_wait_timeout: 500ms\n");
    assert_eq!(
        e,
        "config.yaml:5: mysql.db.lock_wait_timeout: must be a whole number of seconds, at least 1s (the server's unit)"
    );
    let e =
        error("mysql:\n  db:\n    address: x\n    user: u\n    processlist: {min_time: 1500ms}\n");
    assert_eq!(
        e,
        "config.yaml:5: mysql.db.processlist.min_time: must be a whole number of seconds (the process list's unit)"
    );
}

#[test]
fn a_bad_custom_query_is_located_in_its_list() {
    let yaml = "\
mysql:
  db:
    address: x
    user: u
    queries:
      - query: SELECT 1 AS v
        metric: ok_one
        type: gauge
        values: [v]
      - query: SELECT 1 AS v
        metrics:
          - {metric: fine, type: gauge, values: [v]}
          - metric: two_values
            type: gauge
            values: [a, b]
";
    let e = error(yaml);
    assert!(
        e.starts_with(
            "config.yaml:13: mysql.db.queries[1].metrics[1].value_label: more than one value column"
        ),
        "{e}"
    );
    let e = error(
        "mysql:\n  db:\n    address: x\n    user: u\n    queries:\n      - query: SELECT 1\n        metric: m\n        values: [v]\n",
    );
    assert_eq!(
        e,
        "config.yaml:6: mysql.db.queries[0].type: missing: expected counter or gauge"
    );
    let e = error(
        "mysql:\n  db:\n    address: x\n    user: u\n    queries:\n      - query: SELECT 1\n        metric: m\n        type: histogram\n",
    );
    assert!(
        e.starts_with("config.yaml:8: mysql.db.queries[0].type: unknown variant `histogram`"),
        "{e}"
    );
}

#[test]
fn locate_enters_list_items() {
    let text = "q:\n  - a: 1\n    b: 2\n  - a: 3\n    c:\n      - x: 1\n      - y: 2\n";
    assert_eq!(locate(text, &["q", "0", "b"]), Some(3));
    assert_eq!(locate(text, &["q", "1", "a"]), Some(4));
    assert_eq!(locate(text, &["q", "1", "c", "1", "y"]), Some(7));
    assert_eq!(locate(text, &["q", "0", "c"]), None);
    assert_eq!(locate(text, &["q", "2"]), None);
}

#[test]
fn locate_follows_keys_down_the_indentation() {
    let text = "http:\n  a:\n    url: x\n  b:\n    url: y\n    labels:\n      team: z\n";
    assert_eq!(locate(text, &["http", "b", "url"]), Some(5));
    assert_eq!(locate(text, &["http", "b", "labels", "team"]), Some(7));
    assert_eq!(locate(text, &["http", "c"]), None);
}

mod modules;
mod props;

#[test]
fn credentials_written_into_an_address_are_never_echoed_and_the_error_says_how_to_write_them() {
    const CANARY: &str = "Canary-S3cret";
    let cases = [
        (
            format!(
                "mysql:\n  db:\n    address: 'mysql://exporter:{CANARY}@db:3306/'\n    user: u\n"
            ),
            "not a URL",
        ),
        (
            format!("mysql:\n  db:\n    address: 'exporter:{CANARY}@tcp(db:3306)/'\n    user: u\n"),
            "not a DSN",
        ),
        (
            format!("mysql:\n  db:\n    address: 'db:3306?password={CANARY}'\n    user: u\n"),
            "without a path or options",
        ),
        (
            format!("redis:\n  r:\n    url: 'redis://:{CANARY}/x@cache:6379'\n"),
            "percent-encode",
        ),
        (
            format!("redis:\n  r:\n    url: 'redis://u:{CANARY}?x@cache:6379'\n"),
            "percent-encode",
        ),
    ];
    for (yaml, hint) in cases {
        let e = error(&yaml);
        assert!(!e.contains("S3cret"), "the password leaked: {e}");
        assert!(e.contains(hint), "{e}");
        assert!(e.contains("password_file"), "{e}");
    }
}

#[test]
fn an_empty_file_or_one_of_comments_only_is_refused() {
    for yaml in ["", "\n  \n", "# nothing yet\n", "~\n"] {
        let e = error(yaml);
        assert!(
            e.starts_with("config.yaml: the file holds no configuration"),
            "{yaml:?}: {e}"
        );
        assert!(e.contains("write `{}`"), "{e}");
    }
    assert!(ok("{}\n").targets.is_empty());
}

#[test]
fn duplicate_keys_point_at_the_repeat() {
    let e = error(
        "http:\n  web:\n    method: GET\n    url: http://x/\n    # again\n    url: http://y/\n",
    );
    assert_eq!(
        e,
        "config.yaml:6: http.web.url: duplicate key, first at line 4: a key may appear only once in a mapping"
    );
    let e = error("global: {}\nhttp: {}\nglobal: {}\n");
    assert_eq!(
        e,
        "config.yaml:3: global: duplicate key, first at line 1: a key may appear only once in a mapping"
    );
    // A flow mapping keeps serde_yaml's own wording and position.
    let e = error("global: {labels: {a: x, a: y}}\n");
    assert!(
        e.starts_with("config.yaml:1: global.labels: duplicate entry"),
        "{e}"
    );
}

#[test]
fn control_characters_and_invalid_utf8_are_located() {
    let e = error("global:\n  labels:\n    a: \"x\u{0}y\"\n");
    assert!(
        e.starts_with("config.yaml:3: control character U+0000 at column 10: expected YAML text"),
        "{e}"
    );
    let mut out = None;
    Jail::expect_with(|jail| {
        std::fs::write(
            jail.directory().join("config.yaml"),
            b"global:\n  labels:\n    a: \"\xc3\x28\"\n",
        )
        .map_err(|e| e.to_string())?;
        out = Some(load(
            &Input::File("config.yaml".into()),
            &FlagOverrides::default(),
        ));
        Ok(())
    });
    let e = out.expect("ran").expect_err("not UTF-8").to_string();
    assert_eq!(
        e,
        "config.yaml:3: invalid UTF-8 (byte 0xc3 at column 9): expected a YAML text file in UTF-8"
    );
}

#[test]
fn aliases_may_not_expand_without_bound() {
    // Flat: one large anchor named by many aliases, which serde_yaml's own limit lets through.
    let items = vec!["1"; 2_000].join(",");
    let aliases = vec!["*x"; 1_100].join(",");
    let e = error(&format!("global: {{}}\nx: &x [{items}]\ny: [{aliases}]\n"));
    assert!(
        e.contains("more than 2000000 values once its aliases are expanded"),
        "{e}"
    );
    // Nested: the billion laughs.
    let mut yaml =
        String::from("global: {}\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let e = error(&yaml);
    assert!(e.contains("an alias bomb?"), "{e}");
    // Anchors reused a few times are fine.
    let config = ok(
        "global:\n  labels: &l {team: web}\nhttp:\n  a: {url: 'http://x/', labels: *l}\n  b: {url: 'http://y/', labels: *l}\n",
    );
    assert_eq!(config.targets.len(), 2);
}

#[test]
fn files_that_are_not_regular_or_too_large_are_refused_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = load(
        &Input::File(dir.path().to_owned()),
        &FlagOverrides::default(),
    )
    .expect_err("a directory")
    .to_string();
    assert!(
        e.ends_with(": cannot read the file: it is a directory, not a file"),
        "{e}"
    );
    let e = load(&Input::File("/dev/zero".into()), &FlagOverrides::default())
        .expect_err("a device")
        .to_string();
    assert!(
        e.starts_with("/dev/zero: cannot read the file: it is not a regular file"),
        "{e}"
    );
    let big = dir.path().join("big.yaml");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
    let e = load(&Input::File(big), &FlagOverrides::default())
        .expect_err("too large")
        .to_string();
    assert!(
        e.ends_with(
            "cannot read the file: it is 8388609 bytes, over the limit of 8388608 bytes (8 MiB)"
        ),
        "{e}"
    );
    let e = error("mysql:\n  db:\n    address: x\n    user: u\n    password_file: /dev/zero\n");
    assert!(
        e.starts_with(
            "config.yaml:5: mysql.db.password_file: cannot read /dev/zero: it is not a regular file"
        ),
        "{e}"
    );
}

#[test]
fn a_flow_list_item_is_located_on_its_list_line() {
    let e = error("modules:\n  m:\n    http: {}\n    allowed_targets: [10.0.0.0/8, 10.0.0.0/33]\n");
    assert!(
        e.starts_with(
            "config.yaml:4: modules.m.allowed_targets[1]: \"10.0.0.0/33\": the prefix length"
        ),
        "{e}"
    );
}
