//! Refreshing sessions: the due rows streamed in and claimed just in time,
//! the pipeline that runs them under a pace and a concurrency bound with
//! retries, and the write-back beside it.

pub mod breaker;
pub mod caller;
pub mod claimer;
pub mod confirm;
pub mod holds;
pub mod journal;
pub mod pipeline;
pub mod probe;
pub mod replay;
pub mod taking;
pub mod writer;
