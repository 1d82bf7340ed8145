//! Properties of the loader: whatever the file holds it never panics, and every error it returns
//! names the file; generated valid files load as exactly the targets they describe.

use std::collections::BTreeMap;

use fanout_collectors::family::RESERVED_LABELS;
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestCaseError, TestRunner};

use super::*;

/// Run `test` on values of `strategy` inside one jail (its own directory and environment, and the
/// lock that keeps other tests' environment variables out), with `config.yaml` as the file.
fn in_jail<S: Strategy>(strategy: S, test: impl Fn(&Path, S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    Jail::expect_with(|jail| {
        let file = jail.directory().join("config.yaml");
        // PROPTEST_CASES sets the number of cases, 256 without it.
        TestRunner::new(Cases::default())
            .run(&strategy, |value| test(&file, value))
            .map_err(|e| figment::Error::from(e.to_string()))
    });
}

/// Every error of a failed load names the file (never the environment or a flag: neither is set).
fn load_names_the_file(file: &Path, contents: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(file, contents).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Err(errors) = load(&Input::File(file.to_owned()), &FlagOverrides::default()) {
        prop_assert!(!errors.0.is_empty());
        for e in &errors.0 {
            prop_assert_eq!(&e.source, &file.display().to_string(), "{}", e);
            prop_assert!(!e.message.is_empty(), "{}", e);
        }
    }
    Ok(())
}

/// Pieces of configuration files, right and wrong, to be strung together.
fn yaml_ish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        proptest::sample::select(vec![
            "global:",
            "http:",
            "mysql:",
            "redis:",
            "modules:",
            "web:",
            "db:",
            "m:",
            "\n",
            "\n  ",
            "\n    ",
            "\n      ",
            "  ",
            "- ",
            ": ",
            "url: ",
            "http://127.0.0.1:1/",
            "redis://u:p@127.0.0.1:1/0",
            "address: ",
            "127.0.0.1:3306",
            "user: u",
            "labels: ",
            "{",
            "}",
            "[",
            "]",
            ", ",
            "&a ",
            "*a",
            "<<: *a",
            "!!str ",
            "!tag ",
            "'",
            "\"",
            "# c",
            "scrape_timeout: ",
            "5s",
            "-1s",
            "allowed_targets: ",
            "10.0.0.0/8",
            "*.local",
            "password_file: ",
            "/dev/zero",
            "config.yaml",
            "valid_status_codes: ",
            "200",
            "max_concurrency: ",
            "-1",
            "18446744073709551616",
            "~",
            "---\n",
            "...\n",
            "\t",
            "\u{0}",
            "é",
            "? ",
            "|\n",
            ">-\n",
            "fail_if_body_matches_regexp: ",
            "(",
            "idle_timeout: ",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,6}",
    ];
    proptest::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

#[test]
fn yaml_ish_text_never_panics_and_errors_name_the_file() {
    in_jail(yaml_ish(), |file, text| {
        load_names_the_file(file, text.as_bytes())
    });
}

#[test]
fn arbitrary_bytes_never_panic_and_errors_name_the_file() {
    in_jail(
        proptest::collection::vec(any::<u8>(), 0..512),
        |file, bytes| load_names_the_file(file, &bytes),
    );
}

/// A target to generate: its kind (0 http, 1 mysql, 2 redis), port and own labels.
type Spec = (usize, u16, BTreeMap<String, String>);

fn specs() -> impl Strategy<Value = BTreeMap<String, Spec>> {
    let labels = proptest::collection::btree_map(
        "[a-z][a-z0-9_]{0,6}"
            .prop_filter("not reserved", |n| !RESERVED_LABELS.contains(&n.as_str())),
        "[ -~]{0,10}",
        0..3,
    );
    // Names are the map's keys, so unique across kinds.
    proptest::collection::btree_map(
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,8}",
        (0usize..3, 1u16.., labels),
        0..8,
    )
}

const KINDS: [&str; 3] = ["http", "mysql", "redis"];

/// `targets` as a YAML file, in block style or as JSON (which is YAML too).
fn render(scrape_timeout: u64, targets: &BTreeMap<String, Spec>, json: bool) -> String {
    let mut sections: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for (name, (kind, port, labels)) in targets {
        let mut entry = serde_json::Map::new();
        let (key, address) = match *kind {
            0 => ("url", format!("http://127.0.0.1:{port}/health")),
            1 => ("address", format!("127.0.0.1:{port}")),
            _ => ("url", format!("redis://127.0.0.1:{port}/1")),
        };
        entry.insert(key.to_owned(), address.into());
        if *kind == 1 {
            entry.insert("user".to_owned(), "exporter".into());
        }
        if !labels.is_empty() {
            entry.insert("labels".to_owned(), serde_json::json!(labels));
        }
        sections
            .entry(KINDS[*kind])
            .or_default()
            .insert(name.clone(), entry.into());
    }
    let mut document = serde_json::Map::new();
    document.insert(
        "global".to_owned(),
        serde_json::json!({"scrape_timeout": format!("{scrape_timeout}s")}),
    );
    for (kind, entries) in sections {
        document.insert(kind.to_owned(), entries.into());
    }
    let document = serde_json::Value::Object(document);
    if json {
        document.to_string()
    } else {
        serde_yaml::to_string(&document).unwrap_or_default()
    }
}

#[test]
fn generated_configs_load_as_the_targets_they_describe() {
    in_jail(
        (1u64..60, specs(), any::<bool>()),
        |file, (scrape_timeout, targets, json)| {
            let text = render(scrape_timeout, &targets, json);
            std::fs::write(file, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let config = load(&Input::File(file.to_owned()), &FlagOverrides::default())
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(
                config.global.scrape_timeout,
                Duration::from_secs(scrape_timeout)
            );
            let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
            let expected: Vec<&str> = targets.keys().map(String::as_str).collect();
            prop_assert_eq!(names, expected, "{}", text);
            for target in &config.targets {
                let (kind, port, labels) = &targets[&target.name];
                prop_assert_eq!(target.kind(), KINDS[*kind]);
                let endpoint = target.collector.endpoint();
                prop_assert!(
                    endpoint.contains(&format!("127.0.0.1:{port}")),
                    "{}",
                    endpoint
                );
                let got: BTreeMap<String, String> = target.labels.iter().cloned().collect();
                prop_assert_eq!(&got, labels);
            }
            Ok(())
        },
    );
}
