//! Publishers: a tenant's profile (verified, tier, egress rules) and its signing keys.
//!
//! **Invariant:** a publisher key counts only once secops or an administrator approved it, so
//! that a partner cannot satisfy the signature rules alone by registering keys of their own.
//! Keys can be revoked (by their partner, secops or an administrator); registration, approval
//! and revocation are each in the ledger.

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::error::AppError;
use app::types::{NewPublisherKey, PublisherKey, PublisherProfile, PublisherProfileUpdate};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::json;
use trust::keys::PublicKey;

use super::Submissions;
use super::views::{key_view, profile_view};
use crate::db::entities::{publisher_key, tenant};
use crate::services::db_error;
use crate::services::ledger_store::Record;

fn tenant_not_found(slug: &str) -> AppError {
    AppError::not_found(format!("there is no tenant `{slug}`"))
}

fn key_not_found(key: &str) -> AppError {
    AppError::not_found(format!(
        "there is no publisher key `{key}` that you can see"
    ))
}

impl Submissions {
    /// A tenant the caller may see (partners: their own), or "not found".
    async fn visible_tenant(&self, who: &Principal, slug: &str) -> Result<tenant::Model, AppError> {
        tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|t| tenant_scope(who).admits(t.id))
            .ok_or_else(|| tenant_not_found(slug))
    }

    /// A tenant's publisher profile (partners: their own).
    pub async fn profile(&self, who: &Principal, slug: &str) -> Result<PublisherProfile, AppError> {
        authorize(who, Action::ReadSubmissions)?;
        Ok(profile_view(&self.visible_tenant(who, slug).await?))
    }

    /// Changes a publisher profile, recorded in the ledger.
    pub async fn update_profile(
        &self,
        who: &Principal,
        slug: &str,
        input: PublisherProfileUpdate,
    ) -> Result<PublisherProfile, AppError> {
        authorize(who, Action::EditPublisherProfile)?;
        let t = self.visible_tenant(who, slug).await?;
        if let Some(tier) = &input.tier
            && !matches!(tier.as_str(), "partner" | "community")
        {
            return Err(AppError::invalid(
                "tier",
                format!("`{tier}` is not a tier: use partner or community"),
            ));
        }
        if let Some(list) = &input.egress_allow {
            if list.len() > 100 {
                return Err(AppError::invalid(
                    "egress_allow",
                    "at most 100 host patterns",
                ));
            }
            for p in list {
                let host = p.strip_prefix("*.").unwrap_or(p);
                let ok = p == "*"
                    || plugin::Permission::parse(&format!("net:{host}")).is_ok_and(|perm| {
                        matches!(perm, plugin::Permission::Net { port: None, .. })
                    });
                if !ok {
                    return Err(AppError::invalid(
                        "egress_allow",
                        format!(
                            "`{p}` is not a host pattern: use `*`, `*.example.com` or `api.example.com`"
                        ),
                    ));
                }
            }
        }
        let verified = input.verified.unwrap_or(t.verified);
        let tier = input.tier.clone().unwrap_or_else(|| t.tier.clone());
        let egress = input
            .egress_allow
            .clone()
            .map(|l| l.join(" "))
            .unwrap_or_else(|| t.egress_allow.clone());
        let mut a = self.ledger.begin().await?;
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Verified, verified.into())
            .col_expr(tenant::Column::Tier, tier.clone().into())
            .col_expr(tenant::Column::EgressAllow, egress.clone().into())
            .filter(tenant::Column::Id.eq(t.id))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(t.slug.clone()),
            action: "publisher.update".into(),
            subject: t.slug.clone(),
            details: json!({"verified": verified, "tier": tier, "egress_allow": egress}),
        })
        .await?;
        a.commit().await?;
        Ok(profile_view(&tenant::Model {
            verified,
            tier,
            egress_allow: egress,
            ..t
        }))
    }

    /// Registers a publisher key for the partner's tenant (administrators name the tenant).
    /// It counts once approved.
    pub async fn register_key(
        &self,
        who: &Principal,
        input: NewPublisherKey,
    ) -> Result<PublisherKey, AppError> {
        authorize(who, Action::RegisterPublisherKey)?;
        let tenant = match (tenant_scope(who).only(), input.tenant.as_deref()) {
            (None, Some(slug)) => self.visible_tenant(who, slug).await?,
            (None, None) => {
                return Err(AppError::invalid(
                    "tenant",
                    "name the tenant whose key this is",
                ));
            }
            (Some(id), _) if id >= 0 => self.tenant_by_id(id).await?,
            (Some(_), _) => return Err(AppError::forbidden("you belong to no tenant")),
        };
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::invalid(
                "name",
                "give the key a name of 1 to 100 characters",
            ));
        }
        let key = PublicKey::from_pem(input.public_key_pem.trim()).map_err(|e| {
            AppError::invalid(
                "public_key_pem",
                format!(
                    "not a P-256 public key in PEM form ({e}); `stellar plugin keygen` writes one"
                ),
            )
        })?;
        let key_id = key.id().0;
        let mut a = self.ledger.begin().await?;
        let saved = publisher_key::ActiveModel {
            tenant_id: Set(tenant.id),
            key_id: Set(key_id.clone()),
            name: Set(name.clone()),
            public_pem: Set(key.to_pem()),
            created_by: Set(who.me.username.clone()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
            approved_at: Set(None),
            approved_by: Set(None),
            revoked_by: Set(None),
            ..Default::default()
        }
        .insert(a.txn())
        .await
        .map_err(|e| match db_error(e) {
            AppError::Conflict { .. } => AppError::conflict(format!(
                "the key {key_id} is already registered for {}",
                tenant.slug
            )),
            other => other,
        })?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(tenant.slug.clone()),
            action: "publisher-key.create".into(),
            subject: key_id,
            details: json!({"name": name}),
        })
        .await?;
        a.commit().await?;
        Ok(key_view(&saved, &tenant.slug))
    }

    /// One key by id (or unique prefix of 8+ hex digits) that the caller may see.
    async fn visible_key(
        &self,
        who: &Principal,
        key: &str,
    ) -> Result<(publisher_key::Model, tenant::Model), AppError> {
        let key = key.trim().to_ascii_lowercase();
        if key.len() < 8 || key.len() > 64 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(key_not_found(&key));
        }
        let rows: Vec<publisher_key::Model> = publisher_key::Entity::find()
            .filter(publisher_key::Column::KeyId.starts_with(&key))
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .filter(|k| tenant_scope(who).admits(k.tenant_id))
            .collect();
        match rows.as_slice() {
            [one] => {
                let t = self.tenant_by_id(one.tenant_id).await?;
                Ok((one.clone(), t))
            }
            [] => Err(key_not_found(&key)),
            many => Err(AppError::invalid(
                "key",
                format!("`{key}` matches {} keys: give more digits", many.len()),
            )),
        }
    }

    /// Approves a publisher key: from now on its signatures count.
    pub async fn approve_key(&self, who: &Principal, key: &str) -> Result<PublisherKey, AppError> {
        authorize(who, Action::ApprovePublisherKeys)?;
        let (row, t) = self.visible_key(who, key).await?;
        if row.revoked_at.is_some() {
            return Err(AppError::conflict(format!(
                "the key {} is revoked: register a new one",
                row.key_id
            )));
        }
        if row.approved_at.is_some() {
            return Ok(key_view(&row, &t.slug));
        }
        let mut active = row.clone().into_active_model();
        active.approved_at = Set(Some(Utc::now()));
        active.approved_by = Set(Some(who.me.username.clone()));
        let mut a = self.ledger.begin().await?;
        let saved = active.update(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(t.slug.clone()),
            action: "publisher-key.approve".into(),
            subject: row.key_id.clone(),
            details: json!({"name": row.name, "registered_by": row.created_by}),
        })
        .await?;
        a.commit().await?;
        Ok(key_view(&saved, &t.slug))
    }

    /// Revokes a publisher key: from now on its signatures no longer count.
    pub async fn revoke_key(&self, who: &Principal, key: &str) -> Result<PublisherKey, AppError> {
        authorize(who, Action::RevokePublisherKey)?;
        let (row, t) = self.visible_key(who, key).await?;
        if row.revoked_at.is_some() {
            return Ok(key_view(&row, &t.slug));
        }
        let mut active = row.clone().into_active_model();
        active.revoked_at = Set(Some(Utc::now()));
        active.revoked_by = Set(Some(who.me.username.clone()));
        let mut a = self.ledger.begin().await?;
        let saved = active.update(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(t.slug.clone()),
            action: "publisher-key.revoke".into(),
            subject: row.key_id.clone(),
            details: json!({"name": row.name}),
        })
        .await?;
        a.commit().await?;
        Ok(key_view(&saved, &t.slug))
    }

    /// The publisher keys the caller may see.
    pub async fn list_keys(&self, who: &Principal) -> Result<Vec<PublisherKey>, AppError> {
        authorize(who, Action::ReadSubmissions)?;
        let tenants = tenant::Entity::find()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut q = publisher_key::Entity::find();
        if let Some(only) = tenant_scope(who).only() {
            q = q.filter(publisher_key::Column::TenantId.eq(only));
        }
        let rows = q
            .order_by_asc(publisher_key::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|k| {
                let slug = tenants
                    .iter()
                    .find(|t| t.id == k.tenant_id)
                    .map(|t| t.slug.as_str())
                    .unwrap_or("?");
                key_view(k, slug)
            })
            .collect())
    }
}
