//! Calls to AimHarder under a run's bounds, whatever the endpoint: a slot
//! (the concurrency bound), the pace, retries with backoff and
//! `Retry-After`, and the run's stop and deadline. Refreshes and probes both
//! go through here, so both are equally polite.

use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::Transient;
use crate::backoff::Backoff;

pub const MAX_ATTEMPTS: usize = 3;
/// A `Retry-After` longer than this is not waited for in full.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// The longest wait between two attempts of one call.
const RETRY_DELAY_CAP: Duration = Duration::from_secs(30);

/// How hard a run may press on AimHarder.
pub struct CallerSettings {
    pub concurrency: usize,
    /// Requests per second; `None` for no limit.
    pub rate: Option<f64>,
    pub first_retry_delay: Duration,
}

/// What one call (its attempts included) came to.
pub enum Called<T> {
    /// Stopped before the first request went out.
    NotStarted,
    Answered {
        answer: T,
        attempts: u32,
    },
    /// Transient failures until the attempts, the run or its deadline ran out.
    GaveUp {
        reason: String,
        attempts: u32,
    },
}

pub struct Caller {
    concurrency: usize,
    slots: Semaphore,
    pace: Option<DefaultDirectRateLimiter>,
    stop: CancellationToken,
    deadline: Option<Instant>,
    first_retry_delay: Duration,
}

impl Caller {
    pub fn new(
        settings: &CallerSettings,
        stop: CancellationToken,
        deadline: Option<Instant>,
    ) -> Self {
        let pace = settings.rate.filter(|r| *r > 0.0).map(|rate| {
            // One token at a time: a steady pace, no initial burst.
            let period = Duration::from_secs_f64(1.0 / rate);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::MIN);
            RateLimiter::direct(quota)
        });
        Self {
            concurrency: settings.concurrency.max(1),
            slots: Semaphore::new(settings.concurrency.max(1)),
            pace,
            stop,
            deadline,
            first_retry_delay: settings.first_retry_delay,
        }
    }

    /// Requests in flight at most.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The run's stop: once cancelled, no new request starts.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Runs `request` until it answers, retrying transient failures with
    /// backoff (at least `Retry-After`, capped) while attempts remain and
    /// the run is neither stopping nor past its deadline.
    pub async fn call<T, F, Fut>(&self, mut request: F) -> Called<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Transient>>,
    {
        let mut backoff = Backoff::new(self.first_retry_delay, RETRY_DELAY_CAP, MAX_ATTEMPTS);
        let stopping = |reason: &str, attempts| Called::GaveUp {
            reason: format!("{reason} (no retry: the run is stopping)"),
            attempts,
        };
        let mut attempts = 0u32;
        let mut last_reason = String::new();
        loop {
            let permit = tokio::select! {
                biased;
                _ = self.stop.cancelled() => None,
                permit = self.start_request() => permit,
            };
            let Some(permit) = permit else {
                return if attempts == 0 {
                    Called::NotStarted
                } else {
                    stopping(&last_reason, attempts)
                };
            };
            attempts += 1;
            let answer = request().await;
            drop(permit);
            let Transient {
                reason,
                retry_after,
            } = match answer {
                Ok(answer) => return Called::Answered { answer, attempts },
                Err(transient) => transient,
            };
            let Some(jittered) = backoff.next_delay() else {
                return Called::GaveUp {
                    reason: format!("{reason} (after {attempts} attempts)"),
                    attempts,
                };
            };
            let delay = retry_after.map_or(jittered, |ra| ra.min(RETRY_AFTER_CAP).max(jittered));
            let wake = Instant::now() + delay;
            if self.stop.is_cancelled() || self.deadline.is_some_and(|d| wake >= d) {
                return stopping(&reason, attempts);
            }
            tracing::debug!(%reason, ?delay, attempt = attempts, "AimHarder call failed; retrying");
            tokio::select! {
                _ = self.stop.cancelled() => return stopping(&reason, attempts),
                _ = tokio::time::sleep_until(wake) => {}
            }
            last_reason = reason;
        }
    }

    /// Waits for a free slot, then for the pace; `None` if stopped meanwhile.
    async fn start_request(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        if let Some(pace) = &self.pace {
            pace.until_ready().await;
        }
        (!self.stop.is_cancelled()).then_some(permit)
    }
}
