//! `status`: the counts, then (with `--sessions`) one line per session as
//! the pages come, so memory stays flat however large the table.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::domain::presentation::Presentation;
use crate::domain::schedule::{Schedule, ScheduleFigures};
use crate::domain::status::{StatusLine, StatusReport};
use crate::output::shown::{who, Shown};
use crate::output::stream::SessionsDocument;

/// Prints `status`: its counts, then the sessions as they are read.
pub(crate) struct StatusSink {
    /// The JSON document being written (`--json --sessions`).
    document: Option<SessionsDocument>,
    presentation: Presentation,
}

/// What `status` counted, and the schedule it checked.
pub(crate) struct Counted<'a> {
    pub(crate) report: &'a StatusReport,
    /// The window fresh and stale are counted over.
    pub(crate) stale_after: Duration,
    pub(crate) schedule: &'a Schedule,
    /// Something `--check` would fail on: under `-q` the text is printed
    /// only then.
    pub(crate) problem: bool,
}

/// The counts and the schedule's figures, in one JSON object.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    report: &'a StatusReport,
    schedule: ScheduleFigures,
}

impl StatusSink {
    /// Prints the counts and the schedule's line and, with `sessions`,
    /// opens the listing; returns the counts as one line of text.
    pub(crate) fn start(
        presentation: Presentation,
        counted: &Counted<'_>,
        sessions: bool,
    ) -> std::io::Result<(Self, String)> {
        let report = counted.report;
        // Each count says its window: fresh and stale go by --stale-after,
        // due by the schedule's --older-than.
        let summary = format!(
            "{} sessions: {} auto-refresh enabled, {} fresh (refreshed within {stale}), {} stale (not within {stale}), {} never refreshed, {} with errors, {} due now (older than {due})",
            report.total,
            report.auto_refresh_enabled,
            report.fresh,
            report.stale,
            report.never_refreshed,
            report.with_errors,
            report.due,
            stale = span(counted.stale_after),
            due = span(counted.schedule.plan.every),
        );
        let document = Document {
            report,
            schedule: counted.schedule.figures(),
        };
        let mut out = std::io::stdout().lock();
        let document = match (presentation.json, sessions) {
            (true, true) => {
                let counts = serde_json::to_string(&document)?;
                // The object's members, its braces (only its own: the
                // schedule is an object too) taken off.
                let members = counts
                    .strip_prefix('{')
                    .and_then(|c| c.strip_suffix('}'))
                    .unwrap_or_default();
                let head = format!("{members},");
                Some(SessionsDocument::start(&mut out, &head)?)
            }
            (true, false) => {
                serde_json::to_writer(&mut out, &document)?;
                writeln!(out)?;
                None
            }
            (false, _) if presentation.quiet && !counted.problem => None,
            (false, _) => {
                writeln!(out, "{summary}")?;
                writeln!(out, "{}", schedule_line(counted.schedule))?;
                None
            }
        };
        Ok((
            Self {
                document,
                presentation,
            },
            summary,
        ))
    }

    /// Prints one session of the listing.
    pub(crate) fn line(&mut self, line: &StatusLine) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match &mut self.document {
            Some(document) => document.item(&mut out, &Shown::new(self.presentation, line)),
            None if self.presentation.json => Ok(()),
            None => writeln!(
                out,
                "{}  {:<28} {:<8} last={:<32} count={:<5} expires={:<20} {}",
                line.id,
                who(self.presentation, line),
                if line.auto_refresh_enabled {
                    "enabled"
                } else {
                    "disabled"
                },
                line.last_refresh_date.as_deref().unwrap_or("never"),
                line.refresh_count,
                line.token_expires_at.as_deref().unwrap_or("-"),
                line.error.as_deref().unwrap_or("")
            ),
        }
    }

    /// Ends the document, whole.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        match self.document {
            Some(document) => {
                document.finish(&mut std::io::stdout().lock(), &serde_json::json!({}))
            }
            None => Ok(()),
        }
    }
}

/// Whether the schedule keeps up, in one line, and what to change when it
/// does not.
fn schedule_line(schedule: &Schedule) -> String {
    let sessions = schedule.sessions;
    let needed = schedule.needed_per_hour();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let head = format!(
        "schedule: {} keep-alive{} an hour needed ({} session{} every {})",
        grouped(needed),
        plural(needed),
        grouped(sessions),
        plural(sessions),
        span(schedule.plan.every),
    );
    let Some(capacity) = schedule.capacity_per_hour() else {
        return format!(
            "{head}; --rate 0 sets no limit: only --concurrency and AimHarder's answers bound one runner"
        );
    };
    let rate = schedule.plan.rate.unwrap_or_default();
    let pace = format!("one runner at --rate {rate} makes {}", grouped(capacity));
    match schedule.remedies() {
        None => format!("{head}, {pace}: it keeps up"),
        Some(fix) => {
            let shard = fix
                .runners
                .map(|n| format!("shard across {n} runners (--shard I/{n}), "))
                .unwrap_or_default();
            format!(
                "{head}, {pace}: it cannot keep up; raise --rate to {}, {shard}or lengthen --older-than to {}",
                fix.rate,
                span(fix.every),
            )
        }
    }
}

/// A window as its flag is written: 20m, 6h, 24h, 7d (humantime says
/// "1day" and "1h 30m" where a whole unit does not fit).
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => humantime::format_duration(d).to_string(),
        _ if d.subsec_nanos() != 0 => humantime::format_duration(d).to_string(),
        _ if secs % 86_400 == 0 && secs >= 2 * 86_400 => format!("{}d", secs / 86_400),
        _ if secs % 3600 == 0 => format!("{}h", secs / 3600),
        _ if secs % 60 == 0 => format!("{}m", secs / 60),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A count with thousands separated, as people read it: 5,400.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::SchedulePlan;

    fn line(sessions: u64, every_mins: u64, rate: Option<f64>) -> String {
        schedule_line(
            &SchedulePlan {
                every: Duration::from_secs(every_mins * 60),
                rate,
                runners: 1,
            }
            .for_sessions(sessions),
        )
    }

    #[test]
    fn the_schedule_line_says_whether_it_keeps_up_and_what_to_change() {
        assert_eq!(
            line(1800, 20, Some(1.0)),
            "schedule: 5,400 keep-alives an hour needed (1,800 sessions every 20m), \
             one runner at --rate 1 makes 3,600: it cannot keep up; raise --rate to 1.5, \
             shard across 2 runners (--shard I/2), or lengthen --older-than to 30m"
        );
        assert_eq!(
            line(1, 360, Some(2.0)),
            "schedule: 1 keep-alive an hour needed (1 session every 6h), \
             one runner at --rate 2 makes 7,200: it keeps up"
        );
        assert!(
            line(1800, 20, None).ends_with("--rate 0 sets no limit: only --concurrency and AimHarder's answers bound one runner"),
            "{}",
            line(1800, 20, None)
        );
    }

    #[test]
    fn windows_read_as_their_flags_are_written() {
        let secs = Duration::from_secs;
        assert_eq!(span(secs(1200)), "20m");
        assert_eq!(span(secs(86_400)), "24h");
        assert_eq!(span(secs(7 * 86_400)), "7d");
        assert_eq!(span(secs(5400)), "90m");
        assert_eq!(span(secs(90)), "1m 30s");
        assert_eq!(span(Duration::ZERO), "0s");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(grouped(n), text);
        }
    }
}
