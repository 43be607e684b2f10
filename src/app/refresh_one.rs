//! `refresh-one`: one session now, due or not.

use anyhow::Context as _;

use crate::app::exit::AppError;
use crate::app::finished::Finished;
use crate::app::signals::Stopping;
use crate::app::target;
use crate::app::wiring::{self, engine};
use crate::config::{Pace, RefreshOne};
use crate::domain::outcome::{Outcome, SessionReport};
use crate::domain::presentation::Presentation;
use crate::domain::timefmt;
use crate::engine::journal::Journal;
use crate::output::session;
use crate::supabase::store::Store;

/// Runs `refresh-one`: claims the one session as any run would, so that two
/// runs never call it at once, and refreshes it, due or not.
pub(crate) async fn refresh_one(
    store: Store,
    output: Presentation,
    args: &RefreshOne,
    journal: Option<Journal>,
    stopping: &Stopping,
) -> anyhow::Result<Finished> {
    let row = target::find(&store, &args.target).await?;
    if let Some(min_age) = args.if_older_than {
        let last = row.last_refresh_date.as_deref().and_then(timefmt::parse);
        if last.is_some_and(|t| timefmt::now() - t < min_age) {
            let report = SessionReport::new(&row.id, row.user_email.clone(), Outcome::Skipped)
                .with_error(format!(
                    "refreshed less than {} ago",
                    humantime::format_duration(min_age)
                ));
            return finish_one(output, &report, false);
        }
    }
    // One session: nothing "in a row" for a circuit breaker to see.
    let pace = Pace {
        concurrency: 1,
        rate: None,
        max_consecutive_failures: 0,
    };
    // Claimed like any other run's session: never called by two at once.
    let claim = wiring::claim(args.claim_lease, false);
    let sent = tokio::time::Instant::now();
    let claimed = store.claim(&[row.id.as_str()], &claim).await?;
    let Some(row) = claimed.into_iter().next() else {
        if store.by_id(&row.id).await?.is_none() {
            return Err(AppError::NotFound(format!(
                "session {} was deleted before it could be refreshed",
                row.id
            ))
            .into());
        }
        let report = SessionReport::new(&row.id, row.user_email.clone(), Outcome::Skipped)
            .with_error("another run is refreshing this session right now");
        // Not done: `refresh-one && book` must not go on as if it were.
        return finish_one(output, &report, true);
    };
    let engine = engine(
        &args.aimharder,
        store,
        wiring::caller(&pace, stopping.stop.clone(), None),
        claim,
        journal,
    )?;
    engine.holds().claimed([row.id.as_str()], sent);
    let mut report = None;
    let ran = engine
        .run(futures::stream::once(async { row }), &stopping.abort, |r| {
            report = Some(r)
        })
        .await;
    let Some(report) = report else {
        return Err(
            AppError::Interrupted("the run ended before the session was reported".into()).into(),
        );
    };
    if let Some(e) = ran.write_error {
        finish_one(output, &report, false)?;
        return Err(e)
            .context("Supabase would not take the result, so it was journaled for the next run");
    }
    // A stop before the call went out: not refreshed, and not done.
    let left = report.outcome == Outcome::Skipped && stopping.stop.is_cancelled();
    finish_one(output, &report, left)
}

/// `left`: the session was not refreshed and is still to be (another run
/// holds it, a signal came first): exit 75.
fn finish_one(
    output: Presentation,
    report: &SessionReport,
    left: bool,
) -> anyhow::Result<Finished> {
    let (totals, summary) = session::print_one(output, report)?;
    Ok(Finished::refreshing(totals, summary, left))
}
