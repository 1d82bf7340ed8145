//! The status page in a real browser: headless Chromium (Debian `chromium`) loads `/` with one target
//! up and one down, the text it renders is checked, and a screenshot is kept for people to look at.
//!
//! The rendered text comes from Chromium's own PDF rendering of the page, read back with `pdftotext
//! -layout` (Debian `poppler-utils`), so what is checked is what the browser laid out, table rows
//! included, not the HTML source.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fanout_testkit::exporter as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Exporter, output_within, write};

const CHROMIUM: &str = "/usr/bin/chromium";
const PDFTOTEXT: &str = "/usr/bin/pdftotext";

/// Headless Chromium with the flags this machine needs: no sandbox as root, and no background
/// networking (the closed network refuses it loudly). Each run gets a fresh profile.
fn chromium(profile: &Path, extra: &[&str], url: &str) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} missing: install Debian's chromium (scripts/test does)"
    );
    let profile = format!("--user-data-dir={}", profile.display());
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        profile.as_str(),
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = output_within(Command::new(CHROMIUM).args(&args), Duration::from_secs(90));
    assert!(
        out.status.success(),
        "chromium {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where the screenshot is kept: cargo's per-crate temp area under target/, which outlives the test.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn chromium_renders_one_target_up_and_one_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    // `closed` is a port nothing listens on: the redis target there is down.
    // Two draws can return the same port (neither was bound yet); the down target must not point at
    // the exporter itself.
    let closed = std::iter::repeat_with(support::free_port)
        .find(|&p| p != port)
        .unwrap();
    let config = write(
        dir.path(),
        "config.yaml",
        &format!(
            "http:\n  web:\n    url: http://127.0.0.1:{port}/-/healthy\n\
             redis:\n  cache:\n    url: redis://:hunter2@127.0.0.1:{closed}/0\n"
        ),
    );
    let exporter = Exporter::start(&[
        &format!("--web.listen-address=127.0.0.1:{port}"),
        &format!("--config.file={}", config.display()),
    ]);
    assert_eq!(exporter.get("/metrics", &[]).status, 200);
    let url = format!("http://127.0.0.1:{port}/");

    let pdf = dir.path().join("page.pdf");
    chromium(
        &dir.path().join("profile-pdf"),
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
        ],
        &url,
    );
    assert!(
        Path::new(PDFTOTEXT).exists(),
        "{PDFTOTEXT} missing: install Debian's poppler-utils (scripts/test does)"
    );
    let out = output_within(
        Command::new(PDFTOTEXT).args(["-layout", pdf.to_str().unwrap(), "-"]),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no rendered line starts with {start:?}:\n{text}"))
    };
    assert!(
        text.contains("2 targets: 1 up, 1 down, 0 not scraped yet."),
        "{text}"
    );
    let web = line("web ");
    for expected in [
        "http",
        &format!("http://127.0.0.1:{port} "),
        "UP",
        " UTC",
        " ms",
        "probe",
    ] {
        assert!(
            web.contains(expected),
            "{expected:?} not in the row {web:?}"
        );
    }
    assert!(!web.contains("DOWN"), "{web}");
    let cache = line("cache ");
    for expected in [
        "redis",
        &format!("redis://127.0.0.1:{closed}/0"),
        "DOWN",
        "probe",
    ] {
        assert!(
            cache.contains(expected),
            "{expected:?} not in the row {cache:?}"
        );
    }
    // The error column wraps; its words are on the row's line or the ones below it.
    assert!(
        text.contains("refused"),
        "the connection error is shown:\n{text}"
    );
    for expected in [
        "/metrics",
        "configuration summary",
        "/-/healthy",
        "/-/ready",
    ] {
        assert!(
            text.contains(expected),
            "link {expected:?} missing:\n{text}"
        );
    }
    assert!(!text.contains("hunter2"), "the password leaked:\n{text}");

    let screenshot = output_dir().join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &dir.path().join("profile-shot"),
        &[
            "--window-size=1280,480",
            "--hide-scrollbars",
            &format!("--screenshot={}", screenshot.display()),
        ],
        &url,
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // IHDR: width and height, big-endian, right after the signature and chunk header.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 480));
    // A blank page compresses to a few hundred bytes; a rendered table does not.
    assert!(
        png.len() > 10_000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );
    eprintln!("status page screenshot: {}", screenshot.display());
    drop(exporter);
}
