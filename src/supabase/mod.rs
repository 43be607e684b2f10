//! The Supabase side: the key, a small PostgREST layer, the sessions table
//! and the due-session queries.

pub mod due;
pub mod key;
pub mod rest;
pub mod store;
