//! The Supabase key: from the first setting that holds one, read and
//! classified before any request.

use secrecy::{ExposeSecret, SecretString};

use crate::cli::GlobalArgs;
use crate::config::error::ConfigError;
use crate::supabase::key::SupabaseKey;

/// The key from the first setting that holds one: the secret key's names
/// first, then the legacy service-role ones. Refused here, before any
/// request, when it is a key that cannot see the sessions.
pub(crate) fn supabase_key(args: &GlobalArgs) -> Result<SupabaseKey, ConfigError> {
    let given = [
        (
            "SUPABASE_SECRET_KEY (--secret-key)",
            &args.secret_key,
            "SUPABASE_SECRET_KEY_FILE (--secret-key-file)",
            &args.secret_key_file,
        ),
        (
            "SUPABASE_SERVICE_ROLE_KEY (--service-role-key)",
            &args.service_role_key,
            "SUPABASE_SERVICE_ROLE_KEY_FILE (--service-role-key-file)",
            &args.service_role_key_file,
        ),
    ];
    for (name, value, file_name, file) in given {
        if let Some(key) = value.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            return Ok(SupabaseKey::parse(key.clone(), name)?);
        }
        // An unset CI secret arrives as an empty variable: that means "none".
        if let Some(path) = file.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            let key = read_key_file(file_name, path)?;
            return Ok(SupabaseKey::parse(key, file_name)?);
        }
    }
    Err(ConfigError::Config(
        "SUPABASE_SECRET_KEY is not set: pass --secret-key or --secret-key-file with the project's secret key (sb_secret_…; Supabase dashboard → Project Settings → API Keys)"
            .into(),
    ))
}

fn read_key_file(setting: &str, path: &std::path::Path) -> Result<SecretString, ConfigError> {
    let raw = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Config(format!("{setting} {} cannot be read: {e}", path.display()))
    })?;
    let key = raw.trim();
    if key.is_empty() {
        return Err(ConfigError::Config(format!(
            "{setting} {} is empty",
            path.display()
        )));
    }
    // Masked under GitHub Actions with the other secrets, once settings
    // are built (see `run`), before anything prints.
    Ok(SecretString::from(key))
}
