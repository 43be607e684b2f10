//! Every count `status` and the metrics report, in one request: a database
//! function that reads each from an index.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::status::StatusReport;
use crate::domain::timefmt;
use crate::supabase::due::DueQuery;
use crate::supabase::rest::{read_json, StoreError};
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
}
