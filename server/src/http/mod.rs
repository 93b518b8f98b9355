//! The HTTP surface: one router per area merged once in [`build_app`], which does no IO.
//!
//! Layers, outermost first: observe (request id, span, metrics) → problem documents → security
//! headers → header limit → panic catcher → timeout → body limit → authentication and access →
//! routes.
//!
//! **Boundary:** handlers are thin: they extract, call one service method with the caller's
//! [`Principal`](app::api::backend::Principal), and answer. [`AppState`] holds only services
//! whose methods authorize their caller (and the public readiness check).

pub mod access;
pub mod api_accounts;
pub mod api_fleet;
pub mod api_keys;
pub mod api_ledger;
pub mod api_pipeline;
pub mod api_releases;
pub mod api_submissions;
pub mod auth;
pub mod extract;
pub mod headers;
pub mod health;
pub mod limits;
pub mod observe;
pub mod problem;
pub mod session;

use std::sync::{Arc, OnceLock};

use app::api::backend::{SharedBackend, SharedLedger};
use app::{App, shell};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa_axum::router::OpenApiRouter;

use crate::config::HttpConfig;
use crate::services::accounts::Accounts;
use crate::services::keys::Keyring;
use crate::services::ledger::Ledger;
use crate::services::signing::Signing;
use crate::services::submissions::Submissions;
use crate::services::{Health, Services};
use access::{API_RULES, Access};
use limits::{BodyLimits, limit_body};
use problem::Problem;

/// What every handler can reach: services that authorize their caller, and configuration. One
/// pointer: every middleware layer and extractor clones it per request, so a clone must not
/// touch each service.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state's contents.
pub struct Shared {
    pub http: Arc<HttpConfig>,
    pub accounts: Accounts,
    /// Signing keys: listed to callers allowed to, and the public trust root.
    pub keys: Keyring,
    pub ledger: Ledger,
    /// Offline signing requests.
    pub signing: Signing,
    pub submissions: Submissions,
    pub releases: crate::services::releases::Releases,
    pub pipelines: crate::services::pipelines::Pipelines,
    pub calendar: crate::services::calendar::CalendarService,
    pub webhooks: crate::services::webhooks::Webhooks,
    pub fleet: crate::services::fleet::Fleet,
    /// Single sign-on, when configured.
    pub sso: Option<crate::services::sso::Sso>,
    pub health: Health,
    pub metrics: PrometheusHandle,
    pub leptos_options: LeptosOptions,
    /// The OpenAPI document, serialised once when the router is built.
    pub openapi: Arc<OnceLock<String>>,
}

impl AppState {
    /// The state of a router over these services.
    pub fn new(http: &HttpConfig, s: &Services, metrics: PrometheusHandle) -> Self {
        AppState(Arc::new(Shared {
            leptos_options: leptos_options(http),
            http: Arc::new(http.clone()),
            accounts: s.accounts.clone(),
            keys: s.keys.clone(),
            ledger: s.ledger.clone(),
            signing: s.signing.clone(),
            submissions: s.submissions.clone(),
            releases: s.releases.clone(),
            pipelines: s.pipelines.clone(),
            calendar: s.calendar.clone(),
            webhooks: s.webhooks.clone(),
            fleet: s.fleet.clone(),
            sso: s.sso.clone(),
            health: Health::new(s.db.clone()),
            metrics,
            openapi: Arc::new(OnceLock::new()),
        }))
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.leptos_options.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stellar API",
        description = "Trusted delivery and governance for the plugin marketplace. Errors are \
            `application/problem+json` (RFC 9457). Authenticate with `Authorization: Bearer <token>` \
            (API tokens) or the portal session cookie plus the `x-csrf-token` header on state changes. \
            The roles listed in each operation's security requirement may call it.",
        license(name = "Apache-2.0"),
    ),
    tags(
        (name = "meta", description = "Versions"),
        (name = "auth", description = "Sign-in and sign-out"),
        (name = "accounts", description = "The caller"),
        (name = "tenants", description = "Partner organisations"),
        (name = "users", description = "User accounts"),
        (name = "tokens", description = "API tokens"),
        (name = "ledger", description = "The audit ledger: entries, signed checkpoints, proofs, export, verification"),
        (name = "keys", description = "Signing keys, the trust root, and offline signing requests"),
        (name = "operations", description = "Health and metrics"),
        (name = "fleet", description = "The fleet: the host channel, bundles, health reports (fleet tokens), fleet tokens and the fleet overview"),
    ),
    components(schemas(Problem)),
)]
struct ApiDoc;

/// The OpenAPI document of the routes, with security requirements taken from the access table.
fn openapi_doc(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token (`stl_…`)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "fleet",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A fleet token (`stf_…`), made by a platform user for a host or a host group",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "stellar_session",
            "The portal session; state changes also need the `x-csrf-token` header",
        ))),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op.as_mut() else { continue };
            let rule = API_RULES
                .iter()
                .find(|r| r.method == method && r.path == path);
            document_problems(op, rule.map(|r| r.access));
            op.security = Some(match rule.map(|r| r.access) {
                Some(Access::Signed(action)) => {
                    let names: Vec<&str> = action.roles().iter().map(|r| r.as_str()).collect();
                    vec![
                        SecurityRequirement::new("bearer", names.clone()),
                        SecurityRequirement::new("session", names),
                    ]
                }
                Some(Access::Host) => vec![SecurityRequirement::new("fleet", Vec::<String>::new())],
                // Public, or (a bug the tests catch) missing from the access table.
                _ => vec![SecurityRequirement::default()],
            });
        }
    }
    doc
}

/// A problem response, as documented.
fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            problem::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// Documents the problems every operation can answer, beside its own: a request that cannot be
/// read (400), a body of the wrong media type (415) or that fails a rule the schema cannot say
/// (422), sign-in and role refusals on protected routes (401, 403), and any other status as a
/// problem document (`default`: 404, 409, 413, 429, 503 and the rest).
fn document_problems(op: &mut utoipa::openapi::path::Operation, access: Option<Access>) {
    let responses = &mut op.responses.responses;
    let mut add = |code: &str, description: &str| {
        responses
            .entry(code.to_owned())
            .or_insert_with(|| problem_response(description));
    };
    add(
        "400",
        "The request could not be read: a malformed path, query or body",
    );
    if op.request_body.is_some() {
        add(
            "415",
            "The body is not of the documented media type (send `content-type`)",
        );
        add(
            "422",
            "The body is well formed but breaks a rule: the `detail` and `field` say which",
        );
    }
    if let Some(Access::Signed(_) | Access::Host) = access {
        add(
            "401",
            "No credential, or an API token that is unknown, expired or revoked",
        );
        add(
            "403",
            "The caller's role or token scope may not do this (the `detail` says who may)",
        );
    }
    add(
        "default",
        "Any other answer is a problem document (RFC 9457) with the request id",
    );
}

/// The OpenAPI document itself.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
async fn openapi_json(State(s): State<AppState>) -> Response {
    let body = s.openapi.get().cloned().unwrap_or_default();
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Paths that match no route: a problem for API paths, the portal's "not found" page otherwise.
async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if problem::is_api_path(&path) {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!("there is no API route `{path}`: see /api/openapi.json for the routes"),
        )
        .into_response_with_status();
    }
    let handler = leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        portal_context(&state),
        shell,
    );
    handler(req.uri().clone(), State(state), req).await
}

/// What the portal's server functions reach: the backends, provided as context.
fn portal_context(state: &AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    let backend: SharedBackend = Arc::new(state.accounts.clone());
    let ledger: SharedLedger = Arc::new(state.ledger.clone());
    let submissions: app::api::backend::SharedSubmissions = Arc::new(state.submissions.clone());
    let delivery: app::api::backend::SharedDelivery = Arc::new(state.releases.clone());
    let fleet: app::api::backend::SharedFleet = Arc::new(state.fleet.clone());
    let portal = app::types::PortalInfo {
        sso: state.sso.as_ref().map(|s| s.label().to_owned()),
    };
    move || {
        provide_context(portal.clone());
        provide_context(fleet.clone());
        provide_context(backend.clone());
        provide_context(ledger.clone());
        provide_context(submissions.clone());
        provide_context(delivery.clone());
    }
}

/// The portal's routes, computed once per process. Leptos suppresses resource loading
/// process-wide while it generates a route list, so generating it again while another router
/// in the same process renders (as integration tests do) could stall that render.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: OnceLock<Vec<leptos_axum::AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Builds the whole router. Does no IO.
pub fn build_app(state: AppState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api_accounts::router())
        .merge(api_ledger::router())
        .merge(api_keys::router())
        .merge(api_submissions::router())
        .merge(api_releases::router())
        .merge(api_fleet::router())
        .merge(api_pipeline::router())
        .merge(health::router())
        .merge(session::router())
        .routes(utoipa_axum::routes!(openapi_json))
        .split_for_parts();
    let doc = openapi_doc(doc);
    let _ = state
        .openapi
        .set(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));

    let context = portal_context(&state);
    let routes = route_list();
    let pkg_dir = state.leptos_options.site_root.as_ref().to_owned() + "/pkg";
    let config = state.http.clone();
    let max_bundle_bytes = state.submissions.settings().limits.max_bundle_bytes;

    Router::new()
        .merge(api)
        .leptos_routes_with_context(&state, routes, context, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        .fallback(fallback)
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn_with_state(
            BodyLimits {
                default: config.max_body_bytes,
                // The multipart envelope around a bundle is small; 64 KiB covers it.
                upload: usize::try_from(max_bundle_bytes)
                    .unwrap_or(usize::MAX)
                    .saturating_add(64 * 1024),
            },
            limit_body,
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(problem::panic_response))
        .layer(from_fn_with_state(
            config.max_header_bytes,
            limits::limit_headers,
        ))
        .layer(from_fn(headers::security_headers))
        .layer(from_fn(problem::finish_problems))
        .layer(from_fn(observe::observe))
        .with_state(state)
}

/// Leptos options for serving the compiled portal from `site_root`.
pub fn leptos_options(config: &HttpConfig) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("stellar")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build()
}
