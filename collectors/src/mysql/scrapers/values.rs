//! The value and name rules every sub-collector shares: mysqld_exporter's `parseStatus` (numbers,
//! words, dates, log file names) and `validPrometheusName`, counter samples that cannot poison a
//! family, and SQL string quoting for the statements that embed configured names.

use crate::Families;

/// Append `value` as a single-quoted SQL string literal.
///
/// Quotes are doubled and backslashes escaped, which cannot be broken out of under either setting of
/// `NO_BACKSLASH_ESCAPES` (with it, `\\` merely stays two characters, so the schema does not match).
/// Schema names come from the config, but a typo must not become a statement.
pub(super) fn push_sql_string(sql: &mut String, value: &str) {
    sql.push('\'');
    for c in value.chars() {
        match c {
            '\'' => sql.push_str("''"),
            '\\' => sql.push_str("\\\\"),
            c => sql.push(c),
        }
    }
    sql.push('\'');
}

/// Append `raw` with every character outside `[a-zA-Z0-9_]` replaced by `_` (one per character, as
/// mysqld_exporter's regex replaces runes), lowercased when `lowercase`.
///
/// `INNODB_METRICS` names keep their case (`buffer_LRU_batch_flush_total_pages`) because
/// mysqld_exporter does not lowercase them and dashboards use its names.
pub(super) fn push_normalized(buf: &mut String, raw: &str, lowercase: bool) {
    // Names packed from `information_schema` arrive lower-cased and valid: copied whole.
    if raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        buf.push_str(raw);
        return;
    }
    buf.reserve(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            buf.push(if lowercase { c.to_ascii_lowercase() } else { c });
        } else {
            buf.push('_');
        }
    }
}

/// A status or variable value as a number, or `None` for text that carries no number.
///
/// mysqld_exporter's rules, in the order that keeps them from shadowing each other: plain numbers;
/// the words `yes`/`on`/`primary` (1) and `no`/`off`/`disabled`/`connecting`/`non-primary`/
/// `disconnected` (0), ignoring case; certificate and event dates as Unix seconds; binary and relay
/// log names as their sequence number. `inf`/`nan` are refused: a counter must stay finite.
pub(crate) fn parse_value(raw: &str) -> Option<f64> {
    let first = *raw.as_bytes().first()?;
    if (first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.'))
        && let Ok(v) = raw.parse::<f64>()
    {
        return v.is_finite().then_some(v);
    }
    const ONE: [&str; 3] = ["yes", "on", "primary"];
    const ZERO: [&str; 6] = [
        "no",
        "off",
        "disabled",
        "connecting",
        "non-primary",
        "disconnected",
    ];
    if ONE.iter().any(|w| raw.eq_ignore_ascii_case(w)) {
        return Some(1.0);
    }
    if ZERO.iter().any(|w| raw.eq_ignore_ascii_case(w)) {
        return Some(0.0);
    }
    parse_date(raw).or_else(|| parse_log_file(raw))
}

/// The sequence number of a binary or relay log name (`mysql-bin.000123` → 123).
///
/// The server pads the number to at least six digits, and the base name has a letter and no spaces or
/// commas; requiring both keeps version numbers (`10.11.6`), addresses (`10.0.0.12`) and lists
/// (`TLSv1.2,TLSv1.3`) out, which a bare "digits after the last dot" rule would turn into nonsense.
fn parse_log_file(raw: &str) -> Option<f64> {
    let (base, number) = raw.rsplit_once('.')?;
    let plausible = number.len() >= 6
        && number.bytes().all(|b| b.is_ascii_digit())
        && base.bytes().any(|b| b.is_ascii_alphabetic())
        && !base.bytes().any(|b| b.is_ascii_whitespace() || b == b',');
    if !plausible {
        return None;
    }
    number.parse::<f64>().ok()
}

/// Unix seconds of `Sep  5 12:00:00 2027 GMT` (OpenSSL's `%b %e %H:%M:%S %Y %Z`, as in
/// `Ssl_server_not_after`) or `2027-09-05 12:00:00[.ffffff]` (MySQL's DATETIME text, read as UTC as
/// Go's `time.Parse` does in mysqld_exporter). Other zones than GMT/UTC are refused rather than
/// guessed.
fn parse_date(raw: &str) -> Option<f64> {
    if raw.as_bytes().first()?.is_ascii_digit() {
        parse_datetime(raw)
    } else {
        parse_openssl_date(raw)
    }
}

fn parse_datetime(raw: &str) -> Option<f64> {
    let (date, time) = raw.split_once(' ')?;
    let mut parts = date.split('-');
    let year = fixed_digits(parts.next()?, 4)?;
    let month = fixed_digits(parts.next()?, 2)?;
    let day = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() {
        return None;
    }
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            (hms, format!("0.{f}").parse::<f64>().ok()?)
        }
        Some(_) => return None,
        None => (time, 0.0),
    };
    let seconds = clock_seconds(hms, 2)?;
    unix_seconds(year, month, day, seconds).map(|s| s + fraction)
}

fn parse_openssl_date(raw: &str) -> Option<f64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mut tokens = raw.split_ascii_whitespace();
    let month_name = tokens.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))?;
    let day = tokens.next()?;
    if day.is_empty() || day.len() > 2 {
        return None;
    }
    let day = fixed_digits(day, day.len())?;
    let seconds = clock_seconds(tokens.next()?, 1)?;
    let year = fixed_digits(tokens.next()?, 4)?;
    let zone = tokens.next()?;
    if !(zone == "GMT" || zone == "UTC") || tokens.next().is_some() {
        return None;
    }
    let month = u32::try_from(month + 1).ok()?;
    unix_seconds(year, month, day, seconds)
}

/// `HH:MM:SS` as seconds of the day; the hour may have `min_hour_digits` to 2 digits.
fn clock_seconds(text: &str, min_hour_digits: usize) -> Option<u32> {
    let mut parts = text.split(':');
    let hour = parts.next()?;
    if hour.len() < min_hour_digits || hour.len() > 2 {
        return None;
    }
    let hour = fixed_digits(hour, hour.len())?;
    let minute = fixed_digits(parts.next()?, 2)?;
    let second = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(hour * 3600 + minute * 60 + second)
}

/// `text` as a number when it is exactly `len` ASCII digits.
fn fixed_digits(text: &str, len: usize) -> Option<u32> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Seconds since 1970-01-01T00:00:00Z of a valid proleptic Gregorian date and time of day.
fn unix_seconds(year: u32, month: u32, day: u32, seconds_of_day: u32) -> Option<f64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    // Days from the civil date, counting years from March so the leap day ends the year.
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    // |days * 86400| stays far below 2^53, so the conversion is exact.
    Some((days * 86_400 + i64::from(seconds_of_day)) as f64)
}

/// Add a counter sample, or drop it (logged) when the value cannot be a counter. A negative value
/// would poison the whole family, costing every other label value of it for this scrape.
pub(super) fn counter_sample(
    out: &mut Families,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    value: f64,
) {
    if value >= 0.0 && value.is_finite() {
        out.counter(name, help).set(labels, value);
    } else {
        tracing::debug!(family = name, value, "dropping a negative counter sample");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_numbers_dates_and_log_files() {
        let cases: [(&str, Option<f64>); 30] = [
            ("0", Some(0.0)),
            ("151", Some(151.0)),
            ("-3", Some(-3.0)),
            ("0.000227664", Some(0.000_227_664)),
            ("6.03708e-05", Some(6.037_08e-5)),
            ("18446744073709551615", Some(18_446_744_073_709_551_615.0)),
            ("Yes", Some(1.0)),
            ("ON", Some(1.0)),
            ("on", Some(1.0)),
            ("Primary", Some(1.0)),
            ("No", Some(0.0)),
            ("OFF", Some(0.0)),
            ("DISABLED", Some(0.0)),
            ("Connecting", Some(0.0)),
            ("non-Primary", Some(0.0)),
            ("Disconnected", Some(0.0)),
            ("Sep  5 12:00:00 2027 GMT", Some(1_820_145_600.0)),
            ("Jan 01 00:00:00 1970 UTC", Some(0.0)),
            ("Feb 29 23:59:59 2024 GMT", Some(1_709_251_199.0)),
            ("2027-09-05 12:00:00", Some(1_820_145_600.0)),
            ("2000-03-01 00:00:00.5", Some(951_868_800.5)),
            ("mysql-bin.000123", Some(123.0)),
            ("./relay-bin.000002", Some(2.0)),
            ("master-bin.1000001", Some(1_000_001.0)),
            ("", None),
            ("inf", None),
            ("NaN", None),
            ("AUTH_MASTER", None),
            ("TLSv1.2,TLSv1.3", None),
            ("10.11.6", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_value(raw), expected, "{raw:?}");
        }
        for garbage in [
            "Sep 31 12:00:00 2027 GMT",
            "Sep  5 12:00:00 2027 PST",
            "Sep  5 24:00:00 2027 GMT",
            "2027-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2027-9-5 12:00:00",
            "Buffer pool(s) load completed at 261125 16:19:52",
            "0-1-5",
            "73f86016-978b-11ee-ade5-8d2a2a562feb:1-3",
            "127.0.0.1",
            "db.1",
            "slave-relay-bin.2",
            "mysql.slave_master_info",
            "/var/lib/mysql/master.info",
            "INVALID",
        ] {
            assert_eq!(parse_value(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn names_are_normalized_like_mysqld_exporter() {
        let mut buf = String::new();
        push_normalized(
            &mut buf,
            "validate_password.dictionary_file_words_count",
            true,
        );
        assert_eq!(buf, "validate_password_dictionary_file_words_count");
        buf.clear();
        push_normalized(&mut buf, "Buffer_LRU-é", false);
        assert_eq!(buf, "Buffer_LRU__");
    }

    mod props {
        use std::time::{Duration, UNIX_EPOCH};

        use proptest::prelude::*;

        use super::super::*;

        /// The text of a quoted SQL string literal as the server reads it (backslash escapes on).
        fn unquote(sql: &str) -> Option<String> {
            let inner = sql.strip_prefix('\'')?.strip_suffix('\'')?;
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\'' => (chars.next() == Some('\'')).then(|| out.push('\''))?,
                    '\\' => out.push(chars.next()?),
                    c => out.push(c),
                }
            }
            Some(out)
        }

        proptest! {
            #[test]
            fn parse_value_never_panics_and_is_finite(raw in any::<String>()) {
                prop_assert!(parse_value(&raw).is_none_or(f64::is_finite));
            }

            #[test]
            fn numbers_parse_back(v in any::<f64>().prop_filter("finite", |v| v.is_finite()), i in any::<i64>(), u in any::<u64>()) {
                prop_assert_eq!(parse_value(&v.to_string()), Some(v));
                prop_assert_eq!(parse_value(&format!("{v:e}")), Some(v));
                prop_assert_eq!(parse_value(&i.to_string()), Some(i as f64));
                prop_assert_eq!(parse_value(&u.to_string()), Some(u as f64));
            }

            /// Both date forms, rendered from a time by an independent formatter (httpdate), read
            /// back as that time.
            #[test]
            fn dates_parse_back(seconds in 0u64..253_402_300_800) {
                let http = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds));
                // `Sun, 06 Nov 1994 08:49:37 GMT`
                let parts: Vec<&str> = http.split([' ', ',']).filter(|p| !p.is_empty()).collect();
                let [_, day, month, year, clock, _] = parts[..] else {
                    return Err(TestCaseError::fail(http));
                };
                const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
                let number = MONTHS.iter().position(|m| *m == month).map_or(0, |m| m + 1);
                let expected = Some(seconds as f64);
                prop_assert_eq!(parse_value(&format!("{year}-{number:02}-{day} {clock}")), expected);
                prop_assert_eq!(parse_value(&format!("{year}-{number:02}-{day} {clock}.5")), Some(seconds as f64 + 0.5));
                let padded = format!("{:>2}", day.trim_start_matches('0'));
                prop_assert_eq!(parse_value(&format!("{month} {padded} {clock} {year} GMT")), expected);
            }

            #[test]
            fn log_file_names_give_their_number(base in "[a-z][a-z./_-]{0,15}", n in 0u64..10_000_000_000) {
                prop_assert_eq!(parse_value(&format!("{base}.{n:06}")), Some(n as f64));
            }

            /// A quoted name reads back as the name, so it cannot end the literal early.
            #[test]
            fn sql_strings_quote_anything(value in any::<String>()) {
                let mut sql = String::new();
                push_sql_string(&mut sql, &value);
                prop_assert_eq!(unquote(&sql), Some(value));
            }

            #[test]
            fn normalized_names_are_valid_and_as_long(raw in any::<String>(), lowercase in any::<bool>()) {
                let mut buf = String::new();
                push_normalized(&mut buf, &raw, lowercase);
                prop_assert_eq!(buf.chars().count(), raw.chars().count());
                prop_assert!(buf.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                prop_assert!(!lowercase || !buf.bytes().any(|b| b.is_ascii_uppercase()));
            }
        }
    }
}
