//! Checked settings, built once from the command line and environment.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::cli::GlobalArgs;
use crate::error::AppError;

/// Where the sessions live and how to reach them.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub rest_url: Url,
    pub service_key: SecretString,
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
        let service_key = service_key(args)?;
        let table = args.table.trim().to_string();
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(AppError::Config(format!(
                "AIMHARDER_SESSIONS_TABLE (--table) {table:?} is not a plain table name (letters, digits, _)"
            )));
        }
        Ok(Self {
            rest_url,
            service_key,
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

fn service_key(args: &GlobalArgs) -> Result<SecretString, AppError> {
    if let Some(key) = &args.service_role_key {
        if !key.expose_secret().is_empty() {
            return Ok(key.clone());
        }
    }
    if let Some(path) = &args.service_role_key_file {
        let raw = std::fs::read_to_string(path).map_err(|e| {
            AppError::Config(format!(
                "SUPABASE_SERVICE_ROLE_KEY_FILE (--service-role-key-file) {} cannot be read: {e}",
                path.display()
            ))
        })?;
        let key = raw.trim();
        if key.is_empty() {
            return Err(AppError::Config(format!(
                "SUPABASE_SERVICE_ROLE_KEY_FILE (--service-role-key-file) {} is empty",
                path.display()
            )));
        }
        let key = SecretString::from(key);
        crate::github::mask(&key);
        return Ok(key);
    }
    Err(AppError::Config(
        "SUPABASE_SERVICE_ROLE_KEY is not set: pass --service-role-key or --service-role-key-file (Supabase dashboard → Project Settings → API → service_role)"
            .into(),
    ))
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

/// `base` with `segment` appended to its path, whatever trailing slash it had.
pub fn join_path(base: &Url, segment: &str) -> Url {
    let mut url = base.clone();
    let path = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        segment.trim_start_matches('/')
    );
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_url_is_derived_from_the_project_url() {
        let base = Url::parse("https://abc.supabase.co/").unwrap();
        assert_eq!(
            join_path(&base, "rest/v1").as_str(),
            "https://abc.supabase.co/rest/v1"
        );
        let api = Url::parse("http://127.0.0.1:3000/api").unwrap();
        assert_eq!(
            join_path(&api, "auth_sessions").as_str(),
            "http://127.0.0.1:3000/api/auth_sessions"
        );
    }
}
