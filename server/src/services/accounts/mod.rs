//! Accounts: sign-in and sessions ([`sessions`]), API tokens ([`tokens`]), tenants
//! ([`tenants`]) and users ([`users`]), and the dashboard counts.
//!
//! Every public method takes the caller's [`Principal`] and authorizes it with
//! [`app::authz::authorize`]; the command line and the demo seed act as
//! [`Principal::operator`]. Every change appends its ledger entry in the same transaction.

mod sessions;
mod tenants;
mod tokens;
mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::api::backend::{PortalBackend, Principal};
use app::authz::{Action, TenantScope, authorize, tenant_scope};
use app::error::AppError;
use app::types::{
    ApiToken, CreatedApiToken, Dashboard, Me, NewApiToken, NewTenant, NewUser, Role, Tenant,
    TenantRef, User, UserUpdate,
};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};
use tokio::sync::Semaphore;

pub use self::sessions::NewSession;
pub use self::tokens::TOKEN_PREFIX;
use super::ledger_store::LedgerStore;
use super::throttle::AddressLimiter;
use super::{db_error, timestamp};
pub use crate::config::AuthSettings;
use crate::db::entities::{api_token, session, tenant, user};
use crate::domain::Password;

/// Sign-in attempts one address may start in a burst before waiting (in memory, per instance).
const ADDRESS_BURST: u32 = 60;
/// … and how many per minute after that.
const ADDRESS_PER_MINUTE: u32 = 60;

/// Accounts, backed by the database.
#[derive(Clone, Debug)]
pub struct Accounts {
    conn: DatabaseConnection,
    settings: AuthSettings,
    ledger: LedgerStore,
    /// Password hashing runs off the async workers, at most this many at once.
    hashing: Arc<Semaphore>,
    addresses: AddressLimiter,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(365))
}

fn tenant_not_found(slug: &str) -> AppError {
    AppError::not_found(format!("there is no tenant `{slug}` that you can see"))
}

fn user_not_found(name: &str) -> AppError {
    AppError::not_found(format!("there is no user `{name}` that you can see"))
}

fn stored_role(u: &user::Model) -> Result<Role, AppError> {
    u.role
        .parse()
        .map_err(|e| AppError::internal(format!("stored account is damaged: {e}")))
}

impl Accounts {
    pub fn new(conn: DatabaseConnection, settings: AuthSettings, ledger: LedgerStore) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Accounts {
            conn,
            settings,
            ledger,
            hashing: Arc::new(Semaphore::new(cores.max(1))),
            addresses: AddressLimiter::new(ADDRESS_BURST, ADDRESS_PER_MINUTE),
        }
    }

    pub fn settings(&self) -> AuthSettings {
        self.settings
    }

    /// Runs a password hash or check on the blocking pool, behind the hashing semaphore, so
    /// that a burst of sign-ins never stalls the async workers that answer everything else.
    async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AppError::internal("the password hasher is shutting down"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::internal(format!("password hashing stopped: {e}")))
    }

    /// Hashes a new password off the async workers.
    async fn hash(&self, password: Password) -> Result<String, AppError> {
        self.hashing(move || crate::secrets::hash_password(&password))
            .await?
            .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))
    }

    /// The principal of a user, as if they had signed in: only for the demo seed, which
    /// submits the demo plugins as their partners do.
    pub async fn act_as(&self, username: &str) -> Result<Principal, AppError> {
        let u = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| user_not_found(username))?;
        self.principal_for(u, None, app::authz::Scope::ALL.to_vec())
            .await
    }

    /// Periodic upkeep: forgets idle address buckets.
    /// Whether a sign-in attempt from `addr` is within the per-address limit (single sign-on's
    /// routes share the password sign-in's limiter).
    pub(crate) fn address_allowed(&self, addr: Option<IpAddr>) -> bool {
        addr.is_none_or(|a| self.addresses.check(a))
    }

    pub fn forget_idle_addresses(&self) {
        self.addresses.forget_idle();
    }

    /// The principal of a stored user.
    async fn principal_for(
        &self,
        u: user::Model,
        csrf_token: Option<String>,
        scopes: Vec<app::authz::Scope>,
    ) -> Result<Principal, AppError> {
        let role = stored_role(&u)?;
        let tenant = match u.tenant_id {
            Some(id) => tenant::Entity::find_by_id(id)
                .one(&self.conn)
                .await
                .map_err(db_error)?,
            None => None,
        };
        Ok(Principal {
            user_id: u.id,
            tenant_id: tenant.as_ref().map(|t| t.id),
            me: Me {
                username: u.username,
                display_name: u.display_name,
                role,
                tenant: tenant.map(|t| TenantRef {
                    slug: t.slug,
                    name: t.name,
                }),
            },
            csrf_token,
            scopes,
        })
    }

    /// The slug of a user's tenant, if any.
    async fn tenant_slug_of(&self, u: &user::Model) -> Result<Option<String>, AppError> {
        Ok(match u.tenant_id {
            Some(id) => tenant::Entity::find_by_id(id)
                .one(&self.conn)
                .await
                .map_err(db_error)?
                .map(|t| t.slug),
            None => None,
        })
    }

    async fn tenant_slugs(&self) -> Result<HashMap<i32, String>, AppError> {
        Ok(tenant::Entity::find()
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|t| (t.id, t.slug))
            .collect())
    }

    /// Counts for the dashboard, scoped to the caller's tenant for partners.
    pub async fn dashboard(&self, who: &Principal) -> Result<Dashboard, AppError> {
        authorize(who, Action::UseAccount)?;
        let t = now();
        let c = &self.conn;
        let active_token = api_token::Column::RevokedAt.is_null().and(
            api_token::Column::ExpiresAt
                .is_null()
                .or(api_token::Column::ExpiresAt.gt(t)),
        );
        match tenant_scope(who) {
            TenantScope::All => Ok(Dashboard {
                tenant: None,
                tenants: tenant::Entity::find().count(c).await.map_err(db_error)?,
                users: user::Entity::find().count(c).await.map_err(db_error)?,
                partners: user::Entity::find()
                    .filter(user::Column::Role.eq(Role::Partner.as_str()))
                    .count(c)
                    .await
                    .map_err(db_error)?,
                active_tokens: api_token::Entity::find()
                    .filter(active_token)
                    .count(c)
                    .await
                    .map_err(db_error)?,
                active_sessions: session::Entity::find()
                    .filter(session::Column::ExpiresAt.gt(t))
                    .count(c)
                    .await
                    .map_err(db_error)?,
            }),
            scope => {
                let tenant_id = scope.only().unwrap_or(-1);
                let member_ids: Vec<i32> = user::Entity::find()
                    .filter(user::Column::TenantId.eq(tenant_id))
                    .select_only()
                    .column(user::Column::Id)
                    .into_tuple()
                    .all(c)
                    .await
                    .map_err(db_error)?;
                let members = member_ids.len() as u64;
                let active_tokens = api_token::Entity::find()
                    .filter(active_token)
                    .filter(api_token::Column::UserId.is_in(member_ids.clone()))
                    .count(c)
                    .await
                    .map_err(db_error)?;
                let active_sessions = session::Entity::find()
                    .filter(session::Column::ExpiresAt.gt(t))
                    .filter(session::Column::UserId.is_in(member_ids))
                    .count(c)
                    .await
                    .map_err(db_error)?;
                Ok(Dashboard {
                    tenant: who.me.tenant.clone(),
                    tenants: 1,
                    users: members,
                    partners: members,
                    active_tokens,
                    active_sessions,
                })
            }
        }
    }
}

fn user_view(u: user::Model, slugs: &HashMap<i32, String>) -> Result<User, AppError> {
    let role = stored_role(&u)?;
    Ok(User {
        tenant: u.tenant_id.and_then(|id| slugs.get(&id).cloned()),
        username: u.username,
        display_name: u.display_name,
        role,
        disabled: u.disabled,
        created_at: timestamp(u.created_at),
    })
}

fn tenant_view(t: tenant::Model, members: u64) -> Tenant {
    Tenant {
        slug: t.slug,
        name: t.name,
        members,
        created_at: timestamp(t.created_at),
    }
}

#[async_trait::async_trait]
impl PortalBackend for Accounts {
    async fn dashboard(&self, who: &Principal) -> Result<Dashboard, AppError> {
        Accounts::dashboard(self, who).await
    }

    async fn list_tenants(&self, who: &Principal) -> Result<Vec<Tenant>, AppError> {
        Accounts::list_tenants(self, who).await
    }

    async fn create_tenant(&self, who: &Principal, input: NewTenant) -> Result<Tenant, AppError> {
        Accounts::create_tenant(self, who, input).await
    }

    async fn list_users(&self, who: &Principal) -> Result<Vec<User>, AppError> {
        Accounts::list_users(self, who).await
    }

    async fn create_user(&self, who: &Principal, input: NewUser) -> Result<User, AppError> {
        Accounts::create_user(self, who, input).await
    }

    async fn update_user(
        &self,
        who: &Principal,
        username: &str,
        input: UserUpdate,
    ) -> Result<User, AppError> {
        Accounts::update_user(self, who, username, input).await
    }

    async fn list_tokens(&self, who: &Principal) -> Result<Vec<ApiToken>, AppError> {
        Accounts::list_tokens(self, who).await
    }

    async fn create_token(
        &self,
        who: &Principal,
        input: NewApiToken,
    ) -> Result<CreatedApiToken, AppError> {
        Accounts::create_token(self, who, input).await
    }

    async fn revoke_token(&self, who: &Principal, id: &str) -> Result<ApiToken, AppError> {
        Accounts::revoke_token(self, who, id).await
    }
}
