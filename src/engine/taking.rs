//! How a run takes rows from where they come from: until a stop, a limit,
//! or a read failing.

use std::future::Future;
use std::task::Poll;

use tokio_util::sync::CancellationToken;

use crate::domain::session::SessionRow;
use crate::supabase::pager::Pager;
use crate::supabase::rest::StoreError;

/// Where rows come from, a page read or a claim at a time: the store's
/// pager, or the claimer in front of it.
pub(crate) trait RowSource {
    /// The next row, once there is one; `None` after the last.
    fn poll_row(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<SessionRow, StoreError>>>;
}

impl RowSource for Pager {
    fn poll_row(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<SessionRow, StoreError>>> {
        self.poll_next(cx)
    }
}

/// The rows a run takes from `source`: until `stop`, `limit` rows taken,
/// or a read failing (kept in `taking`). The stop is polled with the rows,
/// so it ends the stream even while a read is still under way.
pub(crate) fn take_until<'a>(
    source: &'a mut impl RowSource,
    stop: &'a CancellationToken,
    limit: Option<u64>,
    taking: &'a mut Taking,
) -> impl futures::Stream<Item = SessionRow> + 'a {
    let mut stopped = Box::pin(stop.cancelled());
    futures::stream::poll_fn(move |cx| {
        if stopped.as_mut().poll(cx).is_ready() || limit.is_some_and(|l| taking.taken >= l) {
            return Poll::Ready(None);
        }
        source.poll_row(cx).map(|next| match next {
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

/// What [`take_until`] took.
#[derive(Default)]
pub(crate) struct Taking {
    pub(crate) taken: u64,
    /// Reading further rows failed: the run ends with the rows before.
    pub(crate) read_error: Option<StoreError>,
}
