//! One file per command, and what runs around every command: the
//! healthcheck pings and the metrics file.

pub(crate) mod exit;
pub(crate) mod finished;
pub(crate) mod healthcheck;
pub(crate) mod jitter;
pub(crate) mod metrics;
pub(crate) mod probe;
pub(crate) mod refresh_all;
pub(crate) mod refresh_one;
pub(crate) mod signals;
pub(crate) mod status;
pub(crate) mod target;
pub(crate) mod wiring;

use crate::config::{CommandSettings, JournalSetting, Settings};
use crate::domain::status::StatusReport;
use crate::domain::timefmt;
use crate::engine::replay::replay;
use crate::supabase::store::Store;
use exit::AppError;
use finished::Finished;
use signals::Stopping;

/// Runs one command from checked settings and returns its exit code; an
/// error is reported on stderr in one line.
pub(crate) async fn run(settings: Settings) -> u8 {
    // First: a signal from here on is heard, whatever runs, and no panic
    // of a task goes unnoticed.
    let stopping = Stopping::install();
    exit::watch_panics();
    let health = match settings
        .hooks
        .healthcheck
        .as_ref()
        .map(healthcheck::Healthcheck::new)
    {
        Some(Err(msg)) => {
            eprintln!("error: {msg}");
            return exit::EX_CONFIG;
        }
        Some(Ok(h)) => Some(h),
        None => None,
    };
    if let Some(h) = &health {
        h.start().await;
    }
    let clock = std::time::Instant::now();
    let command = settings.command.name();
    let metrics_file = settings.hooks.metrics_file.clone();
    let due_older_than = settings.hooks.due_older_than;
    let plan = settings.hooks.schedule;
    // `status` reports what it checked, and no run.
    let reads_only = matches!(settings.command, CommandSettings::Status(_));
    // One client for the command and, after it, the metrics' counts.
    let work = async {
        // Before the wait: `--max-duration` counts it, as the scheduler's
        // own time limit (GitHub's, a Job's deadline) does.
        let begun = tokio::time::Instant::now();
        // Before any request, Supabase's too (the filter check included):
        // the due cutoff is taken after it, and a signal during it leaves
        // nothing half done.
        if let Some(most) = settings.command.jitter() {
            if !jitter::wait(most, &stopping.stop).await {
                let stopped = AppError::Interrupted(format!(
                    "{} during the --jitter wait: nothing was asked or written",
                    stopping.why().unwrap_or("stopped")
                ));
                return (Err(stopped.into()), None);
            }
        }
        match wiring::connect(&settings.store).await {
            Ok(store) => (
                dispatch(settings, store.clone(), &stopping, begun).await,
                Some(store),
            ),
            Err(e) => (Err(e), None),
        }
    };
    let (outcome, store) = tokio::select! {
        biased;
        done = work => done,
        // What the run holds was journaled at the abort; whatever it still
        // waits for (Supabase, say) is not waited for.
        _ = stopping.grace_over() => (
            Err(AppError::Interrupted(
                "ended by a second signal before the run could finish; results it held were journaled".into(),
            )
            .into()),
            None,
        ),
    };
    let (code, summary, totals, tripped, checked) = match outcome {
        Ok(done) => {
            if let Some(complaint) = &done.complaint {
                eprintln!("error: {complaint}");
            }
            (
                done.code,
                done.summary,
                done.totals,
                done.tripped,
                done.schedule,
            )
        }
        Err(err) => {
            let message = format!("{err:#}");
            if !exit::is_broken_pipe(&err) {
                eprintln!("error: {message}");
            }
            (exit::error_code(&err), message, None, false, None)
        }
    };
    let code = exit::unless_panicked(code);
    let ending_now = stopping.abort.is_cancelled();
    if let Some(path) = metrics_file.as_ref().filter(|_| reads_only) {
        if let Err(e) = metrics::write_schedule(path, command, checked.as_ref()) {
            tracing::warn!("cannot write the metrics file {}: {e}", path.display());
        }
    } else if let Some(path) = metrics_file {
        let states = match &store {
            Some(store) if !ending_now => state_counts(store, due_older_than).await,
            _ => None,
        };
        let schedule = plan
            .zip(states.as_ref())
            .map(|(plan, s)| plan.for_sessions(s.auto_refresh_enabled));
        let run = metrics::RunMetrics {
            command,
            finished_at: timefmt::now().unix_timestamp(),
            duration_secs: clock.elapsed().as_secs_f64(),
            exit_code: code,
            totals: totals.as_ref(),
            tripped,
            states: states.as_ref(),
            schedule: schedule.as_ref(),
        };
        if let Err(e) = metrics::write(&path, &run) {
            tracing::warn!("cannot write the metrics file {}: {e}", path.display());
        }
    }
    if let Some(h) = health {
        let ping = h.finish(code, format!("{command} exit {code}: {summary}"));
        if ending_now {
            let _ = tokio::time::timeout(signals::GRACE / 3, ping).await;
        } else {
            ping.await;
        }
    }
    code
}

/// The sessions by state for the metrics file, counted as `status` does (a
/// session is stale after 24 hours); `None`, with a warning, if Supabase
/// cannot say.
async fn state_counts(store: &Store, due_older_than: std::time::Duration) -> Option<StatusReport> {
    const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    match store.state_counts(due_older_than, STALE_AFTER).await {
        Ok(counts) => Some(counts.report),
        Err(e) => {
            tracing::warn!("the metrics file goes without the session counts: {e}");
            None
        }
    }
}

/// `begun`: when the run began, before its `--jitter` wait.
async fn dispatch(
    settings: Settings,
    store: Store,
    stopping: &Stopping,
    begun: tokio::time::Instant,
) -> anyhow::Result<Finished> {
    let output = settings.output;
    let journal = match settings.journal {
        JournalSetting::File(journal) => Some(journal),
        JournalSetting::Nowhere => {
            tracing::warn!(
                "no folder for the journal of unrecorded results: set AIMHARDER_STATE_DIR (--state-dir) or HOME; \
                 a refresh Supabase will not record is lost"
            );
            None
        }
        JournalSetting::Unused => None,
    };
    if let Some(journal) = &journal {
        replay(journal, &store).await;
    }
    match &settings.command {
        CommandSettings::RefreshOne(args) => {
            refresh_one::refresh_one(store, output, args, journal, stopping).await
        }
        CommandSettings::RefreshAll(args) => {
            refresh_all::refresh_all(store, output, args, journal, stopping, begun).await
        }
        CommandSettings::Probe(args) => probe::probe(store, output, args, stopping).await,
        // Reads only: a signal ends it at once.
        CommandSettings::Status(args) => tokio::select! {
            done = status::status(store, output, args) => done,
            _ = stopping.stop.cancelled() => Err(AppError::Interrupted(
                format!("{}: status stopped before it finished", stopping.why().unwrap_or("stopped")),
            ).into()),
        },
    }
}
