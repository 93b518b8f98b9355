//! Security headers on every response.
//!
//! Portal pages get a Content-Security-Policy whose script source is the per-response nonce
//! Leptos puts on the inline scripts it emits, plus `'wasm-unsafe-eval'` for the hydrate
//! module, and no `'unsafe-inline'` (the page shell sets it: it knows the nonce; see
//! `app::layout::page_policy`). Everything else
//! gets a policy that allows nothing. Every response says `nosniff`, refuses framing and keeps
//! the referrer to this origin; HTML (which carries the session's CSRF token) is never stored
//! by caches.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of everything that is not a portal page: nothing may run or load.
const NOTHING: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(NOTHING),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if html {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
