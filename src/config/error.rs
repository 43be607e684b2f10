//! What can be wrong with the settings, told before anything runs.

/// A setting that cannot be used; the message names it and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// A flag or value the command line should not have taken (exit 64).
    #[error("{0}")]
    Usage(String),
    /// A missing or unusable setting (exit 78).
    #[error("{0}")]
    Config(String),
}

impl ConfigError {
    /// The exit code this error ends the run with.
    pub(crate) fn code(&self) -> u8 {
        match self {
            ConfigError::Usage(_) => crate::domain::exit::EX_USAGE,
            ConfigError::Config(_) => crate::domain::exit::EX_CONFIG,
        }
    }
}

/// A key that cannot see the sessions is a configuration error (exit 78).
impl From<crate::supabase::key::KeyRefusal> for ConfigError {
    fn from(refusal: crate::supabase::key::KeyRefusal) -> Self {
        ConfigError::Config(refusal.to_string())
    }
}

/// A state folder the journal cannot be kept in (another user's) is a
/// configuration error (exit 78).
impl From<crate::engine::journal::StateDirError> for ConfigError {
    fn from(refusal: crate::engine::journal::StateDirError) -> Self {
        ConfigError::Config(refusal.to_string())
    }
}
