//! `refresh-one`: one session now, due or not.

use anyhow::Context as _;

use crate::app::exit::AppError;
use crate::app::finished::Finished;
use crate::app::target;
use crate::app::wiring::{self, engine};
use crate::config::{Pace, RefreshOne};
use crate::domain::outcome::{Outcome, SessionReport, Totals};
use crate::domain::timefmt;
use crate::engine::journal::Journal;
use crate::output::github;
use crate::output::report::Output;
use crate::supabase::store::Store;
use tokio_util::sync::CancellationToken;

pub async fn refresh_one(
    store: Store,
    output: Output,
    args: &RefreshOne,
    journal: Option<Journal>,
) -> anyhow::Result<Finished> {
    let row = target::find(&store, &args.target, output).await?;
    if let Some(min_age) = args.if_older_than {
        let last = row.last_refresh_date.as_deref().and_then(timefmt::parse);
        if last.is_some_and(|t| timefmt::now() - t < min_age) {
            let report = SessionReport::new(
                &row.id,
                output.email(row.user_email.as_deref()).as_deref(),
                Outcome::Skipped,
            )
            .with_error(format!(
                "refreshed less than {} ago",
                humantime::format_duration(min_age)
            ));
            return finish_one(output, &report);
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
    let claimed = store
        .claim(&[row.id.as_str()], &claim)
        .await
        .map_err(AppError::from)?;
    let Some(row) = claimed.into_iter().next() else {
        let report = SessionReport::new(
            &row.id,
            output.email(row.user_email.as_deref()).as_deref(),
            Outcome::Skipped,
        )
        .with_error("another run is refreshing this session right now");
        return finish_one(output, &report);
    };
    let engine = engine(
        &args.aimharder,
        store,
        output,
        wiring::caller(&pace, CancellationToken::new(), None),
        claim,
        journal,
    )?;
    engine.holds().claimed([row.id.as_str()], sent);
    let mut report = None;
    let ran = engine
        .run(
            futures::stream::once(async { row }),
            &CancellationToken::new(),
            |r| report = Some(r),
        )
        .await;
    let report = report.expect("one session, one report");
    if let Some(e) = ran.write_error {
        finish_one(output, &report)?;
        return Err(AppError::Store(e))
            .context("Supabase would not take the result, so it was journaled for the next run");
    }
    finish_one(output, &report)
}

fn finish_one(output: Output, report: &SessionReport) -> anyhow::Result<Finished> {
    let summary = output.session(report)?;
    let mut totals = Totals::default();
    totals.add(report.outcome);
    github::annotate(report);
    let problems = if report.outcome.is_problem() {
        std::slice::from_ref(report)
    } else {
        &[]
    };
    github::step_summary("refresh-one", &totals, problems, None);
    Ok(Finished::refreshing(totals, summary, false))
}
