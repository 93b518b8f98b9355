//! The page shell: document, header with role-based navigation, footer, and shared views for
//! loading, errors, "not found" and "forbidden".

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::authz::Action;
use crate::error::AppError;
use crate::pages::{
    AdminPage, ApprovalsPage, CalendarPage, DashboardPage, FleetPage, LedgerPage, LoginPage,
    ReleasePage, ReleasesPage, SubmissionPage, SubmissionsPage, TokensPage, UploadPage,
    WebhooksPage,
};
use crate::types::{PortalInfo, SessionView};

/// The Content-Security-Policy of a portal page: scripts from this origin or carrying this
/// response's nonce (Leptos puts it on every inline script it emits), WebAssembly compilation
/// for the hydrate module, and nothing inline without the nonce.
#[cfg(feature = "ssr")]
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// Sets the page's Content-Security-Policy for the nonce of this response.
#[cfg(feature = "ssr")]
fn set_page_policy() {
    if let (Some(nonce), Some(options)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) && let Ok(value) = http::HeaderValue::from_str(&page_policy(&nonce))
    {
        options.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The signed-in session, known synchronously on both sides: the server reads it from the
/// request; the browser reads the copy the server embedded in the page. (A resource would do,
/// but reading one resource under several `<Suspense>` boundaries is where Leptos' streaming has
/// had lost-wakeup bugs; the session does not need to be async.)
#[derive(Clone)]
pub(crate) struct Session(pub Option<SessionView>);

const SESSION_ELEMENT: &str = "stellar-session";

fn initial_session() -> Option<SessionView> {
    #[cfg(feature = "ssr")]
    {
        crate::api::backend::principal_opt().map(|p| SessionView {
            me: p.me,
            csrf_token: p.csrf_token.unwrap_or_default(),
        })
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        document()
            .get_element_by_id(SESSION_ELEMENT)
            .and_then(|e| e.text_content())
            .and_then(|t| serde_json::from_str(&t).ok())
            .flatten()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        None
    }
}

const PORTAL_ELEMENT: &str = "stellar-portal";

/// The server's portal settings, known synchronously on both sides like the session.
fn initial_portal() -> PortalInfo {
    #[cfg(feature = "ssr")]
    {
        use_context::<PortalInfo>().unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        document()
            .get_element_by_id(PORTAL_ELEMENT)
            .and_then(|e| e.text_content())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        PortalInfo::default()
    }
}

/// The session as JSON that is safe inside a `<script>` element.
fn session_json(session: &Option<SessionView>) -> String {
    serde_json::to_string(session)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

/// The portal application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = initial_session();
    let json = session_json(&session);
    provide_context(Session(session.clone()));
    let portal = initial_portal();
    let portal_json = serde_json::to_string(&portal)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c");
    provide_context(portal);
    // Marks the page as hydrated (end-to-end tests wait for it before they test interactions).
    #[cfg(feature = "hydrate")]
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/stellar.css"/>
        <Title formatter=|text: String| format!("{text} · Stellar")/>
        <script type="application/json" id=SESSION_ELEMENT inner_html=json></script>
        <script type="application/json" id=PORTAL_ELEMENT inner_html=portal_json></script>
        <Router>
            <a class="skip-link" href="#main" on:click=skip_to_main>
                "Skip to main content"
            </a>
            <Header session/>
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=DashboardPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens") view=TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async/>
                    <Route path=path!("/ledger") view=LedgerPage ssr=SsrMode::Async/>
                    <Route path=path!("/submissions") view=SubmissionsPage ssr=SsrMode::Async/>
                    <Route path=path!("/submissions/new") view=UploadPage ssr=SsrMode::Async/>
                    <Route path=path!("/submissions/:id") view=SubmissionPage ssr=SsrMode::Async/>
                    <Route path=path!("/releases") view=ReleasesPage ssr=SsrMode::Async/>
                    <Route path=path!("/releases/:id") view=ReleasePage ssr=SsrMode::Async/>
                    <Route path=path!("/approvals") view=ApprovalsPage ssr=SsrMode::Async/>
                    <Route path=path!("/calendar") view=CalendarPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks") view=WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/fleet") view=FleetPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="site-footer">
                <p>"Stellar — trusted delivery for the plugin marketplace"</p>
            </footer>
        </Router>
    }
}

/// The skip link moves keyboard focus to the main content. Without JavaScript the browser does
/// it for `#main` (focusable with `tabindex="-1"`); after hydration the router would take the
/// click as a navigation, so the handler focuses the element itself and records the fragment
/// without navigating.
fn skip_to_main(ev: leptos::ev::MouseEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(main) = document()
            .get_element_by_id("main")
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            ev.prevent_default();
            if let Ok(history) = window().history() {
                let _ =
                    history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("#main"));
            }
            let _ = main.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

#[component]
fn Header(session: Option<SessionView>) -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span aria-hidden="true">"✦"</span>
                " Stellar"
            </a>
            {match session {
                Some(s) => view! { <SignedInNav session=s/> }.into_any(),
                None => {
                    view! {
                        <nav aria-label="Main">
                            <a href="/login">"Sign in"</a>
                        </nav>
                    }
                        .into_any()
                }
            }}
        </header>
    }
}

#[component]
fn SignedInNav(session: SessionView) -> impl IntoView {
    let role = session.me.role;
    let tenant = session.me.tenant.clone().map(|t| t.name);
    view! {
        <nav aria-label="Main">
            <ul class="nav-links">
                <li>
                    <A href="/">"Dashboard"</A>
                </li>
                <li>
                    <A href="/submissions">"Submissions"</A>
                </li>
                <li>
                    <A href="/releases">"Releases"</A>
                </li>
                {Action::DecideRelease
                    .allows(role)
                    .then(|| {
                        view! {
                            <li>
                                <A href="/approvals">"Approvals" <InboxBadge/></A>
                            </li>
                        }
                    })}
                <li>
                    <A href="/tokens">"API tokens"</A>
                </li>
                {Action::ReadLedger
                    .allows(role)
                    .then(|| {
                        view! {
                            <li>
                                <A href="/ledger">"Ledger"</A>
                            </li>
                        }
                    })}
                {Action::ManageAccounts.allows(role)
                    .then(|| {
                        view! {
                            <li>
                                <A href="/admin">"Admin"</A>
                            </li>
                        }
                    })}
                {Action::ReadFleet
                    .allows(role)
                    .then(|| {
                        view! {
                            <li>
                                <A href="/fleet">"Fleet"</A>
                            </li>
                        }
                    })}
                {Action::ManageWebhooks.allows(role)
                    .then(|| {
                        view! {
                            <li>
                                <A href="/webhooks">"Webhooks"</A>
                            </li>
                        }
                    })}
            </ul>
        </nav>
        <div class="whoami">
            <span class="user">{session.me.display_name.clone()}</span>
            <span class="badge" title="Role">
                {role.label()}
            </span>
            {tenant.map(|t| view! { <span class="badge tenant" title="Tenant">{t}</span> })}
            <form method="post" action="/auth/logout" class="inline">
                <input type="hidden" name="csrf_token" value=session.csrf_token.clone()/>
                <button type="submit" class="link-button">
                    "Sign out"
                </button>
            </form>
        </div>
    }
}

/// How many releases wait for the signed-in user's decision, next to "Approvals".
#[component]
fn InboxBadge() -> impl IntoView {
    let count = Resource::new(|| (), |_| crate::api::get_inbox_count());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match count.await {
                    Ok(n) if n > 0 => view! {
                        " "
                        <span class="count" data-testid="inbox-count">{n}</span>
                        <span class="visually-hidden">" waiting for you"</span>
                    }
                    .into_any(),
                    _ => ().into_any(),
                }
            })}
        </Suspense>
    }
}

/// Shown while data loads.
pub(crate) fn loading() -> impl IntoView {
    view! {
        <p class="muted" role="status">
            "Loading…"
        </p>
    }
}

/// An error, said plainly, in an alert region.
#[component]
pub(crate) fn ErrorNotice(error: AppError) -> impl IntoView {
    let heading = match &error {
        AppError::Unauthenticated { .. } => "Signed out",
        AppError::Forbidden { .. } => "Not allowed",
        AppError::NotFound { .. } => "Not found",
        AppError::Invalid { .. } => "Check the input",
        AppError::Conflict { .. } => "Already exists",
        AppError::TooManyRequests { .. } => "Too many attempts",
        AppError::Internal { .. } | AppError::Transport { .. } => "Something went wrong",
    };
    view! {
        <div class="alert" role="alert">
            <strong>{heading}</strong>
            " "
            {error.to_string()}
        </div>
    }
}

/// The page for paths that match nothing; answers 404.
#[component]
pub(crate) fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <section class="card narrow">
            <h1>"Not found"</h1>
            <p>"There is nothing here, or you may not see it. Check the address, or go to the "
                <a href="/">"dashboard"</a> "."
            </p>
        </section>
    }
}

/// The page for a role that may not open this page; answers 403.
#[component]
pub(crate) fn Forbidden() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::FORBIDDEN);
    }
    view! {
        <Title text="Not allowed"/>
        <section class="card narrow">
            <h1>"Not allowed"</h1>
            <p>"Your role does not give access to this page. Ask an administrator if you need it."</p>
        </section>
    }
}

/// Why a page is not shown.
pub(crate) enum Denied {
    /// Signed in, but the role may not open the page.
    Forbidden,
    /// Nobody is signed in (the session ended while the page was open).
    SignedOut,
}

impl Denied {
    /// The view shown instead of the page.
    pub(crate) fn view(self) -> AnyView {
        match self {
            Denied::Forbidden => view! { <Forbidden/> }.into_any(),
            Denied::SignedOut => view! {
                <section class="card narrow">
                    <h1>"Signed out"</h1>
                    <p>"Your session has ended. " <a href="/login">"Sign in again"</a> "."</p>
                </section>
            }
            .into_any(),
        }
    }
}

/// Checks the session against the action a page needs.
pub(crate) fn require(action: Action) -> Result<SessionView, Denied> {
    let Session(session) = expect_context();
    match session {
        Some(s) if action.allows(s.me.role) => Ok(s),
        Some(_) => Err(Denied::Forbidden),
        None => Err(Denied::SignedOut),
    }
}
