//! What the unit tests of the INFO and reply mapping share: the captured server replies in
//! `testdata/`, and a family builder and readers that check every family the code under test makes.

use std::collections::HashMap;

use prometheus::proto::{MetricFamily, MetricType};

use crate::Families;
use crate::family::validate;

pub(super) const PRIMARY: &str = include_str!("../testdata/redis-7.0-primary-info-all.txt");
pub(super) const REPLICA: &str = include_str!("../testdata/redis-7.0-replica-info-all.txt");
pub(super) const REDIS6: &str = include_str!("../testdata/redis-6.0-info.txt");
pub(super) const KEYDB: &str = include_str!("../testdata/keydb-6.3-info.txt");
pub(super) const VALKEY: &str = include_str!("../testdata/valkey-8.1-info-server.txt");
pub(super) const NOW: f64 = 1_795_627_000.0;

pub(super) fn build(f: impl FnOnce(&mut Families)) -> Vec<MetricFamily> {
    let mut out = Families::new();
    f(&mut out);
    let families = out.finish();
    for family in &families {
        assert_eq!(validate(family), Ok(()), "{}", family.name());
        assert_ne!(family.get_field_type(), MetricType::UNTYPED);
    }
    families
}

pub(super) fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

pub(super) fn names(families: &[MetricFamily]) -> Vec<&str> {
    let mut names: Vec<&str> = families.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    names
}

/// The value of the sample with exactly these labels (order-insensitive).
pub(super) fn value_of(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
    let family = family(families, name);
    let mut want: Vec<(&str, &str)> = labels.to_vec();
    want.sort_unstable();
    for metric in family.get_metric() {
        let mut have: Vec<(&str, &str)> = metric
            .get_label()
            .iter()
            .map(|p| (p.name(), p.value()))
            .collect();
        have.sort_unstable();
        if have == want {
            return match family.get_field_type() {
                MetricType::COUNTER => metric.get_counter().get_value(),
                _ => metric.get_gauge().get_value(),
            };
        }
    }
    panic!("{name} has no sample {labels:?}");
}

pub(super) fn kind(families: &[MetricFamily], name: &str) -> MetricType {
    family(families, name).get_field_type()
}

pub(super) fn label_names(families: &[MetricFamily], name: &str) -> Vec<String> {
    let mut names: Vec<String> = family(families, name).get_metric()[0]
        .get_label()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    names.sort_unstable();
    names
}

pub(super) fn labels_of(families: &[MetricFamily], name: &str) -> HashMap<String, String> {
    family(families, name).get_metric()[0]
        .get_label()
        .iter()
        .map(|p| (p.name().to_owned(), p.value().to_owned()))
        .collect()
}
