//! Outgoing webhooks on release events, to URLs administrators register.
//!
//! An event is recorded as a delivery row per subscribed hook, in the transaction of the change
//! it reports, with a job that sends it: so an event is never lost and never sent for a change
//! that did not commit. Each request carries
//! - `Stellar-Event` (`release.approved`…), `Stellar-Delivery` (the delivery id);
//! - `Stellar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
//!   receiver recomputes it with the secret it was shown once, and refuses a timestamp older
//!   than it tolerates (five minutes is usual), which stops replays.
//!
//! A failure (no answer in 10 s, or a status other than 2xx) is retried by the job queue with
//! its doubling back-off; the delivery log keeps every attempt's status and error. Redirects
//! are not followed (the signature is for the registered URL only).

use std::time::Duration;

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::delivery::{CreatedWebhook, NewWebhook, Webhook, WebhookDelivery};
use app::error::AppError;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sha2::Sha256;

use super::jobs::{Job, JobKind, Queue};
use super::ledger_store::{LedgerStore, Record};
use super::{db_error, timestamp};
use crate::db::entities::{webhook, webhook_delivery};

/// Most hooks registered at once.
pub const MAX_HOOKS: u64 = 50;
/// Largest payload sent.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The release events a hook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Created,
    WaitingForApproval,
    Approved,
    Rejected,
    Signed,
    Promoted,
    RolledBack,
    Aborted,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Created,
        Event::WaitingForApproval,
        Event::Approved,
        Event::Rejected,
        Event::Signed,
        Event::Promoted,
        Event::RolledBack,
        Event::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Created => "release.created",
            Event::WaitingForApproval => "release.waiting_for_approval",
            Event::Approved => "release.approved",
            Event::Rejected => "release.rejected",
            Event::Signed => "release.signed",
            Event::Promoted => "release.promoted",
            Event::RolledBack => "release.rolled_back",
            Event::Aborted => "release.aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The signature header's value for a body sent at `t` (HMAC takes keys of any length, so the
/// error case does not happen; it is still an error, not a panic).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> Result<String, AppError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| AppError::internal(format!("the webhook key cannot be used: {e}")))?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "t={t},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Webhooks and their delivery log.
#[derive(Clone, Debug)]
pub struct Webhooks {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    queue: Queue,
    client: reqwest::Client,
}

fn view(m: &webhook::Model) -> Webhook {
    Webhook {
        id: m.id,
        url: m.url.clone(),
        events: m.events.split_whitespace().map(str::to_owned).collect(),
        active: m.active,
        created_by: m.created_by.clone(),
        created_at: timestamp(m.created_at),
    }
}

fn delivery_view(m: webhook_delivery::Model) -> WebhookDelivery {
    WebhookDelivery {
        id: m.id,
        event: m.event,
        release: m.release_id,
        state: m.state,
        attempts: m.attempts,
        last_status: m.last_status,
        last_error: m.last_error,
        created_at: timestamp(m.created_at),
        delivered_at: m.delivered_at.map(timestamp),
    }
}

/// Checks a hook URL: http or https, no credentials, not a cloud metadata address.
fn check_url(text: &str) -> Result<url::Url, AppError> {
    let bad = |m: String| AppError::invalid("url", m);
    if text.len() > 2048 {
        return Err(bad("a webhook URL is at most 2048 characters".into()));
    }
    let u = url::Url::parse(text).map_err(|e| bad(format!("`{text}` is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!(
            "a webhook URL is http or https, not `{}`",
            u.scheme()
        )));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "a webhook URL carries no credentials: the HMAC signature authenticates Stellar".into(),
        ));
    }
    match u.host() {
        None => return Err(bad("a webhook URL needs a host".into())),
        Some(url::Host::Ipv4(ip))
            if ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast() =>
        {
            return Err(bad(format!(
                "{ip} is a link-local or unspecified address (cloud metadata lives there): not a webhook receiver"
            )));
        }
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("metadata.google.internal") => {
            return Err(bad(
                "the cloud metadata service is not a webhook receiver".into()
            ));
        }
        _ => {}
    }
    Ok(u)
}

impl Webhooks {
    pub fn new(conn: DatabaseConnection, ledger: LedgerStore, queue: Queue) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stellar-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Webhooks {
            conn,
            ledger,
            queue,
            client,
        }
    }

    /// Registers a hook; its secret is in the answer and never again.
    pub async fn register(
        &self,
        who: &Principal,
        input: NewWebhook,
    ) -> Result<CreatedWebhook, AppError> {
        authorize(who, Action::ManageWebhooks)?;
        let url = check_url(input.url.trim())?;
        let events: Vec<&'static str> = match &input.events {
            None => Event::ALL.iter().map(|e| e.as_str()).collect(),
            Some(list) if list.is_empty() => {
                return Err(AppError::invalid(
                    "events",
                    "name at least one event, or leave `events` out for all",
                ));
            }
            Some(list) => list
                .iter()
                .map(|e| {
                    Event::parse(e).map(Event::as_str).ok_or_else(|| {
                        AppError::invalid(
                            "events",
                            format!(
                                "`{e}` is not an event: use {}",
                                Event::ALL
                                    .iter()
                                    .map(|e| e.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let count = webhook::Entity::find()
            .filter(webhook::Column::Active.eq(true))
            .count(&self.conn)
            .await
            .map_err(db_error)?;
        if count >= MAX_HOOKS {
            return Err(AppError::conflict(format!(
                "at most {MAX_HOOKS} webhooks can be registered"
            )));
        }
        let secret = {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rng().fill_bytes(&mut b);
            format!("whsec_{}", hex::encode(b))
        };
        let mut a = self.ledger.begin().await?;
        let row = webhook::Entity::insert(webhook::ActiveModel {
            url: Set(url.to_string()),
            secret: Set(secret.clone()),
            events: Set(events.join(" ")),
            active: Set(true),
            created_by: Set(who.me.username.clone()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec_with_returning(a.txn())
        .await
        .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "webhook.create".into(),
            subject: format!("webhook:{}", row.id),
            details: serde_json::json!({"url": row.url, "events": events}),
        })
        .await?;
        a.commit().await?;
        Ok(CreatedWebhook {
            webhook: view(&row),
            secret,
        })
    }

    /// Every hook.
    pub async fn list(&self, who: &Principal) -> Result<Vec<Webhook>, AppError> {
        authorize(who, Action::ManageWebhooks)?;
        Ok(webhook::Entity::find()
            .order_by_asc(webhook::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .iter()
            .map(view)
            .collect())
    }

    /// Stops a hook: no new deliveries.
    pub async fn deactivate(&self, who: &Principal, id: i32) -> Result<Webhook, AppError> {
        authorize(who, Action::ManageWebhooks)?;
        let mut a = self.ledger.begin().await?;
        let row = webhook::Entity::find_by_id(id)
            .one(a.txn())
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::not_found(format!("there is no webhook {id}")))?;
        webhook::Entity::update_many()
            .col_expr(webhook::Column::Active, false.into())
            .filter(webhook::Column::Id.eq(id))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "webhook.deactivate".into(),
            subject: format!("webhook:{id}"),
            details: serde_json::json!({"url": row.url}),
        })
        .await?;
        a.commit().await?;
        Ok(Webhook {
            active: false,
            ..view(&row)
        })
    }

    /// A hook's deliveries, newest first.
    pub async fn deliveries(
        &self,
        who: &Principal,
        id: i32,
        limit: u64,
    ) -> Result<Vec<WebhookDelivery>, AppError> {
        authorize(who, Action::ManageWebhooks)?;
        webhook::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::not_found(format!("there is no webhook {id}")))?;
        Ok(webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(id))
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(limit.clamp(1, 500))
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(delivery_view)
            .collect())
    }

    /// Records an event for every hook subscribed to it, in the caller's transaction.
    pub async fn emit_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        event: Event,
        release: &str,
        data: serde_json::Value,
    ) -> Result<(), AppError> {
        let hooks = webhook::Entity::find()
            .filter(webhook::Column::Active.eq(true))
            .all(txn)
            .await
            .map_err(db_error)?;
        let hooks: Vec<_> = hooks
            .into_iter()
            .filter(|h| h.events.split_whitespace().any(|e| e == event.as_str()))
            .collect();
        if hooks.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let body = serde_json::json!({
            "event": event.as_str(),
            "sent_for": release,
            "occurred_at": timestamp(now),
            "data": data,
        })
        .to_string();
        if body.len() > MAX_PAYLOAD {
            return Err(AppError::internal(format!(
                "a {} event is larger than {MAX_PAYLOAD} bytes",
                event.as_str()
            )));
        }
        for h in hooks {
            let row = webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
                webhook_id: Set(h.id),
                event: Set(event.as_str().into()),
                release_id: Set(Some(release.to_owned())),
                payload: Set(body.clone()),
                state: Set("pending".into()),
                attempts: Set(0),
                last_status: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
                ..Default::default()
            })
            .exec_with_returning(txn)
            .await
            .map_err(db_error)?;
            self.queue
                .enqueue_in(txn, JobKind::Webhook, &format!("webhook:{}", row.id), None)
                .await?;
        }
        Ok(())
    }

    /// Runs a `webhook` job: one attempt at one delivery.
    pub async fn deliver(&self, job: &Job) -> Result<(), AppError> {
        let id: i32 = job
            .subject
            .trim_start_matches("webhook:")
            .parse()
            .map_err(|_| AppError::internal("a webhook job has a malformed subject"))?;
        let Some(d) = webhook_delivery::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return self.queue.done(&self.conn, job.id).await;
        };
        let Some(hook) = webhook::Entity::find_by_id(d.webhook_id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .filter(|h| h.active)
        else {
            self.finish(
                id,
                "failed",
                None,
                Some("the webhook was deactivated".into()),
            )
            .await?;
            return self.queue.done(&self.conn, job.id).await;
        };
        let t = Utc::now().timestamp();
        let sent = self
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("stellar-event", &d.event)
            .header("stellar-delivery", d.id.to_string())
            .header(
                "stellar-signature",
                signature(&hook.secret, t, d.payload.as_bytes())?,
            )
            .body(d.payload.clone())
            .send()
            .await;
        let (status, error) = match sent {
            Ok(res) if res.status().is_success() => (Some(res.status().as_u16() as i32), None),
            Ok(res) => (
                Some(res.status().as_u16() as i32),
                Some(format!("the receiver answered {}", res.status())),
            ),
            Err(e) => (
                None,
                Some(if e.is_timeout() {
                    "no answer within 10 seconds".to_owned()
                } else if e.is_connect() {
                    "could not connect to the receiver".to_owned()
                } else {
                    format!("the request failed: {e}")
                }),
            ),
        };
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Attempts, (d.attempts + 1).into())
            .col_expr(webhook_delivery::Column::LastStatus, status.into())
            .col_expr(webhook_delivery::Column::LastError, error.clone().into())
            .filter(webhook_delivery::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_error)?;
        match error {
            None => {
                self.finish(id, "delivered", status, None).await?;
                self.queue.done(&self.conn, job.id).await
            }
            // The queue retries with back-off; on the last attempt [`Webhooks::fail`] ends it.
            Some(e) => Err(AppError::conflict(e)),
        }
    }

    async fn finish(
        &self,
        id: i32,
        state: &str,
        status: Option<i32>,
        error: Option<String>,
    ) -> Result<(), AppError> {
        let mut q = webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, state.into());
        if state == "delivered" {
            q = q
                .col_expr(
                    webhook_delivery::Column::DeliveredAt,
                    Some(Utc::now()).into(),
                )
                .col_expr(webhook_delivery::Column::LastStatus, status.into());
        }
        if let Some(e) = error {
            q = q.col_expr(webhook_delivery::Column::LastError, Some(e).into());
        }
        q.filter(webhook_delivery::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Ends a delivery whose every attempt failed.
    pub async fn fail(&self, job: &Job, error: &str) -> Result<(), AppError> {
        if let Ok(id) = job.subject.trim_start_matches("webhook:").parse::<i32>() {
            self.finish(id, "failed", None, Some(error.to_owned()))
                .await?;
        }
        self.queue.failed(&self.conn, job.id, error).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let sig = |k: &str, t: i64, b: &[u8]| signature(k, t, b).unwrap();
        let a = sig("s3cret", 1_700_000_000, b"{\"x\":1}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_ne!(a, sig("s3cret", 1_700_000_001, b"{\"x\":1}"));
        assert_ne!(a, sig("s3cret", 1_700_000_000, b"{\"x\":2}"));
        assert_ne!(a, sig("other", 1_700_000_000, b"{\"x\":1}"));
        // A known answer (computed with Python's hmac module).
        assert_eq!(
            sig("key", 1, b"body"),
            format!(
                "t=1,v1={}",
                "91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
            )
        );
    }

    #[test]
    fn hook_urls_are_checked() {
        for bad in [
            "ftp://x",
            "http://user:pw@x/",
            "http://169.254.169.254/latest",
            "not a url",
            "http://0.0.0.0/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("https://hooks.example.com/stellar").is_ok());
    }
}
