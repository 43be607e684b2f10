//! `status`: the counts, then (with `--sessions`) one line per session as
//! the pages come, so memory stays flat however large the table.

use std::io::Write;

use crate::domain::status::{StatusLine, StatusReport};
use crate::output::report::Output;
use crate::output::stream::SessionsDocument;

pub struct StatusSink {
    /// The JSON document being written (`--json --sessions`).
    document: Option<SessionsDocument>,
    json: bool,
}

impl StatusSink {
    /// Prints the counts and, with `sessions`, opens the listing; returns
    /// the counts as one line of text.
    pub fn start(
        output: Output,
        report: &StatusReport,
        sessions: bool,
    ) -> std::io::Result<(Self, String)> {
        let summary = format!(
            "{} sessions: {} auto-refresh enabled, {} fresh, {} stale, {} never refreshed, {} with errors, {} due now",
            report.total,
            report.auto_refresh_enabled,
            report.fresh,
            report.stale,
            report.never_refreshed,
            report.with_errors,
            report.due
        );
        let mut out = std::io::stdout().lock();
        let document = match (output.json, sessions) {
            (true, true) => {
                let counts = serde_json::to_string(report)?;
                let head = format!("{},", counts.trim_start_matches('{').trim_end_matches('}'));
                Some(SessionsDocument::start(&mut out, &head)?)
            }
            (true, false) => {
                serde_json::to_writer(&mut out, report)?;
                writeln!(out)?;
                None
            }
            (false, _) => {
                writeln!(out, "{summary}")?;
                None
            }
        };
        Ok((
            Self {
                document,
                json: output.json,
            },
            summary,
        ))
    }

    pub fn line(&mut self, line: &StatusLine) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match &mut self.document {
            Some(document) => document.item(&mut out, line),
            None if self.json => Ok(()),
            None => writeln!(
                out,
                "{}  {:<28} {:<8} last={:<32} count={:<5} expires={:<20} {}",
                line.id,
                line.email.as_deref().unwrap_or("-"),
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
    pub fn finish(self) -> std::io::Result<()> {
        match self.document {
            Some(document) => {
                document.finish(&mut std::io::stdout().lock(), &serde_json::json!({}))
            }
            None => Ok(()),
        }
    }
}
