//! The parts a command runs on, built from checked settings.

use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::client::{AimHarder, AimHarderConfig};
use crate::app::exit::AppError;
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

pub fn engine(
    config: &AimHarderConfig,
    store: Store,
    output: Output,
    limits: Limits,
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
    };
    Ok(Engine::new(store, aimharder, settings, stop, deadline))
}
