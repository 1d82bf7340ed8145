//! Reading INFO text: `# Section` headers and `key:value` lines into [`Info`], and the readers for
//! the values and keys that carry structure of their own (`db0:keys=1,expires=0`,
//! `slave0:ip=..,port=..`, `cmdstat_get:calls=..`, `master_1_host`, ...).
//!
//! This side knows the reply's syntax only, never a metric name: what becomes which family is
//! `families`' and `fields`' business. Everything here runs on text the server sent, so it never
//! panics and never fails: a line or part it cannot read is skipped.

/// An INFO reply: every `key:value` line with the section it appeared in, in order, borrowed from
/// the reply's text (a reply has a few hundred lines; three strings each were a tenth of a scrape).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Info<'a> {
    /// Section names, lowercased (`server`, `keyspace`, ...).
    sections: Vec<String>,
    /// `(index into sections, key, value)`.
    lines: Vec<(usize, &'a str, &'a str)>,
}

impl<'a> Info<'a> {
    /// Parse INFO text (`# Section` headers, `key:value` lines, CRLF or LF). Never panics; lines it
    /// cannot read are skipped.
    pub fn parse(text: &'a str) -> Self {
        let mut info = Info {
            sections: vec![String::new()],
            lines: Vec::new(),
        };
        // `lines` splits on LF and drops a CR before it; the trim also covers a lone trailing CR
        // and the padding some proxies add.
        for line in text.lines() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix('#') {
                info.sections.push(header.trim().to_ascii_lowercase());
                continue;
            }
            // Split at the first colon: values may contain colons (`executable`, IPv6 hosts).
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            info.lines
                .push((info.sections.len() - 1, key, value.trim()));
        }
        info
    }

    /// `(section, key, value)` of every line, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &'a str, &'a str)> {
        self.lines
            .iter()
            .map(|&(section, key, value)| (self.sections[section].as_str(), key, value))
    }

    /// Whether the reply had no `key:value` line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The value of `key` (first occurrence), if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.lines
            .iter()
            .find(|(_, k, _)| *k == key)
            .map(|&(_, _, v)| v)
    }
}

/// `a=1,b=2` into pairs, in order; parts without `=` are skipped.
pub(super) fn pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split(',').filter_map(|part| part.split_once('='))
}

/// The value of `name` in an `a=1,b=2` list, as a number.
pub(super) fn pair_value(raw: &str, name: &str) -> Option<f64> {
    pairs(raw)
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse::<f64>().ok())
}

/// The value of `name` in an `a=1,b=2` list, as text.
pub(super) fn pair_text<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    pairs(raw).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// `prefix` followed by decimal digits only (`db0`, `slave12`).
pub(super) fn numbered<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `master_<suffix>` or KeyDB's multi-master `master_<N>_<suffix>`.
pub(super) fn is_master_field(key: &str, suffix: &str) -> bool {
    let Some(rest) = key.strip_prefix("master_") else {
        return false;
    };
    if rest == suffix {
        return true;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && rest
            .get(digits..)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|r| r == suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sections_separators_and_junk() {
        let info = Info::parse(
            "# Server\r\nredis_version:7.0.15\r\nexecutable:/a:b\r\n\r\n#Stats\nno colon here\n:empty_key\n  padded : 1 \r\n# Keyspace\ndb0:keys=1,expires=0\n",
        );
        assert_eq!(
            info.fields().collect::<Vec<_>>(),
            [
                ("server", "redis_version", "7.0.15"),
                ("server", "executable", "/a:b"),
                ("stats", "padded", "1"),
                ("keyspace", "db0", "keys=1,expires=0"),
            ]
        );
        assert_eq!(info.get("executable"), Some("/a:b"));
        assert_eq!(info.get("missing"), None);
        assert!(Info::parse("").is_empty());
    }

    #[test]
    fn nested_values_and_numbered_keys() {
        let raw = "keys=10,expires=2,junk,avg_ttl=x,ip=::1";
        assert_eq!(
            pairs(raw).collect::<Vec<_>>(),
            [
                ("keys", "10"),
                ("expires", "2"),
                ("avg_ttl", "x"),
                ("ip", "::1")
            ]
        );
        assert_eq!(pair_value(raw, "keys"), Some(10.0));
        assert_eq!(pair_value(raw, "avg_ttl"), None);
        assert_eq!(pair_value(raw, "missing"), None);
        assert_eq!(pair_text(raw, "ip"), Some("::1"));
        assert_eq!(pair_text(raw, "junk"), None);

        assert_eq!(numbered("db12", "db"), Some("12"));
        assert_eq!(numbered("db", "db"), None);
        assert_eq!(numbered("dbx", "db"), None);
        assert_eq!(numbered("db1x", "db"), None);

        assert!(is_master_field("master_host", "host"));
        assert!(is_master_field("master_12_host", "host"));
        assert!(!is_master_field("master_x_host", "host"));
        assert!(!is_master_field("master_1host", "host"));
        assert!(!is_master_field("master_1_port", "host"));
        assert!(!is_master_field("slave_host", "host"));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;
        use crate::redis::info::families;
        use crate::redis::info::testing::{NOW, build};

        /// A field as the server writes it: a lowercase section, a key without colons or
        /// surrounding blanks that does not start a header, and a value of one line, trimmed.
        fn field() -> impl Strategy<Value = (String, String, String)> {
            (
                "[a-z]{1,12}",
                "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,20}",
                "([!-~]([ -~]{0,30}[!-~])?)?",
            )
        }

        /// `fields` rendered as INFO text: a `# Section` header whenever the section changes,
        /// with the capitalisation and line ends servers and proxies use.
        fn render(fields: &[(String, String, String)], crlf: bool) -> String {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            let mut section = None;
            for (s, k, v) in fields {
                if section != Some(s) {
                    let mut title = s.clone();
                    title[..1].make_ascii_uppercase();
                    text.push_str(&format!("# {title}{end}"));
                    section = Some(s);
                }
                text.push_str(&format!("{k}:{v}{end}"));
            }
            text
        }

        proptest! {
            #[test]
            fn parse_never_panics_and_keeps_only_keyed_lines(text in any::<String>()) {
                let info = Info::parse(&text);
                for (section, key, value) in info.fields() {
                    prop_assert!(!key.is_empty());
                    prop_assert_eq!(section.trim(), section);
                    prop_assert!(!value.contains('\n') && !key.contains('\n'));
                }
                for (k, v) in pairs(&text) {
                    prop_assert!(!k.contains(',') && !v.contains(','));
                }
                let _ = (numbered(&text, "db"), is_master_field(&text, "host"));
                let _ = pair_value(&text, "keys");
            }

            #[test]
            fn rendered_info_parses_back(
                fields in proptest::collection::vec(field(), 0..40),
                crlf in any::<bool>(),
            ) {
                let text = render(&fields, crlf);
                let parsed: Vec<(String, String, String)> = Info::parse(&text)
                    .fields()
                    .map(|(s, k, v)| (s.to_owned(), k.to_owned(), v.to_owned()))
                    .collect();
                prop_assert_eq!(parsed, fields);
            }

            #[test]
            fn rendered_pairs_parse_back(
                list in proptest::collection::vec(("[a-z_]{1,10}", "[^,=]{0,10}"), 0..10),
            ) {
                let text: Vec<String> = list.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let text = text.join(",");
                let parsed: Vec<(String, String)> =
                    pairs(&text).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                prop_assert_eq!(parsed, list);
            }

            #[test]
            fn numbered_keys_read_their_digits(prefix in "[a-z]{1,6}", n in any::<u32>()) {
                let key = format!("{prefix}{n}");
                let digits = n.to_string();
                prop_assert_eq!(numbered(&key, &prefix), Some(digits.as_str()));
            }

            /// Whatever the server sends, the families built from it validate (`build` checks).
            #[test]
            fn families_of_any_info_validate(
                text in "(# ?[A-Za-z]{0,12}\n|[a-z_0-9]{1,20}:[ -~]{0,40}\n){0,30}",
                databases in proptest::option::of(0u32..64),
            ) {
                let _ = build(|out| families(&Info::parse(&text), NOW, databases, out));
            }
        }
    }
}
