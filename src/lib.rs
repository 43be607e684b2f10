//! `aimharder-refresh`: keeps AimHarder sessions stored in Supabase alive.
//!
//! The binary is a thin shell over [`main_entry`]; [`run`] runs one parsed
//! command line, as the demo does. Everything else is private to the crate.

// Whatever is `pub` inside is reachable from outside, so the compiler
// reports what nothing uses.
#![warn(unreachable_pub)]

mod aimharder;
mod app;
mod backoff;
mod cli;
mod config;
mod domain;
mod engine;
mod http;
mod output;
mod supabase;

/// What the integration tests, the benchmark, the fuzz targets reach
/// inside the crate. It is no interface: it changes with them.
#[doc(hidden)]
pub mod internals {
    pub use crate::aimharder::api::{is_logout, new_token, whoami_members};
    pub use crate::aimharder::cookies::CookieJar;
    pub use crate::aimharder::parser::{parse_page, Page};
    pub use crate::domain::shard::shard_of;
    pub use crate::domain::timefmt::rfc3339;
    pub use crate::engine::journal::{credentials_digest, file_in};
    pub use crate::http::{client_builder, join_path};
    pub use crate::supabase::pager::PAGE_SIZE;
}

use std::process::ExitCode;

use secrecy::ExposeSecret;

pub use cli::Cli;

/// The binary: reads `.env`, parses the command line, runs.
pub fn main_entry() -> ExitCode {
    if let Err(e) = config::dotenv::load() {
        eprintln!("error: {e}");
        return ExitCode::from(app::exit::EX_CONFIG);
    }
    let cli = match cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                app::exit::EX_USAGE
            } else {
                0
            });
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
/// in one line. Every setting is checked before the command starts.
pub async fn run(cli: Cli) -> u8 {
    // Before anything else can print.
    for key in [&cli.global.secret_key, &cli.global.service_role_key]
        .into_iter()
        .flatten()
    {
        output::github::mask(key);
    }
    if let Some(proxy) = &cli.global.proxy {
        output::github::mask(proxy);
        // Its password alone too, should a message quote it without the URL.
        let password = url::Url::parse(proxy.expose_secret())
            .ok()
            .and_then(|u| u.password().map(str::to_string));
        if let Some(password) = password {
            output::github::mask(&secrecy::SecretString::from(password));
        }
    }
    output::logging::init(config::log_settings(&cli.global));
    let settings = match config::Settings::from_cli(&cli) {
        Ok(Some(settings)) => settings,
        Ok(None) => return print_reference(&cli.command),
        Err(e) => {
            eprintln!("error: {e}");
            return app::exit::error_code(&e.into());
        }
    };
    // The key as used, which may have come from a file (one given
    // directly was masked above, and is not masked twice).
    output::github::mask(settings.store.key.secret());
    app::run(settings).await
}

/// `completions` and `man`: text drawn from the command-line definition.
fn print_reference(command: &cli::Command) -> u8 {
    let mut stdout = std::io::stdout();
    match command {
        cli::Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut cli::command(),
                "aimharder-refresh",
                &mut stdout,
            );
        }
        _ => {
            if let Err(e) = clap_mangen::Man::new(cli::command()).render(&mut stdout) {
                eprintln!("error: cannot write the man page: {e}");
                return 1;
            }
        }
    }
    0
}
