//! The fleet (platform users): how many hosts, by product version and by region, which are
//! stale (no poll within the stale period), and the most recently seen hosts with their last
//! poll and report. Hosts authenticate with fleet tokens made through `POST /api/v1/fleet/tokens`
//! or `stellar fleet token create`.

use leptos::prelude::*;
use leptos_meta::Title;

use super::ledger::short_time;
use crate::api::get_fleet;
use crate::authz::Action;
use crate::fleet::{FleetCount, FleetOverview};
use crate::layout::{ErrorNotice, loading, require};

#[component]
pub(crate) fn FleetPage() -> impl IntoView {
    if let Err(denied) = require(Action::ReadFleet) {
        return denied.view();
    }
    let fleet = Resource::new(|| (), |_| get_fleet());
    view! {
        <Title text="Fleet"/>
        <h1>"Fleet"</h1>
        <p class="muted">
            "Hosts poll " <code>"/api/v1/fleet/channel"</code> " for what to run and report their health to "
            <code>"/api/v1/fleet/reports"</code> ", with a fleet token ("
            <code>"stellar fleet token create --group NAME"</code> ")."
        </p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match fleet.await {
                    Ok(f) => view! { <Overview f/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

fn counts(caption: &'static str, what: &'static str, rows: Vec<FleetCount>) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|c| view! { <tr><td>{c.value}</td><td>{c.hosts}</td></tr> })
        .collect_view();
    view! {
        <table>
            <caption>{caption}</caption>
            <thead><tr><th scope="col">{what}</th><th scope="col">"Hosts"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn Overview(f: FleetOverview) -> impl IntoView {
    if f.hosts == 0 {
        return view! { <p class="muted">"No host has polled the channel yet."</p> }.into_any();
    }
    let hosts = f
        .recent
        .into_iter()
        .map(|h| {
            view! {
                <tr>
                    <td><code>{h.id}</code></td>
                    <td>{h.group.unwrap_or_default()}</td>
                    <td>{h.product_version.unwrap_or_default()}</td>
                    <td>{h.region.unwrap_or_default()}</td>
                    <td><time datetime=h.last_poll.clone()>{short_time(&h.last_poll)}</time></td>
                    <td>{h.last_report.map(|r| view! { <time datetime=r.clone()>{short_time(&r)}</time> })}</td>
                    <td>{if h.stale { view! { <span class="badge deny">"stale"</span> }.into_any() } else { view! { <span class="badge pass">"live"</span> }.into_any() }}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <dl class="facts card">
            <dt>"Hosts"</dt>
            <dd>{f.hosts}</dd>
            <dt>"Stale"</dt>
            <dd>{format!("{} (no poll for {} min)", f.stale, f.stale_after_secs / 60)}</dd>
        </dl>
        <div class="columns">
            {counts("Hosts by product version", "Product version", f.by_product_version)}
            {counts("Hosts by region", "Region", f.by_region)}
        </div>
        <div class="table-wrap">
            <table>
                <caption>"Hosts, stale first, then the most recently seen"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Host"</th>
                        <th scope="col">"Group"</th>
                        <th scope="col">"Product"</th>
                        <th scope="col">"Region"</th>
                        <th scope="col">"Last poll"</th>
                        <th scope="col">"Last report"</th>
                        <th scope="col">"State"</th>
                    </tr>
                </thead>
                <tbody>{hosts}</tbody>
            </table>
        </div>
    }
    .into_any()
}
