use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stay_under_the_cap_and_are_reused() {
    let server = Mariadb::start(Opts::default());
    server.create_users();
    server.sql("SET GLOBAL userstat = 1");
    let mut root = root_connection(&server).await;
    let connections_before = global_status(&mut root, "CONNECTIONS").await;

    // Sample the exporter's sessions on the server while the scrapes run.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, most, taken) = (stop.clone(), most.clone(), taken.clone());
        let mut conn = root_connection(&server).await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = count_connections(&mut conn, "exporter").await;
                most.fetch_max(n, Ordering::Relaxed);
                taken.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut settings = exporter(&server);
    settings.max_connections = 2;
    settings.collect = vec![Scraper::GlobalStatus];
    settings.queries = vec![
        query(
            "ok",
            "SELECT 1 AS v",
            None,
            Duration::ZERO,
            vec![gauge("reuse_ok", &[], &["v"])],
        ),
        query(
            "broken",
            "SELECT v FROM no_such_schema.no_such_table",
            None,
            Duration::ZERO,
            vec![gauge("reuse_broken", &[], &["v"])],
        ),
    ];
    let collector = MysqlCollector::new(settings).unwrap();

    let (mut shorts, mut ups) = (0u32, 0u32);
    for round in 0..50 {
        // Four at a time; every tenth round one of them gets a deadline too short to finish, which
        // may cost its connection.
        let budgets: Vec<Duration> = (0..4)
            .map(|i| {
                if round % 10 == 5 && i == 0 {
                    Duration::from_millis(3)
                } else {
                    Duration::from_secs(10)
                }
            })
            .collect();
        let outcomes =
            futures_util::future::join_all(budgets.iter().map(|b| scrape(&collector, *b))).await;
        for (budget, outcome) in budgets.iter().zip(outcomes) {
            if *budget < Duration::from_secs(1) {
                shorts += 1;
                continue;
            }
            assert!(outcome.up, "round {round}: {:?}", outcome.errors);
            ups += 1;
            assert_eq!(success(&outcome, "query.ok"), Some(1.0), "round {round}");
            assert_eq!(
                success(&outcome, "query.broken"),
                Some(0.0),
                "round {round}"
            );
            assert_eq!(sample(&outcome.families, "reuse_ok", &[]), Some(1.0));
            assert_eq!(
                outcome.errors.len(),
                1,
                "the broken query: {:?}",
                outcome.errors
            );
        }
    }
    assert_eq!((ups, shorts), (195, 5));

    // Statements abandoned at a deadline finish on their own; give them a moment, then look again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let sampled = taken.load(Ordering::Relaxed);
    let most = most.load(Ordering::Relaxed);
    assert!(sampled > 20, "only {sampled} samples");
    assert!(most >= 1, "the sampler never saw the exporter");
    assert!(most <= 2, "{most} exporter sessions at once, cap 2");
    assert!(count_connections(&mut root, "exporter").await <= 2);

    // Far fewer connections than scrapes: at most the two slots plus one per cut-off scrape.
    let bound = 2.0 + f64::from(shorts);
    let opened = global_status(&mut root, "CONNECTIONS").await - connections_before - 1.0;
    assert!(
        opened <= bound,
        "{opened} connections for 200 scrapes (sampler excluded)"
    );
    let per_user: i64 = sqlx::query_scalar(
        "SELECT TOTAL_CONNECTIONS FROM information_schema.USER_STATISTICS WHERE USER = 'exporter'",
    )
    .fetch_one(&mut root)
    .await
    .unwrap();
    assert!(
        per_user >= 1 && per_user as f64 <= bound,
        "{per_user} logins"
    );

    // A dropped collector leaves nothing behind on the server.
    drop(collector);
    let start = Instant::now();
    while count_connections(&mut root, "exporter").await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "exporter sessions outlive the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Custom queries
