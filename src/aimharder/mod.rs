//! The AimHarder side: the keep-alive call, the page it answers with, and
//! the cookie jar.

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod cookies;
pub(crate) mod parser;
