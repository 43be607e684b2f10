//! Whether a schedule keeps up: the keep-alive calls an hour the enabled
//! sessions need, against the calls one runner makes at its pace.

use std::time::Duration;

use serde::Serialize;

/// How a runner is set to work through the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SchedulePlan {
    /// Each session is due again this long after its last keep-alive
    /// (`--older-than`).
    pub(crate) every: Duration,
    /// Requests per second (`--rate`); `None` is no limit.
    pub(crate) rate: Option<f64>,
    /// Runners sharing the table (`--shard I/N`: N), each taking its
    /// shard's share of the sessions.
    pub(crate) runners: u32,
}

/// A plan against the sessions it has to keep alive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Schedule {
    /// Enabled sessions in the table (after `--filter`).
    pub(crate) sessions: u64,
    pub(crate) plan: SchedulePlan,
}

/// The figures `status --json` and the metrics report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ScheduleFigures {
    /// Calls an hour one runner needs ([`Schedule::needed_per_hour`]).
    pub(crate) needed_per_hour: u64,
    /// `None` without a rate limit.
    pub(crate) capacity_per_hour: Option<u64>,
    pub(crate) keeps_up: bool,
}

/// Each of these alone lets the schedule keep up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Remedies {
    /// The least `--rate`.
    pub(crate) rate: f64,
    /// The fewest runners, each on its shard at this rate; `None` when one
    /// session alone is due more often than a runner can call.
    pub(crate) runners: Option<u64>,
    /// The shortest `--older-than`, in whole minutes.
    pub(crate) every: Duration,
}

impl SchedulePlan {
    /// The plan against `sessions` enabled sessions.
    pub(crate) fn for_sessions(self, sessions: u64) -> Schedule {
        Schedule {
            sessions,
            plan: self,
        }
    }
}

impl Schedule {
    /// Calls an hour one runner needs, rounded up: every session of its
    /// share once per window. Shards split the ids evenly, so a runner's
    /// share is the table over the runners (also rounded up). A window
    /// under a millisecond counts as one.
    pub(crate) fn needed_per_hour(&self) -> u64 {
        let share = self.sessions.div_ceil(u64::from(self.plan.runners.max(1)));
        let window_ms = self.plan.every.as_millis().max(1);
        let needed = (u128::from(share) * 3_600_000).div_ceil(window_ms);
        u64::try_from(needed).unwrap_or(u64::MAX)
    }

    /// Calls an hour one runner makes at its rate, rounded down (retries
    /// count against the rate too, so this is the most it can do);
    /// `None` without a limit.
    pub(crate) fn capacity_per_hour(&self) -> Option<u64> {
        // The rate's last binary digit must not cost a whole call
        // (0.3 × 3600 is 1079.9999…).
        self.plan
            .rate
            .map(|rate| (rate * 3600.0 + 1e-6).floor() as u64)
    }

    /// Whether one runner makes the calls an hour it needs. Without a limit
    /// the pace is not what holds a runner back.
    pub(crate) fn keeps_up(&self) -> bool {
        self.capacity_per_hour()
            .is_none_or(|capacity| self.needed_per_hour() <= capacity)
    }

    /// What would make a runner that cannot keep up keep up, each alone;
    /// `None` when it keeps up.
    pub(crate) fn remedies(&self) -> Option<Remedies> {
        let capacity = self
            .capacity_per_hour()
            .filter(|_| !self.keeps_up())?
            .max(1);
        let needed = self.needed_per_hour();
        let share = self.sessions.div_ceil(u64::from(self.plan.runners.max(1)));
        // To the rate's step (0.001), up.
        let rate = (needed as f64 / 3.6).ceil() / 1000.0;
        let window_secs = (u128::from(share) * 3600).div_ceil(u128::from(capacity));
        let window_mins = u64::try_from(window_secs.div_ceil(60)).unwrap_or(u64::MAX / 60);
        // The whole table's calls over one runner's, then up while a
        // share's rounding still leaves one over; none when a single
        // session is due more often than one runner can call.
        let with = |runners: u64| SchedulePlan {
            runners: u32::try_from(runners).unwrap_or(u32::MAX),
            ..self.plan
        };
        let least = with(1)
            .for_sessions(self.sessions)
            .needed_per_hour()
            .div_ceil(capacity);
        let runners = (least.max(2)..least.max(2).saturating_add(64))
            .find(|&n| with(n).for_sessions(self.sessions).keeps_up());
        Some(Remedies {
            rate,
            runners,
            every: Duration::from_secs(window_mins * 60),
        })
    }

    /// The figures `status --json` and the metrics report.
    pub(crate) fn figures(&self) -> ScheduleFigures {
        ScheduleFigures {
            needed_per_hour: self.needed_per_hour(),
            capacity_per_hour: self.capacity_per_hour(),
            keeps_up: self.keeps_up(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(sessions: u64, every_secs: u64, rate: Option<f64>, runners: u32) -> Schedule {
        SchedulePlan {
            every: Duration::from_secs(every_secs),
            rate,
            runners,
        }
        .for_sessions(sessions)
    }

    #[test]
    fn needed_is_sessions_per_window_rounded_up() {
        assert_eq!(schedule(1800, 1200, Some(1.0), 1).needed_per_hour(), 5400);
        // 4 sessions every 6 hours: two thirds of a call an hour.
        assert_eq!(schedule(4, 6 * 3600, Some(2.0), 1).needed_per_hour(), 1);
        assert_eq!(schedule(0, 1200, Some(2.0), 1).needed_per_hour(), 0);
        let zero = SchedulePlan {
            every: Duration::ZERO,
            rate: None,
            runners: 1,
        };
        assert_eq!(zero.for_sessions(1).needed_per_hour(), 3_600_000);
    }

    #[test]
    fn a_shard_needs_its_share() {
        assert_eq!(schedule(1800, 1200, Some(1.0), 2).needed_per_hour(), 2700);
        // 5 sessions over 2 runners: the larger share is 3.
        assert_eq!(schedule(5, 3600, Some(1.0), 2).needed_per_hour(), 3);
    }

    #[test]
    fn capacity_is_rate_times_an_hour() {
        assert_eq!(
            schedule(1, 1200, Some(2.0), 1).capacity_per_hour(),
            Some(7200)
        );
        assert_eq!(
            schedule(1, 1200, Some(0.3), 1).capacity_per_hour(),
            Some(1080)
        );
        assert_eq!(
            schedule(1, 1200, Some(0.001), 1).capacity_per_hour(),
            Some(3)
        );
        assert_eq!(schedule(1, 1200, None, 1).capacity_per_hour(), None);
    }

    #[test]
    fn remedies_each_make_it_keep_up() {
        assert_eq!(schedule(10, 1200, Some(2.0), 1).remedies(), None);
        assert_eq!(schedule(10, 1200, None, 1).remedies(), None);
        let slow = schedule(1800, 1200, Some(1.0), 1);
        let fix = slow.remedies().unwrap();
        assert_eq!(fix.rate, 1.5);
        assert_eq!(fix.runners, Some(2));
        assert_eq!(fix.every, Duration::from_secs(30 * 60));
        let with = |every: Duration, rate: Option<f64>, runners: u32| {
            SchedulePlan {
                every,
                rate,
                runners,
            }
            .for_sessions(1800)
        };
        assert!(with(slow.plan.every, Some(fix.rate), 1).keeps_up());
        assert!(with(slow.plan.every, Some(1.0), fix.runners.unwrap() as u32).keeps_up());
        assert!(with(fix.every, Some(1.0), 1).keeps_up());
        // Already sharded: more shards of the same table.
        let sharded = schedule(3000, 1200, Some(1.0), 2).remedies().unwrap();
        assert_eq!(sharded.runners, Some(3), "9,000 an hour over 3,600 each");
        let too_often = SchedulePlan {
            every: Duration::from_millis(100),
            rate: Some(1.0),
            runners: 1,
        };
        assert_eq!(too_often.for_sessions(1).remedies().unwrap().runners, None);
        // A rate in thousandths, rounded up: 4 sessions an hour.
        assert_eq!(
            schedule(4, 3600, Some(0.001), 1).remedies().unwrap().rate,
            0.002
        );
    }

    #[test]
    fn keeps_up_when_needed_fits_capacity_or_nothing_limits() {
        let too_many = schedule(1800, 1200, Some(1.0), 1);
        assert!(!too_many.keeps_up());
        assert!(
            schedule(1800, 1200, Some(1.5), 1).keeps_up(),
            "5400 of 5400"
        );
        assert!(schedule(1800, 1200, Some(1.0), 2).keeps_up());
        let unlimited = schedule(1_000_000, 1, None, 1);
        assert_eq!(
            unlimited.figures(),
            ScheduleFigures {
                needed_per_hour: 3_600_000_000,
                capacity_per_hour: None,
                keeps_up: true,
            }
        );
        assert_eq!(
            serde_json::to_value(too_many.figures()).unwrap(),
            serde_json::json!({"needed_per_hour": 5400, "capacity_per_hour": 3600, "keeps_up": false})
        );
    }
}
