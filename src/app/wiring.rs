//! The parts a command runs on, built from checked settings.

use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, AimHarderConfig};
use crate::app::exit::AppError;
use crate::domain::run_id::new_run_id;
use crate::domain::timefmt;
use crate::engine::due::{Claim, CLAIM_LEASE};
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

/// How hard one command may press on AimHarder.
pub struct Limits {
    pub concurrency: usize,
    pub rate: Option<f64>,
}

/// A new run's claims: sessions refreshed since `started` are not claimed.
pub fn claim(started: time::OffsetDateTime) -> Claim {
    Claim {
        run: new_run_id(),
        not_since: timefmt::rfc3339(started),
        lease: CLAIM_LEASE,
    }
}

pub fn engine(
    config: &AimHarderConfig,
    store: Store,
    output: Output,
    limits: Limits,
    claim: Claim,
    stop: CancellationToken,
    deadline: Option<Instant>,
) -> anyhow::Result<Engine> {
    let aimharder = AimHarder::new(config).context("cannot build the AimHarder client")?;
    let settings = EngineSettings {
        concurrency: limits.concurrency,
        rate: limits.rate,
        default_fingerprint: config.default_fingerprint.clone(),
        output,
        first_retry_delay: FIRST_RETRY_DELAY,
        claim,
    };
    Ok(Engine::new(store, aimharder, settings, stop, deadline))
}
