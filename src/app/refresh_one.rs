//! `refresh-one`: one session now, due or not.

use crate::app::exit::AppError;
use crate::app::finished::Finished;
use crate::app::wiring::{self, engine, Limits};
use crate::config::{RefreshOne, Target};
use crate::domain::outcome::{Outcome, SessionReport, Totals};
use crate::domain::session::SessionRow;
use crate::domain::timefmt;
use crate::output::github;
use crate::output::report::Output;
use crate::supabase::store::Store;
use tokio_util::sync::CancellationToken;

pub async fn refresh_one(
    store: Store,
    output: Output,
    args: &RefreshOne,
) -> anyhow::Result<Finished> {
    let row = match &args.target {
        Target::Id(id) => store
            .by_id(id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| {
                AppError::NotFound(not_found(&store, &format!("no session with id {id}")))
            })?,
        Target::Email { email, fingerprint } => {
            let mut rows = store
                .by_email(email, fingerprint.as_deref())
                .await
                .map_err(AppError::from)?;
            match rows.len() {
                0 => {
                    return Err(
                        AppError::NotFound(not_found(&store, "no session for that email")).into(),
                    )
                }
                1 => rows.remove(0),
                _ => return Err(AppError::Usage(ambiguous(&rows, output)).into()),
            }
        }
    };
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
    let limits = Limits {
        concurrency: 1,
        rate: None,
    };
    // Claimed like any other run's session: never called by two at once.
    let claim = wiring::claim(timefmt::now());
    let claimed = store
        .claim(
            &[row.id.as_str()],
            &claim.run,
            &claim.not_since,
            claim.lease,
        )
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
        limits,
        claim,
        CancellationToken::new(),
        None,
    )?;
    let report = engine.refresh(row).await;
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
    github::step_summary("refresh-one", &totals, problems);
    Ok(Finished::refreshing(totals, summary, false))
}

fn not_found(store: &Store, what: &str) -> String {
    match store.key_hint() {
        Some(hint) => format!("{what}; {hint}"),
        None => format!("{what}; check the id or email (status --sessions lists them)"),
    }
}

fn ambiguous(rows: &[SessionRow], output: Output) -> String {
    let candidates: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} (fingerprint {}, last refresh {})",
                r.id,
                r.fingerprint.as_deref().unwrap_or("-"),
                r.last_refresh_date.as_deref().unwrap_or("never")
            )
        })
        .collect();
    let who = output
        .email(rows.first().and_then(|r| r.user_email.as_deref()))
        .unwrap_or_default();
    format!(
        "{who} has {} sessions; pick one with --fingerprint or --id: {}",
        rows.len(),
        candidates.join("; ")
    )
}
