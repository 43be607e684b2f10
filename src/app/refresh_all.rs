//! `refresh-all`: every due session, streamed from the server, under the
//! pace and concurrency bound, until done, the deadline or a signal.

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::finished::Finished;
use crate::app::signals::Stopping;
use crate::app::wiring::{self, engine};
use crate::config::RefreshAll;
use crate::domain::outcome::{Outcome, SessionReport};
use crate::domain::presentation::Presentation;
use crate::domain::timefmt;
use crate::engine::claimer::{Claimer, Horizon};
use crate::engine::journal::Journal;
use crate::engine::pipeline::Engine;
use crate::engine::taking::{take_until, Taking};
use crate::output::logging;
use crate::output::refresh::RunSink;
use crate::supabase::due::DueQuery;
use crate::supabase::pager::{Pager, Sessions};
use crate::supabase::rest::StoreError;
use crate::supabase::store::{Columns, Store};

/// Runs `refresh-all`: claims the due sessions as the pages come and
/// refreshes them, until none is left, `--limit`, the deadline or a signal.
/// `begun` is when the command started: the deadline counts the jitter
/// wait and the journal's replay.
pub(crate) async fn refresh_all(
    store: Store,
    output: Presentation,
    args: &RefreshAll,
    journal: Option<Journal>,
    stopping: &Stopping,
    begun: Instant,
) -> anyhow::Result<Finished> {
    let started = timefmt::now();
    let clock = Instant::now();
    // Before the first page is read: a session refreshed after this is not
    // claimed again, and the pages must not be older than that.
    let claim = wiring::claim(args.claim_lease, true);
    let journaling = journal.is_some();
    let query = DueQuery {
        older_than: args.older_than,
        retry_errors_after: args.retry_errors_after,
        force: args.force,
        shard: args.shard,
        now: started,
    };
    let (stop, abort) = (&stopping.stop, &stopping.abort);
    // From the command's start, the --jitter wait and the journal's replay
    // included.
    let deadline = args.max_duration.map(|d| begun + d);
    watch_deadline(stopping.clone(), deadline);

    let bar = progress_bar(&store, &query, args.limit).await;
    let due = store.sessions(Sessions::Due(query), Columns::Keys)?;
    let mut sink = RunSink::start(output, args.dry_run, &timefmt::rfc3339(started))?;
    let mut write_error = None;
    let mut record = |report: SessionReport| {
        if let Err(e) = sink.session(&report) {
            write_error.get_or_insert(e);
        }
        bar.inc(1);
        let t = sink.totals();
        let problems = t.failed + t.expired + t.unrecorded;
        if problems > 0 {
            bar.set_message(format!("{problems} failed"));
        }
    };
    let (left, read_error, store_error, trip) = if args.dry_run {
        let (left, read_error) = dry_run(due, args.limit, stop, &mut record).await;
        (left, read_error, None, None)
    } else {
        let engine = engine(
            &args.aimharder,
            store.clone(),
            wiring::caller(&args.pace, stop.clone(), deadline),
            claim,
            journal,
        )?;
        let mut claimer = Claimer::start(
            store.clone(),
            due,
            engine.claim_spec().clone(),
            engine.holds(),
            Horizon::new(args.pace.concurrency, args.pace.rate, args.claim_lease),
            args.limit,
            stop.clone(),
        );
        let mut taking = Taking::default();
        // The claimer holds to the limit: it claims no more.
        let rows = take_until(&mut claimer, engine.stop(), None, &mut taking);
        let ran = engine.run(rows, abort, &mut record).await;
        let left = !claimer.is_exhausted() || engine.holds().unstarted() > 0;
        // Ended now: no Supabase request is waited for, the claims lapse.
        tokio::select! {
            _ = claimer.finish() => {}
            _ = abort.cancelled() => {}
        }
        if !abort.is_cancelled() {
            give_back(&store, &engine).await;
        }
        let left = abort.is_cancelled() || (stop.is_cancelled() && left);
        (left, taking.read_error, ran.write_error, engine.tripped())
    };
    bar.finish_and_clear();
    logging::detach_bar();
    if let Some(e) = write_error {
        return Err(e).context("cannot write the results to stdout");
    }
    let stopped = match (&trip, &store_error) {
        (Some(trip), _) => Some(format!("circuit breaker: {}", trip.message())),
        (None, Some(e)) => Some(format!("Supabase stopped taking writes: {e}")),
        (None, None) if left => stopping.why().map(str::to_string),
        (None, None) => None,
    };
    let (totals, summary) = sink.finish(clock.elapsed().as_millis(), stopped.as_deref())?;
    if totals.selected == 0 {
        if let Some(hint) = store.key_hint() {
            tracing::warn!("nothing selected; {hint}");
        }
    }
    if let Some(e) = store_error {
        let kept = if journaling {
            "were kept in the journal for the next run"
        } else {
            "are lost: no folder for the journal (set AIMHARDER_STATE_DIR)"
        };
        return Err(e).context(format!(
            "Supabase stopped taking writes, so the run stopped calling AimHarder: the results not written ({} refreshed) {kept}, the sessions not called were left untouched",
            totals.unrecorded
        ));
    }
    if let Some(e) = read_error {
        return Err(e)
            .context("reading due sessions stopped the run; the sessions above were handled");
    }
    if let Some(trip) = trip {
        return Ok(Finished::refreshing(totals, summary, false).tripped(&trip));
    }
    Ok(Finished::refreshing(totals, summary, left))
}

/// Gives back, in one request, the claims of sessions the run will not
/// call; a failure only warns, since a claim lapses by itself.
async fn give_back(store: &Store, engine: &Engine) {
    let ids = engine.holds().unstarted_ids();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    if let Err(e) = store.release(&ids, &engine.claim_spec().run).await {
        tracing::warn!(
            "could not give back {} claims (they lapse by themselves): {e}",
            ids.len()
        );
    }
}

/// Lists what would be refreshed: whether a stop left some unlisted, and
/// `Some` error if reading stopped early.
async fn dry_run(
    mut due: Pager,
    limit: Option<u64>,
    stop: &CancellationToken,
    record: &mut impl FnMut(SessionReport),
) -> (bool, Option<StoreError>) {
    let mut listed = 0u64;
    while limit.is_none_or(|l| listed < l) {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                due.finish().await;
                return (true, None);
            }
            next = due.next() => next,
        };
        match next {
            Some(Ok(row)) => {
                listed += 1;
                record(SessionReport::new(&row.id, row.user_email, Outcome::Due));
            }
            Some(Err(e)) => return (false, Some(e)),
            None => break,
        }
    }
    due.finish().await;
    (false, None)
}

/// The deadline stops the run as the first signal does: nothing new
/// starts, what runs finishes.
fn watch_deadline(stopping: Stopping, deadline: Option<Instant>) {
    let Some(deadline) = deadline else { return };
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopping.stop.cancelled() => return,
        }
        tracing::warn!("deadline reached: starting nothing new, finishing requests in flight");
        stopping.stopped_by("deadline reached");
    });
}

/// A bar on a terminal only; under cron or CI nothing is drawn.
/// The length is the server's count of due sessions, cut to `--limit` and
/// divided by the shard count (shards are drawn by hash, so it is an estimate).
async fn progress_bar(store: &Store, query: &DueQuery, limit: Option<u64>) -> ProgressBar {
    let target = ProgressDrawTarget::stderr();
    if target.is_hidden() {
        return ProgressBar::hidden();
    }
    let due = store.due_count(query).await.unwrap_or(0);
    let shard_share = due / u64::from(query.shard.map_or(1, |s| s.count));
    let total = limit.map_or(shard_share, |l| l.min(shard_share));
    let bar = ProgressBar::with_draw_target(Some(total), target);
    logging::attach_bar(&bar);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} eta {eta}") {
        bar.set_style(style);
    }
    bar
}
