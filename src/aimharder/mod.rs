//! The AimHarder side: the keep-alive call, the page it answers with, and
//! the cookie jar.

pub mod api;
pub mod client;
pub mod cookies;
pub mod parser;
