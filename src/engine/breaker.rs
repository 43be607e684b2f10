//! The circuit breaker: when AimHarder fails this many sessions in a row for
//! reasons that are the runner's, not the session's (a refused network,
//! timeouts, 5xx after retries), the run stops starting sessions. Going on
//! would stamp the same error on every row and hammer a service that
//! refuses us. A session that ends any other way (refreshed, expired, an
//! unexpected page) shows AimHarder answers, and resets the count.

use std::sync::Mutex;

/// How one session ended, as far as the breaker cares.
pub enum Settled<'a> {
    /// AimHarder answered about the session.
    Answered,
    /// AimHarder refused this runner (HTTP 403): the reason as recorded.
    Refused(&'a str),
    /// AimHarder unavailable through every retry (timeouts, connection
    /// errors, 5xx): the reason as recorded.
    Unavailable(&'a str),
}

/// Why the breaker tripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub in_a_row: u32,
    /// The last failure's reason, as the sessions' errors give it.
    pub last: String,
    /// The last failure was a refusal (403), not an unavailable AimHarder.
    pub refused: bool,
}

impl Trip {
    /// One line naming AimHarder, what it did, and what to do.
    pub fn message(&self) -> String {
        let n = self.in_a_row;
        if self.refused {
            format!(
                "AimHarder refused {n} sessions in a row (HTTP 403): it refuses this network, as it \
                 does some cloud IP ranges (GitHub-hosted runners among them); run from another \
                 network, set AIMHARDER_PROXY, or use a self-hosted runner. The other sessions \
                 were left untouched"
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

pub struct Breaker {
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
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            state: Mutex::default(),
        }
    }

    /// Records how one session ended; `true` when this trips the breaker
    /// (once: later calls return `false`).
    pub fn settle(&self, settled: Settled<'_>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match settled {
            Settled::Answered => {
                state.in_a_row = 0;
                false
            }
            Settled::Refused(reason) | Settled::Unavailable(reason) => {
                let refused = matches!(settled, Settled::Refused(_));
                state.in_a_row += 1;
                if self.limit == 0 || state.in_a_row < self.limit || state.tripped.is_some() {
                    return false;
                }
                state.tripped = Some(Trip {
                    in_a_row: state.in_a_row,
                    last: reason.to_string(),
                    refused,
                });
                true
            }
        }
    }

    pub fn tripped(&self) -> Option<Trip> {
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

    const BLOCKED: &str = "blocked, HTTP 403 (AimHarder blocks some cloud IP ranges)";

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
            refused: false,
        };
        let message = trip.message();
        assert!(
            message.contains("AimHarder failed 10 sessions in a row (HTTP 503 (after 3 attempts))")
        );
        assert!(!message.contains("PROXY"));
    }
}
