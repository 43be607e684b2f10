//! Every count `status` and the metrics report (and the due count of
//! `refresh-all`'s progress bar), in one request: a database
//! function that reads each from an index. With `--filter`, which that
//! function cannot take without building SQL from the operator's text, each
//! count is a read of no rows that the server counts, under the same
//! conditions as the function's and the filter's.

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::status::StatusReport;
use crate::domain::timefmt;
use crate::supabase::due::DueQuery;
use crate::supabase::filter::{self, Filters};
use crate::supabase::rest::{read_json, Query, StoreError};
use crate::supabase::store::Store;

const COUNTS: &str = "refresh_counts";
/// The due count of the state counts holds a failed session back this
/// long, as `refresh-all` does by default (`--retry-errors-after 1h`).
const RETRY_ERRORS_AFTER: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct CountsRow {
    total: u64,
    auto_refresh_enabled: u64,
    fresh: u64,
    stale: u64,
    never_refreshed: u64,
    with_errors: u64,
    due: u64,
    enabled_with_errors: u64,
}

/// The sessions by state, and how many enabled sessions have an error.
pub(crate) struct Counts {
    pub(crate) report: StatusReport,
    pub(crate) enabled_with_errors: u64,
}

impl Store {
    /// The sessions by state now, as `status` and the metrics file report
    /// them: stale once not refreshed for `stale_after`; due as a default
    /// run (`--older-than due_older_than`, no shard) would select them.
    pub(crate) async fn state_counts(
        &self,
        due_older_than: Duration,
        stale_after: Duration,
    ) -> Result<Counts, StoreError> {
        let now = timefmt::now();
        let due = DueQuery {
            older_than: due_older_than,
            retry_errors_after: RETRY_ERRORS_AFTER,
            force: false,
            shard: None,
            now,
        };
        self.counts(now - stale_after, &due).await
    }

    /// How many sessions `query` selects, counted by the server.
    pub(crate) async fn due_count(&self, query: &DueQuery) -> Result<u64, StoreError> {
        Ok(self.counts(query.now, query).await?.report.due)
    }

    /// The sessions by state: fresh means refreshed after `stale_cutoff`;
    /// due is what `due` would select.
    async fn counts(
        &self,
        stale_cutoff: OffsetDateTime,
        due: &DueQuery,
    ) -> Result<Counts, StoreError> {
        if self.is_filtered() {
            return self.filtered_counts(stale_cutoff, due).await;
        }
        let args = serde_json::json!({
            "p_table": self.rest().table(),
            "p_stale_cutoff": timefmt::rfc3339(stale_cutoff),
            "p_due_cutoff": timefmt::rfc3339(due.cutoff()),
            "p_error_bound": due.error_bound(),
        });
        let rows: Vec<CountsRow> = read_json(self.rest().rpc(COUNTS, &args).await?).await?;
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Rejected {
                status: 200,
                message: format!("{COUNTS} answered no row"),
            })?;
        Ok(Counts {
            report: StatusReport {
                total: row.total,
                auto_refresh_enabled: row.auto_refresh_enabled,
                fresh: row.fresh,
                stale: row.stale,
                never_refreshed: row.never_refreshed,
                with_errors: row.with_errors,
                due: row.due,
            },
            enabled_with_errors: row.enabled_with_errors,
        })
    }

    /// The function's counts, one request each (at once), on the rows
    /// `--filter` selects. Due is the sum of the due walks' counts: what a
    /// run would select, by the very conditions it selects with.
    async fn filtered_counts(
        &self,
        stale_cutoff: OffsetDateTime,
        due: &DueQuery,
    ) -> Result<Counts, StoreError> {
        let stale = timefmt::rfc3339(stale_cutoff);
        let count = |conditions: Filters| {
            let query = self
                .narrowed(Query::select("id"))
                .and(&conditions.join(","))
                .limit(0);
            async move { self.rest().count(&query).await }
        };
        let on = filter::enabled;
        let due_walks = due.selection().walks.into_iter().map(|w| count(w.filters));
        let (total, enabled, fresh, young, never_refreshed, with_errors, enabled_with_errors, due) =
            tokio::try_join!(
                count(vec![]),
                count(vec![on()]),
                count(vec![on(), filter::gte("last_refresh_date", &stale)]),
                // Never refreshed, created within the stale window: not stale.
                count(vec![
                    on(),
                    filter::is_null("last_refresh_date"),
                    filter::gte("created_at", &stale),
                ]),
                count(vec![filter::is_null("last_refresh_date")]),
                count(vec![filter::not_null("last_refresh_error")]),
                count(vec![on(), filter::not_null("last_refresh_error")]),
                async { Ok(futures::future::try_join_all(due_walks).await?.iter().sum()) },
            )?;
        Ok(Counts {
            report: StatusReport {
                total,
                auto_refresh_enabled: enabled,
                fresh,
                stale: enabled.saturating_sub(fresh + young),
                never_refreshed,
                with_errors,
                due,
            },
            enabled_with_errors,
        })
    }
}
