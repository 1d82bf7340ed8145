//! The families of the core scrape's other replies: `CONFIG GET`, `LATENCY LATEST`, `SLOWLOG` and
//! `CLUSTER INFO`. Like INFO's, they are built from what the server sent and never fail: a value
//! that does not read is left out.

use std::collections::HashSet;

use super::families::cluster_gauge;
use super::fields::{FIELDS, Type, counter_ok, value};
use super::parse::Info;
use crate::Families;

/// One `LATENCY LATEST` entry: event name, Unix time of the latest spike, latest and all-time
/// maximum latency in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyEvent {
    pub event: String,
    pub timestamp: i64,
    pub latest_ms: i64,
    pub max_ms: i64,
}

/// `redis_config_*` from `CONFIG GET` name/value pairs.
pub(crate) fn config_families(pairs: &[(String, String)], out: &mut Families) {
    let mut seen: HashSet<&str> = HashSet::new();
    for (name, raw) in pairs {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let metric = match name.as_str() {
            "maxmemory" => "redis_config_maxmemory",
            "maxclients" => "redis_config_maxclients",
            "io-threads" => "redis_config_io_threads",
            "repl-backlog-size" => "redis_config_repl_backlog_size",
            "client-output-buffer-limit" => {
                client_output_buffer_limits(raw, out);
                continue;
            }
            _ => continue,
        };
        if let Ok(v) = raw.trim().parse::<f64>() {
            out.gauge(metric, &format!("CONFIG GET {name}")).set(&[], v);
        }
    }
}

/// `normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60`: per class the hard
/// limit, the soft limit (bytes) and the soft limit's seconds. The class label is what the server
/// says (`slave` on Redis 7.0, as upstream exports it).
fn client_output_buffer_limits(raw: &str, out: &mut Families) {
    let words: Vec<&str> = raw.split_ascii_whitespace().collect();
    let mut seen: HashSet<&str> = HashSet::new();
    for group in words.chunks_exact(4) {
        let [class, hard, soft, seconds] = group else {
            continue;
        };
        if !seen.insert(class) {
            continue;
        }
        let bytes_help = "CONFIG GET client-output-buffer-limit: limit in bytes per client class";
        for (limit, raw) in [("hard", hard), ("soft", soft)] {
            if let Ok(v) = raw.parse::<f64>() {
                out.gauge("redis_config_client_output_buffer_limit_bytes", bytes_help)
                    .set(&[("class", class), ("limit", limit)], v);
            }
        }
        if let Ok(v) = seconds.parse::<f64>() {
            out.gauge(
                "redis_config_client_output_buffer_limit_overcome_seconds",
                "CONFIG GET client-output-buffer-limit: seconds over the soft limit before disconnect",
            )
            .set(&[("class", class), ("limit", "soft")], v);
        }
    }
}

/// `redis_latency_spike_last` and `redis_latency_spike_duration_seconds` from `LATENCY LATEST`.
pub(crate) fn latency_families(events: &[LatencyEvent], out: &mut Families) {
    let mut seen: HashSet<&str> = HashSet::new();
    for event in events {
        if !seen.insert(event.event.as_str()) {
            continue;
        }
        let labels = [("event_name", event.event.as_str())];
        let (timestamp, latest) = (event.timestamp as f64, event.latest_ms as f64);
        out.gauge(
            "redis_latency_spike_last",
            "LATENCY LATEST: Unix time of the latest latency spike per event",
        )
        .set(&labels, timestamp);
        out.gauge(
            "redis_latency_spike_duration_seconds",
            "LATENCY LATEST: duration of the latest latency spike per event",
        )
        .set(&labels, latest / 1000.0);
    }
}

/// `redis_slowlog_length`, and from the newest entry `redis_slowlog_last_id` and
/// `redis_last_slow_execution_duration_seconds` (`last` is `(id, duration in microseconds)`).
/// With an empty slow log the last two are 0, as redis_exporter reports them.
pub(crate) fn slowlog_families(length: i64, last: Option<(i64, i64)>, out: &mut Families) {
    let (id, micros) = last.unwrap_or((0, 0));
    let (length, id, micros) = (length as f64, id as f64, micros as f64);
    out.gauge(
        "redis_slowlog_length",
        "SLOWLOG LEN: entries in the slow log",
    )
    .set(&[], length);
    out.gauge(
        "redis_slowlog_last_id",
        "SLOWLOG GET 1: id of the newest slow log entry",
    )
    .set(&[], id);
    out.gauge(
        "redis_last_slow_execution_duration_seconds",
        "SLOWLOG GET 1: execution time of the newest slow log entry",
    )
    .set(&[], micros / 1e6);
}

/// The `redis_cluster_*` families from `CLUSTER INFO` text (same `key:value` lines as INFO).
pub(crate) fn cluster_families(text: &str, out: &mut Families) {
    let info = Info::parse(text);
    let mut seen: HashSet<&str> = HashSet::new();
    for (_, key, raw) in info.fields() {
        // Only `cluster_*` lines: the text comes from the server, and an INFO-like line such as
        // `uptime_in_seconds` must not turn into an INFO family here.
        if !key.starts_with("cluster_") || !seen.insert(key) {
            continue;
        }
        let help = format!("CLUSTER INFO {key}");
        if let Some(mapping) = FIELDS.get(key) {
            if let Some(v) = value(raw)
                .map(|v| v * mapping.scale)
                .filter(|v| mapping.kind == Type::Gauge || counter_ok(*v))
            {
                match mapping.kind {
                    Type::Gauge => out.gauge(&mapping.metric, &help).set(&[], v),
                    Type::Counter => out.counter(&mapping.metric, &help).set(&[], v),
                };
            }
        } else {
            cluster_gauge(&help, key, raw, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::*;
    use crate::redis::info::testing::*;

    #[test]
    fn config() {
        let pairs: Vec<(String, String)> = [
            ("maxmemory", "104857600"),
            ("maxclients", "10000"),
            ("io-threads", "4"),
            ("repl-backlog-size", "1048576"),
            ("databases", "16"),
            ("requirepass", "secret"),
            (
                "client-output-buffer-limit",
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            ),
            ("maxmemory", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let f = build(|out| config_families(&pairs, out));
        assert_eq!(
            names(&f),
            [
                "redis_config_client_output_buffer_limit_bytes",
                "redis_config_client_output_buffer_limit_overcome_seconds",
                "redis_config_io_threads",
                "redis_config_maxclients",
                "redis_config_maxmemory",
                "redis_config_repl_backlog_size",
            ]
        );
        assert_eq!(value_of(&f, "redis_config_maxmemory", &[]), 104_857_600.0);
        assert_eq!(value_of(&f, "redis_config_io_threads", &[]), 4.0);
        let bytes = "redis_config_client_output_buffer_limit_bytes";
        assert_eq!(family(&f, bytes).get_metric().len(), 6);
        assert_eq!(
            value_of(&f, bytes, &[("class", "slave"), ("limit", "hard")]),
            268_435_456.0
        );
        assert_eq!(
            value_of(&f, bytes, &[("class", "pubsub"), ("limit", "soft")]),
            8_388_608.0
        );
        assert_eq!(
            value_of(
                &f,
                "redis_config_client_output_buffer_limit_overcome_seconds",
                &[("class", "pubsub"), ("limit", "soft")]
            ),
            60.0
        );
        // A truncated value yields the complete groups only.
        let truncated = vec![(
            "client-output-buffer-limit".to_owned(),
            "normal 0 0 0 replica 1".to_owned(),
        )];
        let f = build(|out| config_families(&truncated, out));
        assert_eq!(family(&f, bytes).get_metric().len(), 2);
    }

    #[test]
    fn latency_slowlog_cluster() {
        let events = [
            LatencyEvent {
                event: "command".to_owned(),
                timestamp: 1_700_000_000,
                latest_ms: 250,
                max_ms: 1000,
            },
            LatencyEvent {
                event: "command".to_owned(),
                timestamp: 1,
                latest_ms: 1,
                max_ms: 1,
            },
        ];
        let f = build(|out| latency_families(&events, out));
        let labels = [("event_name", "command")];
        assert_eq!(
            value_of(&f, "redis_latency_spike_last", &labels),
            1_700_000_000.0
        );
        assert_eq!(
            value_of(&f, "redis_latency_spike_duration_seconds", &labels),
            0.25
        );
        assert_eq!(family(&f, "redis_latency_spike_last").get_metric().len(), 1);

        let f = build(|out| slowlog_families(3, Some((41, 15_000)), out));
        assert_eq!(value_of(&f, "redis_slowlog_length", &[]), 3.0);
        assert_eq!(value_of(&f, "redis_slowlog_last_id", &[]), 41.0);
        assert_eq!(
            value_of(&f, "redis_last_slow_execution_duration_seconds", &[]),
            0.015
        );
        let f = build(|out| slowlog_families(0, None, out));
        assert_eq!(value_of(&f, "redis_slowlog_last_id", &[]), 0.0);

        let text = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_fail:0\r\n\
            cluster_known_nodes:6\r\ncluster_stats_messages_ping_sent:100\r\n\
            cluster_stats_messages_sent:250\r\ncluster_stats_messages_received:240\r\n\
            total_cluster_links_buffer_limit_exceeded:0\r\nuptime_in_seconds:5\r\n";
        let f = build(|out| cluster_families(text, out));
        assert_eq!(value_of(&f, "redis_cluster_state", &[]), 1.0);
        assert_eq!(value_of(&f, "redis_cluster_slots_assigned", &[]), 16384.0);
        assert_eq!(
            kind(&f, "redis_cluster_messages_sent_total"),
            MetricType::COUNTER
        );
        assert_eq!(
            value_of(&f, "redis_cluster_messages_received_total", &[]),
            240.0
        );
        assert_eq!(
            kind(&f, "redis_cluster_stats_messages_ping_sent"),
            MetricType::GAUGE
        );
        assert!(f.iter().all(|x| x.name() != "redis_uptime_in_seconds"));
        assert!(
            f.iter()
                .all(|x| x.name() != "redis_total_cluster_links_buffer_limit_exceeded")
        );
        let f = build(|out| cluster_families("cluster_state:fail\n", out));
        assert_eq!(value_of(&f, "redis_cluster_state", &[]), 0.0);
    }
}
