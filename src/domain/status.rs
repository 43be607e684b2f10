//! The counts and per-session lines `status` reports.

use serde::Serialize;

use crate::domain::email::Email;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusReport {
    pub total: u64,
    pub auto_refresh_enabled: u64,
    pub fresh: u64,
    pub stale: u64,
    pub never_refreshed: u64,
    pub with_errors: u64,
    pub due: u64,
}

/// One session as `status --sessions` lists it. Output writes the id and
/// the email (masked unless asked otherwise) ahead of the rest.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusLine {
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub email: Option<Email>,
    pub auto_refresh_enabled: bool,
    pub last_refresh_date: Option<String>,
    pub refresh_count: i64,
    pub error: Option<String>,
    pub token_expires_at: Option<String>,
}
