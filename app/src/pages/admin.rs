//! Administration: tenants and user accounts (administrators only).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    CreateTenant, CreateUser, ResetPassword, SetUserDisabled, list_tenants, list_users,
};
use crate::authz::Action;
use crate::layout::{ErrorNotice, loading, require};
use crate::types::{Role, Tenant, User};

#[component]
pub(crate) fn AdminPage() -> impl IntoView {
    let s = match require(Action::ManageAccounts) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let create_tenant = ServerAction::<CreateTenant>::new();
    let create_user = ServerAction::<CreateUser>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let reset_password = ServerAction::<ResetPassword>::new();
    let tenants = Resource::new(
        move || (create_tenant.version().get(), create_user.version().get()),
        |_| list_tenants(),
    );
    let users = Resource::new(
        move || (create_user.version().get(), set_disabled.version().get()),
        |_| list_users(),
    );
    let filter = RwSignal::new(String::new());
    let csrf = StoredValue::new(s.csrf_token.clone());

    view! {
        <Title text="Admin"/>
        <h1>"Administration"</h1>
                    <section aria-labelledby="tenants-title">
                        <h2 id="tenants-title">"Tenants"</h2>
                        <Transition fallback=loading>
                            {move || Suspend::new(async move {
                                match tenants.await {
                                    Ok(list) => view! { <TenantTable list/> }.into_any(),
                                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                                }
                            })}
                        </Transition>
                        <details class="card">
                            <summary>"Create a tenant"</summary>
                            <ActionForm action=create_tenant>
                                <div class="stack">
                                    <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                                    <div class="field">
                                        <label for="tenant-slug">"Slug"</label>
                                        <input
                                            id="tenant-slug"
                                            name="slug"
                                            type="text"
                                            required
                                            pattern="[a-z][a-z0-9-]{1,62}"
                                            aria-describedby="tenant-slug-hint"
                                        />
                                        <p class="hint" id="tenant-slug-hint">
                                            "2–63 lowercase letters, digits or dashes, starting with a letter."
                                        </p>
                                    </div>
                                    <div class="field">
                                        <label for="tenant-name">"Name"</label>
                                        <input id="tenant-name" name="name" type="text" required maxlength="200"/>
                                    </div>
                                    <button type="submit" class="primary">"Create tenant"</button>
                                </div>
                            </ActionForm>
                            <ActionResult action=create_tenant what="Tenant"/>
                        </details>
                    </section>
                    <section aria-labelledby="users-title">
                        <h2 id="users-title">"Users"</h2>
                        <div class="field inline-field">
                            <label for="user-filter">"Filter users"</label>
                            <input
                                id="user-filter"
                                type="search"
                                placeholder="name, role or tenant"
                                prop:value=move || filter.get()
                                on:input=move |ev| filter.set(event_target_value(&ev))
                            />
                        </div>
                        {move || {
                            set_disabled
                                .value()
                                .get()
                                .and_then(|r| r.err())
                                .map(|e| view! { <ErrorNotice error=e/> })
                        }}
                        <Transition fallback=loading>
                            {move || Suspend::new(async move {
                                        match users.await {
                                            Ok(list) => {
                                                view! { <UserTable list filter csrf=csrf.get_value() set_disabled/> }
                                                    .into_any()
                                            }
                                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                                        }
                                    })}
                        </Transition>
                        <details class="card">
                            <summary>"Create a user"</summary>
                            <ActionForm action=create_user>
                                <div class="stack">
                                    <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                                    <div class="field">
                                        <label for="user-name">"Username"</label>
                                        <input id="user-name" name="username" type="text" required autocomplete="off"/>
                                    </div>
                                    <div class="field">
                                        <label for="user-display">"Display name"</label>
                                        <input id="user-display" name="display_name" type="text" maxlength="200"/>
                                    </div>
                                    <div class="field">
                                        <label for="user-role">"Role"</label>
                                        <select id="user-role" name="role">
                                            {Role::ALL
                                                .into_iter()
                                                .map(|r| view! { <option value=r.as_str()>{r.label()}</option> })
                                                .collect_view()}
                                        </select>
                                    </div>
                                    <div class="field">
                                        <label for="user-tenant">"Tenant slug"</label>
                                        <input
                                            id="user-tenant"
                                            name="tenant"
                                            type="text"
                                            aria-describedby="user-tenant-hint"
                                        />
                                        <p class="hint" id="user-tenant-hint">
                                            "Required for partners; leave empty for staff."
                                        </p>
                                    </div>
                                    <div class="field">
                                        <label for="user-password">"Initial password"</label>
                                        <input
                                            id="user-password"
                                            name="password"
                                            type="password"
                                            required
                                            minlength="12"
                                            autocomplete="new-password"
                                        />
                                    </div>
                                    <button type="submit" class="primary">"Create user"</button>
                                </div>
                            </ActionForm>
                            <ActionResult action=create_user what="User"/>
                        </details>
                        <details class="card">
                            <summary>"Reset a password"</summary>
                            <ActionForm action=reset_password>
                                <div class="stack">
                                    <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                                    <div class="field">
                                        <label for="reset-username">"Username"</label>
                                        <input id="reset-username" name="username" type="text" required/>
                                    </div>
                                    <div class="field">
                                        <label for="reset-password">"New password"</label>
                                        <input
                                            id="reset-password"
                                            name="password"
                                            type="password"
                                            required
                                            minlength="12"
                                            autocomplete="new-password"
                                        />
                                    </div>
                                    <label class="check">
                                        <input type="checkbox" name="revoke_tokens" value="on" checked/>
                                        " Also revoke the user's API tokens (a leaked token stops working with the old password)"
                                    </label>
                                    <button type="submit" class="primary">"Reset password"</button>
                                </div>
                            </ActionForm>
                            {move || {
                                reset_password
                                    .value()
                                    .get()
                                    .map(|result| match result {
                                        Ok(u) => {
                                            view! {
                                                <p class="notice" role="status">
                                                    "The password of " {u.username} " was reset; their sessions ended."
                                                </p>
                                            }
                                                .into_any()
                                        }
                                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                                    })
                            }}
                        </details>
                    </section>
    }
    .into_any()
}

/// Says whether the last submission of a form worked.
#[component]
fn ActionResult<
    A: leptos::server_fn::ServerFn<Error = crate::error::AppError> + Clone + Send + Sync + 'static,
>(
    action: ServerAction<A>,
    what: &'static str,
) -> impl IntoView
where
    A::Output: Clone + Send + Sync + 'static,
{
    move || {
        action.value().get().map(|result| match result {
            Ok(_) => view! { <p class="notice" role="status">{what} " created."</p> }.into_any(),
            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
        })
    }
}

#[component]
fn TenantTable(list: Vec<Tenant>) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|t| {
            view! {
                <tr>
                    <td>
                        <code>{t.slug}</code>
                    </td>
                    <td>{t.name}</td>
                    <td class="num">{t.members}</td>
                    <td>{t.created_at}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Tenants"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Slug"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Members"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[component]
fn UserTable(
    list: Vec<User>,
    filter: RwSignal<String>,
    csrf: String,
    set_disabled: ServerAction<SetUserDisabled>,
) -> impl IntoView {
    let csrf = StoredValue::new(csrf);
    let rows = move || {
        let needle = filter.get().trim().to_lowercase();
        list.iter()
            .filter(|u| {
                needle.is_empty()
                    || u.username.to_lowercase().contains(&needle)
                    || u.display_name.to_lowercase().contains(&needle)
                    || u.role.as_str().contains(&needle)
                    || u.tenant.as_deref().is_some_and(|t| t.contains(&needle))
            })
            .map(|u| {
                let u = u.clone();
                let next = !u.disabled;
                let username = u.username.clone();
                let button = if u.disabled { "Enable" } else { "Disable" };
                let label = format!("{button} {}", u.username);
                view! {
                    <tr>
                        <td>{u.username.clone()}</td>
                        <td>{u.display_name.clone()}</td>
                        <td>{u.role.label()}</td>
                        <td>{u.tenant.clone().unwrap_or_else(|| "—".into())}</td>
                        <td>{if u.disabled { "disabled" } else { "active" }}</td>
                        <td>
                            <ActionForm action=set_disabled>
                                <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                                <input type="hidden" name="username" value=username/>
                                <input type="hidden" name="disabled" value=next.to_string()/>
                                <button type="submit" class="secondary" aria-label=label>
                                    {button}
                                </button>
                            </ActionForm>
                        </td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <div class="table-wrap">
            <table id="users-table">
                <caption class="visually-hidden">"Users"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Username"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Tenant"</th>
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
}
