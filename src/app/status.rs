//! `status`: counts computed by the server, and optionally every session.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::app::exit::{verdict_code, AppError, RunVerdict};
use crate::app::finished::Finished;
use crate::config::Status;
use crate::domain::status::{StatusLine, StatusReport};
use crate::domain::timefmt;
use crate::engine::due::PAGE_SIZE;
use crate::output::report::Output;
use crate::supabase::due::DueQuery;
use crate::supabase::rest::StoreError;
use crate::supabase::store::{filter, After, Store};

/// The counts of sessions by state, computed by the server (one `count=exact`
/// request each), and how many enabled sessions have an error.
pub async fn state_counts(
    store: &Store,
    due_older_than: Duration,
    stale_after: Duration,
) -> Result<(StatusReport, u64), StoreError> {
    let now = timefmt::now();
    let stale_cutoff = timefmt::rfc3339(now - stale_after);
    let due = DueQuery {
        older_than: due_older_than,
        retry_errors_after: Duration::from_secs(3600),
        force: false,
        shard: None,
        now,
    };
    let enabled = filter::enabled();
    // The due key, coalesce(last_refresh_date, created_at): a session
    // created a minute ago is not stale. One with neither date is of unknown
    // age and counts as stale, so monitoring looks at it.
    let stale = filter::or(&[
        filter::lt("last_refresh_date", &stale_cutoff),
        filter::all(&[
            filter::is_null("last_refresh_date"),
            filter::or(&[
                filter::lt("created_at", &stale_cutoff),
                filter::is_null("created_at"),
            ]),
        ]),
    ]);
    let error = filter::not_null("last_refresh_error");
    let queries = [
        vec![],
        vec![enabled.clone()],
        vec![
            enabled.clone(),
            filter::gte("last_refresh_date", &stale_cutoff),
        ],
        vec![enabled.clone(), stale],
        vec![filter::is_null("last_refresh_date")],
        vec![error.clone()],
        due.count_filters(),
        vec![enabled, error],
    ];
    let counts = futures::future::try_join_all(queries.iter().map(|q| store.count(q))).await?;
    let report = StatusReport {
        total: counts[0],
        auto_refresh_enabled: counts[1],
        fresh: counts[2],
        stale: counts[3],
        never_refreshed: counts[4],
        with_errors: counts[5],
        due: counts[6],
        sessions: None,
    };
    Ok((report, counts[7]))
}

pub async fn status(store: Store, output: Output, args: &Status) -> anyhow::Result<Finished> {
    let (mut report, enabled_with_errors) =
        state_counts(&store, args.due_older_than, args.stale_after)
            .await
            .map_err(AppError::from)?;
    if args.sessions {
        report.sessions = Some(status_lines(&store, output).await?);
    }
    if report.total == 0 {
        if let Some(hint) = store.key_hint() {
            tracing::warn!("no sessions visible; {hint}");
        }
    }
    let summary = output.status(&report)?;
    let problem = args.check && (report.stale > 0 || enabled_with_errors > 0);
    let verdict = if problem {
        RunVerdict::Problems
    } else {
        RunVerdict::Clean
    };
    Ok(Finished {
        code: verdict_code(verdict),
        summary,
        totals: None,
        tripped: false,
    })
}

async fn status_lines(store: &Store, output: Output) -> anyhow::Result<Vec<StatusLine>> {
    let mut lines = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .page(&vec![], "created_at", after.as_ref(), PAGE_SIZE)
            .await
            .map_err(AppError::from)?;
        let full = page.len() == PAGE_SIZE;
        after = After::last_of(&page, "created_at");
        lines.extend(page.into_iter().map(|r| {
            StatusLine {
                email: output.email(r.user_email.as_deref()),
                auto_refresh_enabled: r.auto_refresh_enabled.unwrap_or(false),
                last_refresh_date: r.last_refresh_date,
                refresh_count: r.refresh_count.unwrap_or(0),
                error: r.last_refresh_error,
                token_expires_at: r
                    .aimharder_token
                    .as_ref()
                    .and_then(|t| timefmt::token_expiry(t.expose_secret()))
                    .map(timefmt::rfc3339),
                id: r.id,
            }
        }));
        if !full {
            return Ok(lines);
        }
    }
}
