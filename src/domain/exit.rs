//! The exit codes (sysexits.h) the tool's outcomes and errors map onto.
//! They live down here so that every error type, wherever it is defined,
//! can say its own.

/// A bug: a task of the run panicked (whatever else it reported).
pub(crate) const EX_SOFTWARE: u8 = 70;
pub(crate) const EX_USAGE: u8 = 64;
pub(crate) const EX_NOINPUT: u8 = 66;
pub(crate) const EX_UNAVAILABLE: u8 = 69;
pub(crate) const EX_TEMPFAIL: u8 = 75;
pub(crate) const EX_NOPERM: u8 = 77;
pub(crate) const EX_CONFIG: u8 = 78;
