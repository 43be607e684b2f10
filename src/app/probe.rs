//! `probe`: asks AimHarder whether sessions are alive, with the same
//! politeness as a refresh run. Writes nothing to Supabase but journaled
//! results of earlier runs.

use anyhow::Context as _;
use tokio::time::Instant;

use crate::aimharder::client::AimHarder;
use crate::app::exit::RunVerdict;
use crate::app::finished::Finished;
use crate::app::signals::Stopping;
use crate::app::target;
use crate::app::wiring;
use crate::config::{Probe, ProbeTarget};
use crate::domain::presentation::Presentation;
use crate::engine::probe::Prober;
use crate::output::probe::ProbeSink;
use crate::supabase::pager::Sessions;
use crate::supabase::store::{Columns, Store};

/// Runs `probe`: asks AimHarder about one session, or about every enabled
/// one as the pages come. The run is clean only when every session asked
/// is alive; a signal makes it interrupted, since the sessions not asked
/// are unknown.
pub(crate) async fn probe(
    store: Store,
    output: Presentation,
    args: &Probe,
    stopping: &Stopping,
) -> anyhow::Result<Finished> {
    let clock = Instant::now();
    let aimharder = AimHarder::new(&args.aimharder).context("cannot build the AimHarder client")?;
    let caller = wiring::caller(&args.pace, stopping.stop.clone(), None);
    let prober = Prober::new(aimharder, caller);
    let (totals, summary) = match &args.target {
        ProbeTarget::One(one) => {
            let row = target::find(&store, one).await?;
            let mut sink = ProbeSink::one(output)?;
            let asked = tokio::select! {
                biased;
                _ = stopping.abort.cancelled() => None,
                asked = prober.probe(&row) => asked,
            };
            if let Some(report) = asked {
                sink.session(&report)?;
            }
            sink.finish(clock.elapsed().as_millis())?
        }
        ProbeTarget::All {
            limit,
            shard,
            due_window,
            ..
        } => {
            let rows = store.sessions(Sessions::Enabled(*shard), Columns::Full)?;
            let mut sink = ProbeSink::all(output, *due_window)?;
            let mut write_error = None;
            let read = prober
                .probe_all(rows, *limit, &stopping.abort, |report| {
                    if let Err(e) = sink.session(&report) {
                        write_error.get_or_insert(e);
                    }
                })
                .await;
            if let Some(e) = write_error {
                return Err(e).context("cannot write the results to stdout");
            }
            let done = sink.finish(clock.elapsed().as_millis())?;
            if let Err(e) = read {
                return Err(e)
                    .context("reading sessions stopped the probe; the sessions above were asked");
            }
            if done.0.probed == 0 {
                if let Some(hint) = store.key_hint() {
                    tracing::warn!("nothing to probe; {hint}");
                }
            }
            done
        }
    };
    if let Some(trip) = prober.tripped() {
        return Ok(Finished::with(RunVerdict::Unavailable, summary).tripped(&trip));
    }
    let verdict = if stopping.why().is_some() {
        // A signal cut it short: the sessions not asked are not known.
        RunVerdict::Interrupted
    } else if totals.all_alive() {
        RunVerdict::Clean
    } else {
        RunVerdict::Problems
    };
    Ok(Finished::with(verdict, summary))
}
