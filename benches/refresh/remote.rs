//! `remote` and `limit1`: `refresh-all` as it runs in production, against
//! `SUPABASE_URL` with a secret key, through the Supabase-like gateway of
//! the test kit. For `remote` the gateway holds every REST request (0, 60
//! and 120 ms) as if Supabase were that far away: reads, claims and writes
//! then wait far longer than on loopback, and the question is whether the
//! AimHarder slots still stay full. `limit1` asks what a run of one session
//! costs in REST requests. Requests are counted by kind from what the
//! gateway recorded, so no counting proxy is needed here.

use std::time::{Duration, Instant};

use aimharder_testkit::aimharder::FakeAimHarder;
use aimharder_testkit::gateway::{Answer, Gateway, GatewayRequest, RequestKinds};
use aimharder_testkit::stack::TestDb;

use crate::binary::run_binary;
use crate::measure::{mib, ms, secs, Kind, Scenario, Targets};
use crate::scenario::{seed, verify};

/// How far away Supabase is made to be: one `remote` run each.
pub const HOLDS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(60),
    Duration::from_millis(120),
];

/// `limit1`'s table: many more due sessions than the one asked for, so a
/// run that read, claimed or released more than it needs would show it.
const LIMIT1_N: usize = 200;

/// The refresh-all concurrency when none is given (`--concurrency`).
const DEFAULT_CONCURRENCY: usize = 4;

/// One run through the gateway, measured.
pub struct GatewayMeasured {
    pub scenario: Scenario,
    pub hold: Duration,
    pub wall: Duration,
    pub rss_kib: i64,
    pub rest: RequestKinds,
    pub refreshed: u64,
    pub recorded: usize,
    /// From spawn to the first AimHarder call (start-up, first page, claim).
    pub first_call: Duration,
    pub max_in_flight: usize,
    /// Mean time between one claim reaching Supabase and the next: near
    /// the hold, the claims went one after another, each waiting on the last.
    pub claim_gap: Duration,
}

/// `remote`: the base scenario's shape (L = 50 ms, C = 32) with `n`
/// sessions; run once for each of [`HOLDS`].
pub fn remote(n: usize) -> Scenario {
    Scenario {
        kind: Kind::Remote,
        name: "remote",
        n,
        latency: Duration::from_millis(50),
        concurrency: 32,
        tail: false,
    }
}

/// `limit1`: `refresh-all --limit 1` on [`LIMIT1_N`] due sessions, at the
/// default concurrency (the command does not set one).
pub fn limit1() -> Scenario {
    Scenario {
        kind: Kind::Limit1,
        name: "limit1",
        n: LIMIT1_N,
        latency: Duration::from_millis(50),
        concurrency: DEFAULT_CONCURRENCY,
        tail: false,
    }
}

/// A fresh schema with `s.n` due sessions, the gateway holding each request
/// for `hold`, and one `refresh-all` of the release binary.
pub async fn run(s: Scenario, hold: Duration) -> GatewayMeasured {
    let db = TestDb::new().await;
    db.apply_migrations();
    seed(&db, s.n);
    let aim = FakeAimHarder::with_latency(s.latency).await;
    let gateway = Gateway::start(&db.rest_url()).await;
    gateway.hold_each(hold);
    let dir = tempfile::tempdir().expect("temp dir");

    // What an operator sets for a hosted project; no SUPABASE_REST_URL, so
    // the tool derives `{SUPABASE_URL}/rest/v1` itself.
    let envs = vec![
        ("SUPABASE_URL".to_string(), gateway.supabase_url()),
        (
            "SUPABASE_SECRET_KEY".to_string(),
            gateway.secret_key().to_string(),
        ),
        ("AIMHARDER_BASE_URL".to_string(), aim.url()),
    ];
    let (mut args, expect) = match s.kind {
        Kind::Limit1 => (vec!["--limit".to_string(), "1".to_string()], 1),
        _ => (
            vec!["--concurrency".to_string(), s.concurrency.to_string()],
            s.n,
        ),
    };
    args.insert(0, "refresh-all".to_string());
    args.extend(["--rate", "0", "--json"].map(str::to_string));

    let started = Instant::now();
    let run = run_binary(&args, &envs, dir.path()).await;
    let name = format!("{} (hold {} ms)", s.name, hold.as_millis());
    if run.code != 0 {
        explain_failure(&gateway, started);
    }
    let (recorded, refreshed) = verify(&name, &run, dir.path(), &db, expect);
    let first_call = aim
        .arrival_times()
        .first()
        .map_or(Duration::ZERO, |t| t.duration_since(started));

    let claims: Vec<Instant> = gateway
        .requests()
        .iter()
        .filter(|r| r.target.split('?').next() == Some("/rest/v1/rpc/refresh_claim"))
        .map(|r| r.at)
        .collect();
    let claim_gap = match (claims.iter().min(), claims.iter().max()) {
        (Some(first), Some(last)) if claims.len() > 1 => {
            (*last - *first) / (claims.len() as u32 - 1)
        }
        _ => Duration::ZERO,
    };

    // Dropping the table now keeps its autovacuum out of the next scenario.
    db.sql("DROP TABLE auth_sessions CASCADE");
    GatewayMeasured {
        scenario: s,
        hold,
        wall: run.wall,
        rss_kib: run.rss_kib,
        rest: gateway.counts_by_kind(),
        refreshed,
        recorded,
        first_call,
        max_in_flight: aim.max_in_flight(),
        claim_gap,
    }
}

/// What the gateway saw of a failed run: the requests postrust did not
/// answer 2xx, on stderr before the benchmark stops.
fn explain_failure(gateway: &Gateway, started: Instant) {
    let failed: Vec<GatewayRequest> = gateway
        .requests()
        .into_iter()
        .filter(|r| !matches!(r.answer, Answer::Forwarded(200..=299)))
        .collect();
    eprintln!(
        "gateway: {} of {} requests not answered 2xx by postrust; the first:",
        failed.len(),
        gateway.total()
    );
    for r in failed.iter().take(5) {
        let path = r.target.split('?').next().unwrap_or_default();
        let at = r.at.saturating_duration_since(started);
        eprintln!(
            "  {} ms: {} {path}: {:?}",
            at.as_millis(),
            r.method,
            r.answer
        );
    }
}

impl GatewayMeasured {
    fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.scenario.bound().as_secs_f64()
    }

    fn per_session(&self, requests: usize) -> f64 {
        requests as f64 / self.refreshed.max(1) as f64
    }

    fn label(&self) -> String {
        match self.scenario.kind {
            Kind::Remote => format!("remote, hold {} ms", self.hold.as_millis()),
            _ => self.scenario.name.to_string(),
        }
    }
}

/// The `remote` figures, then every gateway run's REST requests by kind.
pub fn print(results: &[GatewayMeasured]) {
    let remote: Vec<&GatewayMeasured> = results
        .iter()
        .filter(|m| m.scenario.kind == Kind::Remote)
        .collect();
    if !remote.is_empty() {
        println!();
        println!(
            "refresh-all --concurrency C --rate 0 --json through the Supabase-like gateway \
             (SUPABASE_URL + secret key), each REST request held for `hold` before it is served:"
        );
        println!();
        println!("| run | N | L | C | wall s | bound s | ratio | REST/session | sessions/claim | ms between claims | first call ms | max in flight | peak RSS MiB | recorded |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in remote {
            let s = &m.scenario;
            println!(
                "| {} | {} | {}ms | {} | {} | {} | {:.3} | {:.4} | {:.1} | {} | {} | {} | {} | {}/{} |",
                m.label(),
                s.n,
                s.latency.as_millis(),
                s.concurrency,
                secs(m.wall),
                secs(s.bound()),
                m.ratio(),
                m.per_session(m.rest.total()),
                m.refreshed as f64 / m.rest.claims.max(1) as f64,
                ms(m.claim_gap),
                ms(m.first_call),
                m.max_in_flight,
                mib(m.rss_kib),
                m.recorded,
                s.n,
            );
        }
    }
    println!();
    println!(
        "REST requests by kind, as the gateway recorded them (per refreshed session in brackets):"
    );
    println!();
    println!("| run | N | refreshed | total | pages (GET) | claims | writes | renewals | releases | other |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let r = &m.rest;
        let cell = |count: usize| format!("{count} ({:.4})", m.per_session(count));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.label(),
            m.scenario.n,
            m.refreshed,
            cell(r.total()),
            cell(r.pages),
            cell(r.claims),
            cell(r.writes),
            cell(r.renewals),
            cell(r.releases),
            cell(r.other),
        );
    }
}

/// remote: ratio <= 1.10 with no hold (loopback through the gateway) and
/// <= 1.15 at 120 ms; at most 0.1 REST requests per refreshed session at
/// every hold. limit1: at most 6 REST requests in all.
pub fn check(results: &[GatewayMeasured], targets: &mut Targets) {
    for m in results {
        let label = m.label();
        match m.scenario.kind {
            Kind::Remote => {
                let limit = match m.hold.as_millis() {
                    0 => Some(1.10),
                    120 => Some(1.15),
                    _ => None,
                };
                if let Some(limit) = limit {
                    targets.check(
                        m.ratio() <= limit,
                        format!("{label}: ratio {:.3} <= {limit:.2}", m.ratio()),
                    );
                }
                let per_session = m.per_session(m.rest.total());
                targets.check(
                    per_session <= 0.1,
                    format!("{label}: {per_session:.4} REST requests per refreshed session <= 0.1"),
                );
            }
            _ => targets.check(
                m.rest.total() <= 6,
                format!("{label}: {} REST requests <= 6", m.rest.total()),
            ),
        }
    }
}
