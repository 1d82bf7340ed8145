//! The status page at `/`: what an operator opening the exporter first wants to see.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Generation;
use crate::target::{LastScrape, Target};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:90em;padding:0 1em;color:#222}\
h1{margin-bottom:.2em}nav a{margin-right:1.2em}code{background:#f1f1f1;padding:0 .25em}\
table{border-collapse:collapse;width:100%;margin-top:.5em}\
th,td{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}\
th{background:#fafafa}td.name{white-space:nowrap}td.num{text-align:right;white-space:nowrap}td.err{max-width:30em;overflow-wrap:anywhere}\
.state{font-weight:bold;padding:.1em .5em;border-radius:.3em;white-space:nowrap}\
.up{background:#d7f5dd;color:#14532d}.down{background:#fde0e0;color:#7f1d1d}\
.partial{background:#fff3cd;color:#713f12}.pending{background:#e5e7eb;color:#374151}\
.muted{color:#666}td.err{min-width:14em}\
@media print{body{font-size:10px;max-width:none;margin:0}}@page{size:A4 landscape;margin:1cm}";

/// The landing page: every target's state from its latest scrape, for the operator who opens the
/// exporter first. Plain HTML and CSS, no JavaScript; rendering never scrapes anything.
pub(super) fn status_page(
    generation: &Generation,
    telemetry_path: &str,
    now: SystemTime,
) -> String {
    let engine = &generation.engine;
    let targets = engine.targets();
    let lasts: Vec<Option<LastScrape>> = targets.iter().map(Target::last_scrape).collect();
    let up = lasts.iter().flatten().filter(|l| l.up).count();
    let down = lasts.iter().flatten().filter(|l| !l.up).count();
    let pending = lasts.iter().filter(|l| l.is_none()).count();
    let path = html_escape(telemetry_path);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>fanout_exporter</title>\n<style>{STYLE}</style></head>\n<body>\n\
         <h1>fanout_exporter</h1>\n<p class=\"muted\">Version {version} (revision {revision}) \
         &middot; configuration <code>{source}</code> &middot; page rendered {now}</p>\n\
         <nav><a href=\"{path}\">{path}</a><a href=\"/config\">configuration summary</a>\
         <a href=\"/-/healthy\">/-/healthy</a><a href=\"/-/ready\">/-/ready</a></nav>\n\
         <h2>Targets</h2>\n<p>{total} targets: {up} up, {down} down, {pending} not scraped yet. \
         States are those of each target's latest scrape through {path} or /probe; opening this \
         page does not scrape.</p>\n",
        version = html_escape(crate::VERSION),
        revision = html_escape(crate::REVISION),
        source = html_escape(&generation.source),
        now = utc(now),
        total = targets.len(),
    );
    if targets.is_empty() {
        page.push_str("<p>No targets configured.</p>\n");
    } else {
        table(&mut page, targets, &lasts, now, true);
    }
    let modules: Vec<_> = engine.modules().collect();
    if !modules.is_empty() {
        page.push_str(
            "<h2>Modules</h2>\n<p>Targets named by <code>/probe?target=&lt;address&gt;&amp;module=&lt;name&gt;</code>, \
             kept while Prometheus scrapes them and closed when idle.</p>\n",
        );
    }
    for module in modules {
        let live = module.targets();
        let _ = writeln!(
            page,
            "<h3 id=\"module-{name}\">{name} <span class=\"muted\">({kind})</span></h3>\n<p>{count} of at most {max} \
             targets live; idle ones close after {idle}. Allowed targets: <code>{allow}</code></p>",
            name = html_escape(module.name()),
            kind = html_escape(module.kind().name),
            count = live.len(),
            max = module.max_targets(),
            idle = humantime::format_duration(module.idle_timeout()),
            allow = html_escape(&module.allow().to_string()),
        );
        if !live.is_empty() {
            let lasts: Vec<Option<LastScrape>> = live.iter().map(Target::last_scrape).collect();
            table(&mut page, &live, &lasts, now, false);
        }
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// One row per target; configured targets link to their `/probe`.
fn table(
    page: &mut String,
    targets: &[Target],
    lasts: &[Option<LastScrape>],
    now: SystemTime,
    links: bool,
) {
    page.push_str(
        "<table>\n<thead><tr><th>Target</th><th>Kind</th><th>Endpoint</th><th>State</th>\
         <th>Last scrape</th><th>Duration</th><th>Last error</th><th>Links</th></tr></thead>\n<tbody>\n",
    );
    for (target, last) in targets.iter().zip(lasts) {
        let name = html_escape(&target.name);
        let (class, label) = match last {
            None => ("pending", "PENDING"),
            Some(l) if !l.up => ("down", "DOWN"),
            Some(l) if !l.succeeded => ("partial", "UP, PARTIAL"),
            Some(_) => ("up", "UP"),
        };
        let (when, duration, error) = match last {
            None => ("never".to_owned(), "&ndash;".to_owned(), String::new()),
            Some(l) => (
                format!(
                    "{}<br><span class=\"muted\">{} ago</span>",
                    utc(l.finished),
                    ago(now, l.finished)
                ),
                duration(l.duration),
                l.error.as_deref().map(html_escape).unwrap_or_default(),
            ),
        };
        let link = if links {
            format!("<a href=\"/probe?target={name}\">probe</a>")
        } else {
            String::new()
        };
        let _ = writeln!(
            page,
            "<tr id=\"target-{name}\"><td class=\"name\">{name}</td><td>{kind}</td><td><code>{endpoint}</code></td>\
             <td><span class=\"state {class}\">{label}</span></td><td class=\"num\">{when}</td>\
             <td class=\"num\">{duration}</td><td class=\"err\">{error}</td>\
             <td>{link}</td></tr>",
            kind = html_escape(target.kind()),
            endpoint = html_escape(&target.collector.endpoint()),
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

/// `2026-11-25 18:20:01 UTC`: readable, sortable, and the same whatever the server's time zone;
/// the status page's times and the bench's date line.
pub fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date, in 400-year eras of 146097 days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A scrape's duration in the unit that keeps it readable: `4.2 ms`, `1.25 s`.
fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// How long before `now` a scrape finished, in the largest unit that keeps it short.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).map_or(0, |d| d.as_secs());
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::{Engine, Selection};
    use fanout_collectors::{CollectError, Collector, Kind, Outcome};
    use futures_util::future::BoxFuture;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    static KIND: Kind = Kind {
        name: "test",
        up_metric: "test_up",
        up_help: "Whether the test target answered.",
    };

    /// Answers as told, with an error text that needs escaping and redacting.
    #[derive(Debug)]
    struct Told {
        up: bool,
        error: Option<&'static str>,
    }

    impl Collector for Told {
        fn kind(&self) -> &'static Kind {
            &KIND
        }
        fn endpoint(&self) -> String {
            "test://<endpoint>".into()
        }
        fn collect(&self, _deadline: tokio::time::Instant) -> BoxFuture<'_, Outcome> {
            Box::pin(async move {
                Outcome {
                    families: Vec::new(),
                    up: self.up,
                    errors: self.error.map(CollectError::check).into_iter().collect(),
                }
            })
        }
    }

    #[tokio::test]
    async fn status_page_shows_every_state_escaped_and_redacted() {
        let target = |name: &str, up, error| {
            crate::target::Target::new(name.into(), Vec::new(), Arc::new(Told { up, error }))
        };
        let global = crate::scrape::Global {
            scrape_timeout: Duration::from_secs(5),
            timeout_offset: Duration::ZERO,
            max_concurrency: 4,
            labels: BTreeMap::new(),
        };
        let engine = Engine::new(
            &global,
            vec![
                target("a-up", true, None),
                target("b-partial", true, Some("privilege <b>missing</b>")),
                target("c-down", false, Some("see https://u:pw@h/x?k=v")),
                target("d-pending", true, None),
            ],
        );
        for name in ["a-up", "b-partial", "c-down"] {
            engine
                .scrape(Selection::Probe(name), Duration::from_secs(1))
                .await;
        }
        let generation = Generation {
            engine,
            source: "<file>".into(),
            summary: String::new(),
        };
        let page = status_page(&generation, "/metrics", SystemTime::now());
        let row = |name: &str| {
            let start = page.find(&format!("id=\"target-{name}\"")).unwrap();
            &page[start..start + page[start..].find("</tr>").unwrap()]
        };
        assert!(
            page.contains("4 targets: 2 up, 1 down, 1 not scraped yet."),
            "{page}"
        );
        assert!(row("a-up").contains("state up\">UP<"), "{page}");
        assert!(
            row("b-partial").contains("state partial\">UP, PARTIAL<"),
            "{page}"
        );
        assert!(
            row("b-partial").contains("privilege &lt;b&gt;missing&lt;/b&gt;"),
            "{page}"
        );
        assert!(row("c-down").contains("state down\">DOWN<"), "{page}");
        assert!(
            row("c-down").contains("https://[REDACTED]@h/[REDACTED]"),
            "{page}"
        );
        assert!(row("d-pending").contains("PENDING"), "{page}");
        assert!(
            page.contains("<code>test://&lt;endpoint&gt;</code>"),
            "{page}"
        );
        assert!(page.contains("<code>&lt;file&gt;</code>"), "{page}");
        assert!(!page.contains("pw@") && !page.contains("<b>"), "{page}");
    }

    #[test]
    fn utc_renders_civil_dates() {
        let at = |secs: u64| utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        // `date -u -d @951782400` (a leap day) and `date -u -d @1795631999`.
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(1_795_631_999), "2026-11-25 18:39:59 UTC");
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn ago_picks_a_short_unit() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000);
        let before = |secs: u64| ago(now, now - Duration::from_secs(secs));
        assert_eq!(before(3), "3s");
        assert_eq!(before(600), "10m");
        assert_eq!(before(10_800), "3h");
        // A clock that stepped back shows 0s rather than nonsense.
        assert_eq!(ago(now, now + Duration::from_secs(5)), "0s");
    }

    #[test]
    fn html_escape_covers_attribute_quotes() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
