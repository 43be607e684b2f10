//! The stacks most tests start, in one place: a database of the test's own
//! with the shipped migrations applied, a simulated AimHarder, and, for
//! tests of what a Supabase project does, the gateway in front.

use std::time::Duration;

use crate::aimharder::FakeAimHarder;
use crate::gateway::Gateway;
use crate::stack::TestDb;

/// A test's own database, migrated, and a simulated AimHarder.
pub async fn stack() -> (TestDb, FakeAimHarder) {
    stack_with_latency(Duration::ZERO).await
}

/// [`stack`], with a simulated AimHarder that takes `latency` over each
/// answer: for tests of what runs while calls are in flight.
pub async fn stack_with_latency(latency: Duration) -> (TestDb, FakeAimHarder) {
    let db = TestDb::new().await;
    db.apply_migrations();
    (db, FakeAimHarder::with_latency(latency).await)
}

/// [`stack`], with the Supabase-like gateway in front of its `postrust`.
pub async fn gateway_stack() -> (TestDb, FakeAimHarder, Gateway) {
    let (db, aim) = stack().await;
    let gw = Gateway::start(&db.rest_url()).await;
    (db, aim, gw)
}
