//! The rows of a set of sessions, streamed page by page from the server:
//! each walk read by its own keyset cursor, the walks merged into one
//! order. The one pager of the tool: the due walk of `refresh-all`,
//! `probe --all` and `status --sessions` all read through it. Nothing here
//! claims: see the engine's claimer.

use std::cmp::Ordering as CmpOrdering;
use std::collections::VecDeque;
use std::task::Poll;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::session::SessionRow;
use crate::domain::shard::Shard;
use crate::domain::timefmt;
use crate::supabase::due::{DueQuery, Selection, Walk};
use crate::supabase::rest::StoreError;
use crate::supabase::store::{After, Columns, Store};

/// Rows per page read.
pub const PAGE_SIZE: usize = 1000;

/// Which sessions to read: what a command wants, in its own terms; the
/// conditions that select them are this module's to build.
#[derive(Debug, Clone)]
pub(crate) enum Sessions {
    /// Every session, by id (`status --sessions`).
    Every,
    /// The sessions with auto refresh enabled, of one shard or of all, by
    /// id (`probe --all`).
    Enabled(Option<Shard>),
    /// The sessions due under this query, oldest first (`refresh-all`).
    Due(DueQuery),
}

impl Sessions {
    fn selection(&self) -> Selection {
        match self {
            Sessions::Every => Selection::every(),
            Sessions::Enabled(shard) => Selection::enabled(*shard),
            Sessions::Due(query) => query.selection(),
        }
    }
}

impl Store {
    /// Reads `which` sessions with `columns` of each row, in order, a page
    /// at a time ahead of the consumer, on connections of their own (see
    /// `Store::on_own_connections`).
    pub(crate) fn sessions(&self, which: Sessions, columns: Columns) -> Result<Pager, StoreError> {
        Ok(Pager::start(
            self.on_own_connections()?,
            which.selection(),
            columns,
        ))
    }
}

/// The rows of the sessions asked for, in order, read a page at a time
/// ahead of the consumer.
pub(crate) struct Pager {
    rx: mpsc::Receiver<Result<SessionRow, StoreError>>,
    task: JoinHandle<()>,
}

/// One walk being read.
struct Cursor {
    walk: Walk,
    after: Option<After>,
    page: VecDeque<SessionRow>,
    done: bool,
}

impl Cursor {
    /// The merge key of the next row: walks by id have none and go first.
    fn head(&self) -> Option<(Option<OffsetDateTime>, &str)> {
        let row = self.page.front()?;
        let key = self.walk.order.key_of(row).and_then(timefmt::parse);
        Some((key, row.id.as_str()))
    }
}

impl Pager {
    fn start(store: Store, selection: Selection, columns: Columns) -> Self {
        let (tx, rx) = mpsc::channel(PAGE_SIZE);
        let task = tokio::spawn(async move {
            let mut cursors: Vec<Cursor> = selection
                .walks
                .into_iter()
                .map(|walk| Cursor {
                    walk,
                    after: None,
                    page: VecDeque::new(),
                    done: false,
                })
                .collect();
            loop {
                // Every walk whose page ran out reads its next one, at once.
                let reads = cursors
                    .iter_mut()
                    .filter(|c| c.page.is_empty() && !c.done)
                    .map(|c| async {
                        let page = store
                            .page(&c.walk, c.after.as_ref(), PAGE_SIZE, columns)
                            .await?;
                        c.done = page.len() < PAGE_SIZE;
                        c.after = After::last_of(&page, c.walk.order);
                        c.page = page.into();
                        Ok::<_, StoreError>(())
                    });
                if let Err(e) = futures::future::try_join_all(reads).await {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                let next = cursors
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.head().map(|h| (i, h)))
                    .min_by(|(_, a), (_, b)| merge_order(a, b))
                    .map(|(i, _)| i);
                let Some(i) = next else { break };
                let row = cursors[i].page.pop_front().expect("a head");
                if tx.send(Ok(row)).await.is_err() {
                    return;
                }
            }
        });
        Self { rx, task }
    }

    /// The next row, once read; `None` after the last.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<SessionRow, StoreError>>> {
        self.rx.poll_recv(cx)
    }

    /// The next row; `None` after the last.
    pub(crate) async fn next(&mut self) -> Option<Result<SessionRow, StoreError>> {
        self.rx.recv().await
    }

    /// Stops reading.
    pub(crate) async fn finish(mut self) {
        self.rx.close();
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

/// (key, id) ascending, rows without a key first.
fn merge_order(
    a: &(Option<OffsetDateTime>, &str),
    b: &(Option<OffsetDateTime>, &str),
) -> CmpOrdering {
    a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_without_a_key_come_first_then_by_key_and_id() {
        let t = |s| timefmt::parse(s);
        let mut heads = [
            (t("2026-11-02T00:00:00Z"), "b"),
            (None, "z"),
            (t("2026-11-01T00:00:00.5Z"), "c"),
            (t("2026-11-02T00:00:00Z"), "a"),
            (None, "y"),
        ];
        heads.sort_by(merge_order);
        let ids: Vec<&str> = heads.iter().map(|h| h.1).collect();
        assert_eq!(ids, ["y", "z", "c", "a", "b"]);
    }

    #[test]
    fn keys_compare_as_instants_not_as_text() {
        // PostgREST trims trailing zeros of the fraction: text order would
        // put .5 after .25 and the offset form elsewhere.
        let a = timefmt::parse("2026-11-01T00:00:00.25+00:00");
        let b = timefmt::parse("2026-11-01T00:00:00.5+00:00");
        let c = timefmt::parse("2026-11-01T01:00:00+01:00");
        assert!(a < b);
        assert_eq!(c, timefmt::parse("2026-11-01T00:00:00Z"));
    }
}
