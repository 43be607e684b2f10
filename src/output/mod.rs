//! Where results and logs go: human or JSON on stdout, logs and the
//! progress bar on stderr, GitHub Actions commands.

pub(crate) mod github;
pub(crate) mod logging;
pub(crate) mod probe;
pub(crate) mod refresh;
pub(crate) mod session;
pub(crate) mod shown;
pub(crate) mod status;
pub(crate) mod stream;
