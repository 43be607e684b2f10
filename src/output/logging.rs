//! Logs go to stderr; stdout is for results. While a progress bar is drawn,
//! each log line (and each result line, see `suspended`) is written with the
//! bar cleared, so lines never tear it.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How much to log, and in which format.
#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    /// Errors only.
    pub quiet: bool,
    /// 1: debug, 2 or more: trace.
    pub verbose: u8,
    /// One JSON object a line instead of text.
    pub json: bool,
}

/// The tool's own level, from `-v`/`-q`, else from `RUST_LOG` when it names a
/// level. Other crates stay at `warn` whatever is asked: the HTML parser
/// traces page text and the HTTP stack traces request lines, and both can
/// carry tokens.
pub fn init(args: LogSettings) {
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
        .with_writer(Stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second init (tests calling `run` in one process) keeps the first.
    let _ = if args.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Routes log lines around `bar` until [`detach_bar`].
pub fn attach_bar(bar: &ProgressBar) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = Some(bar.clone());
    }
}

pub fn detach_bar() {
    if let Ok(mut slot) = BAR.lock() {
        *slot = None;
    }
}

/// Runs `write` with the bar (if any) cleared, so output on the same
/// terminal does not tear it.
pub fn suspended<R>(write: impl FnOnce() -> R) -> R {
    match BAR.lock().ok().and_then(|b| b.clone()) {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

struct Stderr;

/// Collects one formatted event and writes it in one piece when dropped.
struct Line(Vec<u8>);

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        suspended(|| {
            let _ = std::io::stderr().lock().write_all(&self.0);
        });
    }
}
