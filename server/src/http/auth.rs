//! Authentication and authorization at the HTTP edge: who is calling (API token or session
//! cookie), cross-site request checks, and the access table; plus sign-in and sign-out.
//!
//! **Invariant:** a request reaches a handler only if the access table allows it; the handler's
//! service then checks tenant scope. A state-changing request authenticated by cookie must carry
//! the session's CSRF token and must not come from another origin.

use std::net::SocketAddr;

use app::api::backend::Principal;
use app::error::AppError;
use app::types::Me;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::Cookie;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::access::{self, Access};
use super::problem::{ApiError, Problem};
use crate::secrets::constant_time_eq;

/// The sign-in routes, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
}

/// The session cookie's name (with the `__Host-` prefix when cookies are `Secure`).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-stellar_session"
    } else {
        "stellar_session"
    }
}

/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Largest form body read to find a CSRF token.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The signed-in caller, for handlers: refuses anonymous requests with 401.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::App(AppError::unauthenticated()))
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Token,
    Cookie,
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn session_secret(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value that stores a session, or clears it when `value` is `None`.
pub fn session_cookie(secure: bool, value: Option<(&str, i64)>) -> HeaderValue {
    let (v, max_age) = value.unwrap_or(("", 0));
    let mut c = Cookie::build((cookie_name(secure), v.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    if value.is_none() {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The client address used for throttling.
fn client_addr(state: &AppState, req: &Request) -> Option<String> {
    if state.http.proxy.trust
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        return Some(first.trim().to_owned());
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string())
}

/// The origin this server answers as: the configured public URL, or the `Host` header.
fn expected_origin(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(o) = &state.http.public_origin {
        return Some(o.clone());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if state.http.proxy.trust {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("http")
    } else {
        "http"
    };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// Refuses cross-site state changes: an `Origin` other than ours, or a browser saying the
/// request is cross-site.
fn cross_site(state: &AppState, req: &Request) -> Option<String> {
    if !is_unsafe(req.method()) {
        return None;
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let expected = expected_origin(state, headers);
        if origin == "null" || expected.as_deref() != Some(&origin.to_ascii_lowercase()) {
            return Some(format!(
                "the request came from the origin `{origin}`, not from this site: state changes are accepted only from {}",
                expected.unwrap_or_else(|| "this server".into())
            ));
        }
    }
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Some("the browser marked this request as cross-site: state changes are accepted only from this site".into());
    }
    None
}

/// Finds the CSRF token in the header or, for a form, in the body (which is put back).
async fn csrf_token_of(req: Request) -> Result<(Option<String>, Request), Response> {
    if let Some(t) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let t = t.to_owned();
        return Ok((Some(t), req));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // A file upload form (the portal's bundle upload) carries the token in its action URL:
    // the body is a bundle, not something to buffer before authorization.
    if content_type.starts_with("multipart/form-data") {
        let token = req.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.into_owned())
        });
        return Ok((token, req));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok((None, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the form is larger than {MAX_FORM_BYTES} bytes: send less"),
            )
            .into_response_with_status()
        })?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

fn refuse(route: Option<&str>, status: StatusCode, detail: String) -> Response {
    let page = route.is_some_and(access::is_page);
    if page && status == StatusCode::UNAUTHORIZED {
        return Redirect::to("/login").into_response();
    }
    if route.is_some_and(access::is_server_fn) {
        // Server functions answer in their own error encoding, which the portal decodes.
        let error = match status {
            StatusCode::UNAUTHORIZED => AppError::Unauthenticated { message: detail },
            _ => AppError::forbidden(detail),
        };
        return (status, Json(error)).into_response();
    }
    Problem::new(status, detail).into_response_with_status()
}

/// Resolves the caller, enforces the cross-site and CSRF rules, and applies the access table.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let path = req.uri().path().to_owned();
    if route.as_deref().is_some_and(|r| r.starts_with("/pkg")) || path.starts_with("/pkg/") {
        return next.run(req).await;
    }
    if let Some(detail) = cross_site(&state, &req) {
        return refuse(route.as_deref(), StatusCode::FORBIDDEN, detail);
    }

    let public = route
        .as_deref()
        .is_some_and(|r| access::lookup(req.method().as_str(), r) == Some(Access::Public));
    let secure = state.http.secure_cookies;
    let mut clear_cookie = false;
    let mut resolved: Option<(Principal, Via)> = None;
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token.filter(|_| !public) else {
            if public {
                return next.run(req).await;
            }
            return refuse(
                route.as_deref(),
                StatusCode::UNAUTHORIZED,
                "the Authorization header must be `Bearer <token>`".into(),
            );
        };
        match state.accounts.token_principal(token).await {
            Ok(Some(p)) => resolved = Some((p, Via::Token)),
            // A public route ignores credentials it cannot use (`/metrics` has its own token).
            Ok(None) if public => {}
            Ok(None) => {
                return refuse(
                    route.as_deref(),
                    StatusCode::UNAUTHORIZED,
                    "the API token is unknown, expired or revoked: create a new one on the API tokens page or with `stellar admin create-token`".into(),
                );
            }
            Err(e) => return ApiError::App(e).into_response(),
        }
    } else if let Some(secret) = session_secret(req.headers(), secure) {
        match state.accounts.session_principal(&secret).await {
            Ok(Some(p)) => resolved = Some((p, Via::Cookie)),
            Ok(None) => clear_cookie = true,
            Err(e) => return ApiError::App(e).into_response(),
        }
    }

    let mut req = req;
    if let Some((principal, via)) = &resolved {
        if *via == Via::Cookie && is_unsafe(req.method()) {
            let expected = principal.csrf_token.clone().unwrap_or_default();
            let (token, back) = match csrf_token_of(req).await {
                Ok(x) => x,
                Err(res) => return res,
            };
            req = back;
            if !token.is_some_and(|t| !expected.is_empty() && constant_time_eq(&t, &expected)) {
                return refuse(
                    route.as_deref(),
                    StatusCode::FORBIDDEN,
                    format!(
                        "the CSRF token is missing or wrong: reload the page and try again (send it as the `{CSRF_FIELD}` form field or the `{CSRF_HEADER}` header)"
                    ),
                );
            }
        }
        req.extensions_mut().insert(principal.clone());
    }

    if let Some(route) = route.as_deref() {
        match access::lookup(req.method().as_str(), route) {
            Some(Access::Public) => {}
            Some(Access::Roles(roles)) => match &resolved {
                None if access::is_page(route) => {
                    let mut target = format!("/login?next={}", urlencode(&path));
                    if clear_cookie {
                        target.push_str("&error=expired");
                    }
                    let mut res = Redirect::to(&target).into_response();
                    if clear_cookie {
                        res.headers_mut()
                            .insert(header::SET_COOKIE, session_cookie(secure, None));
                    }
                    return res;
                }
                None => {
                    let detail = if clear_cookie {
                        "the session has expired: sign in again"
                    } else {
                        "sign in, or send an API token as `Authorization: Bearer <token>`"
                    };
                    let mut res = refuse(Some(route), StatusCode::UNAUTHORIZED, detail.into());
                    if clear_cookie {
                        res.headers_mut()
                            .insert(header::SET_COOKIE, session_cookie(secure, None));
                    }
                    return res;
                }
                // Pages render their own "not allowed" view (403) inside the portal shell.
                Some((p, _)) if !roles.contains(&p.role()) && !access::is_page(route) => {
                    return refuse(
                        Some(route),
                        StatusCode::FORBIDDEN,
                        format!(
                            "your role ({}) may not use `{} {route}`",
                            p.role(),
                            req.method()
                        ),
                    );
                }
                Some(_) => {}
            },
            None if access::route_known(route) => {} // wrong method: the router answers 405
            None => {
                tracing::error!(%route, "route missing from the access table: refused");
                return refuse(
                    Some(route),
                    StatusCode::FORBIDDEN,
                    "this route is not open to anyone".into(),
                );
            }
        }
    }

    let mut res = next.run(req).await;
    if clear_cookie && !res.headers().contains_key(header::SET_COOKIE) {
        res.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(secure, None));
    }
    res
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A local path to go to after sign-in; anything else (other hosts, `//`) becomes `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/auth/")
                && n.len() <= 2048
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The sign-in form.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    /// Where a browser goes after signing in (a local path).
    #[serde(default)]
    pub next: Option<String>,
}

/// A successful sign-in, for non-browser clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResult {
    pub me: Me,
    /// Send back as `x-csrf-token` on state-changing requests made with the session cookie.
    pub csrf_token: String,
    /// When the session ends at the latest (RFC 3339).
    pub expires_at: String,
}

/// Sign in with a username and password.
///
/// Sets the session cookie. Browsers (which `Accept: text/html`) are redirected to `next`, or
/// back to the sign-in page with `?error=` on failure; other clients get JSON or a problem.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Signed in", body = LoginResult),
        (status = 303, description = "Browser form: redirected"),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Throttled after repeated failures", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    let html = wants_html(&headers);
    let addr = client_addr(&state, &req);
    let axum::Form(form) = axum::Form::<LoginForm>::from_request(req, &()).await?;
    let next = safe_next(form.next.as_deref());
    match state
        .accounts
        .login(&form.username, &form.password, addr.as_deref())
        .await
    {
        Ok((session, principal)) => {
            let max_age = (session.expires_at - chrono::Utc::now())
                .num_seconds()
                .max(1);
            let cookie =
                session_cookie(state.http.secure_cookies, Some((&session.secret, max_age)));
            let mut res = if html {
                Redirect::to(&next).into_response()
            } else {
                Json(LoginResult {
                    me: principal.me,
                    csrf_token: session.csrf_token,
                    expires_at: crate::services::timestamp(session.expires_at),
                })
                .into_response()
            };
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Err(e) if html => {
            let code = match &e {
                AppError::TooManyRequests {
                    retry_after_secs, ..
                } => {
                    format!("throttled&retry={retry_after_secs}")
                }
                AppError::Unauthenticated { .. } => "invalid".to_owned(),
                other => return Err(ApiError::App(other.clone())),
            };
            Ok(Redirect::to(&format!(
                "/login?error={code}&next={}&username={}",
                urlencode(&next),
                urlencode(form.username.trim())
            ))
            .into_response())
        }
        Err(e) => Err(ApiError::App(e)),
    }
}

/// Sign out: ends the session and clears its cookie.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Signed out"),
        (status = 303, description = "Browser form: redirected to the sign-in page"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing or wrong", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let secure = state.http.secure_cookies;
    if let Some(secret) = session_secret(&headers, secure) {
        state.accounts.logout(&secret).await?;
    }
    let mut res = if wants_html(&headers) {
        Redirect::to("/login").into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(secure, None));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/admin")), "/admin");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
