//! Test support: the Supabase-like stack, the simulated AimHarder, and a
//! builder that runs the binary.
#![allow(dead_code)]

pub mod aimharder;
pub mod gateway;
pub mod proxy;
pub mod recorder;
pub mod run;
pub mod stack;
