//! INFO and the other replies of the core scrape, turned into redis_exporter's families.
//!
//! STUB: to be written.

use crate::Families;

/// An INFO reply: every `key:value` line with the section it appeared in, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Info {
    /// `(section, key, value)`, sections lowercased (`server`, `keyspace`, ...).
    pub fields: Vec<(String, String, String)>,
}

impl Info {
    /// Parse INFO text (`# Section` headers, `key:value` lines, CRLF or LF). Never panics; lines it
    /// cannot read are skipped.
    pub fn parse(_text: &str) -> Self {
        Self::default()
    }

    /// The value of `key` (first occurrence), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.as_str())
    }
}

/// One `LATENCY LATEST` entry: event name, Unix time of the latest spike, latest and all-time
/// maximum latency in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyEvent {
    pub event: String,
    pub timestamp: i64,
    pub latest_ms: i64,
    pub max_ms: i64,
}

/// The families made from INFO: every mapped field, keyspace, commandstats, latencystats,
/// errorstats, replication, `redis_instance_info`, `redis_start_time_seconds`. `now` is the Unix time
/// of the scrape. `databases` (from `CONFIG GET databases`, when known) zero-fills `redis_db_keys` and
/// `redis_db_keys_expiring` for empty databases, as redis_exporter does.
pub(crate) fn families(_info: &Info, _now: f64, _databases: Option<u32>, _out: &mut Families) {}

/// `redis_config_*` from `CONFIG GET` name/value pairs.
pub(crate) fn config_families(_pairs: &[(String, String)], _out: &mut Families) {}

/// `redis_latency_spike_last` and `redis_latency_spike_duration_seconds` from `LATENCY LATEST`.
pub(crate) fn latency_families(_events: &[LatencyEvent], _out: &mut Families) {}

/// `redis_slowlog_length`, and from the newest entry `redis_slowlog_last_id` and
/// `redis_last_slow_execution_duration_seconds` (`last` is `(id, duration in microseconds)`).
pub(crate) fn slowlog_families(_length: i64, _last: Option<(i64, i64)>, _out: &mut Families) {}

/// The `redis_cluster_*` families from `CLUSTER INFO` text (same `key:value` lines as INFO).
pub(crate) fn cluster_families(_text: &str, _out: &mut Families) {}
