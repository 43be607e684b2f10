//! The exit codes (sysexits.h) the tool's outcomes and errors map onto.
//! They live down here so that every error type, wherever it is defined,
//! can say its own.

/// A bug: a task of the run panicked (whatever else it reported).
pub(crate) const EX_SOFTWARE: u8 = 70;
/// A command line the tool cannot run: a flag missing, unknown or out of
/// range.
pub(crate) const EX_USAGE: u8 = 64;
/// The session asked for does not exist.
pub(crate) const EX_NOINPUT: u8 = 66;
/// AimHarder or Supabase is unavailable from here: the circuit breaker
/// tripped, or Supabase is unreachable or failing.
pub(crate) const EX_UNAVAILABLE: u8 = 69;
/// The run stopped early (the deadline or a signal) with work left for the
/// next run.
pub(crate) const EX_TEMPFAIL: u8 = 75;
/// Supabase refused the key.
pub(crate) const EX_NOPERM: u8 = 77;
/// A setup to mend: a setting, a migration, a grant, a filter or a URL.
pub(crate) const EX_CONFIG: u8 = 78;
