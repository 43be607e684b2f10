//! The local stack that `aimharder-refresh`'s integration tests, benchmark
//! and demo run against, all on 127.0.0.1:
//!
//! - [`stack`]: a throwaway PostgreSQL cluster per process, and per test a
//!   schema and a `postrust` (PostgREST-compatible) of its own ([`stack::TestDb`]);
//! - [`gateway`]: a Supabase-like API gateway in front of that `postrust`
//!   (`sb_secret_`/`sb_publishable_` keys, outages, redirects, records);
//! - [`proxy`]: a fault-injecting proxy in front of `postrust`;
//! - [`forward_proxy`]: a forward HTTP proxy that records what passes (`AIMHARDER_PROXY`);
//! - [`aimharder`]: a simulated AimHarder answering `/setrefresh` from a script;
//! - [`recorder`]: a server that answers 200 and records (a healthcheck stand-in);
//! - [`start`]: the stacks most tests start (a migrated database and a
//!   simulated AimHarder, optionally behind the gateway);
//! - [`run`]: runs the binary with a clean environment ([`run::Bin`]) and
//!   checks the exit code a test expects ([`run::Run::exits`]);
//! - [`seed`]: the session rows a test starts from ([`seed::Seed`],
//!   [`seed::due_in_bulk`]);
//! - [`listen`]: the accept loop the servers above share, and [`wire`]: the
//!   HTTP/1.1 they read (and a one-shot client for tests).
//!
//! Needs PostgreSQL's server binaries and `postrust`; `scripts/test-deps.sh`
//! installs both.

pub mod aimharder;
pub mod forward_proxy;
pub mod gateway;
pub mod listen;
pub mod proxy;
pub mod recorder;
pub mod run;
pub mod seed;
pub mod stack;
pub mod start;
pub mod wire;
