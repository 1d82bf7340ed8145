//! INFO and the other replies of the core scrape, turned into redis_exporter's families.
//!
//! Reading the reply and naming the metrics are kept apart: `parse` turns INFO text into [`Info`]
//! and knows no metric name; `fields` holds redis_exporter's name tables; `families` maps a parsed
//! INFO reply onto them; `commands` does the same for `CONFIG GET`, `LATENCY LATEST`, `SLOWLOG` and
//! `CLUSTER INFO`. Callers use what this module re-exports.

mod commands;
mod families;
mod fields;
mod parse;
#[cfg(test)]
mod testing;

pub(crate) use commands::{
    LatencyEvent, cluster_families, config_families, latency_families, slowlog_families,
};
pub(crate) use families::families;
pub(crate) use fields::is_builtin;
pub(crate) use parse::Info;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::redis::info::testing::*;

    /// xorshift64: deterministic, dependency-free randomness for the robustness test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn random_inputs_never_panic_and_always_validate() {
        let fixtures = [PRIMARY, REPLICA, REDIS6, KEYDB, VALKEY];
        let keys = [
            "db0",
            "db7",
            "dbx",
            "cmdstat_get",
            "cmdstat_",
            "errorstat_ERR",
            "slave0",
            "slave",
            "master_host",
            "master_2_port",
            "master_link_status",
            "master_3_last_io_seconds_ago",
            "slave_repl_offset",
            "role",
            "rdb_saves",
            "used_memory",
            "cluster_enabled",
            "cluster_x-y",
            "used_active_time_io_thread_9",
            "latency_percentiles_usec_get",
            "uptime_in_seconds",
            "keyspace_hits",
            "",
        ];
        let values = [
            "1",
            "-1",
            "NaN",
            "inf",
            "-inf",
            "1e308",
            "1e309",
            "184467440737095516150000",
            "ok",
            "err",
            "keys=1,expires=2,avg_ttl=3",
            "keys=-1,expires=nan",
            "calls=-5,usec=inf,rejected_calls=NaN,failed_calls=1",
            "calls=1,usec=2",
            "count=-1",
            "count=1e400",
            "ip=,port=,state=,offset=NaN,lag=-inf",
            "=,=,,=",
            "p50=1,p99=x",
            "\u{fffd}\u{0}",
        ];
        let separators = [":", "::", "=", " : ", ":\r", ""];
        let headers = [
            "# Keyspace",
            "# Commandstats",
            "# Errorstats",
            "# Replication",
            "# Cluster Info",
            "#",
            "# ",
            "",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let base = fixtures[round % fixtures.len()].as_bytes();
            let mut bytes = base[..rng.below(base.len() + 1)].to_vec();
            for _ in 0..rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = u8::try_from(rng.next() & 0xff).unwrap_or(0);
                }
            }
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            for _ in 0..rng.below(12) {
                text.push_str(if rng.next().is_multiple_of(2) {
                    "\r\n"
                } else {
                    "\n"
                });
                text.push_str(rng.pick(&headers));
                text.push('\n');
                text.push_str(rng.pick(&keys));
                text.push_str(rng.pick(&separators));
                text.push_str(rng.pick(&values));
            }
            let databases = (round % 3 == 0).then(|| u32::try_from(rng.below(40)).unwrap_or(0));
            let info = build(|out| families(&Info::parse(&text), NOW, databases, out));
            // Separately: CLUSTER INFO and INFO share no `cluster_*` field on real servers, but
            // random text can put the same one in both.
            let cluster = build(|out| cluster_families(&text, out));
            let config = build(|out| {
                let words: Vec<&str> = text.split_whitespace().take(13).collect();
                config_families(
                    &[
                        ("client-output-buffer-limit".to_owned(), words.join(" ")),
                        ("maxmemory".to_owned(), rng.pick(&values).to_owned()),
                    ],
                    out,
                );
            });
            // Every family is typed and valid (checked in `build`); no family may carry the
            // same label set twice.
            for family in info.iter().chain(&cluster).chain(&config) {
                let mut sets = HashSet::new();
                for metric in family.get_metric() {
                    let mut labels: Vec<(String, String)> = metric
                        .get_label()
                        .iter()
                        .map(|p| (p.name().to_owned(), p.value().to_owned()))
                        .collect();
                    labels.sort_unstable();
                    assert!(sets.insert(labels), "duplicate series in {}", family.name());
                }
            }
        }
    }
}
