//! Refreshing sessions: the due rows streamed in, the pipeline that runs
//! them under a pace and a concurrency bound, retries and write-back.

pub mod due;
pub mod pipeline;
