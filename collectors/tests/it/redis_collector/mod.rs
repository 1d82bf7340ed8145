//! The Redis collector against real redis-server processes started by the harness
//! (support/redis.rs): family sets, types and label sets on a primary and its replica, keyspace,
//! commandstats and errorstats after known traffic, password and ACL users, TLS, a renamed CONFIG,
//! restarts, deadlines, key checks under a budget and custom commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::http as support;
use fanout_testkit::redis as redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanout_collectors::family::{MetricType as Kind, validate};
use fanout_collectors::redis::{
    CustomCommand, KeyBudget, ParsedUrl, RedisCollector, RedisSettings, RedisTls,
};
use fanout_collectors::secret::SecretBytes;
use fanout_collectors::{CollectError, Collector, Outcome};
use prometheus::proto::{Metric, MetricFamily, MetricType};
use redis_server::{Opts, Pair, Redis, ServerTls, parse_pairs, resp};
use secrecy::SecretString;
use support::Pki;
use tokio::time::Instant;

/// The gauge that says a scrape's key checks stopped at their budget (1) or finished (0).
const BUDGET_EXCEEDED: &str = "fanout_exporter_key_check_budget_exceeded";

// ---------------------------------------------------------------------------------------------
// Settings and scraping

fn settings_for(url: &str) -> RedisSettings {
    RedisSettings::new(ParsedUrl::parse(url).unwrap())
}

fn settings(server: &Redis) -> RedisSettings {
    settings_for(&server.url())
}

fn build(settings: RedisSettings) -> RedisCollector {
    RedisCollector::new(settings).unwrap()
}

async fn scrape(collector: &RedisCollector, budget: Duration) -> Outcome {
    collector.collect(Instant::now() + budget).await
}

/// Scrape once with a 10 s deadline and insist on success without errors.
async fn scrape_ok(collector: &RedisCollector) -> Outcome {
    let outcome = scrape(collector, Duration::from_secs(10)).await;
    assert!(outcome.up, "down: {:?}", outcome.errors);
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    outcome
}

/// Scrape once with a 10 s deadline and insist the target is up (errors allowed).
async fn scrape_up(collector: &RedisCollector) -> Outcome {
    let outcome = scrape(collector, Duration::from_secs(10)).await;
    assert!(outcome.up, "down: {:?}", outcome.errors);
    outcome
}

// ---------------------------------------------------------------------------------------------
// Reading families

fn names(families: &[MetricFamily]) -> BTreeSet<String> {
    families.iter().map(|f| f.name().to_owned()).collect()
}

fn find<'a>(families: &'a [MetricFamily], name: &str) -> Option<&'a MetricFamily> {
    let mut found = families.iter().filter(|f| f.name() == name);
    let family = found.next()?;
    assert!(found.next().is_none(), "family {name} appears twice");
    Some(family)
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    find(families, name).unwrap_or_else(|| {
        panic!(
            "family {name} missing; present: {:?}",
            names(families).into_iter().collect::<Vec<_>>()
        )
    })
}

fn labels(metric: &Metric) -> BTreeMap<String, String> {
    metric
        .get_label()
        .iter()
        .map(|l| (l.name().to_owned(), l.value().to_owned()))
        .collect()
}

fn label_set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn value(family: &MetricFamily, metric: &Metric) -> f64 {
    match family.get_field_type() {
        MetricType::COUNTER => metric.get_counter().get_value(),
        MetricType::GAUGE => metric.get_gauge().get_value(),
        other => panic!("{}: unexpected type {other:?}", family.name()),
    }
}

/// Every sample of `name` as (labels, value); the family must be present.
fn samples(families: &[MetricFamily], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let family = family(families, name);
    family
        .get_metric()
        .iter()
        .map(|m| (labels(m), value(family, m)))
        .collect()
}

/// The value of the sample of `name` whose labels are exactly `wanted`, if there is one.
fn sample(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let wanted = label_set(wanted);
    let family = find(families, name)?;
    family
        .get_metric()
        .iter()
        .find(|m| labels(m) == wanted)
        .map(|m| value(family, m))
}

/// The value of the sample of `name` with exactly `wanted`; it must be present.
fn must(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> f64 {
    sample(families, name, wanted).unwrap_or_else(|| {
        let present = find(families, name).map(|f| {
            f.get_metric()
                .iter()
                .map(labels)
                .take(20)
                .collect::<Vec<_>>()
        });
        panic!("{name}{wanted:?} missing; samples of {name}: {present:?}")
    })
}

/// The single unlabelled sample of `name`.
fn scalar(families: &[MetricFamily], name: &str) -> f64 {
    must(families, name, &[])
}

fn kind_of(families: &[MetricFamily], name: &str) -> MetricType {
    family(families, name).get_field_type()
}

fn assert_same_names(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(actual).collect();
    let extra: Vec<_> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: family set differs\nmissing: {missing:?}\nunexpected: {extra:?}"
    );
}

/// Every family valid and typed (counter, gauge, histogram, or summary for the quantiles a server
/// computes itself), none empty, none twice.
fn assert_all_valid(families: &[MetricFamily]) {
    let mut seen = BTreeSet::new();
    for family in families {
        assert!(
            seen.insert(family.name().to_owned()),
            "{} appears twice",
            family.name()
        );
        validate(family).unwrap_or_else(|e| panic!("{}: invalid: {e}", family.name()));
        assert!(
            matches!(
                family.get_field_type(),
                MetricType::COUNTER
                    | MetricType::GAUGE
                    | MetricType::HISTOGRAM
                    | MetricType::SUMMARY
            ),
            "{}: type {:?}",
            family.name(),
            family.get_field_type()
        );
    }
}

fn error_chain(error: &CollectError) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// What redis_exporter would report, computed from the live server's INFO (redis-compat.md §2–5)

mod auth;
mod families;
mod keys;
mod lifecycle;

use auth::refusals;
use families::{db_values, instance_labels};
