//! Logs go to stderr; stdout is for results. While a progress bar is drawn,
//! each log line (and each result line, see `suspended`) is written with the
//! bar cleared, so lines never tear it.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::domain::presentation::LogSettings;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Logs at the tool's own level. Other crates stay at `warn` whatever is
/// asked: the HTML parser traces page text and the HTTP stack traces request
/// lines, and both can carry tokens.
pub(crate) fn init(args: LogSettings) {
    let filter = EnvFilter::new(format!("warn,aimharder_refresh={}", args.level));
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
pub(crate) fn attach_bar(bar: &ProgressBar) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = Some(bar.clone());
    }
}

/// Stops routing log lines around the progress bar, once it is cleared.
pub(crate) fn detach_bar() {
    if let Ok(mut slot) = BAR.lock() {
        *slot = None;
    }
}

/// Runs `write` with the bar (if any) cleared, so output on the same
/// terminal does not tear it.
pub(crate) fn suspended<R>(write: impl FnOnce() -> R) -> R {
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
