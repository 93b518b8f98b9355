//! Errors as `application/problem+json` (RFC 9457).
//!
//! Handlers return [`ApiError`]; [`finish_problems`] makes sure that every other error response
//! of the API (extractor rejections, 404, 405, 413, timeouts, panics) has the same shape and
//! names the request id.

use app::error::AppError;
use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::observe::RequestId;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:stellar:problem:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case, and what to do about it.
    pub detail: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Quote this when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The input field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (429).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// A stable code for a refused bundle (`bundle_path`, `manifest_invalid`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The file at fault in a refused bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Manifest errors, each with its line and column.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub errors: Option<Vec<plugin::ManifestError>>,
    /// The samples of a refused fleet report, each with its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<Vec<SampleProblem>>,
}

/// Why one sample of a fleet report (or the batch itself) was refused.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SampleProblem {
    /// The sample's index in the batch; absent when the batch itself is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// `late`, `future`, `duplicate`, `oversized`, `inconsistent`, `bad_name`,
    /// `bad_interval`, `not_told`, `unknown_host` or `wrong_host` (the metric's label).
    pub reason: String,
    pub detail: String,
}

fn slug_and_title(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad-request", "Bad request"),
        401 => ("unauthenticated", "Authentication required"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not-found", "Not found"),
        405 => ("method-not-allowed", "Method not allowed"),
        408 => ("timeout", "Request timeout"),
        409 => ("conflict", "Conflict"),
        413 => ("body-too-large", "Request body too large"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        422 => ("invalid", "Invalid input"),
        429 => ("too-many-requests", "Too many requests"),
        431 => ("headers-too-large", "Request header fields too large"),
        503 => ("unavailable", "Service unavailable"),
        s if s >= 500 => ("internal", "Internal error"),
        _ => ("error", "Error"),
    }
}

impl Problem {
    /// A problem of the given status with a detail message.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let (slug, title) = slug_and_title(status);
        Problem {
            kind: format!("urn:stellar:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            request_id: None,
            field: None,
            retry_after: None,
            code: None,
            file: None,
            errors: None,
            samples: None,
        }
    }

    /// The problem as a response.
    pub fn into_response_with_status(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut res = (status, Json(self)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stellar\""),
            );
        }
        res
    }
}

/// An error of an API handler.
#[derive(Debug)]
pub enum ApiError {
    /// A service error.
    App(AppError),
    /// The request could not be read: malformed JSON, wrong types, wrong media type, too large.
    Rejection { status: StatusCode, detail: String },
    /// A plugin bundle that intake refused (nothing was stored).
    Refused(plugin::Rejection),
    /// A fleet report refused whole (nothing was stored).
    Report(crate::services::fleet::Refused),
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError::App(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::App(e) => {
                let status =
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut p = Problem::new(status, e.to_string());
                p.field = e.field().map(str::to_owned);
                if let AppError::TooManyRequests {
                    retry_after_secs, ..
                } = &e
                {
                    p.retry_after = Some(*retry_after_secs);
                }
                p.into_response_with_status()
            }
            ApiError::Rejection { status, detail } => {
                Problem::new(status, detail).into_response_with_status()
            }
            ApiError::Refused(r) => {
                let status = match r.code.as_str() {
                    "bundle_too_large" | "tenant_storage_full" => StatusCode::PAYLOAD_TOO_LARGE,
                    "plugin_id_taken" => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let mut p = Problem::new(status, r.to_string());
                p.detail = r.message;
                p.code = Some(r.code);
                p.file = r.file;
                p.errors = (!r.errors.is_empty()).then_some(r.errors);
                p.into_response_with_status()
            }
            ApiError::Report(r) => {
                let status =
                    StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                let mut p = Problem::new(status, r.detail);
                p.code = Some("report_refused".into());
                p.samples = Some(
                    r.samples
                        .into_iter()
                        .map(|(sample, reason, detail)| SampleProblem {
                            sample,
                            reason: reason.into(),
                            detail,
                        })
                        .collect(),
                );
                p.into_response_with_status()
            }
        }
    }
}

macro_rules! rejection_into_problem {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(r: $rejection) -> Self {
                ApiError::Rejection { status: r.status(), detail: r.body_text() }
            }
        }
    )*};
}

rejection_into_problem!(JsonRejection, FormRejection, PathRejection, QueryRejection);

/// Whether a path answers with problem documents (as opposed to portal pages and server
/// functions, which have their own error forms).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/auth/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Largest error body rewritten into a problem document.
const MAX_REWRITE: usize = 64 * 1024;

/// Rewrites every error response of an API path into a problem document, and stamps problem
/// documents with the request path and id.
pub async fn finish_problems(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let res = next.run(req).await;
    if path.starts_with("/portal/api/") && res.status() == StatusCode::INTERNAL_SERVER_ERROR {
        return server_fn_status(res).await;
    }
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
    if !(status.is_client_error() || status.is_server_error())
        || !(is_problem || is_api_path(&path))
    {
        return res;
    }
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_REWRITE)
        .await
        .unwrap_or_default();
    let mut problem = if is_problem {
        serde_json::from_slice::<Problem>(&bytes)
            .unwrap_or_else(|_| Problem::new(status, "an error occurred"))
    } else {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        let detail = default_detail(status, &path, text);
        Problem::new(status, detail)
    };
    problem.instance.get_or_insert(path);
    if problem.request_id.is_none() {
        problem.request_id = request_id;
    }
    let mut out = problem.into_response_with_status();
    // Keep headers the inner layers set (Retry-After, Allow, WWW-Authenticate, x-request-id).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *out.status_mut() = status;
    out
}

/// Server functions answer every error with 500; the error itself says what it is (bad
/// arguments, say), so the status is taken from it.
async fn server_fn_status(res: Response) -> Response {
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_REWRITE)
        .await
        .unwrap_or_default();
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes)
        && let Ok(status) = StatusCode::from_u16(err.status())
    {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn default_detail(status: StatusCode, path: &str, text: String) -> String {
    match status.as_u16() {
        404 => format!("there is no API route `{path}`: see /api/openapi.json for the routes"),
        405 => format!("`{path}` does not accept this method: see /api/openapi.json"),
        408 | 503 if text.is_empty() => {
            "the request took too long and was stopped: try again later".into()
        }
        413 => "the request body is larger than the server accepts: send less (see the `--max-body-bytes` setting)".into(),
        _ if !text.is_empty() => text,
        s if s >= 500 => "the server failed to answer: try again, and report the request id if it persists".into(),
        _ => "the request was refused".into(),
    }
}

/// The response for a panic caught while handling a request.
pub fn panic_response(_err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server failed to answer: try again, and report the request id if it persists",
    )
    .into_response_with_status()
}
