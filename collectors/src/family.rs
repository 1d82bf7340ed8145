//! Metric-family builders and the validator.
//!
//! rust-prometheus' text encoder trusts its input: it panics on an UNTYPED family, errors half-way
//! through on an empty one, and writes invalid names verbatim. Collectors therefore never assemble a
//! [`MetricFamily`] by hand; they go through [`Families`], which can only produce counter, gauge and
//! histogram families, drops empty ones, and checks names, label names and label-name consistency.
//! The engine runs [`validate`] again on everything it is about to encode, because it adds labels.

use std::hash::BuildHasher as _;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType as ProtoType,
    Quantile, Summary,
};

/// Why a family was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FamilyError {
    /// The metric name is not `[a-zA-Z_][a-zA-Z0-9_]*` (colons are reserved for recording rules).
    #[error("invalid metric name {0:?}")]
    InvalidName(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or is reserved for this type.
    #[error("family {family}: invalid label name {label:?}")]
    InvalidLabel {
        /// The family.
        family: String,
        /// The refused label name.
        label: String,
    },
    /// A sample has a different set of label names than the first sample of its family.
    #[error("family {0}: samples carry different label names")]
    InconsistentLabels(String),
    /// A label name appears twice on one sample.
    #[error("family {family}: label {label:?} appears twice on one sample")]
    DuplicateLabel {
        /// The family.
        family: String,
        /// The repeated label name.
        label: String,
    },
    /// The family has a type the text encoder cannot write (UNTYPED) or the builders do not offer.
    #[error("family {0}: unsupported type")]
    UnsupportedType(String),
    /// A histogram's buckets are not sorted, not cumulative, or lack `+Inf` equal to the count.
    #[error("family {0}: malformed histogram")]
    MalformedHistogram(String),
    /// The family has no samples.
    #[error("family {0}: no samples")]
    Empty(String),
}

/// Type of a user-defined metric (a MySQL custom query's, a Redis custom command's): the two a
/// configured value can honestly be. Every kind's config spells it the same way (`counter`, `gauge`),
/// so it lives here with the builders rather than in one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// A value that only goes up (resets on server restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
}

impl Families {
    /// A family of `kind` named `name`.
    pub fn of_type(&mut self, kind: MetricType, name: &str, help: &str) -> &mut FamilyBuilder {
        match kind {
            MetricType::Counter => self.counter(name, help),
            MetricType::Gauge => self.gauge(name, help),
        }
    }
}

/// True for a valid metric name without colons.
pub fn is_valid_metric_name(name: &str) -> bool {
    is_valid_label_name(name)
}

/// True for a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`); `__`-prefixed names are reserved.
pub fn is_valid_label_name(name: &str) -> bool {
    match name.as_bytes() {
        [] | [b'_', b'_', ..] => false,
        [first, rest @ ..] => {
            !first.is_ascii_digit()
                // Every name of every family and sample passes here twice a scrape: a table and
                // no early exit, which the compiler turns into a loop without branches.
                && rest.iter().fold(NAME_BYTE[usize::from(*first)], |ok, &b| {
                    ok & NAME_BYTE[usize::from(b)]
                })
        }
    }
}

/// Which bytes may appear in a name: `[a-zA-Z0-9_]`.
static NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

/// Label names that configured or custom labels may not use: the engine adds `target` (and Prometheus
/// `instance` and `job`) to every sample, `collector` names kinds and sub-collectors in the self
/// metrics, and `le`/`quantile` carry meaning for histograms and summaries.
pub const RESERVED_LABELS: [&str; 6] = ["target", "instance", "job", "collector", "le", "quantile"];

/// Whether `name` may name a target or a custom query: such names become label values (`target`,
/// `collector="query.<name>"`) and URL parameters (`/probe?target=`), so they keep to
/// `[A-Za-z0-9_.-]+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Check a finished family: valid names, a supported type, at least one sample, and the same label
/// names on every sample. Samples are not deduplicated here; that is the merger's job.
pub fn validate(family: &MetricFamily) -> Result<(), FamilyError> {
    validate_labelled(family, &[])
}

/// [`validate`] the family as it will be exposed: as if every sample also carried each label of
/// `extra` that it lacks (a label a collector set itself wins over an added one of the same name; of
/// two added ones the first wins). The engine adds `target` and the configured labels when it
/// renders a collection, and it renders by reference, so it checks the labelled form without
/// building a labelled copy of every sample.
pub fn validate_labelled(family: &MetricFamily, extra: &[&str]) -> Result<(), FamilyError> {
    let name = family.name();
    if !is_valid_metric_name(name) {
        return Err(FamilyError::InvalidName(name.to_owned()));
    }
    let kind = family.get_field_type();
    if !matches!(
        kind,
        ProtoType::COUNTER | ProtoType::GAUGE | ProtoType::HISTOGRAM | ProtoType::SUMMARY
    ) {
        return Err(FamilyError::UnsupportedType(name.to_owned()));
    }
    let Some(first) = family.get_metric().first() else {
        return Err(FamilyError::Empty(name.to_owned()));
    };
    let mut expected = Vec::new();
    label_names(name, first, extra, &mut expected)?;
    for label in &expected {
        // `le` is the histogram's own label, `quantile` the summary's; both stay reserved elsewhere
        // too, so no family can be mistaken for one.
        if !is_valid_label_name(label)
            || *label == "le" && kind == ProtoType::HISTOGRAM
            || *label == "quantile"
        {
            return Err(FamilyError::InvalidLabel {
                family: name.to_owned(),
                label: (*label).to_owned(),
            });
        }
    }
    let mut names = Vec::new();
    for metric in &family.get_metric()[1..] {
        label_names(name, metric, extra, &mut names)?;
        if names != expected {
            return Err(FamilyError::InconsistentLabels(name.to_owned()));
        }
    }
    if kind == ProtoType::HISTOGRAM
        && !family
            .get_metric()
            .iter()
            .all(|m| histogram_is_well_formed(m.get_histogram()))
    {
        return Err(FamilyError::MalformedHistogram(name.to_owned()));
    }
    Ok(())
}

/// The sample's label names with the `extra` ones it lacks, sorted, into `names` (cleared first);
/// borrowed, and into a buffer the caller reuses, since this runs for every sample of every scrape.
fn label_names<'m>(
    family: &str,
    metric: &'m Metric,
    extra: &[&'m str],
    names: &mut Vec<&'m str>,
) -> Result<(), FamilyError> {
    names.clear();
    names.extend(metric.get_label().iter().map(|p| p.name()));
    for &label in extra {
        if !names.contains(&label) {
            names.push(label);
        }
    }
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(FamilyError::DuplicateLabel {
            family: family.to_owned(),
            label: pair[0].to_owned(),
        });
    }
    Ok(())
}

fn histogram_is_well_formed(h: &Histogram) -> bool {
    let buckets = h.get_bucket();
    let sorted = buckets.windows(2).all(|w| {
        w[0].upper_bound() < w[1].upper_bound()
            && w[0].cumulative_count() <= w[1].cumulative_count()
    });
    let last_is_inf = buckets.last().is_some_and(|b| {
        b.upper_bound() == f64::INFINITY && b.cumulative_count() == h.get_sample_count()
    });
    sorted && last_is_inf
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// One family being built. Obtained from [`Families`]; adding a sample of the wrong shape or with bad
/// labels poisons the family, which [`Families::finish`] then drops and logs instead of encoding.
#[derive(Debug)]
pub struct FamilyBuilder {
    name: String,
    help: String,
    kind: Type,
    metrics: Vec<Metric>,
    error: Option<FamilyError>,
}

impl FamilyBuilder {
    fn new(name: &str, help: &str, kind: Type) -> Self {
        let error =
            (!is_valid_metric_name(name)).then(|| FamilyError::InvalidName(name.to_owned()));
        Self {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            metrics: Vec::new(),
            error,
        }
    }

    fn metric(labels: &[(&str, &str)]) -> Metric {
        let pairs = labels
            .iter()
            .map(|(n, v)| {
                let mut pair = LabelPair::default();
                pair.set_name((*n).to_owned());
                pair.set_value((*v).to_owned());
                pair
            })
            .collect();
        Metric::from_label(pairs)
    }

    /// Add a counter or gauge sample. Counter values must be finite and non-negative.
    pub fn set(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let mut metric = Self::metric(labels);
        match self.kind {
            Type::Gauge => {
                let mut g = Gauge::default();
                g.set_value(value);
                metric.set_gauge(g);
            }
            Type::Counter if value.is_finite() && value >= 0.0 => {
                let mut c = Counter::default();
                c.set_value(value);
                metric.set_counter(c);
            }
            Type::Counter | Type::Histogram | Type::Summary => {
                self.error
                    .get_or_insert(FamilyError::UnsupportedType(self.name.clone()));
                return self;
            }
        }
        self.metrics.push(metric);
        self
    }

    /// Add a histogram sample from `(upper bound, cumulative count)` pairs; the `+Inf` bucket is added
    /// from `count` when missing.
    pub fn observe(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        if self.kind != Type::Histogram {
            self.error
                .get_or_insert(FamilyError::UnsupportedType(self.name.clone()));
            return self;
        }
        let mut all: Vec<Bucket> = buckets
            .iter()
            .map(|&(upper, cumulative)| {
                let mut b = Bucket::default();
                b.set_upper_bound(upper);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        if all.last().is_none_or(|b| b.upper_bound() != f64::INFINITY) {
            let mut inf = Bucket::default();
            inf.set_upper_bound(f64::INFINITY);
            inf.set_cumulative_count(count);
            all.push(inf);
        }
        let mut h = Histogram::default();
        h.set_bucket(all);
        h.set_sample_sum(sum);
        h.set_sample_count(count);
        let mut metric = Self::metric(labels);
        metric.set_histogram(h);
        self.metrics.push(metric);
        self
    }

    /// Add a summary sample from `(quantile, value)` pairs, as a server reports its own latency
    /// percentiles. Quantiles are written as given (redis_exporter writes `99.9`, not `0.999`).
    pub fn quantiles(
        &mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        if self.kind != Type::Summary {
            self.error
                .get_or_insert(FamilyError::UnsupportedType(self.name.clone()));
            return self;
        }
        let mut s = Summary::default();
        s.set_quantile(
            quantiles
                .iter()
                .map(|&(q, v)| {
                    let mut quantile = Quantile::default();
                    quantile.set_quantile(q);
                    quantile.set_value(v);
                    quantile
                })
                .collect(),
        );
        s.set_sample_sum(sum);
        s.set_sample_count(count);
        let mut metric = Self::metric(labels);
        metric.set_summary(s);
        self.metrics.push(metric);
        self
    }

    fn finish(self) -> Result<Option<MetricFamily>, FamilyError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.metrics.is_empty() {
            return Ok(None);
        }
        let mut family = MetricFamily::default();
        family.set_name(self.name);
        family.set_help(self.help);
        family.set_field_type(match self.kind {
            Type::Counter => ProtoType::COUNTER,
            Type::Gauge => ProtoType::GAUGE,
            Type::Histogram => ProtoType::HISTOGRAM,
            Type::Summary => ProtoType::SUMMARY,
        });
        family.set_metric(self.metrics);
        validate(&family)?;
        Ok(Some(family))
    }
}

/// The families of one collection, built by name.
///
/// Asking twice for the same name returns the same builder, so a collector can add samples to a family
/// from several places; asking with a different type poisons it.
#[derive(Debug, Default)]
pub struct Families {
    builders: Vec<FamilyBuilder>,
    /// Position of each name in `builders`: a MySQL scrape asks for ~1000 distinct names, and a
    /// linear search per sample would be quadratic. The names are the builders' own (no copy as
    /// keys), hashed with a per-process seed, as they come from the server.
    index: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl Families {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&mut self, name: &str, help: &str, kind: Type) -> &mut FamilyBuilder {
        let hash = self.hasher.hash_one(name);
        let builders = &self.builders;
        let index = match self.index.find(hash, |&i| builders[i].name == name) {
            Some(&i) => i,
            None => {
                let i = self.builders.len();
                self.builders.push(FamilyBuilder::new(name, help, kind));
                let (hasher, builders) = (&self.hasher, &self.builders);
                self.index
                    .insert_unique(hash, i, |&i| hasher.hash_one(builders[i].name.as_str()));
                i
            }
        };
        let builder = &mut self.builders[index];
        if builder.kind != kind {
            builder
                .error
                .get_or_insert(FamilyError::UnsupportedType(builder.name.clone()));
        }
        builder
    }

    /// A gauge family.
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut FamilyBuilder {
        self.get(name, help, Type::Gauge)
    }

    /// A counter family. Inherited names without `_total` are allowed: compatibility beats style.
    pub fn counter(&mut self, name: &str, help: &str) -> &mut FamilyBuilder {
        self.get(name, help, Type::Counter)
    }

    /// A histogram family.
    pub fn histogram(&mut self, name: &str, help: &str) -> &mut FamilyBuilder {
        self.get(name, help, Type::Histogram)
    }

    /// A summary family, for quantiles a server computes itself (there is no other use: our own
    /// timings are histograms or gauges).
    pub fn summary(&mut self, name: &str, help: &str) -> &mut FamilyBuilder {
        self.get(name, help, Type::Summary)
    }

    /// An `_info`-style family: one gauge sample of value 1 whose labels carry the information.
    pub fn info(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) -> &mut FamilyBuilder {
        self.gauge(name, help).set(labels, 1.0)
    }

    /// The valid, non-empty families, in the order they were first asked for. Invalid families are
    /// dropped and logged at error level: they are bugs in a collector, and one bad family must not
    /// cost the rest of the scrape.
    pub fn finish(self) -> Vec<MetricFamily> {
        let mut out = Vec::with_capacity(self.builders.len());
        for builder in self.builders {
            match builder.finish() {
                Ok(Some(family)) => out.push(family),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "dropping invalid metric family"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(families: &[MetricFamily]) -> Vec<&str> {
        families.iter().map(|f| f.name()).collect()
    }

    #[test]
    fn builds_typed_families_in_order() {
        let mut f = Families::new();
        f.gauge("a_gauge", "A gauge.").set(&[("x", "1")], 2.5);
        f.counter("b_total", "A counter.").set(&[], 3.0);
        f.histogram("c_seconds", "A histogram.")
            .observe(&[], &[(0.1, 1), (1.0, 3)], 1.2, 4);
        f.info("d_info", "Info.", &[("version", "1.2")]);
        let out = f.finish();
        assert_eq!(names(&out), ["a_gauge", "b_total", "c_seconds", "d_info"]);
        assert_eq!(out[0].get_field_type(), ProtoType::GAUGE);
        assert_eq!(out[1].get_field_type(), ProtoType::COUNTER);
        assert_eq!(out[2].get_field_type(), ProtoType::HISTOGRAM);
        let h = out[2].get_metric()[0].get_histogram();
        assert_eq!(h.get_bucket().len(), 3, "+Inf bucket appended");
        assert_eq!(h.get_bucket()[2].cumulative_count(), 4);
        assert_eq!(out[3].get_metric()[0].get_gauge().get_value(), 1.0);
        assert_eq!(h.get_bucket()[2].upper_bound(), f64::INFINITY);
    }

    #[test]
    fn empty_families_are_dropped() {
        let mut f = Families::new();
        f.gauge("empty", "Nothing.");
        f.gauge("full", "Something.").set(&[], 1.0);
        assert_eq!(names(&f.finish()), ["full"]);
    }

    #[test]
    fn invalid_names_and_labels_are_dropped() {
        let mut f = Families::new();
        f.gauge("bad-name", "x").set(&[], 1.0);
        f.gauge("rule:name", "x").set(&[], 1.0);
        f.gauge("bad_label", "x").set(&[("__reserved", "v")], 1.0);
        f.gauge("dup_label", "x")
            .set(&[("a", "1"), ("a", "2")], 1.0);
        f.gauge("mixed_labels", "x")
            .set(&[("a", "1")], 1.0)
            .set(&[("b", "1")], 1.0);
        f.gauge("quantile_outside_summary", "x")
            .set(&[("quantile", "0.5")], 1.0);
        f.histogram("le_on_histogram", "x")
            .observe(&[("le", "1")], &[], 0.0, 0);
        f.gauge("ok", "x").set(&[], 1.0);
        assert_eq!(names(&f.finish()), ["ok"]);
    }

    #[test]
    fn shape_mismatches_poison_the_family() {
        let mut f = Families::new();
        f.counter("negative_total", "x").set(&[], -1.0);
        f.counter("nan_total", "x").set(&[], f64::NAN);
        f.gauge("observed", "x").observe(&[], &[], 0.0, 0);
        f.gauge("retyped", "x").set(&[], 1.0);
        f.counter("retyped", "x").set(&[], 1.0);
        f.histogram("unsorted", "x")
            .observe(&[], &[(2.0, 1), (1.0, 2)], 0.0, 2);
        assert!(f.finish().is_empty());
    }

    #[test]
    fn validate_refuses_untyped_and_empty() {
        let mut untyped = MetricFamily::default();
        untyped.set_name("u".into());
        untyped.set_field_type(ProtoType::UNTYPED);
        untyped.set_metric(vec![Metric::default()]);
        assert_eq!(
            validate(&untyped),
            Err(FamilyError::UnsupportedType("u".into()))
        );
        let mut empty = MetricFamily::default();
        empty.set_name("e".into());
        empty.set_field_type(ProtoType::GAUGE);
        assert_eq!(validate(&empty), Err(FamilyError::Empty("e".into())));
    }

    #[test]
    fn validate_labelled_checks_the_family_as_exposed() {
        let mut f = Families::new();
        f.gauge("g", "x").set(&[("k", "1")], 1.0);
        f.histogram("h", "x").observe(&[], &[(1.0, 1)], 0.5, 1);
        let out = f.finish();
        let (gauge, histogram) = (&out[0], &out[1]);
        assert_eq!(validate_labelled(gauge, &["target", "env"]), Ok(()));
        // The collector's own `k` wins over an added one: no duplicate.
        assert_eq!(validate_labelled(gauge, &["k"]), Ok(()));
        assert_eq!(
            validate_labelled(gauge, &["quantile"]),
            Err(FamilyError::InvalidLabel {
                family: "g".into(),
                label: "quantile".into()
            })
        );
        assert!(validate_labelled(gauge, &["bad-name"]).is_err());
        assert!(validate_labelled(histogram, &["le"]).is_err());
        assert_eq!(validate_labelled(histogram, &["target"]), Ok(()));

        // A sample lacking a label its siblings have is completed by the added one.
        let mut mixed = MetricFamily::default();
        mixed.set_name("m".into());
        mixed.set_field_type(ProtoType::GAUGE);
        mixed.set_metric(vec![
            FamilyBuilder::metric(&[("k", "1")]),
            FamilyBuilder::metric(&[("k", "2"), ("env", "own")]),
        ]);
        assert_eq!(
            validate(&mixed),
            Err(FamilyError::InconsistentLabels("m".into()))
        );
        assert_eq!(validate_labelled(&mixed, &["env"]), Ok(()));
    }

    #[test]
    fn label_name_rules() {
        for good in ["a", "_a", "a_1", "A"] {
            assert!(is_valid_label_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "__a", "a:b", "é"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }
}
