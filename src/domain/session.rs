//! A stored session, as far as this tool reads it.

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::email::Email;

/// One row of the sessions table, as far as this tool reads it.
#[derive(Clone, Deserialize)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) user_email: Option<Email>,
    #[serde(default)]
    pub(crate) aimharder_token: Option<SecretString>,
    #[serde(default)]
    pub(crate) aimharder_cookies: serde_json::Value,
    #[serde(default)]
    pub(crate) fingerprint: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    pub(crate) last_refresh_date: Option<String>,
    #[serde(default)]
    pub(crate) refresh_count: Option<i64>,
    #[serde(default)]
    pub(crate) last_refresh_error: Option<String>,
    #[serde(default)]
    pub(crate) auto_refresh_enabled: Option<bool>,
}

impl SessionRow {
    /// Whether the session is disabled with an error on it: the tool turned
    /// it off (as expired), not a person (who leaves no error).
    pub(crate) fn disabled_by_tool(&self) -> bool {
        self.auto_refresh_enabled == Some(false) && self.last_refresh_error.is_some()
    }
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
