//! GitHub Actions: masks, one `::error::` per failed session, and a Markdown
//! step summary. Workflow commands go to stderr (the runner reads both
//! streams), so stdout stays a clean result or JSON document.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use secrecy::{ExposeSecret, SecretString};

use crate::domain::outcome::{SessionReport, Totals};
use crate::domain::presentation::Presentation;
use crate::output::shown::who;

/// Failed sessions listed in the step summary; the rest are counted.
pub(crate) const SUMMARY_ROWS: usize = 100;
/// Failed sessions annotated one by one; the rest get one line. A refused
/// network fails every session alike: a page of identical annotations
/// would bury the one that says why.
pub(crate) const ANNOTATIONS: u64 = 10;

/// Returns true under GitHub Actions (`GITHUB_ACTIONS=true`).
pub(crate) fn enabled() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// The values masked so far: the runner needs each once, however many
/// settings hold it (a key given directly is also the key in use).
static MASKED: Mutex<Vec<SecretString>> = Mutex::new(Vec::new());

/// Tells the runner to hide `secret` from every later line of the log,
/// once per value.
pub(crate) fn mask(secret: &SecretString) {
    let value = secret.expose_secret();
    if !enabled() || value.is_empty() {
        return;
    }
    let mut masked = MASKED.lock().unwrap_or_else(PoisonError::into_inner);
    if masked.iter().any(|m| m.expose_secret() == value) {
        return;
    }
    masked.push(secret.clone());
    let _ = writeln!(std::io::stderr().lock(), "::add-mask::{value}");
}

/// One `::error::` annotation for a session that failed, expired or went
/// unrecorded (under GitHub Actions only).
pub(crate) fn annotate(presentation: Presentation, report: &SessionReport) {
    if !enabled() || !report.outcome.is_problem() {
        return;
    }
    let who = who(presentation, report);
    let message = format!(
        "{who} ({}) {}: {}",
        report.id,
        report.outcome.as_str(),
        report.error.as_deref().unwrap_or("no detail")
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "::error title=aimharder-refresh::{}",
        escape(&message)
    );
}

/// One annotation for the failed sessions past the first [`ANNOTATIONS`].
pub(crate) fn annotate_rest(rest: u64) {
    if !enabled() || rest == 0 {
        return;
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "::error title=aimharder-refresh::… and {rest} more sessions failed, expired or went unrecorded (the step summary lists them)"
    );
}

/// Appends the run's summary to `$GITHUB_STEP_SUMMARY`; `stopped` says why
/// the run stopped early (the deadline, a signal, the circuit breaker).
pub(crate) fn step_summary(
    presentation: Presentation,
    title: &str,
    totals: &Totals,
    problems: &[SessionReport],
    stopped: Option<&str>,
) {
    if !enabled() {
        return;
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let mut text = format!(
        "### aimharder-refresh {title}\n\n| selected | refreshed | failed | expired | unrecorded | skipped |\n\
         |---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n",
        totals.selected, totals.refreshed, totals.failed, totals.expired, totals.unrecorded, totals.skipped
    );
    if let Some(why) = stopped {
        text.push_str(&format!("\n**Stopped:** {}\n", cell(why)));
    }
    let listed_all = (problems.len() as u64) >= totals.failed + totals.expired + totals.unrecorded;
    if !problems.is_empty() {
        text.push_str("\n| session | email | outcome | reason |\n|---|---|---|---|\n");
        for p in problems {
            text.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                p.id,
                cell(&who(presentation, p)),
                p.outcome.as_str(),
                cell(p.error.as_deref().unwrap_or(""))
            ));
        }
    }
    if !listed_all {
        text.push_str(&format!(
            "\n… and more: only the first {} are listed.\n",
            problems.len()
        ));
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::warn!("cannot write the GitHub step summary: {e}");
    }
}

/// Workflow-command data escaping, as the runner expects it.
fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_data_is_escaped() {
        assert_eq!(escape("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
