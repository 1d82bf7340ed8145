//! What every request passes before its handler: the URI length limit, then the web
//! configuration's rate limit and basic authentication; and what every response gets on the way
//! out: the configured headers. As in exporter-toolkit, authentication covers every path, the health
//! endpoints included (a probe that cannot authenticate should use `fanout_exporter healthcheck`,
//! which treats an authentication challenge as a live server).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use super::{State, plain};
use crate::web::WebConfig;

/// Longest request target (path and query) served; a longer one gets 414. Service discovery's
/// `/probe?target=...&module=...` URLs are a few hundred bytes at most. (The whole request head is
/// limited to 128 KiB by actix-http, past which it answers 431.)
pub(super) const MAX_URI: usize = 8 * 1024;

/// The middleware; see the module documentation.
pub(super) async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // Taken once: a reload in the middle of this request does not change how it is answered.
    let web = state.web();
    let refusal = refusal(&req, web.as_deref()).await;
    let mut response = match refusal {
        Some(response) => req.into_response(response),
        None => next.call(req).await?.map_into_boxed_body(),
    };
    if let Some(web) = web {
        let headers = response.headers_mut();
        for (name, value) in &web.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(response)
}

/// The answer for a request that does not get through, if it does not.
async fn refusal(req: &ServiceRequest, web: Option<&WebConfig>) -> Option<HttpResponse> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        return Some(plain(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target} bytes; at most {MAX_URI} are served\n"),
        ));
    }
    let web = web?;
    if let Some(limit) = &web.rate_limit
        && !limit.allow()
    {
        return Some(plain(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests\n".into(),
        ));
    }
    if let Some(auth) = &web.auth {
        let given = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if !auth.allows(given).await {
            let mut response = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n".into());
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return Some(response);
        }
    }
    None
}
