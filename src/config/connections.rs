//! Where the tool connects: the Supabase project (URL, table, key,
//! filters) and AimHarder (URL, proxy, endpoint, client settings), each
//! checked once, before the first request.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::aimharder::client::AimHarderConfig;
use crate::cli::{GlobalArgs, HttpArgs};
use crate::config::error::ConfigError;
use crate::config::{endpoint, filters, keys};
use crate::http::join_path;
use crate::supabase::store::StoreConfig;

/// Checks the Supabase settings: the REST URL (`--rest-url`, else
/// `--supabase-url` with `/rest/v1`), the key, the table name and the
/// filters.
pub(super) fn store_config(args: &GlobalArgs) -> Result<StoreConfig, ConfigError> {
    let rest_url = match (&args.rest_url, &args.supabase_url) {
        (Some(rest), _) => parse_url("SUPABASE_REST_URL (--rest-url)", rest)?,
        (None, Some(base)) => {
            let base = parse_url("SUPABASE_URL (--supabase-url)", base)?;
            join_path(&base, "rest/v1")
        }
        (None, None) => {
            return Err(ConfigError::Config(
                "SUPABASE_URL is not set: pass --supabase-url (or SUPABASE_REST_URL / --rest-url for a self-hosted PostgREST)"
                    .into(),
            ))
        }
    };
    let key = keys::supabase_key(args)?;
    let table = args.table.trim().to_string();
    if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::Config(format!(
            "AIMHARDER_SESSIONS_TABLE (--table) {table:?} is not a plain table name (letters, digits, _)"
        )));
    }
    Ok(StoreConfig {
        rest_url,
        key,
        table,
        filters: filters::parse(&args.filters)?,
    })
}

/// Checks the AimHarder settings of a command that calls AimHarder, with
/// its `--request-timeout`.
pub(super) fn aimharder_config(
    args: &GlobalArgs,
    http: &HttpArgs,
) -> Result<AimHarderConfig, ConfigError> {
    let base_url = parse_url("AIMHARDER_BASE_URL (--aimharder-url)", &args.aimharder_url)?;
    let default_fingerprint = args.default_fingerprint.trim().to_string();
    if default_fingerprint.is_empty() {
        return Err(ConfigError::Config(
            "AIMHARDER_FINGERPRINT (--default-fingerprint) is empty".into(),
        ));
    }
    if http.request_timeout.is_zero() {
        return Err(ConfigError::Usage(
            "--request-timeout must be longer than 0s".into(),
        ));
    }
    Ok(AimHarderConfig {
        base_url,
        proxy: proxy(args)?,
        endpoint: endpoint(args),
        default_fingerprint,
        user_agent: args.user_agent.clone(),
        request_timeout: http.request_timeout,
    })
}

/// The proxy for AimHarder traffic. Its URL may hold credentials, so no
/// message repeats it.
fn proxy(args: &GlobalArgs) -> Result<Option<SecretString>, ConfigError> {
    let Some(raw) = args
        .proxy
        .as_ref()
        .filter(|p| !p.expose_secret().is_empty())
    else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ConfigError::Config(format!(
            "AIMHARDER_PROXY (--proxy) {why}: write http://, https:// or socks5:// [user:password@]host:port"
        ))
    };
    let url = Url::parse(raw.expose_secret()).map_err(|_| bad("is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(bad("has a scheme the tool cannot use"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(Some(raw.clone()))
}

/// Parses `raw` as an http(s) URL; an error names the `setting`.
pub(super) fn parse_url(setting: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError::Config(format!("{setting} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Config(format!(
            "{setting} must be an http(s) URL"
        )));
    }
    Ok(url)
}
