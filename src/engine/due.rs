//! The due sessions, streamed page by page from the server, one page ahead
//! of the pipeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::domain::session::SessionRow;
use crate::supabase::due::DueQuery;
use crate::supabase::rest::StoreError;
use crate::supabase::store::{After, Store};

/// Rows per page read.
pub const PAGE_SIZE: usize = 500;

/// Due rows, fetched one page ahead of the consumer.
pub struct DueStream {
    rx: mpsc::Receiver<Result<SessionRow, StoreError>>,
    exhausted: Arc<AtomicBool>,
}

impl DueStream {
    pub fn start(store: Store, query: DueQuery) -> Self {
        let (tx, rx) = mpsc::channel(PAGE_SIZE);
        let exhausted = Arc::new(AtomicBool::new(false));
        let done = exhausted.clone();
        tokio::spawn(async move {
            for phase in query.phases() {
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
                    for row in page.into_iter().filter(|r| query.in_shard(&r.id)) {
                        if tx.send(Ok(row)).await.is_err() {
                            return;
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        Self { rx, exhausted }
    }

    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<SessionRow, StoreError>>> {
        self.rx.poll_recv(cx)
    }

    /// True once every page was read and handed over.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst) && self.rx.is_empty()
    }
}
