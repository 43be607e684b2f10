//! How results and logs are shown: settings config reads from the command
//! line and output builds its printers from, so that neither imports the
//! other.

/// Where results go and how they look: stdout, as text or as one JSON
/// document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Presentation {
    /// One JSON document instead of text (`--json`).
    pub(crate) json: bool,
    /// Emails whole instead of masked (`--show-emails`).
    pub(crate) show_emails: bool,
    /// `-q`: text output prints nothing on success, only problems.
    pub(crate) quiet: bool,
}

/// How much to log, and in which format.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSettings {
    /// The tool's own level: `error` … `trace`, or `off`.
    pub(crate) level: &'static str,
    /// One JSON object a line instead of text.
    pub(crate) json: bool,
}
