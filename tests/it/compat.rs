//! Side by side with the real blackbox_exporter (Debian's `prometheus-blackbox-exporter`): the same
//! targets probed by both must give the same metric names, types, label names and (where they do not
//! measure time) the same values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;

use support::{Exporter, Peer, free_port, write};

/// Values that measure time, compared by presence only.
const TIMINGS: &[&str] = &[
    "probe_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_http_duration_seconds",
];

/// name -> (type, label names, value) for every sample, from one exposition.
type Samples = BTreeMap<String, (String, BTreeSet<String>, f64)>;

fn samples(text: &str) -> Samples {
    let mut types = BTreeMap::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let label_names: BTreeSet<String> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once('=').unwrap().0.to_owned())
            .collect();
        let phase = labels
            .split(',')
            .find_map(|l| l.strip_prefix("phase="))
            .map(|p| format!("{{phase={p}}}"))
            .unwrap_or_default();
        let kind = types.get(name).cloned().unwrap_or_default();
        out.insert(
            format!("{name}{phase}"),
            (kind, label_names, value.parse().unwrap()),
        );
    }
    out
}

fn compare(ours: &Samples, theirs: &Samples, case: &str) {
    for (key, (kind, labels, value)) in theirs {
        let name = key.split('{').next().unwrap();
        let Some((our_kind, our_labels, our_value)) = ours.get(key) else {
            panic!(
                "{case}: blackbox emits {key}, we do not.\nours: {ours:#?}\ntheirs: {theirs:#?}"
            );
        };
        assert_eq!(our_kind, kind, "{case}: TYPE of {key}");
        assert_eq!(our_labels, labels, "{case}: label names of {key}");
        if !TIMINGS.contains(&name) {
            assert_eq!(our_value, value, "{case}: value of {key}");
        } else if *value > 0.0 {
            // blackbox times the lookup of an IP literal too: never a flat 0 where it has time.
            assert!(
                *our_value > 0.0,
                "{case}: {key} is {our_value}, blackbox {value}"
            );
        }
    }
    for key in ours.keys() {
        let name = key.split('{').next().unwrap();
        let ours_only = name.starts_with("fanout_exporter_");
        assert!(
            ours_only || theirs.contains_key(key),
            "{case}: we emit {key}, blackbox does not"
        );
    }
}

#[test]
fn probe_metrics_match_blackbox_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let blackbox = Peer::blackbox(dir.path()).expect(
        "blackbox_exporter not found: install the Debian package `prometheus-blackbox-exporter` (apt-get install prometheus-blackbox-exporter), or run scripts/test, which does",
    );
    let port = free_port();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // IP literals (blackbox still "looks them up": a lookup time, a protocol and an address hash),
    // a name (`localhost`: IPv4 preferred by both), and an IPv6 literal nobody listens on.
    let urls = [
        ("ok", format!("http://127.0.0.1:{port}/-/healthy")),
        ("not_found", format!("http://127.0.0.1:{port}/nonexistent")),
        ("refused", format!("http://127.0.0.1:{closed}/")),
        ("by_name", format!("http://localhost:{port}/-/healthy")),
        ("ipv6", format!("http://[::1]:{closed}/")),
    ];
    let mut yaml = String::from("http:\n");
    for (name, url) in &urls {
        yaml.push_str(&format!("  {name}:\n    url: {url}\n"));
    }
    let config = write(dir.path(), "config.yaml", &yaml);
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    for (name, url) in &urls {
        let ours = exporter.get(&format!("/probe?target={name}"), &[]).text();
        let query = format!("/probe?module=http_2xx&target={url}");
        let theirs = support::get(blackbox.address, &query, &[]).text();
        let (ours, theirs) = (samples(&ours), samples(&theirs));
        assert!(
            theirs.len() >= 14 && theirs.contains_key("probe_success"),
            "{name}: {theirs:?}"
        );
        // Present in both (the comparison below needs the same value), and not the failure 0.
        let hash = theirs.get("probe_ip_addr_hash").map(|s| s.2);
        assert!(
            hash.is_some_and(|h| h > 0.0),
            "{name}: blackbox's address hash is {hash:?}"
        );
        compare(&ours, &theirs, name);
    }
}
