//! Reading the families a collector returned, for tests that assert on names, types, labels and
//! values: lookups that fail with what was there instead of a bare `None`.

use std::collections::{BTreeMap, BTreeSet};

use fanout_collectors::CollectError;
use prometheus::proto::{Metric, MetricFamily, MetricType};

pub fn names(families: &[MetricFamily]) -> BTreeSet<String> {
    families.iter().map(|f| f.name().to_owned()).collect()
}

pub fn find<'a>(families: &'a [MetricFamily], name: &str) -> Option<&'a MetricFamily> {
    let mut found = families.iter().filter(|f| f.name() == name);
    let family = found.next()?;
    assert!(found.next().is_none(), "family {name} appears twice");
    Some(family)
}

pub fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    find(families, name).unwrap_or_else(|| {
        panic!(
            "family {name} missing; present: {:?}",
            names(families).into_iter().collect::<Vec<_>>()
        )
    })
}

pub fn labels(metric: &Metric) -> BTreeMap<String, String> {
    metric
        .get_label()
        .iter()
        .map(|l| (l.name().to_owned(), l.value().to_owned()))
        .collect()
}

pub fn label_set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn value(family: &MetricFamily, metric: &Metric) -> f64 {
    match family.get_field_type() {
        MetricType::COUNTER => metric.get_counter().get_value(),
        MetricType::GAUGE => metric.get_gauge().get_value(),
        other => panic!("{}: unexpected type {other:?}", family.name()),
    }
}

/// Every sample of `name` as (labels, value); the family must be present.
pub fn samples(families: &[MetricFamily], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let family = family(families, name);
    family
        .get_metric()
        .iter()
        .map(|m| (labels(m), value(family, m)))
        .collect()
}

/// The value of the sample of `name` whose labels are exactly `wanted`, if there is one.
pub fn sample(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let wanted = label_set(wanted);
    let family = find(families, name)?;
    family
        .get_metric()
        .iter()
        .find(|m| labels(m) == wanted)
        .map(|m| value(family, m))
}

/// The value of the sample of `name` with exactly `wanted`; it must be present.
pub fn must(families: &[MetricFamily], name: &str, wanted: &[(&str, &str)]) -> f64 {
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
pub fn scalar(families: &[MetricFamily], name: &str) -> f64 {
    must(families, name, &[])
}

pub fn kind_of(families: &[MetricFamily], name: &str) -> MetricType {
    family(families, name).get_field_type()
}

pub fn assert_same_names(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(actual).collect();
    let extra: Vec<_> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: family set differs\nmissing: {missing:?}\nunexpected: {extra:?}"
    );
}

pub fn error_chain(error: &CollectError) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}
