//! API tokens: every user creates and revokes their own; administrators see everyone's.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{CreateToken, RevokeToken, list_tokens};
use crate::authz::Action;
use crate::layout::{ErrorNotice, loading, require};
use crate::types::{ApiToken, Role};

#[component]
pub(crate) fn TokensPage() -> impl IntoView {
    let s = match require(Action::UseAccount) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let csrf = StoredValue::new(s.csrf_token.clone());
    let is_admin = s.me.role == Role::Admin;
    view! {
        <Title text="API tokens"/>
        <h1>"API tokens"</h1>
        <p>
            "A token lets the " <code>"stellar"</code>
            " command line and your automation act as you. Send it as "
            <code>"Authorization: Bearer <token>"</code> "."
        </p>
        <section class="card" aria-labelledby="new-token-title">
            <h2 id="new-token-title">"Create a token"</h2>
            <ActionForm action=create>
                <div class="stack">
                    <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                    <input type="hidden" name="user" value=""/>
                    <div class="field">
                        <label for="token-name">"Name"</label>
                        <input
                            id="token-name"
                            name="name"
                            type="text"
                            required
                            maxlength="100"
                            aria-describedby="token-name-hint"
                        />
                        <p class="hint" id="token-name-hint">
                            "What it is for, such as " <code>"ci"</code> " or " <code>"laptop"</code> "."
                        </p>
                    </div>
                    <div class="field">
                        <label for="token-days">"Expires in (days)"</label>
                        <input
                            id="token-days"
                            name="expires_in_days"
                            type="text"
                            inputmode="numeric"
                            aria-describedby="token-days-hint"
                        />
                        <p class="hint" id="token-days-hint">
                            "Leave empty for a token that lasts until revoked."
                        </p>
                    </div>
                    <fieldset class="field">
                        <legend>"What it may do"</legend>
                        <label class="check">
                            <input type="checkbox" name="scope_read" value="on" checked/>
                            " read — see what your role may see"
                        </label>
                        <label class="check">
                            <input type="checkbox" name="scope_submit" value="on" checked/>
                            " submit — upload plugins and register publisher keys"
                        </label>
                        <label class="check">
                            <input type="checkbox" name="scope_release" value="on"/>
                            " release — request, approve, reject and abort releases (a CI job that asks for a release needs only this and read)"
                        </label>
                        <label class="check">
                            <input type="checkbox" name="scope_admin" value="on"/>
                            " admin — every other change (tokens, accounts, keys, the ledger)"
                        </label>
                    </fieldset>
                    <button type="submit" class="primary">
                        "Create token"
                    </button>
                </div>
            </ActionForm>
            {move || {
                create
                    .value()
                    .get()
                    .map(|result| match result {
                        Ok(created) => {
                            view! {
                                <div class="notice" role="status">
                                    <p>
                                        "Token " <strong>{created.token.name.clone()}</strong>
                                        " created. Copy it now: it is not shown again."
                                    </p>
                                    <code class="secret" id="new-token-secret">
                                        {created.secret.clone()}
                                    </code>
                                </div>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    })
            }}
        </section>
        <section aria-labelledby="tokens-title">
            <h2 id="tokens-title">
                {if is_admin { "Every user's tokens" } else { "Your tokens" }}
            </h2>
            {move || {
                revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorNotice error=e/> })
            }}
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) => {
                            view! { <TokenTable list csrf=csrf.get_value() revoke/> }.into_any()
                        }
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn TokenTable(
    list: Vec<ApiToken>,
    csrf: String,
    revoke: ServerAction<RevokeToken>,
) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted">"No tokens yet."</p> }.into_any();
    }
    let rows = list
        .into_iter()
        .map(|t| {
            let status = match (&t.revoked_at, &t.expires_at) {
                (Some(at), _) => format!("revoked {at}"),
                (None, Some(at)) => format!("expires {at}"),
                (None, None) => "active".to_owned(),
            };
            let active = t.revoked_at.is_none();
            let csrf = csrf.clone();
            let label = format!("Revoke token {}", t.name);
            view! {
                <tr>
                    <td>{t.name.clone()}</td>
                    <td>{t.user.clone()}</td>
                    <td>
                        <code>{t.prefix.clone()} "…"</code>
                    </td>
                    <td>
                        {t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}
                    </td>
                    <td>{t.created_at.clone()}</td>
                    <td>{t.last_used_at.clone().unwrap_or_else(|| "never".into())}</td>
                    <td>{status}</td>
                    <td>
                        {active
                            .then(|| {
                                view! {
                                    <ActionForm action=revoke>
                                        <input type="hidden" name="csrf_token" value=csrf/>
                                        <input type="hidden" name="id" value=t.id.clone()/>
                                        <button type="submit" class="danger" aria-label=label>
                                            "Revoke"
                                        </button>
                                    </ActionForm>
                                }
                            })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"API tokens"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"User"</th>
                        <th scope="col">"Prefix"</th>
                        <th scope="col">"Scopes"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">
                            <span class="visually-hidden">"Actions"</span>
                        </th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
