//! From collected families to the text exposition format 0.0.4.
//!
//! rust-prometheus' encoder trusts its input (it panics on UNTYPED, writes two TYPE lines for two
//! same-name families, prints `inf` for `+Inf`), so this module does the checks itself and writes the
//! format directly: validate every family, add each target's labels, merge same-name families from
//! several targets into one group, drop type conflicts and duplicate series (logged, never a 500),
//! then encode into a fresh string.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

/// Content-Type of the 0.0.4 text format, with the charset client_golang sends.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The families of one target (or of the exporter itself), with the labels to add to each sample.
#[derive(Debug)]
pub struct Batch {
    /// Where the families came from, for log messages.
    pub source: String,
    /// Labels added to every sample (`target`, global and target labels).
    pub labels: Vec<(String, String)>,
    /// The families.
    pub families: Vec<MetricFamily>,
}

/// Validate, label and merge batches into one family per name, sorted by name.
pub fn merge(batches: Vec<Batch>) -> Vec<MetricFamily> {
    // Each family with the label sets of its series so far, to drop duplicates exactly.
    let mut merged: BTreeMap<String, (MetricFamily, HashSet<String>)> = BTreeMap::new();
    for batch in batches {
        for mut family in batch.families {
            // Validated after labelling, so a configured label cannot make a family invalid.
            for metric in family.mut_metric() {
                add_labels(metric, &batch.labels);
            }
            if let Err(error) = fanout_collectors::family::validate(&family) {
                tracing::error!(source = %batch.source, %error, "dropping invalid family");
                continue;
            }
            let name = family.name().to_owned();
            let metrics = family.take_metric();
            let (group, seen) = match merged.get_mut(&name) {
                Some((existing, _)) if existing.get_field_type() != family.get_field_type() => {
                    tracing::warn!(
                        source = %batch.source,
                        family = %name,
                        "dropping family whose type conflicts with the same name from another target"
                    );
                    continue;
                }
                Some((existing, seen)) => (existing, seen),
                None => {
                    let entry = merged
                        .entry(name.clone())
                        .or_insert((family, HashSet::new()));
                    (&mut entry.0, &mut entry.1)
                }
            };
            for metric in metrics {
                if seen.insert(series_key(&metric)) {
                    group.mut_metric().push(metric);
                } else {
                    tracing::warn!(source = %batch.source, family = %name, "dropping duplicate series");
                }
            }
        }
    }
    merged
        .into_values()
        .map(|(family, _)| family)
        .filter(|f| !f.get_metric().is_empty())
        .collect()
}

fn add_labels(metric: &mut Metric, extra: &[(String, String)]) {
    if extra.is_empty() {
        return;
    }
    let mut labels = metric.take_label();
    for (name, value) in extra {
        // A label the collector set itself wins over a configured one of the same name.
        if labels.iter().any(|l| l.name() == name) {
            continue;
        }
        let mut pair = LabelPair::default();
        pair.set_name(name.clone());
        pair.set_value(value.clone());
        labels.push(pair);
    }
    metric.set_label(labels);
}

/// A series' identity within its family: its labels sorted by name, in one string. NUL cannot occur in
/// a label name, and a value's length is written before it, so two different label sets never give
/// the same key.
fn series_key(metric: &Metric) -> String {
    let mut labels: Vec<&LabelPair> = metric.get_label().iter().collect();
    labels.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    let mut key = String::new();
    for l in labels {
        let _ = write!(key, "{}\0{}:{}\0", l.name(), l.value().len(), l.value());
    }
    key
}

/// Encode validated, merged families (the output of [`merge`]) in the 0.0.4 text format.
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(families.len() * 128);
    for family in families {
        let name = family.name();
        let kind = match family.get_field_type() {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            MetricType::SUMMARY => "summary",
            MetricType::UNTYPED => "untyped",
        };
        if !family.help().is_empty() {
            let _ = writeln!(out, "# HELP {name} {}", escape(family.help(), false));
        }
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for metric in family.get_metric() {
            let labels = metric.get_label();
            match family.get_field_type() {
                MetricType::COUNTER => sample(
                    &mut out,
                    name,
                    labels,
                    None,
                    metric.get_counter().get_value(),
                ),
                MetricType::GAUGE => {
                    sample(&mut out, name, labels, None, metric.get_gauge().get_value())
                }
                MetricType::HISTOGRAM => {
                    let h = metric.get_histogram();
                    let bucket = format!("{name}_bucket");
                    for b in h.get_bucket() {
                        let le = format_value(b.upper_bound());
                        sample(
                            &mut out,
                            &bucket,
                            labels,
                            Some(("le", &le)),
                            b.cumulative_count() as f64,
                        );
                    }
                    sample(
                        &mut out,
                        &format!("{name}_sum"),
                        labels,
                        None,
                        h.get_sample_sum(),
                    );
                    sample(
                        &mut out,
                        &format!("{name}_count"),
                        labels,
                        None,
                        h.get_sample_count() as f64,
                    );
                }
                MetricType::SUMMARY => {
                    let s = metric.get_summary();
                    for q in s.get_quantile() {
                        let quantile = format_value(q.quantile());
                        sample(
                            &mut out,
                            name,
                            labels,
                            Some(("quantile", &quantile)),
                            q.value(),
                        );
                    }
                    sample(
                        &mut out,
                        &format!("{name}_sum"),
                        labels,
                        None,
                        s.sample_sum(),
                    );
                    sample(
                        &mut out,
                        &format!("{name}_count"),
                        labels,
                        None,
                        s.sample_count() as f64,
                    );
                }
                // `merge` only lets validated types through; this never reaches the encoder.
                MetricType::UNTYPED => {}
            }
        }
    }
    out
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[LabelPair],
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.push_str(name);
    let extra = extra.into_iter();
    let pairs = labels.iter().map(|l| (l.name(), l.value())).chain(extra);
    let mut first = true;
    for (n, v) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{n}=\"{}\"", escape(v, true));
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_value(value));
    out.push('\n');
}

/// Go's spelling of special values; Rust's Display writes `inf`, which strict parsers refuse.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if v == 0.0 {
        "0".to_owned()
    } else {
        v.to_string()
    }
}

fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use fanout_collectors::Families;

    use super::*;

    fn batch(source: &str, labels: &[(&str, &str)], families: Families) -> Batch {
        Batch {
            source: source.into(),
            labels: labels
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect(),
            families: families.finish(),
        }
    }

    #[test]
    fn same_name_families_from_targets_merge_into_one_group() {
        let mut a = Families::new();
        a.gauge("probe_success", "Up.").set(&[], 1.0);
        let mut b = Families::new();
        b.gauge("probe_success", "Up.").set(&[], 0.0);
        let text = encode(&merge(vec![
            batch("a", &[("target", "a")], a),
            batch("b", &[("target", "b")], b),
        ]));
        assert_eq!(
            text,
            "# HELP probe_success Up.\n# TYPE probe_success gauge\n\
             probe_success{target=\"a\"} 1\nprobe_success{target=\"b\"} 0\n"
        );
    }

    #[test]
    fn a_type_conflict_drops_only_the_later_family() {
        let mut a = Families::new();
        a.gauge("x", "X.").set(&[], 1.0);
        a.gauge("y", "Y.").set(&[], 2.0);
        let mut b = Families::new();
        b.counter("x", "X.").set(&[], 5.0);
        b.gauge("y", "Y.").set(&[], 3.0);
        let text = encode(&merge(vec![
            batch("a", &[("target", "a")], a),
            batch("b", &[("target", "b")], b),
        ]));
        assert_eq!(
            text,
            "# HELP x X.\n# TYPE x gauge\nx{target=\"a\"} 1\n\
             # HELP y Y.\n# TYPE y gauge\ny{target=\"a\"} 2\ny{target=\"b\"} 3\n"
        );
    }

    #[test]
    fn summaries_are_written_with_their_quantiles_sum_and_count() {
        let mut a = Families::new();
        a.summary("redis_latency_percentiles_usec", "Latency.")
            .quantiles(&[("cmd", "get")], &[(50.0, 8.0), (99.9, 16.5)], 40.0, 5);
        let text = encode(&merge(vec![batch("a", &[("target", "t")], a)]));
        assert_eq!(
            text,
            "# HELP redis_latency_percentiles_usec Latency.\n\
             # TYPE redis_latency_percentiles_usec summary\n\
             redis_latency_percentiles_usec{cmd=\"get\",target=\"t\",quantile=\"50\"} 8\n\
             redis_latency_percentiles_usec{cmd=\"get\",target=\"t\",quantile=\"99.9\"} 16.5\n\
             redis_latency_percentiles_usec_sum{cmd=\"get\",target=\"t\"} 40\n\
             redis_latency_percentiles_usec_count{cmd=\"get\",target=\"t\"} 5\n"
        );
        // A `quantile` label from outside would be ambiguous with the summary's own.
        let mut b = Families::new();
        b.summary("s", "S.").quantiles(&[], &[(0.5, 1.0)], 1.0, 1);
        b.gauge("g", "G.").set(&[], 1.0);
        let merged = merge(vec![batch("b", &[("quantile", "x")], b)]);
        assert!(merged.is_empty(), "{merged:?}");
    }

    #[test]
    fn families_are_validated_with_the_added_labels() {
        let mut a = Families::new();
        a.histogram("h_seconds", "H.")
            .observe(&[], &[(1.0, 1)], 0.5, 1);
        a.gauge("g", "G.").set(&[], 1.0);
        let merged = merge(vec![batch("a", &[("le", "oops")], a)]);
        let names: Vec<_> = merged.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            ["g"],
            "a histogram may not get an `le` label from outside"
        );
    }

    #[test]
    fn duplicate_series_are_dropped() {
        let mut a = Families::new();
        a.gauge("x", "X.").set(&[("k", "v")], 1.0);
        let mut b = Families::new();
        b.gauge("x", "X.").set(&[("k", "v")], 2.0);
        let text = encode(&merge(vec![batch("a", &[], a), batch("b", &[], b)]));
        assert_eq!(text, "# HELP x X.\n# TYPE x gauge\nx{k=\"v\"} 1\n");
    }

    #[test]
    fn collector_labels_win_over_configured_ones() {
        let mut a = Families::new();
        a.gauge("x", "X.").set(&[("phase", "connect")], 1.0);
        let text = encode(&merge(vec![batch(
            "a",
            &[("phase", "other"), ("env", "prod")],
            a,
        )]));
        assert!(
            text.contains("x{phase=\"connect\",env=\"prod\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn values_and_escapes_use_the_exposition_spelling() {
        let mut a = Families::new();
        a.gauge("g", "Back\\slash\nnewline.")
            .set(&[("v", "a\"b\\c\nd")], f64::NAN)
            .set(&[("v", "inf")], f64::INFINITY)
            .set(&[("v", "ninf")], f64::NEG_INFINITY)
            .set(&[("v", "frac")], 0.25)
            .set(&[("v", "negzero")], -0.0);
        a.histogram("h_seconds", "H.")
            .observe(&[], &[(0.5, 1)], 0.25, 2);
        let text = encode(&merge(vec![batch("a", &[], a)]));
        let expected = "# HELP g Back\\\\slash\\nnewline.\n# TYPE g gauge\n\
            g{v=\"a\\\"b\\\\c\\nd\"} NaN\ng{v=\"inf\"} +Inf\ng{v=\"ninf\"} -Inf\n\
            g{v=\"frac\"} 0.25\ng{v=\"negzero\"} 0\n\
            # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
            h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n\
            h_seconds_sum 0.25\nh_seconds_count 2\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn untyped_and_invalid_families_never_reach_the_encoder() {
        let mut untyped = MetricFamily::default();
        untyped.set_name("u".into());
        untyped.set_field_type(MetricType::UNTYPED);
        untyped.set_metric(vec![Metric::default()]);
        let mut bad = MetricFamily::default();
        bad.set_name("bad name".into());
        bad.set_field_type(MetricType::GAUGE);
        bad.set_metric(vec![Metric::default()]);
        let merged = merge(vec![Batch {
            source: "t".into(),
            labels: vec![],
            families: vec![untyped, bad],
        }]);
        assert!(merged.is_empty());
        assert_eq!(encode(&merged), "");
    }
}
