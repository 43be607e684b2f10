//! `aimharder-refresh`: keeps AimHarder sessions stored in Supabase alive.

pub mod aimharder;
pub mod backoff;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cookies;
pub mod engine;
pub mod error;
pub mod logging;
pub mod parser;
pub mod report;
pub mod select;
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
/// in one line.
pub async fn run(cli: Cli) -> u8 {
    logging::init(&cli.global);
    match commands::dispatch(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            error::error_code(&err)
        }
    }
}
