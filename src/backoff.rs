//! Retry delays: exponential ceilings from backon, spread with full jitter so
//! parallel workers that failed together do not retry together.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

pub struct Backoff {
    ceilings: ExponentialBackoff,
}

impl Backoff {
    /// Delays for at most `attempts` attempts in all (so `attempts - 1` retries).
    pub fn new(first: Duration, cap: Duration, attempts: usize) -> Self {
        let ceilings = ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(cap)
            .with_max_times(attempts.saturating_sub(1))
            .build();
        Self { ceilings }
    }

    /// The wait before the next retry, or `None` when attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.ceilings
            .next()
            .map(|ceiling| ceiling.mul_f64(fastrand::f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
