//! `status`: counts computed by the server, and optionally every session.

use secrecy::ExposeSecret;

use crate::app::exit::RunVerdict;
use crate::app::finished::Finished;
use crate::config::Status;
use crate::domain::presentation::Presentation;
use crate::domain::status::StatusLine;
use crate::domain::timefmt;
use crate::output::status::{Counted, StatusSink};
use crate::supabase::counts::Counts;
use crate::supabase::pager::Sessions;
use crate::supabase::store::{Columns, Store};

/// Runs `status`: the server's counts by state, the schedule against the
/// enabled sessions and, with `--sessions`, every session. With `--check`,
/// a stale session, an error or a schedule that cannot keep up is a problem.
pub(crate) async fn status(
    store: Store,
    output: Presentation,
    args: &Status,
) -> anyhow::Result<Finished> {
    let Counts {
        report,
        enabled_with_errors,
    } = store
        .state_counts(args.schedule.every, args.stale_after)
        .await?;
    let schedule = args.schedule.for_sessions(report.auto_refresh_enabled);
    if report.total == 0 {
        if let Some(hint) = store.key_hint() {
            tracing::warn!("no sessions visible; {hint}");
        }
    }
    let problem = report.stale > 0 || enabled_with_errors > 0 || !schedule.keeps_up();
    let counted = Counted {
        report: &report,
        stale_after: args.stale_after,
        schedule: &schedule,
        problem,
    };
    let (mut sink, summary) = StatusSink::start(output, &counted, args.sessions)?;
    let listed = if args.sessions {
        list_sessions(&store, &mut sink).await
    } else {
        Ok(())
    };
    // The document ends whole even when reading stopped midway.
    sink.finish()?;
    listed?;
    let verdict = if args.check && problem {
        RunVerdict::Problems
    } else {
        RunVerdict::Clean
    };
    Ok(Finished::with(verdict, summary).checking(schedule))
}

/// Every session, by id, a line each as the pages come.
async fn list_sessions(store: &Store, sink: &mut StatusSink) -> anyhow::Result<()> {
    let mut rows = store.sessions(Sessions::Every, Columns::Full)?;
    while let Some(row) = rows.next().await {
        let r = row?;
        sink.line(&StatusLine {
            email: r.user_email,
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
        })?;
    }
    Ok(())
}
