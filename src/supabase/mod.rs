//! The Supabase side: the key, a small PostgREST layer, the sessions table,
//! the due-session walks and the pager that reads them, and the database
//! functions of the migrations (claims, batched writes, counts). Every
//! condition and count is built here: commands say which sessions they
//! want ([`pager::Sessions`]), never how to select them.

pub(crate) mod claims;
pub(crate) mod counts;
pub(crate) mod due;
pub(crate) mod error;
pub(crate) mod filter;
pub(crate) mod key;
pub(crate) mod pager;
pub(crate) mod rest;
pub(crate) mod store;
pub(crate) mod write;
