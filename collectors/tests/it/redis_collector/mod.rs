//! The Redis collector against real redis-server processes started by the harness
//! (support/redis.rs): family sets, types and label sets on a primary and its replica, keyspace,
//! commandstats and errorstats after known traffic, password and ACL users, TLS, a renamed CONFIG,
//! restarts, deadlines, key checks under a budget and custom commands, `connected_clients` against
//! `CLIENT LIST`. The tests that depend on the server run on Valkey 8 too (`valkey`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::families::*;
use fanout_testkit::http as support;
use fanout_testkit::redis as redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanout_collectors::family::{MetricType as Kind, validate};
use fanout_collectors::redis::{
    CustomCommand, KeyBudget, ParsedUrl, RedisCollector, RedisSettings, RedisTls,
};
use fanout_collectors::secret::SecretBytes;
use fanout_collectors::{Collector, ErrorClass, Outcome};
use prometheus::proto::{MetricFamily, MetricType};
use redis_server::{Opts, Pair, Redis, Server, ServerTls, parse_pairs, resp};
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

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// What redis_exporter would report, computed from the live server's INFO (redis-compat.md §2–5)

mod auth;
mod clients;
mod families;
mod keys;
mod lifecycle;
mod valkey;

use auth::refusals;
use families::{db_values, instance_labels};
