//! The portal's pages, one module each.

mod admin;
mod dashboard;
mod ledger;
mod login;
mod submissions;
mod tokens;

pub(crate) use admin::AdminPage;
pub(crate) use dashboard::DashboardPage;
pub(crate) use ledger::LedgerPage;
pub(crate) use login::LoginPage;
pub(crate) use submissions::{SubmissionPage, SubmissionsPage, UploadPage};
pub(crate) use tokens::TokensPage;
