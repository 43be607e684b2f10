//! The exit codes (sysexits.h) the tool's outcomes and errors map onto.
//! They live down here so that every error type, wherever it is defined,
//! can say its own.

/// A bug: a task of the run panicked (whatever else it reported).
pub const EX_SOFTWARE: u8 = 70;
pub const EX_USAGE: u8 = 64;
pub const EX_NOINPUT: u8 = 66;
pub const EX_UNAVAILABLE: u8 = 69;
pub const EX_TEMPFAIL: u8 = 75;
pub const EX_NOPERM: u8 = 77;
pub const EX_CONFIG: u8 = 78;
