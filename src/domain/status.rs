//! The counts and per-session lines `status` reports.

use serde::Serialize;

use crate::domain::email::Email;

/// The sessions by state, as `status` and the metrics file count them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusReport {
    /// Every session in the table (after `--filter`).
    pub(crate) total: u64,
    /// Sessions with auto refresh enabled.
    pub(crate) auto_refresh_enabled: u64,
    /// Enabled sessions refreshed within the stale window.
    pub(crate) fresh: u64,
    /// Enabled sessions neither refreshed nor created within the stale window.
    pub(crate) stale: u64,
    /// Sessions never refreshed, enabled or not.
    pub(crate) never_refreshed: u64,
    /// Sessions whose last refresh left an error, enabled or not.
    pub(crate) with_errors: u64,
    /// Sessions a default `refresh-all` would select now.
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
