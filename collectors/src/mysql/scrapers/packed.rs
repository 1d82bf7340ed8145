//! Status and variables in one row: `SHOW GLOBAL STATUS` and `SHOW GLOBAL VARIABLES` send about 600
//! rows each, and the driver's per-row work (a packet, a row object, a stream step) was a third of a
//! MySQL scrape's CPU. On MariaDB the same pairs are read from `information_schema` as one
//! `GROUP_CONCAT` value, which costs the server about 0.1 ms more per statement and the exporter
//! about 0.5 ms less per scrape (measured; see the README's Performance section).
//!
//! Each pair is packed as `<bytes of value>:<NAME>:<value>`, back to back. Names are
//! `[A-Z0-9_]` (never `:`), and the value's length is given, so a value may hold anything (`:`, a
//! newline, `init_connect` SQL). `LENGTH` counts bytes of the column's utf8mb3 text, which the
//! connection's utf8mb4 sends unchanged. A pair whose value is NULL is left out by `CONCAT`, as
//! [`Rows::pairs`] leaves it out of `SHOW`'s rows.
//!
//! MySQL keeps `SHOW`: its `information_schema` tables are gone in 8.0 and
//! `performance_schema.global_status` depends on `performance_schema` being on; the tests have no
//! MySQL server to prove another path on.

use super::super::{Flavor, Packed, Rows, ServerInfo};

// The packed values need about 20 KiB each; MariaDB's `group_concat_max_len` is 1 MiB by default
// (since 10.2.4). The session keeps the server's value: a server set below what is needed cuts the
// value, which then does not unpack, so a shortfall is an error naming the variable, not missing
// samples.

/// The statement for the pairs of `information_schema.<table>` on `server`: packed on MariaDB,
/// `show` (the same pairs as rows) on MySQL and Percona.
pub(super) fn pairs_statement(server: &ServerInfo, table: &str, show: &str) -> String {
    match server.flavor {
        Flavor::MariaDb => statement(table),
        Flavor::MySql | Flavor::Percona => show.to_owned(),
    }
}

/// The statement that packs `information_schema.<table>` (`GLOBAL_STATUS` or `GLOBAL_VARIABLES`).
pub(super) fn statement(table: &str) -> String {
    format!(
        "SELECT GROUP_CONCAT(LENGTH(VARIABLE_VALUE), ':', VARIABLE_NAME, ':', VARIABLE_VALUE \
         SEPARATOR '') FROM information_schema.{table}"
    )
}

/// The pairs of a packed reply as `SHOW`'s two columns, names in lower case as `SHOW GLOBAL
/// VARIABLES` writes them (status names are normalized to lower case anyway). A reply that is not a
/// packed one is returned as it came, so `SHOW`'s rows pass through.
pub(super) fn unpack(mut rows: Rows) -> Result<Rows, String> {
    if rows.columns.len() != 1 {
        return Ok(rows);
    }
    let mut text = match rows.rows.as_mut_slice() {
        [] => String::new(),
        [row] => match row.as_mut_slice() {
            [value] => value.take().unwrap_or_default(),
            _ => return Err("expected one packed value".into()),
        },
        _ => return Err("expected one packed value".into()),
    };
    let bytes = text.as_bytes();
    let mut pairs = Vec::with_capacity(text.len() / 24);
    let mut at = 0;
    while at < bytes.len() {
        let broken = || format!("packed reply does not parse at byte {at} of {}", text.len());
        // `<digits>:`, by hand: this loop runs for every status variable and every variable.
        let mut i = at;
        let mut len: usize = 0;
        while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            len = len
                .checked_mul(10)
                .and_then(|l| l.checked_add(usize::from(b - b'0')))
                .ok_or_else(broken)?;
            i += 1;
        }
        if i == at || bytes.get(i) != Some(&b':') {
            return Err(broken());
        }
        let name_start = i + 1;
        let name_end = bytes
            .get(name_start..)
            .and_then(|rest| rest.iter().position(|&b| b == b':'))
            .map(|len| name_start + len)
            .ok_or_else(broken)?;
        let name = &bytes[name_start..name_end];
        if name.is_empty()
            || !name.iter().fold(true, |ok, &b| {
                ok & (b.is_ascii_alphanumeric() | (b == b'_'))
            })
        {
            return Err(broken());
        }
        let value_start = name_end + 1;
        let value_end = value_start.saturating_add(len);
        if value_end > bytes.len() {
            return Err(format!(
                "packed reply ends inside the value of {}: it was cut at the session's \
                 group_concat_max_len",
                &text[name_start..name_end]
            ));
        }
        if !text.is_char_boundary(value_end) {
            return Err(broken());
        }
        pairs.push((name_start..name_end, value_start..value_end));
        at = value_end;
    }
    for (name, _) in &pairs {
        text[name.clone()].make_ascii_lowercase();
    }
    rows.columns = vec!["Variable_name".into(), "Value".into()];
    rows.rows.clear();
    rows.packed = Packed { text, pairs };
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::test_support::{STATUS, VARIABLES, name_value_tsv};
    use super::*;

    /// What the server sends for `rows`: the packing done the statement's way.
    fn pack(rows: &Rows) -> Rows {
        let mut text = String::new();
        for (name, value) in rows.pairs() {
            text.push_str(&format!("{}:{}:{value}", value.len(), name.to_uppercase()));
        }
        Rows {
            columns: vec!["GROUP_CONCAT(...)".into()],
            rows: vec![vec![Some(text)]],
            ..Rows::default()
        }
    }

    fn lower(mut rows: Rows) -> Rows {
        for row in &mut rows.rows {
            if let Some(Some(name)) = row.first_mut() {
                *name = name.to_ascii_lowercase();
            }
        }
        rows.rows
            .retain(|r| matches!(r.as_slice(), [Some(_), Some(_), ..]));
        rows
    }

    /// MariaDB 10.11's reply to [`statement`] for `GLOBAL_VARIABLES` (with `init_connect` set to
    /// SQL holding `:` and a newline) and for `GLOBAL_STATUS`, each captured with `mariadb -N -B -r`
    /// right after `SHOW GLOBAL VARIABLES|STATUS` (`mariadb -N -B`).
    const PACKED_VARIABLES: &str =
        include_str!("../testdata/mariadb-10.11-global-variables-packed.txt");
    const SHOW_VARIABLES: &str =
        include_str!("../testdata/mariadb-10.11-global-variables-show.tsv");
    const PACKED_STATUS: &str = include_str!("../testdata/mariadb-10.11-global-status-packed.txt");
    const SHOW_STATUS: &str = include_str!("../testdata/mariadb-10.11-global-status-show.tsv");

    fn one(text: &str) -> Rows {
        Rows {
            columns: vec!["GROUP_CONCAT(...)".into()],
            rows: vec![vec![Some(text.into())]],
            ..Rows::default()
        }
    }

    #[test]
    fn captured_variables_unpack_into_what_show_sent() {
        let unpacked = unpack(one(PACKED_VARIABLES)).unwrap();
        let mut got: Vec<_> = unpacked.pairs().collect();
        let show = lower(name_value_tsv(SHOW_VARIABLES));
        let mut expected: Vec<_> = show.pairs().collect();
        assert!(expected.len() > 600, "{}", expected.len());
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
        assert!(got.contains(&("init_connect", "SET @a='x:y';\nSET @b=2")));
    }

    #[test]
    fn captured_status_unpacks_into_the_names_show_sent() {
        // Counters moved between the two statements; the names did not. `Max_memory_used` is NULL
        // in `SHOW` and the text `NULL` in `information_schema`: no number either way.
        let names = |rows: &Rows| {
            let mut names: Vec<String> = rows
                .pairs()
                .filter(|(_, v)| *v != "NULL")
                .map(|(n, _)| n.to_owned())
                .collect();
            names.sort_unstable();
            names
        };
        let unpacked = unpack(one(PACKED_STATUS)).unwrap();
        assert_eq!(names(&unpacked), names(&lower(name_value_tsv(SHOW_STATUS))));
        assert!(unpacked.pairs().count() > 500);
    }

    #[test]
    fn the_fixtures_round_trip() {
        for fixture in [STATUS, VARIABLES] {
            let show = name_value_tsv(fixture);
            let unpacked = unpack(pack(&show)).unwrap();
            let expected = lower(show);
            assert!(unpacked.pairs().eq(expected.pairs()));
        }
    }

    #[test]
    fn show_rows_pass_through_and_an_empty_table_is_no_pairs() {
        let show = name_value_tsv(STATUS);
        assert_eq!(unpack(show.clone()).unwrap(), show);
        let null = Rows {
            columns: vec!["g".into()],
            rows: vec![vec![None]],
            ..Rows::default()
        };
        assert_eq!(unpack(null).unwrap().pairs().count(), 0);
    }

    #[test]
    fn a_cut_or_garbled_reply_is_an_error() {
        let cut = unpack(one("3:A:1232:B:4")).unwrap_err();
        assert!(cut.contains("group_concat_max_len"), "{cut}");
        for garbled in ["x:A:1", "1:A", "1:A-B:1", "1::1", "-1:A:1", "+1:A:1"] {
            assert!(unpack(one(garbled)).is_err(), "{garbled}");
        }
    }

    proptest! {
        /// Any values, `:` and newlines and multi-byte text included, come back as they went.
        #[test]
        fn any_pairs_round_trip(pairs in proptest::collection::vec(("[a-z0-9_]{1,20}", any::<String>()), 0..20)) {
            let show = Rows {
                columns: vec!["Variable_name".into(), "Value".into()],
                rows: pairs.iter().map(|(n, v)| vec![Some(n.clone()), Some(v.clone())]).collect(),
                ..Rows::default()
            };
            let unpacked = unpack(pack(&show)).unwrap();
            prop_assert_eq!(unpacked.pairs().collect::<Vec<_>>(), show.pairs().collect::<Vec<_>>());
        }

        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = unpack(Rows { columns: vec!["g".into()], rows: vec![vec![Some(text)]], ..Rows::default() });
        }
    }
}
