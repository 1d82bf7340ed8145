//! The HTTP server: `/metrics`, `/probe`, the landing page and the health endpoints.
//!
//! Handlers never fail because a target did: a scrape always answers 200 with whatever succeeded.
//! The shutdown trigger is a parameter of [`run`] so tests can stop the server without signals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{CONTENT_TYPE, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, middleware, web};
use fanout_collectors::Families;
use prometheus::Registry;

use crate::exposition::{self, Batch};
use crate::scrape::{Engine, Selection};

/// Header Prometheus sends with its scrape timeout.
pub const TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// Everything the handlers share.
pub struct State {
    engine: Engine,
    telemetry_path: String,
    config_source: String,
    process: Registry,
}

impl State {
    /// Shared state for an engine; `config_source` is shown on the landing page.
    pub fn new(engine: Engine, telemetry_path: String, config_source: String) -> Self {
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
        Batch {
            source: "fanout_exporter".into(),
            labels: Vec::new(),
            families,
        }
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
            .route("/-/healthy", web::get().to(healthy))
            .route("/-/ready", web::get().to(ready))
    })
    .disable_signals()
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

fn exposition_response(batches: Vec<Batch>) -> HttpResponse {
    let body = exposition::encode(&exposition::merge(batches));
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, exposition::CONTENT_TYPE))
        .body(body)
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
        .body(landing_page(&state))
}

fn landing_page(state: &State) -> String {
    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in state.engine.targets() {
        by_kind.entry(t.kind()).or_default().push(&t.name);
    }
    let path = html_escape(&state.telemetry_path);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>fanout_exporter</title>\n\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}\
         code{{background:#eee;padding:0 .2em}}</style></head>\n<body>\n\
         <h1>fanout_exporter</h1>\n<p>Version {version} (revision {revision}). \
         Configuration: <code>{source}</code>.</p>\n<ul>\n\
         <li><a href=\"{path}\">{path}</a>: every target</li>\n\
         <li><a href=\"/-/healthy\">/-/healthy</a> and <a href=\"/-/ready\">/-/ready</a></li>\n</ul>\n\
         <h2>Targets</h2>\n",
        version = html_escape(crate::VERSION),
        revision = html_escape(crate::REVISION),
        source = html_escape(&state.config_source),
    );
    if by_kind.is_empty() {
        page.push_str("<p>No targets configured.</p>\n");
    }
    for (kind, names) in by_kind {
        let _ = writeln!(page, "<h3>{}</h3>\n<ul>", html_escape(kind));
        for name in names {
            let name = html_escape(name);
            let _ = writeln!(
                page,
                "<li>{name} (<a href=\"/probe?target={name}\">probe</a>)</li>"
            );
        }
        page.push_str("</ul>\n");
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
