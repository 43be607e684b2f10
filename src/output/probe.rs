//! `probe` results as they come: one line per session that is not alive
//! (every line when one session was asked about), or one JSON document;
//! for `--all`, the counts by age since the last keep-alive after them.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::domain::age::{AgeRow, ByAge};
use crate::domain::presentation::Presentation;
use crate::domain::probe::{Liveness, ProbeReport, ProbeTotals};
use crate::output::shown::{who, Shown};
use crate::output::stream::SessionsDocument;

/// Streams a probe's results; in JSON the sessions come first and the
/// counts after them (same keys as the documented shape).
pub(crate) struct ProbeSink {
    /// The JSON document being written (`--json`).
    document: Option<SessionsDocument>,
    every_line: bool,
    /// Its `-q`: nothing printed when every session is alive.
    presentation: Presentation,
    totals: ProbeTotals,
    /// Counts by age (`probe --all`).
    by_age: Option<ByAge>,
}

/// The members after the `sessions` array.
#[derive(Serialize)]
struct Tail<'a> {
    #[serde(flatten)]
    totals: &'a ProbeTotals,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_age: Option<&'a [AgeRow]>,
}

impl ProbeSink {
    /// For one session: every answer gets a line, alive ones too.
    pub(crate) fn one(presentation: Presentation) -> std::io::Result<Self> {
        Self::start(presentation, true, None)
    }

    /// For `--all`: lines for the sessions not alive, and the counts by
    /// age in buckets that follow the due window `window`.
    pub(crate) fn all(presentation: Presentation, window: Duration) -> std::io::Result<Self> {
        Self::start(presentation, false, Some(ByAge::new(window)))
    }

    fn start(
        presentation: Presentation,
        every_line: bool,
        by_age: Option<ByAge>,
    ) -> std::io::Result<Self> {
        let document = if presentation.json {
            Some(SessionsDocument::start(&mut std::io::stdout().lock(), "")?)
        } else {
            None
        };
        Ok(Self {
            document,
            every_line: every_line && !presentation.quiet,
            presentation,
            totals: ProbeTotals::default(),
            by_age,
        })
    }

    /// Counts one session's answer and prints it if it is to be seen.
    pub(crate) fn session(&mut self, report: &ProbeReport) -> std::io::Result<()> {
        self.totals.add(report.outcome);
        if let Some(by_age) = &mut self.by_age {
            by_age.add(report.since_keepalive, report.outcome);
        }
        let mut out = std::io::stdout().lock();
        match &mut self.document {
            Some(document) => document.item(&mut out, &Shown::new(self.presentation, report))?,
            None if self.every_line || report.outcome != Liveness::Alive => {
                writeln!(out, "{}", line(self.presentation, report))?
            }
            None => {}
        }
        Ok(())
    }

    /// Ends the document (or prints the summary); returns the counts and
    /// the summary line.
    pub(crate) fn finish(self, duration_ms: u128) -> std::io::Result<(ProbeTotals, String)> {
        let t = &self.totals;
        let summary = format!(
            "{} sessions probed: {} alive, {} dead, {} failed in {:.1}s",
            t.probed,
            t.alive,
            t.dead,
            t.failed,
            duration_ms as f64 / 1000.0
        );
        let mut out = std::io::stdout().lock();
        let by_age = self.by_age.as_ref().map(ByAge::rows);
        match self.document {
            Some(document) => document.finish(&mut out, &Tail { totals: t, by_age })?,
            // `-q`: nothing when every session is alive.
            None if self.presentation.quiet && t.all_alive() => {}
            None => {
                if let Some(rows) = by_age.filter(|_| t.probed > 0) {
                    write!(out, "{}", age_table(rows))?;
                }
                writeln!(out, "{summary}")?
            }
        }
        Ok((self.totals, summary))
    }
}

fn line(presentation: Presentation, report: &ProbeReport) -> String {
    let label = match report.outcome {
        Liveness::Alive => "alive".to_string(),
        other => other.as_str().to_ascii_uppercase(),
    };
    let who = who(presentation, report);
    match &report.error {
        Some(err) => format!("{label:<7} {} {who} — {err}", report.id),
        None => format!("{label:<7} {} {who}", report.id),
    }
}

/// The counts by age as a small table; the `unknown` row only when a
/// session had no date.
fn age_table(rows: &[AgeRow]) -> String {
    let mut table = format!(
        "{:<24} {:>6} {:>6} {:>6}\n",
        "since last keep-alive", "alive", "dead", "failed"
    );
    for row in rows {
        if row.age == "unknown" && row.total() == 0 {
            continue;
        }
        table.push_str(&format!(
            "{:<24} {:>6} {:>6} {:>6}\n",
            row.age, row.alive, row.dead, row.failed
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_table_lists_every_bucket_and_unknown_only_when_used() {
        let mut by_age = ByAge::new(Duration::from_secs(20 * 60));
        by_age.add(Some(Duration::from_secs(60)), Liveness::Alive);
        by_age.add(Some(Duration::from_secs(3 * 3600)), Liveness::Dead);
        let table = age_table(by_age.rows());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 8, "{table}");
        assert!(lines[0].starts_with("since last keep-alive"), "{table}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["<20m", "1", "0", "0"]
        );
        assert_eq!(
            lines[5].split_whitespace().collect::<Vec<_>>(),
            ["2h-6h", "0", "1", "0"]
        );
        assert!(!table.contains("unknown"), "{table}");
        by_age.add(None, Liveness::Failed);
        assert!(age_table(by_age.rows()).contains("unknown"));
    }
}
