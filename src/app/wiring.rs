//! The parts a command runs on, built from checked settings.

use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, AimHarderConfig};
use crate::app::exit::AppError;
use crate::config::Pace;
use crate::domain::run_id::new_run_id;
use crate::domain::timefmt;
use crate::engine::caller::{Caller, CallerSettings};
use crate::engine::due::{Claim, CLAIM_LEASE};
use crate::engine::journal::Journal;
use crate::engine::pipeline::{Engine, EngineSettings};
use crate::output::report::Output;
use crate::supabase::store::{Store, StoreConfig};

const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);

pub fn connect(config: &StoreConfig) -> anyhow::Result<Store> {
    let store = Store::new(config).map_err(AppError::from)?;
    if let Some(hint) = store.key_hint() {
        tracing::warn!("{hint}");
    }
    Ok(store)
}

/// A new run's claims: sessions refreshed since `started` are not claimed.
pub fn claim(started: time::OffsetDateTime) -> Claim {
    Claim {
        run: new_run_id(),
        not_since: timefmt::rfc3339(started),
        lease: CLAIM_LEASE,
    }
}

/// The bounds a run's AimHarder calls go under.
pub fn caller(pace: &Pace, stop: CancellationToken, deadline: Option<Instant>) -> Caller {
    let settings = CallerSettings {
        concurrency: pace.concurrency,
        rate: pace.rate,
        first_retry_delay: FIRST_RETRY_DELAY,
        max_consecutive_failures: pace.max_consecutive_failures,
    };
    Caller::new(&settings, stop, deadline)
}

pub fn engine(
    config: &AimHarderConfig,
    store: Store,
    output: Output,
    caller: Caller,
    claim: Claim,
    journal: Option<Journal>,
) -> anyhow::Result<Engine> {
    let aimharder = AimHarder::new(config).context("cannot build the AimHarder client")?;
    let settings = EngineSettings {
        default_fingerprint: config.default_fingerprint.clone(),
        output,
        claim,
        journal,
    };
    Ok(Engine::new(store, aimharder, caller, settings))
}
