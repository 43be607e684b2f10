//! SIGINT and SIGTERM, for every command, from before any work (the
//! journal replay included) to the exit.
//!
//! The first signal stops the run: nothing new starts, what runs finishes
//! (a call and its write). A signal once the run is stopping anyway (the
//! breaker tripped, writes failed, the first signal) ends it now: calls in
//! flight are dropped, results not yet written go to the journal, and the
//! process exits within [`GRACE`] whatever Supabase does. Later signals
//! change nothing: they are heard, so none kills the process halfway
//! through writing its journal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long a run may take to end once aborted: enough to journal what it
/// holds and close its output, never a Supabase retry.
pub(crate) const GRACE: Duration = Duration::from_millis(1500);

/// A run's stop and abort, and what stopped it.
#[derive(Clone)]
pub(crate) struct Stopping {
    /// Start nothing new; finish what runs.
    pub(crate) stop: CancellationToken,
    /// End now; journal what is held.
    pub(crate) abort: CancellationToken,
    why: Arc<Mutex<Option<&'static str>>>,
}

impl Stopping {
    /// Listens for signals from now on (the handlers are installed before
    /// this returns, so no signal in between is missed).
    pub(crate) fn install() -> Self {
        let stopping = Self {
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            why: Arc::default(),
        };
        let mut signals = Signals::new();
        let watched = stopping.clone();
        tokio::spawn(async move {
            loop {
                let name = signals.next().await;
                watched.on_signal(name);
            }
        });
        stopping
    }

    fn on_signal(&self, name: &'static str) {
        if self.abort.is_cancelled() {
            tracing::warn!("{name} again: the run is already ending");
        } else if self.stop.is_cancelled() {
            tracing::warn!("{name}: ending now, without waiting for requests in flight");
            self.abort.cancel();
        } else {
            tracing::warn!("{name}: starting nothing new, finishing requests in flight");
            self.stopped_by(name);
        }
    }

    /// Stops the run for `reason` (the first reason given is kept).
    pub(crate) fn stopped_by(&self, reason: &'static str) {
        if let Ok(mut why) = self.why.lock() {
            why.get_or_insert(reason);
        }
        self.stop.cancel();
    }

    /// What stopped the run by signal or deadline, if anything did.
    pub(crate) fn why(&self) -> Option<&'static str> {
        *self.why.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves [`GRACE`] after the abort: the latest the run may end.
    pub(crate) async fn grace_over(&self) {
        self.abort.cancelled().await;
        tokio::time::sleep(GRACE).await;
    }
}

/// SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next signal's name (waits for ever if none can be listened to).
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let int = async {
                match self.int.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let term = async {
                match self.term.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = int => "interrupted (SIGINT)",
                _ = term => "terminated (SIGTERM)",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted (SIGINT)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopping() -> Stopping {
        Stopping {
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            why: Arc::default(),
        }
    }

    #[test]
    fn the_first_signal_stops_the_second_aborts_and_later_ones_are_harmless() {
        let s = stopping();
        s.on_signal("terminated (SIGTERM)");
        assert!(s.stop.is_cancelled() && !s.abort.is_cancelled());
        assert_eq!(s.why(), Some("terminated (SIGTERM)"));
        s.on_signal("interrupted (SIGINT)");
        assert!(s.abort.is_cancelled());
        s.on_signal("interrupted (SIGINT)");
        assert_eq!(s.why(), Some("terminated (SIGTERM)"));
    }

    #[test]
    fn a_signal_after_the_run_stopped_by_itself_ends_it_now() {
        // The breaker (or failed writes) stopped the run: the operator's
        // first signal is not swallowed.
        let s = stopping();
        s.stop.cancel();
        s.on_signal("terminated (SIGTERM)");
        assert!(s.abort.is_cancelled());
    }
}
