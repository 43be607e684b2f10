//! Checked settings, built once from the command line and environment.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::cli::GlobalArgs;
use crate::error::AppError;
use crate::http::join_path;
use crate::key::SupabaseKey;

/// Where the sessions live and how to reach them.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub rest_url: Url,
    pub key: SupabaseKey,
    pub table: String,
}

/// How to talk to AimHarder.
#[derive(Debug, Clone)]
pub struct AimHarderConfig {
    pub base_url: Url,
    pub default_fingerprint: String,
    pub user_agent: String,
    pub request_timeout: Duration,
}

impl StoreConfig {
    pub fn from_args(args: &GlobalArgs) -> Result<Self, AppError> {
        let rest_url = match (&args.rest_url, &args.supabase_url) {
            (Some(rest), _) => parse_url("SUPABASE_REST_URL (--rest-url)", rest)?,
            (None, Some(base)) => {
                let base = parse_url("SUPABASE_URL (--supabase-url)", base)?;
                join_path(&base, "rest/v1")
            }
            (None, None) => {
                return Err(AppError::Config(
                    "SUPABASE_URL is not set: pass --supabase-url (or SUPABASE_REST_URL / --rest-url for a self-hosted PostgREST)"
                        .into(),
                ))
            }
        };
        let key = supabase_key(args)?;
        let table = args.table.trim().to_string();
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(AppError::Config(format!(
                "AIMHARDER_SESSIONS_TABLE (--table) {table:?} is not a plain table name (letters, digits, _)"
            )));
        }
        Ok(Self {
            rest_url,
            key,
            table,
        })
    }
}

impl AimHarderConfig {
    pub fn from_args(args: &GlobalArgs, request_timeout: Duration) -> Result<Self, AppError> {
        let base_url = parse_url("AIMHARDER_BASE_URL (--aimharder-url)", &args.aimharder_url)?;
        let default_fingerprint = args.default_fingerprint.trim().to_string();
        if default_fingerprint.is_empty() {
            return Err(AppError::Config(
                "AIMHARDER_FINGERPRINT (--default-fingerprint) is empty".into(),
            ));
        }
        if request_timeout.is_zero() {
            return Err(AppError::Usage(
                "--request-timeout must be longer than 0s".into(),
            ));
        }
        Ok(Self {
            base_url,
            default_fingerprint,
            user_agent: args.user_agent.clone(),
            request_timeout,
        })
    }
}

/// The key from the first setting that holds one: the secret key's names
/// first, then the legacy service-role ones. Refused here, before any
/// request, when it is a key that cannot see the sessions.
fn supabase_key(args: &GlobalArgs) -> Result<SupabaseKey, AppError> {
    let given = [
        (
            "SUPABASE_SECRET_KEY (--secret-key)",
            &args.secret_key,
            "SUPABASE_SECRET_KEY_FILE (--secret-key-file)",
            &args.secret_key_file,
        ),
        (
            "SUPABASE_SERVICE_ROLE_KEY (--service-role-key)",
            &args.service_role_key,
            "SUPABASE_SERVICE_ROLE_KEY_FILE (--service-role-key-file)",
            &args.service_role_key_file,
        ),
    ];
    for (name, value, file_name, file) in given {
        if let Some(key) = value.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            return SupabaseKey::parse(key.clone(), name)
                .map_err(|e| AppError::Config(e.to_string()));
        }
        // An unset CI secret arrives as an empty variable: that means "none".
        if let Some(path) = file.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            let key = read_key_file(file_name, path)?;
            return SupabaseKey::parse(key, file_name).map_err(|e| AppError::Config(e.to_string()));
        }
    }
    Err(AppError::Config(
        "SUPABASE_SECRET_KEY is not set: pass --secret-key or --secret-key-file with the project's secret key (sb_secret_…; Supabase dashboard → Project Settings → API Keys)"
            .into(),
    ))
}

fn read_key_file(setting: &str, path: &std::path::Path) -> Result<SecretString, AppError> {
    let raw = std::fs::read_to_string(path).map_err(|e| {
        AppError::Config(format!("{setting} {} cannot be read: {e}", path.display()))
    })?;
    let key = raw.trim();
    if key.is_empty() {
        return Err(AppError::Config(format!(
            "{setting} {} is empty",
            path.display()
        )));
    }
    let key = SecretString::from(key);
    crate::github::mask(&key);
    Ok(key)
}

fn parse_url(setting: &str, raw: &str) -> Result<Url, AppError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| AppError::Config(format!("{setting} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AppError::Config(format!(
            "{setting} must be an http(s) URL"
        )));
    }
    Ok(url)
}
