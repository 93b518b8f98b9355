//! Authentication and authorization at the HTTP edge: who is calling (API token or session
//! cookie) and from where (the client address, through trusted proxies only), cross-site
//! request checks, and the route table.
//!
//! **Invariant:** a request reaches a handler only if the route table allows its caller (role
//! and token scope, by [`app::authz::authorize`]); the handler's service then authorizes again
//! and applies the tenant scope. A state-changing request authenticated by cookie must carry
//! the session's CSRF token and must not come from another origin.

use std::net::{IpAddr, SocketAddr};

use app::api::backend::Principal;
use app::authz::authorize;
use app::error::AppError;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::Cookie;

use super::AppState;
use super::access::{self, Access};
use super::problem::{ApiError, Problem};
use crate::config::ProxyConfig;
use crate::secrets::constant_time_eq;

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

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Token,
    Cookie,
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub(super) fn session_secret(headers: &HeaderMap, secure: bool) -> Option<String> {
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

/// One `X-Forwarded-For` hop: an address, perhaps bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    hop.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The client's address. Behind trusted proxies it is the right-most `X-Forwarded-For` hop
/// that is not one of them (every hop left of it was written by the client, who can write
/// anything); a request that does not come from a trusted proxy is its own client.
pub fn client_ip(proxy: &ProxyConfig, peer: Option<IpAddr>, forwarded: &[&str]) -> Option<IpAddr> {
    let peer = peer?;
    if !proxy.trust || !proxy.is_trusted(peer) || forwarded.is_empty() {
        return Some(peer);
    }
    let mut nearest_trusted = peer;
    for hop in forwarded.iter().flat_map(|h| h.split(',')).rev() {
        match parse_hop(hop) {
            Some(ip) if proxy.is_trusted(ip) => nearest_trusted = ip,
            Some(ip) => return Some(ip),
            // Garbage in the chain our proxies wrote: believe nothing further left.
            None => return Some(nearest_trusted),
        }
    }
    Some(nearest_trusted)
}

/// The client address of a request (for throttling and the ledger).
pub(super) fn client_addr(state: &AppState, req: &Request) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    client_ip(&state.http.proxy, peer, &forwarded)
}

/// Whether the request came through one of the trusted proxies (whose headers count).
fn via_trusted_proxy(state: &AppState, peer: Option<IpAddr>) -> bool {
    state.http.proxy.trust && peer.is_some_and(|p| state.http.proxy.is_trusted(p))
}

/// The origin this server answers as: the configured public URL, or the `Host` header.
fn expected_origin(state: &AppState, req: &Request) -> Option<String> {
    if let Some(o) = &state.http.public_origin {
        return Some(o.clone());
    }
    let headers = req.headers();
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let scheme = if via_trusted_proxy(state, peer) {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|s| matches!(*s, "http" | "https"))
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
        let expected = expected_origin(state, req);
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

/// Where a state change's CSRF token is.
enum CsrfToken {
    /// In the header or the form body (which is put back).
    Found(String),
    /// A bundle upload from the portal's form: the token is the form's first field, before
    /// the bundle; the upload handler checks it before it reads the bundle (the body is not
    /// buffered before authorization, and the token never travels in the URL).
    InUploadForm,
    Missing,
}

/// The CSRF token the upload handler must find as the first field of its form.
#[derive(Debug, Clone)]
pub struct UploadCsrf(pub String);

/// Finds the CSRF token in the header or, for a form, in the body (which is put back).
async fn csrf_token_of(
    req: Request,
    route: Option<&str>,
) -> Result<(CsrfToken, Request), Response> {
    if let Some(t) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let t = t.to_owned();
        return Ok((CsrfToken::Found(t), req));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        let found = if route == Some("/submissions/upload") {
            CsrfToken::InUploadForm
        } else {
            CsrfToken::Missing
        };
        return Ok((found, req));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok((CsrfToken::Missing, req));
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
    let found = token.map_or(CsrfToken::Missing, CsrfToken::Found);
    Ok((found, Request::from_parts(parts, Body::from(bytes))))
}

/// Whether `given` is the session's CSRF token.
pub fn csrf_matches(given: &str, expected: &str) -> bool {
    !expected.is_empty() && constant_time_eq(given, expected)
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
    if route
        .as_deref()
        .is_some_and(|r| access::lookup(req.method().as_str(), r) == Some(Access::Host))
    {
        return host_request(state, req, next).await;
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
            let (token, back) = match csrf_token_of(req, route.as_deref()).await {
                Ok(x) => x,
                Err(res) => return res,
            };
            req = back;
            let ok = match token {
                CsrfToken::Found(t) => csrf_matches(&t, &expected),
                CsrfToken::InUploadForm => {
                    req.extensions_mut().insert(UploadCsrf(expected.clone()));
                    true
                }
                CsrfToken::Missing => false,
            };
            if !ok {
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
            // Handled above; never reached.
            Some(Access::Public) | Some(Access::Host) => {}
            Some(Access::Signed(action)) => match &resolved {
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
                Some((p, _)) if !access::is_page(route) => {
                    if let Err(e) = authorize(p, action) {
                        return refuse(Some(route), StatusCode::FORBIDDEN, e.to_string());
                    }
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

/// A fleet route: only a valid fleet token gets through (a user's session or API token never
/// does, and a fleet token never reaches any other route: `token_principal` knows only API
/// tokens).
async fn host_request(state: AppState, mut req: Request, next: Next) -> Response {
    let unauthorized = |detail: &str| {
        Problem::new(StatusCode::UNAUTHORIZED, detail.to_owned()).into_response_with_status()
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned);
    let Some(token) = token else {
        return unauthorized(
            "the fleet routes need a fleet token: send `Authorization: Bearer stf_…` (a platform user makes one with `stellar fleet token create`)",
        );
    };
    if token.starts_with(crate::services::accounts::TOKEN_PREFIX) {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "this is a user's API token, not a fleet token: a host authenticates with a fleet token (`stf_…`) that a platform user makes with `stellar fleet token create`",
        )
        .into_response_with_status();
    }
    match state.fleet.caller(&token).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(None) => unauthorized(
            "the fleet token is unknown, expired or revoked: ask a platform user for a new one",
        ),
        Err(e) => ApiError::App(e).into_response(),
    }
}

pub(super) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> ProxyConfig {
        ProxyConfig {
            trust: true,
            trusted: vec![
                "127.0.0.0/8".parse().unwrap_or_else(|_| unreachable!()),
                "10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!()),
            ],
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let p = proxies();
        let lo = ip("127.0.0.1");
        // The client wrote the first value; the proxy appended the real one.
        assert_eq!(
            client_ip(&p, lo, &["6.6.6.6, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Two proxies of ours.
        assert_eq!(
            client_ip(&p, lo, &["6.6.6.6, 203.0.113.9, 10.1.1.1"]),
            ip("203.0.113.9")
        );
        // Several headers are one list, in order.
        assert_eq!(
            client_ip(&p, lo, &["6.6.6.6", "203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Garbage in the chain: believe nothing left of it.
        assert_eq!(
            client_ip(&p, lo, &["203.0.113.9, junk, 10.1.1.1"]),
            ip("10.1.1.1")
        );
        // Ports and brackets.
        assert_eq!(client_ip(&p, lo, &["[2001:db8::1]:443"]), ip("2001:db8::1"));
        // Not from a trusted proxy: the peer is the client, whatever the header says.
        assert_eq!(
            client_ip(&p, ip("198.51.100.7"), &["1.2.3.4"]),
            ip("198.51.100.7")
        );
        // Proxies not trusted at all.
        let off = ProxyConfig {
            trust: false,
            ..proxies()
        };
        assert_eq!(client_ip(&off, lo, &["1.2.3.4"]), lo);
    }
}
