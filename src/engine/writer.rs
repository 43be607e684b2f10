//! The write-back, beside the calls: results are gathered into batches
//! and written through one request each, so a call never waits on
//! Supabase, and a slow Supabase holds no call slot.
//!
//! A batch goes when [`BATCH`] results wait, or the oldest has waited
//! [`LINGER`]; while one is being written the next gathers (so a remote
//! Supabase gets fewer, larger batches). At most `capacity` results wait
//! for their write; the next call's result then waits to be taken, which
//! holds the call back: when Supabase stops taking writes, the calls stop
//! by themselves. A batch that still fails after its retries stops the run
//! and sends every result held, and every later one, to the journal.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::outcome::{Outcome, SessionReport};
use crate::engine::holds::Holds;
use crate::engine::journal::{Entry, Failure, Journal};
use crate::supabase::rest::StoreError;
use crate::supabase::store::Store;
use crate::supabase::write::{Fate, WriteItem, Written};

/// Results a batch waits for before it goes.
pub(crate) const BATCH: usize = 64;
/// How long the first result of a batch waits for others.
pub(crate) const LINGER: Duration = Duration::from_millis(50);
/// Rewrites after `refresh_count` moved on under a held claim.
const CONFLICT_ROUNDS: u8 = 5;

/// The error of a session skipped because new credentials were stored
/// while AimHarder was called: the result for the old ones is dropped
/// rather than written over the new.
pub(crate) const CHANGED_MEANWHILE: &str =
    "changed meanwhile: new credentials were stored while AimHarder was called; the result for the old ones was dropped";

/// One answer of AimHarder's, waiting for its write.
pub(crate) struct Pending {
    pub(crate) item: WriteItem,
    /// The session's report once written.
    pub(crate) report: SessionReport,
    /// When AimHarder answered: steady, for the database's stamp; by the
    /// wall clock, for the journal.
    pub(crate) answered: Instant,
    pub(crate) answered_at: String,
    /// The row as the call found it, for the journal: its count and
    /// credentials digest.
    pub(crate) called_count: Option<i64>,
    pub(crate) credentials: String,
    /// The writes tried again so far, after a conflict or a refusal.
    pub(crate) rounds: u8,
}

/// Where the calls hand their results over.
pub(crate) struct WriterInput {
    tx: mpsc::Sender<Pending>,
}

impl WriterInput {
    /// Hands `pending` over, waiting while the writer is full. `Err` gives
    /// it back when the writer is gone.
    pub(crate) async fn submit(&self, pending: Pending) -> Result<(), Box<Pending>> {
        self.tx.send(pending).await.map_err(|e| Box::new(e.0))
    }
}

/// The writer's side the run reads: the final report of every result.
pub(crate) struct Writer {
    reports: mpsc::UnboundedReceiver<SessionReport>,
    failure: Arc<Mutex<Option<StoreError>>>,
    task: JoinHandle<()>,
}

/// What the writer needs.
pub(crate) struct WriterSetup {
    pub(crate) store: Store,
    /// The run's id, which its claims carry.
    pub(crate) run: String,
    pub(crate) journal: Option<Journal>,
    pub(crate) holds: Arc<Holds>,
    /// Cancelled when writes fail for good: no new call starts.
    pub(crate) stop: CancellationToken,
    /// The second signal: what is held goes to the journal, now.
    pub(crate) abort: CancellationToken,
    /// Results that may wait for their write at most: gathered by the
    /// writer, and handed over to it not yet gathered.
    pub(crate) capacity: usize,
    /// Of those, how many may be handed over while the writer is busy (so
    /// a call's result rarely waits for the writer to come round).
    pub(crate) handed: usize,
}

impl Writer {
    /// Starts the writer's task: the calls hand their results to the input,
    /// and the run reads the final reports from the writer.
    pub(crate) fn start(setup: WriterSetup) -> (WriterInput, Writer) {
        // The writer's own queue and this channel, together, are what is
        // bounded: beyond them a call's result waits for room.
        let (tx, rx) = mpsc::channel(setup.handed.max(1));
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let failure = Arc::new(Mutex::new(None));
        let task = tokio::spawn(
            Task {
                setup,
                rx,
                reports: reports_tx,
                failure: failure.clone(),
                waiting: VecDeque::new(),
                oldest: None,
                failed: None,
            }
            .run(),
        );
        (
            WriterInput { tx },
            Writer {
                reports,
                failure,
                task,
            },
        )
    }

    /// The next final report; `None` once every result was written (or
    /// journaled) and the input is closed.
    pub(crate) async fn next_report(&mut self) -> Option<SessionReport> {
        self.reports.recv().await
    }

    /// Why writes failed for good, if they did (the run then stopped).
    pub(crate) async fn finish(self) -> Option<StoreError> {
        let _ = self.task.await;
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

type Sending = Pin<Box<dyn Future<Output = Result<Vec<(String, Fate)>, StoreError>> + Send>>;

struct InFlight {
    batch: Vec<Pending>,
    careful: bool,
    sending: Sending,
}

struct Task {
    setup: WriterSetup,
    rx: mpsc::Receiver<Pending>,
    reports: mpsc::UnboundedSender<SessionReport>,
    failure: Arc<Mutex<Option<StoreError>>>,
    waiting: VecDeque<Pending>,
    /// When the oldest waiting result arrived.
    oldest: Option<Instant>,
    /// Why writes stopped: every result from then on is journaled.
    failed: Option<String>,
}

impl Task {
    async fn run(mut self) {
        let mut in_flight: Option<InFlight> = None;
        let mut open = true;
        loop {
            let ready = self.waiting.len() >= BATCH
                || !open
                || self.oldest.is_some_and(|t| t.elapsed() >= LINGER);
            if in_flight.is_none() && ready && !self.waiting.is_empty() {
                let n = self.waiting.len();
                let batch: Vec<Pending> = self.waiting.drain(..n).collect();
                self.oldest = (!self.waiting.is_empty()).then(Instant::now);
                in_flight = Some(self.send(batch, false));
            }
            if !open && self.waiting.is_empty() && in_flight.is_none() {
                return;
            }
            let room =
                self.waiting.len() < self.setup.capacity.saturating_sub(self.setup.handed).max(1);
            let linger = self.oldest.map(|t| t + LINGER);
            tokio::select! {
                biased;
                _ = self.setup.abort.cancelled(), if self.failed.is_none() => {
                    self.failed = Some("the run was ended by a second signal before it was written".into());
                    let held = in_flight.take().map(|f| f.batch).unwrap_or_default();
                    let waiting: Vec<Pending> = self.waiting.drain(..).collect();
                    self.oldest = None;
                    for pending in held.into_iter().chain(waiting) {
                        self.journal(pending);
                    }
                }
                done = async { (&mut in_flight.as_mut().expect("in flight").sending).await }, if in_flight.is_some() => {
                    let flight = in_flight.take().expect("in flight");
                    in_flight = self.settle(flight, done);
                }
                next = self.rx.recv(), if open && (room || self.failed.is_some()) => match next {
                    Some(pending) if self.failed.is_some() => self.journal(pending),
                    Some(pending) => {
                        self.oldest.get_or_insert_with(Instant::now);
                        self.waiting.push_back(pending);
                    }
                    None => open = false,
                },
                _ = sleep_until_opt(linger), if in_flight.is_none() && linger.is_some() => {}
            }
        }
    }

    fn send(&self, batch: Vec<Pending>, careful: bool) -> InFlight {
        let items: Vec<WriteItem> = batch
            .iter()
            .map(|p| {
                let mut item = p.item.clone();
                if item.refreshed_at.is_none() {
                    item.answered_ms_ago = Some(p.answered.elapsed().as_millis() as u64);
                }
                item
            })
            .collect();
        let store = self.setup.store.clone();
        let run = self.setup.run.clone();
        InFlight {
            batch,
            careful,
            sending: Box::pin(async move { store.write(&run, &items, careful).await }),
        }
    }

    /// What a batch's answer means for each of its results; a batch to
    /// send again (carefully) if Supabase refused it as a whole.
    fn settle(
        &mut self,
        flight: InFlight,
        done: Result<Vec<(String, Fate)>, StoreError>,
    ) -> Option<InFlight> {
        let fates = match done {
            Ok(fates) => fates,
            // One result may hold a value the database refuses: find it.
            Err(StoreError::Rejected { .. }) if !flight.careful => {
                return Some(self.send(flight.batch, true));
            }
            Err(e) => {
                tracing::error!("Supabase stopped taking writes: {e}");
                self.failed = Some(e.to_string());
                self.setup.stop.cancel();
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                let waiting: Vec<Pending> = self.waiting.drain(..).collect();
                self.oldest = None;
                for pending in flight.batch.into_iter().chain(waiting) {
                    self.journal(pending);
                }
                return None;
            }
        };
        let mut by_id: HashMap<String, Pending> = flight
            .batch
            .into_iter()
            .map(|p| (p.item.id.clone(), p))
            .collect();
        for (id, fate) in fates {
            let Some(pending) = by_id.remove(&id) else {
                continue;
            };
            self.fate(pending, fate);
        }
        // Not answered for: never dropped silently.
        for pending in by_id.into_values() {
            self.failed_one(pending, "Supabase did not say whether it was written");
        }
        None
    }

    fn fate(&mut self, mut pending: Pending, fate: Fate) {
        let id = pending.item.id.clone();
        let refreshed = pending.item.outcome == Written::Refreshed;
        let reason = pending.report.error.clone();
        let report = match fate {
            Fate::Written { .. } => pending.report,
            Fate::Changed => {
                let why = match reason {
                    Some(reason) => format!("{CHANGED_MEANWHILE} ({reason})"),
                    None => CHANGED_MEANWHILE.to_string(),
                };
                not_written(pending.report, Outcome::Skipped, why)
            }
            Fate::Deleted => not_written(
                pending.report,
                Outcome::Skipped,
                "the session was deleted meanwhile".into(),
            ),
            Fate::Conflict { count } if pending.rounds < CONFLICT_ROUNDS => {
                pending.item.expected_count = count;
                pending.rounds += 1;
                self.requeue(pending);
                return;
            }
            Fate::Conflict { .. } => {
                self.failed_one(pending, "the row kept changing under concurrent writers");
                return;
            }
            Fate::Rejected(detail) if refreshed && pending.rounds < CONFLICT_ROUNDS => {
                // Supabase took the request and refused the values (say, a
                // rotated fingerprint longer than the column): the rotated
                // token alone is stored, and the error said on the row.
                let why = format!("refreshed, but the new values could not be stored: {detail}");
                let keeps_token = pending.item.token.is_some();
                pending.item = WriteItem {
                    outcome: Written::Failed,
                    error: Some(why.clone()),
                    fingerprint: None,
                    cookies: None,
                    ..pending.item
                };
                pending.report = not_written(pending.report, Outcome::Failed, why);
                pending.report.token_changed = keeps_token;
                pending.rounds += 1;
                self.requeue(pending);
                return;
            }
            // Even the token alone was refused: it must not be lost.
            Fate::Rejected(detail) if pending.item.token.is_some() => {
                let why = format!("Supabase refused even the rotated token alone: {detail}");
                self.failed_one(pending, &why);
                return;
            }
            Fate::Rejected(detail) => {
                let mut report = pending.report;
                let reason = report.error.take().unwrap_or_default();
                report.error = Some(format!("{reason} (could not record it: {detail})"));
                report
            }
        };
        self.setup.holds.done(&id);
        let _ = self.reports.send(report);
    }

    fn requeue(&mut self, pending: Pending) {
        self.oldest.get_or_insert_with(Instant::now);
        self.waiting.push_front(pending);
    }

    /// A result that cannot be written now: to the journal.
    fn failed_one(&mut self, pending: Pending, why: &str) {
        let saved = self.failed.replace(why.to_string());
        self.journal(pending);
        self.failed = saved;
    }

    /// Keeps `pending` for the next run (its claim stays, to lapse by
    /// itself: the next run on this machine takes it over at once, no other
    /// calls the session with its old credentials meanwhile).
    fn journal(&mut self, pending: Pending) {
        let why = self.failed.clone().unwrap_or_default();
        let Pending {
            item,
            mut report,
            answered_at,
            called_count,
            credentials,
            ..
        } = pending;
        let failed = match item.outcome {
            Written::Refreshed => None,
            outcome => Some(Failure {
                at: answered_at.clone(),
                error: item.error.clone().unwrap_or_default(),
                expired: outcome == Written::Expired,
            }),
        };
        let success = failed.is_none();
        let entry = Entry {
            id: item.id.clone(),
            run: self.setup.run.clone(),
            refreshed_at: success.then_some(answered_at),
            failed,
            refresh_count: called_count,
            credentials,
            aimharder_token: item.token,
            fingerprint: item.fingerprint,
            aimharder_cookies: item.cookies,
        };
        let kept = match &self.setup.journal {
            None => "no journal to keep it in".to_string(),
            Some(journal) => match journal.append(&entry) {
                Ok(()) => format!(
                    "kept in the journal {}, which the next run writes first",
                    journal.path().display()
                ),
                Err(e) => format!(
                    "and it could not be journaled ({}: {e})",
                    journal.path().display()
                ),
            },
        };
        if success {
            report.outcome = Outcome::Unrecorded;
            report.error = Some(format!(
                "refreshed at AimHarder but not recorded: {why}; {kept}"
            ));
        } else {
            let reason = report.error.take().unwrap_or_default();
            report.error = Some(format!("{reason} (not recorded: {why}; {kept})"));
        }
        let _ = self.reports.send(report);
    }
}

/// `report` as it ends when its result is not written as it was: with
/// `outcome` and `why`, and no credentials changed.
fn not_written(mut report: SessionReport, outcome: Outcome, why: String) -> SessionReport {
    report.outcome = outcome;
    report.token_changed = false;
    report.cookies_changed = false;
    report.error = Some(why);
    report
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
