//! API tokens: created by their user (or for anyone by an administrator), shown once, stored as
//! sha256, revocable, with an optional expiry and scopes.
//!
//! **Invariant:** a token never carries a scope the credential that made it lacked, so a
//! read-only token cannot mint an administrator's.

use std::collections::HashMap;

use app::api::backend::Principal;
use app::authz::{Action, Scope, authorize};
use app::error::AppError;
use app::types::{ApiToken, CreatedApiToken, NewApiToken};
use chrono::TimeDelta;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{Accounts, now};
use crate::db::entities::{api_token, user};
use crate::domain::token_name;
use crate::secrets::{random_secret, sha256_hex};
use crate::services::ledger_store::Record;
use crate::services::{db_error, timestamp};

/// Prefix of every API token secret, so that leaked tokens are easy to search for.
pub const TOKEN_PREFIX: &str = "stl_";

/// How often `last_used_at` is written at most.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// Scopes as stored: their names separated by spaces.
fn stored_scopes(text: &str) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = text.split_whitespace().filter_map(Scope::parse).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn token_view(t: api_token::Model, owner: &str) -> ApiToken {
    ApiToken {
        scopes: stored_scopes(&t.scopes),
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

impl Accounts {
    /// The user behind a bearer token, with the token's scopes, if the token is valid.
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
        let scopes = stored_scopes(&tok.scopes);
        if tok.last_used_at.is_none_or(|last| t - last > TOUCH_EVERY) {
            let mut active = tok.into_active_model();
            active.last_used_at = Set(Some(t));
            active.update(&self.conn).await.map_err(db_error)?;
        }
        self.principal_for(u, None, scopes).await.map(Some)
    }

    /// The caller's API tokens; administrators see every user's.
    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<ApiToken>, AppError> {
        authorize(who, Action::UseAccount)?;
        let mut query = api_token::Entity::find().order_by_desc(api_token::Column::Id);
        if authorize(who, Action::ReadUsers).is_err() {
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

    /// Creates an API token for the caller or (administrators) for another user. Its secret
    /// is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        who: &Principal,
        input: NewApiToken,
    ) -> Result<CreatedApiToken, AppError> {
        authorize(who, Action::ManageOwnTokens)?;
        let owner_name = match input.user.as_deref().map(str::trim) {
            Some(other) if !other.is_empty() && other != who.me.username => {
                authorize(who, Action::ManageAccounts)?;
                other.to_owned()
            }
            _ => who.me.username.clone(),
        };
        let mut scopes = input.scopes.unwrap_or_else(|| Scope::ALL.to_vec());
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(AppError::invalid(
                "scopes",
                "choose at least one scope: read, submit or admin",
            ));
        }
        if let Some(missing) = scopes.iter().find(|s| !who.scopes.contains(s)) {
            return Err(AppError::forbidden(format!(
                "this credential lacks the `{missing}` scope, so it cannot give it to a new token"
            )));
        }
        let owner = user::Entity::find()
            .filter(user::Column::Username.eq(owner_name.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::invalid("user", format!("there is no user `{owner_name}`")))?;
        let name = token_name(&input.name)?;
        let expires_at = match input.expires_in_days {
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
            scopes: Set(scopes_text(&scopes)),
            ..Default::default()
        };
        let owner_tenant = self.tenant_slug_of(&owner).await?;
        let mut a = self.ledger.begin().await?;
        let row = row.insert(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: owner_tenant,
            action: "token.create".into(),
            subject: row.public_id.clone(),
            details: serde_json::json!({
                "user": owner.username,
                "name": row.name,
                "expires_at": row.expires_at.map(timestamp),
                "scopes": scopes_text(&scopes),
            }),
        })
        .await?;
        a.commit().await?;
        Ok(CreatedApiToken {
            token: token_view(row, &owner.username),
            secret,
        })
    }

    /// Revokes an API token: the caller's own or, for administrators, anyone's.
    pub async fn revoke_token(&self, who: &Principal, id: &str) -> Result<ApiToken, AppError> {
        authorize(who, Action::ManageOwnTokens)?;
        let not_found =
            || AppError::not_found(format!("there is no token `{id}` that you can see"));
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        let admin = authorize(who, Action::ManageAccounts).is_ok();
        let tok = api_token::Entity::find()
            .filter(api_token::Column::PublicId.eq(id))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|t| admin || t.user_id == who.user_id)
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

    /// Revokes every active token of a user, in the caller's transaction (a password change
    /// that asks for it). Returns how many.
    pub(crate) async fn revoke_all_tokens_in(
        txn: &sea_orm::DatabaseTransaction,
        user_id: i32,
    ) -> Result<u64, AppError> {
        let res = api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Some(now()).into())
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(txn)
            .await
            .map_err(db_error)?;
        Ok(res.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_ignore_what_is_unknown() {
        assert_eq!(
            stored_scopes("read submit release admin"),
            Scope::ALL.to_vec()
        );
        // Tokens made before the `release` scope existed keep exactly what they had.
        assert_eq!(
            stored_scopes("read submit admin"),
            vec![Scope::Read, Scope::Submit, Scope::Admin]
        );
        assert_eq!(
            stored_scopes("admin read bogus read"),
            vec![Scope::Read, Scope::Admin]
        );
        assert_eq!(scopes_text(&[Scope::Read, Scope::Submit]), "read submit");
    }
}
