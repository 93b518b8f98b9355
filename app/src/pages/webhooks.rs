//! Webhooks (administrators): the hooks registered, the events each receives, and each hook's
//! delivery log (state, attempts, the receiver's last answer). Hooks are registered through
//! `POST /api/v1/webhooks`, which shows the signing secret once.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::ledger::short_time;
use crate::api::{get_webhook_deliveries, get_webhooks};
use crate::authz::Action;
use crate::delivery::{Webhook, WebhookDelivery};
use crate::layout::{ErrorNotice, loading, require};

#[component]
pub(crate) fn WebhooksPage() -> impl IntoView {
    if let Err(denied) = require(Action::ManageWebhooks) {
        return denied.view();
    }
    let query = use_query_map();
    let selected = move || query.with(|q| q.get("hook").and_then(|h| h.parse::<i32>().ok()));
    let hooks = Resource::new(|| (), |_| get_webhooks());
    let log = Resource::new(selected, |id| async move {
        match id {
            Some(id) => get_webhook_deliveries(id).await.map(|d| Some((id, d))),
            None => Ok(None),
        }
    });
    view! {
        <Title text="Webhooks"/>
        <h1>"Webhooks"</h1>
        <p class="muted">
            "Release events are posted to each hook, signed with HMAC-SHA256 ("
            <code>"Stellar-Signature: t=…,v1=…"</code>
            "), and retried with back-off. Register one with "
            <code>"POST /api/v1/webhooks"</code> "."
        </p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match hooks.await {
                    Ok(h) => view! { <Hooks hooks=h/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match log.await {
                    Ok(Some((id, d))) => view! { <Deliveries id deliveries=d/> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn Hooks(hooks: Vec<Webhook>) -> impl IntoView {
    if hooks.is_empty() {
        return view! { <p class="muted">"No webhooks registered."</p> }.into_any();
    }
    let rows = hooks
        .into_iter()
        .map(|h| {
            let href = format!("/webhooks?hook={}", h.id);
            view! {
                <tr>
                    <td class="wrap"><code>{h.url.clone()}</code></td>
                    <td>{h.events.join(", ")}</td>
                    <td>{if h.active { "active" } else { "inactive" }}</td>
                    <td><a href=href>"delivery log"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="data">
                <caption class="visually-hidden">"Webhooks"</caption>
                <thead>
                    <tr>
                        <th scope="col">"URL"</th>
                        <th scope="col">"Events"</th>
                        <th scope="col">"State"</th>
                        <th scope="col"><span class="visually-hidden">"Log"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn Deliveries(id: i32, deliveries: Vec<WebhookDelivery>) -> impl IntoView {
    let rows = deliveries
        .into_iter()
        .map(|d| {
            let class = match d.state.as_str() {
                "delivered" => "ok",
                "failed" => "bad",
                _ => "",
            };
            view! {
                <tr>
                    <td>{d.id}</td>
                    <td>{d.event.clone()}</td>
                    <td><span class=class>{d.state.clone()}</span></td>
                    <td class="num">{d.attempts}</td>
                    <td>{d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())}</td>
                    <td>{d.last_error.clone().unwrap_or_default()}</td>
                    <td><time datetime=d.created_at.clone()>{short_time(&d.created_at)}</time></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>{format!("Delivery log of hook {id}")}</h2>
        <div class="table-wrap">
            <table class="data">
                <caption class="visually-hidden">"Deliveries, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Id"</th>
                        <th scope="col">"Event"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Attempts"</th>
                        <th scope="col">"Last status"</th>
                        <th scope="col">"Last error"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
