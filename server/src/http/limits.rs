//! Request size limits: the total of the header fields (431 above it) and the body (413 above
//! it; bundle uploads have their own, larger limit).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::problem::Problem;

/// Request body limits: uploads of bundles have their own.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub upload: usize,
}

/// Paths that take a bundle upload.
fn is_upload(path: &str) -> bool {
    path == "/api/v1/submissions" || path == "/submissions/upload"
}

/// Refuses a body over its limit (413) from its declared length, and caps the bytes read
/// from a body that does not declare one.
pub async fn limit_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let limit = if is_upload(req.uri().path()) {
        limits.upload
    } else {
        limits.default
    };
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .into_response_with_status();
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

/// Refuses requests whose header fields total more than the configured size, with 431.
pub async fn limit_headers(State(max): State<usize>, req: Request, next: Next) -> Response {
    let total: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if total > max {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request headers total {total} bytes, over the limit of {max}: send fewer or smaller headers (cookies included)"
            ),
        )
        .into_response_with_status();
    }
    next.run(req).await
}
