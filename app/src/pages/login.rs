//! Sign-in: a plain HTML form posted to `/auth/login`, so it works before and without
//! JavaScript. The server answers a failure by redirecting here with `?error=`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::types::PortalInfo;

/// `s` as a query value (RFC 3986: everything but the unreserved characters escaped).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a failed sign-in says, by the `error` code the server sends.
fn login_error_text(code: &str, retry: Option<String>) -> String {
    match code {
        "invalid" => "The username or password is wrong. Check both and try again.".into(),
        "throttled" => format!(
            "Too many failed attempts. Wait {} seconds, then try again.",
            retry.unwrap_or_else(|| "a few".into())
        ),
        "expired" => "Your session has expired. Sign in again.".into(),
        "csrf" => "The form was stale or came from another site. Sign in again.".into(),
        "sso_state" => "That single sign-on link was already used or is too old. Start again.".into(),
        "sso_provider" => "The single sign-on provider did not sign you in (it refused, or could not be reached). Try again, or ask your administrator.".into(),
        "sso_token" => "The single sign-on provider's answer failed a security check, so you were not signed in. Tell your administrator.".into(),
        "sso_unmapped" => "You signed in at the provider, but none of your groups gives a role in Stellar (if you had one, your Stellar account is now disabled). Ask your administrator to add you to a Stellar group.".into(),
        "sso_tenant" => "You belong to a partner group, but the provider names no partner tenant Stellar knows for you. Ask your administrator.".into(),
        "local_off" => "Password sign-in is for administrators only on this server. Sign in with single sign-on.".into(),
        "sso_busy" => "Too many sign-ins right now. Wait a minute, then try again.".into(),
        "sso_disabled" => "Your Stellar account is disabled. Ask your administrator.".into(),
        _ => "Sign-in failed. Try again.".into(),
    }
}

#[component]
pub(crate) fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || {
        let q = query.read();
        q.get("error")
            .map(|code| login_error_text(&code, q.get("retry")))
    };
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let username = move || query.read().get("username").unwrap_or_default();

    view! {
        <Title text="Sign in"/>
        <section class="card narrow" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in to Stellar"</h1>
            {move || {
                error()
                    .map(|text| {
                        view! {
                            <p class="alert" role="alert" id="login-error">
                                {text}
                            </p>
                        }
                    })
            }}
            <form method="post" action="/auth/login" class="stack">
                <input type="hidden" name="next" value=next/>
                <div class="field">
                    <label for="username">"Username"</label>
                    <input
                        id="username"
                        name="username"
                        type="text"
                        autocomplete="username"
                        required
                        value=username
                    />
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input
                        id="password"
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                    />
                </div>
                <button type="submit" class="primary">
                    "Sign in"
                </button>
            </form>
            {use_context::<PortalInfo>().and_then(|p| p.sso).map(|label| {
                let href = move || format!("/auth/oidc/start?next={}", urlencoding(&next()));
                view! {
                    <p class="sso">
                        // A server route, not a portal page: the router must not take the click.
                        <a class="button" href=href rel="external">{format!("Sign in with {label}")}</a>
                    </p>
                }
            })}
        </section>
    }
}
