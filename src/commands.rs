//! The refresh commands and the command dispatch, from checked settings to
//! a result and exit code (`status` is in `status.rs`).

use std::time::Duration;

use anyhow::Context as _;
use clap::CommandFactory;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aimharder::AimHarder;
use crate::cli::{Cli, Command, GlobalArgs, RefreshAllArgs, RefreshOneArgs};
use crate::config::{AimHarderConfig, StoreConfig};
use crate::engine::{Engine, EngineSettings};
use crate::error::{verdict_code, AppError, RunVerdict};
use crate::report::{Outcome, Output, RunSink, SessionReport, Totals};
use crate::select::{DueQuery, DueStream};
use crate::store::{Store, StoreError};
use crate::timefmt;

const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);

/// How a command ended: its exit code, a one-line summary (for the
/// healthcheck), and session counts where it refreshed any.
pub struct Finished {
    pub code: u8,
    pub summary: String,
    pub totals: Option<Totals>,
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<Finished> {
    let output = Output {
        json: cli.global.json,
        show_emails: cli.global.show_emails,
    };
    match cli.command {
        Command::RefreshOne(args) => {
            let store = connect(&cli.global)?;
            refresh_one(&cli.global, store, output, args).await
        }
        Command::RefreshAll(args) => {
            let store = connect(&cli.global)?;
            refresh_all(&cli.global, store, output, args).await
        }
        Command::Status(args) => crate::status::status(connect(&cli.global)?, output, args).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "aimharder-refresh",
                &mut std::io::stdout(),
            );
            Ok(Finished::quiet())
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(Finished::quiet())
        }
    }
}

impl Finished {
    /// 75 when due sessions were left, 1 when any session failed, else 0.
    fn refreshing(totals: Totals, summary: String, left: bool) -> Self {
        let verdict = if left {
            RunVerdict::Interrupted
        } else if totals.has_problems() {
            RunVerdict::Problems
        } else {
            RunVerdict::Clean
        };
        Self {
            code: verdict_code(verdict),
            summary,
            totals: Some(totals),
        }
    }

    fn quiet() -> Self {
        Self {
            code: 0,
            summary: String::new(),
            totals: None,
        }
    }
}

fn connect(global: &GlobalArgs) -> anyhow::Result<Store> {
    let config = StoreConfig::from_args(global)?;
    let store = Store::new(&config).map_err(AppError::from)?;
    if let Some(hint) = store.key_hint() {
        tracing::warn!("{hint}");
    }
    Ok(store)
}

/// How hard one command may press on AimHarder.
struct Limits {
    request_timeout: Duration,
    concurrency: usize,
    rate: Option<f64>,
}

fn engine(
    global: &GlobalArgs,
    store: Store,
    output: Output,
    limits: Limits,
    stop: CancellationToken,
    deadline: Option<Instant>,
) -> anyhow::Result<Engine> {
    let config = AimHarderConfig::from_args(global, limits.request_timeout)?;
    let aimharder = AimHarder::new(&config).context("cannot build the AimHarder client")?;
    let settings = EngineSettings {
        concurrency: limits.concurrency,
        rate: limits.rate,
        default_fingerprint: config.default_fingerprint,
        output,
        first_retry_delay: FIRST_RETRY_DELAY,
    };
    Ok(Engine::new(store, aimharder, settings, stop, deadline))
}

async fn refresh_one(
    global: &GlobalArgs,
    store: Store,
    output: Output,
    args: RefreshOneArgs,
) -> anyhow::Result<Finished> {
    let row = match (&args.id, &args.email) {
        (Some(id), _) => store
            .by_id(id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| {
                AppError::NotFound(not_found(&store, &format!("no session with id {id}")))
            })?,
        (None, Some(email)) => {
            let mut rows = store
                .by_email(email, args.fingerprint.as_deref())
                .await
                .map_err(AppError::from)?;
            match rows.len() {
                0 => {
                    return Err(
                        AppError::NotFound(not_found(&store, "no session for that email")).into(),
                    )
                }
                1 => rows.remove(0),
                _ => return Err(AppError::Usage(ambiguous(&rows, output)).into()),
            }
        }
        (None, None) => return Err(AppError::Usage("give --id or --email".into()).into()),
    };
    if let Some(min_age) = args.if_older_than {
        let last = row.last_refresh_date.as_deref().and_then(timefmt::parse);
        if last.is_some_and(|t| timefmt::now() - t < min_age) {
            let report = SessionReport::new(
                &row.id,
                output.email(row.user_email.as_deref()).as_deref(),
                Outcome::Skipped,
            )
            .with_error(format!(
                "refreshed less than {} ago",
                humantime::format_duration(min_age)
            ));
            return finish_one(output, &report);
        }
    }
    let limits = Limits {
        request_timeout: args.http.request_timeout,
        concurrency: 1,
        rate: None,
    };
    let engine = engine(
        global,
        store,
        output,
        limits,
        CancellationToken::new(),
        None,
    )?;
    let report = engine.refresh(row).await;
    finish_one(output, &report)
}

fn finish_one(output: Output, report: &SessionReport) -> anyhow::Result<Finished> {
    let summary = output.session(report)?;
    let mut totals = Totals::default();
    totals.add(report.outcome);
    crate::github::annotate(report);
    let problems = if report.outcome.is_problem() {
        std::slice::from_ref(report)
    } else {
        &[]
    };
    crate::github::step_summary("refresh-one", &totals, problems);
    Ok(Finished::refreshing(totals, summary, false))
}

fn not_found(store: &Store, what: &str) -> String {
    match store.key_hint() {
        Some(hint) => format!("{what}; {hint}"),
        None => format!("{what}; check the id or email (status --sessions lists them)"),
    }
}

fn ambiguous(rows: &[crate::store::SessionRow], output: Output) -> String {
    let candidates: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} (fingerprint {}, last refresh {})",
                r.id,
                r.fingerprint.as_deref().unwrap_or("-"),
                r.last_refresh_date.as_deref().unwrap_or("never")
            )
        })
        .collect();
    let who = output
        .email(rows.first().and_then(|r| r.user_email.as_deref()))
        .unwrap_or_default();
    format!(
        "{who} has {} sessions; pick one with --fingerprint or --id: {}",
        rows.len(),
        candidates.join("; ")
    )
}

async fn refresh_all(
    global: &GlobalArgs,
    store: Store,
    output: Output,
    args: RefreshAllArgs,
) -> anyhow::Result<Finished> {
    let started = timefmt::now();
    let clock = Instant::now();
    let query = DueQuery {
        older_than: args.older_than,
        retry_errors_after: args.retry_errors_after,
        force: args.force,
        shard: args.shard,
        now: started,
    };
    let stop = CancellationToken::new();
    let stopped_by = std::sync::Arc::new(std::sync::Mutex::new(None::<&'static str>));
    let deadline = args.max_duration.map(|d| clock + d);
    watch_for_stop(stop.clone(), deadline, stopped_by.clone());

    let bar = progress_bar(&store, &query, args.limit).await;
    let due = DueStream::start(store.on_own_connections().map_err(AppError::from)?, query);
    let mut sink = RunSink::start(output, args.dry_run, &timefmt::rfc3339(started))?;
    let mut write_error = None;
    let mut record = |report: SessionReport| {
        if let Err(e) = sink.session(&report) {
            write_error.get_or_insert(e);
        }
        bar.inc(1);
        let t = sink.totals();
        let problems = t.failed + t.expired + t.unrecorded;
        if problems > 0 {
            bar.set_message(format!("{problems} failed"));
        }
    };
    let (left, read_error) = if args.dry_run {
        (false, dry_run(due, args.limit, output, &mut record).await)
    } else {
        let limits = Limits {
            request_timeout: args.http.request_timeout,
            concurrency: args.concurrency as usize,
            rate: Some(args.rate).filter(|r| *r > 0.0),
        };
        let engine = engine(
            global,
            store.clone(),
            output,
            limits,
            stop.clone(),
            deadline,
        )?;
        let run = engine.run_all(due, args.limit, &mut record).await;
        (run.left, run.read_error)
    };
    bar.finish_and_clear();
    crate::logging::detach_bar();
    if let Some(e) = write_error {
        return Err(e).context("cannot write the results to stdout");
    }
    let stopped = if left {
        *stopped_by.lock().unwrap_or_else(|e| e.into_inner())
    } else {
        None
    };
    let (totals, summary) = sink.finish(clock.elapsed().as_millis(), stopped)?;
    if totals.selected == 0 {
        if let Some(hint) = store.key_hint() {
            tracing::warn!("nothing selected; {hint}");
        }
    }
    if let Some(e) = read_error {
        return Err(AppError::Store(e))
            .context("reading due sessions stopped the run; the sessions above were handled");
    }
    Ok(Finished::refreshing(totals, summary, left))
}

/// Lists what would be refreshed; `Some` if reading stopped early.
async fn dry_run(
    mut due: DueStream,
    limit: Option<u64>,
    output: Output,
    record: &mut impl FnMut(SessionReport),
) -> Option<StoreError> {
    let mut listed = 0u64;
    while limit.is_none_or(|l| listed < l) {
        match std::future::poll_fn(|cx| due.poll_next(cx)).await {
            Some(Ok(row)) => {
                listed += 1;
                record(SessionReport::new(
                    &row.id,
                    output.email(row.user_email.as_deref()).as_deref(),
                    Outcome::Due,
                ));
            }
            Some(Err(e)) => return Some(e),
            None => break,
        }
    }
    None
}

/// Deadline and SIGINT/SIGTERM both mean: start nothing new, finish what runs.
fn watch_for_stop(
    stop: CancellationToken,
    deadline: Option<Instant>,
    why: std::sync::Arc<std::sync::Mutex<Option<&'static str>>>,
) {
    tokio::spawn(async move {
        let deadline_hit = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = deadline_hit => "deadline reached",
            _ = tokio::signal::ctrl_c() => "interrupted (SIGINT)",
            _ = sigterm() => "terminated (SIGTERM)",
            _ = stop.cancelled() => return,
        };
        tracing::warn!("{reason}: starting nothing new, finishing requests in flight");
        if let Ok(mut w) = why.lock() {
            *w = Some(reason);
        }
        stop.cancel();
    });
}

async fn sigterm() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

/// A bar on a terminal only; under cron or CI nothing is drawn.
/// The length is the server's count of due sessions, cut to `--limit` and
/// divided by the shard count (shards are drawn by hash, so it is an estimate).
async fn progress_bar(store: &Store, query: &DueQuery, limit: Option<u64>) -> ProgressBar {
    let target = ProgressDrawTarget::stderr();
    if target.is_hidden() {
        return ProgressBar::hidden();
    }
    let due = store.count(&query.count_filters()).await.unwrap_or(0);
    let shard_share = due / u64::from(query.shard.map_or(1, |s| s.count));
    let total = limit.map_or(shard_share, |l| l.min(shard_share));
    let bar = ProgressBar::with_draw_target(Some(total), target);
    crate::logging::attach_bar(&bar);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} eta {eta}") {
        bar.set_style(style);
    }
    bar
}
