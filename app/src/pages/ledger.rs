//! The audit ledger (secops, administrators): its verification status, a filtered and paged
//! list of entries, and one entry's detail with its inclusion proof.
//!
//! Filters and the selected entry live in the URL (`/ledger?actor=…&entry=12`), so a view can
//! be shared and the page works before (and without) hydration: the filter form is a plain GET.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::{
    CheckpointLedger, VerifyLedger, get_ledger_entries, get_ledger_proof, get_ledger_status,
};
use crate::authz::Action;
use crate::layout::{ErrorNotice, loading, require};
use crate::types::{
    LedgerEntry, LedgerEntryView, LedgerFilter, LedgerPage, LedgerProof, LedgerStatus,
};

const FILTER_FIELDS: [&str; 5] = ["actor", "action", "tenant", "since", "until"];

/// `/ledger?…` with the given query pairs (empty values left out).
fn ledger_href(pairs: &[(&str, String)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if query.is_empty() {
        "/ledger".into()
    } else {
        format!("/ledger?{}", query.join("&"))
    }
}

/// `2026-11-28T12:00:00.123456Z` → `2026-11-28 12:00:00` (the full time is in `datetime`).
pub(crate) fn short_time(t: &str) -> String {
    let t = t.replacen('T', " ", 1);
    t.split('.')
        .next()
        .unwrap_or(&t)
        .trim_end_matches('Z')
        .to_owned()
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[component]
pub(crate) fn LedgerPage() -> impl IntoView {
    let s = match require(Action::ReadLedger) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let query = use_query_map();
    let get = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let verify = ServerAction::<VerifyLedger>::new();
    let checkpoint = ServerAction::<CheckpointLedger>::new();
    let status = Resource::new(
        move || (verify.version().get(), checkpoint.version().get()),
        |_| get_ledger_status(),
    );
    let filter = move || {
        let opt = |k: &str| Some(get(k)).filter(|v| !v.is_empty());
        LedgerFilter {
            actor: opt("actor"),
            action: opt("action"),
            tenant: opt("tenant"),
            since: opt("since"),
            until: opt("until"),
            page: get("page").parse().ok(),
            per_page: None,
        }
    };
    let entries = Resource::new(filter, get_ledger_entries);
    let selected = move || get("entry").parse::<u64>().ok();
    let proof = Resource::new(
        move || (selected(), checkpoint.version().get()),
        |(seq, _)| async move {
            match seq {
                Some(seq) => get_ledger_proof(seq).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let csrf = StoredValue::new(s.csrf_token.clone());

    view! {
        <Title text="Audit ledger"/>
        <h1>"Audit ledger"</h1>
        <p>
            "Everything that changed, in order, hash-chained and signed. Anyone holding the trust root can check an export or a proof offline with "
            <code>"stellar ledger verify"</code> "."
        </p>
        <section class="card" aria-labelledby="ledger-status-title">
            <h2 id="ledger-status-title">"Verification"</h2>
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(st) => view! { <StatusView st/> }.into_any(),
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })}
            </Transition>
            <div class="actions">
                <ActionForm action=verify>
                    <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                    <button type="submit" class="primary">"Verify now"</button>
                </ActionForm>
                <ActionForm action=checkpoint>
                    <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                    <button type="submit">"Sign a checkpoint now"</button>
                </ActionForm>
                <a class="button" href="/api/v1/ledger/export" download="stellar-ledger.jsonl">
                    "Download export"
                </a>
                <a class="button" href="/api/v1/trust-root" download="stellar-trust-root.json">
                    "Download trust root"
                </a>
            </div>
            {move || {
                verify
                    .value()
                    .get()
                    .map(|r| match r {
                        Ok(v) if v.ok => {
                            view! {
                                <p class="notice" role="status">
                                    "Verified: " {v.message}
                                </p>
                            }
                                .into_any()
                        }
                        Ok(v) => {
                            view! {
                                <div class="alert" role="alert">
                                    <strong>"Verification failed"</strong>
                                    " "
                                    {v.message}
                                </div>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    })
            }}
            {move || {
                checkpoint
                    .value()
                    .get()
                    .map(|r| match r {
                        Ok(c) => {
                            view! {
                                <p class="notice" role="status">
                                    "Checkpoint of size " {c.size} " signed."
                                </p>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    })
            }}
        </section>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match proof.await {
                    Ok(Some(v)) => view! { <EntryDetail v/> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => {
                        view! {
                            <section class="card" aria-labelledby="entry-title">
                                <h2 id="entry-title">"Entry"</h2>
                                <ErrorNotice error=e/>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
        <section aria-labelledby="ledger-filter-title">
            <h2 id="ledger-filter-title">"Entries"</h2>
            <form method="get" action="/ledger" class="filters" role="search" aria-label="Filter entries">
                <div class="field">
                    <label for="f-actor">"Actor"</label>
                    <input id="f-actor" name="actor" type="text" value=get("actor") maxlength="200"/>
                </div>
                <div class="field">
                    <label for="f-action">"Action"</label>
                    <input
                        id="f-action"
                        name="action"
                        type="text"
                        value=get("action")
                        maxlength="100"
                        aria-describedby="f-action-hint"
                    />
                    <p class="hint" id="f-action-hint">
                        "Exact, or a prefix ending in a dot: " <code>"token."</code>
                    </p>
                </div>
                <div class="field">
                    <label for="f-tenant">"Tenant"</label>
                    <input id="f-tenant" name="tenant" type="text" value=get("tenant") maxlength="63"/>
                </div>
                <div class="field">
                    <label for="f-since">"From"</label>
                    <input id="f-since" name="since" type="date" value=get("since")/>
                </div>
                <div class="field">
                    <label for="f-until">"To (inclusive)"</label>
                    <input id="f-until" name="until" type="date" value=get("until")/>
                </div>
                <div class="filter-buttons">
                    <button type="submit" class="primary">"Filter"</button>
                    <a href="/ledger">"Clear"</a>
                </div>
            </form>
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    let filters: Vec<(&str, String)> = FILTER_FIELDS
                        .iter()
                        .map(|k| (*k, get(k)))
                        .collect();
                    match entries.await {
                        Ok(page) => view! { <EntryTable page filters/> }.into_any(),
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn StatusView(st: LedgerStatus) -> impl IntoView {
    let checkpoint = match &st.latest_checkpoint {
        Some(c) => format!(
            "size {}, signed {} by key {}",
            c.size,
            c.created_at,
            &c.key_id[..16.min(c.key_id.len())]
        ),
        None => "none yet".into(),
    };
    let verification = match &st.last_verification {
        Some(v) if v.ok => view! {
            <span class="ok">"✓ verified " {v.verified_at.clone()}</span>
            " — "
            {v.message.clone()}
        }
        .into_any(),
        Some(v) => view! {
            <span class="bad">"✗ failed " {v.verified_at.clone()}</span>
            " — "
            {v.message.clone()}
        }
        .into_any(),
        None => view! { "never verified yet" }.into_any(),
    };
    view! {
        <dl class="facts">
            <dt>"Entries"</dt>
            <dd id="ledger-size">{st.size}</dd>
            <dt>"Newest checkpoint"</dt>
            <dd>{checkpoint}</dd>
            <dt>"Last verification"</dt>
            <dd id="ledger-verification">{verification}</dd>
        </dl>
    }
}

#[component]
fn EntryTable(page: LedgerPage, filters: Vec<(&'static str, String)>) -> impl IntoView {
    if page.entries.is_empty() {
        return view! { <p class="muted">"No entries match these filters."</p> }.into_any();
    }
    let pages = page.total.div_ceil(page.per_page).max(1);
    let link = {
        let filters = filters.clone();
        move |n: u64| {
            let mut pairs = filters.clone();
            pairs.push(("page", n.to_string()));
            ledger_href(&pairs)
        }
    };
    let rows = page
        .entries
        .into_iter()
        .map(|e: LedgerEntry| {
            let mut pairs = filters.clone();
            pairs.push(("page", page.page.to_string()));
            pairs.push(("entry", e.seq.to_string()));
            let href = format!("{}#entry-title", ledger_href(&pairs));
            let label = format!("Entry {}: details and proof", e.seq);
            view! {
                <tr>
                    <td>
                        <a href=href aria-label=label>{e.seq}</a>
                    </td>
                    <td class="nowrap">
                        <time datetime=e.time.clone()>{short_time(&e.time)}</time>
                    </td>
                    <td>{e.actor.clone()}</td>
                    <td>{e.tenant.clone().unwrap_or_default()}</td>
                    <td>
                        <code>{e.action.clone()}</code>
                    </td>
                    <td class="wrap">{e.subject.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    let newer = (page.page > 1).then(|| link(page.page - 1));
    let older = (page.page < pages).then(|| link(page.page + 1));
    view! {
        <p class="muted" id="ledger-count">
            {page.total} " matching of " {page.size} " entries · page " {page.page} " of " {pages}
        </p>
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Ledger entries, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"#"</th>
                        <th scope="col" class="nowrap">"Time (UTC)"</th>
                        <th scope="col">"Actor"</th>
                        <th scope="col">"Tenant"</th>
                        <th scope="col">"Action"</th>
                        <th scope="col">"Subject"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <nav class="pager" aria-label="Pages">
            {newer.map(|h| view! { <a href=h rel="prev">"← Newer"</a> })}
            {older.map(|h| view! { <a href=h rel="next">"Older →"</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn EntryDetail(v: LedgerEntryView) -> impl IntoView {
    let e = v.entry.clone();
    let details = serde_json::from_str::<serde_json::Value>(&e.details)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| e.details.clone());
    let proof = match (v.proof, v.uncovered) {
        (Some(p), _) => view! { <ProofView p/> }.into_any(),
        (None, reason) => view! {
            <h3>"Inclusion proof"</h3>
            <p class="notice" role="status" id="proof-summary">
                {reason.unwrap_or_else(|| "No signed checkpoint covers this entry yet.".into())}
            </p>
        }
        .into_any(),
    };
    view! {
        <section class="card" aria-labelledby="entry-title">
            <h2 id="entry-title">"Entry " {e.seq}</h2>
            <dl class="facts">
                <dt>"Time"</dt>
                <dd>{e.time.clone()}</dd>
                <dt>"Actor"</dt>
                <dd>{e.actor.clone()}</dd>
                <dt>"Tenant"</dt>
                <dd>{e.tenant.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Action"</dt>
                <dd><code>{e.action.clone()}</code></dd>
                <dt>"Subject"</dt>
                <dd class="wrap">{e.subject.clone()}</dd>
                <dt>"Entry hash"</dt>
                <dd><code class="wrap">{e.entry_hash.clone()}</code></dd>
                <dt>"Previous hash"</dt>
                <dd><code class="wrap">{e.prev_hash.clone()}</code></dd>
            </dl>
            <h3>"Details"</h3>
            <pre class="code">{details}</pre>
            {proof}
        </section>
    }
}

#[component]
fn ProofView(p: LedgerProof) -> impl IntoView {
    let e = &p.entry;
    let download = format!(
        "/api/v1/ledger/entries/{}/proof?size={}",
        e.seq, p.tree_size
    );
    let file = format!("stellar-ledger-proof-{}.json", e.seq);
    let hashes = p
        .proof
        .iter()
        .enumerate()
        .map(|(i, h)| view! { <li><code>{i} ": " {h.clone()}</code></li> })
        .collect_view();
    view! {
            <h3>"Inclusion proof"</h3>
            <p id="proof-summary">
                "Included in the checkpoint of size " {p.tree_size} " with "
                {p.proof.len()} " sibling hashes (the proof grows with the logarithm of the ledger's size)."
            </p>
            <ol class="hashes" start="0">{hashes}</ol>
            <h3>"Signed checkpoint"</h3>
            <pre class="code">{p.checkpoint.clone()}</pre>
            <p>
                <a class="button" href=download download=file>"Download proof bundle"</a>
                " Check it offline: "
                <code>"stellar ledger verify --proof FILE --trust-root ROOT"</code>
            </p>
    }
}
