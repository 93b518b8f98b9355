//! The Stellar portal and the wire contract shared by server and browser.
//!
//! **Boundary:** this crate never depends on the server. Server functions reach server logic
//! through [`api::backend::PortalBackend`], which the server provides as context (feature
//! `ssr`). With feature `hydrate` the same components run in the browser.

pub mod api;
pub mod authz;
pub mod delivery;
pub mod error;
pub mod fleet;
mod layout;
mod pages;
pub mod types;

pub use layout::{App, shell};

/// Page paths and who may open them: the server's access table and the tests read these.
pub mod routes {
    use crate::authz::Action;

    /// The portal's pages: path, and the action opening it needs (`None`: public).
    pub const PAGES: &[(&str, Option<Action>)] = &[
        ("/login", None),
        ("/", Some(Action::UseAccount)),
        ("/tokens", Some(Action::UseAccount)),
        ("/admin", Some(Action::ManageAccounts)),
        ("/ledger", Some(Action::ReadLedger)),
        ("/submissions", Some(Action::ReadSubmissions)),
        ("/submissions/new", Some(Action::Submit)),
        ("/submissions/{id}", Some(Action::ReadSubmissions)),
        ("/releases", Some(Action::ReadReleases)),
        ("/releases/{id}", Some(Action::ReadReleases)),
        ("/approvals", Some(Action::DecideRelease)),
        ("/calendar", Some(Action::ReadPipeline)),
        ("/webhooks", Some(Action::ManageWebhooks)),
        ("/fleet", Some(Action::ReadFleet)),
    ];
}
