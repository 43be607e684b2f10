//! The Supabase side: the key, a small PostgREST layer, the sessions table,
//! the due-session walks and the pager that reads them, and the database
//! functions of the migrations (claims, batched writes, counts). Every
//! condition and count is built here: commands say which sessions they
//! want ([`pager::Sessions`]), never how to select them.

pub mod claims;
pub mod counts;
pub mod due;
pub mod error;
pub mod filter;
pub mod key;
pub mod pager;
pub mod rest;
pub mod store;
pub mod write;
