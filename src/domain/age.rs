//! How long sessions live without a keep-alive: `probe --all`'s answers
//! counted by the session's age since its last keep-alive (last refresh,
//! else creation), in buckets whose edges follow the due window.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::probe::Liveness;
use crate::domain::session::SessionRow;
use crate::domain::timefmt;

/// Bucket edges as multiples of the due window W: inside W (the schedule's
/// own), just overdue (2W, 3W), then widening to 72W. For 20m: 20m, 40m,
/// 1h, 2h, 6h, 1d; for 6h: 6h, 12h, 18h, 1d12h, 4d12h, 18d.
const EDGES: [u32; 6] = [1, 2, 3, 6, 18, 72];

/// The age of `row` at `now` since its last keep-alive: its last refresh,
/// else its creation; `None` when it has neither date (or one that does
/// not parse). A date in the future (a skewed clock) is age zero.
pub(crate) fn since_keepalive(row: &SessionRow, now: OffsetDateTime) -> Option<Duration> {
    let raw = row
        .last_refresh_date
        .as_deref()
        .or(row.created_at.as_deref())?;
    let age = now - timefmt::parse(raw)?;
    Some(age.try_into().unwrap_or(Duration::ZERO))
}

/// One bucket's counts, as `--json` writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AgeRow {
    /// The bucket's label, such as `<20m`, `20m-40m`, `>1d` or `unknown`.
    pub(crate) age: String,
    pub(crate) alive: u64,
    pub(crate) dead: u64,
    pub(crate) failed: u64,
}

impl AgeRow {
    fn new(age: String) -> Self {
        Self {
            age,
            alive: 0,
            dead: 0,
            failed: 0,
        }
    }

    /// Returns the bucket's answers of every kind.
    pub(crate) fn total(&self) -> u64 {
        self.alive + self.dead + self.failed
    }
}

/// The counts by age, youngest first, then `unknown` (no date). Every
/// bucket is kept, empty or not: for one window the list has the same
/// labels in the same places on every run, so runs compare line by line.
#[derive(Debug, Clone)]
pub(crate) struct ByAge {
    edges: Vec<Duration>,
    rows: Vec<AgeRow>,
}

impl ByAge {
    /// Empty buckets for the due window `window`.
    pub(crate) fn new(window: Duration) -> Self {
        let edges: Vec<Duration> = EDGES.iter().map(|k| window * *k).collect();
        let mut labels = vec![format!("<{}", compact(edges[0]))];
        labels.extend(
            edges
                .windows(2)
                .map(|w| format!("{}-{}", compact(w[0]), compact(w[1]))),
        );
        labels.push(format!(">{}", compact(edges[edges.len() - 1])));
        labels.push("unknown".into());
        Self {
            edges,
            rows: labels.into_iter().map(AgeRow::new).collect(),
        }
    }

    /// Counts one answer about a session of age `age` (`None`: unknown).
    pub(crate) fn add(&mut self, age: Option<Duration>, outcome: Liveness) {
        let index = match age {
            // Each bucket holds its lower edge: 20m is "20m-40m".
            Some(age) => self.edges.iter().take_while(|edge| **edge <= age).count(),
            None => self.rows.len() - 1,
        };
        let row = &mut self.rows[index];
        match outcome {
            Liveness::Alive => row.alive += 1,
            Liveness::Dead => row.dead += 1,
            Liveness::Failed => row.failed += 1,
        }
    }

    /// Returns the buckets, youngest first, then `unknown`.
    pub(crate) fn rows(&self) -> &[AgeRow] {
        &self.rows
    }
}

/// A duration as its largest whole units: 40m, 1h, 1d12h.
fn compact(d: Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn labels(window: Duration) -> Vec<String> {
        ByAge::new(window)
            .rows()
            .iter()
            .map(|r| r.age.clone())
            .collect()
    }

    #[test]
    fn buckets_follow_the_due_window() {
        assert_eq!(
            labels(20 * MINUTE),
            ["<20m", "20m-40m", "40m-1h", "1h-2h", "2h-6h", "6h-1d", ">1d", "unknown"]
        );
        assert_eq!(
            labels(360 * MINUTE),
            [
                "<6h",
                "6h-12h",
                "12h-18h",
                "18h-1d12h",
                "1d12h-4d12h",
                "4d12h-18d",
                ">18d",
                "unknown"
            ]
        );
    }

    #[test]
    fn each_age_lands_in_its_bucket_with_its_outcome() {
        let mut by_age = ByAge::new(20 * MINUTE);
        let cases = [
            (Some(Duration::ZERO), Liveness::Alive, "<20m"),
            (
                Some(20 * MINUTE - Duration::from_secs(1)),
                Liveness::Alive,
                "<20m",
            ),
            (Some(20 * MINUTE), Liveness::Failed, "20m-40m"),
            (Some(59 * MINUTE), Liveness::Alive, "40m-1h"),
            (Some(60 * MINUTE), Liveness::Dead, "1h-2h"),
            (Some(25 * 60 * MINUTE), Liveness::Dead, ">1d"),
            (None, Liveness::Dead, "unknown"),
        ];
        for (age, outcome, _) in cases {
            by_age.add(age, outcome);
        }
        let find = |label: &str| by_age.rows().iter().find(|r| r.age == label).unwrap();
        assert_eq!((find("<20m").alive, find("<20m").total()), (2, 2));
        assert_eq!(find("20m-40m").failed, 1);
        assert_eq!(find("40m-1h").alive, 1);
        assert_eq!(find("1h-2h").dead, 1);
        assert_eq!(find(">1d").dead, 1);
        assert_eq!(find("unknown").dead, 1);
        assert_eq!(find("2h-6h").total(), 0, "empty buckets stay listed");
    }

    #[test]
    fn the_age_is_since_the_last_refresh_else_the_creation() {
        let now = timefmt::parse("2026-12-01T12:00:00Z").unwrap();
        let row = |created: Option<&str>, refreshed: Option<&str>| {
            let mut row: SessionRow =
                serde_json::from_value(serde_json::json!({"id": "x"})).unwrap();
            row.created_at = created.map(str::to_string);
            row.last_refresh_date = refreshed.map(str::to_string);
            row
        };
        let created = Some("2026-11-01T12:00:00+00:00");
        assert_eq!(
            since_keepalive(&row(created, Some("2026-12-01T11:30:00+00:00")), now),
            Some(30 * MINUTE)
        );
        assert_eq!(
            since_keepalive(&row(Some("2026-12-01T11:00:00Z"), None), now),
            Some(60 * MINUTE)
        );
        assert_eq!(
            since_keepalive(&row(created, Some("2026-12-01T12:05:00Z")), now),
            Some(Duration::ZERO),
            "a date ahead of the clock is young, not unknown"
        );
        assert_eq!(since_keepalive(&row(None, None), now), None);
        assert_eq!(since_keepalive(&row(None, Some("yesterday")), now), None);
    }
}
