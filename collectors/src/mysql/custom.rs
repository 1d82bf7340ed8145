//! Custom queries in sql_exporter's model.
//!
//! STUB: to be written.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Rows;
use crate::{Families, SettingsError};

/// Type of a custom metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that only goes up (resets on server restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
}

/// One metric made from a custom query's rows.
#[derive(Debug, Clone)]
pub struct QueryMetric {
    /// Metric name.
    pub metric: String,
    /// Counter or gauge.
    pub kind: MetricType,
    /// HELP text.
    pub help: String,
    /// Columns whose values become labels of the same name.
    pub key_labels: Vec<String>,
    /// Columns holding values; more than one needs `value_label`.
    pub values: Vec<String>,
    /// Label that receives the name of the value column.
    pub value_label: Option<String>,
    /// Fixed labels added to every sample.
    pub static_labels: BTreeMap<String, String>,
}

/// One custom query and the metrics made from its rows.
#[derive(Debug, Clone)]
pub struct QuerySettings {
    /// Name in `mysql_exporter_collector_success{collector="query.<name>"}`.
    pub name: String,
    /// The SQL, run as is over the text protocol.
    pub query: String,
    /// Cap on this query's run time, within the scrape deadline.
    pub timeout: Option<Duration>,
    /// Run at most this often; scrapes in between serve the last result.
    pub min_interval: Duration,
    /// Metrics made from the rows.
    pub metrics: Vec<QueryMetric>,
}

impl QuerySettings {
    /// Check the definition; `index` is the query's position, for the error's field path.
    pub(crate) fn validate(&self, _index: usize) -> Result<(), SettingsError> {
        Ok(())
    }
}

/// Add the metrics of `query` made from `rows` to `out`.
pub(crate) fn families(
    _query: &QuerySettings,
    _rows: &Rows,
    _out: &mut Families,
) -> Result<(), String> {
    Ok(())
}
