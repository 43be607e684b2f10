//! `--jitter`: a random wait before a scheduled run's first request, as
//! certbot's renew does under cron, so that the installs that copied one
//! schedule (and GitHub's queue at the top of the hour) do not all reach
//! AimHarder in the same minute.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits a random time between zero and `most`, drawn evenly; `false` if
/// `stop` ended the wait first (nothing is to start then).
pub(crate) async fn wait(most: Duration, stop: &CancellationToken) -> bool {
    let wait = most.mul_f64(fastrand::f64());
    tracing::info!(
        "waiting {} (--jitter {}) before the first request",
        humantime::format_duration(Duration::from_secs(wait.as_secs())),
        humantime::format_duration(most)
    );
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_spread_between_zero_and_the_jitter() {
        // Seeded: the draws are the same on every run of the test.
        fastrand::seed(19);
        let most = Duration::from_secs(600);
        let stop = CancellationToken::new();
        let mut waits = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            assert!(wait(most, &stop).await);
            waits.push(started.elapsed());
        }
        assert!(waits.iter().all(|w| *w <= most), "{waits:?}");
        // Spread over the whole range, not bunched at one end.
        for tenth in 0..10 {
            let (low, high) = (most * tenth / 10, most * (tenth + 1) / 10);
            assert!(
                waits.iter().any(|w| (low..high).contains(w)),
                "none in {low:?}..{high:?}: {waits:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_wait_at_once() {
        fastrand::seed(19);
        let stop = CancellationToken::new();
        let started = Instant::now();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.cancel();
        });
        assert!(!wait(Duration::from_secs(3600), &stop).await);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(
            !wait(Duration::from_secs(3600), &stop).await,
            "already stopped"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
