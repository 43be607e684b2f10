//! Refreshing sessions: the due rows streamed in and claimed just in time,
//! the pipeline that runs them under a pace and a concurrency bound with
//! retries, and the write-back beside it.

pub(crate) mod breaker;
pub(crate) mod caller;
pub(crate) mod claimer;
pub(crate) mod confirm;
pub(crate) mod holds;
pub(crate) mod journal;
pub(crate) mod pipeline;
pub(crate) mod probe;
pub(crate) mod replay;
pub(crate) mod taking;
pub(crate) mod writer;
