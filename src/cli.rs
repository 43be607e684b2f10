//! Command-line surface. Every setting is a flag backed by an environment
//! variable (flags win); `Config::from_cli` turns this into checked settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::domain::shard::Shard;

/// The fingerprint sent for a session that has none stored, unless
/// `--default-fingerprint` names another.
pub(crate) const DEFAULT_FINGERPRINT: &str = "my0pz7di4kr8nuq718uecu4ev23fbosfp20z1q6smntm42ideb";
/// A desktop Chrome's User-Agent, sent to AimHarder by default: AimHarder
/// has refused calls that did not look like a browser's.
pub(crate) const DEFAULT_USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The parsed command line: the settings every command takes, and the
/// command.
#[derive(Debug, Parser)]
#[command(
    name = "aimharder-refresh",
    version,
    about = "Keeps AimHarder sessions stored in Supabase alive"
)]
pub struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The settings every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Settings (every command)")]
pub(crate) struct GlobalArgs {
    /// Supabase project URL; the REST base becomes {url}/rest/v1.
    #[arg(long, env = "SUPABASE_URL", global = true)]
    pub(crate) supabase_url: Option<String>,
    /// PostgREST base URL, for self-hosted PostgREST (overrides --supabase-url).
    #[arg(long, env = "SUPABASE_REST_URL", global = true)]
    pub(crate) rest_url: Option<String>,
    /// Supabase secret key (sb_secret_…; Project Settings → API Keys).
    #[arg(long, env = "SUPABASE_SECRET_KEY", global = true,
          value_parser = parse_secret)]
    pub(crate) secret_key: Option<SecretString>,
    /// Read the Supabase secret key from this file.
    #[arg(long, env = "SUPABASE_SECRET_KEY_FILE", global = true)]
    pub(crate) secret_key_file: Option<PathBuf>,
    /// Legacy service_role JWT key (retired by Supabase at the end of 2026).
    #[arg(long, env = "SUPABASE_SERVICE_ROLE_KEY", global = true,
          value_parser = parse_secret)]
    pub(crate) service_role_key: Option<SecretString>,
    /// Read the legacy service_role key from this file.
    #[arg(long, env = "SUPABASE_SERVICE_ROLE_KEY_FILE", global = true)]
    pub(crate) service_role_key_file: Option<PathBuf>,
    /// Sessions table.
    #[arg(
        long,
        env = "AIMHARDER_SESSIONS_TABLE",
        default_value = "auth_sessions",
        global = true
    )]
    pub(crate) table: String,
    /// Only rows where COLUMN=OP.VALUE holds (PostgREST's operators eq,
    /// neq, gt, gte, lt, lte, like, ilike, in, is; each may follow not.),
    /// e.g. session_type=eq.background; repeat for more, or join them with &
    /// in the variable. Narrows refresh-all, probe --all, status and the
    /// metrics' counts; refresh-one and probe --id/--email take the session
    /// named.
    #[arg(
        long = "filter",
        value_name = "COLUMN=OP.VALUE",
        env = "AIMHARDER_FILTER",
        value_delimiter = '&',
        global = true
    )]
    pub(crate) filters: Vec<String>,
    /// AimHarder base URL.
    #[arg(
        long,
        env = "AIMHARDER_BASE_URL",
        default_value = "https://aimharder.com",
        global = true
    )]
    pub(crate) aimharder_url: String,
    /// Fingerprint sent when a session has none stored.
    #[arg(long, env = "AIMHARDER_FINGERPRINT", default_value = DEFAULT_FINGERPRINT, global = true)]
    pub(crate) default_fingerprint: String,
    /// AimHarder keep-alive: setrefresh (GET /setrefresh) or token-update
    /// (POST /api/tokenUpdate, what AimHarder's own page calls; rotates the token).
    #[arg(long, env = "AIMHARDER_REFRESH_ENDPOINT", value_enum,
          default_value_t = EndpointArg::Setrefresh, global = true)]
    pub(crate) endpoint: EndpointArg,
    /// Send AimHarder traffic (refresh and probe, never Supabase's) through
    /// this proxy: http://, https:// or socks5://[user:password@]host:port.
    #[arg(long, env = "AIMHARDER_PROXY", global = true,
          value_parser = parse_secret)]
    pub(crate) proxy: Option<SecretString>,
    /// Stop the run when this many sessions in a row fail for the runner's
    /// reasons (403, timeouts, 5xx after retries); 0 never stops.
    #[arg(
        long,
        env = "AIMHARDER_MAX_CONSECUTIVE_FAILURES",
        default_value_t = 10,
        global = true
    )]
    pub(crate) max_consecutive_failures: u32,
    /// User-Agent sent to AimHarder.
    #[arg(long, env = "AIMHARDER_USER_AGENT", default_value = DEFAULT_USER_AGENT, global = true)]
    pub(crate) user_agent: String,
    /// healthchecks.io-style URL pinged at the start and end of each run.
    #[arg(long, env = "AIMHARDER_HEALTHCHECK_URL", global = true)]
    pub(crate) healthcheck_url: Option<String>,
    /// Write run metrics here (Prometheus text format, node_exporter textfile collector).
    #[arg(long, env = "AIMHARDER_METRICS_FILE", global = true)]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Folder for the journal of results Supabase would not record
    /// [default: $XDG_STATE_HOME/aimharder-refresh, else ~/.local/state/aimharder-refresh].
    #[arg(long, env = "AIMHARDER_STATE_DIR", global = true)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Machine-readable output (one JSON document on stdout).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Show emails unmasked.
    #[arg(long, global = true)]
    pub(crate) show_emails: bool,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// Less logging (errors only).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Log line format on stderr.
    #[arg(long, env = "AIMHARDER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
}

/// The command-line definition with no setting's environment value shown in
/// `--help` (a healthcheck URL, a proxy or a project URL is a secret to
/// some): the variable's name is shown, never what it holds.
pub(crate) fn command() -> clap::Command {
    fn hide(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| arg.hide_env_values(true))
            .mut_subcommands(hide)
    }
    hide(Cli::command())
}

/// Parses the process's arguments against [`command`].
pub(crate) fn try_parse() -> Result<Cli, clap::Error> {
    let matches = command().try_get_matches()?;
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
}

/// `--endpoint` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EndpointArg {
    Setrefresh,
    TokenUpdate,
}

/// How log lines on stderr are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The command to run.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Refresh one session now, due or not.
    RefreshOne(RefreshOneArgs),
    /// Refresh every due session.
    RefreshAll(RefreshAllArgs),
    /// Ask AimHarder whether sessions are alive (GET /api/whoami); writes nothing.
    Probe(ProbeArgs),
    /// Counts of sessions by state, computed on the server.
    Status(StatusArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// One session, by id or by email (and fingerprint).
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Session id (uuid).
    #[arg(long, value_parser = parse_uuid)]
    pub(crate) id: Option<String>,
    /// Member email; with several sessions, also give --fingerprint.
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// Picks one of several sessions of --email.
    #[arg(long, requires = "email")]
    pub(crate) fingerprint: Option<String>,
}

/// The flags of `refresh-one`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["id", "email"])))]
pub(crate) struct RefreshOneArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Skip when the session was refreshed more recently than this.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) if_older_than: Option<Duration>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
    #[command(flatten)]
    pub(crate) claims: ClaimArgs,
}

/// The flags of `refresh-all`.
#[derive(Debug, Args)]
pub(crate) struct RefreshAllArgs {
    /// Refresh sessions whose last refresh (or creation) is older than this
    /// [default: 6h; 20m with --endpoint token-update].
    #[arg(long, value_parser = parse_duration)]
    pub(crate) older_than: Option<Duration>,
    /// Retry a failed session only once its error is older than this.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub(crate) retry_errors_after: Duration,
    /// Take every enabled session, due or not.
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) pace: PaceArgs,
    /// Refresh at most this many sessions.
    #[arg(long)]
    pub(crate) limit: Option<u64>,
    /// Only sessions in shard I of N (1-based), e.g. 2/4; `job/N` takes
    /// shard $JOB_COMPLETION_INDEX+1 of N (a Kubernetes Indexed Job).
    #[arg(long, env = "AIMHARDER_SHARD", value_parser = parse_shard)]
    pub(crate) shard: Option<ShardArg>,
    /// Start nothing new after this long; exit 75 if due sessions were left.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) max_duration: Option<Duration>,
    /// Wait a random time up to this long before the first request (at
    /// most 1h, and less than --max-duration, which counts the wait); a
    /// dry run does not wait.
    #[arg(long, env = "AIMHARDER_JITTER", value_parser = parse_duration)]
    pub(crate) jitter: Option<Duration>,
    /// List what would be refreshed; call nothing, write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
    #[command(flatten)]
    pub(crate) claims: ClaimArgs,
}

/// The flags of `probe`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["id", "email", "all"])))]
pub(crate) struct ProbeArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Every session with auto refresh enabled.
    #[arg(long)]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) pace: PaceArgs,
    /// Probe at most this many sessions (with --all).
    #[arg(long, requires = "all")]
    pub(crate) limit: Option<u64>,
    /// Only sessions in shard I of N (1-based), e.g. 2/4, or `job/N` (with --all).
    #[arg(long, value_parser = parse_shard, requires = "all")]
    pub(crate) shard: Option<ShardArg>,
    /// With --all: wait a random time up to this long (at most 1h) before
    /// the first request. A probe of one session does not wait.
    #[arg(long, env = "AIMHARDER_JITTER", value_parser = parse_duration)]
    pub(crate) jitter: Option<Duration>,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
}

/// How hard a run presses on AimHarder.
#[derive(Debug, Args)]
pub(crate) struct PaceArgs {
    /// Requests in flight to AimHarder at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) concurrency: u32,
    /// Requests per second to AimHarder, retries included (0 = no limit).
    #[arg(long, default_value_t = 2.0, value_parser = parse_rate)]
    pub(crate) rate: f64,
}

/// The settings of the requests to AimHarder.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// Timeout of one request to AimHarder.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,
}

/// How long a claim on a session lasts.
#[derive(Debug, Args)]
pub(crate) struct ClaimArgs {
    /// How long a session stays claimed by this run if the run dies
    /// (renewed while a call runs long) [default: 3 × --request-timeout ×
    /// 3 attempts, 3m].
    #[arg(long, env = "AIMHARDER_CLAIM_LEASE", value_parser = parse_duration)]
    pub(crate) claim_lease: Option<Duration>,
}

/// The flags of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// A session not refreshed within this long is stale.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub(crate) stale_after: Duration,
    /// The schedule's due window, as refresh-all's --older-than: sessions
    /// older than this are due now, and each is due this often [default:
    /// 6h; 20m with --endpoint token-update].
    #[arg(long, value_parser = parse_duration)]
    pub(crate) older_than: Option<Duration>,
    /// The schedule's pace, as refresh-all's --rate: whether one runner at
    /// this many requests per second keeps up (0 = no limit).
    #[arg(long, default_value_t = 2.0, value_parser = parse_rate)]
    pub(crate) rate: f64,
    /// Also list every session.
    #[arg(long)]
    pub(crate) sessions: bool,
    /// Exit 1 when any enabled session is stale or has an error, or the
    /// schedule cannot keep up.
    #[arg(long)]
    pub(crate) check: bool,
}

fn parse_secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.trim()))
}

fn parse_uuid(raw: &str) -> Result<String, String> {
    let id = raw.trim().to_ascii_lowercase();
    let groups: Vec<&str> = id.split('-').collect();
    let shape = groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12];
    if shape
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(id)
    } else {
        Err("expected a uuid like 0a1b2c3d-0000-4000-8000-00000000abcd".into())
    }
}

/// The longest duration any setting takes: beyond it a date computed from
/// it would leave the calendar (or overflow a clock).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Parses a duration like `30m`, `6h` or `1d`, at most [`MAX_DURATION`].
pub(crate) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e} (write durations like 30m, 6h, 1d)"))?;
    if d > MAX_DURATION {
        return Err("at most 366 days (write durations like 30m, 6h, 1d)".into());
    }
    Ok(d)
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate == 0.0 || (0.001..=10_000.0).contains(&rate) => Ok(rate),
        _ => Err("expected requests per second: 0 (no limit) or between 0.001 and 10000".into()),
    }
}

/// `--shard` as written: a fixed shard, or one a Kubernetes Indexed Job's
/// pod takes from its completion index (no shell in the image to add 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardArg {
    Fixed(Shard),
    /// Shard `$JOB_COMPLETION_INDEX + 1` of this many.
    JobIndex(u32),
}

fn parse_shard(raw: &str) -> Result<ShardArg, String> {
    let err = || format!("expected I/N with 1 <= I <= N, or job/N, got {raw:?}");
    let (i, n) = raw.split_once('/').ok_or_else(err)?;
    let count: u32 = n.trim().parse().map_err(|_| err())?;
    if count == 0 {
        return Err(err());
    }
    if i.trim() == "job" {
        return Ok(ShardArg::JobIndex(count));
    }
    let index: u32 = i.trim().parse().map_err(|_| err())?;
    if index == 0 || index > count {
        return Err(err());
    }
    Ok(ShardArg::Fixed(Shard { index, count }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn help_names_the_variables_but_shows_none_of_their_values() {
        let text = command().render_long_help().to_string();
        assert!(text.contains("AIMHARDER_HEALTHCHECK_URL"), "{text}");
        fn every_arg_hides(cmd: &clap::Command) {
            for arg in cmd.get_arguments() {
                assert!(
                    arg.get_env().is_none() || arg.is_hide_env_values_set(),
                    "{} --{:?}",
                    cmd.get_name(),
                    arg.get_id()
                );
            }
            cmd.get_subcommands().for_each(every_arg_hides);
        }
        every_arg_hides(&command());
    }

    #[test]
    fn durations_accept_days_hours_minutes() {
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(21_600));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1_800));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("366d").unwrap(), MAX_DURATION);
        for too_long in ["367d", "20000y", "500000000000y"] {
            assert!(parse_duration(too_long).is_err(), "{too_long}");
        }
    }

    #[test]
    fn shards_are_one_based_and_bounded() {
        assert_eq!(
            parse_shard("2/4").unwrap(),
            ShardArg::Fixed(Shard { index: 2, count: 4 })
        );
        assert_eq!(parse_shard("job/4").unwrap(), ShardArg::JobIndex(4));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", "job/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(parse_uuid("0A1B2C3D-0000-4000-8000-00000000ABCD").is_ok());
        assert!(parse_uuid("42").is_err());
        assert!(parse_uuid("0a1b2c3d-0000-4000-8000-00000000abcg").is_err());
    }

    #[test]
    fn rate_zero_means_off_and_negative_is_refused() {
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert_eq!(parse_rate("0.001").unwrap(), 0.001);
        assert_eq!(parse_rate("10000").unwrap(), 10_000.0);
        for bad in ["1e-30", "0.0009", "10001", "inf"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
