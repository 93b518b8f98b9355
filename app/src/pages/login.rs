//! Sign-in: a plain HTML form posted to `/auth/login`, so it works before and without
//! JavaScript. The server answers a failure by redirecting here with `?error=`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

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
        </section>
    }
}
