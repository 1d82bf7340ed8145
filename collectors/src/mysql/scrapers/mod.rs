//! Each sub-collector's statement and the families it makes from the rows: one file per
//! sub-collector, named after mysqld_exporter's collector files, each implementing [`SubCollector`];
//! `values` holds the value, date and name rules they share.
//!
//! # Compatibility
//! Names and label names follow mysqld_exporter (v0.15+), because dashboards and the mixin are built on
//! them; what we change is typing and the statement choice:
//! - Nothing is untyped. mysqld_exporter leaves `SHOW GLOBAL STATUS` leftovers and every `SHOW SLAVE
//!   STATUS` column untyped; we type status variables from a curated table (unknown ones are gauges, so
//!   a `rate()` never runs over something that goes down) and replication columns as gauges.
//! - One statement per sub-collector, picked from the flavor and version learned at connect, instead of
//!   mysqld_exporter's cascade of failing `SHOW ... STATUS` variants on every scrape.
//! - Values follow mysqld_exporter's `parseStatus` rules, plus what it meant to do and does not: binary
//!   log names become their sequence number (upstream's regex returns the whole name, so the value is
//!   dropped).
//!
//! # Cost
//! A scrape budget of a fifth of mysqld_exporter's latency leaves no room for regex engines or per-row
//! maps: names are matched with plain string comparisons, normalized into reused buffers, and status
//! types are a `match` the compiler turns into a jump on length and bytes.

mod global_status;
mod global_variables;
mod info_schema_innodb_cmp;
mod info_schema_innodb_cmpmem;
mod info_schema_innodb_metrics;
mod info_schema_processlist;
mod info_schema_tables;
pub(crate) mod packed;
mod perf_schema_events_statements;
mod slave_status;
#[cfg(test)]
mod test_support;
mod values;

use super::{MysqlSettings, Rows, Scraper, ServerInfo};
use crate::Families;

/// What every sub-collector provides, so a scrape runs them all the same way: one statement, then
/// families from its rows. The statement is chosen per connection because flavor and version decide
/// which statement (if any) a server understands.
pub(crate) trait SubCollector: Sync {
    /// The statement to run on `server`, or `None` when this server has nothing to offer (the
    /// sub-collector is then skipped: no families, success 1).
    ///
    /// `own` are the ids of this target's open connections, which `info_schema.processlist` leaves out
    /// (mysqld_exporter leaves out the one connection it runs on; ours may have two).
    fn statement(
        &self,
        server: &ServerInfo,
        settings: &MysqlSettings,
        own: &[u64],
    ) -> Option<String>;

    /// The statement's reply in the shape [`SubCollector::families`] reads, or why it is not one:
    /// for statements whose reply is packed (see `packed`). Most pass the rows through.
    fn rows(&self, fetched: Rows) -> Result<Rows, String> {
        Ok(fetched)
    }

    /// Add the families made from `rows`, the result of [`SubCollector::statement`], to `out`.
    fn families(
        &self,
        rows: &Rows,
        server: &ServerInfo,
        settings: &MysqlSettings,
        out: &mut Families,
    );
}

/// The one place a [`Scraper`] meets its implementation, so adding a sub-collector is one file and
/// one line here.
fn sub_collector(scraper: Scraper) -> &'static dyn SubCollector {
    match scraper {
        Scraper::GlobalStatus => &global_status::GlobalStatus,
        Scraper::GlobalVariables => &global_variables::GlobalVariables,
        Scraper::SlaveStatus => &slave_status::SlaveStatus,
        Scraper::InnodbCmp => &info_schema_innodb_cmp::InnodbCmp,
        Scraper::InnodbCmpmem => &info_schema_innodb_cmpmem::InnodbCmpmem,
        Scraper::Processlist => &info_schema_processlist::Processlist,
        Scraper::InnodbMetrics => &info_schema_innodb_metrics::InnodbMetrics,
        Scraper::EventsStatements => &perf_schema_events_statements::EventsStatements,
        Scraper::Tables => &info_schema_tables::Tables,
    }
}

/// The statement `scraper` runs on `server`, or `None` when this server has nothing to offer for it
/// (the sub-collector is then skipped: no families, success 1).
///
/// `own` are the ids of this target's open connections, which `info_schema.processlist` leaves out
/// (mysqld_exporter leaves out the one connection it runs on; ours may have two).
pub(crate) fn statement(
    scraper: Scraper,
    server: &ServerInfo,
    settings: &MysqlSettings,
    own: &[u64],
) -> Option<String> {
    sub_collector(scraper).statement(server, settings, own)
}

/// The reply of `scraper`'s statement as the rows its families are made from.
pub(crate) fn rows(scraper: Scraper, fetched: Rows) -> Result<Rows, String> {
    sub_collector(scraper).rows(fetched)
}

/// Add the families of `scraper` made from `rows` to `out`.
pub(crate) fn families(
    scraper: Scraper,
    rows: &Rows,
    server: &ServerInfo,
    settings: &MysqlSettings,
    out: &mut Families,
) {
    sub_collector(scraper).families(rows, server, settings, out);
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    /// Every family from every fixture passes the engine's validator, and no family name is produced
    /// by two sub-collectors.
    #[test]
    fn all_fixture_families_validate() {
        let cases = [
            (Scraper::GlobalStatus, name_value_tsv(STATUS)),
            (Scraper::GlobalVariables, name_value_tsv(VARIABLES)),
            (Scraper::SlaveStatus, vertical(SLAVES)),
            (Scraper::SlaveStatus, vertical(MYSQL8_REPLICA)),
            (Scraper::Processlist, header_tsv(PROCESSLIST)),
            (Scraper::InnodbMetrics, header_tsv(INNODB_METRICS)),
            (Scraper::InnodbCmp, header_tsv(INNODB_CMP)),
            (Scraper::InnodbCmpmem, header_tsv(INNODB_CMPMEM)),
            (Scraper::EventsStatements, header_tsv(EVENTS_STATEMENTS)),
            (Scraper::Tables, header_tsv(TABLES)),
        ];
        let mut out = Families::new();
        let mut expected = 0;
        for (scraper, rows) in &cases {
            let alone = run(*scraper, rows);
            expected += alone.len();
            all_valid(&alone);
            if *scraper == Scraper::SlaveStatus && rows.columns[0] == "Replica_IO_State" {
                continue;
            }
            families(*scraper, rows, &mariadb(), &settings(), &mut out);
        }
        let together = out.finish();
        all_valid(&together);
        let mysql8 = run(Scraper::SlaveStatus, &vertical(MYSQL8_REPLICA)).len();
        assert_eq!(together.len(), expected - mysql8);
    }
}
