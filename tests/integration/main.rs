//! Integration tests: the real binary against a real PostgreSQL + postrust
//! stack and a simulated AimHarder, all on 127.0.0.1. One test binary, so one
//! throwaway cluster serves every test; each test has its own schema. The
//! stack, the simulated servers and the runner are the test kit's
//! (`crates/testkit`, `aimharder_testkit`).

use aimharder_testkit::run::Bin;

/// The binary under test, as Cargo built it for this test target.
pub const BIN: Bin = Bin::new(env!("CARGO_BIN_EXE_aimharder-refresh"));

mod claims;
mod confirm;
mod cookie_hosts;
mod deploy;
mod errors;
mod faults;
mod journal;
mod leases;
mod operations;
mod plans;
mod politeness;
mod probe;
mod re_enable;
mod refresh_all;
mod refresh_one;
mod scale;
mod schema;
mod secrets;
mod selection;
mod settings;
mod signals;
mod stack_contract;
mod status;
mod store_faults;
mod supabase_faults;
mod supabase_keys;
mod token_update;
mod workflows;
mod write_back;
