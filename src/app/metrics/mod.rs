//! Run metrics in Prometheus text format, for node_exporter's textfile
//! collector. Every series carries the `command` that wrote it, and a run
//! replaces only its own command's series: a `refresh-one` sharing the file
//! with the scheduled `refresh-all` neither hides a broken schedule nor
//! overwrites its counts. The file is read and rewritten under a lock
//! beside it, to a temporary file in the same folder renamed over the
//! target, so the collector never reads half a file and two commands
//! ending at once do not lose each other's series.

mod text;

use std::io::ErrorKind;
use std::path::Path;

use crate::app::exit::EX_TEMPFAIL;
use crate::domain::outcome::Totals;
use crate::domain::schedule::Schedule;
use crate::domain::status::StatusReport;
use text::{merge, parse, previous, Family, Gauges};

const LAST_SUCCESS: &str = "aimharder_refresh_last_success_timestamp_seconds";

/// What one run reports to the metrics file.
pub(crate) struct RunMetrics<'a> {
    /// The command that ran: every series it writes carries it as a label.
    pub(crate) command: &'a str,
    /// When the run ended, in Unix seconds.
    pub(crate) finished_at: i64,
    /// How long the run took, in seconds.
    pub(crate) duration_secs: f64,
    pub(crate) exit_code: u8,
    /// The sessions the run handled, by outcome, when it handled any.
    pub(crate) totals: Option<&'a Totals>,
    /// The circuit breaker stopped the run.
    pub(crate) tripped: bool,
    /// Sessions by state once the run was over, as `status` counts them.
    pub(crate) states: Option<&'a StatusReport>,
    /// The run's schedule against the enabled sessions it ended with.
    pub(crate) schedule: Option<&'a Schedule>,
}

/// A run succeeded when it failed nothing: 0, or 75 (the deadline or a
/// signal stopped it with due sessions left, which the next run takes).
/// Counting 75 as a failure would call a table larger than one run covers
/// "never succeeding"; whether the schedule keeps up is another question.
fn succeeded(exit_code: u8) -> bool {
    exit_code == 0 || exit_code == EX_TEMPFAIL
}

/// Replaces `run`'s command's series in the file at `path` with the run's
/// own; a run that failed keeps its command's last success time.
pub(crate) fn write(path: &Path, run: &RunMetrics<'_>) -> std::io::Result<()> {
    replace(path, run.command, |old| {
        // A failed run keeps its command's last success time.
        let last_success = if succeeded(run.exit_code) {
            Some(run.finished_at)
        } else {
            previous(old, LAST_SUCCESS, run.command)
        };
        families(run, last_success)
    })
}

/// `status`'s series: the figures of the schedule it checked, and nothing
/// of a run's (it refreshes nothing; its exit is not the schedule's). With
/// no figures (Supabase could not say) its old ones go: a stale figure
/// would keep an alert firing, or quiet.
pub(crate) fn write_schedule(
    path: &Path,
    command: &str,
    schedule: Option<&Schedule>,
) -> std::io::Result<()> {
    replace(path, command, |_| {
        let mut gauges = Gauges::new(command);
        schedule_gauges(&mut gauges, schedule);
        gauges.done()
    })
}

/// Replaces `command`'s samples in the file with those `build` makes from
/// the file as it was.
fn replace(
    path: &Path,
    command: &str,
    build: impl FnOnce(&[Family]) -> Vec<Family>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("aimharder_refresh.prom");
    // Not the metrics file itself: the rename replaces it, and a lock on
    // the replaced file would keep nobody out. The collector reads only
    // `*.prom`, so it ignores this file and the temporary one.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(format!(".{name}.lock")))?;
    // Its holders only read and rename a small file.
    fs4::FileExt::lock(&lock)?;
    let old = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        // Writing over a file we cannot read would lose the other
        // commands' series.
        Err(e) => return Err(e),
    };
    let new = build(&old);
    let text = merge(old, new, command);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The schedule's two figures; no capacity without a rate limit.
fn schedule_gauges(gauges: &mut Gauges, schedule: Option<&Schedule>) {
    let Some(schedule) = schedule else { return };
    gauges.gauge(
        "aimharder_refresh_schedule_needed_per_hour",
        "Keep-alive calls an hour one runner needs: its share of the enabled sessions, each once per --older-than.",
        &[(None, schedule.needed_per_hour().to_string())],
    );
    if let Some(capacity) = schedule.capacity_per_hour() {
        gauges.gauge(
            "aimharder_refresh_schedule_capacity_per_hour",
            "Calls an hour one runner makes at its --rate (absent with --rate 0, no limit).",
            &[(None, capacity.to_string())],
        );
    }
}

fn families(run: &RunMetrics<'_>, last_success: Option<i64>) -> Vec<Family> {
    let mut gauges = Gauges::new(run.command);
    let mut gauge = |name: &str, help: &str, samples: &[(Option<(&str, &str)>, String)]| {
        gauges.gauge(name, help, samples)
    };
    let by = |key: &'static str, value: &'static str, n: u64| (Some((key, value)), n.to_string());
    gauge(
        "aimharder_refresh_last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        &[(None, run.finished_at.to_string())],
    );
    if let Some(ts) = last_success {
        gauge(
            LAST_SUCCESS,
            "When the last run that failed nothing (exit 0, or 75: stopped with due sessions left) ended (Unix time).",
            &[(None, ts.to_string())],
        );
    }
    gauge(
        "aimharder_refresh_last_run_duration_seconds",
        "How long the last run took.",
        &[(None, format!("{:.3}", run.duration_secs))],
    );
    gauge(
        "aimharder_refresh_last_run_exit_code",
        "Exit code of the last run (0 = all refreshed).",
        &[(None, run.exit_code.to_string())],
    );
    gauge(
        "aimharder_refresh_circuit_breaker_tripped",
        "1 when the circuit breaker stopped the last run (AimHarder refused or failed sessions in a row).",
        &[(None, u8::from(run.tripped).to_string())],
    );
    if let Some(s) = run.states {
        gauge(
            "aimharder_refresh_sessions_by_state",
            "Sessions in the table by state when the last run ended (as `status` counts them; stale: not refreshed in 24h).",
            &[
                by("state", "total", s.total),
                by("state", "enabled", s.auto_refresh_enabled),
                by("state", "fresh", s.fresh),
                by("state", "stale", s.stale),
                by("state", "never_refreshed", s.never_refreshed),
                by("state", "with_errors", s.with_errors),
                by("state", "due", s.due),
            ],
        );
    }
    if let Some(t) = run.totals {
        gauge(
            "aimharder_refresh_sessions",
            "Sessions handled by the last run, by outcome.",
            &[
                by("outcome", "refreshed", t.refreshed),
                by("outcome", "failed", t.failed),
                by("outcome", "expired", t.expired),
                by("outcome", "unrecorded", t.unrecorded),
                by("outcome", "skipped", t.skipped),
            ],
        );
    }
    schedule_gauges(&mut gauges, run.schedule);
    gauges.done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a>(
        command: &'a str,
        finished_at: i64,
        exit_code: u8,
        totals: &'a Totals,
    ) -> RunMetrics<'a> {
        RunMetrics {
            command,
            finished_at,
            duration_secs: 1.5,
            exit_code,
            totals: Some(totals),
            tripped: false,
            states: None,
            schedule: None,
        }
    }

    fn totals(refreshed: u64) -> Totals {
        Totals {
            selected: refreshed,
            refreshed,
            ..Totals::default()
        }
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn a_failed_run_keeps_the_previous_success_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let three = totals(3);
        write(&path, &run("refresh-all", 1000, 0, &three)).unwrap();
        write(&path, &run("refresh-all", 2000, 1, &three)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in [
            "aimharder_refresh_last_success_timestamp_seconds{command=\"refresh-all\"} 1000",
            "aimharder_refresh_last_run_timestamp_seconds{command=\"refresh-all\"} 2000",
            "aimharder_refresh_last_run_exit_code{command=\"refresh-all\"} 1",
            "aimharder_refresh_sessions{command=\"refresh-all\",outcome=\"refreshed\"} 3",
        ] {
            assert!(has(&text, line), "no {line} in\n{text}");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| n == "m.prom" || n == ".m.prom.lock"),
            "no temp file left: {names:?}"
        );
    }

    #[test]
    fn a_run_stopped_with_sessions_left_counts_as_a_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let some = totals(40);
        write(&path, &run("refresh-all", 1000, 0, &some)).unwrap();
        write(&path, &run("refresh-all", 2000, EX_TEMPFAIL, &some)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            has(
                &text,
                "aimharder_refresh_last_success_timestamp_seconds{command=\"refresh-all\"} 2000"
            ),
            "{text}"
        );
        assert!(succeeded(0) && succeeded(75));
        for code in [1, 64, 66, 69, 70, 77, 78] {
            assert!(!succeeded(code), "{code}");
        }
    }

    #[test]
    fn a_command_replaces_only_its_own_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let states = StatusReport {
            total: 9,
            auto_refresh_enabled: 9,
            fresh: 5,
            stale: 0,
            never_refreshed: 0,
            with_errors: 0,
            due: 4,
        };
        let many = totals(7);
        let all = RunMetrics {
            states: Some(&states),
            ..run("refresh-all", 1000, 0, &many)
        };
        write(&path, &all).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let one = totals(1);
        write(&path, &run("refresh-one", 5000, 0, &one)).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let samples = |text: &str, command: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains(&format!("command=\"{command}\"")))
                .map(String::from)
                .collect()
        };
        assert_eq!(
            samples(&after, "refresh-all"),
            samples(&before, "refresh-all"),
            "refresh-all's series untouched:\n{after}"
        );
        for line in [
            "aimharder_refresh_last_success_timestamp_seconds{command=\"refresh-one\"} 5000",
            "aimharder_refresh_last_success_timestamp_seconds{command=\"refresh-all\"} 1000",
            "aimharder_refresh_sessions{command=\"refresh-one\",outcome=\"refreshed\"} 1",
            "aimharder_refresh_sessions{command=\"refresh-all\",outcome=\"refreshed\"} 7",
            "aimharder_refresh_sessions_by_state{command=\"refresh-all\",state=\"due\"} 4",
        ] {
            assert!(has(&after, line), "no {line} in\n{after}");
        }
        // The text format wants each metric in one block under one HELP.
        let names: Vec<&str> = after
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('{').next().unwrap())
            .collect();
        let mut blocks = names.clone();
        blocks.dedup();
        let mut unique = blocks.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(blocks.len(), unique.len(), "a metric split:\n{after}");
        for name in unique {
            let help = format!("# HELP {name} ");
            assert_eq!(after.matches(&help).count(), 1, "{name}:\n{after}");
        }

        // refresh-all failing now keeps its own success time and leaves
        // refresh-one's series alone.
        let failed = run("refresh-all", 9000, 1, &many);
        write(&path, &failed).unwrap();
        let last = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            samples(&last, "refresh-one"),
            samples(&after, "refresh-one")
        );
        assert!(has(
            &last,
            "aimharder_refresh_last_success_timestamp_seconds{command=\"refresh-all\"} 1000"
        ));
        assert!(
            !last.contains("sessions_by_state"),
            "refresh-all's state counts were of its previous run:\n{last}"
        );
    }

    #[test]
    fn the_schedule_figures_are_a_commands_own_and_status_writes_no_run() {
        use crate::domain::schedule::SchedulePlan;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let plan = |rate| SchedulePlan {
            every: std::time::Duration::from_secs(1200),
            rate,
            runners: 1,
        };
        let slow = plan(Some(1.0)).for_sessions(1800);
        let some = totals(3);
        let all = RunMetrics {
            schedule: Some(&slow),
            ..run("refresh-all", 1000, 0, &some)
        };
        write(&path, &all).unwrap();
        let unlimited = plan(None).for_sessions(1800);
        write_schedule(&path, "status", Some(&unlimited)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in [
            "aimharder_refresh_schedule_needed_per_hour{command=\"refresh-all\"} 5400",
            "aimharder_refresh_schedule_capacity_per_hour{command=\"refresh-all\"} 3600",
            "aimharder_refresh_schedule_needed_per_hour{command=\"status\"} 5400",
        ] {
            assert!(has(&text, line), "no {line} in\n{text}");
        }
        let of_status: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("command=\"status\""))
            .collect();
        assert_eq!(
            of_status,
            ["aimharder_refresh_schedule_needed_per_hour{command=\"status\"} 5400"],
            "no capacity without a limit, and no run series:\n{text}"
        );
        // A status that could not count leaves no stale figure.
        write_schedule(&path, "status", None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("command=\"status\""), "{text}");
        assert!(text.contains("needed_per_hour{command=\"refresh-all\"} 5400"));
    }

    #[test]
    fn series_of_a_version_without_the_command_label_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        std::fs::write(
            &path,
            "# HELP aimharder_refresh_last_success_timestamp_seconds old\n\
             # TYPE aimharder_refresh_last_success_timestamp_seconds gauge\n\
             aimharder_refresh_last_success_timestamp_seconds 1000\n\
             # HELP aimharder_refresh_sessions old\n\
             # TYPE aimharder_refresh_sessions gauge\n\
             aimharder_refresh_sessions{outcome=\"refreshed\"} 3\n",
        )
        .unwrap();
        let none = totals(0);
        write(&path, &run("refresh-all", 2000, 1, &none)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("last_success"), "{text}");
        assert!(!text.contains("} 3\n") && !text.contains(" old"), "{text}");
        assert_eq!(
            text.matches("# HELP aimharder_refresh_sessions ").count(),
            1
        );
    }
}
