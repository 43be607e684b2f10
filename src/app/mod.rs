//! One file per command, and what runs around every command: the
//! healthcheck pings and the metrics file.

pub mod exit;
pub mod finished;
pub mod healthcheck;
pub mod metrics;
pub mod refresh_all;
pub mod refresh_one;
pub mod status;
pub mod wiring;

use crate::config::{CommandSettings, Settings};
use crate::domain::timefmt;
use finished::Finished;

/// Runs one command from checked settings and returns its exit code; an
/// error is reported on stderr in one line.
pub async fn run(settings: Settings) -> u8 {
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
    let (code, summary, totals) = match dispatch(settings).await {
        Ok(done) => (done.code, done.summary, done.totals),
        Err(err) => {
            let message = format!("{err:#}");
            eprintln!("error: {message}");
            (exit::error_code(&err), message, None)
        }
    };
    if let Some(path) = metrics_file {
        let run = metrics::RunMetrics {
            command,
            finished_at: timefmt::now().unix_timestamp(),
            duration_secs: clock.elapsed().as_secs_f64(),
            exit_code: code,
            totals: totals.as_ref(),
        };
        if let Err(e) = metrics::write(&path, &run) {
            tracing::warn!("cannot write the metrics file {}: {e}", path.display());
        }
    }
    if let Some(h) = health {
        h.finish(code, format!("{command} exit {code}: {summary}"))
            .await;
    }
    code
}

async fn dispatch(settings: Settings) -> anyhow::Result<Finished> {
    let store = wiring::connect(&settings.store)?;
    let output = settings.output;
    match &settings.command {
        CommandSettings::RefreshOne(args) => refresh_one::refresh_one(store, output, args).await,
        CommandSettings::RefreshAll(args) => refresh_all::refresh_all(store, output, args).await,
        CommandSettings::Status(args) => status::status(store, output, args).await,
    }
}
