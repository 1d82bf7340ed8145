//! The HTTP server: `/metrics`, `/probe`, the status page at `/`, `/config`, `/-/reload` and the
//! health endpoints.
//!
//! Handlers never fail because a target did: a scrape always answers 200 with whatever succeeded.
//! The shutdown trigger is a parameter of [`run`] so tests can stop the server without signals.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, middleware, web};

use crate::exposition::{self, Batch};
use crate::modules::Refusal;
use crate::redact::redact;
use crate::scrape::{ProbeError, Selection};

mod guard;
mod page;
mod state;

pub use page::utc;
pub use state::{Generation, Loader, State};

/// Header Prometheus sends with its scrape timeout.
pub const TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// How often idle dynamic targets are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Size of the pieces the body is encoded in: a thousand-target body goes out in a few hundred
/// writes, and each piece stays below glibc's mmap threshold (128 KiB), whose freeing would raise
/// the threshold and with it how much freed memory the allocator keeps.
const BODY_CHUNK: usize = 32 * 1024;

/// How long a client has to send a request's head once connected (or after its previous request):
/// a client that trickles bytes (slowloris) is answered 408 and dropped after it, so idle or slow
/// connections cannot hold the server. Prometheus sends its whole request at once.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve until `shutdown` resolves, then drain in-flight scrapes (up to the scrape budget) and return.
pub async fn run(
    state: Arc<State>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + 'static,
) -> std::io::Result<()> {
    let drain = state.current().engine.drain();
    let data = web::Data::from(Arc::clone(&state));
    let path = data.telemetry_path.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(middleware::Compress::default())
            .wrap(middleware::from_fn(guard::guard))
            .route(&path, web::get().to(metrics))
            .route("/probe", web::get().to(probe))
            .route("/", web::get().to(landing))
            .route("/config", web::get().to(config_summary))
            .route("/-/healthy", web::get().to(healthy))
            .route("/-/ready", web::get().to(ready))
            // As in Prometheus: POST or PUT; anything else gets 405 from the resource.
            .service(
                web::resource("/-/reload")
                    .route(web::post().to(reload))
                    .route(web::put().to(reload)),
            )
    })
    .disable_signals()
    // The body goes out in pieces (see `exposition_response`): without this, Nagle's algorithm
    // holds each piece until the client acknowledges the previous one, up to its 40 ms delayed ACK.
    .tcp_nodelay(true)
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .tls_handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
    .shutdown_timeout(drain.as_secs().max(1));
    let tls = state
        .web()
        .and_then(|w| w.tls.as_ref().map(|tls| tls.server_config()));
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    }
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        handle.stop(true).await;
    });
    let sweeping = Arc::clone(&state);
    let sweeper = actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            sweeping.sweep().await;
        }
    });
    let served = server.await;
    sweeper.abort();
    // Scrapes have drained: let collectors say goodbye to their servers.
    state::close(state.current().engine.all_targets()).await;
    served
}

fn timeout_header(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(TIMEOUT_HEADER)
        .and_then(|v| v.to_str().ok())
}

fn exposition_response(batches: Vec<Batch>) -> HttpResponse {
    merged_response(Arc::new(exposition::merge(batches)))
}

/// The body of merged batches, encoded piece by piece as it goes out, with its exact length.
fn merged_response(merged: Arc<exposition::Merged>) -> HttpResponse {
    let size = merged.encoded_len() as u64;
    let chunks = exposition::Merged::chunks(merged, BODY_CHUNK)
        .map(|chunk| Ok::<_, std::convert::Infallible>(web::Bytes::from(chunk)));
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, exposition::CONTENT_TYPE))
        .body(SizedStream::new(size, futures_util::stream::iter(chunks)))
}

/// The answer past `--web.max-requests`, worded as Prometheus' handler words it.
fn too_many(state: &State) -> HttpResponse {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "Limit of concurrent requests reached ({}), try again later.\n",
            state.in_flight.limit()
        ),
    )
}

async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let Some(_slot) = state.in_flight.enter() else {
        return too_many(&state);
    };
    let budget = state.current().engine.budget(timeout_header(&req));
    match state.into_inner().metrics_body(budget).await {
        Some(merged) => merged_response(merged),
        None => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "building the response failed; see the exporter's log\n".into(),
        ),
    }
}

/// `/probe?target=<configured name>`, or `/probe?target=<address>&module=<name>` for targets that
/// service discovery names.
async fn probe(
    req: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
    state: web::Data<State>,
) -> HttpResponse {
    let Some(_slot) = state.in_flight.enter() else {
        return too_many(&state);
    };
    let Some(target) = query.get("target").filter(|t| !t.is_empty()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "missing parameter \"target\" (the name of a configured target, or an address with \"module\")\n"
                .into(),
        );
    };
    let generation = state.current();
    let engine = &generation.engine;
    let budget = engine.budget(timeout_header(&req));
    if let Some(module) = query.get("module").filter(|m| !m.is_empty()) {
        return match engine.probe(module, target, budget).await {
            Ok(batch) => exposition_response(vec![batch]),
            Err(ProbeError::UnknownModule(name)) => {
                let known: Vec<&str> = engine.modules().map(|m| m.name()).collect();
                plain(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown module {:?}: the configuration has {}\n",
                        truncate(&name, 100),
                        if known.is_empty() {
                            "no modules".to_owned()
                        } else {
                            format!("modules {}", known.join(", "))
                        }
                    ),
                )
            }
            Err(ProbeError::Refused(refusal)) => {
                let status = match &refusal {
                    Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
                    Refusal::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
                    Refusal::BadAddress(_) | Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
                };
                let why = redact(&refusal.to_string());
                tracing::warn!(
                    module = module.as_str(),
                    status = status.as_u16(),
                    reason = why.as_str(),
                    "probe refused"
                );
                plain(status, format!("{why}\n"))
            }
        };
    }
    match engine.scrape(Selection::Probe(target), budget).await {
        Some(batches) => exposition_response(batches),
        None => plain(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown target {:?}: not in the configuration (to probe an address, add &module=<name>)\n",
                truncate(target, 100)
            ),
        ),
    }
}

/// `POST /-/reload`: re-read the configuration file. 200 when applied; 500 with the errors (file,
/// key, line) when the file is bad, and the running configuration stays.
async fn reload(state: web::Data<State>) -> HttpResponse {
    match state.reload().await {
        Ok(message) => plain(StatusCode::OK, format!("{message}\n")),
        Err(why) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n")),
    }
}

fn plain(status: StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status)
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
    plain(StatusCode::OK, "Healthy\n".into())
}

/// Ready once the configuration is loaded and the listener is up, which is true whenever this
/// handler runs; it deliberately does not depend on target health.
async fn ready() -> HttpResponse {
    plain(StatusCode::OK, "Ready\n".into())
}

async fn landing(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(page::status_page(
            &state.current(),
            &state.telemetry_path,
            SystemTime::now(),
        ))
}

/// The configuration summary linked from the status page, as `--config.check` prints it.
async fn config_summary(state: web::Data<State>) -> HttpResponse {
    plain(StatusCode::OK, state.current().summary.clone())
}
