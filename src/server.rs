//! The HTTP server: `/metrics`, `/probe`, the status page at `/`, `/config` and the health endpoints.
//!
//! Handlers never fail because a target did: a scrape always answers 200 with whatever succeeded.
//! The shutdown trigger is a parameter of [`run`] so tests can stop the server without signals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::SizedStream;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, middleware, web};
use fanout_collectors::Families;
use prometheus::Registry;

use crate::exposition::{self, Batch};
use crate::scrape::{Engine, LastScrape, Selection, Target};

/// Header Prometheus sends with its scrape timeout.
pub const TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// Everything the handlers share.
pub struct State {
    engine: Engine,
    telemetry_path: String,
    config_source: String,
    config_summary: String,
    process: Registry,
}

impl State {
    /// Shared state for an engine; `config_source` is shown on the status page and `config_summary`
    /// (see [`crate::config::Config::summary`]) at `/config`.
    pub fn new(
        engine: Engine,
        telemetry_path: String,
        config_source: String,
        config_summary: String,
    ) -> Self {
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        if let Err(error) = process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(%error, "process metrics unavailable");
        }
        Self {
            engine,
            telemetry_path,
            config_source,
            config_summary,
            process,
        }
    }

    fn self_metrics(&self, budget: Duration) -> Batch {
        let mut own = Families::new();
        own.info(
            "fanout_exporter_build_info",
            "A metric with a constant '1' value labeled by the version and git revision of fanout_exporter.",
            &[("version", crate::VERSION), ("revision", crate::REVISION)],
        );
        own.gauge(
            "fanout_exporter_scrape_timeout_seconds",
            "Budget of this scrape: the configured scrape_timeout, lowered to Prometheus' timeout header minus the offset.",
        )
        .set(&[], budget.as_secs_f64());
        let mut families = own.finish();
        families.extend(self.process.gather());
        exposition::render("fanout_exporter", &[], &families)
    }
}

/// Serve until `shutdown` resolves, then drain in-flight scrapes (up to the scrape budget) and return.
pub async fn run(
    state: Arc<State>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + 'static,
) -> std::io::Result<()> {
    let drain = state.engine.budget(None) + Duration::from_secs(1);
    let targets = state.engine.targets().to_vec();
    let data = web::Data::from(state);
    let path = data.telemetry_path.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(middleware::Compress::default())
            .route(&path, web::get().to(metrics))
            .route("/probe", web::get().to(probe))
            .route("/", web::get().to(landing))
            .route("/config", web::get().to(config_summary))
            .route("/-/healthy", web::get().to(healthy))
            .route("/-/ready", web::get().to(ready))
    })
    .disable_signals()
    // The body goes out in pieces (see `exposition_response`): without this, Nagle's algorithm
    // holds each piece until the client acknowledges the previous one, up to its 40 ms delayed ACK.
    .tcp_nodelay(true)
    .shutdown_timeout(drain.as_secs().max(1))
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        handle.stop(true).await;
    });
    let served = server.await;
    // Scrapes have drained: let collectors say goodbye to their servers, briefly.
    let goodbyes = futures_util::future::join_all(targets.iter().map(|t| t.collector.shutdown()));
    if tokio::time::timeout(Duration::from_secs(2), goodbyes)
        .await
        .is_err()
    {
        tracing::warn!("targets did not close their connections within 2s");
    }
    served
}

fn timeout_header(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(TIMEOUT_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// Size of the pieces the body is encoded in: a thousand-target body goes out in a few hundred
/// writes, and each piece stays below glibc's mmap threshold (128 KiB), whose freeing would raise
/// the threshold and with it how much freed memory the allocator keeps.
const BODY_CHUNK: usize = 32 * 1024;

fn exposition_response(batches: Vec<Batch>) -> HttpResponse {
    let merged = exposition::merge(batches);
    let size = merged.encoded_len() as u64;
    let chunks = merged
        .into_chunks(BODY_CHUNK)
        .map(|chunk| Ok::<_, std::convert::Infallible>(web::Bytes::from(chunk)));
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, exposition::CONTENT_TYPE))
        .body(SizedStream::new(size, futures_util::stream::iter(chunks)))
}

async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let budget = state.engine.budget(timeout_header(&req));
    let mut batches = state
        .engine
        .scrape(Selection::All, budget)
        .await
        .unwrap_or_default();
    batches.push(state.self_metrics(budget));
    exposition_response(batches)
}

async fn probe(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(name) = query.get("target").filter(|t| !t.is_empty()) else {
        return bad_request(
            "missing parameter \"target\" (the name of a configured target)\n".into(),
        );
    };
    let budget = state.engine.budget(timeout_header(&req));
    match state.engine.scrape(Selection::Probe(name), budget).await {
        Some(batches) => exposition_response(batches),
        None => bad_request(format!(
            "unknown target {:?}: not in the configuration\n",
            truncate(name, 100)
        )),
    }
}

fn bad_request(message: String) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type(ContentType::plaintext())
        .body(message)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

async fn healthy() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("Healthy\n")
}

/// Ready once the configuration is loaded and the listener is up, which is true whenever this
/// handler runs; it deliberately does not depend on target health.
async fn ready() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("Ready\n")
}

async fn landing(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(status_page(&state, SystemTime::now()))
}

/// The configuration summary linked from the status page, as `--config.check` prints it.
async fn config_summary(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(state.config_summary.clone())
}

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
fn status_page(state: &State, now: SystemTime) -> String {
    let targets = state.engine.targets();
    let lasts: Vec<Option<LastScrape>> = targets.iter().map(Target::last_scrape).collect();
    let up = lasts.iter().flatten().filter(|l| l.up).count();
    let down = lasts.iter().flatten().filter(|l| !l.up).count();
    let pending = lasts.iter().filter(|l| l.is_none()).count();
    let path = html_escape(&state.telemetry_path);
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
        source = html_escape(&state.config_source),
        now = utc(now),
        total = targets.len(),
    );
    if targets.is_empty() {
        page.push_str("<p>No targets configured.</p>\n</body>\n</html>\n");
        return page;
    }
    page.push_str(
        "<table>\n<thead><tr><th>Target</th><th>Kind</th><th>Endpoint</th><th>State</th>\
         <th>Last scrape</th><th>Duration</th><th>Last error</th><th>Links</th></tr></thead>\n<tbody>\n",
    );
    for (target, last) in targets.iter().zip(&lasts) {
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
        let _ = writeln!(
            page,
            "<tr id=\"target-{name}\"><td class=\"name\">{name}</td><td>{kind}</td><td><code>{endpoint}</code></td>\
             <td><span class=\"state {class}\">{label}</span></td><td class=\"num\">{when}</td>\
             <td class=\"num\">{duration}</td><td class=\"err\">{error}</td>\
             <td><a href=\"/probe?target={name}\">probe</a></td></tr>",
            kind = html_escape(target.kind()),
            endpoint = html_escape(&target.collector.endpoint()),
        );
    }
    page.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    page
}

/// `2026-11-25 18:20:01 UTC`: readable, sortable, and the same whatever the server's time zone.
fn utc(time: SystemTime) -> String {
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
    use fanout_collectors::{CollectError, Collector, Kind, Outcome};
    use futures_util::future::BoxFuture;

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
                    errors: self
                        .error
                        .map(|e| CollectError::Check(e.into()))
                        .into_iter()
                        .collect(),
                }
            })
        }
    }

    #[tokio::test]
    async fn status_page_shows_every_state_escaped_and_redacted() {
        let target = |name: &str, up, error| {
            crate::scrape::Target::new(name.into(), Vec::new(), Arc::new(Told { up, error }))
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
        let state = State::new(engine, "/metrics".into(), "<file>".into(), String::new());
        let page = status_page(&state, SystemTime::now());
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
