//! The portal's pages, one module each.

mod admin;
mod calendar;
mod dashboard;
mod fleet;
mod ledger;
mod login;
mod releases;
mod rollout;
mod submissions;
mod tokens;
mod webhooks;

pub(crate) use admin::AdminPage;
pub(crate) use calendar::CalendarPage;
pub(crate) use dashboard::DashboardPage;
pub(crate) use fleet::FleetPage;
pub(crate) use ledger::LedgerPage;
pub(crate) use login::LoginPage;
pub(crate) use releases::{ApprovalsPage, ReleasePage, ReleasesPage};
pub(crate) use submissions::{SubmissionPage, SubmissionsPage, UploadPage};
pub(crate) use tokens::TokensPage;
pub(crate) use webhooks::WebhooksPage;
