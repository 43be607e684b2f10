//! `.env` in the working directory, and only there: a file planted in a
//! parent folder (say `/tmp/.env`) must not point the key at another host.

use std::path::Path;

use crate::config::error::ConfigError;

/// Loads `./.env` into the environment (variables already set win). A
/// missing file is normal; a malformed one names its line, never its text
/// (it may hold a key).
pub(crate) fn load() -> Result<(), ConfigError> {
    load_from(Path::new(".env"))
}

fn load_from(path: &Path) -> Result<(), ConfigError> {
    match dotenvy::from_path(path) {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(dotenvy::Error::LineParse(line, _)) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let first = line.lines().next().unwrap_or_default().trim();
            let number = text
                .lines()
                .position(|l| l.trim() == first)
                .map_or_else(|| "a line".to_string(), |i| format!("line {}", i + 1));
            Err(ConfigError::Config(format!(
                "{} {number} is not VAR=value: fix or remove it",
                path.display()
            )))
        }
        Err(e) => Err(ConfigError::Config(format!(
            "{} cannot be read: {}",
            path.display(),
            match e {
                dotenvy::Error::Io(io) => io.to_string(),
                _ => "not a valid .env file".to_string(),
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_named_by_number_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A_OK=1\n\nsb_secret_leak garbage here\n").unwrap();
        let message = load_from(&path).unwrap_err().to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(!message.contains("sb_secret_leak"), "{message}");
        assert!(load_from(&dir.path().join("missing")).is_ok());
    }
}
