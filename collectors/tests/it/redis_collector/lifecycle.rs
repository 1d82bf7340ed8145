use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn config_renamed_away_is_skipped_without_error_spam() {
    config_renamed_away_is_skipped_without_error_spam_on(Server::Redis).await;
}

/// [`config_renamed_away_is_skipped_without_error_spam`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn config_renamed_away_is_skipped_without_error_spam_on(server: Server) {
    let server = Redis::start(Opts {
        args: ["--rename-command", "CONFIG", ""]
            .map(str::to_owned)
            .to_vec(),
        server,
        ..Opts::default()
    });
    let errors = |server: &Redis| {
        (
            server.info_number("stats", "total_error_replies"),
            server.info_item("errorstats", "errorstat_ERR", "count"),
        )
    };
    assert_eq!(errors(&server), (0.0, 0.0));
    let collector = build(settings(&server));

    let first = scrape_up(&collector).await;
    let after_first = errors(&server);
    let mut later = Vec::new();
    for _ in 0..2 {
        later.push(scrape_ok(&collector).await);
        assert_eq!(
            errors(&server),
            after_first,
            "a scrape after the first sent the missing CONFIG again"
        );
    }
    for outcome in std::iter::once(&first).chain(&later) {
        assert_all_valid(&outcome.families);
        let config: Vec<_> = names(&outcome.families)
            .into_iter()
            .filter(|n| n.starts_with("redis_config_"))
            .collect();
        assert!(
            config.is_empty(),
            "config families without CONFIG: {config:?}"
        );
        assert!(find(&outcome.families, "redis_instance_info").is_some());
    }

    // `config_command: None` never sends it: not even the first scrape costs an error.
    let mut never = settings(&server);
    never.config_command = None;
    let never = build(never);
    let before = errors(&server);
    for _ in 0..2 {
        let outcome = scrape_ok(&never).await;
        assert!(
            !names(&outcome.families)
                .iter()
                .any(|n| n.starts_with("redis_config_"))
        );
    }
    assert_eq!(errors(&server), before, "config_command None still sent it");
}

/// redis-compat.md §5: without `CONFIG GET databases` (CONFIG refused or renamed away), redis_exporter
/// zero-fills `redis_db_keys` and `redis_db_keys_expiring` for 16 databases.
#[tokio::test(flavor = "multi_thread")]
async fn without_config_the_keyspace_is_zero_filled_for_16_databases_as_upstream() {
    let server = Redis::start(Opts {
        args: ["--rename-command", "CONFIG", ""]
            .map(str::to_owned)
            .to_vec(),
        ..Opts::default()
    });
    server.cli(&["SET", "one", "1"]);
    let collector = build(settings(&server));
    for _ in 0..2 {
        let outcome = scrape_up(&collector).await;
        assert_eq!(
            samples(&outcome.families, "redis_db_keys"),
            db_values(&[("db0", 1.0)]),
        );
        assert_eq!(
            samples(&outcome.families, "redis_db_keys_expiring"),
            db_values(&[]),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn config_renamed_to_another_name_is_used_under_that_name() {
    let server = Redis::start(Opts {
        args: ["--rename-command", "CONFIG", "MYCONFIG"]
            .map(str::to_owned)
            .to_vec(),
        ..Opts::default()
    });
    server.cli(&["MYCONFIG", "SET", "maxclients", "1234"]);
    let mut renamed = settings(&server);
    renamed.config_command = Some("MYCONFIG".to_owned());
    let renamed = build(renamed);
    for _ in 0..2 {
        let outcome = scrape_ok(&renamed).await;
        assert_eq!(scalar(&outcome.families, "redis_config_maxclients"), 1234.0);
        let maxmemory: f64 = server
            .cli(&["MYCONFIG", "GET", "maxmemory"])
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            scalar(&outcome.families, "redis_config_maxmemory"),
            maxmemory
        );
        assert!(
            find(
                &outcome.families,
                "redis_config_client_output_buffer_limit_bytes"
            )
            .is_some()
        );
    }
    assert_eq!(
        server.info_number("stats", "total_error_replies"),
        0.0,
        "scraping with the renamed CONFIG caused error replies"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Restart

#[tokio::test(flavor = "multi_thread")]
async fn the_same_collector_recovers_after_the_server_is_killed_and_restarted() {
    the_same_collector_recovers_after_the_server_is_killed_and_restarted_on(Server::Redis).await;
}

/// [`the_same_collector_recovers_after_the_server_is_killed_and_restarted`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn the_same_collector_recovers_after_the_server_is_killed_and_restarted_on(
    server: Server,
) {
    let mut server = Redis::start(Opts {
        server,
        ..Opts::default()
    });
    let collector = build(settings(&server));
    let before = scrape_ok(&collector).await;
    let run_id = |outcome: &Outcome| {
        let family = family(&outcome.families, "redis_instance_info");
        labels(&family.get_metric()[0])["run_id"].clone()
    };
    let first_run = run_id(&before);
    assert_eq!(first_run, server.info("server")["run_id"]);

    // Killed: down by the deadline, not hanging on the dead connection.
    server.kill_server();
    let start = Instant::now();
    let down = scrape(&collector, Duration::from_secs(2)).await;
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(!down.up, "up with the server killed");
    assert!(!down.errors.is_empty());

    // Restarted on the same port: the next scrape is up again, from the new server.
    server.restart();
    let after = scrape_ok(&collector).await;
    let second_run = run_id(&after);
    assert_eq!(second_run, server.info("server")["run_id"]);
    assert_ne!(second_run, first_run);

    // Killed and restarted between two scrapes (the kept connection is dead but nobody noticed):
    // up again by the second scrape at the latest.
    server.kill_server();
    server.restart();
    let third_run = server.info("server")["run_id"].clone();
    let mut outcome = scrape(&collector, Duration::from_secs(5)).await;
    if !outcome.up {
        eprintln!("first scrape after an unseen restart: {:?}", outcome.errors);
        outcome = scrape(&collector, Duration::from_secs(5)).await;
    }
    assert!(outcome.up, "still down: {:?}", outcome.errors);
    assert_eq!(run_id(&outcome), third_run);
}

// ---------------------------------------------------------------------------------------------
// 7. A listener that never answers

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_listener_is_down_with_a_timeout_by_the_deadline() {
    let addr = support::silent().await;
    let collector = build(settings_for(&format!("redis://{addr}")));
    let budget = Duration::from_secs(1);
    for what in ["first scrape", "second scrape"] {
        let start = Instant::now();
        let outcome = scrape(&collector, budget).await;
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{what}: took {elapsed:?}");
        assert!(!outcome.up, "{what}: up against a silent peer");
        assert!(
            matches!(outcome.errors.as_slice(), [e] if e.class() == ErrorClass::Timeout),
            "{what}: {:?}",
            outcome.errors
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Key checks
