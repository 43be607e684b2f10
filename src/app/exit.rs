//! Errors the application branches on, and the one place that maps them to
//! exit codes.

use crate::config::error::ConfigError;
use crate::supabase::rest::StoreError;

/// A failure that ends the run before or outside per-session work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    /// A signal ended the command before it was done.
    #[error("{0}")]
    Interrupted(String),
}

impl AppError {
    /// The exit code this failure ends the run with.
    pub(crate) fn code(&self) -> u8 {
        match self {
            AppError::Usage(_) => EX_USAGE,
            AppError::NotFound(_) => EX_NOINPUT,
            AppError::Interrupted(_) => EX_TEMPFAIL,
        }
    }
}

/// How a finished run ends when nothing went wrong outside the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunVerdict {
    /// Everything selected was refreshed (or nothing was due).
    Clean,
    /// At least one session failed, expired or went unrecorded; or `status --check` found a problem.
    Problems,
    /// The deadline or a signal stopped the run with due sessions left.
    Interrupted,
    /// The circuit breaker stopped the run: AimHarder refuses or fails us.
    Unavailable,
}

pub(crate) use crate::domain::exit::{
    EX_CONFIG, EX_NOINPUT, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE,
};

static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on a panic anywhere (a spawned task's too, which would
/// otherwise only end that task) is remembered, so that the run cannot
/// exit as if all went well. The default report on stderr stays.
pub(crate) fn watch_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
        report(info);
    }));
}

/// Returns `code`, unless something panicked: then [`EX_SOFTWARE`].
pub(crate) fn unless_panicked(code: u8) -> u8 {
    if PANICKED.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!(
            "error: a task of the run panicked (a bug; see above): its work may be incomplete"
        );
        EX_SOFTWARE
    } else {
        code
    }
}

/// Returns the exit code of a run that ended with `verdict`.
pub(crate) fn verdict_code(verdict: RunVerdict) -> u8 {
    match verdict {
        RunVerdict::Clean => 0,
        RunVerdict::Problems => 1,
        RunVerdict::Interrupted => EX_TEMPFAIL,
        RunVerdict::Unavailable => EX_UNAVAILABLE,
    }
}

/// Whether `err` is stdout closed by its reader (`status --sessions | head
/// -1`): the reader has what it wanted, so it is no failure (as in
/// ripgrep), and there is nothing to say.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code of a run that ended with `err`: the code of the first
/// cause that knows its own (each error type says it), else 1.
pub(crate) fn error_code(err: &anyhow::Error) -> u8 {
    if is_broken_pipe(err) {
        return 0;
    }
    err.chain()
        .find_map(|cause| {
            cause
                .downcast_ref::<AppError>()
                .map(AppError::code)
                .or_else(|| cause.downcast_ref::<StoreError>().map(StoreError::code))
                .or_else(|| cause.downcast_ref::<ConfigError>().map(ConfigError::code))
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_folder_the_journal_cannot_use_is_a_configuration_error() {
        let err = crate::engine::journal::StateDirError::NotAFolder {
            dir: "/etc/passwd".into(),
        };
        let err = ConfigError::from(err);
        assert_eq!(error_code(&err.into()), EX_CONFIG);
    }

    #[test]
    fn a_store_error_keeps_its_code_under_the_context_a_command_adds() {
        use anyhow::Context as _;
        let read: Result<(), StoreError> = Err(StoreError::KeyRefused {
            status: 401,
            code: None,
            message: None,
        });
        let err = read
            .context("reading sessions stopped the probe")
            .unwrap_err();
        assert_eq!(error_code(&err), crate::domain::exit::EX_NOPERM);
    }

    #[test]
    fn a_task_that_panics_makes_the_exit_an_error_never_0() {
        watch_panics();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // A spawned task's panic ends only that task: nothing else sees it.
        rt.block_on(async {
            let _ = tokio::spawn(async { panic!("a page reader's bug") }).await;
        });
        assert_eq!(unless_panicked(0), EX_SOFTWARE);
    }
}
