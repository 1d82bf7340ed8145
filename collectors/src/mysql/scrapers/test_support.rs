//! What the sub-collectors' unit tests share: the captured server outputs in `../testdata`, parsers
//! for the shapes the `mariadb` client prints them in, and lookups into the families a scrape made.

use std::collections::BTreeSet;

use prometheus::proto::{MetricFamily, MetricType};

use super::super::{Address, Flavor, MysqlSettings, Rows, Scraper, ServerInfo};
use super::families;
use crate::Families;
use crate::family::validate;

pub(super) const STATUS: &str = include_str!("../testdata/mariadb-10.11-global-status.tsv");
pub(super) const VARIABLES: &str = include_str!("../testdata/mariadb-10.11-global-variables.tsv");
pub(super) const SLAVES: &str = include_str!("../testdata/mariadb-10.11-all-slaves-status.txt");
pub(super) const SLAVES_SQL_STOPPED: &str =
    include_str!("../testdata/mariadb-10.11-all-slaves-status-sql-stopped.txt");
pub(super) const INNODB_METRICS: &str =
    include_str!("../testdata/mariadb-10.11-innodb-metrics.tsv");
pub(super) const INNODB_CMP: &str = include_str!("../testdata/mariadb-10.11-innodb-cmp.tsv");
pub(super) const INNODB_CMPMEM: &str = include_str!("../testdata/mariadb-10.11-innodb-cmpmem.tsv");
pub(super) const PROCESSLIST: &str = include_str!("../testdata/mariadb-10.11-processlist.tsv");
pub(super) const EVENTS_STATEMENTS: &str =
    include_str!("../testdata/mariadb-10.11-events-statements.tsv");
pub(super) const TABLES: &str = include_str!("../testdata/mariadb-10.11-tables.tsv");
pub(super) const MYSQL8_REPLICA: &str =
    include_str!("../testdata/mysql-8.0-show-replica-status.txt");
pub(super) const MYSQL57_SLAVE: &str = include_str!("../testdata/mysql-5.7-show-slave-status.txt");

// --- fixture parsers -----------------------------------------------------------------------

/// One `mariadb -B` field: `NULL` is NULL, and `\t`, `\n`, `\\`, `\0` are unescaped.
fn batch_field(raw: &str) -> Option<String> {
    if raw == "NULL" {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
}

/// `mariadb -B -N` output of `SHOW GLOBAL STATUS|VARIABLES`.
pub(super) fn name_value_tsv(text: &str) -> Rows {
    Rows {
        columns: vec!["Variable_name".into(), "Value".into()],
        rows: data_lines(text)
            .map(|line| {
                let (name, value) = line.split_once('\t').unwrap_or((line, ""));
                vec![batch_field(name), batch_field(value)]
            })
            .collect(),
        ..Rows::default()
    }
}

/// `mariadb -B` output with its header row.
pub(super) fn header_tsv(text: &str) -> Rows {
    let mut lines = data_lines(text);
    let columns = lines
        .next()
        .expect("header row")
        .split('\t')
        .map(str::to_owned)
        .collect();
    Rows {
        columns,
        rows: lines
            .map(|line| line.split('\t').map(batch_field).collect())
            .collect(),
        ..Rows::default()
    }
}

/// `\G` vertical output: `*** N. row ***` starts a row, `Name: value` a field (`NULL` is NULL),
/// and a line that is not `Identifier:` continues the previous value (multi-line GTID sets).
pub(super) fn vertical(text: &str) -> Rows {
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut current: Vec<(String, Option<String>)> = Vec::new();
    let flush = |current: &mut Vec<(String, Option<String>)>,
                 columns: &mut Vec<String>,
                 rows: &mut Vec<Vec<Option<String>>>| {
        if current.is_empty() {
            return;
        }
        if columns.is_empty() {
            *columns = current.iter().map(|(n, _)| n.clone()).collect();
        }
        rows.push(current.drain(..).map(|(_, v)| v).collect());
    };
    for line in data_lines(text) {
        if line.starts_with("***") {
            flush(&mut current, &mut columns, &mut rows);
            continue;
        }
        let field = line.trim_start().split_once(':').filter(|(name, rest)| {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && (rest.is_empty() || rest.starts_with(' '))
        });
        match field {
            Some((name, rest)) => {
                let value = rest.strip_prefix(' ').unwrap_or(rest).trim_end();
                let value = (value != "NULL").then(|| value.to_owned());
                current.push((name.to_owned(), value));
            }
            None => {
                let (_, last) = current.last_mut().expect("continuation after a field");
                let last = last.get_or_insert_with(String::new);
                last.push('\n');
                last.push_str(line.trim_end());
            }
        }
    }
    flush(&mut current, &mut columns, &mut rows);
    Rows {
        columns,
        rows,
        ..Rows::default()
    }
}

// --- helpers -------------------------------------------------------------------------------

pub(super) fn settings() -> MysqlSettings {
    MysqlSettings::new(
        Address::Tcp {
            host: "127.0.0.1".into(),
            port: 3306,
        },
        "exporter",
    )
}

pub(super) fn server(flavor: Flavor, version: (u32, u32, u32)) -> ServerInfo {
    ServerInfo { flavor, version }
}

pub(super) fn mariadb() -> ServerInfo {
    server(Flavor::MariaDb, (10, 11, 19))
}

pub(super) fn run(scraper: Scraper, rows: &Rows) -> Vec<MetricFamily> {
    run_with(scraper, rows, &settings())
}

pub(super) fn run_with(
    scraper: Scraper,
    rows: &Rows,
    settings: &MysqlSettings,
) -> Vec<MetricFamily> {
    let mut out = Families::new();
    families(scraper, rows, &mariadb(), settings, &mut out);
    out.finish()
}

pub(super) fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

pub(super) fn has(families: &[MetricFamily], name: &str) -> bool {
    families.iter().any(|f| f.name() == name)
}

pub(super) fn kind(families: &[MetricFamily], name: &str) -> MetricType {
    family(families, name).get_field_type()
}

/// The value of the sample of `name` whose labels include all of `labels`.
pub(super) fn value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = family(families, name);
    family
        .get_metric()
        .iter()
        .find(|m| {
            labels.iter().all(|(n, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *n && l.value() == *v)
            })
        })
        .map(|m| match family.get_field_type() {
            MetricType::COUNTER => m.get_counter().get_value(),
            _ => m.get_gauge().get_value(),
        })
}

pub(super) fn label_names(families: &[MetricFamily], name: &str) -> Vec<String> {
    let names: BTreeSet<String> = family(families, name)
        .get_metric()
        .iter()
        .flat_map(|m| m.get_label().iter().map(|l| l.name().to_owned()))
        .collect();
    names.into_iter().collect()
}

pub(super) fn label_values(families: &[MetricFamily], name: &str, label: &str) -> BTreeSet<String> {
    family(families, name)
        .get_metric()
        .iter()
        .flat_map(|m| m.get_label().iter())
        .filter(|l| l.name() == label)
        .map(|l| l.value().to_owned())
        .collect()
}

pub(super) fn fixture_value<'a>(rows: &'a Rows, name: &str) -> &'a str {
    rows.pairs()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("fixture has no {name}"))
}

pub(super) fn all_valid(families: &[MetricFamily]) {
    assert!(!families.is_empty());
    for f in families {
        assert_eq!(validate(f), Ok(()), "{}", f.name());
        assert_ne!(f.get_field_type(), MetricType::UNTYPED, "{}", f.name());
    }
}
