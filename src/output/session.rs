//! One session's result: the line every text output uses for it, and
//! `refresh-one`'s whole output.

use std::io::Write;

use crate::domain::outcome::{Outcome, SessionReport, Totals};
use crate::domain::presentation::Presentation;
use crate::output::github;
use crate::output::shown::{who, Shown};

/// The session's result as one line of text: outcome, id, email, why.
pub(crate) fn session_line(presentation: Presentation, s: &SessionReport) -> String {
    let who = who(presentation, s);
    match &s.error {
        Some(err) => format!("{:<10} {} {} — {}", label(s.outcome), s.id, who, err),
        None => format!("{:<10} {} {}", label(s.outcome), s.id, who),
    }
}

/// Prints `refresh-one`'s result (as text unless `-q` and no problem, or
/// as one JSON object), annotates it and writes the step summary under
/// GitHub Actions; returns the counts and the result as one line of text.
pub(crate) fn print_one(
    presentation: Presentation,
    report: &SessionReport,
) -> std::io::Result<(Totals, String)> {
    let line = session_line(presentation, report);
    let mut out = std::io::stdout().lock();
    if presentation.json {
        serde_json::to_writer(&mut out, &Shown::new(presentation, report))?;
        writeln!(out)?;
    } else if !presentation.quiet || report.outcome.is_problem() {
        writeln!(out, "{line}")?;
    }
    let mut totals = Totals::default();
    totals.add(report.outcome);
    github::annotate(presentation, report);
    let problems = if report.outcome.is_problem() {
        std::slice::from_ref(report)
    } else {
        &[]
    };
    github::step_summary(presentation, "refresh-one", &totals, problems, None);
    Ok((totals, line))
}

/// Problems in capitals, so they stand out in a cron mail.
fn label(outcome: Outcome) -> String {
    if outcome.is_problem() {
        outcome.as_str().to_ascii_uppercase()
    } else {
        outcome.as_str().to_string()
    }
}
