//! The parts a command runs on, built from checked settings.

use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, AimHarderConfig};
use crate::config::Pace;
use crate::domain::run_id::new_run_id;
use crate::engine::caller::{Caller, CallerSettings};
use crate::engine::journal::Journal;
use crate::engine::pipeline::{Engine, EngineSettings};
use crate::supabase::claims::ClaimSpec;
use crate::supabase::store::{Store, StoreConfig};

const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);

/// The store, with `--filter` checked against the table: before the first
/// call to AimHarder and the first byte of output.
pub(crate) async fn connect(config: &StoreConfig) -> anyhow::Result<Store> {
    let store = Store::new(config)?;
    if let Some(hint) = store.key_hint() {
        tracing::warn!("{hint}");
    }
    store.check_filters().await?;
    Ok(store)
}

/// A new run's claims, from now: sessions refreshed since are not claimed.
pub(crate) fn claim(lease: Duration, enabled_only: bool) -> ClaimSpec {
    ClaimSpec {
        run: new_run_id(),
        started: std::time::Instant::now(),
        lease,
        enabled_only,
    }
}

/// The bounds a run's AimHarder calls go under.
pub(crate) fn caller(pace: &Pace, stop: CancellationToken, deadline: Option<Instant>) -> Caller {
    let settings = CallerSettings {
        concurrency: pace.concurrency,
        rate: pace.rate,
        first_retry_delay: FIRST_RETRY_DELAY,
        max_consecutive_failures: pace.max_consecutive_failures,
    };
    Caller::new(&settings, stop, deadline)
}

/// The engine of a refresh run: a new AimHarder client for `config`, on
/// `store`, under `caller`'s bounds, claiming with `claim` and keeping
/// unrecorded results in `journal` when there is one.
pub(crate) fn engine(
    config: &AimHarderConfig,
    store: Store,
    caller: Caller,
    claim: ClaimSpec,
    journal: Option<Journal>,
) -> anyhow::Result<Engine> {
    let aimharder = AimHarder::new(config).context("cannot build the AimHarder client")?;
    let settings = EngineSettings {
        default_fingerprint: config.default_fingerprint.clone(),
        claim,
        journal,
    };
    Ok(Engine::new(store, aimharder, caller, settings))
}
