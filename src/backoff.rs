//! Retry delays: exponential ceilings from backon, spread with full jitter so
//! parallel workers that failed together do not retry together; and a time
//! budget for retrying one request.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Retry delays: each wait is a random fraction of an exponential ceiling.
pub(crate) struct Backoff {
    ceilings: ExponentialBackoff,
}

impl Backoff {
    /// Delays for at most `attempts` attempts in all (so `attempts - 1` retries).
    pub(crate) fn new(first: Duration, cap: Duration, attempts: usize) -> Self {
        let ceilings = ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(cap)
            .with_max_times(attempts.saturating_sub(1))
            .build();
        Self { ceilings }
    }

    /// The wait before the next retry, or `None` when attempts are used up.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        self.ceilings
            .next()
            .map(|ceiling| ceiling.mul_f64(fastrand::f64()))
    }
}

/// Retries of one request for as long as a time budget lasts, counted from
/// the first attempt on tokio's clock.
pub(crate) struct RetryBudget {
    backoff: Backoff,
    started: tokio::time::Instant,
    limit: Duration,
    attempts: usize,
}

impl RetryBudget {
    /// Starts a budget of `limit` from now, counting the attempt about to be
    /// made; the waits grow from 200 ms to at most 5 s.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            backoff: Backoff::new(
                Duration::from_millis(200),
                Duration::from_secs(5),
                usize::MAX,
            ),
            started: tokio::time::Instant::now(),
            limit,
            attempts: 1,
        }
    }

    /// The wait before the next attempt: the server's `Retry-After` when it
    /// gave one, else the backoff. `None` when waiting would end past the
    /// budget: better to say so now than after a wait that cannot help.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let backoff = self.backoff.next_delay()?;
        let delay = retry_after.unwrap_or(backoff);
        if self.started.elapsed().saturating_add(delay) > self.limit {
            return None;
        }
        self.attempts += 1;
        Some(delay)
    }

    /// Attempts made (or started) so far.
    pub(crate) fn attempts(&self) -> usize {
        self.attempts
    }

    /// Returns the time since the first attempt.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_budget_retries_until_its_time_is_spent() {
        let mut budget = RetryBudget::new(Duration::from_secs(30));
        let mut waited = Duration::ZERO;
        while let Some(delay) = budget.next_delay(None) {
            assert!(delay <= Duration::from_secs(5));
            tokio::time::sleep(delay).await;
            waited += delay;
        }
        assert!(waited <= Duration::from_secs(30), "{waited:?}");
        // Full jitter averages half the 5 s ceiling: far more than 3 tries.
        assert!(budget.attempts() > 5, "{}", budget.attempts());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_one_past_the_budget_ends_it() {
        let mut budget = RetryBudget::new(Duration::from_secs(30));
        assert_eq!(
            budget.next_delay(Some(Duration::from_secs(20))),
            Some(Duration::from_secs(20))
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(budget.next_delay(Some(Duration::from_secs(11))), None);
        assert_eq!(
            budget.next_delay(Some(Duration::from_secs(10))),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn stops_after_the_attempts_and_stays_under_the_ceilings() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(150), 3);
        let first = b.next_delay().unwrap();
        let second = b.next_delay().unwrap();
        assert!(first <= Duration::from_millis(100));
        assert!(second <= Duration::from_millis(150));
        assert!(b.next_delay().is_none());
    }
}
