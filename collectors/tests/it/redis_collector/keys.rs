use super::*;

const POPULATED: usize = 100_000;

fn populated(server: Server) -> Redis {
    let server = Redis::start(Opts {
        server,
        ..Opts::default()
    });
    server.cli(&["DEBUG", "POPULATE", &POPULATED.to_string(), "key"]);
    assert_eq!(server.cli(&["DBSIZE"]), POPULATED.to_string());
    server
}

fn key_sizes(families: &[MetricFamily]) -> BTreeMap<String, f64> {
    find(families, "redis_key_size")
        .map(|f| {
            f.get_metric()
                .iter()
                .map(|m| {
                    let labels = labels(m);
                    assert_eq!(labels.len(), 2, "{labels:?}");
                    assert_eq!(labels["db"], "db0");
                    (labels["key"].clone(), value(f, m))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn key_checks_on_100k_keys_stay_within_the_budget() {
    let server = populated(Server::Redis);
    let mut settings = settings(&server);
    settings.check_keys = vec!["key:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1000,
        max_time: Duration::from_millis(200),
    };
    let collector = build(settings);
    for _ in 0..2 {
        let start = Instant::now();
        let outcome = scrape_up(&collector).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_millis(200) + Duration::from_millis(1300),
            "a 200 ms key budget took {elapsed:?}"
        );
        assert_all_valid(&outcome.families);
        let sizes = key_sizes(&outcome.families);
        assert!(
            !sizes.is_empty() && sizes.len() <= 1000,
            "{} keys sized",
            sizes.len()
        );
        // DEBUG POPULATE's values are `value:<n>` for `key:<n>`: sizes are their lengths.
        for (key, size) in sizes.iter().take(20) {
            let n = key.strip_prefix("key:").unwrap();
            assert_eq!(*size, format!("value:{n}").len() as f64, "{key}");
        }
        assert_eq!(scalar(&outcome.families, BUDGET_EXCEEDED), 1.0);
    }

    // The key budget alone stops the checks too.
    let mut few = settings_for(&server.url());
    few.check_keys = vec!["key:*".to_owned()];
    few.key_check_budget = KeyBudget {
        max_keys: 50,
        max_time: Duration::from_secs(5),
    };
    let outcome = scrape_up(&build(few)).await;
    let sizes = key_sizes(&outcome.families);
    assert!(
        !sizes.is_empty() && sizes.len() <= 50,
        "{} keys",
        sizes.len()
    );
    assert_eq!(scalar(&outcome.families, BUDGET_EXCEEDED), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_counts_single_keys_and_values_within_a_sufficient_budget() {
    key_counts_single_keys_and_values_within_a_sufficient_budget_on(Server::Redis).await;
}

/// [`key_counts_single_keys_and_values_within_a_sufficient_budget`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn key_counts_single_keys_and_values_within_a_sufficient_budget_on(
    server: Server,
) {
    let server = populated(server);
    for i in 0..3 {
        server.cli(&["SET", &format!("small:{i}"), "x"]);
    }
    server.cli(&["RPUSH", "jobs:pending", "a", "b", "c", "d"]);
    server.cli(&["SET", "counter", "42"]);
    let mut settings = settings(&server);
    settings.check_keys = vec!["small:*".to_owned()];
    settings.check_single_keys = vec![
        "jobs:pending".to_owned(),
        "counter".to_owned(),
        "missing".to_owned(),
    ];
    settings.count_keys = vec!["small:*".to_owned(), "key:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1_000_000,
        max_time: Duration::from_secs(20),
    };
    let collector = build(settings);
    let outcome = scrape_up(&collector).await;
    assert_all_valid(&outcome.families);
    assert_eq!(scalar(&outcome.families, BUDGET_EXCEEDED), 0.0);

    let sizes = key_sizes(&outcome.families);
    assert_eq!(
        sizes,
        BTreeMap::from([
            ("small:0".to_owned(), 1.0),
            ("small:1".to_owned(), 1.0),
            ("small:2".to_owned(), 1.0),
            ("jobs:pending".to_owned(), 4.0),
            ("counter".to_owned(), 2.0),
        ]),
        "sizes of the matched and single keys; the missing key absent"
    );
    assert_eq!(
        must(
            &outcome.families,
            "redis_key_value",
            &[("db", "db0"), ("key", "counter")]
        ),
        42.0
    );
    assert!(
        sample(
            &outcome.families,
            "redis_key_value",
            &[("db", "db0"), ("key", "jobs:pending")]
        )
        .is_none(),
        "a list has no value"
    );
    assert_eq!(
        samples(&outcome.families, "redis_keys_count"),
        BTreeMap::from([
            (label_set(&[("db", "db0"), ("key", "small:*")]), 3.0),
            (
                label_set(&[("db", "db0"), ("key", "key:*")]),
                POPULATED as f64
            ),
        ])
    );
    assert_eq!(
        kind_of(&outcome.families, "redis_keys_count"),
        MetricType::GAUGE
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Custom commands

fn custom(metric: &str, command: &[&str], kind: Kind) -> CustomCommand {
    CustomCommand {
        metric: metric.to_owned(),
        help: format!("{metric} from a custom command"),
        command: command.iter().map(|c| (*c).to_owned()).collect(),
        kind,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_read_only_commands_become_metrics_and_fail_alone() {
    custom_read_only_commands_become_metrics_and_fail_alone_on(Server::Redis).await;
}

/// [`custom_read_only_commands_become_metrics_and_fail_alone`] on `server` (the `valkey` module runs it on Valkey).
pub(super) async fn custom_read_only_commands_become_metrics_and_fail_alone_on(server: Server) {
    let server = Redis::start(Opts {
        server,
        ..Opts::default()
    });
    server.cli(&["RPUSH", "jobs:pending", "a", "b", "c", "d", "e"]);
    server.cli(&["SET", "plain", "text"]);

    let mut settings = settings(&server);
    settings.commands = vec![
        custom("redis_queue_length", &["LLEN", "jobs:pending"], Kind::Gauge),
        // LLEN on a string: WRONGTYPE.
        custom("redis_broken_length", &["LLEN", "plain"], Kind::Gauge),
    ];
    let collector = build(settings);
    let outcome = scrape_up(&collector).await;
    assert_all_valid(&outcome.families);
    assert_eq!(scalar(&outcome.families, "redis_queue_length"), 5.0);
    assert_eq!(
        kind_of(&outcome.families, "redis_queue_length"),
        MetricType::GAUGE
    );
    assert!(
        find(&outcome.families, "redis_broken_length").is_none(),
        "a failed command still produced its metric"
    );
    assert!(find(&outcome.families, "redis_instance_info").is_some());
    server.cli(&["RPUSH", "jobs:pending", "f"]);
    let outcome = scrape_up(&collector).await;
    assert_eq!(scalar(&outcome.families, "redis_queue_length"), 6.0);

    // Commands off the read-only allow-list are refused when the collector is built.
    for command in [
        &["DEL", "jobs:pending"][..],
        &["FLUSHALL"],
        &["CONFIG", "SET", "maxmemory", "1"],
        &["EVAL", "return redis.call('DEL', 'jobs:pending')", "0"],
        &["SET", "plain", "1"],
        &["LPOP", "jobs:pending"],
    ] {
        let mut settings = settings_for(&server.url());
        settings.commands = vec![custom("redis_bad", command, Kind::Gauge)];
        match RedisCollector::new(settings) {
            Err(error) => assert!(
                error.field.starts_with("commands"),
                "{command:?}: field {:?}",
                error.field
            ),
            Ok(_) => panic!("{command:?} accepted as a custom command"),
        }
    }
    assert_eq!(server.cli(&["LLEN", "jobs:pending"]), "6", "something ran");
}

// ---------------------------------------------------------------------------------------------
// 10. Transient errors, awkward keys, key checks without GET, settings refused up front

/// A Lua script that keeps the server busy for 2 to 3 seconds (whole seconds of `TIME` apart).
const BUSY_SCRIPT: &str = "local t=redis.call('TIME') while true do local n=redis.call('TIME') \
                           if n[1]-t[1]>=3 then break end end return 1";

/// BUSY is an answer about now, not a refusal: a scrape while a script runs may be down, but once the
/// script is over the next scrape has INFO ALL (commandstats, latencystats), CONFIG, LATENCY and
/// SLOWLOG data again.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_script_is_transient_and_the_next_scrape_has_everything_again() {
    let server = Redis::start(Opts {
        args: [
            "--busy-reply-threshold",
            "100",
            // Only the script is slow enough for the latency monitor and the slowlog, so the newest
            // event and entry are the script's even on a loaded machine.
            "--latency-monitor-threshold",
            "500",
            "--slowlog-log-slower-than",
            "500000",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Opts::default()
    });
    server.cli(&["SET", "k", "v"]);
    let collector = build(settings(&server));
    let before = scrape_ok(&collector).await;
    for name in ["redis_commands_total", "redis_latency_percentiles_usec"] {
        assert!(
            find(&before.families, name).is_some(),
            "{name} missing before"
        );
    }

    // The script runs; wait until the server answers BUSY, then scrape while it still does.
    let script = server.cli_background(&["EVAL", BUSY_SCRIPT, "0"]);
    let mut busy_probes = 0.0;
    let waiting = std::time::Instant::now();
    loop {
        match server.try_cli(&["PING"]) {
            Err(text) if text.contains("BUSY") => {
                busy_probes += 1.0;
                break;
            }
            Err(text) => panic!("PING failed otherwise: {text}"),
            Ok(_) => {
                assert!(
                    waiting.elapsed() < Duration::from_secs(10),
                    "the server never became busy"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let during = scrape(&collector, Duration::from_secs(5)).await;
    eprintln!(
        "scrape during the script: up {}, errors {:?}",
        during.up, during.errors
    );
    let output = script.wait(Duration::from_secs(30));
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "1",
        "the script failed: {output:?}"
    );
    // The scrape really was answered BUSY (else this test shows nothing).
    let busy_replies = server.info_item("errorstats", "errorstat_BUSY", "count");
    assert!(
        busy_replies > busy_probes,
        "the scrape during the script got no BUSY reply ({busy_replies} BUSY replies, \
         {busy_probes} ours)"
    );

    // The next scrape: everything again, from INFO ALL, CONFIG, LATENCY LATEST and SLOWLOG.
    let after = scrape_ok(&collector).await;
    let info = server.info("all");
    assert_all_valid(&after.families);
    let eval_calls: f64 = parse_pairs(&info["cmdstat_eval"])["calls"].parse().unwrap();
    assert_eq!(
        must(&after.families, "redis_commands_total", &[("cmd", "eval")]),
        eval_calls,
        "commandstats (INFO ALL) missing after the script ended"
    );
    assert!(
        family(&after.families, "redis_latency_percentiles_usec")
            .get_metric()
            .iter()
            .any(|m| labels(m) == label_set(&[("cmd", "eval")])),
        "latencystats (INFO ALL) missing after the script ended"
    );
    assert_eq!(
        must(&after.families, "redis_errors_total", &[("err", "BUSY")]),
        info["errorstat_BUSY"]
            .strip_prefix("count=")
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        "errorstats (INFO ALL)"
    );
    assert_eq!(
        scalar(&after.families, "redis_config_maxclients"),
        info["maxclients"].parse::<f64>().unwrap(),
        "CONFIG not asked again after BUSY"
    );
    let spike = must(
        &after.families,
        "redis_latency_spike_duration_seconds",
        &[("event_name", "command")],
    );
    assert!(
        spike >= 1.0,
        "LATENCY LATEST: the script's {spike} s spike (the script ran 2 s or more)"
    );
    let slowlog_len: f64 = server.cli(&["SLOWLOG", "LEN"]).parse().unwrap();
    assert_eq!(
        scalar(&after.families, "redis_slowlog_length"),
        slowlog_len,
        "SLOWLOG not asked again after BUSY"
    );
    let slowest = scalar(
        &after.families,
        "redis_last_slow_execution_duration_seconds",
    );
    assert!(
        slowest >= 1.0,
        "newest slowlog entry (the script): {slowest} s"
    );
    // Nothing that was there before the script is missing after it.
    let missing: Vec<_> = names(&before.families)
        .difference(&names(&after.families))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "gone after a BUSY scrape: {missing:?}");
}

/// A key whose name is not UTF-8 does not fail the key checks: the other keys are sized, and that one
/// is either sized under its lossy name (`q:\u{fffd}`) or left out.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_name_that_is_not_utf8_does_not_fail_the_key_checks() {
    let server = Redis::start(Opts::default());
    server.pipe(&resp(&[b"SET", b"q:\xff", b"1"]));
    server.cli(&["SET", "q:plain", "hello"]);
    server.cli(&["RPUSH", "q:list", "a", "b", "c"]);
    server.cli(&["SET", "other", "x"]);
    // The raw key is there, under its raw name.
    let listed = server.cli(&["--no-raw", "SCAN", "0", "MATCH", "q:*", "COUNT", "1000"]);
    assert!(listed.contains(r"q:\xff"), "{listed}");
    assert_eq!(server.cli(&["DBSIZE"]), "4");

    let mut settings = settings(&server);
    settings.check_keys = vec!["q:*".to_owned()];
    let collector = build(settings);
    for what in ["first", "second"] {
        let outcome = scrape_ok(&collector).await;
        assert_all_valid(&outcome.families);
        assert_eq!(
            scalar(&outcome.families, BUDGET_EXCEEDED),
            0.0,
            "{what} scrape"
        );
        let mut sizes = key_sizes(&outcome.families);
        assert_eq!(
            sizes.remove("q:plain"),
            Some(5.0),
            "{what} scrape: {sizes:?}"
        );
        assert_eq!(
            sizes.remove("q:list"),
            Some(3.0),
            "{what} scrape: {sizes:?}"
        );
        match sizes.remove("q:\u{fffd}") {
            Some(size) => {
                assert_eq!(size, 1.0, "{what} scrape: the lossy-named key's size");
                eprintln!("{what} scrape: the non-UTF-8 key is sized under q:\\u{{fffd}}");
            }
            None => eprintln!("{what} scrape: the non-UTF-8 key is skipped"),
        }
        assert!(
            sizes.is_empty(),
            "{what} scrape: other keys sized: {sizes:?}"
        );
    }
}

const NO_GET_PASSWORD: &str = "no get pw";

/// A user that may size keys but not read them: sizes without values, no errors, and GET is not
/// refused again on later scrapes.
#[tokio::test(flavor = "multi_thread")]
async fn key_checks_under_an_acl_user_without_get_size_keys_and_remember_the_refusal() {
    let server = Redis::start(Opts {
        args: [
            "--user",
            "noget",
            "on",
            &format!(">{NO_GET_PASSWORD}"),
            "~*",
            "&*",
            "-@all",
            "+@connection",
            "+info",
            "+scan",
            "+type",
            "+strlen",
            "+llen",
            "+config|get",
            "+latency",
            "+slowlog",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Opts::default()
    });
    // The user is what we think it is: STRLEN yes, GET no.
    assert_eq!(
        server.cli(&["ACL", "DRYRUN", "noget", "STRLEN", "s:text"]),
        "OK"
    );
    let dry = server.cli(&["ACL", "DRYRUN", "noget", "GET", "s:text"]);
    assert!(dry.contains("no permissions"), "{dry}");
    server.cli(&["SET", "s:text", "hello"]);
    server.cli(&["SET", "s:number", "42"]);
    server.cli(&["RPUSH", "s:list", "a", "b", "c", "d"]);

    let mut noget = settings(&server);
    noget.user = Some("noget".to_owned());
    noget.password = Some(SecretString::from(NO_GET_PASSWORD.to_owned()));
    noget.check_keys = vec!["s:*".to_owned()];
    let noget = build(noget);

    let first = scrape_up(&noget).await;
    let after_first = refusals(&server);
    let second = scrape_ok(&noget).await;
    let after_second = refusals(&server);
    let third = scrape_ok(&noget).await;
    let after_third = refusals(&server);
    eprintln!(
        "first scrape errors: {:?}; refusals after scrapes 1, 2, 3: {after_first:?} \
         {after_second:?} {after_third:?}",
        first.errors
    );
    let wanted = BTreeMap::from([
        ("s:list".to_owned(), 4.0),
        ("s:number".to_owned(), 2.0),
        ("s:text".to_owned(), 5.0),
    ]);
    for (what, outcome) in [("first", &first), ("second", &second), ("third", &third)] {
        assert_all_valid(&outcome.families);
        assert_eq!(key_sizes(&outcome.families), wanted, "{what} scrape");
        assert!(
            find(&outcome.families, "redis_key_value").is_none(),
            "{what} scrape: a value without GET"
        );
        assert_eq!(
            scalar(&outcome.families, BUDGET_EXCEEDED),
            0.0,
            "{what} scrape"
        );
    }
    assert_eq!(
        after_third, after_second,
        "scrape 3 was refused again (GET sent again?)"
    );
}

/// A numeric string gives its value; a long string is sized but never read.
#[tokio::test(flavor = "multi_thread")]
async fn a_numeric_key_gives_its_value_and_a_long_string_is_sized_but_never_read() {
    const LONG: usize = 1 << 20;
    let server = Redis::start(Opts::default());
    // A long string that would parse as a number (42) if it were read.
    let mut long = vec![b'0'; LONG - 2];
    long.extend_from_slice(b"42");
    server.pipe(&resp(&[b"SET", b"big", &long]));
    assert_eq!(server.cli(&["STRLEN", "big"]), LONG.to_string());
    server.cli(&["SET", "n:number", "42.5"]);

    // Only the long key matched: no GET, and far less than its size sent.
    let mut only_long = settings(&server);
    only_long.check_keys = vec!["big*".to_owned()];
    let only_long = build(only_long);
    scrape_ok(&only_long).await; // the connection is made; its setup is not what is measured
    for _ in 0..2 {
        let gets_before = server.info_item("commandstats", "cmdstat_get", "calls");
        let sent_before = server.info_number("stats", "total_net_output_bytes");
        let outcome = scrape_ok(&only_long).await;
        let sent = server.info_number("stats", "total_net_output_bytes") - sent_before;
        let gets = server.info_item("commandstats", "cmdstat_get", "calls") - gets_before;
        assert_eq!(
            key_sizes(&outcome.families),
            BTreeMap::from([("big".to_owned(), LONG as f64)])
        );
        assert!(
            find(&outcome.families, "redis_key_value").is_none(),
            "the long string's value was reported"
        );
        assert_eq!(gets, 0.0, "GET sent for the long string");
        assert!(
            sent < (LONG / 4) as f64,
            "the server sent {sent} bytes during a scrape of a {LONG}-byte key"
        );
    }

    // Both: the number's value, the long string's size only.
    let mut both = settings(&server);
    both.check_keys = vec!["n:*".to_owned(), "big*".to_owned()];
    let both = build(both);
    let outcome = scrape_ok(&both).await;
    assert_eq!(
        key_sizes(&outcome.families),
        BTreeMap::from([
            ("big".to_owned(), LONG as f64),
            ("n:number".to_owned(), 4.0)
        ])
    );
    assert_eq!(
        samples(&outcome.families, "redis_key_value"),
        BTreeMap::from([(label_set(&[("db", "db0"), ("key", "n:number")]), 42.5)])
    );
}

/// How long one full `SCAN 0 MATCH pattern COUNT 1000` pass takes on `server` (the best of three).
async fn full_scan_time(server: &Redis, pattern: &str) -> (Duration, usize) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let mut cursor = 0u64;
        found = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            found += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        best = best.min(start.elapsed());
    }
    (best, found)
}

/// A selective pattern on 100k keys with a time budget shorter than a full SCAN: the keys found
/// before the time runs out are sized (as SCAN batches come in), not dropped with the unfinished
/// SCAN.
#[tokio::test(flavor = "multi_thread")]
async fn a_selective_pattern_cut_off_by_time_still_sizes_the_keys_found_so_far() {
    const MATCHING: usize = 200;
    let server = populated(Server::Redis);
    // q:<i> holds i+1 bytes.
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..MATCHING {
        mset.push(format!("q:{i}"));
        mset.push("v".repeat(i + 1));
    }
    server.cli(&mset.iter().map(String::as_str).collect::<Vec<_>>());
    let (full, found) = full_scan_time(&server, "q:*").await;
    assert_eq!(found, MATCHING);
    // 50 ms, or less on a machine that SCANs 100k keys in under 150 ms: the budget must cut the SCAN.
    let max_time = Duration::from_millis(50).min(full / 3);
    eprintln!("a full SCAN takes {full:?}; max_time {max_time:?}");

    let mut settings = settings(&server);
    settings.check_keys = vec!["q:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1000,
        max_time,
    };
    let collector = build(settings);
    for what in ["first", "second"] {
        let start = Instant::now();
        let outcome = scrape_up(&collector).await;
        let elapsed = start.elapsed();
        assert!(
            elapsed < max_time + Duration::from_millis(1300),
            "{what} scrape: a {max_time:?} key budget took {elapsed:?}"
        );
        assert!(
            outcome.errors.is_empty(),
            "{what} scrape: {:?}",
            outcome.errors
        );
        assert_all_valid(&outcome.families);
        assert_eq!(
            scalar(&outcome.families, BUDGET_EXCEEDED),
            1.0,
            "{what} scrape: the SCAN finished within {max_time:?} (a full one takes {full:?})"
        );
        let sizes = key_sizes(&outcome.families);
        eprintln!("{what} scrape: {} of {MATCHING} keys sized", sizes.len());
        assert!(
            !sizes.is_empty(),
            "{what} scrape: the keys found before the time ran out were not sized"
        );
        assert!(sizes.len() <= MATCHING, "{what} scrape: {sizes:?}");
        for (key, size) in &sizes {
            let i: usize = key.strip_prefix("q:").unwrap().parse().unwrap();
            assert_eq!(*size, (i + 1) as f64, "{what} scrape: {key}");
        }
    }
}

/// A key-check time budget beyond reason is refused when the collector is built, not met with a panic
/// (an `Instant` overflow) at scrape time.
#[tokio::test(flavor = "multi_thread")]
async fn an_absurd_key_check_max_time_is_refused_up_front() {
    let server = Redis::start(Opts::default());
    server.cli(&["SET", "a:1", "x"]);
    for max_time in [
        Duration::from_secs(100 * 365 * 86400),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let mut settings = settings(&server);
        settings.check_keys = vec!["a:*".to_owned()];
        settings.key_check_budget = KeyBudget {
            max_keys: 1000,
            max_time,
        };
        match RedisCollector::new(settings) {
            Err(error) => assert_eq!(
                error.field, "key_check_budget.max_time",
                "{max_time:?}: {error:?}"
            ),
            Ok(_) => panic!("max_time {max_time:?} accepted"),
        }
    }
    // A long but sane budget is accepted and scrapes.
    let mut settings = settings(&server);
    settings.check_keys = vec!["a:*".to_owned()];
    settings.key_check_budget = KeyBudget {
        max_keys: 1000,
        max_time: Duration::from_secs(30 * 60),
    };
    let outcome = scrape_ok(&build(settings)).await;
    assert_eq!(
        key_sizes(&outcome.families),
        BTreeMap::from([("a:1".to_owned(), 1.0)])
    );
}

/// A custom metric may not take the name of a family the collector emits itself, nor the exporter's
/// own prefix.
#[test]
fn a_custom_metric_named_like_a_built_in_family_is_refused() {
    let url = "redis://127.0.0.1:6399";
    for metric in [
        "redis_db_keys",
        "redis_connected_clients",
        "fanout_exporter_key_check_budget_exceeded",
        "fanout_exporter_queue_length",
    ] {
        let mut settings = settings_for(url);
        settings.commands = vec![custom(metric, &["LLEN", "jobs"], Kind::Gauge)];
        match RedisCollector::new(settings) {
            Err(error) => assert_eq!(error.field, "commands[0].metric", "{metric}: {error:?}"),
            Ok(_) => panic!("custom metric {metric} accepted"),
        }
    }
    // A name of its own is fine.
    let mut settings = settings_for(url);
    settings.commands = vec![custom("redis_jobs_length", &["LLEN", "jobs"], Kind::Gauge)];
    RedisCollector::new(settings).unwrap();
}
