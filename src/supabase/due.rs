//! Which sessions are due, as conditions the server evaluates.
//!
//! Oldest first by one key, coalesce(last_refresh_date, created_at). Each
//! phase is a keyset walk on (key, id), so the cost per page stays flat and
//! rows refreshed meanwhile (whose new date puts them past the cutoff) are
//! not seen twice.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::shard::Shard;
use crate::domain::stamp::error_stamp_bound;
use crate::domain::timefmt;
use crate::supabase::store::{filter, Filters};

#[derive(Debug, Clone)]
pub struct DueQuery {
    pub older_than: Duration,
    pub retry_errors_after: Duration,
    pub force: bool,
    pub shard: Option<Shard>,
    pub now: OffsetDateTime,
}

/// One keyset walk: its conditions and the key it is ordered by.
pub struct Phase {
    pub filters: Filters,
    pub order_key: &'static str,
}

impl DueQuery {
    /// Two keyset walks, oldest first by one key, `refresh_due_at` =
    /// coalesce(last_refresh_date, created_at): rows whose key is unknown
    /// (neither date), by id; then the rest by key. With `--force` the
    /// cutoff is the run's start: every enabled session not refreshed since,
    /// each once (a refreshed row's key moves past the cutoff).
    pub fn phases(&self) -> [Phase; 2] {
        let cutoff = if self.force {
            timefmt::rfc3339(self.now)
        } else {
            timefmt::rfc3339(self.now - self.older_than)
        };
        let mut common = vec![filter::enabled()];
        if !self.force {
            common.push(self.error_filter());
        }
        let mut unknown = common.clone();
        unknown.push(filter::is_null("refresh_due_at"));
        let mut dated = common;
        dated.push(filter::lt("refresh_due_at", &cutoff));
        [
            Phase {
                filters: unknown,
                order_key: "id",
            },
            Phase {
                filters: dated,
                order_key: "refresh_due_at",
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

    /// The rows to walk: these phases, then only the shard's ids.
    pub fn selection(&self) -> Selection {
        Selection {
            phases: self.phases().into(),
            shard: self.shard,
        }
    }
}

/// Rows to stream: keyset walks one after the other, cut to a shard.
pub struct Selection {
    pub phases: Vec<Phase>,
    pub shard: Option<Shard>,
}

impl Selection {
    /// Every session with auto refresh enabled, by id (what `probe --all`
    /// asks about).
    pub fn enabled(shard: Option<Shard>) -> Self {
        Self {
            phases: vec![Phase {
                filters: vec![filter::enabled()],
                order_key: "id",
            }],
            shard,
        }
    }

    pub fn in_shard(&self, id: &str) -> bool {
        self.shard.is_none_or(|s| s.holds(id))
    }
}
