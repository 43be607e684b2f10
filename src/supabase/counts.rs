//! Every count `status` and the metrics report, in one request: a database
//! function that reads each from an index. With `--filter`, which that
//! function cannot take without building SQL from the operator's text, each
//! count is a read of no rows that the server counts, under the same
//! conditions as the function's and the filter's.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::status::StatusReport;
use crate::domain::timefmt;
use crate::supabase::due::DueQuery;
use crate::supabase::filter::{self, Filters};
use crate::supabase::rest::{read_json, Query, StoreError};
use crate::supabase::store::Store;

const COUNTS: &str = "refresh_counts";

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

/// The counts, and how many enabled sessions have an error.
pub struct Counts {
    pub report: StatusReport,
    pub enabled_with_errors: u64,
}

impl Store {
    /// The sessions by state: fresh means refreshed after `stale_cutoff`;
    /// due is what `due` would select.
    pub async fn counts(
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
