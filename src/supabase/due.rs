//! Which sessions are due, as conditions the server evaluates.
//!
//! Oldest first: sessions never refreshed (by creation time), then the rest
//! by last refresh. Each phase is a keyset walk on (sort key, id), so the
//! cost per page stays flat and rows refreshed meanwhile (whose new date puts
//! them past the cutoff) are not seen twice.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::shard::{shard_of, Shard};
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
    pub fn phases(&self) -> [Phase; 2] {
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

    pub fn in_shard(&self, id: &str) -> bool {
        self.shard.is_none_or(|s| shard_of(id, s.count) == s.index)
    }
}
