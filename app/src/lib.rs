//! The Stellar portal and the wire contract shared by server and browser.
//!
//! **Boundary:** this crate never depends on the server. Server functions reach server logic
//! through [`api::backend::PortalBackend`], which the server provides as context (feature
//! `ssr`). With feature `hydrate` the same components run in the browser.

pub mod api;
pub mod error;
mod layout;
mod pages;
pub mod types;

pub use layout::{App, shell};

/// Page paths and who may open them: the server's access table and the tests read these.
pub mod routes {
    use crate::types::Role;

    /// Every role: any signed-in user.
    pub const ANY_ROLE: &[Role] = &Role::ALL;
    /// The administrators.
    pub const ADMINS: &[Role] = &[Role::Admin];
    /// Who may inspect the audit ledger.
    pub const AUDITORS: &[Role] = &[Role::Secops, Role::Admin];

    /// Who may upload plugins.
    pub const PARTNERS: &[Role] = &[Role::Partner];

    /// The portal's pages: path, and the roles that may open it (`None`: public).
    pub const PAGES: &[(&str, Option<&[Role]>)] = &[
        ("/login", None),
        ("/", Some(ANY_ROLE)),
        ("/tokens", Some(ANY_ROLE)),
        ("/admin", Some(ADMINS)),
        ("/ledger", Some(AUDITORS)),
        ("/submissions", Some(ANY_ROLE)),
        ("/submissions/new", Some(PARTNERS)),
        ("/submissions/{id}", Some(ANY_ROLE)),
    ];
}
