//! The due sessions (or any selection), streamed page by page from the
//! server and claimed in small batches right before the pipeline takes them.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::session::SessionRow;
use crate::supabase::due::Selection;
use crate::supabase::rest::StoreError;
use crate::supabase::store::{After, Store};

/// Rows per page read.
pub const PAGE_SIZE: usize = 500;
/// Sessions claimed in one request: few enough that a claim is taken
/// shortly before the call, many enough that claims cost ~3 % more requests.
pub const CLAIM_BATCH: usize = 32;

/// How long a claim lasts if its run dies: longer than any one session
/// takes from claim to write (retries and `Retry-After` included).
pub const CLAIM_LEASE: Duration = Duration::from_secs(15 * 60);

/// Who claims, and how: the run's id, its start (a session refreshed since
/// is not claimed again), and how long a claim lasts if the run dies.
#[derive(Clone)]
pub struct Claim {
    pub run: String,
    pub not_since: String,
    pub lease: Duration,
}

/// Due rows, read a page at a time and claimed a batch at a time ahead of
/// the consumer.
pub struct DueStream {
    rx: mpsc::Receiver<Result<SessionRow, StoreError>>,
    exhausted: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl DueStream {
    /// `claim`: `None` lists the rows without claiming them (`--dry-run`).
    pub fn start(store: Store, query: Selection, claim: Option<Claim>) -> Self {
        let (tx, rx) = mpsc::channel(CLAIM_BATCH);
        let exhausted = Arc::new(AtomicBool::new(false));
        let done = exhausted.clone();
        let task = tokio::spawn(async move {
            for phase in &query.phases {
                let mut after: Option<After> = None;
                loop {
                    let page = match store
                        .page(&phase.filters, phase.order_key, after.as_ref(), PAGE_SIZE)
                        .await
                    {
                        Ok(page) => page,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let full = page.len() == PAGE_SIZE;
                    after = After::last_of(&page, phase.order_key);
                    let mine: Vec<SessionRow> =
                        page.into_iter().filter(|r| query.in_shard(&r.id)).collect();
                    for batch in mine.chunks(CLAIM_BATCH) {
                        let rows = match &claim {
                            None => batch.to_vec(),
                            Some(claim) => match claim_in_order(&store, batch, claim).await {
                                Ok(rows) => rows,
                                Err(e) => {
                                    let _ = tx.send(Err(e)).await;
                                    return;
                                }
                            },
                        };
                        let mut rows = rows.into_iter();
                        while let Some(row) = rows.next() {
                            if let Err(unsent) = tx.send(Ok(row)).await {
                                // The consumer is gone: what was claimed and
                                // not taken goes back at once.
                                if let (Some(claim), Ok(row)) = (&claim, unsent.0) {
                                    give_back(&store, claim, std::iter::once(row).chain(rows))
                                        .await;
                                }
                                return;
                            }
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        Self {
            rx,
            exhausted,
            task,
        }
    }

    /// Ends the stream and gives back the claims of rows claimed but never
    /// taken (a `--limit` reached, a stop).
    pub async fn release_untaken(mut self, store: &Store, claim: &Claim) {
        self.rx.close();
        let mut untaken = Vec::new();
        while let Some(item) = self.rx.recv().await {
            untaken.extend(item.ok());
        }
        give_back(store, claim, untaken).await;
        let _ = self.task.await;
    }

    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<SessionRow, StoreError>>> {
        self.rx.poll_recv(cx)
    }

    /// The rows a run takes: until `stop`, `limit` rows taken, or a read
    /// failing (kept in `taking`). The stop is polled with the rows, so it
    /// ends the stream even while a page read is still under way.
    pub fn take_until<'a>(
        &'a mut self,
        stop: &'a CancellationToken,
        limit: Option<u64>,
        taking: &'a mut Taking,
    ) -> impl futures::Stream<Item = SessionRow> + 'a {
        let mut stopped = Box::pin(stop.cancelled());
        futures::stream::poll_fn(move |cx| {
            if stopped.as_mut().poll(cx).is_ready() || limit.is_some_and(|l| taking.taken >= l) {
                return Poll::Ready(None);
            }
            self.poll_next(cx).map(|next| match next {
                Some(Ok(row)) => {
                    taking.taken += 1;
                    Some(row)
                }
                Some(Err(e)) => {
                    taking.read_error = Some(e);
                    None
                }
                None => None,
            })
        })
    }

    /// True once every page was read and handed over.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst) && self.rx.is_empty()
    }
}

/// What [`DueStream::take_until`] took.
#[derive(Default)]
pub struct Taking {
    pub taken: u64,
    /// Reading further rows failed: the run ends with the rows before.
    pub read_error: Option<StoreError>,
}

/// Claims `batch` and hands the claimed rows back in the batch's order (the
/// due order); rows another run holds, or refreshed since, are left out.
async fn claim_in_order(
    store: &Store,
    batch: &[SessionRow],
    claim: &Claim,
) -> Result<Vec<SessionRow>, StoreError> {
    let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
    let mut claimed = store
        .claim(&ids, &claim.run, &claim.not_since, claim.lease)
        .await?;
    claimed.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    Ok(claimed)
}

/// Gives back `claim`'s hold on `rows` (claimed, never called); a failure
/// only warns, since a claim lapses by itself.
pub async fn give_back(store: &Store, claim: &Claim, rows: impl IntoIterator<Item = SessionRow>) {
    for row in rows {
        if let Err(e) = store.release(&row.id, &claim.run).await {
            tracing::warn!(
                "could not give back the claim on {} (it lapses by itself): {e}",
                row.id
            );
        }
    }
}
