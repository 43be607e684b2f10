//! The sessions table, reached over Supabase's REST API (PostgREST).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::header::CONTENT_RANGE;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use url::Url;

use crate::supabase::key::SupabaseKey;
use crate::supabase::rest::{read_json, Query, Rest};

use crate::domain::session::SessionRow;
use crate::supabase::rest::StoreError;

/// The database function that claims sessions (the claims migration).
const CLAIM_FUNCTION: &str = "claim_refresh_sessions";
const REQUIRED_COLUMNS: &str = "id,user_email,aimharder_token,aimharder_cookies,created_at,\
     last_refresh_date,refresh_count,last_refresh_error,auto_refresh_enabled,refresh_claim_run,refresh_due_at";

/// Where the sessions live and how to reach them.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub rest_url: Url,
    pub key: SupabaseKey,
    pub table: String,
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

/// Serializes a secret that is to be written (to Supabase, to the journal):
/// the one place its value leaves the `SecretString` for serde.
pub fn expose_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
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
    /// The cursor past the last row of a page ordered by `order_key`, id
    /// (`order_key` "id": by id alone).
    pub fn last_of(page: &[SessionRow], order_key: &str) -> Option<Self> {
        let row = page.last()?;
        let key = match order_key {
            "created_at" => row.created_at.clone(),
            "refresh_due_at" => row.refresh_due_at.clone(),
            "id" => Some(row.id.clone()),
            _ => row.last_refresh_date.clone(),
        };
        Some(Self {
            key: key.unwrap_or_default(),
            id: row.id.clone(),
        })
    }
}

/// Server-side conditions in PostgREST's logic-tree syntax, all of which must hold.
pub type Filters = Vec<String>;

#[derive(Clone)]
pub struct Store {
    rest: Rest,
    /// Until a read shows otherwise, the optional fingerprint column is
    /// assumed present; checking up front would cost a request per run.
    has_fingerprint: Arc<AtomicBool>,
    key_hint: Option<String>,
}

impl Store {
    /// A client for the sessions table. Nothing is sent yet: the first
    /// request finds out whether Supabase is reachable, takes the key, and
    /// has the table and columns.
    pub fn new(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(Self {
            rest: Rest::new(&config.rest_url, &config.table, &config.key)?,
            has_fingerprint: Arc::new(AtomicBool::new(true)),
            key_hint: config.key.hint(),
        })
    }

    /// The same store on connections of its own. Page reads use it: a
    /// connection that once carried a 200 KB page keeps a buffer that size,
    /// and sharing the pool with the writes would spread such buffers over
    /// every connection as the run goes on.
    pub fn on_own_connections(&self) -> Result<Self, StoreError> {
        Ok(Self {
            rest: self.rest.on_own_connections()?,
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
    async fn rows(&self, build: impl Fn(Query) -> Query) -> Result<Vec<SessionRow>, StoreError> {
        let first = self.rest.get(&build(Query::select(&self.columns()))).await;
        let resp = match first {
            Err(StoreError::MissingColumn { .. }) if self.has_fingerprint() => {
                self.check_columns().await?;
                self.rest
                    .get(&build(Query::select(&self.columns())))
                    .await?
            }
            other => other?,
        };
        read_json(resp).await
    }

    async fn check_columns(&self) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        for column in REQUIRED_COLUMNS.split(',').chain(["fingerprint"]) {
            let probe = Query::select(&format!("id,{column}")).limit(1);
            match self.rest.get(&probe).await {
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
                table: self.rest.table().to_string(),
                column: required.join(", "),
            });
        }
        self.has_fingerprint
            .store(!missing.contains(&"fingerprint"), Ordering::Relaxed);
        Ok(())
    }

    /// Whether the key is a JWT for some role other than `service_role`,
    /// which row-level security may keep from the sessions.
    pub fn key_hint(&self) -> Option<String> {
        self.key_hint.clone()
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
        match after {
            Some(after) if order_key == "id" => {
                conds.push(format!("id.gt.{}", quote(&after.id)));
            }
            Some(after) => conds.push(format!(
                "or({order_key}.gt.{key},and({order_key}.eq.{key},id.gt.{id}))",
                key = quote(&after.key),
                id = quote(&after.id)
            )),
            None => {}
        }
        let tree = conds.join(",");
        let order = if order_key == "id" {
            "id.asc".to_string()
        } else {
            format!("{order_key}.asc,id.asc")
        };
        self.rows(|q| q.and(&tree).order(&order).limit(limit)).await
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let rows = self.rows(|q| q.eq("id", id).limit(1)).await?;
        Ok(rows.into_iter().next())
    }

    pub async fn by_email(
        &self,
        email: &str,
        fingerprint: Option<&str>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        // ILIKE compares without regard to case; its wildcards are escaped so
        // that `_` and `%` match only themselves. PostgREST turns every `*`
        // into `%` with no escape, so the rows are also compared exactly here.
        let pattern = email
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let rows = self
            .rows(|q| {
                let q = q
                    .filter("user_email", "ilike", &pattern)
                    .order("created_at.asc,id.asc")
                    .limit(100);
                match fingerprint {
                    Some(fp) => q.eq("fingerprint", fp),
                    None => q,
                }
            })
            .await?;
        let wanted = email.to_lowercase();
        Ok(rows
            .into_iter()
            .filter(|r| {
                r.user_email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase() == wanted)
            })
            .collect())
    }

    /// Claims the sessions of `ids` for run `run` (see the claims
    /// migration): those no other run holds and not refreshed since
    /// `not_since`, as they are now. One request for the whole batch.
    pub async fn claim(
        &self,
        ids: &[&str],
        run: &str,
        not_since: &str,
        lease: std::time::Duration,
    ) -> Result<Vec<SessionRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args = serde_json::json!({
            "p_ids": ids,
            "p_run": run,
            "p_not_since": not_since,
            "p_lease_seconds": lease.as_secs(),
        });
        read_json(self.rest.rpc(CLAIM_FUNCTION, &args).await?).await
    }

    /// Gives up run `run`'s claim on `id` without writing a result (the run
    /// stopped before calling AimHarder for it).
    pub async fn release(&self, id: &str, run: &str) -> Result<(), StoreError> {
        let query = Query::select("id")
            .eq("id", id)
            .eq("refresh_claim_run", run);
        let body = r#"{"refresh_claim_run":null,"refresh_claim_until":null}"#.to_string();
        self.rest.patch(&query, body).await.map(drop)
    }

    /// Applies `patch` only while run `run` holds the row's claim and its
    /// `refresh_count` is still `expected`, and releases the claim with it.
    /// `Ok(false)` means the row changed (or vanished) since it was read.
    pub async fn update_if_unchanged(
        &self,
        id: &str,
        run: &str,
        expected: Option<i64>,
        patch: &Patch,
    ) -> Result<bool, StoreError> {
        let mut body = serde_json::to_value(patch).map_err(|e| StoreError::Rejected {
            status: 0,
            message: format!("cannot encode the update: {e}"),
        })?;
        if let Some(fields) = body.as_object_mut() {
            fields.insert("refresh_claim_run".into(), serde_json::Value::Null);
            fields.insert("refresh_claim_until".into(), serde_json::Value::Null);
        }
        let body = body.to_string();
        // The claim, a uuid, is what keeps the member's login safe: the web
        // app's new credentials void it (a trigger), and no token goes in
        // the URL.
        let query = Query::select("id")
            .eq("id", id)
            .eq("refresh_claim_run", run);
        let query = match expected {
            Some(n) => query.eq("refresh_count", &n.to_string()),
            None => query.filter("refresh_count", "is", "null"),
        };
        let rows: Vec<serde_json::Value> = read_json(self.rest.patch(&query, body).await?).await?;
        Ok(!rows.is_empty())
    }

    /// Exact number of rows matching `filters`, counted by the server.
    pub async fn count(&self, filters: &Filters) -> Result<u64, StoreError> {
        // One row at most comes back: the total is in Content-Range.
        let query = Query::select("id")
            .and(&filters.join(","))
            .limit(1)
            .exact_count();
        let resp = self.rest.get(&query).await?;
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
}

/// A value quoted for PostgREST's logic-tree syntax.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
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
