//! Which sessions a run walks, as conditions the server evaluates.
//!
//! Due sessions go oldest first by one key, coalesce(last_refresh_date,
//! created_at). No column holds that key: three keyset walks, each on an
//! index of its own, are merged by the client into that one order.
//! - never refreshed and no creation date either (unknown age): by id,
//!   first;
//! - never refreshed: by (created_at, id), on the index of never refreshed
//!   sessions;
//! - refreshed: by (last_refresh_date, id), on the index of enabled
//!   sessions.
//!
//! A shard is a range of ids, also a condition on the server, so that N
//! shards don't each read the whole due set.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::session::SessionRow;
use crate::domain::shard::Shard;
use crate::domain::stamp::error_stamp_bound;
use crate::domain::timefmt;
use crate::supabase::filter::{self, Filters};

/// Which sessions a refresh run takes, as of `now`.
#[derive(Debug, Clone)]
pub(crate) struct DueQuery {
    /// A session is due once its last refresh (or its creation) is older
    /// than this.
    pub(crate) older_than: Duration,
    /// A failed session is due again only once its error is older than this.
    pub(crate) retry_errors_after: Duration,
    /// Every enabled session is due, whatever its age.
    pub(crate) force: bool,
    pub(crate) shard: Option<Shard>,
    /// The instant the cutoffs count back from: the run's start.
    pub(crate) now: OffsetDateTime,
}

/// How a walk is ordered and resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// By id alone.
    Id,
    /// By this timestamp column, then id.
    Key(&'static str),
}

impl Order {
    /// The row's value of the column this order is by (`None` by id).
    pub(super) fn key_of(self, row: &SessionRow) -> Option<&str> {
        match self {
            Order::Id => None,
            Order::Key("created_at") => row.created_at.as_deref(),
            Order::Key(_) => row.last_refresh_date.as_deref(),
        }
    }
}

/// One keyset walk: its conditions and its order.
#[derive(Debug, Clone)]
pub(super) struct Walk {
    pub(super) filters: Filters,
    pub(super) order: Order,
}

/// Rows to stream: walks merged into one order, by (key, id), rows
/// without a key (walks by id) first.
#[derive(Debug, Clone)]
pub(super) struct Selection {
    pub(super) walks: Vec<Walk>,
}

impl DueQuery {
    /// The cutoff of the due key; with `--force` the run's start: every
    /// enabled session not refreshed since, each once (a refreshed row's
    /// key moves past the cutoff).
    pub(crate) fn cutoff(&self) -> OffsetDateTime {
        if self.force {
            self.now
        } else {
            self.now - self.older_than
        }
    }

    /// The due sessions as three walks (see the module's comment).
    pub(super) fn selection(&self) -> Selection {
        let cutoff = timefmt::rfc3339(self.cutoff());
        let mut common = vec![filter::enabled()];
        if !self.force {
            common.push(self.error_filter());
        }
        common.extend(shard_filters(self.shard));
        let with = |more: &[String]| {
            let mut filters = common.clone();
            filters.extend_from_slice(more);
            filters
        };
        Selection {
            walks: vec![
                Walk {
                    filters: with(&[
                        filter::is_null("last_refresh_date"),
                        filter::is_null("created_at"),
                    ]),
                    order: Order::Id,
                },
                Walk {
                    filters: with(&[
                        filter::is_null("last_refresh_date"),
                        filter::lt("created_at", &cutoff),
                    ]),
                    order: Order::Key("created_at"),
                },
                Walk {
                    filters: with(&[filter::lt("last_refresh_date", &cutoff)]),
                    order: Order::Key("last_refresh_date"),
                },
            ],
        }
    }

    /// The bound an error stamped by the tool must reach to hold a session
    /// back: errors newer than `--retry-errors-after`.
    pub(crate) fn error_bound(&self) -> String {
        error_stamp_bound(self.now - self.retry_errors_after)
    }

    /// No error, an error not written by this tool, or one older than the cutoff.
    fn error_filter(&self) -> String {
        filter::or(&[
            filter::is_null("last_refresh_error"),
            "last_refresh_error.not.like.\"[*\"".to_string(),
            filter::lt("last_refresh_error", &self.error_bound()),
        ])
    }
}

impl Selection {
    /// Every session with auto refresh enabled, by id (what `probe --all`
    /// asks about).
    pub(super) fn enabled(shard: Option<Shard>) -> Self {
        let mut filters = vec![filter::enabled()];
        filters.extend(shard_filters(shard));
        Self {
            walks: vec![Walk {
                filters,
                order: Order::Id,
            }],
        }
    }

    /// Every session, by id (`status --sessions`).
    pub(super) fn every() -> Self {
        Self {
            walks: vec![Walk {
                filters: vec![],
                order: Order::Id,
            }],
        }
    }
}

/// The shard's id range as conditions.
fn shard_filters(shard: Option<Shard>) -> Filters {
    let Some((lower, upper)) = shard.map(|s| s.bounds()) else {
        return vec![];
    };
    lower
        .map(|l| filter::gte("id", &l))
        .into_iter()
        .chain(upper.map(|u| filter::lt("id", &u)))
        .collect()
}
