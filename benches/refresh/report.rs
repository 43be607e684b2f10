//! The report, in Markdown: for the scenarios behind the counting proxy two
//! tables (figures, then where the time and CPU went) and the `status`
//! timings; then the gateway runs' tables (`remote.rs`) and the reading
//! times (`linear.rs`); then each target, `ok` or `MISSED`.

use std::time::Duration;

use aimharder_refresh::internals::PAGE_SIZE;

use crate::cpu::cores;
use crate::linear::LinearMeasured;
use crate::measure::{find, mib, ms, secs, Kind, Measured, Targets};
use crate::remote::GatewayMeasured;
use crate::{linear, remote, rss, status, throughput};

/// Everything one benchmark run measured.
pub struct Results {
    /// Behind the counting proxy: base, tail, rss-small, rss-big, custom.
    pub proxied: Vec<Measured>,
    /// Through the gateway: remote (one per hold), limit1.
    pub gateway: Vec<GatewayMeasured>,
    pub linear: Option<LinearMeasured>,
}

fn latency(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

pub fn report(quick: bool, all: &Results) {
    println!();
    println!(
        "release binary, {}",
        if quick { "quick sizes" } else { "full sizes" }
    );
    if !all.proxied.is_empty() {
        proxied(&all.proxied);
    }
    if !all.gateway.is_empty() {
        remote::print(&all.gateway);
    }
    if let Some(measured) = &all.linear {
        linear::print(measured);
    }

    // Targets (they are stated for the full sizes).
    println!();
    if quick {
        // With N = 1,000 the last slow answers (up to 1 s) weigh on a 2 s
        // bound, and a 10× smaller N gives memory less time to settle.
        println!("(quick sizes: the timing and memory targets are meant for the full run)");
    }
    let mut targets = Targets::default();
    check_proxied(&all.proxied, &mut targets);
    remote::check(&all.gateway, &mut targets);
    if let Some(measured) = &all.linear {
        linear::check(measured, &mut targets);
    }
    println!();
    if targets.missed() == 0 {
        println!("all targets met");
    } else {
        println!("{} target(s) missed", targets.missed());
    }
}

/// The tables of the scenarios behind the counting proxy.
fn proxied(results: &[Measured]) {
    println!();
    println!("refresh-all --rate 0 --json behind the counting proxy:");
    println!();
    println!("| scenario | N | L | C | tail | wall s | bound s | ratio | REST/session | GET | POST | other | peak RSS MiB | recorded |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let s = &m.scenario;
        let other = m.rest.total() - m.rest.get() - m.rest.post();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {} | {}/{} |",
            s.name,
            s.n,
            latency(s.latency),
            s.concurrency,
            if s.tail { "1/50 × 1s" } else { "off" },
            secs(m.wall),
            secs(s.bound()),
            m.wall.as_secs_f64() / s.bound().as_secs_f64(),
            m.rest.total() as f64 / s.n as f64,
            m.rest.get(),
            m.rest.post(),
            other,
            mib(m.rss_kib),
            m.recorded,
            s.n,
        );
    }
    println!();
    println!(
        "Where the time and CPU went: CPU seconds during the run ({} cores × wall available; \
         irq = kernel interrupt work, mostly loopback TCP; others = anything else on the machine), \
         REST waits (to the first byte of the answer) as seen by the proxy:",
        cores()
    );
    println!();
    println!("| scenario | first call ms | max in flight | CPU binary | CPU postrust | CPU postgres | CPU bench | CPU irq | CPU others | CPU idle | GET wait ms | PATCH wait ms | REST conns | RSS ¼ ½ ¾ end MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for m in results {
        let ours = m.cpu_bin + m.cpu_postrust + m.cpu_postgres + m.cpu_bench + m.cpu_irq;
        let capacity = m.wall * cores();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.scenario.name,
            ms(m.first_call),
            m.max_in_flight,
            secs(m.cpu_bin),
            secs(m.cpu_postrust),
            secs(m.cpu_postgres),
            secs(m.cpu_bench),
            secs(m.cpu_irq),
            secs(m.cpu_machine.saturating_sub(ours)),
            secs(capacity.saturating_sub(m.cpu_machine)),
            ms(m.rest.mean_wait[0]),
            ms(m.rest.mean_wait[1]),
            m.rest.connections,
            m.rss_quarters.map(|q| format!("{q:.1}")).join(" "),
        );
    }
    status::print_times(results);
}

fn check_proxied(results: &[Measured], targets: &mut Targets) {
    throughput::check(results, targets);
    if let Some(big) = find(results, Kind::RssBig) {
        rss::check(big, find(results, Kind::RssSmall), targets);
        status::check(big, targets);
    }
    for m in results {
        let n = m.scenario.n;
        // Claims, batched writes and releases are database functions
        // (POST); no row is written one request at a time.
        targets.check(
            m.rest.patch() == 0,
            format!("{}: {} PATCH == 0", m.scenario.name, m.rest.patch()),
        );
        // Three walks (never refreshed without a date, never refreshed,
        // refreshed), each ending on a short page.
        let bound = n / PAGE_SIZE + 3;
        targets.check(
            m.rest.get() <= bound as u64,
            format!(
                "{}: {} GET <= N/{PAGE_SIZE} + 3 = {bound}",
                m.scenario.name,
                m.rest.get()
            ),
        );
    }
}
