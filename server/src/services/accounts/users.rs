//! User accounts: administrators create, list and change them; everyone reads their own.
//!
//! **Invariant:** a partner belongs to exactly one tenant and staff to none (also a database
//! check). Disabling a user or changing their password ends their sessions; a password change
//! can also revoke their API tokens (`revoke_tokens`).

use std::collections::HashMap;

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::error::AppError;
use app::types::{NewUser, Role, User, UserUpdate};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};

use super::{Accounts, now, user_not_found, user_view};
use crate::db::entities::{session, sso_identity, tenant, user};
use crate::domain::{DisplayName, Password, TenantSlug, Username};
use crate::services::db_error;
use crate::services::ledger_store::Record;

impl Accounts {
    /// One user account: administrators see any, others only themselves.
    pub async fn get_user(&self, who: &Principal, username: &str) -> Result<User, AppError> {
        authorize(who, Action::UseAccount)?;
        let admin = authorize(who, Action::ReadUsers).is_ok();
        if (!admin && who.me.username != username) || Username::parse(username).is_err() {
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

    /// Every user account.
    pub async fn list_users(&self, who: &Principal) -> Result<Vec<User>, AppError> {
        authorize(who, Action::ReadUsers)?;
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

    /// Creates a user with the password in `input` (at least 12 characters).
    pub async fn create_user(&self, who: &Principal, input: NewUser) -> Result<User, AppError> {
        authorize(who, Action::ManageAccounts)?;
        let password = Password::parse(&input.password)?;
        self.create_user_with(who, input, password).await
    }

    /// Creates a user with a password already checked (the command line's generated one, or a
    /// demo password).
    pub async fn create_user_with(
        &self,
        who: &Principal,
        input: NewUser,
        password: Password,
    ) -> Result<User, AppError> {
        authorize(who, Action::ManageAccounts)?;
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
        let hash = self.hash(password).await?;
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
            actor: who.me.username.clone(),
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

    /// Changes a user: display name, disabled, password (and, with it, their tokens).
    pub async fn update_user(
        &self,
        who: &Principal,
        username: &str,
        input: UserUpdate,
    ) -> Result<User, AppError> {
        authorize(who, Action::ManageAccounts)?;
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
        let hash = match password {
            Some(p) => Some(self.hash(p).await?),
            None => None,
        };
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
        if hash.is_some()
            && sso_identity::Entity::find()
                .filter(sso_identity::Column::UserId.eq(id))
                .one(a.txn())
                .await
                .map_err(db_error)?
                .is_some()
        {
            return Err(AppError::invalid(
                "password",
                format!(
                    "`{username}` signs in through single sign-on: a password would open the account without the provider"
                ),
            ));
        }
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
        let tokens_revoked = if input.revoke_tokens {
            Self::revoke_all_tokens_in(a.txn(), id).await?
        } else {
            0
        };
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: user_tenant,
            action: "user.update".into(),
            subject: username.to_owned(),
            details: serde_json::json!({
                "changed": changed,
                "sessions_ended": ends_sessions,
                "tokens_revoked": tokens_revoked,
            }),
        })
        .await?;
        a.commit().await?;
        user_view(row, &self.tenant_slugs().await?)
    }
}
