//! Where results and logs go: human or JSON on stdout, logs and the
//! progress bar on stderr, GitHub Actions commands.

pub mod github;
pub mod logging;
pub mod probe;
pub mod refresh;
pub mod session;
pub mod shown;
pub mod status;
pub mod stream;
