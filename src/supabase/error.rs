//! What can go wrong with Supabase, typed where callers branch (each kind
//! has its exit code, see `app::exit`), and the words that say what to do:
//! the migration to apply, the GRANT to run.

use serde::Deserialize;

/// The migration with the tracking columns the tool reads and writes, and
/// the indexes of the due walks.
pub(crate) const MIGRATION: &str = "migrations/20261126000000_refresh_tracking.sql";
/// The migration with the claims table, the functions the tool claims and
/// writes through, and the grants they need.
pub(crate) const CLAIMS_MIGRATION: &str = "migrations/20261201000000_claims_table.sql";
/// The migration with the functions of the counts and the lookup by email.
pub(crate) const COUNTS_MIGRATION: &str = "migrations/20261201000100_counts_and_lookup.sql";

/// The migration that creates database function `name`.
pub(crate) fn migration_of(name: &str) -> &'static str {
    match name {
        "refresh_counts" | "refresh_sessions_by_email" => COUNTS_MIGRATION,
        _ => CLAIMS_MIGRATION,
    }
}

/// What went wrong with Supabase.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Supabase did not answer, or kept failing transiently (429, 502–504)
    /// for the whole retry budget.
    #[error(
        "Supabase is unreachable: {0}; check SUPABASE_URL / SUPABASE_REST_URL and the network"
    )]
    Unreachable(String),
    /// Supabase refused the key (HTTP 401 or 403, not a missing grant).
    #[error("Supabase refused the key (HTTP {status}{}): use the project's secret key (SUPABASE_SECRET_KEY, sb_secret_…) or its legacy service-role key", refusal_detail(code.as_deref(), message.as_deref()))]
    KeyRefused {
        status: u16,
        /// The gateway's `sb-error-code` header, when it sent one.
        code: Option<String>,
        /// The answer's `message` (Supabase's gateway says why: no key, an
        /// invalid one, a secret key from a browser).
        message: Option<String>,
    },
    /// Supabase answered with a redirect, which the tool does not follow.
    #[error("Supabase answered with a redirect (HTTP {status}) to {host}; the tool follows none, so the key never goes there: set SUPABASE_URL (or SUPABASE_REST_URL) to the address that serves the API itself")]
    Redirected { status: u16, host: String },
    /// The sessions table does not exist.
    #[error("table {table:?} does not exist in Supabase: check AIMHARDER_SESSIONS_TABLE, then apply {MIGRATION}")]
    MissingTable { table: String },
    /// A database function the tool calls does not exist.
    #[error("the database function {name} is missing: apply {} (and every file of migrations/ before it, in file-name order)", migration_of(name))]
    MissingFunction { name: String },
    /// The table lacks a column the tool reads or writes.
    #[error("table {table:?} lacks column(s) {column}: apply the migration {MIGRATION} and the later files in migrations/, in file-name order (Supabase SQL editor or psql)")]
    MissingColumn { table: String, column: String },
    /// PostgreSQL's 42501: the key's role lacks a privilege. Supabase grants
    /// new tables and functions to no API role since 2026-10-30, so this is
    /// a migration (or a GRANT) not applied, not a wrong key.
    #[error("Supabase refused the request: {message}; apply {CLAIMS_MIGRATION} and {COUNTS_MIGRATION} (they grant service_role what the tool uses), or run: {grant}")]
    PermissionDenied { message: String, grant: String },
    /// `--filter` names a column the table lacks.
    #[error("--filter (AIMHARDER_FILTER) names column {column}, which table {table:?} does not have: check the column's name")]
    UnknownFilterColumn { table: String, column: String },
    /// The table has the column but refuses the filter (a value of another type).
    #[error("Supabase refused --filter (AIMHARDER_FILTER) {filters}: {message}")]
    FilterRefused { filters: String, message: String },
    /// The request itself was refused (a bad value, a constraint).
    #[error("Supabase rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// Supabase failed on its side, in a way a retry does not mend.
    #[error("Supabase failed (HTTP {status}): {message}")]
    ServerError { status: u16, message: String },
}

impl StoreError {
    /// The exit code this error ends the run with: Supabase away or failing
    /// is 69, a refused key 77, a setup to mend (a migration, a grant, a
    /// filter, a URL) 78.
    pub(crate) fn code(&self) -> u8 {
        use crate::domain::exit::{EX_CONFIG, EX_NOPERM, EX_UNAVAILABLE};
        match self {
            StoreError::Unreachable(_) => EX_UNAVAILABLE,
            StoreError::KeyRefused { .. } => EX_NOPERM,
            StoreError::MissingTable { .. }
            | StoreError::MissingColumn { .. }
            | StoreError::MissingFunction { .. }
            | StoreError::PermissionDenied { .. }
            | StoreError::UnknownFilterColumn { .. }
            | StoreError::FilterRefused { .. }
            | StoreError::Redirected { .. } => EX_CONFIG,
            StoreError::Rejected { .. } | StoreError::ServerError { .. } => EX_UNAVAILABLE,
        }
    }
}

/// The error body PostgREST answers with: the SQLSTATE (or PostgREST's own
/// code) and the message.
#[derive(Default, Deserialize)]
pub(crate) struct PgError {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

/// The GRANT that mends "permission denied for function f" (or for table t).
pub(crate) fn grant_for(message: &str, table: &str) -> String {
    let named = |what: &str| {
        message
            .split(&format!("permission denied for {what} "))
            .nth(1)
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string()
            })
            .filter(|name| !name.is_empty())
    };
    if let Some(function) = named("function") {
        return format!("GRANT EXECUTE ON FUNCTION {function} TO service_role");
    }
    match named("table").or_else(|| named("relation")) {
        Some(t) if t == "refresh_claims" => {
            "GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_claims TO service_role".into()
        }
        Some(t) => format!("GRANT SELECT, UPDATE ON {t} TO service_role"),
        None => format!("GRANT SELECT, UPDATE ON {table} TO service_role"),
    }
}

/// The column named in "column auth_sessions.foo does not exist" (or the
/// PGRST204 "Could not find the 'foo' column ..." form).
pub(crate) fn missing_column(message: &str) -> String {
    let name = match message.find(" does not exist") {
        Some(end) => message[..end].rsplit(' ').next().unwrap_or_default(),
        None => message.split('\'').nth(1).unwrap_or_default(),
    };
    let name = name.trim_matches(|c| c == '"' || c == '\'');
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches('"')
        .to_string()
}

/// What the gateway said of a refused key, for the error line.
fn refusal_detail(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!(", sb-error-code {code}: {message}"),
        (Some(code), None) => format!(", sb-error-code {code}"),
        (None, Some(message)) => format!(": {message}"),
        (None, None) => String::new(),
    }
}

/// `text` fit for one line of an error: printable characters only, at most
/// 200 of them (it came from the network).
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_knows_its_exit_code() {
        let refused = StoreError::KeyRefused {
            status: 401,
            code: None,
            message: None,
        };
        assert_eq!(refused.code(), 77);
        assert_eq!(StoreError::Unreachable("down".into()).code(), 69);
        let missing = StoreError::MissingTable {
            table: "auth_sessions".into(),
        };
        assert_eq!(missing.code(), 78);
    }

    #[test]
    fn missing_column_is_read_from_both_error_forms() {
        assert_eq!(
            missing_column("column auth_sessions.refresh_count does not exist"),
            "refresh_count"
        );
        assert_eq!(
            missing_column(
                "Could not find the 'fingerprint' column of 'auth_sessions' in the schema cache"
            ),
            "fingerprint"
        );
    }

    #[test]
    fn a_refused_privilege_names_its_grant() {
        assert_eq!(
            grant_for(
                "permission denied for function refresh_claim",
                "auth_sessions"
            ),
            "GRANT EXECUTE ON FUNCTION refresh_claim TO service_role"
        );
        assert_eq!(
            grant_for(
                "permission denied for table refresh_claims",
                "auth_sessions"
            ),
            "GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_claims TO service_role"
        );
        assert_eq!(
            grant_for("permission denied for table sessions", "sessions"),
            "GRANT SELECT, UPDATE ON sessions TO service_role"
        );
        assert_eq!(
            grant_for("permission denied", "auth_sessions"),
            "GRANT SELECT, UPDATE ON auth_sessions TO service_role"
        );
    }
}
