//! The claims a run holds, by the runner's steady clock: when each one's
//! lease ends (counted from when the request that took or renewed it was
//! sent, so never later than the database's), and whether its call has
//! started. The claimer claims against the number not started yet, the
//! pipeline checks a lease right before its call, a renewer keeps the
//! leases of long calls, and the run gives back what never started.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

struct Hold {
    until: Instant,
    started: bool,
}

/// The claims a run holds, shared by the claimer, the pipeline, the
/// renewer and the run's give-back.
pub(crate) struct Holds {
    lease: Duration,
    held: Mutex<HashMap<String, Hold>>,
    /// Calls started so far, for the claimer's measure of the pace.
    starts: AtomicU64,
    /// A hold started, ended or was taken: the claimer looks again.
    changed: Notify,
}

impl Holds {
    /// No claim held yet; each claim will last `lease`.
    pub(crate) fn new(lease: Duration) -> Self {
        Self {
            lease,
            held: Mutex::new(HashMap::new()),
            starts: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// Returns how long a claim lasts from the request that took or renewed
    /// it.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hold>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `ids` were claimed (or claimed again) by a request sent at `sent`.
    pub(crate) fn claimed<'a>(&self, ids: impl IntoIterator<Item = &'a str>, sent: Instant) {
        let until = sent + self.lease;
        let mut held = self.held();
        for id in ids {
            let hold = held.entry(id.to_string()).or_insert(Hold {
                until,
                started: false,
            });
            hold.until = until;
        }
    }

    /// Whether the claim on `id` still has at least half its lease to go:
    /// enough for a call, which the renewer then keeps.
    pub(crate) fn fresh(&self, id: &str) -> bool {
        let now = Instant::now();
        self.held()
            .get(id)
            .is_some_and(|h| h.until > now + self.lease / 2)
    }

    /// The call for `id` starts now.
    pub(crate) fn start(&self, id: &str) {
        if let Some(hold) = self.held().get_mut(id) {
            hold.started = true;
        }
        self.starts.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// The claim on `id` is over: its result written or dropped, or the
    /// claim lost.
    pub(crate) fn done(&self, id: &str) {
        self.held().remove(id);
        self.changed.notify_waiters();
    }

    /// Claims held whose call has not started.
    pub(crate) fn unstarted(&self) -> usize {
        self.held().values().filter(|h| !h.started).count()
    }

    /// The ids of the claims held whose call has not started, which the run
    /// gives back.
    pub(crate) fn unstarted_ids(&self) -> Vec<String> {
        self.held()
            .iter()
            .filter(|(_, h)| !h.started)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Calls started so far.
    pub(crate) fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    /// Waits until a hold starts or ends.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Claims with less than three quarters of their lease to go: the
    /// renewer's next request.
    pub(crate) fn to_renew(&self) -> Vec<String> {
        let soon = Instant::now() + self.lease * 3 / 4;
        self.held()
            .iter()
            .filter(|(_, h)| h.until < soon)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The renewal sent at `sent` confirmed `kept` of `asked`; the others
    /// are no longer this run's (taken over after a lapse).
    pub(crate) fn renewed(&self, asked: &[String], kept: &[String], sent: Instant) {
        let until = sent + self.lease;
        let mut held = self.held();
        for id in asked {
            if kept.contains(id) {
                if let Some(hold) = held.get_mut(id) {
                    hold.until = until;
                }
            } else if let Some(hold) = held.get_mut(id) {
                // Lost: its lease is over, so the check before the call
                // claims again or skips it.
                hold.until = sent;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leases_age_renew_and_are_lost() {
        let holds = Holds::new(Duration::from_secs(60));
        holds.claimed(["a", "b"], Instant::now());
        assert!(holds.fresh("a"));
        assert_eq!(holds.unstarted(), 2);
        holds.start("a");
        assert_eq!(holds.unstarted_ids(), ["b"]);
        assert!(holds.to_renew().is_empty(), "all fresh");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!holds.fresh("a"), "less than half the lease left");
        let mut due = holds.to_renew();
        due.sort();
        assert_eq!(due, ["a", "b"]);
        holds.renewed(&due, &["a".to_string()], Instant::now());
        assert!(holds.fresh("a"), "renewed");
        assert!(!holds.fresh("b"), "lost to another run");
        holds.done("a");
        assert!(!holds.fresh("a"));
        assert_eq!(holds.starts(), 1);
    }
}
