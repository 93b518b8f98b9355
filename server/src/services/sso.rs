//! Single sign-on with an OpenID provider: the authorization code flow with PKCE, `state` and
//! `nonce` (OpenID Connect Core 1.0 §3.1), the provider found by discovery from its issuer URL.
//! A sign-in ends in a Stellar session, like a password sign-in; the user is provisioned or
//! updated from the ID token's claims, and both are ledgered.
//!
//! **Invariants.**
//! - The ID token is checked by `openidconnect` before any claim is read: its signature against
//!   the provider's published keys (read again once when a token names a key they lack, so a
//!   rotation at the provider needs nothing here), issuer, audience, expiry and nonce. Its
//!   other claims (groups, tenant) are read from the same verified token.
//! - A `state` is used once and only by the browser that started it: the start sets it in a
//!   cookie, the callback must carry the same, and consumes it before it talks to the provider,
//!   so a replayed callback finds it used and a forwarded one (login CSRF) lacks the cookie.
//!   Sign-ins expire after [`LOGIN_TTL`].
//! - Nobody gets a role by default: a user none of whose groups is mapped is refused, as is a
//!   partner whose tenant claim is missing or names no tenant. Roles and tenants follow the
//!   provider at every sign-in.
//! - A user is found by issuer and subject, never by a name the provider chose: a local account
//!   with the same username is not taken over (the sign-in is refused).
//! - Every refusal after the provider answered is a security event in the ledger.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api::backend::Principal;
use app::error::AppError;
use app::types::Role;
use base64::Engine;
use chrono::TimeDelta;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};

use super::accounts::{Accounts, NewSession};
use super::db_error;
use super::ledger_store::{LedgerStore, Record};
use crate::db::entities::{session, sso_identity, sso_login, tenant, user};
use crate::domain::{DisplayName, Secret, Username};
use crate::secrets::{random_secret, sha256_hex};

/// How long a sign-in may take at the provider.
pub const LOGIN_TTL: TimeDelta = TimeDelta::minutes(10);
/// How long the provider's metadata and keys are used before they are read again.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// The largest answer read from the provider.
const MAX_ANSWER: usize = 1024 * 1024;

/// Stellar as the provider's client: from discovery, with an authorization endpoint and
/// perhaps token and user-info endpoints.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider and how its claims map to Stellar.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    /// From the environment only (`STELLAR_OIDC_CLIENT_SECRET`); never printed.
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    /// This server's callback, `{public URL}/auth/oidc/callback`.
    pub redirect_url: String,
    /// The claim that lists the user's groups.
    pub groups_claim: String,
    /// Group → role (and, for a partner group, perhaps its tenant), in order: the first group
    /// the user is in decides.
    pub roles: Vec<RoleMap>,
    /// The claim that names a partner's tenant (its slug).
    pub tenant_claim: String,
    /// What the sign-in page calls the provider.
    pub label: String,
    /// How long a single sign-on session lasts before the provider is asked again (where a
    /// removed user is refused and offboarded).
    pub session_ttl: Duration,
}

/// One `--oidc-role`: a group at the provider and what it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMap {
    pub group: String,
    pub role: Role,
    /// For a partner group bound to one tenant (`GROUP=partner:SLUG`): that tenant, whatever
    /// the tenant claim says.
    pub tenant: Option<String>,
}

/// Why a single sign-on failed, as the sign-in page says it (a fixed code, never text from
/// the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, used or expired `state`.
    State,
    /// The provider said no, or could not be reached.
    Provider,
    /// The ID token failed a check.
    Token,
    /// None of the user's groups maps to a role.
    Unmapped,
    /// A partner without a (known) tenant claim.
    Tenant,
    /// The user is disabled in Stellar.
    Disabled,
    /// Too many sign-ins from this address, or in flight.
    Busy,
}

impl Refusal {
    /// The code the sign-in page shows a sentence for (`/login?error=…`).
    pub fn code(self) -> &'static str {
        match self {
            Refusal::State => "sso_state",
            Refusal::Provider => "sso_provider",
            Refusal::Token => "sso_token",
            Refusal::Unmapped => "sso_unmapped",
            Refusal::Tenant => "sso_tenant",
            Refusal::Disabled => "sso_disabled",
            Refusal::Busy => "sso_busy",
        }
    }
}

/// A failed sign-in: refused (with its reason), or a fault of ours.
#[derive(Debug)]
pub enum SsoError {
    Refused(Refusal),
    App(AppError),
}

impl From<AppError> for SsoError {
    fn from(e: AppError) -> Self {
        SsoError::App(e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the provider's answer is larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error("{0}")]
    Http(#[from] axum::http::Error),
}

#[derive(Clone)]
pub struct Sso {
    inner: Arc<Inner>,
}

struct Inner {
    settings: SsoSettings,
    http: reqwest::Client,
    conn: DatabaseConnection,
    ledger: LedgerStore,
    accounts: Accounts,
    metadata: tokio::sync::RwLock<Option<(CoreProviderMetadata, Instant)>>,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("issuer", &self.inner.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// One request to the provider, through our HTTP client (no redirects, bounded answers).
async fn send(
    http: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let res = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut answer = axum::http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        answer = answer.header(k, v);
    }
    if res.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(HttpError::TooLarge);
    }
    let bytes = res.bytes().await?;
    if bytes.len() > MAX_ANSWER {
        return Err(HttpError::TooLarge);
    }
    Ok(answer.body(bytes.to_vec())?)
}

/// The string values of a claim that is a string or a list of strings.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The claims of a JWT whose signature was already checked.
fn payload(jwt: &str) -> Option<serde_json::Map<String, Value>> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What the first mapped group gives.
pub fn role_for<'a>(roles: &'a [RoleMap], groups: &[String]) -> Option<&'a RoleMap> {
    roles.iter().find(|m| groups.contains(&m.group))
}

/// The signature algorithms an ID token may use, whatever the provider advertises (never an
/// HMAC keyed with the client secret, never `none`).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 6] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
];

/// The most sign-ins in flight (started, not finished, not expired): past it, new ones wait.
const MAX_IN_FLIGHT: u64 = 10_000;
/// The longest stored list of groups (a user in very many groups keeps the first ones).
const MAX_GROUPS_TEXT: usize = 4000;

fn groups_text(groups: &[String]) -> String {
    let mut text = groups.join(" ");
    if text.len() > MAX_GROUPS_TEXT {
        let mut end = MAX_GROUPS_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Sso {
    pub fn new(
        settings: SsoSettings,
        conn: DatabaseConnection,
        ledger: LedgerStore,
        accounts: Accounts,
    ) -> Result<Self, AppError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AppError::internal(format!("the HTTP client for single sign-on: {e}")))?;
        Ok(Sso {
            inner: Arc::new(Inner {
                settings,
                http,
                conn,
                ledger,
                accounts,
                metadata: tokio::sync::RwLock::new(None),
            }),
        })
    }

    /// What the sign-in page calls the provider.
    pub fn label(&self) -> &str {
        &self.inner.settings.label
    }

    /// The provider's issuer URL.
    pub fn issuer(&self) -> &str {
        &self.inner.settings.issuer
    }

    /// The provider's metadata and keys, read by discovery (again when older than
    /// [`METADATA_TTL`], or when `fresh`).
    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, SsoError> {
        if !fresh
            && let Some((m, at)) = self.inner.metadata.read().await.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.inner.settings.issuer.clone()).map_err(|e| {
            AppError::internal(format!("the single sign-on issuer URL is not a URL: {e}"))
        })?;
        let http = self.inner.http.clone();
        let client = move |req| send(http.clone(), req);
        let m = CoreProviderMetadata::discover_async(issuer, &client)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, issuer = %self.inner.settings.issuer, "OpenID discovery failed");
                SsoError::Refused(Refusal::Provider)
            })?;
        *self.inner.metadata.write().await = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    /// Stellar as the provider's client, from its metadata and keys.
    fn client(&self, m: CoreProviderMetadata) -> Result<Client, AppError> {
        let s = &self.inner.settings;
        let redirect = RedirectUrl::new(s.redirect_url.clone())
            .map_err(|e| AppError::internal(format!("the single sign-on callback URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(s.client_id.clone()),
            s.client_secret
                .as_ref()
                .map(|c| ClientSecret::new(c.expose().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: remembers its `state`, `nonce` and PKCE verifier, and returns the
    /// provider's authorization URL to send the browser to, and the `state` (which the caller
    /// binds to the browser with a cookie).
    pub async fn start(
        &self,
        next: &str,
        client_addr: Option<IpAddr>,
    ) -> Result<(String, String), SsoError> {
        if !self.inner.accounts.address_allowed(client_addr) {
            metrics::counter!("stellar_sso_refused_total", "reason" => Refusal::Busy.code())
                .increment(1);
            return Err(SsoError::Refused(Refusal::Busy));
        }
        let m = self.metadata(false).await?;
        let s = &self.inner.settings;
        let client = self.client(m)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_secret(32);
        let nonce = random_secret(32);
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                {
                    let state = state.clone();
                    move || CsrfToken::new(state)
                },
                {
                    let nonce = nonce.clone();
                    move || Nonce::new(nonce)
                },
            )
            .set_pkce_challenge(challenge);
        for scope in s.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.url();
        let now = chrono::Utc::now();
        // Sign-ins nobody finished: gone after their lifetime.
        sso_login::Entity::delete_many()
            .filter(sso_login::Column::CreatedAt.lt(now - LOGIN_TTL))
            .exec(&self.inner.conn)
            .await
            .map_err(db_error)?;
        let in_flight = sso_login::Entity::find()
            .filter(sso_login::Column::UsedAt.is_null())
            .count(&self.inner.conn)
            .await
            .map_err(db_error)?;
        if in_flight >= MAX_IN_FLIGHT {
            metrics::counter!("stellar_sso_refused_total", "reason" => Refusal::Busy.code())
                .increment(1);
            return Err(SsoError::Refused(Refusal::Busy));
        }
        sso_login::ActiveModel {
            state_hash: Set(sha256_hex(&state)),
            nonce: Set(nonce),
            pkce_verifier: Set(verifier.secret().clone()),
            next: Set(next.to_owned()),
            created_at: Set(now),
            used_at: Set(None),
        }
        .insert(&self.inner.conn)
        .await
        .map_err(db_error)?;
        Ok((url.to_string(), state))
    }

    /// A sign-in refused: counted, and a security event in the ledger once the provider
    /// answered (a bad `state` is anyone's request, and is only counted and logged).
    async fn refuse(&self, why: Refusal, details: Value) -> SsoError {
        metrics::counter!("stellar_sso_refused_total", "reason" => why.code()).increment(1);
        if matches!(why, Refusal::State | Refusal::Busy) {
            tracing::info!(reason = why.code(), %details, "single sign-on refused");
            return SsoError::Refused(why);
        }
        if let Err(e) = self
            .inner
            .ledger
            .record(Record {
                actor: "sso".into(),
                tenant: None,
                action: "login.sso.refused".into(),
                subject: why.code().into(),
                details,
            })
            .await
        {
            return SsoError::App(e);
        }
        SsoError::Refused(why)
    }

    /// Finishes a sign-in at the callback: checks that the `state` is this browser's (`bound`,
    /// from the cookie the start set), consumes it, exchanges the code, checks the ID token,
    /// provisions or updates the user, and opens a session. Returns where to go.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        bound: Option<&str>,
        client_addr: Option<IpAddr>,
    ) -> Result<(NewSession, Principal, String), SsoError> {
        // Login CSRF: a callback carrying someone else's sign-in (a code for the attacker's
        // account) comes without this browser's cookie.
        if !self.inner.accounts.address_allowed(client_addr) {
            return Err(self.refuse(Refusal::Busy, json!({})).await);
        }
        if !bound.is_some_and(|b| crate::secrets::constant_time_eq(b, state)) {
            return Err(self
                .refuse(
                    Refusal::State,
                    json!({"why": "the state is not the one this browser started", "addr": client_addr.map(|a| a.to_string())}),
                )
                .await);
        }
        let now = chrono::Utc::now();
        // Used once: this update wins for exactly one callback.
        let hash = sha256_hex(state);
        let taken = sso_login::Entity::update_many()
            .col_expr(sso_login::Column::UsedAt, Some(now).into())
            .filter(sso_login::Column::StateHash.eq(hash.clone()))
            .filter(sso_login::Column::UsedAt.is_null())
            .filter(sso_login::Column::CreatedAt.gt(now - LOGIN_TTL))
            .exec(&self.inner.conn)
            .await
            .map_err(db_error)?;
        if taken.rows_affected != 1 {
            return Err(self
                .refuse(
                    Refusal::State,
                    json!({"why": "unknown, used or expired state", "addr": client_addr.map(|a| a.to_string())}),
                )
                .await);
        }
        let login = sso_login::Entity::find_by_id(hash)
            .one(&self.inner.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::internal("a sign-in vanished while it was used"))?;
        let s = &self.inner.settings;
        let http = self.inner.http.clone();
        let send_fn = move |req| send(http.clone(), req);
        let m = self.metadata(false).await?;
        let client = self.client(m)?;
        let exchange = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| AppError::internal(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()));
        let tokens = match exchange.request_async(&send_fn).await {
            Ok(t) => t,
            Err(e) => {
                return Err(self
                    .refuse(
                        Refusal::Provider,
                        json!({"why": format!("the code exchange failed: {e}")}),
                    )
                    .await);
            }
        };
        let Some(id_token) = tokens.id_token() else {
            return Err(self
                .refuse(
                    Refusal::Token,
                    json!({"why": "the provider sent no ID token"}),
                )
                .await);
        };
        let nonce = Nonce::new(login.nonce.clone());
        let checked = match id_token.claims(
            &client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS),
            &nonce,
        ) {
            Ok(c) => Ok(c.clone()),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps a key the provider rotated in: read its keys again, once.
                let m = self.metadata(true).await?;
                let fresh = self.client(m)?;
                id_token
                    .claims(
                        &fresh.id_token_verifier().set_allowed_algs(ALLOWED_ALGS),
                        &nonce,
                    )
                    .cloned()
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let claims = match checked {
            Ok(c) => c,
            Err(why) => {
                return Err(self
                    .refuse(
                        Refusal::Token,
                        json!({"why": format!("the ID token was refused: {why}")}),
                    )
                    .await);
            }
        };
        let subject = claims.subject().as_str().to_owned();
        if subject.len() > 255 {
            return Err(self
                .refuse(
                    Refusal::Token,
                    json!({"why": "the subject is longer than 255 bytes"}),
                )
                .await);
        }
        let raw = serde_json::to_value(&tokens)
            .ok()
            .and_then(|v| v.get("id_token").and_then(Value::as_str).map(str::to_owned))
            .and_then(|t| payload(&t))
            .unwrap_or_default();
        let groups = strings(raw.get(&s.groups_claim));
        let who = json!({"issuer": s.issuer, "subject": subject, "groups": groups_text(&groups)});
        let Some(map) = role_for(&s.roles, &groups) else {
            self.offboard(&subject, "no mapped group").await?;
            return Err(self.refuse(Refusal::Unmapped, who).await);
        };
        let role = map.role;
        let tenant = if role == Role::Partner {
            // A group bound to a tenant decides it; otherwise the tenant claim does.
            let slug = map
                .tenant
                .clone()
                .or_else(|| strings(raw.get(&s.tenant_claim)).into_iter().next());
            let found = match slug {
                Some(slug) => tenant::Entity::find()
                    .filter(tenant::Column::Slug.eq(slug))
                    .one(&self.inner.conn)
                    .await
                    .map_err(db_error)?,
                None => None,
            };
            match found {
                Some(t) => Some(t),
                None => {
                    self.offboard(&subject, "no known tenant").await?;
                    return Err(self.refuse(Refusal::Tenant, who).await);
                }
            }
        } else {
            None
        };
        let preferred = claims
            .preferred_username()
            .map(|u| u.as_str().to_lowercase())
            .and_then(|u| Username::parse(&u).ok());
        let username = match preferred {
            Some(u) => u.as_str().to_owned(),
            None => format!(
                "sso-{}",
                &sha256_hex(&format!("{}\n{subject}", s.issuer))[..12]
            ),
        };
        let display = claims
            .name()
            .and_then(|n| n.get(None))
            .and_then(|n| DisplayName::parse("name", n.as_str()).ok())
            .map(DisplayName::into_inner)
            .unwrap_or_else(|| username.clone());
        self.provision(
            &subject,
            &username,
            &display,
            role,
            tenant.as_ref(),
            &groups,
            client_addr,
        )
        .await
        .map(|(session, principal)| (session, principal, login.next))
    }

    /// A known identity the provider no longer gives a role (or tenant): its user is disabled,
    /// its sessions end and its tokens are revoked, in one ledgered transaction.
    async fn offboard(&self, subject: &str, why: &str) -> Result<(), SsoError> {
        let s = &self.inner.settings;
        let mut a = self.inner.ledger.begin().await?;
        let Some(identity) = sso_identity::Entity::find()
            .filter(sso_identity::Column::Issuer.eq(s.issuer.clone()))
            .filter(sso_identity::Column::Subject.eq(subject))
            .one(a.txn())
            .await
            .map_err(db_error)?
        else {
            return Ok(());
        };
        let Some(u) = user::Entity::find_by_id(identity.user_id)
            .one(a.txn())
            .await
            .map_err(db_error)?
            .filter(|u| !u.disabled)
        else {
            return Ok(());
        };
        let username = u.username.clone();
        let mut active = u.into_active_model();
        active.disabled = Set(true);
        active.updated_at = Set(chrono::Utc::now());
        active.update(a.txn()).await.map_err(db_error)?;
        let sessions = session::Entity::delete_many()
            .filter(session::Column::UserId.eq(identity.user_id))
            .exec(a.txn())
            .await
            .map_err(db_error)?
            .rows_affected;
        let tokens = Accounts::revoke_all_tokens_in(a.txn(), identity.user_id).await?;
        a.append(Record {
            actor: "sso".into(),
            tenant: None,
            action: "user.sso.offboarded".into(),
            subject: username,
            details: json!({"why": why, "issuer": s.issuer, "subject": subject,
                            "sessions_ended": sessions, "tokens_revoked": tokens}),
        })
        .await?;
        a.commit().await?;
        Ok(())
    }

    /// Finds the user bound to this identity (updating role, tenant and name from the token)
    /// or creates one, and opens a session: one transaction.
    #[allow(clippy::too_many_arguments, reason = "the claims of one sign-in")]
    async fn provision(
        &self,
        subject: &str,
        username: &str,
        display: &str,
        role: Role,
        tenant: Option<&tenant::Model>,
        groups: &[String],
        client_addr: Option<IpAddr>,
    ) -> Result<(NewSession, Principal), SsoError> {
        let s = &self.inner.settings;
        let now = chrono::Utc::now();
        let mut a = self.inner.ledger.begin().await?;
        let identity = sso_identity::Entity::find()
            .filter(sso_identity::Column::Issuer.eq(s.issuer.clone()))
            .filter(sso_identity::Column::Subject.eq(subject))
            .one(a.txn())
            .await
            .map_err(db_error)?;
        let tenant_id = tenant.map(|t| t.id);
        let tenant_slug = tenant.map(|t| t.slug.clone());
        let u = match identity {
            Some(id) => {
                let u = user::Entity::find_by_id(id.user_id)
                    .one(a.txn())
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| AppError::internal("an SSO identity names no user"))?;
                if u.disabled {
                    drop(a);
                    return Err(self
                        .refuse(
                            Refusal::Disabled,
                            json!({"user": u.username, "subject": subject}),
                        )
                        .await);
                }
                let changed = u.role != role.as_str()
                    || u.tenant_id != tenant_id
                    || u.display_name != display;
                let before = json!({"role": u.role, "tenant_id": u.tenant_id});
                let mut identity = id.into_active_model();
                identity.groups = Set(groups_text(groups));
                identity.last_login_at = Set(now);
                identity.update(a.txn()).await.map_err(db_error)?;
                if changed {
                    let mut active = u.into_active_model();
                    active.role = Set(role.as_str().into());
                    active.tenant_id = Set(tenant_id);
                    active.display_name = Set(display.to_owned());
                    active.updated_at = Set(now);
                    let u = active.update(a.txn()).await.map_err(db_error)?;
                    a.append(Record {
                        actor: "sso".into(),
                        tenant: tenant_slug.clone(),
                        action: "user.sso.update".into(),
                        subject: u.username.clone(),
                        details: json!({"before": before, "role": role.as_str(), "tenant": tenant_slug, "groups": groups_text(groups)}),
                    })
                    .await?;
                    u
                } else {
                    u
                }
            }
            None => {
                // The provider's name when it is free, else one derived from the subject: a
                // name held by someone else is never taken over.
                let taken = user::Entity::find()
                    .filter(user::Column::Username.eq(username))
                    .one(a.txn())
                    .await
                    .map_err(db_error)?
                    .is_some();
                let username = if taken {
                    format!(
                        "sso-{}",
                        &sha256_hex(&format!("{}\n{subject}", s.issuer))[..12]
                    )
                } else {
                    username.to_owned()
                };
                let u = user::ActiveModel {
                    username: Set(username),
                    display_name: Set(display.to_owned()),
                    // Not a password hash: no password opens this account.
                    password_hash: Set("!sso".into()),
                    role: Set(role.as_str().into()),
                    tenant_id: Set(tenant_id),
                    disabled: Set(false),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(a.txn())
                .await
                .map_err(db_error)?;
                sso_identity::ActiveModel {
                    issuer: Set(s.issuer.clone()),
                    subject: Set(subject.to_owned()),
                    user_id: Set(u.id),
                    groups: Set(groups_text(groups)),
                    created_at: Set(now),
                    last_login_at: Set(now),
                    ..Default::default()
                }
                .insert(a.txn())
                .await
                .map_err(db_error)?;
                a.append(Record {
                    actor: "sso".into(),
                    tenant: tenant_slug.clone(),
                    action: "user.sso.create".into(),
                    subject: u.username.clone(),
                    details: json!({"issuer": s.issuer, "subject": subject, "role": role.as_str(), "tenant": tenant_slug, "groups": groups_text(groups)}),
                })
                .await?;
                u
            }
        };
        let opened = self
            .inner
            .accounts
            .open_session_in(
                &mut a,
                u,
                Some(s.session_ttl),
                "login.sso",
                json!({"addr": client_addr.map(|a| a.to_string()), "issuer": s.issuer}),
            )
            .await?;
        a.commit().await?;
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_mapped_group_decides_and_nothing_is_a_default() {
        let map = |group: &str, role| RoleMap {
            group: group.into(),
            role,
            tenant: None,
        };
        let roles = vec![
            map("stellar-admins", Role::Admin),
            map("stellar-secops", Role::Secops),
            map("acme-partners", Role::Partner),
        ];
        let g = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        for (groups, want) in [
            (g(&["stellar-secops"]), Some(Role::Secops)),
            (g(&["acme-partners", "stellar-secops"]), Some(Role::Secops)),
            (g(&["stellar-admins", "stellar-secops"]), Some(Role::Admin)),
            (g(&["marketing"]), None),
            (g(&[]), None),
            (g(&["Stellar-Secops"]), None),
        ] {
            assert_eq!(
                role_for(&roles, &groups).map(|m| m.role),
                want,
                "{groups:?}"
            );
        }
    }

    #[test]
    fn claims_are_strings_or_lists_of_strings() {
        assert_eq!(strings(Some(&json!("a"))), vec!["a"]);
        assert_eq!(strings(Some(&json!(["a", 1, "b"]))), vec!["a", "b"]);
        assert!(strings(Some(&json!(7))).is_empty());
        assert!(strings(None).is_empty());
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"groups":["x"]}"#);
        assert_eq!(
            payload(&format!("h.{body}.s")).and_then(|p| p.get("groups").cloned()),
            Some(json!(["x"]))
        );
        assert!(payload("not a jwt").is_none());
    }
}
