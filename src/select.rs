//! Which sessions are due, decided by the server and streamed page by page.
//!
//! Oldest first: sessions never refreshed (by creation time), then the rest
//! by last refresh. Each phase is a keyset walk on (sort key, id), so the
//! cost per page stays flat and rows refreshed meanwhile (whose new date puts
//! them past the cutoff) are not seen twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::cli::Shard;
use crate::store::{error_stamp_bound, filter, After, Filters, SessionRow, Store, StoreError};
use crate::timefmt;

pub const PAGE_SIZE: usize = 500;

#[derive(Debug, Clone)]
pub struct DueQuery {
    pub older_than: Duration,
    pub retry_errors_after: Duration,
    pub force: bool,
    pub shard: Option<Shard>,
    pub now: OffsetDateTime,
}

struct Phase {
    filters: Filters,
    order_key: &'static str,
}

impl DueQuery {
    fn phases(&self) -> [Phase; 2] {
        let cutoff = timefmt::rfc3339(self.now - self.older_than);
        let mut common = vec![filter::enabled()];
        if !self.force {
            common.push(self.error_filter());
        }
        let mut never = common.clone();
        never.push(filter::is_null("last_refresh_date"));
        let mut refreshed = common;
        if self.force {
            refreshed.push(filter::not_null("last_refresh_date"));
        } else {
            never.push(filter::lt("created_at", &cutoff));
            refreshed.push(filter::lt("last_refresh_date", &cutoff));
        }
        [
            Phase {
                filters: never,
                order_key: "created_at",
            },
            Phase {
                filters: refreshed,
                order_key: "last_refresh_date",
            },
        ]
    }

    /// No error, an error not written by this tool, or one older than the cutoff.
    fn error_filter(&self) -> String {
        let bound = error_stamp_bound(self.now - self.retry_errors_after);
        filter::or(&[
            filter::is_null("last_refresh_error"),
            "last_refresh_error.not.like.\"[*\"".to_string(),
            filter::lt("last_refresh_error", &bound),
        ])
    }

    /// The same due set as one condition, for counting.
    pub fn count_filters(&self) -> Filters {
        let [never, refreshed] = self.phases();
        vec![filter::or(&[
            filter::all(&never.filters),
            filter::all(&refreshed.filters),
        ])]
    }

    fn in_shard(&self, id: &str) -> bool {
        self.shard.is_none_or(|s| shard_of(id, s.count) == s.index)
    }
}

/// Shard (1-based) of an id: FNV-1a of the lower-cased id, so every runner
/// agrees whatever the database's order or the id's case.
pub fn shard_of(id: &str, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.trim().to_ascii_lowercase().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(count.max(1))) as u32 + 1
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_falls_in_exactly_one_shard() {
        for n in 1..=7u32 {
            for i in 0..200 {
                let id = format!("00000000-0000-4000-8000-{i:012}");
                let s = shard_of(&id, n);
                assert!((1..=n).contains(&s));
                assert_eq!(s, shard_of(&id.to_uppercase(), n));
            }
        }
    }

    #[test]
    fn shards_spread_ids_evenly() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[(shard_of(&format!("id-{i}"), 4) - 1) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..=1200).contains(&c)),
            "{counts:?}"
        );
    }
}
