//! The sessions table, reached over Supabase's REST API (PostgREST).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use postgrest::Builder;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_RANGE};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::backoff::Backoff;
use crate::config::{join_path, StoreConfig};
use crate::timefmt;

pub const MIGRATION: &str = "migrations/20261126000000_refresh_tracking.sql";
const REQUIRED_COLUMNS: &str = "id,user_email,aimharder_token,aimharder_cookies,created_at,\
     last_refresh_date,refresh_count,last_refresh_error,auto_refresh_enabled";
const ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "Supabase is unreachable: {0}; check SUPABASE_URL / SUPABASE_REST_URL and the network"
    )]
    Unreachable(String),
    #[error("Supabase refused the key (HTTP {status}): use the project's service-role key (SUPABASE_SERVICE_ROLE_KEY)")]
    KeyRefused { status: u16 },
    #[error("table {table:?} does not exist in Supabase: check AIMHARDER_SESSIONS_TABLE, then apply {MIGRATION}")]
    MissingTable { table: String },
    #[error("table {table:?} lacks column(s) {column}: apply the migration {MIGRATION} (Supabase SQL editor or psql)")]
    MissingColumn { table: String, column: String },
    #[error("Supabase rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
}

/// One row of the sessions table, as far as this tool reads it.
#[derive(Clone, Deserialize)]
pub struct SessionRow {
    pub id: String,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default)]
    pub aimharder_token: Option<SecretString>,
    #[serde(default)]
    pub aimharder_cookies: serde_json::Value,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub last_refresh_date: Option<String>,
    #[serde(default)]
    pub refresh_count: Option<i64>,
    #[serde(default)]
    pub last_refresh_error: Option<String>,
    #[serde(default)]
    pub auto_refresh_enabled: Option<bool>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The tracking columns (and rotated credentials) one refresh writes back.
/// `None` leaves a column untouched; `Some(None)` writes SQL NULL.
#[derive(Default, Serialize)]
pub struct Patch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refresh_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refresh_error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_refresh_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub aimharder_token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aimharder_cookies: Option<serde_json::Value>,
}

fn expose_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

/// Where a keyset page starts: strictly after this (sort key, id).
#[derive(Debug, Clone)]
pub struct After {
    pub key: String,
    pub id: String,
}

impl After {
    /// The cursor past the last row of a page ordered by `order_key`, id.
    pub fn last_of(page: &[SessionRow], order_key: &str) -> Option<Self> {
        let row = page.last()?;
        let key = if order_key == "created_at" {
            &row.created_at
        } else {
            &row.last_refresh_date
        };
        Some(Self {
            key: key.clone().unwrap_or_default(),
            id: row.id.clone(),
        })
    }
}

/// Server-side conditions in PostgREST's logic-tree syntax, all of which must hold.
pub type Filters = Vec<String>;

#[derive(Clone)]
pub struct Store {
    http: reqwest::Client,
    table_url: String,
    table: String,
    headers: HeaderMap,
    /// Until a read shows otherwise, the optional fingerprint column is
    /// assumed present; checking up front would cost a request per run.
    has_fingerprint: Arc<AtomicBool>,
    key_role: Option<String>,
}

impl Store {
    /// A client for the sessions table. Nothing is sent yet: the first
    /// request finds out whether Supabase is reachable, takes the key, and
    /// has the table and columns.
    pub fn new(config: &StoreConfig) -> Result<Self, StoreError> {
        let key = config.service_key.expose_secret();
        let mut headers = HeaderMap::new();
        let mut apikey =
            HeaderValue::from_str(key).map_err(|_| StoreError::KeyRefused { status: 0 })?;
        apikey.set_sensitive(true);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| StoreError::KeyRefused { status: 0 })?;
        bearer.set_sensitive(true);
        headers.insert("apikey", apikey);
        headers.insert("Authorization", bearer);
        Ok(Self {
            http: http_client()?,
            table_url: join_path(&config.rest_url, &config.table).to_string(),
            table: config.table.clone(),
            headers,
            has_fingerprint: Arc::new(AtomicBool::new(true)),
            key_role: jwt_role(key),
        })
    }

    /// The same store on connections of its own. Page reads use it: a
    /// connection that once carried a 200 KB page keeps a buffer that size,
    /// and sharing the pool with the writes would spread such buffers over
    /// every connection as the run goes on.
    pub fn on_own_connections(&self) -> Result<Self, StoreError> {
        Ok(Self {
            http: http_client()?,
            ..self.clone()
        })
    }

    pub fn has_fingerprint(&self) -> bool {
        self.has_fingerprint.load(Ordering::Relaxed)
    }

    fn columns(&self) -> String {
        if self.has_fingerprint() {
            format!("{REQUIRED_COLUMNS},fingerprint")
        } else {
            REQUIRED_COLUMNS.to_string()
        }
    }

    /// Reads rows with the columns the tool uses. A missing column is looked
    /// into once: only the optional fingerprint missing means read without it;
    /// anything else is an error naming the migration.
    async fn rows(
        &self,
        build: impl Fn(Builder, &str) -> Builder,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let first = self.send(build(self.from(), &self.columns())).await;
        let resp = match first {
            Err(StoreError::MissingColumn { .. }) if self.has_fingerprint() => {
                self.check_columns().await?;
                self.send(build(self.from(), &self.columns())).await?
            }
            other => other?,
        };
        read_json(resp).await
    }

    async fn check_columns(&self) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        for column in REQUIRED_COLUMNS.split(',').chain(["fingerprint"]) {
            let probe = self.from().select(format!("id,{column}")).limit(1);
            match self.send(probe).await {
                Ok(_) => {}
                Err(StoreError::MissingColumn { .. }) => missing.push(column),
                Err(e) => return Err(e),
            }
        }
        let required: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|c| *c != "fingerprint")
            .collect();
        if !required.is_empty() {
            return Err(StoreError::MissingColumn {
                table: self.table.clone(),
                column: required.join(", "),
            });
        }
        self.has_fingerprint
            .store(!missing.contains(&"fingerprint"), Ordering::Relaxed);
        Ok(())
    }

    /// Whether the key is a JWT for some role other than `service_role`
    /// (an anon key sees no rows under row-level security).
    pub fn key_hint(&self) -> Option<String> {
        match self.key_role.as_deref() {
            Some("service_role") | None => None,
            Some(role) => Some(format!(
                "the key is for role {role:?}: row-level security hides sessions from it; use the service-role key (SUPABASE_SERVICE_ROLE_KEY)"
            )),
        }
    }

    fn from(&self) -> Builder {
        Builder::new(
            self.table_url.clone(),
            None,
            self.headers.clone(),
            self.http.clone(),
        )
    }

    /// One page of rows matching `filters`, ordered by `order_key` then id,
    /// strictly after `after`.
    pub async fn page(
        &self,
        filters: &Filters,
        order_key: &str,
        after: Option<&After>,
        limit: usize,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let mut conds = filters.clone();
        if let Some(after) = after {
            conds.push(format!(
                "or({order_key}.gt.{key},and({order_key}.eq.{key},id.gt.{id}))",
                key = quote(&after.key),
                id = quote(&after.id)
            ));
        }
        let tree = conds.join(",");
        self.rows(|from, columns| {
            let req = from
                .select(columns)
                .order(format!("{order_key}.asc,id.asc"))
                .limit(limit);
            if tree.is_empty() {
                req
            } else {
                req.and(&tree)
            }
        })
        .await
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let rows = self
            .rows(|from, columns| from.select(columns).eq("id", id).limit(1))
            .await?;
        Ok(rows.into_iter().next())
    }

    pub async fn by_email(
        &self,
        email: &str,
        fingerprint: Option<&str>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let pattern = email.replace('*', "");
        self.rows(|from, columns| {
            let req = from
                .select(columns)
                .ilike("user_email", &pattern)
                .order("created_at.asc,id.asc")
                .limit(100);
            match fingerprint {
                Some(fp) => req.eq("fingerprint", fp),
                None => req,
            }
        })
        .await
    }

    /// Applies `patch` only if the row's `refresh_count` is still `expected`.
    /// `Ok(false)` means the row changed (or vanished) since it was read.
    pub async fn update_if_unchanged(
        &self,
        id: &str,
        expected: Option<i64>,
        patch: &Patch,
    ) -> Result<bool, StoreError> {
        let body = serde_json::to_string(patch).map_err(|e| StoreError::Rejected {
            status: 0,
            message: format!("cannot encode the update: {e}"),
        })?;
        let req = self.from().update(body).eq("id", id).select("id");
        let req = match expected {
            Some(n) => req.eq("refresh_count", n.to_string()),
            None => req.is("refresh_count", "null"),
        };
        let rows: Vec<serde_json::Value> = read_json(self.send(req).await?).await?;
        Ok(!rows.is_empty())
    }

    /// Exact number of rows matching `filters`, counted by the server.
    pub async fn count(&self, filters: &Filters) -> Result<u64, StoreError> {
        let mut req = self.from().select("id").exact_count();
        if !filters.is_empty() {
            req = req.and(filters.join(","));
        }
        let resp = self.send(req).await?;
        let range = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit_once('/'))
            .and_then(|(_, total)| total.parse::<u64>().ok());
        range.ok_or_else(|| StoreError::Rejected {
            status: 200,
            message: "the count answer carried no Content-Range total".into(),
        })
    }

    /// Sends with retries on transport errors, 429 and 5xx, and turns
    /// PostgREST's error answers into typed errors.
    async fn send(&self, req: Builder) -> Result<Response, StoreError> {
        let req = req.build();
        let mut backoff =
            Backoff::new(Duration::from_millis(200), Duration::from_secs(5), ATTEMPTS);
        loop {
            let attempt = req
                .try_clone()
                .ok_or_else(|| StoreError::Unreachable("request cannot be retried".into()))?;
            let failure = match attempt.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if retryable(resp.status()) => format!("HTTP {}", resp.status().as_u16()),
                Ok(resp) => return Err(self.classify(resp).await),
                Err(e) => describe_transport(&e),
            };
            match backoff.next_delay() {
                Some(delay) => {
                    tracing::debug!(%failure, ?delay, "Supabase request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(StoreError::Unreachable(format!(
                        "{failure} after {ATTEMPTS} attempts"
                    )))
                }
            }
        }
    }

    async fn classify(&self, resp: Response) -> StoreError {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let err: PgError = serde_json::from_str(&body).unwrap_or_default();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            && err.code.as_deref() != Some("42501")
        {
            return StoreError::KeyRefused {
                status: status.as_u16(),
            };
        }
        let message = err.message.clone().unwrap_or_else(|| truncate(&body, 200));
        match err.code.as_deref() {
            Some("42703") | Some("PGRST204") => StoreError::MissingColumn {
                table: self.table.clone(),
                column: missing_column(&message),
            },
            Some("42P01") | Some("PGRST205") => StoreError::MissingTable {
                table: self.table.clone(),
            },
            _ if status == StatusCode::NOT_FOUND => StoreError::MissingTable {
                table: self.table.clone(),
            },
            _ => StoreError::Rejected {
                status: status.as_u16(),
                message,
            },
        }
    }
}

fn http_client() -> Result<reqwest::Client, StoreError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| StoreError::Unreachable(format!("cannot build the HTTP client: {e}")))
}

#[derive(Default, Deserialize)]
struct PgError {
    code: Option<String>,
    message: Option<String>,
}

/// The column named in "column auth_sessions.foo does not exist" (or the
/// PGRST204 "Could not find the 'foo' column ..." form).
fn missing_column(message: &str) -> String {
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

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A transport error in words, without the URL (it may carry filters).
pub fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer cut short"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T, StoreError> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| StoreError::Unreachable(describe_transport(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Rejected {
        status: 200,
        message: format!("unexpected answer from Supabase: {e}"),
    })
}

/// A value quoted for PostgREST's logic-tree syntax.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

/// The `role` claim of a JWT key, if the key is a JWT.
fn jwt_role(key: &str) -> Option<String> {
    let payload = key.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("role")?.as_str().map(str::to_string)
}

/// Filters in logic-tree form, built for one query.
pub mod filter {
    use super::quote;

    pub fn enabled() -> String {
        "auto_refresh_enabled.is.true".into()
    }

    pub fn lt(column: &str, value: &str) -> String {
        format!("{column}.lt.{}", quote(value))
    }

    pub fn gte(column: &str, value: &str) -> String {
        format!("{column}.gte.{}", quote(value))
    }

    pub fn is_null(column: &str) -> String {
        format!("{column}.is.null")
    }

    pub fn not_null(column: &str) -> String {
        format!("{column}.not.is.null")
    }

    pub fn or(conds: &[String]) -> String {
        format!("or({})", conds.join(","))
    }

    pub fn all(conds: &[String]) -> String {
        format!("and({})", conds.join(","))
    }
}

/// Stored errors start with their time, so "no error newer than X" can be
/// decided by the server without a column of its own.
pub fn stamped_error(now: OffsetDateTime, message: &str) -> String {
    let stamp = format!("[{}] ", timefmt::utc_seconds(now));
    let room = 500usize.saturating_sub(stamp.chars().count());
    format!("{stamp}{}", truncate(message, room))
}

/// The lower bound a stamped error must reach to count as newer than `cutoff`.
pub fn error_stamp_bound(cutoff: OffsetDateTime) -> String {
    format!("[{}", timefmt::utc_seconds(cutoff))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn stamped_errors_fit_500_characters_and_sort_by_time() {
        let now = time::macros::datetime!(2026-11-26 15:00:00 UTC);
        let long = "é".repeat(800);
        let stamped = stamped_error(now, &long);
        assert_eq!(stamped.chars().count(), 500);
        assert!(stamped.starts_with("[2026-11-26T15:00:00Z] "));
        let older = error_stamp_bound(time::macros::datetime!(2026-11-26 14:00:00 UTC));
        assert!(older.as_str() < stamped.as_str());
    }

    #[test]
    fn jwt_role_is_read_from_the_payload() {
        // {"role":"anon"} with a dummy signature.
        let key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln";
        assert_eq!(jwt_role(key).as_deref(), Some("anon"));
        assert_eq!(jwt_role("sb_secret_abc"), None);
    }
}
