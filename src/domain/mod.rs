//! Plain types and rules, no I/O: a session, what became of it, the error
//! stamp, shards, time.

pub mod age;
pub mod email;
pub mod exit;
pub mod outcome;
pub mod presentation;
pub mod probe;
pub mod run_id;
pub mod schedule;
pub mod session;
pub mod shard;
pub mod stamp;
pub mod status;
pub mod timefmt;
