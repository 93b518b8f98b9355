//! Per-request observability: the request id, a tracing span with the route template, and
//! request metrics.
//!
//! **Invariant:** metric labels and span fields name the route *template* (`/api/v1/tenants/{slug}`),
//! never the raw path, so that label sets stay bounded whatever clients send.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries the request id in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The id of the current request, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A client-supplied id is kept if it is 1–128 visible ASCII characters; otherwise a new one is
/// made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The route template of a request, or a fixed label for unrouted ones.
pub fn route_label(req: &Request) -> String {
    match req.extensions().get::<MatchedPath>() {
        Some(m) if m.as_str().starts_with("/pkg") => "/pkg/{*file}".to_owned(),
        Some(m) => m.as_str().to_owned(),
        None if req.uri().path().starts_with("/pkg/") => "/pkg/{*file}".to_owned(),
        None => "unmatched".to_owned(),
    }
}

/// Sets the request id, opens the request span, and records the request's metrics.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(&req);
    let route = route_label(&req);
    let method = req.method().as_str().to_owned();
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    req.extensions_mut().insert(RequestId(id.clone()));

    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        request_id = %id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status();
    let elapsed = start.elapsed();
    span.record("status", status.as_u16());
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!("request failed");
        } else {
            tracing::info!("request finished");
        }
    });

    metrics::counter!(
        "stellar_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.as_u16().to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "stellar_http_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(elapsed.as_secs_f64());

    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}
