//! Sign-in and sign-out: the session cookie is set and cleared here.

use app::error::AppError;
use app::types::Me;
use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{client_addr, session_cookie, session_secret, urlencode};
use super::problem::{ApiError, Problem};
use crate::services::sso::SsoError;

/// The sign-in routes, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(sso_start))
        .routes(routes!(sso_callback))
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
        .login(&form.username, &form.password, addr)
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
                AppError::Forbidden { .. } => "local_off".to_owned(),
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

/// Single sign-on, or 404 where it is not configured.
fn configured(state: &AppState) -> Result<&crate::services::sso::Sso, ApiError> {
    state.sso.as_ref().ok_or_else(|| {
        ApiError::App(AppError::not_found(
            "single sign-on is not configured on this server: sign in with a username and password",
        ))
    })
}

/// Where single sign-on starts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SsoStart {
    /// Where the browser goes after signing in (a local path).
    #[serde(default)]
    pub next: Option<String>,
}

/// Sign in with single sign-on: redirects the browser to the OpenID provider.
///
/// 404 when single sign-on is not configured (`--oidc-issuer`).
#[utoipa::path(
    get, path = "/auth/oidc/start", tag = "auth", params(SsoStart),
    responses(
        (status = 303, description = "Redirected to the provider (or back to the sign-in page if it cannot be reached)"),
        (status = 404, description = "Single sign-on is not configured", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sso_start(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<SsoStart>,
    req: Request,
) -> Result<Response, ApiError> {
    let sso = configured(&state)?;
    let next = safe_next(q.next.as_deref());
    match sso.start(&next, client_addr(&state, &req)).await {
        Ok((url, st)) => {
            let mut res = Redirect::to(&url).into_response();
            res.headers_mut().insert(
                header::SET_COOKIE,
                sso_cookie(state.http.secure_cookies, Some(&st)),
            );
            Ok(res)
        }
        Err(SsoError::Refused(why)) => {
            Ok(Redirect::to(&format!("/login?error={}", why.code())).into_response())
        }
        Err(SsoError::App(e)) => Err(ApiError::App(e)),
    }
}

fn sso_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-stellar_sso"
    } else {
        "stellar_sso"
    }
}

/// The cookie that binds a sign-in's `state` to the browser that started it: sent back on the
/// provider's redirect (a top-level GET, so `SameSite=Lax` carries it), to the callback only.
fn sso_cookie(secure: bool, state: Option<&str>) -> header::HeaderValue {
    let mut c = cookie::Cookie::build((sso_cookie_name(secure), state.unwrap_or("").to_owned()))
        .path("/auth/oidc")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            crate::services::sso::LOGIN_TTL.num_seconds(),
        ))
        .build();
    if state.is_none() {
        c.make_removal();
    }
    header::HeaderValue::from_str(&c.to_string()).unwrap_or(header::HeaderValue::from_static(""))
}

/// What the provider sends back.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SsoCallback {
    /// The authorization code.
    #[serde(default)]
    pub code: Option<String>,
    /// The `state` this server sent.
    #[serde(default)]
    pub state: Option<String>,
    /// The provider's error code, when it refused.
    #[serde(default)]
    pub error: Option<String>,
    /// The issuer that answers (RFC 9207), when the provider says.
    #[serde(default)]
    pub iss: Option<String>,
}

/// The provider's callback: checks the sign-in, then sets the session cookie and redirects to
/// where the sign-in started; a refusal goes back to the sign-in page, which says why.
#[utoipa::path(
    get, path = "/auth/oidc/callback", tag = "auth", params(SsoCallback),
    responses(
        (status = 303, description = "Signed in and redirected, or refused and sent back to the sign-in page"),
        (status = 404, description = "Single sign-on is not configured", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sso_callback(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<SsoCallback>,
    req: Request,
) -> Result<Response, ApiError> {
    let sso = configured(&state)?;
    let refused = |code: &str| Ok(Redirect::to(&format!("/login?error={code}")).into_response());
    let (Some(code), Some(st)) = (q.code.as_deref(), q.state.as_deref()) else {
        // The provider refused (the user cancelled, or it does not know this client).
        return refused(if q.error.is_some() {
            "sso_provider"
        } else {
            "sso_state"
        });
    };
    if code.len() > 4096 || st.len() > 512 {
        return refused("sso_state");
    }
    // RFC 9207: an answer from another issuer is a mix-up attack.
    if q.iss.as_deref().is_some_and(|iss| iss != sso.issuer()) {
        return refused("sso_provider");
    }
    let addr = client_addr(&state, &req);
    let secure = state.http.secure_cookies;
    let bound = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == sso_cookie_name(secure))
        .map(|c| c.value().to_owned());
    let outcome = sso.finish(code, st, bound.as_deref(), addr).await;
    // The sign-in's cookie has done its work, whatever the outcome.
    let mut res = match outcome {
        Ok((session, _, next)) => {
            let max_age = (session.expires_at - chrono::Utc::now())
                .num_seconds()
                .max(1);
            let cookie =
                session_cookie(state.http.secure_cookies, Some((&session.secret, max_age)));
            let mut res = Redirect::to(&safe_next(Some(&next))).into_response();
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            res
        }
        Err(SsoError::Refused(why)) => {
            Redirect::to(&format!("/login?error={}", why.code())).into_response()
        }
        Err(SsoError::App(e)) => return Err(ApiError::App(e)),
    };
    res.headers_mut()
        .append(header::SET_COOKIE, sso_cookie(secure, None));
    Ok(res)
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
