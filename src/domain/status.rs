//! The counts and per-session lines `status` reports.

use serde::Serialize;

use crate::domain::email::Email;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusReport {
    pub(crate) total: u64,
    pub(crate) auto_refresh_enabled: u64,
    pub(crate) fresh: u64,
    pub(crate) stale: u64,
    pub(crate) never_refreshed: u64,
    pub(crate) with_errors: u64,
    pub(crate) due: u64,
}

/// One session as `status --sessions` lists it. Output writes the id and
/// the email (masked unless asked otherwise) ahead of the rest.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusLine {
    #[serde(skip)]
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) email: Option<Email>,
    pub(crate) auto_refresh_enabled: bool,
    pub(crate) last_refresh_date: Option<String>,
    pub(crate) refresh_count: i64,
    pub(crate) error: Option<String>,
    pub(crate) token_expires_at: Option<String>,
}
