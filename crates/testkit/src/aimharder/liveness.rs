//! The simulated AimHarder's liveness model: a session (named by its
//! session cookie) dies a fixed time after its last successful keep-alive,
//! on a clock of the model's own that tests move on.

use std::collections::HashMap;
use std::time::Duration;

use super::{Reply, Seen, WHOAMI};

pub struct Liveness {
    lifetime: Duration,
    /// The model's clock: starts at zero, when every session is logged in.
    now: Duration,
    /// When each session last kept alive (absent: at zero).
    kept: HashMap<String, Duration>,
}

impl Liveness {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            now: Duration::ZERO,
            kept: HashMap::new(),
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Makes `session`'s last keep-alive `ago` before the model's now;
    /// the clock must have been moved on by at least `ago`.
    pub fn kept_alive_ago(&mut self, session: &str, ago: Duration) {
        let at = self
            .now
            .checked_sub(ago)
            .expect("advance the model's clock past `ago` first");
        self.kept.insert(session.to_string(), at);
    }

    pub fn is_alive(&self, session: &str) -> bool {
        let kept = self.kept.get(session).copied().unwrap_or_default();
        self.now - kept <= self.lifetime
    }

    /// The answer a request gets under the model: a dead session is dead
    /// whatever the script says; a live one's successful keep-alive moves
    /// its death on.
    pub fn reply(&mut self, seen: &Seen, scripted: Reply) -> Reply {
        let session = seen.session.clone().unwrap_or_default();
        let alive = self.is_alive(&session);
        if seen.path == WHOAMI {
            return if alive { scripted } else { Reply::Dead };
        }
        if !alive {
            return Reply::Logout;
        }
        if succeeds(&scripted) {
            self.kept.insert(session, self.now);
        }
        scripted
    }
}

fn succeeds(reply: &Reply) -> bool {
    match reply {
        Reply::Then(_, next) | Reply::Delay(_, next) => succeeds(next),
        Reply::Refresh { .. } => true,
        _ => false,
    }
}
