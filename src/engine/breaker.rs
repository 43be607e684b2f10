//! The circuit breaker: when AimHarder fails this many sessions in a row for
//! reasons that are the runner's, not the session's (a refused network,
//! timeouts, 5xx after retries), the run stops starting sessions. Going on
//! would stamp the same error on every row and hammer a service that
//! refuses us. So do sessions AimHarder answers "logout" while its whoami
//! says they are alive: AimHarder refuses the requests themselves (it has
//! done so to calls that did not look like a browser's). A session that
//! ends any other way (refreshed, a confirmed expiry, an unexpected page)
//! shows AimHarder answers, and resets the count.

use std::sync::Mutex;

/// How one session ended, as far as the breaker cares.
pub(crate) enum Settled<'a> {
    /// AimHarder answered about the session.
    Answered,
    /// AimHarder refused this runner (HTTP 403): the reason as recorded.
    Refused(&'a str),
    /// AimHarder unavailable through every retry (timeouts, connection
    /// errors, 5xx): the reason as recorded.
    Unavailable(&'a str),
    /// AimHarder answered logout to a session its whoami says is alive.
    Disbelieved(&'a str),
}

/// What the sessions in a row that tripped the breaker had in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TripKind {
    /// HTTP 403: AimHarder refuses this network.
    Refused,
    /// Timeouts, connection errors, 5xx.
    Unavailable,
    /// Logouts of sessions whoami says are alive.
    Disbelieved,
}

/// Why the breaker tripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trip {
    /// The sessions in a row that tripped it.
    pub(crate) in_a_row: u32,
    /// The last failure's reason, as the sessions' errors give it.
    pub(crate) last: String,
    pub(crate) kind: TripKind,
}

impl Trip {
    /// One line naming AimHarder, what it did, and what to do.
    pub(crate) fn message(&self) -> String {
        let n = self.in_a_row;
        if self.kind == TripKind::Disbelieved {
            return format!(
                "AimHarder answered logout to {n} sessions in a row that its whoami says are \
                 alive: it refuses these requests, this is not a mass expiry, and nothing was \
                 disabled; check what the tool sends (headers, cookies, AIMHARDER_PROXY) against \
                 AimHarder's own page, and try again later ({})",
                self.last
            );
        }
        if self.kind == TripKind::Refused {
            format!(
                "AimHarder refused {n} sessions in a row (HTTP 403): it refuses networks by \
                 location, many outside Spain and cloud ranges (GitHub-hosted runners) among \
                 them; run from a network it accepts (in Spain), set AIMHARDER_PROXY to a proxy \
                 on one, or use a self-hosted runner. The other sessions were left untouched"
            )
        } else {
            format!(
                "AimHarder failed {n} sessions in a row ({}): it looks unavailable from here; the \
                 other sessions were left untouched, try again later",
                self.last
            )
        }
    }
}

/// Counts the sessions in a row that failed for the runner's reasons, and
/// trips once, at the limit.
pub(crate) struct Breaker {
    /// Failures in a row that trip it; 0 turns it off.
    limit: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_a_row: u32,
    tripped: Option<Trip>,
}

impl Breaker {
    /// A breaker that trips after `limit` failures in a row; 0 never trips.
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            state: Mutex::default(),
        }
    }

    /// Records how one session ended; `true` when this trips the breaker
    /// (once: later calls return `false`).
    pub(crate) fn settle(&self, settled: Settled<'_>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match settled {
            Settled::Answered => {
                state.in_a_row = 0;
                false
            }
            Settled::Refused(reason)
            | Settled::Unavailable(reason)
            | Settled::Disbelieved(reason) => {
                let kind = match settled {
                    Settled::Refused(_) => TripKind::Refused,
                    Settled::Disbelieved(_) => TripKind::Disbelieved,
                    _ => TripKind::Unavailable,
                };
                state.in_a_row += 1;
                if self.limit == 0 || state.in_a_row < self.limit || state.tripped.is_some() {
                    return false;
                }
                state.tripped = Some(Trip {
                    in_a_row: state.in_a_row,
                    last: reason.to_string(),
                    kind,
                });
                true
            }
        }
    }

    /// Returns why the breaker tripped, if it did.
    pub(crate) fn tripped(&self) -> Option<Trip> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tripped
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCKED: &str = "blocked, HTTP 403 (AimHarder refuses networks by location)";

    #[test]
    fn trips_after_n_runner_failures_in_a_row_once() {
        let breaker = Breaker::new(3);
        assert!(!breaker.settle(Settled::Refused(BLOCKED)));
        assert!(!breaker.settle(Settled::Refused(BLOCKED)));
        assert!(breaker.settle(Settled::Refused(BLOCKED)));
        assert!(!breaker.settle(Settled::Refused(BLOCKED)), "once");
        let trip = breaker.tripped().unwrap();
        assert_eq!(trip.in_a_row, 3);
        let message = trip.message();
        assert!(message.starts_with("AimHarder refused 3 sessions in a row (HTTP 403)"));
        assert!(message.contains("AIMHARDER_PROXY"));
    }

    #[test]
    fn scattered_failures_never_trip_it() {
        let breaker = Breaker::new(3);
        for _ in 0..100 {
            assert!(!breaker.settle(Settled::Refused(BLOCKED)));
            assert!(!breaker.settle(Settled::Refused(BLOCKED)));
            assert!(!breaker.settle(Settled::Answered));
        }
        assert!(breaker.tripped().is_none());
    }

    #[test]
    fn zero_turns_it_off() {
        let breaker = Breaker::new(0);
        for _ in 0..1000 {
            assert!(!breaker.settle(Settled::Unavailable("timed out")));
        }
        assert!(breaker.tripped().is_none());
    }

    #[test]
    fn an_unavailable_aimharder_is_named_as_such() {
        let trip = Trip {
            in_a_row: 10,
            last: "HTTP 503 (after 3 attempts)".into(),
            kind: TripKind::Unavailable,
        };
        let message = trip.message();
        assert!(
            message.contains("AimHarder failed 10 sessions in a row (HTTP 503 (after 3 attempts))")
        );
        assert!(!message.contains("PROXY"));
    }

    #[test]
    fn logouts_of_live_sessions_trip_it_as_refused_requests() {
        let breaker = Breaker::new(3);
        let why = "AimHarder answered logout but the session is alive";
        assert!(!breaker.settle(Settled::Disbelieved(why)));
        assert!(!breaker.settle(Settled::Disbelieved(why)));
        assert!(breaker.settle(Settled::Disbelieved(why)));
        let message = breaker.tripped().unwrap().message();
        assert!(message.contains("3 sessions in a row that its whoami says are alive"));
        assert!(message.contains("not a mass expiry"));
        assert!(message.contains("nothing was disabled"));
    }
}
