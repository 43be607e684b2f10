//! Plain types and rules, no I/O: a session, what became of it, the error
//! stamp, shards, time.

pub(crate) mod age;
pub(crate) mod email;
pub(crate) mod exit;
pub(crate) mod outcome;
pub(crate) mod presentation;
pub(crate) mod probe;
pub(crate) mod run_id;
pub(crate) mod schedule;
pub(crate) mod session;
pub(crate) mod shard;
pub(crate) mod stamp;
pub(crate) mod status;
pub(crate) mod timefmt;
