//! Each sub-collector's statement and the families it makes from the rows.
//!
//! STUB: to be written (statement choice per flavor/version, mysqld_exporter names and value rules).

use super::{MysqlSettings, Rows, Scraper, ServerInfo};
use crate::Families;

/// The statement `scraper` runs on `server`, or `None` when this server has nothing to offer for it
/// (the sub-collector is then skipped: no families, success 1).
pub(crate) fn statement(
    _scraper: Scraper,
    _server: &ServerInfo,
    _settings: &MysqlSettings,
) -> Option<String> {
    None
}

/// Add the families of `scraper` made from `rows` to `out`.
pub(crate) fn families(
    _scraper: Scraper,
    _rows: &Rows,
    _server: &ServerInfo,
    _settings: &MysqlSettings,
    _out: &mut Families,
) {
}
