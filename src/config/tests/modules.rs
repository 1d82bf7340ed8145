//! The `modules` section: what loads, what is refused and where, and what a module builds.

use std::time::Instant;

use super::super::*;
use super::{error, load_in_jail, ok};
use crate::modules::{Module, Refusal};

const MODULES: &str = "\
global:
  labels: {env: prod}
modules:
  cache:
    redis:
      password: hunter2
      check_keys: ['session:*']
      labels: {team: cache}
    allowed_targets: ['10.0.0.0/8', '*.redis.svc.cluster.local', 'unix:///run/redis/']
    idle_timeout: 2m
    max_targets: 2
  db:
    mysql:
      user: exporter
      collect: [global_status]
    allowed_targets: ['db-*.internal']
  status:
    http:
    allowed_targets: ['https://status.example.com/']
";

fn module(config: &Config, name: &str) -> Module {
    let spec = config
        .modules
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no module {name}"))
        .clone();
    Module::new(spec)
}

#[test]
fn modules_of_every_kind_load_with_their_settings_and_limits() {
    let config = ok(MODULES);
    let names: Vec<(&str, &str)> = config
        .modules
        .iter()
        .map(|m| (m.name.as_str(), m.kind.name))
        .collect();
    assert_eq!(
        names,
        [("cache", "redis"), ("db", "mysql"), ("status", "http")]
    );
    let cache = &config.modules[0];
    assert_eq!(cache.idle_timeout, Duration::from_secs(120));
    assert_eq!(cache.max_targets, 2);
    assert_eq!(
        cache.labels,
        [
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), "cache".to_owned())
        ]
    );
    let db = &config.modules[1];
    assert_eq!(db.idle_timeout, modules::DEFAULT_IDLE_TIMEOUT);
    assert_eq!(db.max_targets, modules::DEFAULT_MAX_TARGETS);
    let summary = config.summary();
    assert!(
        summary.contains(
            "module cache (redis) allowed_targets: 10.0.0.0/8, *.redis.svc.cluster.local, unix:///run/redis/ idle_timeout=2m max_targets=2"
        ),
        "{summary}"
    );
    assert!(!summary.contains("hunter2"), "{summary}");
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn a_module_builds_one_pooled_target_per_allowed_address_and_refuses_the_rest() {
    let config = ok(MODULES);
    let cache = module(&config, "cache");
    let now = Instant::now();
    let first = cache.target("redis://10.1.2.3:6379", now).expect("allowed");
    assert_eq!(first.kind(), "redis");
    assert_eq!(first.collector.endpoint(), "redis://10.1.2.3:6379/0");
    assert_eq!(first.labels, config.modules[0].labels);
    // The same address is the same pooled target.
    let again = cache.target("redis://10.1.2.3:6379", now).expect("allowed");
    assert!(Arc::ptr_eq(&first.collector, &again.collector));
    assert!(
        cache
            .target("redis://redis-0.redis.svc.cluster.local", now)
            .is_ok()
    );
    // max_targets: 2.
    match cache.target("redis://10.9.9.9", now) {
        Err(Refusal::Full(why)) => assert!(why.contains("max_targets"), "{why}"),
        other => panic!("{:?}", other.map(|t| t.name)),
    }
    match cache.target("redis://192.168.0.1:6379", now) {
        Err(Refusal::Forbidden(why)) => assert!(
            why.contains("redis://192.168.0.1:6379") && why.contains("\"cache\""),
            "{why}"
        ),
        other => panic!("{:?}", other.map(|t| t.name)),
    }
    match cache.target("mysql://10.0.0.1", now) {
        Err(Refusal::BadAddress(why)) => assert!(why.contains("not a redis address"), "{why}"),
        other => panic!("{:?}", other.map(|t| t.name)),
    }
    let db = module(&config, "db");
    let target = db.target("db-3.internal:3307", now).expect("allowed");
    assert_eq!(
        target.collector.endpoint(),
        "db-3.internal:3307 as exporter"
    );
    assert!(matches!(
        db.target("db-3.internal.evil:3307", now),
        Err(Refusal::Forbidden(_))
    ));
    let status = module(&config, "status");
    assert!(
        status
            .target("https://status.example.com/health", now)
            .is_ok()
    );
    assert!(matches!(
        status.target("https://status.example.com.evil/", now),
        Err(Refusal::Forbidden(_))
    ));
}

#[test]
fn idle_targets_are_swept_unless_in_use() {
    let config = ok(MODULES);
    let cache = module(&config, "cache");
    let start = Instant::now();
    let busy = cache.target("redis://10.0.0.1", start).expect("allowed");
    let idle = cache.target("redis://10.0.0.2", start).expect("allowed");
    drop(idle);
    assert!(cache.sweep(start + Duration::from_secs(119)).is_empty());
    let swept = cache.sweep(start + Duration::from_secs(120));
    assert_eq!(swept.len(), 1, "only the idle one");
    assert_eq!(swept[0].collector.endpoint(), "redis://10.0.0.2:6379/0");
    assert_eq!(cache.targets().len(), 1);
    drop(busy);
    assert_eq!(cache.sweep(start + Duration::from_secs(121)).len(), 1);
    assert!(cache.targets().is_empty());
}

#[test]
fn module_mistakes_name_the_key_and_line() {
    let e = error("modules:\n  m:\n    redis:\n      url: redis://x\n    allowed_targets: [x]\n");
    assert!(
        e.starts_with("config.yaml:4: modules.m.redis: a module has no `url`: each /probe?target= gives the address"),
        "{e}"
    );
    let e = error("modules:\n  m:\n    redis: {}\n    http: {}\n    allowed_targets: [x]\n");
    assert!(e.contains("one kind block, found redis and http"), "{e}");
    let e = error("modules:\n  m:\n    allowed_targets: [x]\n");
    assert!(
        e.contains("a module needs one kind block (http, mysql, redis)"),
        "{e}"
    );
    let e = error("modules:\n  m:\n    redis: {}\n    allowed: [x]\n");
    assert!(
        e.contains("unknown field `allowed`, expected one of `allowed_targets`"),
        "{e}"
    );
    let e = error("modules:\n  m:\n    redis:\n      check_key: [x]\n    allowed_targets: [x]\n");
    assert!(
        e.starts_with("config.yaml:4: modules.m.redis: unknown field `check_key`"),
        "{e}"
    );
    let e = error("modules:\n  m:\n    redis: {}\n");
    assert!(
        e.starts_with("config.yaml:2: modules.m.allowed_targets: missing: list the addresses"),
        "{e}"
    );
    let e = error("modules:\n  m:\n    redis: {}\n    allowed_targets: []\n");
    assert!(
        e.starts_with("config.yaml:4: modules.m.allowed_targets: empty"),
        "{e}"
    );
    let e = error(
        "modules:\n  m:\n    redis: {}\n    allowed_targets:\n      - 10.0.0.0/8\n      - 10.0.0.1/8\n",
    );
    assert!(
        e.starts_with(
            "config.yaml:6: modules.m.allowed_targets[1]: \"10.0.0.1/8\": host bits are set"
        ),
        "{e}"
    );
    let e =
        error("modules:\n  m:\n    redis: {}\n    allowed_targets: [x]\n    idle_timeout: 10ms\n");
    assert!(
        e.starts_with("config.yaml:5: modules.m.idle_timeout: must be between 1s and 1day"),
        "{e}"
    );
    let e = error("modules:\n  m:\n    mysql: {}\n    allowed_targets: [x]\n");
    assert!(e.contains("modules.m.mysql: missing field `user`"), "{e}");
    // A setting the kind checks when building (a file it cannot read).
    let e = error(
        "modules:\n  m:\n    redis:\n      password_file: /nonexistent/pw\n    allowed_targets: [x]\n",
    );
    assert!(
        e.starts_with("config.yaml:4: modules.m.redis.password_file: cannot read /nonexistent/pw"),
        "{e}"
    );
}

#[test]
fn fingerprints_follow_settings_and_secret_files_not_labels() {
    let yaml = |label: &str| {
        format!(
            "global: {{labels: {{l: {label}}}}}\nredis:\n  r:\n    url: redis://127.0.0.1:1\n    password_file: pw\n"
        )
    };
    let fingerprint = |yaml: String, password: &'static str| {
        let config = load_in_jail(
            &yaml,
            |jail| {
                jail.create_file("pw", password).expect("pw file");
            },
            FlagOverrides::default(),
        )
        .expect("valid");
        config.targets[0].clone()
    };
    let a = fingerprint(yaml("a"), "one");
    let b = fingerprint(yaml("b"), "one");
    let c = fingerprint(yaml("a"), "two");
    let mut engine_a = crate::scrape::Engine::new(&test_global(), vec![a]);
    let engine_b = crate::scrape::Engine::new(&test_global(), vec![b]);
    // Same settings and password file, other labels: the collector is kept.
    let adopted = engine_a.adopt(&engine_b);
    assert!(adopted.retired.is_empty());
    assert_eq!(adopted.kept, 1);
    assert!(Arc::ptr_eq(
        &engine_a.targets()[0].collector,
        &engine_b.targets()[0].collector
    ));
    // A rotated password file: a new collector, the old one retired.
    let mut engine_c = crate::scrape::Engine::new(&test_global(), vec![c]);
    let adopted = engine_c.adopt(&engine_a);
    assert_eq!(adopted.retired.len(), 1);
    assert_eq!(adopted.kept, 0);
    assert!(!Arc::ptr_eq(
        &engine_c.targets()[0].collector,
        &engine_a.targets()[0].collector
    ));
}

fn test_global() -> Global {
    Global {
        scrape_timeout: Duration::from_secs(5),
        timeout_offset: Duration::ZERO,
        max_concurrency: 4,
        labels: BTreeMap::new(),
    }
}

#[test]
fn the_environment_reaches_modules_and_its_mistakes_name_the_variable() {
    let yaml = "modules:\n  m:\n    redis: {}\n    allowed_targets: [10.0.0.0/8]\n";
    let config = load_in_jail(
        yaml,
        |jail| {
            jail.set_env("FANOUT_EXPORTER_MODULES__M__MAX_TARGETS", "7");
            jail.set_env("FANOUT_EXPORTER_MODULES__M__REDIS__LABELS__SHARD", "0001");
        },
        FlagOverrides::default(),
    )
    .expect("valid");
    assert_eq!(config.modules[0].max_targets, 7);
    assert_eq!(
        config.modules[0].labels,
        [("shard".to_owned(), "0001".to_owned())]
    );
    // The environment's settings reach every collector the module builds.
    let module = Module::new(config.modules[0].clone());
    let target = module
        .target("redis://10.0.0.1", Instant::now())
        .expect("allowed");
    assert_eq!(target.labels, [("shard".to_owned(), "0001".to_owned())]);
    let errors = load_in_jail(
        yaml,
        |jail| jail.set_env("FANOUT_EXPORTER_MODULES__M__REDIS__URL", "redis://x"),
        FlagOverrides::default(),
    )
    .expect_err("a module has no url");
    let text = errors.to_string();
    assert!(
        text.contains("modules.m.redis.url: a module has no `url`")
            && text.contains("(set by FANOUT_EXPORTER_MODULES__M__REDIS__URL)"),
        "{text}"
    );
}
