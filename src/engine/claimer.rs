//! Just-in-time claims: the due rows are claimed a batch at a time, only
//! as many as can start within a short horizon, so that a claimed row waits
//! a small fraction of its lease and a killed runner strands few rows.
//!
//! How many: the pace (`--rate`, or the pace calls actually start at when
//! that is slower or there is no limit) times the horizon, at least one and
//! at most four times the concurrency. Before any call has started that is
//! twice the concurrency (or the rate's share). A claim is sent once that
//! many minus the rows claimed and not started yet reaches a quarter of it,
//! so claims cost few requests and the calls never wait on one.
//!
//! Claims go one at a time, so while one is on its way the calls live on
//! what is claimed already: with Supabase far away (a claim taking 120 ms,
//! say) the most may rise to three claims' worth of calls, or the calls
//! would wait for claims; never past eight times the concurrency, so that a
//! slow database (claims taking seconds) does not make the run hold
//! thousands of rows.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::session::SessionRow;
use crate::engine::holds::Holds;
use crate::engine::taking::RowSource;
use crate::supabase::claims::ClaimSpec;
use crate::supabase::pager::Pager;
use crate::supabase::rest::StoreError;
use crate::supabase::store::Store;

/// The longest horizon: rows claimed are those that can start within it.
const HORIZON: Duration = Duration::from_secs(2);
/// How far back the pace calls start at is measured.
const PACE_WINDOW: Duration = Duration::from_secs(2);
/// How often the claimer looks again while nothing starts or ends.
const TICK: Duration = Duration::from_millis(100);

/// How many rows to keep claimed ahead of the calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Horizon {
    /// Requests in flight to AimHarder at once.
    pub(crate) concurrency: usize,
    /// `--rate`, requests per second; `None`: no limit.
    pub(crate) rate: Option<f64>,
    /// A small fraction of the lease, at most [`HORIZON`].
    pub(crate) horizon: Duration,
}

impl Horizon {
    /// The horizon of a run at `concurrency` and `rate` whose claims last
    /// `lease`: an eighth of the lease, at most 2 s.
    pub(crate) fn new(concurrency: usize, rate: Option<f64>, lease: Duration) -> Self {
        Self {
            concurrency: concurrency.max(1),
            rate,
            horizon: HORIZON.min(lease / 8),
        }
    }

    /// Rows to hold claimed and not started, given the pace calls start
    /// at (`None` until measured) and how long a claim takes.
    pub(crate) fn target(&self, measured: Option<f64>, claim_takes: Duration) -> usize {
        let pace_now = measured.or(self.rate).unwrap_or(0.0);
        let in_flight = (3.0 * pace_now * claim_takes.as_secs_f64()).ceil() as usize;
        let most = (4 * self.concurrency).max(in_flight.min(8 * self.concurrency));
        let pace = match (self.rate, measured) {
            (Some(rate), Some(seen)) => rate.min(seen),
            (Some(rate), None) => rate,
            (None, Some(seen)) => seen,
            (None, None) => return 2 * self.concurrency,
        };
        let rows = (pace * self.horizon.as_secs_f64()).ceil();
        (rows as usize).clamp(1, most)
    }

    /// The smallest claim worth a request.
    pub(crate) fn batch(target: usize) -> usize {
        (target / 4).max(1)
    }
}

/// Claimed rows, in due order, as the pipeline takes them.
pub(crate) struct Claimer {
    rx: mpsc::Receiver<Result<SessionRow, StoreError>>,
    /// Every due row was claimed or refused (or the limit reached).
    exhausted: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Claimer {
    /// Claims rows of `due` for `spec` under `plan`, at most `limit` in
    /// all, until `stop`.
    pub(crate) fn start(
        store: Store,
        mut due: Pager,
        spec: ClaimSpec,
        holds: Arc<Holds>,
        plan: Horizon,
        limit: Option<u64>,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4 * plan.concurrency + 1);
        let exhausted = Arc::new(AtomicBool::new(false));
        let done = exhausted.clone();
        let task = tokio::spawn(async move {
            let mut pace = Pace::default();
            let mut claim_takes = Ewma::default();
            let mut claimed = 0u64;
            loop {
                if stop.is_cancelled() {
                    break;
                }
                let left = limit.map_or(u64::MAX, |l| l.saturating_sub(claimed));
                if left == 0 {
                    done.store(true, Ordering::SeqCst);
                    break;
                }
                let target = plan.target(pace.measure(holds.starts()), claim_takes.get());
                let unstarted = holds.unstarted();
                let want = target.saturating_sub(unstarted);
                if unstarted > 0 && want < Horizon::batch(target) {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = holds.changed() => {}
                        _ = tokio::time::sleep(TICK) => {}
                    }
                    continue;
                }
                let want = (want.max(1) as u64).min(left) as usize;
                let mut rows = Vec::with_capacity(want);
                let mut read_error = None;
                while rows.len() < want {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        next = due.next() => match next {
                            Some(Ok(row)) => rows.push(row),
                            Some(Err(e)) => {
                                read_error = Some(e);
                                break;
                            }
                            None => break,
                        },
                    }
                }
                let end = rows.len() < want && read_error.is_none() && !stop.is_cancelled();
                if stop.is_cancelled() {
                    break;
                }
                let sent = Instant::now();
                let got = claim_in_order(&store, &rows, &spec, &holds).await;
                claim_takes.add(sent.elapsed());
                match got {
                    Ok(got) => {
                        claimed += got.len() as u64;
                        for row in got {
                            if tx.send(Ok(row)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
                if let Some(e) = read_error {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
                if end {
                    done.store(true, Ordering::SeqCst);
                    break;
                }
            }
            due.finish().await;
        });
        Self {
            rx,
            exhausted,
            task,
        }
    }

    /// True once every due row was claimed (or refused) and handed over.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst) && self.rx.is_empty()
    }

    /// Stops claiming; rows claimed and not taken stay in the holds, not
    /// started, for the run to give back.
    pub(crate) async fn finish(mut self) {
        self.rx.close();
        while self.rx.recv().await.is_some() {}
        let _ = (&mut self.task).await;
    }
}

impl RowSource for Claimer {
    fn poll_row(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<SessionRow, StoreError>>> {
        self.rx.poll_recv(cx)
    }
}

/// Claims `batch` and returns the claimed rows in the batch's order (the
/// due order); rows another run holds, or refreshed since, are left out.
async fn claim_in_order(
    store: &Store,
    batch: &[SessionRow],
    spec: &ClaimSpec,
    holds: &Holds,
) -> Result<Vec<SessionRow>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
    let sent = Instant::now();
    let mut claimed = store.claim(&ids, spec).await?;
    holds.claimed(claimed.iter().map(|r| r.id.as_str()), sent);
    claimed.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    Ok(claimed)
}

/// How long claims take, smoothed.
#[derive(Default)]
struct Ewma {
    mean: Option<Duration>,
}

impl Ewma {
    fn add(&mut self, sample: Duration) {
        self.mean = Some(match self.mean {
            Some(mean) => mean.mul_f64(0.7) + sample.mul_f64(0.3),
            None => sample,
        });
    }

    fn get(&self) -> Duration {
        self.mean.unwrap_or_default()
    }
}

/// The pace calls start at, over the last [`PACE_WINDOW`].
#[derive(Default)]
struct Pace {
    samples: VecDeque<(Instant, u64)>,
}

impl Pace {
    /// Records `starts` now; calls per second over the window, once a
    /// quarter of it has been seen.
    fn measure(&mut self, starts: u64) -> Option<f64> {
        let now = Instant::now();
        self.samples.push_back((now, starts));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > PACE_WINDOW)
        {
            self.samples.pop_front();
        }
        let (t0, s0) = *self.samples.front()?;
        let span = now.duration_since(t0);
        (span >= PACE_WINDOW / 4 && starts > 0).then(|| (starts - s0) as f64 / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_follows_the_pace_and_stays_near_the_concurrency() {
        let lease = Duration::from_secs(180);
        let near = Duration::from_millis(3);
        // The defaults: 4 at a time, 2 per second: 4 rows (2 s of pace).
        assert_eq!(Horizon::new(4, Some(2.0), lease).target(None, near), 4);
        // A wide concurrency at a slow pace claims by the pace, not by
        // the concurrency: the rows would wait minutes otherwise.
        assert_eq!(Horizon::new(1024, Some(2.0), lease).target(None, near), 4);
        assert_eq!(Horizon::new(1024, Some(0.05), lease).target(None, near), 1);
        // No limit: twice the concurrency until calls start, then what
        // starts in the horizon, at most four times the concurrency.
        let free = Horizon::new(32, None, lease);
        assert_eq!(free.target(None, near), 64);
        assert_eq!(free.target(Some(10.0), near), 20);
        assert_eq!(free.target(Some(640.0), near), 128);
        // Supabase 120 ms away: three claims' worth of calls, or the calls
        // would wait for the claims.
        assert_eq!(free.target(Some(640.0), Duration::from_millis(130)), 250);
        // A database that takes a second per claim: eight times the
        // concurrency at most.
        assert_eq!(free.target(Some(2500.0), Duration::from_secs(1)), 256);
        // Slower than the rate: the measured pace wins.
        assert_eq!(
            Horizon::new(4, Some(100.0), lease).target(Some(1.0), near),
            2
        );
        // A short lease shortens the horizon with it.
        assert_eq!(
            Horizon::new(4, Some(1.0), Duration::from_secs(2)).target(None, near),
            1
        );
        assert_eq!(Horizon::batch(128), 32);
        assert_eq!(Horizon::batch(2), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_is_measured_over_a_window() {
        let mut pace = Pace::default();
        assert_eq!(pace.measure(0), None);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(pace.measure(5), None, "too short to tell");
        tokio::time::advance(Duration::from_millis(750)).await;
        let seen = pace.measure(20).unwrap();
        assert!((seen - 20.0).abs() < 1e-9, "{seen}");
        tokio::time::advance(Duration::from_secs(3)).await;
        pace.measure(20);
        tokio::time::advance(Duration::from_secs(1)).await;
        let seen = pace.measure(30).unwrap();
        assert!((seen - 10.0).abs() < 1e-9, "{seen}");
    }
}
