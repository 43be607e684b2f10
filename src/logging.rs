//! Logs go to stderr; stdout is for results.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// The tool's own level, from `-v`/`-q`, else from `RUST_LOG` when it names a
/// level. Other crates stay at `warn` whatever is asked: the HTML parser
/// traces page text and the HTTP stack traces request lines, and both can
/// carry tokens.
pub fn init(args: &GlobalArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error".to_string(),
        (false, 1) => "debug".to_string(),
        (false, 2..) => "trace".to_string(),
        (false, 0) => std::env::var("RUST_LOG")
            .ok()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| ["error", "warn", "info", "debug", "trace", "off"].contains(&v.as_str()))
            .unwrap_or_else(|| "info".to_string()),
    };
    let filter = EnvFilter::new(format!("warn,aimharder_refresh={level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second init (tests calling `run` in one process) keeps the first.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
