//! The sessions table, reached over Supabase's REST API (PostgREST).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use url::Url;

use crate::domain::session::SessionRow;
use crate::supabase::due::{Order, Walk};
use crate::supabase::filter::{quote, ColumnFilter};
use crate::supabase::key::SupabaseKey;
use crate::supabase::rest::{read_json, Query, Rest, StoreError};

/// The database function that finds a member's sessions by email.
const BY_EMAIL_FUNCTION: &str = "refresh_sessions_by_email";
const REQUIRED_COLUMNS: &str = "id,user_email,aimharder_token,aimharder_cookies,created_at,\
     last_refresh_date,refresh_count,last_refresh_error,auto_refresh_enabled";
/// What a walk that claims reads of each row: enough to order and report
/// it. The claim hands back the rest, as it is at that moment.
const KEY_COLUMNS: &str = "id,user_email,created_at,last_refresh_date";

/// Which columns a page read brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// The id, the email and the two dates a walk orders by.
    Keys,
    /// Everything the tool reads of a session, credentials included.
    Full,
}

/// Where the sessions live and how to reach them.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    pub(crate) rest_url: Url,
    pub(crate) key: SupabaseKey,
    pub(crate) table: String,
    /// `--filter`: only rows meeting every one are read or counted.
    pub(crate) filters: Vec<ColumnFilter>,
}

/// Where a keyset page starts: strictly after this (sort key, id).
#[derive(Debug, Clone)]
pub(super) struct After {
    pub(super) key: String,
    pub(super) id: String,
}

impl After {
    /// The cursor past the last row of a page in `order`.
    pub(super) fn last_of(page: &[SessionRow], order: Order) -> Option<Self> {
        let row = page.last()?;
        Some(Self {
            key: order.key_of(row).unwrap_or_default().to_string(),
            id: row.id.clone(),
        })
    }
}

/// The sessions table over PostgREST; clones share what the reads found
/// out about the table.
#[derive(Clone)]
pub(crate) struct Store {
    rest: Rest,
    /// Until a read shows otherwise, the optional fingerprint column is
    /// assumed present; checking up front would cost a request per run.
    has_fingerprint: Arc<AtomicBool>,
    key_hint: Option<String>,
    filters: Arc<[ColumnFilter]>,
}

impl Store {
    /// A client for the sessions table. Nothing is sent yet: the first
    /// request finds out whether Supabase is reachable, takes the key, and
    /// has the table and columns.
    pub(crate) fn new(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(Self {
            rest: Rest::new(&config.rest_url, &config.table, &config.key)?,
            has_fingerprint: Arc::new(AtomicBool::new(true)),
            key_hint: config.key.hint(),
            filters: config.filters.clone().into(),
        })
    }

    /// The same store on connections of its own. Page reads use it: a
    /// connection that once carried a 200 KB page keeps a buffer that size,
    /// and sharing the pool with the writes would spread such buffers over
    /// every connection as the run goes on.
    pub(super) fn on_own_connections(&self) -> Result<Self, StoreError> {
        Ok(Self {
            rest: self.rest.on_own_connections()?,
            ..self.clone()
        })
    }

    /// Whether the table has the optional `fingerprint` column, as far as the
    /// reads so far tell.
    pub(crate) fn has_fingerprint(&self) -> bool {
        self.has_fingerprint.load(Ordering::Relaxed)
    }

    fn columns(&self, columns: Columns) -> String {
        match columns {
            Columns::Keys => KEY_COLUMNS.to_string(),
            Columns::Full if self.has_fingerprint() => format!("{REQUIRED_COLUMNS},fingerprint"),
            Columns::Full => REQUIRED_COLUMNS.to_string(),
        }
    }

    /// Reads rows with `columns`. A missing column is looked into once: only
    /// the optional fingerprint missing means read without it; anything
    /// else is an error naming the migration.
    async fn rows(
        &self,
        columns: Columns,
        build: impl Fn(Query) -> Query,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let first = self
            .rest
            .get(&build(Query::select(&self.columns(columns))))
            .await;
        let resp = match first {
            Err(StoreError::MissingColumn { .. }) => {
                self.check_columns().await?;
                self.rest
                    .get(&build(Query::select(&self.columns(columns))))
                    .await?
            }
            other => other?,
        };
        read_json(resp).await
    }

    async fn check_columns(&self) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        for column in REQUIRED_COLUMNS.split(',').chain(["fingerprint"]) {
            // By id, so that even this probe reads an index.
            let probe = Query::select(&format!("id,{column}"))
                .order("id.asc")
                .limit(1);
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

    /// Whether there is a `--filter`.
    pub(crate) fn is_filtered(&self) -> bool {
        !self.filters.is_empty()
    }

    /// `query` narrowed to the rows `--filter` selects.
    pub(crate) fn narrowed(&self, query: Query) -> Query {
        self.filters
            .iter()
            .fold(query, |q, f| q.filter(&f.column, &f.op, &f.value))
    }

    /// Asks the server, in one read of no rows, whether the table has the
    /// columns `--filter` names and takes its values: a filter it cannot
    /// take is a setting to mend before anything is called or printed.
    pub(crate) async fn check_filters(&self) -> Result<(), StoreError> {
        if self.filters.is_empty() {
            return Ok(());
        }
        let probe = self.narrowed(Query::select("id").limit(0));
        let table = self.rest.table().to_string();
        match self.rest.get(&probe).await {
            Ok(_) => Ok(()),
            // The id is the tool's own column here: its lack is the
            // migration's to mend, not the filter's.
            Err(StoreError::MissingColumn { column, .. }) if column == "id" => {
                Err(StoreError::MissingColumn { table, column })
            }
            Err(StoreError::MissingColumn { column, .. }) => {
                let named = self.filters.iter().any(|f| f.column == column);
                let column = if named { column } else { self.filter_columns() };
                Err(StoreError::UnknownFilterColumn { table, column })
            }
            Err(StoreError::Rejected { message, .. }) => Err(StoreError::FilterRefused {
                filters: self
                    .filters
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("&"),
                message,
            }),
            Err(e) => Err(e),
        }
    }

    fn filter_columns(&self) -> String {
        let mut columns: Vec<&str> = self.filters.iter().map(|f| f.column.as_str()).collect();
        columns.sort_unstable();
        columns.dedup();
        columns.join(", ")
    }

    /// Whether the key is a JWT for some role other than `service_role`,
    /// which row-level security may keep from the sessions.
    pub(crate) fn key_hint(&self) -> Option<String> {
        self.key_hint.clone()
    }

    /// One page of `walk`, strictly after `after`. The keyset condition
    /// repeats its lower bound on its own (`key >= X`), which is what lets
    /// PostgreSQL start the index scan there rather than at the beginning.
    pub(super) async fn page(
        &self,
        walk: &Walk,
        after: Option<&After>,
        limit: usize,
        columns: Columns,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let mut conds = walk.filters.clone();
        match (after, walk.order) {
            (Some(after), Order::Id) => conds.push(format!("id.gt.{}", quote(&after.id))),
            (Some(after), Order::Key(column)) => {
                let key = quote(&after.key);
                conds.push(format!("{column}.gte.{key}"));
                conds.push(format!(
                    "or({column}.gt.{key},and({column}.eq.{key},id.gt.{id}))",
                    id = quote(&after.id)
                ));
            }
            (None, _) => {}
        }
        let tree = conds.join(",");
        let order = match walk.order {
            Order::Id => "id.asc".to_string(),
            Order::Key(column) => format!("{column}.asc,id.asc"),
        };
        self.rows(columns, |q| {
            self.narrowed(q).and(&tree).order(&order).limit(limit)
        })
        .await
    }

    /// The session with `id`, if there is one; `--filter` does not apply to a
    /// session named.
    pub(crate) async fn by_id(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let rows = self
            .rows(Columns::Full, |q| q.eq("id", id).limit(1))
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The sessions of `email`, compared without case (only the one with
    /// `fingerprint`, when it is given); `--filter` does not apply.
    pub(crate) async fn by_email(
        &self,
        email: &str,
        fingerprint: Option<&str>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        // Compared as lower(user_email) = lower(email) by a function the
        // migration ships, over an index of lower(user_email): PostgREST
        // filters cannot lower a column, and ILIKE would read every row.
        let args = serde_json::json!({ "p_table": self.rest.table(), "p_email": email });
        let rows: Vec<SessionRow> =
            read_json(self.rest.rpc(BY_EMAIL_FUNCTION, &args).await?).await?;
        let wanted = email.to_lowercase();
        Ok(rows
            .into_iter()
            .filter(|r| {
                r.user_email
                    .as_ref()
                    .is_some_and(|e| e.stored().to_lowercase() == wanted)
            })
            .filter(|r| fingerprint.is_none_or(|fp| r.fingerprint.as_deref() == Some(fp)))
            .collect())
    }

    /// Returns the table's PostgREST client.
    pub(crate) fn rest(&self) -> &Rest {
        &self.rest
    }
}
