//! `aimharder-refresh`: keeps AimHarder sessions stored in Supabase alive.

pub mod aimharder;
pub mod backoff;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cookies;
pub mod engine;
pub mod error;
pub mod github;
pub mod healthcheck;
pub mod http;
pub mod key;
pub mod logging;
pub mod metrics;
pub mod parser;
pub mod report;
pub mod rest;
pub mod select;
pub mod status;
pub mod store;
pub mod timefmt;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;

/// The binary: reads `.env`, parses the command line, runs.
pub fn main_entry() -> ExitCode {
    // A missing .env is normal; a broken one is reported by the settings it leaves unset.
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { error::EX_USAGE } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

/// Runs one command and returns its exit code; errors are reported on stderr
/// in one line. Around the command: masks for GitHub Actions, healthcheck
/// pings and the metrics file.
pub async fn run(cli: Cli) -> u8 {
    // Before anything else can print.
    for key in [&cli.global.secret_key, &cli.global.service_role_key]
        .into_iter()
        .flatten()
    {
        github::mask(key);
    }
    logging::init(&cli.global);
    // An unset secret arrives as an empty variable in CI: that means "none".
    let health_url = cli
        .global
        .healthcheck_url
        .as_deref()
        .filter(|u| !u.trim().is_empty());
    let health = match health_url.map(healthcheck::Healthcheck::new) {
        Some(Err(msg)) => {
            eprintln!("error: {msg}");
            return error::EX_CONFIG;
        }
        Some(Ok(h)) => Some(h),
        None => None,
    };
    if let Some(h) = &health {
        h.start().await;
    }
    let clock = std::time::Instant::now();
    let command = cli.command.name();
    let metrics_file = cli
        .global
        .metrics_file
        .clone()
        .filter(|p| !p.as_os_str().is_empty());
    let (code, summary, totals) = match commands::dispatch(cli).await {
        Ok(done) => (done.code, done.summary, done.totals),
        Err(err) => {
            let message = format!("{err:#}");
            eprintln!("error: {message}");
            (error::error_code(&err), message, None)
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
