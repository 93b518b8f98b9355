//! Fleet tokens: made, listed and revoked by platform users; resolved for every host request.

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::error::AppError;
use app::fleet::{CreatedFleetToken, FleetToken, NewFleetToken};
use chrono::TimeDelta;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};

use super::memory::KnownToken;
use super::{FLEET_TOKEN_PREFIX, Fleet, HostCaller, MAX_GROUP, TOKEN_TOUCH_EVERY, good_name};
use crate::db::entities::fleet_token;
use crate::domain::token_name;
use crate::secrets::{random_secret, sha256_hex};
use crate::services::ledger_store::Record;
use crate::services::{db_error, timestamp};

fn token_view(t: fleet_token::Model) -> FleetToken {
    FleetToken {
        id: t.public_id,
        name: t.name,
        prefix: t.prefix,
        host: t.host,
        group: t.host_group,
        created_by: t.created_by,
        created_at: timestamp(t.created_at),
        expires_at: t.expires_at.map(timestamp),
        revoked_at: t.revoked_at.map(timestamp),
        last_used_at: t.last_used_at.map(timestamp),
    }
}

impl Fleet {
    /// Makes a fleet token for one host or a group of hosts (platform users and
    /// administrators). The secret is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        who: &Principal,
        input: NewFleetToken,
    ) -> Result<CreatedFleetToken, AppError> {
        authorize(who, Action::ManageFleet)?;
        let name = token_name(&input.name)?;
        let host = input
            .host
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let group = input
            .group
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match (host, group) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "host",
                    "give either `host` (a token for one host) or `group` (for many), not both",
                ));
            }
            (None, None) => {
                return Err(AppError::invalid(
                    "host",
                    "give `host` (a token for one host) or `group` (a token hosts of a group share)",
                ));
            }
            _ => {}
        }
        if let Some(h) = host
            && !good_name(h, delivery::fleet::MAX_NAME)
        {
            return Err(AppError::invalid(
                "host",
                format!(
                    "a host id is 1 to {} printable ASCII characters",
                    delivery::fleet::MAX_NAME
                ),
            ));
        }
        if let Some(g) = group
            && !good_name(g, MAX_GROUP)
        {
            return Err(AppError::invalid(
                "group",
                format!("a group name is 1 to {MAX_GROUP} printable ASCII characters"),
            ));
        }
        let now = self.clock.now();
        let expires_at = match input.expires_in_days {
            Some(d) if d == 0 || d > 3650 => {
                return Err(AppError::invalid(
                    "expires_in_days",
                    "a fleet token lives 1 to 3650 days: leave it empty for no expiry",
                ));
            }
            Some(d) => Some(now + TimeDelta::days(i64::from(d))),
            None => None,
        };
        let secret = format!("{FLEET_TOKEN_PREFIX}{}", random_secret(32));
        let row = fleet_token::ActiveModel {
            public_id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name),
            token_hash: Set(sha256_hex(&secret)),
            prefix: Set(secret.chars().take(12).collect()),
            host: Set(host.map(str::to_owned)),
            host_group: Set(group.map(str::to_owned)),
            created_by: Set(who.me.username.clone()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
            ..Default::default()
        };
        let mut a = self.ledger.begin().await?;
        let row = row.insert(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "fleet.token.create".into(),
            subject: row.public_id.clone(),
            details: serde_json::json!({
                "name": row.name, "host": row.host, "group": row.host_group,
                "expires_at": row.expires_at.map(timestamp),
            }),
        })
        .await?;
        a.commit().await?;
        Ok(CreatedFleetToken {
            token: token_view(row),
            secret,
        })
    }

    /// Every fleet token, newest first.
    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<FleetToken>, AppError> {
        authorize(who, Action::ManageFleet)?;
        Ok(fleet_token::Entity::find()
            .order_by_desc(fleet_token::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(token_view)
            .collect())
    }

    /// Revokes a fleet token: its hosts are refused from their next request on.
    pub async fn revoke_token(&self, who: &Principal, id: &str) -> Result<FleetToken, AppError> {
        authorize(who, Action::ManageFleet)?;
        let not_found = || AppError::not_found(format!("there is no fleet token `{id}`"));
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        let mut a = self.ledger.begin().await?;
        let t = fleet_token::Entity::find()
            .filter(fleet_token::Column::PublicId.eq(id))
            .one(a.txn())
            .await
            .map_err(db_error)?
            .ok_or_else(not_found)?;
        if t.revoked_at.is_some() {
            return Ok(token_view(t));
        }
        let mut active = t.into_active_model();
        active.revoked_at = Set(Some(self.clock.now()));
        let t = active.update(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "fleet.token.revoke".into(),
            subject: t.public_id.clone(),
            details: serde_json::json!({"name": t.name, "host": t.host, "group": t.host_group}),
        })
        .await?;
        a.commit().await?;
        self.memory.forget_token(t.id);
        Ok(token_view(t))
    }

    /// The holder of a fleet token, if it is valid now.
    pub async fn caller(&self, secret: &str) -> Result<Option<HostCaller>, AppError> {
        if !secret.starts_with(FLEET_TOKEN_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let now = self.clock.now();
        let hash = sha256_hex(secret);
        let touch_due = |last: Option<chrono::DateTime<chrono::Utc>>| {
            last.is_none_or(|l| now - l > TOKEN_TOUCH_EVERY)
        };
        if let Some(t) = self.memory.token(&hash) {
            if t.expires_at.is_some_and(|e| e <= now) {
                return Ok(None);
            }
            if !touch_due(t.last_used_at) {
                return Ok(Some(t.caller));
            }
        }
        let Some(t) = fleet_token::Entity::find()
            .filter(fleet_token::Column::TokenHash.eq(hash.clone()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let caller = HostCaller {
            token_id: t.id,
            host: t.host.clone(),
            group: t.host_group.clone(),
        };
        let mut last_used_at = t.last_used_at;
        let expires_at = t.expires_at;
        if touch_due(last_used_at) {
            let mut active = t.into_active_model();
            active.last_used_at = Set(Some(now));
            active.update(&self.conn).await.map_err(db_error)?;
            last_used_at = Some(now);
        }
        self.memory.remember_token(
            hash,
            KnownToken {
                caller: caller.clone(),
                expires_at,
                last_used_at,
                checked: std::time::Instant::now(),
            },
        );
        Ok(Some(caller))
    }
}
