//! From collected families to the text exposition format 0.0.4.
//!
//! rust-prometheus' encoder trusts its input (it panics on UNTYPED, writes two TYPE lines for two
//! same-name families, prints `inf` for `+Inf`), so this module does the checks itself and writes the
//! format directly, in two steps:
//!
//! - [`render`], as soon as one target's collection has finished: validate every family as it will be
//!   exposed (with the target's labels added) and write its sample lines, labels included, into the
//!   target's [`Batch`], which keeps besides only each family's name, type and HELP (one shared copy
//!   per distinct family). The collection's `MetricFamily` values can be freed right after: a proto
//!   sample costs about 300 bytes in a dozen small allocations, its line about 50, and holding every
//!   target's protos until the last target had answered was most of the exporter's memory at 1,000
//!   targets.
//! - [`merge`], then [`encode`] or [`Merged::chunks`]: group the batches' families by name,
//!   sorted; drop type conflicts and duplicate series (logged, never a 500); concatenate the text.
//!   Duplicates are found from the rendered lines themselves, one family name at a time, so no
//!   per-series bookkeeping lives as long as the batches.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use fanout_collectors::family::validate_labelled;
use prometheus::proto::{Metric, MetricFamily, MetricType};

/// Content-Type of the 0.0.4 text format, with the charset client_golang sends.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The families of one target (or of the exporter itself), validated, labelled and rendered by
/// [`render`]: their sample lines, ready to be concatenated, and each family's header. Barely
/// larger than its share of the exposition, so a scrape can hold one per target until the last
/// target has answered.
#[derive(Debug)]
pub struct Batch {
    /// Where the families came from, for log messages.
    source: String,
    /// The sample lines of every rendered family, family after family.
    text: String,
    /// The rendered families, in the order they were given.
    families: Vec<Rendered>,
}

/// One family of a [`Batch`]: its header, and where its lines end in the batch's text (they start
/// where the previous family's end).
#[derive(Debug)]
struct Rendered {
    header: Arc<Header>,
    text_end: usize,
}

impl Batch {
    /// Where the families came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Bytes of sample lines held.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The lines of family `index`.
    fn text_of(&self, index: usize) -> &str {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.families[previous].text_end);
        &self.text[start..self.families[index].text_end]
    }
}

/// What the merge and the encoder need of a family besides its samples: name, type, HELP, and the
/// `# HELP`/`# TYPE` lines ready to write. Interned: a thousand targets of one kind send the same
/// hundred-odd families, and their HELP texts alone weigh about as much as their samples.
#[derive(Debug)]
struct Header {
    name: String,
    kind: MetricType,
    help: String,
    lines: String,
}

impl Header {
    fn new(name: &str, kind: MetricType, help: &str) -> Self {
        let mut lines = String::with_capacity(name.len() * 2 + help.len() + 24);
        if !help.is_empty() {
            let _ = write!(lines, "# HELP {name} ");
            escape_into(&mut lines, help, false);
            lines.push('\n');
        }
        let kind_name = match kind {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            MetricType::SUMMARY => "summary",
            MetricType::UNTYPED => "untyped",
        };
        let _ = writeln!(lines, "# TYPE {name} {kind_name}");
        Self {
            name: name.to_owned(),
            kind,
            help: help.to_owned(),
            lines,
        }
    }
}

/// Most headers the interner keeps. Names and HELP texts come from the collectors' code and the
/// configuration, a few thousand at most; the bound only stops a collector that made names up from
/// growing the table for ever.
const MAX_HEADERS: usize = 16_384;

/// The interner's hash keys, random per process.
static HEADER_SEED: LazyLock<foldhash::fast::RandomState> =
    LazyLock::new(foldhash::fast::RandomState::default);

/// The shared [`Header`]s, for every scrape of the process.
static HEADERS: LazyLock<Mutex<Interner>> =
    LazyLock::new(|| Mutex::new(Interner::new(MAX_HEADERS)));

/// Hands out one [`Header`] per distinct (name, type, HELP). A header stays valid after the
/// interner forgets it; it is only no longer shared with later batches.
#[derive(Debug)]
struct Interner {
    by_hash: HashMap<u64, Vec<Arc<Header>>, foldhash::fast::FixedState>,
    len: usize,
    max: usize,
}

impl Interner {
    fn new(max: usize) -> Self {
        Self {
            by_hash: HashMap::default(),
            len: 0,
            max,
        }
    }

    fn get(&mut self, name: &str, kind: MetricType, help: &str) -> Arc<Header> {
        // Seeded per process: names and HELP texts come from configuration and from what servers
        // report (MySQL's status variables name families), so nobody can pick ones that collide.
        let hash = HEADER_SEED.hash_one((name, kind, help));
        if let Some(found) = self.by_hash.get(&hash).and_then(|bucket| {
            bucket
                .iter()
                .find(|h| h.name == name && h.kind == kind && h.help == help)
        }) {
            return Arc::clone(found);
        }
        if self.len >= self.max {
            // Forget what no batch holds any more; if most are still in use, forget all, so that
            // pruning costs O(1) per insertion however the headers come.
            self.by_hash.retain(|_, bucket| {
                bucket.retain(|h| Arc::strong_count(h) > 1);
                !bucket.is_empty()
            });
            self.len = self.by_hash.values().map(Vec::len).sum();
            if self.len >= self.max / 2 {
                self.by_hash.clear();
                self.len = 0;
            }
        }
        let header = Arc::new(Header::new(name, kind, help));
        self.by_hash
            .entry(hash)
            .or_default()
            .push(Arc::clone(&header));
        self.len += 1;
        header
    }
}

/// Validate and render the families of one collection with `labels` added to every sample (a label
/// a collector set itself wins over a configured one of the same name). The families are borrowed,
/// so one collection can be rendered for several scrapes with different labels; invalid families
/// are dropped and logged with `source`.
pub fn render<'a>(
    source: &str,
    labels: &[(String, String)],
    families: impl IntoIterator<Item = &'a MetricFamily>,
) -> Batch {
    let families = families.into_iter();
    let extra: Vec<&str> = labels.iter().map(|(name, _)| name.as_str()).collect();
    let mut batch = Batch {
        source: source.to_owned(),
        text: String::new(),
        families: Vec::with_capacity(families.size_hint().0),
    };
    // One sample's labels, reused for every sample.
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for family in families {
        // Validated as labelled, so a configured label cannot make a family invalid unnoticed.
        if let Err(error) = validate_labelled(family, &extra) {
            tracing::error!(%source, %error, "dropping invalid family");
            continue;
        }
        let kind = family.get_field_type();
        let header = HEADERS.lock().unwrap_or_else(PoisonError::into_inner).get(
            family.name(),
            kind,
            family.help(),
        );
        for metric in family.get_metric() {
            pairs.clear();
            pairs.extend(metric.get_label().iter().map(|l| (l.name(), l.value())));
            for (name, value) in labels {
                if !pairs.iter().any(|(have, _)| have == name) {
                    pairs.push((name, value));
                }
            }
            write_metric(&mut batch.text, family.name(), kind, metric, &pairs);
        }
        batch.families.push(Rendered {
            header,
            text_end: batch.text.len(),
        });
    }
    // The batch lives until the scrape's last target has answered: give back what growing left.
    batch.text.shrink_to_fit();
    batch
}

/// The lines of one sample of a validated family.
fn write_metric(
    out: &mut String,
    name: &str,
    kind: MetricType,
    metric: &Metric,
    labels: &[(&str, &str)],
) {
    match kind {
        MetricType::COUNTER => sample(
            out,
            name,
            "",
            labels,
            None,
            metric.get_counter().get_value(),
        ),
        MetricType::GAUGE => sample(out, name, "", labels, None, metric.get_gauge().get_value()),
        MetricType::HISTOGRAM => {
            let h = metric.get_histogram();
            for b in h.get_bucket() {
                let le = Some(("le", b.upper_bound()));
                sample(
                    out,
                    name,
                    "_bucket",
                    labels,
                    le,
                    b.cumulative_count() as f64,
                );
            }
            sample(out, name, "_sum", labels, None, h.get_sample_sum());
            sample(
                out,
                name,
                "_count",
                labels,
                None,
                h.get_sample_count() as f64,
            );
        }
        MetricType::SUMMARY => {
            let s = metric.get_summary();
            for q in s.get_quantile() {
                let quantile = Some(("quantile", q.quantile()));
                sample(out, name, "", labels, quantile, q.value());
            }
            sample(out, name, "_sum", labels, None, s.sample_sum());
            sample(out, name, "_count", labels, None, s.sample_count() as f64);
        }
        // Validation lets no other type through.
        MetricType::UNTYPED => {}
    }
}

/// One line: `name_suffix{labels,extra="v"} value`.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, f64)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    let mut first = true;
    for (n, v) in labels {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_into(out, v, true);
        out.push('"');
    }
    if let Some((n, v)) = extra {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        // A formatted number needs no escaping.
        push_value(out, v);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

/// Go's spelling of special values; Rust's Display writes `inf`, which strict parsers refuse.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v == 0.0 {
        out.push('0');
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Most values are whole numbers (counters, sizes); an integer is written without the
        // float algorithm, and the same digits as `{v}` writes for it.
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Backslash and newline escaped, and the double quote too in label values.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    if !text
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || quote && b == b'"')
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Keys of the series hash: random per process, so that label values a monitored server controls
/// (key names, client names) cannot be chosen to collide and hide another series.
static SERIES_KEYS: LazyLock<(RandomState, RandomState)> =
    LazyLock::new(|| (RandomState::new(), RandomState::new()));

/// Call `each` with the byte range and identity of every series in `text`, the rendered lines of
/// one family of type `kind` named `name`. A counter or gauge series is one line; a histogram or
/// summary series runs from its first bucket or quantile line to its `_count` line, and its
/// identity is that of its `_sum` line, the one without `le` or `quantile`.
///
/// The identity hashes the series' labels as rendered (escaping is one-to-one, so equal rendered
/// values mean equal values), sorted by name, twice with independent keys into 128 bits. A `str`
/// hashes as its bytes and 0xFF, which UTF-8 never contains, so different label sets never feed
/// the same bytes; that two give the same 128 bits is as likely as guessing a random key (about
/// 2^-128 per pair).
fn for_each_series(
    kind: MetricType,
    name: &str,
    text: &str,
    mut each: impl FnMut(Range<usize>, u128),
) {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut start = 0;
    let mut identity = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        at += line.len();
        let rest = line.get(name.len()..).unwrap_or_default();
        let ends_series = match kind {
            MetricType::HISTOGRAM | MetricType::SUMMARY => {
                if let Some(labels) = rest.strip_prefix("_sum") {
                    identity = labels_hash(labels, &mut pairs);
                }
                rest.starts_with("_count{") || rest.starts_with("_count ")
            }
            _ => {
                identity = labels_hash(rest, &mut pairs);
                true
            }
        };
        if ends_series {
            each(start..at, identity);
            start = at;
        }
    }
}

/// The identity of the labels at the start of `rest` (`{a="1",b="2"} 3\n`, or ` 3\n` for none).
/// `pairs` is scratch space.
fn labels_hash<'t>(rest: &'t str, pairs: &mut Vec<(&'t str, &'t str)>) -> u128 {
    pairs.clear();
    if let Some(mut inside) = rest.strip_prefix('{') {
        // Label names never hold `=`; values hold no unescaped `"`.
        while let Some((name, after)) = inside.split_once("=\"") {
            let bytes = after.as_bytes();
            let mut end = 0;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let value = after.get(..end).unwrap_or(after);
            pairs.push((name, value));
            match after.get(end + 1..).and_then(|r| r.strip_prefix(',')) {
                Some(next) => inside = next,
                None => break,
            }
        }
    }
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let (a, b) = &*SERIES_KEYS;
    let (mut high, mut low) = (a.build_hasher(), b.build_hasher());
    for (name, value) in pairs.iter() {
        name.hash(&mut high);
        value.hash(&mut high);
        name.hash(&mut low);
        value.hash(&mut low);
    }
    (u128::from(high.finish()) << 64) | u128::from(low.finish())
}

/// Batches grouped into one family per name, sorted by name, without type conflicts or duplicate
/// series: what [`encode`] writes.
#[derive(Debug)]
pub struct Merged {
    batches: Vec<Batch>,
    groups: Vec<Group>,
    /// Every group's parts, group after group, as (batch, family) indices: one allocation for the
    /// thousand-odd families of a MySQL scrape instead of one each.
    parts: Vec<(usize, usize)>,
    /// The kept lines of each family that lost series as duplicates, by (batch, family), as byte
    /// ranges of the family's text; a family not listed keeps all of its lines, the usual case.
    partial: HashMap<(usize, usize), Vec<Range<usize>>>,
}

/// One family name: the first header seen for it, and where its parts are in [`Merged::parts`].
#[derive(Debug)]
struct Group {
    header: Arc<Header>,
    parts: Range<usize>,
}

impl Merged {
    /// Whether nothing is left to expose.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The family names, sorted, as they will be encoded.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.header.name.as_str())
    }

    fn parts_of(&self, group: &Group) -> &[(usize, usize)] {
        &self.parts[group.parts.clone()]
    }
}

/// Group rendered batches into one family per name, sorted by name. Of families sharing a name,
/// the first keeps the HELP text and sets the type; a later one of another type is dropped whole.
/// Of series with the same label set in one name, the first is kept. Both drops are logged.
pub fn merge(batches: impl IntoIterator<Item = Batch>) -> Merged {
    let batches: Vec<Batch> = batches.into_iter().collect();
    // Every family as (batch, family), sorted by name; families of one name stay in batch order, so
    // the first one seen leads its group.
    let mut order: Vec<(&str, usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| {
            batch
                .families
                .iter()
                .enumerate()
                .map(move |(f, family)| (family.header.name.as_str(), b, f))
        })
        .collect();
    // (name, batch, family) are distinct, so an unstable sort orders them as a stable one would.
    order.sort_unstable();
    let header = |b: usize, f: usize| &batches[b].families[f].header;
    let mut groups: Vec<Group> = Vec::new();
    let mut parts = Vec::with_capacity(order.len());
    let mut partial = HashMap::new();
    // Series identities of the group being merged; one group's at a time.
    // The identities are keyed hashes already; hashing them again needs no seed of its own.
    let mut seen: HashSet<u128, foldhash::fast::FixedState> = HashSet::default();
    let mut rest = order.as_slice();
    while let Some(&(name, b, f)) = rest.first() {
        let lead = header(b, f);
        let same = rest
            .iter()
            .position(|&(other, _, _)| other != name)
            .unwrap_or(rest.len());
        let (members, after) = rest.split_at(same);
        rest = after;
        let start = parts.len();
        if let [(_, b, f)] = *members
            && is_one_line(lead.kind, batches[b].text_of(f))
        {
            // One series cannot repeat: most of a MySQL scrape's thousand families are such.
            parts.push((b, f));
        } else {
            seen.clear();
            for &(_, b, f) in members {
                let batch = &batches[b];
                if header(b, f).kind != lead.kind {
                    tracing::warn!(
                        source = %batch.source,
                        family = %lead.name,
                        "dropping family whose type conflicts with the same name from another target"
                    );
                    continue;
                }
                match kept_lines(lead, batch, f, &mut seen) {
                    None => parts.push((b, f)),
                    Some(kept) if kept.is_empty() => {}
                    Some(kept) => {
                        partial.insert((b, f), kept);
                        parts.push((b, f));
                    }
                }
            }
        }
        if parts.len() > start {
            groups.push(Group {
                header: Arc::clone(lead),
                parts: start..parts.len(),
            });
        }
    }
    Merged {
        batches,
        groups,
        parts,
        partial,
    }
}

/// The lines of family `f` of `batch` to keep when the series in `seen` are already exposed, and
/// its own series added to `seen`: `None` when all of them are kept (no allocation then).
fn kept_lines(
    header: &Header,
    batch: &Batch,
    f: usize,
    seen: &mut HashSet<u128, foldhash::fast::FixedState>,
) -> Option<Vec<Range<usize>>> {
    // Built only once a duplicate turns up.
    let mut kept: Option<Vec<Range<usize>>> = None;
    for_each_series(
        header.kind,
        &header.name,
        batch.text_of(f),
        |lines, identity| {
            if seen.insert(identity) {
                if let Some(kept) = kept.as_mut() {
                    match kept.last_mut() {
                        Some(last) if last.end == lines.start => last.end = lines.end,
                        _ => kept.push(lines),
                    }
                }
            } else {
                tracing::warn!(source = %batch.source, family = %header.name, "dropping duplicate series");
                kept.get_or_insert_with(|| {
                    (lines.start > 0)
                        .then_some(0..lines.start)
                        .into_iter()
                        .collect()
                });
            }
        },
    );
    kept
}

/// Whether `text`, the lines of one family of type `kind`, is a single counter or gauge sample (a
/// newline ends a line only, as label values have theirs escaped).
fn is_one_line(kind: MetricType, text: &str) -> bool {
    matches!(kind, MetricType::COUNTER | MetricType::GAUGE)
        && text
            .as_bytes()
            .split_last()
            .is_some_and(|(&last, before)| last == b'\n' && !before.contains(&b'\n'))
}

/// Encode merged families (the output of [`merge`]) in the 0.0.4 text format, into a string of
/// exactly the size needed.
pub fn encode(merged: &Merged) -> String {
    let mut out = String::with_capacity(merged.encoded_len());
    for group in &merged.groups {
        out.push_str(&group.header.lines);
        for &part in merged.parts_of(group) {
            merged.write_part(part, &mut out);
        }
    }
    out
}

impl Merged {
    /// Bytes [`encode`] writes, exactly: the response's `Content-Length`.
    pub fn encoded_len(&self) -> usize {
        self.groups
            .iter()
            .map(|g| {
                g.header.lines.len()
                    + self
                        .parts_of(g)
                        .iter()
                        .map(|&p| self.part_len(p))
                        .sum::<usize>()
            })
            .sum()
    }

    /// The encoded text in pieces of about `size` bytes (whole families of whole batches, so a
    /// piece can be longer; the last one may be shorter), concatenating to what [`encode`]
    /// returns. A response body sent piece by piece never exists whole in memory, nor in the copy
    /// the HTTP layer makes of a body given in one piece; several responses can send the same
    /// merged batches, each encoding its own pieces as they go out.
    pub fn chunks(this: Arc<Self>, size: usize) -> Chunks {
        Chunks {
            merged: this,
            group: 0,
            part: 0,
            size,
        }
    }

    fn part_len(&self, part: (usize, usize)) -> usize {
        match self.part(part) {
            Part::Whole(text) => text.len(),
            Part::Kept(_, kept) => kept.iter().map(|lines| lines.len()).sum(),
        }
    }

    fn write_part(&self, part: (usize, usize), out: &mut String) {
        match self.part(part) {
            Part::Whole(text) => out.push_str(text),
            Part::Kept(text, kept) => {
                for lines in kept {
                    out.push_str(&text[lines.clone()]);
                }
            }
        }
    }

    fn part(&self, (b, f): (usize, usize)) -> Part<'_> {
        let text = self.batches[b].text_of(f);
        // Most scrapes drop nothing: no lookup then.
        let kept = if self.partial.is_empty() {
            None
        } else {
            self.partial.get(&(b, f))
        };
        match kept {
            None => Part::Whole(text),
            Some(kept) => Part::Kept(text, kept),
        }
    }
}

/// The text one family of one batch contributes: all of its lines, or the kept ones.
enum Part<'a> {
    Whole(&'a str),
    Kept(&'a str, &'a [Range<usize>]),
}

/// The pieces of [`Merged::chunks`].
#[derive(Debug)]
pub struct Chunks {
    merged: Arc<Merged>,
    /// The group being written.
    group: usize,
    /// 0 before its header is written, then 1 + the index of the next part to write.
    part: usize,
    size: usize,
}

impl Iterator for Chunks {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut out = String::new();
        while out.len() < self.size {
            let Some(group) = self.merged.groups.get(self.group) else {
                break;
            };
            if out.capacity() == 0 {
                out.reserve_exact(self.size + self.size / 4);
            }
            match self.part.checked_sub(1) {
                None => out.push_str(&group.header.lines),
                Some(index) => match self.merged.parts_of(group).get(index) {
                    Some(&part) => self.merged.write_part(part, &mut out),
                    None => {
                        self.group += 1;
                        self.part = 0;
                        continue;
                    }
                },
            }
            self.part += 1;
        }
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use fanout_collectors::Families;

    use super::*;

    fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    fn batch(source: &str, labels: &[(&str, &str)], families: Families) -> Batch {
        render(source, &owned(labels), &families.finish())
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
        let names: Vec<_> = merged.names().collect();
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
        let merged = merge(vec![render("t", &[], &[untyped, bad])]);
        assert!(merged.is_empty());
        assert_eq!(encode(&merged), "");
    }

    #[test]
    fn one_collection_renders_for_several_label_sets() {
        let mut a = Families::new();
        a.gauge("x", "X.").set(&[("k", "v")], 1.0);
        let families = a.finish();
        let before = families.clone();
        let first = render("a", &owned(&[("target", "a")]), &families);
        let second = render("a", &owned(&[("target", "b")]), &families);
        assert_eq!(families, before, "rendering must not touch the families");
        assert_eq!(first.source(), "a");
        assert_eq!(first.text_len(), "x{k=\"v\",target=\"a\"} 1\n".len());
        assert_eq!(
            encode(&merge(vec![first, second])),
            "# HELP x X.\n# TYPE x gauge\nx{k=\"v\",target=\"a\"} 1\nx{k=\"v\",target=\"b\"} 1\n"
        );
    }

    #[test]
    fn a_duplicate_costs_only_its_own_lines() {
        let mut a = Families::new();
        a.gauge("g", "G.")
            .set(&[("k", "1"), ("j", "x,y=\"z}")], 1.0)
            .set(&[("k", "2"), ("j", "")], 2.0);
        a.histogram("h", "H.")
            .observe(&[("k", "1")], &[(1.0, 1)], 0.5, 1);
        let mut b = Families::new();
        // Same label sets as in `a`, in another order: still duplicates.
        b.gauge("g", "G.")
            .set(&[("k", "0"), ("j", "")], 0.5)
            .set(&[("j", "x,y=\"z}"), ("k", "1")], 10.0)
            .set(&[("j", "x,y=\"z"), ("k", "1")], 11.0)
            .set(&[("k", "3"), ("j", "")], 3.0);
        b.histogram("h", "H.")
            .observe(&[("k", "1")], &[(1.0, 5)], 9.0, 5)
            .observe(&[("k", "2")], &[], 2.0, 2);
        // Within one batch too: the second of two equal series goes.
        b.gauge("u", "U.").set(&[], 1.0).set(&[], 2.0);
        a.histogram("z", "Z.").observe(&[], &[], 1.0, 1);
        b.histogram("z", "Z.").observe(&[], &[(1.0, 1)], 2.0, 2);
        let text = encode(&merge(vec![batch("a", &[], a), batch("b", &[], b)]));
        assert_eq!(
            text,
            "# HELP g G.\n# TYPE g gauge\n\
             g{k=\"1\",j=\"x,y=\\\"z}\"} 1\ng{k=\"2\",j=\"\"} 2\n\
             g{k=\"0\",j=\"\"} 0.5\ng{j=\"x,y=\\\"z\",k=\"1\"} 11\ng{k=\"3\",j=\"\"} 3\n\
             # HELP h H.\n# TYPE h histogram\n\
             h_bucket{k=\"1\",le=\"1\"} 1\nh_bucket{k=\"1\",le=\"+Inf\"} 1\nh_sum{k=\"1\"} 0.5\nh_count{k=\"1\"} 1\n\
             h_bucket{k=\"2\",le=\"+Inf\"} 2\nh_sum{k=\"2\"} 2\nh_count{k=\"2\"} 2\n\
             # HELP u U.\n# TYPE u gauge\nu 1\n\
             # HELP z Z.\n# TYPE z histogram\nz_bucket{le=\"+Inf\"} 1\nz_sum 1\nz_count 1\n"
        );
        // A family all of whose series are duplicates leaves nothing behind.
        let mut c = Families::new();
        c.gauge("u", "U.").set(&[], 3.0);
        let mut d = Families::new();
        d.gauge("u", "U.").set(&[], 4.0);
        let merged = merge(vec![batch("c", &[], c), batch("d", &[], d)]);
        assert_eq!(encode(&merged), "# HELP u U.\n# TYPE u gauge\nu 3\n");
    }

    #[test]
    fn configured_labels_complete_samples_that_lack_them() {
        let mut x = MetricFamily::default();
        x.set_name("x".into());
        x.set_help("X.".into());
        x.set_field_type(MetricType::GAUGE);
        let sample = |labels: &[(&str, &str)]| {
            let pairs = labels
                .iter()
                .map(|(n, v)| {
                    let mut pair = prometheus::proto::LabelPair::default();
                    pair.set_name((*n).into());
                    pair.set_value((*v).into());
                    pair
                })
                .collect();
            let mut metric = Metric::from_label(pairs);
            metric.set_gauge(prometheus::proto::Gauge::default());
            metric
        };
        x.set_metric(vec![
            sample(&[("k", "1")]),
            sample(&[("k", "2"), ("env", "own")]),
        ]);
        let text = encode(&merge(vec![render("a", &owned(&[("env", "prod")]), &[x])]));
        assert_eq!(
            text,
            "# HELP x X.\n# TYPE x gauge\nx{k=\"1\",env=\"prod\"} 0\nx{k=\"2\",env=\"own\"} 0\n"
        );
    }

    #[test]
    fn the_first_help_of_a_name_is_kept() {
        let mut a = Families::new();
        a.gauge("x", "First.").set(&[], 1.0);
        let mut b = Families::new();
        b.gauge("x", "Second.").set(&[], 2.0);
        let mut c = Families::new();
        c.gauge("x", "").set(&[], 3.0);
        let text = encode(&merge(vec![
            batch("c", &[("target", "c")], c),
            batch("a", &[("target", "a")], a),
            batch("b", &[("target", "b")], b),
        ]));
        assert_eq!(
            text,
            "# TYPE x gauge\nx{target=\"c\"} 3\nx{target=\"a\"} 1\nx{target=\"b\"} 2\n"
        );
    }

    #[test]
    fn headers_are_shared_and_their_table_stays_bounded() {
        let mut a = Families::new();
        a.gauge("shared_header_test", "S.").set(&[], 1.0);
        let families = a.finish();
        let first = render("a", &[], &families);
        let second = render("b", &[], &families);
        assert!(Arc::ptr_eq(
            &first.families[0].header,
            &second.families[0].header
        ));

        let mut interner = Interner::new(4);
        let held: Vec<_> = (0..3)
            .map(|i| interner.get(&format!("h{i}"), MetricType::GAUGE, "H."))
            .collect();
        for i in 0..20 {
            let header = interner.get(&format!("t{i}"), MetricType::COUNTER, "T.");
            assert_eq!(header.name, format!("t{i}"));
            assert!(interner.len <= 4, "{}", interner.len);
        }
        // A header handed out stays whole after its table forgot it.
        assert_eq!(held[2].lines, "# HELP h2 H.\n# TYPE h2 gauge\n");
        let again = interner.get("t19", MetricType::COUNTER, "T.");
        assert_eq!(again.lines, "# HELP t19 T.\n# TYPE t19 counter\n");
        // Same name, other type or HELP: another header.
        assert!(!Arc::ptr_eq(
            &again,
            &interner.get("t19", MetricType::GAUGE, "T.")
        ));
    }

    #[test]
    fn chunks_concatenate_to_the_encoded_text() {
        let mut batches = Vec::new();
        for t in 0..30 {
            let mut f = Families::new();
            f.gauge("a", "A.").set(&[("i", "1")], t as f64);
            f.counter("b_total", "B.").set(&[], 2.0);
            f.histogram("c", "C.").observe(&[], &[(0.5, 1)], 0.25, 2);
            // Every other target repeats the first one's series of `d`.
            f.gauge("d", "D.").set(&[("t", &(t % 2).to_string())], 1.0);
            let target = t.to_string();
            batches.push((target, f.finish()));
        }
        let merge_all = || {
            merge(
                batches
                    .iter()
                    .map(|(t, f)| render(t, &owned(&[("target", t)]), f))
                    .collect::<Vec<_>>(),
            )
        };
        let merged = merge_all();
        let text = encode(&merged);
        assert_eq!(text.len(), merged.encoded_len());
        assert_eq!(
            text.len(),
            text.capacity(),
            "encoded into one exact allocation"
        );
        assert_eq!(text.matches("d{").count(), 30);
        for size in [1, 100, 1000, 1 << 20] {
            let chunks: Vec<String> = Merged::chunks(Arc::new(merge_all()), size).collect();
            assert_eq!(chunks.concat(), text, "size {size}");
            if size == 100 {
                assert!(chunks.len() > 10, "{}", chunks.len());
                assert!(chunks.iter().all(|c| !c.is_empty()));
            }
        }
        assert_eq!(Merged::chunks(Arc::new(merge(Vec::new())), 10).count(), 0);
    }

    #[test]
    fn whole_numbers_are_written_as_the_float_formatter_writes_them() {
        let mut values = vec![
            1.0,
            -1.0,
            42.0,
            123_456_789.0,
            999_999_999_999_999.0,
            -999_999_999_999_999.0,
            1e15,
            9_007_199_254_740_993.0,
            1e21,
            0.5,
            -2.25,
            1e-7,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        values.extend((0..64).map(|shift| (1u64 << shift) as f64));
        values.extend((0..64).map(|shift| -((1u64 << shift) as f64) + 1.0));
        for v in values {
            let mut out = String::new();
            push_value(&mut out, v);
            assert_eq!(out, format!("{v}"), "{v:e}");
        }
    }
}
