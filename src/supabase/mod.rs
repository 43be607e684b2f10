//! The Supabase side: the key, a small PostgREST layer, the sessions table,
//! the due-session walks, and the database functions of the migrations
//! (claims, batched writes, counts).

pub mod claims;
pub mod counts;
pub mod due;
pub mod error;
pub mod filter;
pub mod key;
pub mod rest;
pub mod store;
pub mod write;
