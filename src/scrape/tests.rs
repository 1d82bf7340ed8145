use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::SystemTime;

use fanout_collectors::http::KIND as HTTP;
use fanout_collectors::{CollectError, Collector, Kind, Outcome};

use super::*;
use crate::exposition::{encode, merge};

static TEST_KIND: Kind = Kind {
    name: "test",
    up_metric: "test_up",
    up_help: "Whether the test target answered.",
};

/// A collector that behaves as told. Engine tests need collectors that hang, panic or overlap on
/// purpose; real targets for each kind are exercised in the kinds' own tests.
#[derive(Debug)]
enum Behaviour {
    Answer {
        value: f64,
        up: bool,
    },
    Conflicting,
    Hang,
    /// Honours the deadline itself and reports what it learned by then.
    Partial,
    UpWithError,
    Panic,
    Track {
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    },
}

#[derive(Debug)]
struct Fake(Behaviour, &'static Kind);

impl Collector for Fake {
    fn kind(&self) -> &'static Kind {
        self.1
    }

    fn endpoint(&self) -> String {
        format!("fake {:?}", self.0)
    }

    fn collect(&self, deadline: Instant) -> futures_util::future::BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let mut f = Families::new();
            let result = match &self.0 {
                Behaviour::Answer { value, up } => {
                    f.gauge("shared_gauge", "Shared.").set(&[], *value);
                    if *up {
                        Ok(())
                    } else {
                        Err(CollectError::check("told to fail"))
                    }
                }
                Behaviour::Conflicting => {
                    f.counter("shared_gauge", "Shared.").set(&[], 1.0);
                    Ok(())
                }
                Behaviour::Hang => {
                    std::future::pending::<()>().await;
                    Ok(())
                }
                Behaviour::Partial => {
                    f.gauge("learned_before_deadline", "Partial.").set(&[], 1.0);
                    tokio::time::sleep_until(deadline).await;
                    Err(CollectError::new(
                        fanout_collectors::ErrorClass::Timeout,
                        "told to time out",
                    ))
                }
                Behaviour::UpWithError => {
                    f.gauge("shared_gauge", "Shared.").set(&[], 4.0);
                    Ok(())
                }
                Behaviour::Panic => panic!("boom"),
                Behaviour::Track { running, peak } => {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                }
            };
            let mut outcome = Outcome::from_result(f.finish(), result);
            if let Behaviour::UpWithError = &self.0 {
                outcome
                    .errors
                    .push(CollectError::check("a sub-collector failed"));
            }
            outcome
        })
    }
}

/// `n` targets that record how many of them run at once; returns them and the peak.
fn tracked(n: usize) -> (Vec<Target>, Arc<AtomicUsize>) {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let targets = (0..n)
        .map(|i| {
            let behaviour = Behaviour::Track {
                running: running.clone(),
                peak: peak.clone(),
            };
            target(&format!("t{i}"), behaviour)
        })
        .collect();
    (targets, peak)
}

fn answer(value: f64, up: bool) -> Behaviour {
    Behaviour::Answer { value, up }
}

fn global(max_concurrency: usize) -> Global {
    Global {
        scrape_timeout: Duration::from_secs(10),
        timeout_offset: Duration::from_millis(500),
        max_concurrency,
        labels: BTreeMap::new(),
    }
}

fn target(name: &str, behaviour: Behaviour) -> Target {
    target_of(name, behaviour, &TEST_KIND)
}

fn target_of(name: &str, behaviour: Behaviour, kind: &'static Kind) -> Target {
    Target::new(
        name.into(),
        vec![("env".into(), "test".into())],
        Arc::new(Fake(behaviour, kind)),
    )
}

async fn scrape_text(engine: &Engine, selection: Selection<'_>, budget: Duration) -> String {
    let batches = engine
        .scrape(selection, budget)
        .await
        .expect("target exists");
    encode(&merge(batches))
}

#[test]
fn budget_follows_the_header_rule() {
    let s = Duration::from_secs_f64;
    // (configured, header, offset, expected): exporter-conventions §2, adapted from blackbox's
    // TestTimeoutIsSetCorrectly.
    let cases = [
        (10.0, Some("15"), 0.5, 10.0),
        (20.0, Some("15"), 0.5, 14.5),
        (5.0, Some("15"), 0.0, 5.0),
        (10.0, None, 0.5, 10.0),
        (10.0, Some("0.3"), 0.5, 0.3),
        (10.0, Some("abc"), 0.5, 10.0),
        (10.0, Some("-4"), 0.5, 10.0),
        (10.0, Some("NaN"), 0.5, 10.0),
        (10.0, Some("0.05"), 0.0, 0.1),
    ];
    for (configured, header, offset, expected) in cases {
        assert_eq!(
            budget(s(configured), s(offset), header),
            s(expected),
            "configured {configured} header {header:?} offset {offset}"
        );
    }
}

#[tokio::test]
async fn families_from_several_targets_merge_with_their_labels() {
    let engine = Engine::new(
        &global(4),
        vec![
            target("a", answer(1.0, true)),
            target("b", answer(2.0, false)),
        ],
    );
    let text = scrape_text(&engine, Selection::All, Duration::from_secs(5)).await;
    assert!(
        text.contains("shared_gauge{target=\"a\",env=\"test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("shared_gauge{target=\"b\",env=\"test\"} 2\n"),
        "{text}"
    );
    assert_eq!(
        text.matches("# TYPE shared_gauge gauge").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("test_up{target=\"a\",env=\"test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("test_up{target=\"b\",env=\"test\"} 0\n"),
        "{text}"
    );
    assert!(text.contains(
        "fanout_exporter_scrape_success{collector=\"test\",target=\"a\",env=\"test\"} 1\n"
    ));
    assert!(text.contains(
        "fanout_exporter_scrape_success{collector=\"test\",target=\"b\",env=\"test\"} 0\n"
    ));
    assert_eq!(
        text.matches("fanout_exporter_scrape_duration_seconds{")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_type_conflict_costs_only_the_conflicting_family() {
    let engine = Engine::new(
        &global(4),
        vec![
            target("a", answer(1.0, true)),
            target("b", Behaviour::Conflicting),
        ],
    );
    let text = scrape_text(&engine, Selection::All, Duration::from_secs(5)).await;
    assert!(
        text.contains(
            "# TYPE shared_gauge gauge\nshared_gauge{target=\"a\",env=\"test\"} 1\n# HELP"
        )
    );
    assert!(
        !text.contains("shared_gauge{target=\"b\""),
        "the conflicting family is dropped: {text}"
    );
    assert!(
        text.contains("test_up{target=\"b\",env=\"test\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_hung_target_costs_only_itself_and_the_scrape_ends_at_the_deadline() {
    let engine = Engine::new(
        &global(4),
        vec![
            target("hung", Behaviour::Hang),
            target("fine", answer(7.0, true)),
        ],
    );
    let started = Instant::now();
    let text = scrape_text(&engine, Selection::All, Duration::from_millis(300)).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(
        text.contains("test_up{target=\"hung\",env=\"test\"} 0\n"),
        "{text}"
    );
    assert!(text.contains(
        "fanout_exporter_scrape_success{collector=\"test\",target=\"hung\",env=\"test\"} 0\n"
    ));
    assert!(
        text.contains("shared_gauge{target=\"fine\",env=\"test\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("test_up{target=\"fine\",env=\"test\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_panicking_collector_costs_only_itself() {
    let engine = Engine::new(
        &global(4),
        vec![
            target("boom", Behaviour::Panic),
            target("fine", answer(3.0, true)),
        ],
    );
    let text = scrape_text(&engine, Selection::All, Duration::from_secs(5)).await;
    assert!(
        text.contains("test_up{target=\"boom\",env=\"test\"} 0\n"),
        "{text}"
    );
    assert!(text.contains(
        "fanout_exporter_scrape_success{collector=\"test\",target=\"boom\",env=\"test\"} 0\n"
    ));
    assert!(text.contains(
        "fanout_exporter_scrape_duration_seconds{collector=\"test\",target=\"boom\",env=\"test\"} "
    ));
    assert!(
        text.contains("test_up{target=\"fine\",env=\"test\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn max_concurrency_bounds_the_targets_in_flight() {
    let (targets, peak) = tracked(10);
    let engine = Engine::new(&global(3), targets);
    let text = scrape_text(&engine, Selection::All, Duration::from_secs(5)).await;
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(text.matches("test_up{").count(), 10);
    let up = text
        .lines()
        .filter(|l| l.starts_with("test_up{") && l.ends_with(" 1"));
    assert_eq!(up.count(), 10, "{text}");
}

#[tokio::test]
async fn a_probe_covers_one_target_without_a_target_label() {
    let engine = Engine::new(
        &global(4),
        vec![
            target_of("web", answer(1.0, true), &HTTP),
            target("other", answer(2.0, true)),
        ],
    );
    let text = scrape_text(&engine, Selection::Probe("web"), Duration::from_secs(5)).await;
    assert!(!text.contains("target="), "{text}");
    assert!(!text.contains("test_up"), "only the probed target: {text}");
    assert!(text.contains("\nprobe_success{env=\"test\"} 1\n"), "{text}");
    assert!(text.contains("\nshared_gauge{env=\"test\"} 1\n"), "{text}");
    assert!(text.contains("\nfanout_exporter_scrape_success{collector=\"http\",env=\"test\"} 1\n"));
    assert!(
        engine
            .scrape(Selection::Probe("missing"), Duration::from_secs(1))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn max_concurrency_holds_across_concurrent_scrapes() {
    let (targets, peak) = tracked(4);
    let engine = Engine::new(&global(2), targets);
    let budget = Duration::from_secs(5);
    let (a, b, c) = tokio::join!(
        engine.scrape(Selection::All, budget),
        engine.scrape(Selection::All, budget),
        engine.scrape(Selection::Probe("t0"), budget),
    );
    assert_eq!(
        (a.map(|v| v.len()), b.map(|v| v.len()), c.map(|v| v.len())),
        (Some(4), Some(4), Some(1))
    );
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_collector_that_honours_the_deadline_keeps_its_partial_results() {
    let engine = Engine::new(&global(4), vec![target("slow", Behaviour::Partial)]);
    let text = scrape_text(&engine, Selection::All, Duration::from_millis(200)).await;
    assert!(
        text.contains("learned_before_deadline{target=\"slow\",env=\"test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("test_up{target=\"slow\",env=\"test\"} 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn up_with_an_error_is_up_but_not_a_successful_scrape() {
    let engine = Engine::new(&global(4), vec![target("db", Behaviour::UpWithError)]);
    let text = scrape_text(&engine, Selection::All, Duration::from_secs(5)).await;
    assert!(
        text.contains("test_up{target=\"db\",env=\"test\"} 1\n"),
        "{text}"
    );
    assert!(text.contains(
        "fanout_exporter_scrape_success{collector=\"test\",target=\"db\",env=\"test\"} 0\n"
    ));
    assert!(
        text.contains("shared_gauge{target=\"db\",env=\"test\"} 4\n"),
        "{text}"
    );
}

#[tokio::test]
async fn the_last_scrape_of_each_target_is_kept_for_the_status_page() {
    let engine = Engine::new(
        &global(4),
        vec![
            target(
                "good",
                Behaviour::Answer {
                    value: 1.0,
                    up: true,
                },
            ),
            target(
                "bad",
                Behaviour::Answer {
                    value: 1.0,
                    up: false,
                },
            ),
            target(
                "unprobed",
                Behaviour::Answer {
                    value: 1.0,
                    up: true,
                },
            ),
        ],
    );
    assert!(engine.targets().iter().all(|t| t.last_scrape().is_none()));
    let before = SystemTime::now();
    engine
        .scrape(Selection::Probe("good"), Duration::from_secs(1))
        .await;
    engine
        .scrape(Selection::Probe("bad"), Duration::from_secs(1))
        .await;
    let last = |name: &str| {
        engine
            .targets()
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .last_scrape()
    };
    let good = last("good").expect("good was scraped");
    assert!(
        good.up && good.succeeded && good.error.is_none(),
        "{good:?}"
    );
    assert!(good.finished >= before);
    let bad = last("bad").expect("bad was scraped");
    assert!(!bad.up && !bad.succeeded, "{bad:?}");
    assert!(
        bad.error.as_deref().unwrap().contains("told to fail"),
        "{bad:?}"
    );
    assert!(last("unprobed").is_none());

    // A hung target is recorded too, as timed out.
    let engine = Engine::new(&global(4), vec![target("hung", Behaviour::Hang)]);
    engine.scrape(Selection::All, MIN_BUDGET).await;
    let hung = engine.targets()[0].last_scrape().expect("recorded");
    assert!(!hung.up && hung.error.is_some(), "{hung:?}");
}
