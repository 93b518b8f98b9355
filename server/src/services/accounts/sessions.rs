//! Sign-in, sessions and sign-out.
//!
//! **Invariant:** at most `--login-max-failures` password checks per username (ten times that
//! per client address) within the throttle window, however many attempts arrive at once: each
//! attempt is counted before its password is checked, and the count the database returns
//! decides (see [`crate::services::throttle`]). Attempts from an address whose in-memory bucket
//! is empty are refused before any database work.

use std::net::IpAddr;

use app::api::backend::Principal;
use app::authz::Scope;
use app::error::AppError;
use app::types::Role;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, IntoActiveModel,
    QueryFilter,
};

use super::{Accounts, delta, now};
use crate::db::entities::{session, user};
use crate::domain::Username;
use crate::secrets::{burn_verification_time, random_secret, sha256_hex, verify_password};
use crate::services::db_error;
use crate::services::ledger_store::{Appender, Record};
use crate::services::throttle::{self, Attempt, Limits};

/// How often `last_seen_at` is written at most.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A session just created: the secret goes into the cookie and is not stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

fn wrong_credentials() -> AppError {
    AppError::Unauthenticated {
        message: "the username or password is wrong".into(),
    }
}

fn throttled(secs: u64) -> AppError {
    AppError::TooManyRequests {
        retry_after_secs: secs,
        message: format!(
            "too many failed sign-ins for this account or address: wait {secs} seconds, then try again"
        ),
    }
}

impl Accounts {
    /// Checks a username and password and opens a session. Throttled per client address (in
    /// memory, then in the database) and per username; an unknown user, a disabled user and a
    /// wrong password look the same.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<(NewSession, Principal), AppError> {
        if let Some(addr) = client
            && !self.addresses.check(addr)
        {
            metrics::counter!("stellar_login_throttled_total", "layer" => "address-memory")
                .increment(1);
            return Err(throttled(60));
        }
        let t = now();
        let name = username.trim().to_lowercase();
        let user_key = throttle::user_key(&name);
        let addr_key = client.map(throttle::addr_key);
        let addr_limits = Limits {
            max_failures: self.settings.throttle.max_failures.saturating_mul(10),
            ..self.settings.throttle
        };

        // Count the attempt first: the returned count decides whether the password is checked.
        let mut addr_n = None;
        if let Some(key) = &addr_key {
            match throttle::attempt(&self.conn, key, addr_limits, t)
                .await
                .map_err(db_error)?
            {
                Attempt::Allowed { n } => addr_n = Some(n),
                Attempt::Locked { retry_after_secs } => {
                    metrics::counter!("stellar_login_throttled_total", "layer" => "address")
                        .increment(1);
                    return Err(throttled(retry_after_secs));
                }
            }
        }
        let user_n = match throttle::attempt(&self.conn, &user_key, self.settings.throttle, t)
            .await
            .map_err(db_error)?
        {
            Attempt::Allowed { n } => n,
            Attempt::Locked { retry_after_secs } => {
                metrics::counter!("stellar_login_throttled_total", "layer" => "user").increment(1);
                return Err(throttled(retry_after_secs));
            }
        };

        // A name that cannot exist is looked up as nothing (and costs the same time).
        let lookup = Username::parse(&name)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        let found = user::Entity::find()
            .filter(user::Column::Username.eq(lookup.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let given = password.to_owned();
        let ok_user = match found {
            Some(u) => {
                let stored = u.password_hash.clone();
                let matches = self
                    .hashing(move || verify_password(&stored, &given))
                    .await?;
                (matches && !u.disabled).then_some(u)
            }
            None => {
                self.hashing(move || burn_verification_time(&given)).await?;
                None
            }
        };
        metrics::counter!("stellar_password_checks_total").increment(1);
        let Some(u) = ok_user else {
            throttle::failed(&self.conn, &user_key, user_n, self.settings.throttle, t)
                .await
                .map_err(db_error)?;
            if let (Some(key), Some(n)) = (&addr_key, addr_n) {
                throttle::failed(&self.conn, key, n, addr_limits, t)
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
                    details: serde_json::json!({ "addr": client.map(|a| a.to_string()) }),
                })
                .await?;
            return Err(wrong_credentials());
        };
        throttle::clear(&self.conn, &user_key)
            .await
            .map_err(db_error)?;
        if let Some(key) = &addr_key {
            throttle::forgive_one(&self.conn, key)
                .await
                .map_err(db_error)?;
        }

        // Break-glass: with single sign-on for everyone, a password opens only an
        // administrator's account, and each use is its own ledger action.
        let limited = self.settings.local_sign_in == crate::cli::args::LocalSignIn::Admins;
        if limited && u.role != Role::Admin.as_str() {
            self.ledger
                .record(Record {
                    actor: u.username.clone(),
                    tenant: None,
                    action: "login.local_refused".into(),
                    subject: u.username.clone(),
                    details: serde_json::json!({ "addr": client.map(|a| a.to_string()) }),
                })
                .await?;
            return Err(AppError::forbidden(
                "password sign-in is for administrators only on this server: sign in with single sign-on",
            ));
        }
        let mut a = self.ledger.begin().await?;
        let opened = self
            .open_session_in(
                &mut a,
                u,
                None,
                if limited {
                    "login.break_glass"
                } else {
                    "login"
                },
                serde_json::json!({ "addr": client.map(|a| a.to_string()) }),
            )
            .await?;
        a.commit().await?;
        Ok(opened)
    }

    /// Opens a session for `u` inside `a` (which the caller commits), ledgered as `action`,
    /// for `ttl` or the configured session lifetime.
    pub(crate) async fn open_session_in(
        &self,
        a: &mut Appender,
        u: user::Model,
        ttl: Option<std::time::Duration>,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(NewSession, Principal), AppError> {
        let t = now();
        let secret = random_secret(32);
        let csrf_token = random_secret(32);
        let expires_at = t + delta(ttl.map_or(self.settings.session_ttl, |t| {
            t.min(self.settings.session_ttl)
        }));
        let principal = self
            .principal_for(u, Some(csrf_token.clone()), Scope::ALL.to_vec())
            .await?;
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
            action: action.into(),
            subject: principal.me.username.clone(),
            details,
        })
        .await?;
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
        let csrf = s.csrf_token.clone();
        if t - s.last_seen_at > TOUCH_EVERY {
            let mut active = s.into_active_model();
            active.last_seen_at = Set(t);
            active.update(&self.conn).await.map_err(db_error)?;
        }
        self.principal_for(u, Some(csrf), Scope::ALL.to_vec())
            .await
            .map(Some)
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
        let Some(u) = user::Entity::find_by_id(s.user_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(());
        };
        let tenant = self.tenant_slug_of(&u).await?;
        let mut a = self.ledger.begin().await?;
        let deleted = session::Entity::delete_many()
            .filter(session::Column::TokenHash.eq(hash.as_str()))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        if deleted.rows_affected > 0 {
            a.append(Record {
                actor: u.username.clone(),
                tenant,
                action: "logout".into(),
                subject: u.username,
                details: serde_json::json!({}),
            })
            .await?;
        }
        a.commit().await
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
}
