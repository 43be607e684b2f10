//! A logout is a claim, not proof: AimHarder has answered `{"logout": 1}`
//! (or its login page) to keep-alives it did not like the look of, while
//! the same login still worked. Before a session is disabled, `/api/whoami`
//! with the same cookies must agree that it is dead. Only sessions that
//! answered logout cost this extra request.

use crate::aimharder::client::{AimHarder, Whoami};
use crate::aimharder::cookies::CookieJar;
use crate::engine::breaker::Settled;
use crate::engine::caller::{Called, Caller, Confirming};
use crate::supabase::write::Written;

/// What a logout came to once checked: the outcome to write and why.
pub(crate) struct Checked {
    pub(crate) outcome: Written,
    pub(crate) reason: String,
}

/// Asks whoami about a session whose keep-alive answered `logout`
/// (`reason`). `after_unseen`: an earlier attempt of the same call may have
/// reached AimHarder, so a rotated token may have been missed.
pub(crate) async fn confirm_logout(
    caller: &Caller,
    aimharder: &AimHarder,
    cookies: &CookieJar,
    logout: &str,
    after_unseen: bool,
) -> Checked {
    let called = caller
        .call(|| async { aimharder.whoami(cookies).await.map(Confirming) })
        .await;
    let unconfirmed = |why: &str| Checked {
        outcome: Written::Failed,
        reason: format!(
            "AimHarder answered logout and whoami could not confirm it ({why}): the session \
             stays enabled ({logout})"
        ),
    };
    match called {
        Called::Answered {
            answer: Confirming(Whoami::Dead(_)),
            ..
        } => {
            caller.settle(Settled::Answered);
            Checked {
                outcome: Written::Expired,
                reason: logout.to_string(),
            }
        }
        Called::Answered {
            answer: Confirming(Whoami::Alive),
            ..
        } => {
            let reason = if after_unseen {
                format!(
                    "AimHarder answered logout but the session is alive: an earlier attempt may \
                     have reached AimHarder, so the token may have been rotated unseen; the \
                     session stays enabled ({logout})"
                )
            } else {
                format!(
                    "AimHarder answered logout but the session is alive: whoami still knows the \
                     member, so AimHarder refused the request, not the session; the session \
                     stays enabled ({logout})"
                )
            };
            caller.settle(Settled::Disbelieved(&reason));
            Checked {
                outcome: Written::Failed,
                reason,
            }
        }
        Called::Answered {
            answer: Confirming(Whoami::Failed(why)),
            ..
        } => {
            caller.settle(Settled::Answered);
            unconfirmed(&why)
        }
        // Settled already: a refusal, or AimHarder unavailable.
        Called::Answered {
            answer: Confirming(Whoami::Blocked(why)),
            ..
        }
        | Called::Failed { reason: why, .. } => unconfirmed(&why),
        Called::NotStarted => unconfirmed("the run stopped before it could ask"),
    }
}
