//! The JSON API of accounts: the caller, tenants, users and API tokens, and the version the
//! server answers. Handlers are thin: extract, call the service, answer.

use app::types::{
    ApiToken, CreatedApiToken, Dashboard, Me, NewApiToken, NewTenant, NewUser, Tenant, User,
    UserUpdate, VersionInfo,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiJson, ApiPath, Auth};
use super::problem::{ApiError, Problem};
use crate::domain::Password;

/// The API versions this server answers, oldest first.
pub const API_VERSIONS: &[&str] = &["v1"];

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The routes of this module, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(me))
        .routes(routes!(dashboard))
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant))
        .routes(routes!(tenant_members))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// The server version and the API versions it answers.
#[utoipa::path(get, path = "/api/v1/version", tag = "meta",
    responses((status = 200, body = VersionInfo)))]
async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        api_versions: API_VERSIONS.iter().map(|v| (*v).to_owned()).collect(),
        current_api_version: API_VERSIONS.last().copied().unwrap_or("v1").to_owned(),
    })
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn me(Auth(who): Auth) -> Json<Me> {
    Json(who.me)
}

/// Counts for the dashboard, scoped to the caller's tenant for partners.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "accounts",
    responses((status = 200, body = Dashboard), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn dashboard(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Dashboard> {
    Ok(Json(s.accounts.dashboard(&who).await?))
}

/// Tenants the caller may see: all for staff, their own for partners.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = [Tenant]), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_tenants(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Vec<Tenant>> {
    Ok(Json(s.accounts.list_tenants(&who).await?))
}

/// Creates a tenant.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses(
        (status = 201, body = Tenant),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_tenant(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.accounts.create_tenant(&who, input).await?),
    ))
}

/// One tenant. Another tenant's answers 404 to partners.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = Tenant), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_tenant(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Tenant> {
    Ok(Json(s.accounts.get_tenant(&who, &slug).await?))
}

/// The members of a tenant. Another tenant's answers 404 to partners.
#[utoipa::path(get, path = "/api/v1/tenants/{slug}/members", tag = "tenants",
    params(("slug" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = [User]), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn tenant_members(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Vec<User>> {
    Ok(Json(s.accounts.tenant_members(&who, &slug).await?))
}

/// Every user account.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = [User]), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_users(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Vec<User>> {
    Ok(Json(s.accounts.list_users(&who).await?))
}

/// Creates a user account.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_user(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    // Checked here too so that a bad password is reported before anything else.
    Password::parse(&input.password)?;
    Ok((
        StatusCode::CREATED,
        Json(s.accounts.create_user(&who, input).await?),
    ))
}

/// One user: administrators see anyone, others only themselves.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_user(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<User> {
    Ok(Json(s.accounts.get_user(&who, &username).await?))
}

/// Changes a user: display name, disabled, password. Disabling or a new password ends the
/// user's sessions.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", request_body = UserUpdate,
    params(("username" = String, Path, description = "Username")),
    responses(
        (status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_user(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(username): ApiPath<String>,
    ApiJson(input): ApiJson<UserUpdate>,
) -> ApiResult<User> {
    Ok(Json(s.accounts.update_user(&who, &username, input).await?))
}

/// The caller's API tokens (every user's, for administrators).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = [ApiToken]), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_tokens(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Vec<ApiToken>> {
    Ok(Json(s.accounts.list_tokens(&who).await?))
}

/// Creates an API token. The secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewApiToken,
    responses(
        (status = 201, body = CreatedApiToken),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_token(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<NewApiToken>,
) -> Result<(StatusCode, Json<CreatedApiToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.accounts.create_token(&who, input).await?),
    ))
}

/// Revokes an API token: the owner's or, for administrators, anyone's.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = ApiToken), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn revoke_token(
    State(s): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiToken> {
    Ok(Json(s.accounts.revoke_token(&who, &id).await?))
}
