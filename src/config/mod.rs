//! Every setting, read from the command line and environment and checked
//! here, once, before the first request or the first byte of output: a bad
//! setting never leaves a half-written JSON document behind.

mod connections;
pub(crate) mod dotenv;
mod durations;
pub(crate) mod error;
pub(crate) mod filters;
pub(crate) mod keys;

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::aimharder::client::{AimHarderConfig, Endpoint};
use crate::cli::{
    Cli, Command, EndpointArg, GlobalArgs, LogFormat, PaceArgs, ProbeArgs, RefreshAllArgs,
    RefreshOneArgs, ShardArg, StatusArgs, TargetArgs,
};
use crate::config::connections::{aimharder_config, store_config};
use crate::config::durations::{claim_lease, jitter};
use crate::config::error::ConfigError;
use crate::domain::presentation::{LogSettings, Presentation};
use crate::domain::schedule::SchedulePlan;
use crate::domain::shard::Shard;
use crate::engine::journal;
use crate::supabase::store::StoreConfig;

/// What runs around a refresh run: a healthcheck to ping, a metrics file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) healthcheck: Option<Url>,
    pub(crate) metrics_file: Option<PathBuf>,
    /// The due window the metrics' state counts use: the endpoint's.
    pub(crate) due_older_than: Duration,
    /// The schedule a `refresh-all` runs, for the metrics' figures of
    /// whether it keeps up.
    pub(crate) schedule: Option<SchedulePlan>,
}

/// Where a command keeps results Supabase would not record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JournalSetting {
    /// The command calls nothing and writes nothing (`status`, a dry run).
    Unused,
    /// No `--state-dir`, `XDG_STATE_HOME` or `HOME` to put it in: the run
    /// goes on (keeping sessions alive matters more) and says so.
    Nowhere,
    File(journal::Journal),
}

/// One command's checked settings.
pub(crate) struct Settings {
    /// How the command writes its results.
    pub(crate) output: Presentation,
    pub(crate) hooks: Hooks,
    pub(crate) store: StoreConfig,
    /// The journal of unrecorded results, for commands that call AimHarder.
    pub(crate) journal: JournalSetting,
    pub(crate) command: CommandSettings,
}

/// The checked settings of the command to run, one variant per command
/// that reaches Supabase.
pub(crate) enum CommandSettings {
    RefreshOne(RefreshOne),
    RefreshAll(RefreshAll),
    Probe(Probe),
    Status(Status),
}

impl CommandSettings {
    /// The longest random wait before the command's first request, if it
    /// waits.
    pub(crate) fn jitter(&self) -> Option<Duration> {
        match self {
            CommandSettings::RefreshAll(args) => args.jitter,
            CommandSettings::Probe(Probe {
                target: ProbeTarget::All { jitter, .. },
                ..
            }) => *jitter,
            _ => None,
        }
    }

    /// The command's name as typed, which labels its metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CommandSettings::RefreshOne(_) => "refresh-one",
            CommandSettings::RefreshAll(_) => "refresh-all",
            CommandSettings::Probe(_) => "probe",
            CommandSettings::Status(_) => "status",
        }
    }
}

/// The one session `refresh-one` is about.
pub(crate) enum Target {
    Id(String),
    Email {
        email: String,
        fingerprint: Option<String>,
    },
}

/// The checked settings of `refresh-one`.
pub(crate) struct RefreshOne {
    pub(crate) target: Target,
    /// The session is skipped when it was refreshed more recently than this.
    pub(crate) if_older_than: Option<Duration>,
    pub(crate) aimharder: AimHarderConfig,
    /// How long a claim lasts if the run dies.
    pub(crate) claim_lease: Duration,
}

/// How hard a run may press on AimHarder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Requests in flight to AimHarder at once.
    pub(crate) concurrency: usize,
    /// Requests per second; `None` is no limit.
    pub(crate) rate: Option<f64>,
    /// Sessions failing in a row for the runner's reasons that stop the run
    /// (the circuit breaker; 0: never).
    pub(crate) max_consecutive_failures: u32,
}

/// The checked settings of `refresh-all`.
pub(crate) struct RefreshAll {
    /// A session is due once its last refresh (or its creation) is older
    /// than this.
    pub(crate) older_than: Duration,
    /// A failed session is due again only once its error is older than this.
    pub(crate) retry_errors_after: Duration,
    /// Every enabled session is taken, due or not.
    pub(crate) force: bool,
    pub(crate) pace: Pace,
    pub(crate) limit: Option<u64>,
    pub(crate) shard: Option<Shard>,
    /// Nothing new starts once this long has passed since the command started.
    pub(crate) max_duration: Option<Duration>,
    /// The longest random wait before the first request (none on a dry run).
    pub(crate) jitter: Option<Duration>,
    /// The run lists what it would refresh, and calls and writes nothing.
    pub(crate) dry_run: bool,
    pub(crate) aimharder: AimHarderConfig,
    /// How long a claim lasts if the run dies.
    pub(crate) claim_lease: Duration,
}

/// Which sessions `probe` asks about.
pub(crate) enum ProbeTarget {
    One(Target),
    /// Every session with auto refresh enabled.
    All {
        limit: Option<u64>,
        shard: Option<Shard>,
        /// The due window the counts by age follow: the endpoint's.
        due_window: Duration,
        /// The longest random wait before the first request.
        jitter: Option<Duration>,
    },
}

/// The checked settings of `probe`.
pub(crate) struct Probe {
    pub(crate) target: ProbeTarget,
    pub(crate) pace: Pace,
    pub(crate) aimharder: AimHarderConfig,
}

/// The checked settings of `status`.
pub(crate) struct Status {
    /// The due window `status` counts with (`--older-than`, else the
    /// configured endpoint's), and the schedule it checks.
    pub(crate) schedule: SchedulePlan,
    /// A session not refreshed within this long is stale.
    pub(crate) stale_after: Duration,
    /// Every session is listed too.
    pub(crate) sessions: bool,
    /// A problem (a stale session, an error, a schedule that cannot keep up)
    /// fails the run.
    pub(crate) check: bool,
}

impl Settings {
    /// Checked settings for a command that reaches Supabase; `None` for
    /// `completions` and `man`, which need none.
    pub(crate) fn from_cli(cli: &Cli) -> Result<Option<Self>, ConfigError> {
        let global = &cli.global;
        if matches!(cli.command, Command::Completions { .. } | Command::Man) {
            return Ok(None);
        }
        // The healthcheck and the metrics tell whether refreshing works: a
        // `status` or a dry run (reading a shared env file) must not ping
        // "success" nor overwrite the last run's metrics.
        let refreshing = match &cli.command {
            Command::RefreshOne(_) => true,
            Command::RefreshAll(args) => !args.dry_run,
            _ => false,
        };
        let mut hooks = if refreshing {
            hooks(global)?
        } else {
            Hooks::default()
        };
        // `status` writes the figures of the schedule it checks, as series
        // of its own, and nothing of a run's.
        if matches!(cli.command, Command::Status(_)) {
            hooks.metrics_file = metrics_file(global);
        }
        let store = store_config(global)?;
        // Whoever calls AimHarder writes earlier runs' journaled results
        // first; a dry run and `status` write nothing.
        let calls = refreshing || matches!(cli.command, Command::Probe(_));
        let journal = if calls {
            journal_file(global, &store)?
        } else {
            JournalSetting::Unused
        };
        let command = match &cli.command {
            Command::RefreshOne(args) => CommandSettings::RefreshOne(refresh_one(global, args)?),
            Command::RefreshAll(args) => {
                let settings = refresh_all(global, args)?;
                hooks.schedule = Some(SchedulePlan {
                    every: settings.older_than,
                    rate: settings.pace.rate,
                    runners: settings.shard.map_or(1, |s| s.count),
                });
                CommandSettings::RefreshAll(settings)
            }
            Command::Probe(args) => CommandSettings::Probe(probe(global, args)?),
            Command::Status(args) => CommandSettings::Status(status(global, args)),
            Command::Completions { .. } | Command::Man => return Ok(None),
        };
        Ok(Some(Self {
            output: Presentation {
                json: global.json,
                show_emails: global.show_emails,
                quiet: global.quiet,
            },
            hooks,
            store,
            journal,
            command,
        }))
    }
}

/// Logging, which starts before the rest is checked: from `-v`/`-q`, else
/// from `RUST_LOG` when it names a level.
pub(crate) fn log_settings(global: &GlobalArgs) -> LogSettings {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 1) => "debug",
        (false, 2..) => "trace",
        (false, 0) => std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| {
                let v = v.trim().to_ascii_lowercase();
                LEVELS.into_iter().find(|l| *l == v)
            })
            .unwrap_or("info"),
    };
    LogSettings {
        level,
        json: global.log_format == LogFormat::Json,
    }
}

fn target(args: &TargetArgs) -> Result<Target, ConfigError> {
    match (&args.id, &args.email) {
        (Some(id), _) => Ok(Target::Id(id.clone())),
        (None, Some(email)) => Ok(Target::Email {
            email: email.clone(),
            fingerprint: args.fingerprint.clone(),
        }),
        (None, None) => Err(ConfigError::Usage("give --id or --email".into())),
    }
}

/// The shard to take; `job/N` reads the pod's `JOB_COMPLETION_INDEX`.
fn shard(arg: Option<ShardArg>) -> Result<Option<Shard>, ConfigError> {
    match arg {
        None => Ok(None),
        Some(ShardArg::Fixed(shard)) => Ok(Some(shard)),
        Some(ShardArg::JobIndex(count)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX")
                .ok()
                .and_then(|i| i.trim().parse::<u32>().ok())
                .filter(|i| *i < count)
                .ok_or_else(|| {
                    ConfigError::Config(format!(
                        "--shard job/{count} (AIMHARDER_SHARD) needs JOB_COMPLETION_INDEX between 0 and {}: \
                         run it in a Kubernetes Job with completionMode: Indexed and completions: {count}",
                        count - 1
                    ))
                })?;
            Ok(Some(Shard {
                index: index + 1,
                count,
            }))
        }
    }
}

fn pace(global: &GlobalArgs, args: &PaceArgs) -> Pace {
    Pace {
        concurrency: args.concurrency as usize,
        rate: Some(args.rate).filter(|r| *r > 0.0),
        max_consecutive_failures: global.max_consecutive_failures,
    }
}

fn refresh_one(global: &GlobalArgs, args: &RefreshOneArgs) -> Result<RefreshOne, ConfigError> {
    Ok(RefreshOne {
        target: target(&args.target)?,
        if_older_than: args.if_older_than,
        aimharder: aimharder_config(global, &args.http)?,
        claim_lease: claim_lease(&args.claims, &args.http)?,
    })
}

fn refresh_all(global: &GlobalArgs, args: &RefreshAllArgs) -> Result<RefreshAll, ConfigError> {
    Ok(RefreshAll {
        older_than: args
            .older_than
            .unwrap_or_else(|| endpoint(global).default_older_than()),
        retry_errors_after: args.retry_errors_after,
        force: args.force,
        pace: pace(global, &args.pace),
        limit: args.limit,
        shard: shard(args.shard)?,
        max_duration: args.max_duration,
        // A dry run calls nothing: nothing to spread.
        jitter: jitter(args.jitter, args.max_duration)?.filter(|_| !args.dry_run),
        dry_run: args.dry_run,
        aimharder: aimharder_config(global, &args.http)?,
        claim_lease: claim_lease(&args.claims, &args.http)?,
    })
}

fn probe(global: &GlobalArgs, args: &ProbeArgs) -> Result<Probe, ConfigError> {
    let target = if args.all {
        ProbeTarget::All {
            limit: args.limit,
            shard: shard(args.shard)?,
            due_window: endpoint(global).default_older_than(),
            jitter: jitter(args.jitter, None)?,
        }
    } else {
        ProbeTarget::One(target(&args.target)?)
    };
    Ok(Probe {
        target,
        pace: pace(global, &args.pace),
        aimharder: aimharder_config(global, &args.http)?,
    })
}

fn status(global: &GlobalArgs, args: &StatusArgs) -> Status {
    Status {
        schedule: SchedulePlan {
            every: args
                .older_than
                .unwrap_or_else(|| endpoint(global).default_older_than()),
            rate: Some(args.rate).filter(|r| *r > 0.0),
            runners: 1,
        },
        stale_after: args.stale_after,
        sessions: args.sessions,
        check: args.check,
    }
}

fn endpoint(global: &GlobalArgs) -> Endpoint {
    match global.endpoint {
        EndpointArg::Setrefresh => Endpoint::Setrefresh,
        EndpointArg::TokenUpdate => Endpoint::TokenUpdate,
    }
}

fn hooks(global: &GlobalArgs) -> Result<Hooks, ConfigError> {
    // An unset secret arrives as an empty variable in CI: that means "none".
    let healthcheck = match global
        .healthcheck_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        Some(raw) => Some(Url::parse(raw.trim()).map_err(|e| {
            ConfigError::Config(format!(
                "AIMHARDER_HEALTHCHECK_URL (--healthcheck-url) is not a valid URL: {e}"
            ))
        })?),
        None => None,
    };
    Ok(Hooks {
        due_older_than: endpoint(global).default_older_than(),
        healthcheck,
        metrics_file: metrics_file(global),
        schedule: None,
    })
}

/// An empty variable (a CI secret left unset) means none.
fn metrics_file(global: &GlobalArgs) -> Option<PathBuf> {
    global
        .metrics_file
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
}

/// The journal of one sessions table, in the state folder: one that is this
/// user's alone (checked here, so that a folder of another user's stops
/// the run before anything is called).
fn journal_file(global: &GlobalArgs, store: &StoreConfig) -> Result<JournalSetting, ConfigError> {
    let set = |v: Option<std::ffi::OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = match global
        .state_dir
        .clone()
        .filter(|d| !d.as_os_str().is_empty())
    {
        Some(dir) => dir,
        None => match (
            set(std::env::var_os("XDG_STATE_HOME")).filter(|d| d.is_absolute()),
            set(std::env::var_os("HOME")),
        ) {
            (Some(state), _) => state.join("aimharder-refresh"),
            (None, Some(home)) => home.join(".local/state/aimharder-refresh"),
            (None, None) => return Ok(JournalSetting::Nowhere),
        },
    };
    journal::check_state_dir(&dir)?;
    Ok(JournalSetting::File(journal::file_in(
        &dir,
        &store.rest_url,
        &store.table,
    )))
}
