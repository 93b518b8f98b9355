//! Accounts: sign-in and sessions, API tokens, tenants and users, and the dashboard counts.

use std::collections::HashMap;
use std::time::Duration;

use app::api::backend::{PortalBackend, Principal};
use app::error::AppError;
use app::types::{
    ApiToken, CreatedApiToken, Dashboard, Me, NewApiToken, NewTenant, NewUser, Role, Tenant,
    TenantRef, User, UserUpdate,
};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::ledger::{Ledger, Record};
use super::throttle;
use super::{db_error, timestamp};
pub use crate::config::AuthSettings;
use crate::config::ThrottleLimits as Limits;
use crate::db::entities::{api_token, session, tenant, user};
use crate::domain::{DisplayName, Password, TenantSlug, Username, token_name};
use crate::secrets::{
    burn_verification_time, hash_password, random_secret, sha256_hex, verify_password,
};

/// Prefix of every API token secret, so that leaked tokens are easy to search for.
pub const TOKEN_PREFIX: &str = "stl_";

/// How often `last_seen_at` / `last_used_at` are written at most.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// A session just created: the secret goes into the cookie and is not stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Accounts, backed by the database.
#[derive(Clone, Debug)]
pub struct Accounts {
    conn: DatabaseConnection,
    settings: AuthSettings,
    ledger: Ledger,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(365))
}

fn wrong_credentials() -> AppError {
    AppError::Unauthenticated {
        message: "the username or password is wrong".into(),
    }
}

fn tenant_not_found(slug: &str) -> AppError {
    AppError::not_found(format!("there is no tenant `{slug}` that you can see"))
}

fn user_not_found(name: &str) -> AppError {
    AppError::not_found(format!("there is no user `{name}` that you can see"))
}

fn require_admin(who: &Principal, what: &str) -> Result<(), AppError> {
    if who.role() == Role::Admin {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "only administrators may {what}; you are signed in as {}",
            who.role()
        )))
    }
}

impl Accounts {
    pub fn new(conn: DatabaseConnection, settings: AuthSettings, ledger: Ledger) -> Self {
        Accounts {
            conn,
            settings,
            ledger,
        }
    }

    pub fn settings(&self) -> AuthSettings {
        self.settings
    }

    // ----- sign-in, sessions, tokens -------------------------------------------------------

    /// Checks a username and password and opens a session. Throttled per username and per
    /// client address; an unknown user, a disabled user and a wrong password look the same.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_addr: Option<&str>,
    ) -> Result<(NewSession, Principal), AppError> {
        let t = now();
        let name = username.trim().to_lowercase();
        let user_key = throttle::user_key(&name);
        let addr_key = client_addr.map(throttle::addr_key);
        let addr_limits = Limits {
            max_failures: self.settings.throttle.max_failures.saturating_mul(10),
            ..self.settings.throttle
        };

        for key in std::iter::once(&user_key).chain(addr_key.as_ref()) {
            if let Some(secs) = throttle::locked_for(&self.conn, key, t)
                .await
                .map_err(db_error)?
            {
                return Err(AppError::TooManyRequests {
                    retry_after_secs: secs,
                    message: format!(
                        "too many failed sign-ins for this account or address: wait {secs} seconds, then try again"
                    ),
                });
            }
        }

        // A name that cannot exist is looked up as nothing (and costs the same time).
        let lookup = Username::parse(&name)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        let found = user::Entity::find()
            .filter(user::Column::Username.eq(lookup.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let ok_user = match found {
            Some(u) if verify_password(&u.password_hash, password) && !u.disabled => Some(u),
            Some(_) => None,
            None => {
                burn_verification_time(password);
                None
            }
        };
        let Some(u) = ok_user else {
            throttle::record_failure(&self.conn, &user_key, self.settings.throttle, t)
                .await
                .map_err(db_error)?;
            if let Some(key) = &addr_key {
                throttle::record_failure(&self.conn, key, addr_limits, t)
                    .await
                    .map_err(db_error)?;
            }
            // The attempted name is attacker-chosen: keep it short and only if it could be a
            // username at all.
            let attempted = Username::parse(&name)
                .map(|u| u.as_str().to_owned())
                .unwrap_or_else(|_| "(not a username)".into());
            self.ledger
                .record(Record {
                    actor: attempted.clone(),
                    tenant: None,
                    action: "login.failed".into(),
                    subject: attempted,
                    details: serde_json::json!({ "addr": client_addr }),
                })
                .await?;
            return Err(wrong_credentials());
        };
        throttle::clear(&self.conn, &user_key)
            .await
            .map_err(db_error)?;

        let secret = random_secret(32);
        let csrf_token = random_secret(32);
        let expires_at = t + delta(self.settings.session_ttl);
        let principal = self.principal_for(u, Some(csrf_token.clone())).await?;
        let mut a = self.ledger.begin().await?;
        session::ActiveModel {
            token_hash: Set(sha256_hex(&secret)),
            user_id: Set(principal.user_id),
            csrf_token: Set(csrf_token.clone()),
            created_at: Set(t),
            last_seen_at: Set(t),
            expires_at: Set(expires_at),
            ..Default::default()
        }
        .insert(a.txn())
        .await
        .map_err(db_error)?;
        a.append(Record {
            actor: principal.me.username.clone(),
            tenant: principal.me.tenant.as_ref().map(|t| t.slug.clone()),
            action: "login".into(),
            subject: principal.me.username.clone(),
            details: serde_json::json!({ "addr": client_addr }),
        })
        .await?;
        a.commit().await?;
        Ok((
            NewSession {
                secret,
                csrf_token,
                expires_at,
            },
            principal,
        ))
    }

    /// The user behind a session cookie, if the session is valid. Expired sessions are deleted.
    pub async fn session_principal(&self, secret: &str) -> Result<Option<Principal>, AppError> {
        let t = now();
        let Some(s) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(sha256_hex(secret)))
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let idle_expired = t - s.last_seen_at > delta(self.settings.session_idle);
        if s.expires_at <= t || idle_expired {
            session::Entity::delete_by_id(s.id)
                .exec(&self.conn)
                .await
                .map_err(db_error)?;
            return Ok(None);
        }
        let Some(u) = user::Entity::find_by_id(s.user_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|u| !u.disabled)
        else {
            return Ok(None);
        };
        if t - s.last_seen_at > TOUCH_EVERY {
            let csrf = s.csrf_token.clone();
            let mut active = s.into_active_model();
            active.last_seen_at = Set(t);
            active.update(&self.conn).await.map_err(db_error)?;
            return self.principal_for(u, Some(csrf)).await.map(Some);
        }
        self.principal_for(u, Some(s.csrf_token)).await.map(Some)
    }

    /// Ends the session with this cookie secret (no error if it is already gone).
    pub async fn logout(&self, secret: &str) -> Result<(), AppError> {
        let hash = sha256_hex(secret);
        let Some(s) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(hash.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(());
        };
        let who = match user::Entity::find_by_id(s.user_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
        {
            Some(u) => self.principal_for(u, None).await?,
            None => return Ok(()),
        };
        let mut a = self.ledger.begin().await?;
        let deleted = session::Entity::delete_many()
            .filter(session::Column::TokenHash.eq(hash.as_str()))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        if deleted.rows_affected > 0 {
            a.append(Record {
                actor: who.me.username.clone(),
                tenant: who.me.tenant.as_ref().map(|t| t.slug.clone()),
                action: "logout".into(),
                subject: who.me.username.clone(),
                details: serde_json::json!({}),
            })
            .await?;
        }
        a.commit().await
    }

    /// The user behind a bearer token, if the token is valid.
    pub async fn token_principal(&self, secret: &str) -> Result<Option<Principal>, AppError> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let t = now();
        let Some(tok) = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(sha256_hex(secret)))
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        if tok.revoked_at.is_some() || tok.expires_at.is_some_and(|e| e <= t) {
            return Ok(None);
        }
        let Some(u) = user::Entity::find_by_id(tok.user_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|u| !u.disabled)
        else {
            return Ok(None);
        };
        if tok.last_used_at.is_none_or(|last| t - last > TOUCH_EVERY) {
            let mut active = tok.into_active_model();
            active.last_used_at = Set(Some(t));
            active.update(&self.conn).await.map_err(db_error)?;
        }
        self.principal_for(u, None).await.map(Some)
    }

    async fn principal_for(
        &self,
        u: user::Model,
        csrf_token: Option<String>,
    ) -> Result<Principal, AppError> {
        let role: Role = u
            .role
            .parse()
            .map_err(|e| AppError::internal(format!("stored account is damaged: {e}")))?;
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
        })
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64, AppError> {
        let t = now();
        let idle_cutoff = t - delta(self.settings.session_idle);
        let res = session::Entity::delete_many()
            .filter(
                session::Column::ExpiresAt
                    .lte(t)
                    .or(session::Column::LastSeenAt.lt(idle_cutoff)),
            )
            .exec(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(res.rows_affected)
    }

    // ----- tenants -------------------------------------------------------------------------

    async fn tenant_by_slug(&self, who: &Principal, slug: &str) -> Result<tenant::Model, AppError> {
        if TenantSlug::parse(slug).is_err() {
            return Err(tenant_not_found(slug));
        }
        let found = tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        match found {
            Some(t) if who.role().is_staff() || who.tenant_id == Some(t.id) => Ok(t),
            _ => Err(tenant_not_found(slug)),
        }
    }

    async fn member_counts(&self) -> Result<HashMap<i32, u64>, AppError> {
        let rows: Vec<Option<i32>> = user::Entity::find()
            .select_only()
            .column(user::Column::TenantId)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut counts = HashMap::new();
        for id in rows.into_iter().flatten() {
            *counts.entry(id).or_insert(0) += 1;
        }
        Ok(counts)
    }

    fn tenant_view(t: tenant::Model, members: u64) -> Tenant {
        Tenant {
            slug: t.slug,
            name: t.name,
            members,
            created_at: timestamp(t.created_at),
        }
    }

    /// One tenant, if the caller may see it.
    pub async fn get_tenant(&self, who: &Principal, slug: &str) -> Result<Tenant, AppError> {
        let t = self.tenant_by_slug(who, slug).await?;
        let members = user::Entity::find()
            .filter(user::Column::TenantId.eq(t.id))
            .count(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(Self::tenant_view(t, members))
    }

    /// The members of a tenant the caller may see.
    pub async fn tenant_members(&self, who: &Principal, slug: &str) -> Result<Vec<User>, AppError> {
        let t = self.tenant_by_slug(who, slug).await?;
        let rows = user::Entity::find()
            .filter(user::Column::TenantId.eq(t.id))
            .order_by_asc(user::Column::Username)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let slugs = HashMap::from([(t.id, t.slug)]);
        rows.into_iter().map(|u| user_view(u, &slugs)).collect()
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

    /// One user account: administrators see any, others only themselves.
    pub async fn get_user(&self, who: &Principal, username: &str) -> Result<User, AppError> {
        if (who.role() != Role::Admin && who.me.username != username)
            || Username::parse(username).is_err()
        {
            return Err(user_not_found(username));
        }
        let u = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| user_not_found(username))?;
        user_view(u, &self.tenant_slugs().await?)
    }

    /// Creates a user without an acting principal: the command line and the demo seed.
    pub async fn create_user_unchecked(
        &self,
        input: NewUser,
        password: Password,
        actor: &str,
    ) -> Result<User, AppError> {
        let username = Username::parse(&input.username)?;
        let display = if input.display_name.trim().is_empty() {
            DisplayName::parse("display_name", username.as_str())?
        } else {
            DisplayName::parse("display_name", &input.display_name)?
        };
        let tenant = match (input.role, input.tenant.as_deref().map(str::trim)) {
            (Role::Partner, Some(slug)) if !slug.is_empty() => {
                let slug = TenantSlug::parse(slug)?;
                Some(
                    tenant::Entity::find()
                        .filter(tenant::Column::Slug.eq(slug.as_str()))
                        .one(&self.conn)
                        .await
                        .map_err(db_error)?
                        .ok_or_else(|| {
                            AppError::invalid(
                                "tenant",
                                format!("there is no tenant `{slug}`: create it first"),
                            )
                        })?,
                )
            }
            (Role::Partner, _) => {
                return Err(AppError::invalid(
                    "tenant",
                    "a partner must belong to a tenant: give its slug",
                ));
            }
            (_, Some(slug)) if !slug.is_empty() => {
                return Err(AppError::invalid(
                    "tenant",
                    format!(
                        "only partners belong to a tenant: leave the tenant empty for the {} role",
                        input.role
                    ),
                ));
            }
            _ => None,
        };
        if user::Entity::find()
            .filter(user::Column::Username.eq(username.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .is_some()
        {
            return Err(AppError::conflict(format!(
                "the username `{username}` is taken: choose another"
            )));
        }
        let hash = hash_password(&password)
            .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))?;
        let t = now();
        let row = user::ActiveModel {
            username: Set(username.as_str().to_owned()),
            display_name: Set(display.into_inner()),
            password_hash: Set(hash),
            role: Set(input.role.as_str().to_owned()),
            tenant_id: Set(tenant.as_ref().map(|t| t.id)),
            disabled: Set(false),
            created_at: Set(t),
            updated_at: Set(t),
            ..Default::default()
        };
        let mut a = self.ledger.begin().await?;
        let row = row.insert(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: actor.to_owned(),
            tenant: tenant.as_ref().map(|t| t.slug.clone()),
            action: "user.create".into(),
            subject: row.username.clone(),
            details: serde_json::json!({ "role": input.role.as_str() }),
        })
        .await?;
        a.commit().await?;
        let slugs = tenant
            .map(|t| HashMap::from([(t.id, t.slug)]))
            .unwrap_or_default();
        user_view(row, &slugs)
    }

    /// Creates a tenant without an acting principal: the command line and the demo seed.
    pub async fn create_tenant_unchecked(
        &self,
        input: NewTenant,
        actor: &str,
    ) -> Result<Tenant, AppError> {
        let slug = TenantSlug::parse(&input.slug)?;
        let name = DisplayName::parse("name", &input.name)?;
        if tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .is_some()
        {
            return Err(AppError::conflict(format!(
                "the tenant `{slug}` exists already: choose another slug"
            )));
        }
        let mut a = self.ledger.begin().await?;
        let row = tenant::ActiveModel {
            slug: Set(slug.as_str().to_owned()),
            name: Set(name.into_inner()),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(a.txn())
        .await
        .map_err(db_error)?;
        a.append(Record {
            actor: actor.to_owned(),
            tenant: Some(row.slug.clone()),
            action: "tenant.create".into(),
            subject: row.slug.clone(),
            details: serde_json::json!({ "name": row.name }),
        })
        .await?;
        a.commit().await?;
        Ok(Self::tenant_view(row, 0))
    }

    /// Creates a token for `username` without an acting principal: the command line.
    pub async fn create_token_unchecked(
        &self,
        username: &str,
        name: &str,
        expires_in_days: Option<u32>,
        actor: &str,
    ) -> Result<CreatedApiToken, AppError> {
        let owner = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::invalid("user", format!("there is no user `{username}`")))?;
        let name = token_name(name)?;
        let expires_at = match expires_in_days {
            Some(0) => {
                return Err(AppError::invalid(
                    "expires_in_days",
                    "a token must live at least 1 day: leave it empty for no expiry",
                ));
            }
            Some(days) if days > 3650 => {
                return Err(AppError::invalid(
                    "expires_in_days",
                    "a token may live at most 3650 days: leave it empty for no expiry",
                ));
            }
            Some(days) => Some(now() + TimeDelta::days(i64::from(days))),
            None => None,
        };
        let secret = format!("{TOKEN_PREFIX}{}", random_secret(32));
        let row = api_token::ActiveModel {
            public_id: Set(uuid::Uuid::new_v4().to_string()),
            user_id: Set(owner.id),
            name: Set(name),
            token_hash: Set(sha256_hex(&secret)),
            prefix: Set(secret.chars().take(12).collect()),
            created_at: Set(now()),
            last_used_at: Set(None),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            ..Default::default()
        };
        let owner_tenant = self.tenant_slug_of(&owner).await?;
        let mut a = self.ledger.begin().await?;
        let row = row.insert(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: actor.to_owned(),
            tenant: owner_tenant,
            action: "token.create".into(),
            subject: row.public_id.clone(),
            details: serde_json::json!({
                "user": owner.username,
                "name": row.name,
                "expires_at": row.expires_at.map(timestamp),
            }),
        })
        .await?;
        a.commit().await?;
        Ok(CreatedApiToken {
            token: token_view(row, &owner.username),
            secret,
        })
    }
}

fn user_view(u: user::Model, slugs: &HashMap<i32, String>) -> Result<User, AppError> {
    let role = u
        .role
        .parse()
        .map_err(|e| AppError::internal(format!("stored account is damaged: {e}")))?;
    Ok(User {
        tenant: u.tenant_id.and_then(|id| slugs.get(&id).cloned()),
        username: u.username,
        display_name: u.display_name,
        role,
        disabled: u.disabled,
        created_at: timestamp(u.created_at),
    })
}

fn token_view(t: api_token::Model, owner: &str) -> ApiToken {
    ApiToken {
        id: t.public_id,
        name: t.name,
        user: owner.to_owned(),
        prefix: t.prefix,
        created_at: timestamp(t.created_at),
        last_used_at: t.last_used_at.map(timestamp),
        expires_at: t.expires_at.map(timestamp),
        revoked_at: t.revoked_at.map(timestamp),
    }
}

#[async_trait::async_trait]
impl PortalBackend for Accounts {
    async fn dashboard(&self, who: &Principal) -> Result<Dashboard, AppError> {
        let t = now();
        let c = &self.conn;
        let active_token = api_token::Column::RevokedAt.is_null().and(
            api_token::Column::ExpiresAt
                .is_null()
                .or(api_token::Column::ExpiresAt.gt(t)),
        );
        match who.tenant_id {
            Some(tenant_id) => {
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
            None => Ok(Dashboard {
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
        }
    }

    async fn list_tenants(&self, who: &Principal) -> Result<Vec<Tenant>, AppError> {
        let mut query = tenant::Entity::find().order_by_asc(tenant::Column::Slug);
        if !who.role().is_staff() {
            // A partner sees their own tenant only; no tenant at all if the account has none.
            query = query.filter(tenant::Column::Id.eq(who.tenant_id.unwrap_or(-1)));
        }
        let rows = query.all(&self.conn).await.map_err(db_error)?;
        let counts = self.member_counts().await?;
        Ok(rows
            .into_iter()
            .map(|t| {
                let members = counts.get(&t.id).copied().unwrap_or(0);
                Self::tenant_view(t, members)
            })
            .collect())
    }

    async fn create_tenant(&self, who: &Principal, input: NewTenant) -> Result<Tenant, AppError> {
        require_admin(who, "create tenants")?;
        self.create_tenant_unchecked(input, &who.me.username).await
    }

    async fn list_users(&self, who: &Principal) -> Result<Vec<User>, AppError> {
        require_admin(who, "list every user")?;
        let slugs = self.tenant_slugs().await?;
        user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|u| user_view(u, &slugs))
            .collect()
    }

    async fn create_user(&self, who: &Principal, input: NewUser) -> Result<User, AppError> {
        require_admin(who, "create users")?;
        let password = Password::parse(&input.password)?;
        self.create_user_unchecked(input, password, &who.me.username)
            .await
    }

    async fn update_user(
        &self,
        who: &Principal,
        username: &str,
        input: UserUpdate,
    ) -> Result<User, AppError> {
        require_admin(who, "change users")?;
        if input.disabled == Some(true) && who.me.username == username {
            return Err(AppError::invalid(
                "disabled",
                "you cannot disable your own account: ask another administrator",
            ));
        }
        let display = input
            .display_name
            .as_deref()
            .map(|d| DisplayName::parse("display_name", d))
            .transpose()?;
        let password = input.password.as_deref().map(Password::parse).transpose()?;
        let hash = password
            .as_ref()
            .map(hash_password)
            .transpose()
            .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))?;

        if Username::parse(username).is_err() {
            return Err(user_not_found(username));
        }
        let mut a = self.ledger.begin().await?;
        let u = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(a.txn())
            .await
            .map_err(db_error)?
            .ok_or_else(|| user_not_found(username))?;
        let id = u.id;
        let user_tenant = self.tenant_slug_of(&u).await?;
        let mut changed = Vec::new();
        if display.is_some() {
            changed.push("display_name");
        }
        if let Some(d) = input.disabled {
            changed.push(if d { "disabled" } else { "enabled" });
        }
        if hash.is_some() {
            changed.push("password");
        }
        let mut active = u.into_active_model();
        if let Some(d) = display {
            active.display_name = Set(d.into_inner());
        }
        let ends_sessions = input.disabled == Some(true) || hash.is_some();
        if let Some(disabled) = input.disabled {
            active.disabled = Set(disabled);
        }
        if let Some(h) = hash {
            active.password_hash = Set(h);
        }
        active.updated_at = Set(now());
        let row = active.update(a.txn()).await.map_err(db_error)?;
        if ends_sessions {
            session::Entity::delete_many()
                .filter(session::Column::UserId.eq(id))
                .exec(a.txn())
                .await
                .map_err(db_error)?;
        }
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: user_tenant,
            action: "user.update".into(),
            subject: username.to_owned(),
            details: serde_json::json!({ "changed": changed, "sessions_ended": ends_sessions }),
        })
        .await?;
        a.commit().await?;
        user_view(row, &self.tenant_slugs().await?)
    }

    async fn list_tokens(&self, who: &Principal) -> Result<Vec<ApiToken>, AppError> {
        let mut query = api_token::Entity::find().order_by_desc(api_token::Column::Id);
        if who.role() != Role::Admin {
            query = query.filter(api_token::Column::UserId.eq(who.user_id));
        }
        let rows = query.all(&self.conn).await.map_err(db_error)?;
        let names: HashMap<i32, String> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Username)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|t| {
                let owner = names.get(&t.user_id).cloned().unwrap_or_default();
                token_view(t, &owner)
            })
            .collect())
    }

    async fn create_token(
        &self,
        who: &Principal,
        input: NewApiToken,
    ) -> Result<CreatedApiToken, AppError> {
        let owner = match input.user.as_deref().map(str::trim) {
            Some(other) if !other.is_empty() && other != who.me.username => {
                require_admin(who, "create tokens for other users")?;
                other.to_owned()
            }
            _ => who.me.username.clone(),
        };
        self.create_token_unchecked(&owner, &input.name, input.expires_in_days, &who.me.username)
            .await
    }

    async fn revoke_token(&self, who: &Principal, id: &str) -> Result<ApiToken, AppError> {
        let not_found =
            || AppError::not_found(format!("there is no token `{id}` that you can see"));
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        let tok = api_token::Entity::find()
            .filter(api_token::Column::PublicId.eq(id))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|t| who.role() == Role::Admin || t.user_id == who.user_id)
            .ok_or_else(not_found)?;
        let owner = user::Entity::find_by_id(tok.user_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(|u| u.username)
            .unwrap_or_default();
        if tok.revoked_at.is_some() {
            return Ok(token_view(tok, &owner));
        }
        let mut active = tok.into_active_model();
        active.revoked_at = Set(Some(now()));
        let mut a = self.ledger.begin().await?;
        let row = active.update(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: who.me.tenant.as_ref().map(|t| t.slug.clone()),
            action: "token.revoke".into(),
            subject: id.to_owned(),
            details: serde_json::json!({ "user": owner }),
        })
        .await?;
        a.commit().await?;
        Ok(token_view(row, &owner))
    }
}

impl Accounts {
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

    /// The ledger (for the seed and tests).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The database connection (for the seed and tests).
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }
}
