//! Refreshing sessions: the due rows streamed in, the pipeline that runs
//! them under a pace and a concurrency bound, retries and write-back.

pub mod breaker;
pub mod caller;
pub mod due;
pub mod journal;
pub mod pipeline;
pub mod probe;
pub mod replay;
