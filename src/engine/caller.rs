//! Calls to AimHarder under a run's bounds, whatever the endpoint: a slot
//! (the concurrency bound), the pace, retries with backoff and
//! `Retry-After`, a run-wide pause when AimHarder asks for one, the circuit
//! breaker, and the run's stop and deadline. Refreshes and probes both go
//! through here, so both are equally polite.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{Attempt, Transient, Whoami};
use crate::backoff::Backoff;
use crate::engine::breaker::{Breaker, Settled, Trip};

/// The attempts of one call at most, the first included.
pub(crate) const MAX_ATTEMPTS: usize = 3;
/// A `Retry-After` longer than this is not waited for in full (neither by
/// the session that got it nor by the run's pause).
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// The longest wait between two attempts of one call.
const RETRY_DELAY_CAP: Duration = Duration::from_secs(30);

/// How hard a run may press on AimHarder.
pub(crate) struct CallerSettings {
    /// Requests in flight to AimHarder at once.
    pub(crate) concurrency: usize,
    /// Requests per second; `None` for no limit.
    pub(crate) rate: Option<f64>,
    /// The ceiling of the first retry's wait; each later one doubles, up to
    /// 30 s.
    pub(crate) first_retry_delay: Duration,
    /// Sessions failing in a row for the runner's reasons that stop the
    /// run (0: never).
    pub(crate) max_consecutive_failures: u32,
}

/// What one call (its attempts included) came to.
pub(crate) enum Called<T> {
    /// Stopped before the first request went out.
    NotStarted,
    Answered {
        answer: T,
        attempts: u32,
        /// An earlier attempt may have reached AimHarder (it timed out, the
        /// connection was lost after sending, a 5xx): with `tokenUpdate` it
        /// may have rotated the token without the tool seeing the new one.
        after_unseen: bool,
    },
    /// Transient failures until the attempts ran out, or until the run
    /// stopped (or its deadline came near) before a retry.
    Failed { reason: String, attempts: u32 },
}

/// What an answer tells the circuit breaker: with the retries used up,
/// what it counts.
pub(crate) trait Answer {
    /// How the call settled; `None` when only a later step can tell (the
    /// caller then calls [`Caller::settle`] itself).
    fn settled(&self) -> Option<Settled<'_>>;
}

impl Answer for Attempt {
    fn settled(&self) -> Option<Settled<'_>> {
        match self {
            Attempt::Blocked(reason) => Some(Settled::Refused(reason)),
            // A logout is a claim: whoami tells.
            Attempt::Expired(_) => None,
            _ => Some(Settled::Answered),
        }
    }
}

impl Answer for Whoami {
    fn settled(&self) -> Option<Settled<'_>> {
        match self {
            Whoami::Blocked(reason) => Some(Settled::Refused(reason)),
            _ => Some(Settled::Answered),
        }
    }
}

/// Whoami asked to check a logout: only a refusal settles it, the rest is
/// for the session's outcome to tell.
pub(crate) struct Confirming(pub Whoami);

impl Answer for Confirming {
    fn settled(&self) -> Option<Settled<'_>> {
        match &self.0 {
            Whoami::Blocked(reason) => Some(Settled::Refused(reason)),
            _ => None,
        }
    }
}

/// A call's turn: its slot taken, the pace and any pause waited for.
pub(crate) struct Begun<'a> {
    permit: SemaphorePermit<'a>,
}

/// The gate of every call a run makes to AimHarder: a slot, the pace,
/// retries, the run-wide pause, the circuit breaker, the stop and the
/// deadline.
pub(crate) struct Caller {
    concurrency: usize,
    slots: Semaphore,
    pace: Option<DefaultDirectRateLimiter>,
    stop: CancellationToken,
    deadline: Option<Instant>,
    first_retry_delay: Duration,
    /// No new request starts before this: AimHarder asked the run to wait.
    paused_until: Mutex<Option<Instant>>,
    breaker: Breaker,
}

impl Caller {
    /// A caller under `settings`: no request starts once `stop` is cancelled,
    /// and no retry waits past `deadline`.
    pub(crate) fn new(
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
            paused_until: Mutex::new(None),
            breaker: Breaker::new(settings.max_consecutive_failures),
        }
    }

    /// Records how a call ended; the breaker tripping stops the run: no
    /// new session and no new retry starts, those in flight finish.
    pub(crate) fn settle(&self, settled: Settled<'_>) {
        if self.breaker.settle(settled) {
            if let Some(trip) = self.breaker.tripped() {
                tracing::warn!("circuit breaker: {}", trip.message());
            }
            self.stop.cancel();
        }
    }

    /// Returns why the circuit breaker stopped the run, if it did.
    pub(crate) fn tripped(&self) -> Option<Trip> {
        self.breaker.tripped()
    }

    /// Requests in flight at most.
    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The run's stop: once cancelled, no new request starts.
    pub(crate) fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Waits for a free slot, the pace and any pause, for a call's first
    /// attempt; `None` when the run stops first. Between this and
    /// [`Caller::call_from`] the caller may check what it is about to call
    /// (a claim's lease) while the slot is its own.
    pub(crate) async fn begin(&self) -> Option<Begun<'_>> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => None,
            permit = self.start_request() => permit.map(|permit| Begun { permit }),
        }
    }

    /// Waits for its turn ([`Caller::begin`]), then calls ([`Caller::call_from`]).
    pub(crate) async fn call<T, F, Fut>(&self, request: F) -> Called<T>
    where
        T: Answer,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Transient>>,
    {
        match self.begin().await {
            Some(begun) => self.call_from(begun, request).await,
            None => Called::NotStarted,
        }
    }

    /// Runs `request` until it answers, its first attempt in `begun`'s
    /// slot, retrying transient failures with backoff (at least
    /// `Retry-After`, capped) while attempts remain and the run is neither
    /// stopping nor past its deadline. The circuit breaker hears how it
    /// ended: a refusal and the retries used up count, an answer resets the
    /// count, and so does a retry cut short by a stop (the run is ending
    /// anyway, not failing).
    pub(crate) async fn call_from<T, F, Fut>(&self, begun: Begun<'_>, mut request: F) -> Called<T>
    where
        T: Answer,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Transient>>,
    {
        let mut backoff = Backoff::new(self.first_retry_delay, RETRY_DELAY_CAP, MAX_ATTEMPTS);
        let stopping = |reason: &str, attempts| {
            self.settle(Settled::Answered);
            Called::Failed {
                reason: format!("{reason} (no retry: the run is stopping)"),
                attempts,
            }
        };
        let mut attempts = 0u32;
        let mut after_unseen = false;
        let mut last_reason = String::new();
        let mut permit = Some(begun.permit);
        loop {
            let permit = match permit.take() {
                Some(permit) => permit,
                None => {
                    let next = tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => None,
                        permit = self.start_request() => permit,
                    };
                    match next {
                        Some(permit) => permit,
                        None => return stopping(&last_reason, attempts),
                    }
                }
            };
            attempts += 1;
            let answer = request().await;
            drop(permit);
            let Transient {
                reason,
                retry_after,
                status,
                reached,
            } = match answer {
                Ok(answer) => {
                    if let Some(settled) = answer.settled() {
                        self.settle(settled);
                    }
                    return Called::Answered {
                        answer,
                        attempts,
                        after_unseen,
                    };
                }
                Err(transient) => transient,
            };
            after_unseen |= reached;
            // Whether or not this session tries again: the others wait too.
            if let (Some(wait), Some(429 | 503)) = (retry_after, status) {
                self.pause_run(wait);
            }
            let Some(jittered) = backoff.next_delay() else {
                let reason = format!("{reason} (after {attempts} attempts)");
                self.settle(Settled::Unavailable(&reason));
                return Called::Failed { reason, attempts };
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

    /// A 429 or 503 with `Retry-After`: no new request of the run starts
    /// until it passes (capped), then the pace resumes.
    fn pause_run(&self, wait: Duration) {
        let until = Instant::now() + wait.min(RETRY_AFTER_CAP);
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            tracing::warn!(?wait, "AimHarder asked to wait: the whole run pauses");
            *paused = Some(until);
        }
    }

    /// Waits for a free slot, the pace, and any pause; `None` if stopped
    /// meanwhile.
    async fn start_request(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        if let Some(pace) = &self.pace {
            pace.until_ready().await;
        }
        loop {
            let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match paused {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        (!self.stop.is_cancelled()).then_some(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Test answers: never a refusal.
    impl Answer for () {
        fn settled(&self) -> Option<Settled<'_>> {
            Some(Settled::Answered)
        }
    }

    impl Answer for Instant {
        fn settled(&self) -> Option<Settled<'_>> {
            Some(Settled::Answered)
        }
    }

    fn caller() -> Caller {
        let settings = CallerSettings {
            concurrency: 4,
            rate: None,
            first_retry_delay: Duration::from_millis(10),
            max_consecutive_failures: 3,
        };
        Caller::new(&settings, CancellationToken::new(), None)
    }

    /// Session A gets `status` with `Retry-After: wait` once; session B
    /// starts a second later. When did B's request go out, after the start?
    async fn second_session_starts_after(status: u16, wait: Duration) -> Duration {
        let caller = caller();
        let t0 = Instant::now();
        let tries = AtomicU32::new(0);
        let a = caller.call(|| async {
            if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Transient {
                    reason: format!("HTTP {status}"),
                    retry_after: Some(wait),
                    status: Some(status),
                    reached: status >= 500,
                })
            } else {
                Ok(())
            }
        });
        let b = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            caller
                .call(|| async { Ok::<_, Transient>(Instant::now()) })
                .await
        };
        let (a, b) = tokio::join!(a, b);
        assert!(matches!(a, Called::Answered { attempts: 2, .. }));
        match b {
            Called::Answered { answer, .. } => answer - t0,
            _ => panic!("the second session was not answered"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_or_503_with_retry_after_pauses_every_new_request() {
        for status in [429, 503] {
            let b = second_session_starts_after(status, Duration::from_secs(5)).await;
            assert!(b >= Duration::from_secs(5), "{status}: B went out at {b:?}");
            assert!(
                b < Duration::from_secs(6),
                "{status}: B waited too long: {b:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_pause_is_capped_and_other_statuses_pause_only_their_session() {
        let b = second_session_starts_after(429, Duration::from_secs(3600)).await;
        assert!(
            b >= RETRY_AFTER_CAP && b < RETRY_AFTER_CAP + Duration::from_secs(1),
            "{b:?}"
        );
        let b = second_session_starts_after(500, Duration::from_secs(5)).await;
        assert!(b < Duration::from_secs(2), "a 500 paused the run: {b:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_stops_new_requests() {
        let caller = caller();
        caller.settle(Settled::Refused("blocked, HTTP 403"));
        caller.settle(Settled::Answered);
        caller.settle(Settled::Refused("blocked, HTTP 403"));
        caller.settle(Settled::Refused("blocked, HTTP 403"));
        assert!(!caller.stop().is_cancelled(), "not three in a row yet");
        caller.settle(Settled::Refused("blocked, HTTP 403"));
        assert!(caller.stop().is_cancelled());
        assert_eq!(caller.tripped().unwrap().in_a_row, 3);
        let called = caller.call(|| async { Ok::<_, Transient>(()) }).await;
        assert!(matches!(called, Called::NotStarted));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_on_the_last_attempt_still_pauses_the_run() {
        let caller = caller();
        let t0 = Instant::now();
        let a = caller
            .call(|| async {
                Err::<(), _>(Transient {
                    reason: "HTTP 429".into(),
                    retry_after: Some(Duration::from_secs(20)),
                    status: Some(429),
                    reached: false,
                })
            })
            .await;
        assert!(matches!(a, Called::Failed { attempts: 3, .. }));
        let b = caller
            .call(|| async { Ok::<_, Transient>(Instant::now()) })
            .await;
        let Called::Answered { answer, .. } = b else {
            panic!("not answered")
        };
        // A's last 429 came at 40 s (two waits of 20 s); B waits 20 s more.
        assert!(answer - t0 >= Duration::from_secs(60), "{:?}", answer - t0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_an_attempt_that_may_have_reached_aimharder_says_so() {
        let caller = caller();
        for (reached, unseen) in [(true, true), (false, false)] {
            let tries = AtomicU32::new(0);
            let called = caller
                .call(|| async {
                    if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(Transient {
                            reason: "timed out".into(),
                            retry_after: None,
                            status: None,
                            reached,
                        })
                    } else {
                        Ok(())
                    }
                })
                .await;
            assert!(
                matches!(called, Called::Answered { after_unseen, .. } if after_unseen == unseen)
            );
        }
    }
}
