//! The Supabase key: which kind it is decides the headers it travels in, and
//! a key that cannot see the sessions is refused before any request.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// A key that can read and write every session.
#[derive(Debug, Clone)]
pub(crate) enum SupabaseKey {
    /// `sb_secret_…`: goes in `apikey` only; Supabase's gateway supplies the
    /// role and refuses it next to any other `Authorization`.
    Secret(SecretString),
    /// A legacy JWT (`service_role`, or a self-hosted PostgREST's own role):
    /// goes in `apikey` and `Authorization: Bearer`.
    Jwt(SecretString),
}

/// Why a key was refused, in one line that says what to use instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyRefusal {
    #[error("{setting} holds a publishable key (sb_publishable_…): row-level security hides the sessions from it; use the project's secret key (sb_secret_…, Supabase dashboard → Project Settings → API Keys) in SUPABASE_SECRET_KEY")]
    Publishable { setting: &'static str },
    #[error("{setting} holds the anon key (a JWT for role \"anon\"): row-level security hides the sessions from it; use the project's secret key (sb_secret_…) in SUPABASE_SECRET_KEY")]
    Anon { setting: &'static str },
    #[error("{setting} starts with sb_ but is not a secret key (sb_secret_…): use the project's secret key in SUPABASE_SECRET_KEY")]
    UnknownSbKey { setting: &'static str },
    #[error("{setting} cannot be sent in an HTTP header (it holds a line break or other control character)")]
    NotAHeader { setting: &'static str },
}

impl SupabaseKey {
    /// Classifies a key read from `setting` (named in the refusal).
    pub(crate) fn parse(raw: SecretString, setting: &'static str) -> Result<Self, KeyRefusal> {
        let key = raw.expose_secret();
        if key.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
            return Err(KeyRefusal::NotAHeader { setting });
        }
        if key.starts_with("sb_secret_") {
            return Ok(Self::Secret(raw));
        }
        if key.starts_with("sb_publishable_") {
            return Err(KeyRefusal::Publishable { setting });
        }
        if key.starts_with("sb_") {
            return Err(KeyRefusal::UnknownSbKey { setting });
        }
        if jwt_role(key).as_deref() == Some("anon") {
            return Err(KeyRefusal::Anon { setting });
        }
        Ok(Self::Jwt(raw))
    }

    /// Returns the key itself (a secret: never print it).
    pub(crate) fn secret(&self) -> &SecretString {
        match self {
            Self::Secret(k) | Self::Jwt(k) => k,
        }
    }

    /// Whether the key also goes in `Authorization: Bearer`.
    pub(crate) fn is_bearer(&self) -> bool {
        matches!(self, Self::Jwt(_))
    }

    /// For a JWT whose role is neither `service_role` nor readable, a hint
    /// for when a read finds nothing (a self-hosted role may lack rights).
    pub(crate) fn hint(&self) -> Option<String> {
        let Self::Jwt(key) = self else { return None };
        match jwt_role(key.expose_secret()).as_deref() {
            Some("service_role") | None => None,
            Some(role) => Some(format!(
                "the key is for role {role:?}: row-level security may hide sessions from it; use the project's secret key (SUPABASE_SECRET_KEY)"
            )),
        }
    }
}

/// The `role` claim of a JWT key, if the key is a JWT.
fn jwt_role(key: &str) -> Option<String> {
    let payload = key.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("role")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    // {"role":"anon"} and {"role":"service_role"} with dummy signatures.
    const ANON: &str = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln";
    const SERVICE: &str = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2ln";

    fn parse(key: &str) -> Result<SupabaseKey, KeyRefusal> {
        SupabaseKey::parse(SecretString::from(key), "SUPABASE_SECRET_KEY")
    }

    #[test]
    fn secret_keys_go_in_apikey_only_and_jwts_also_as_bearer() {
        assert!(!parse("sb_secret_abc").unwrap().is_bearer());
        assert!(parse(SERVICE).unwrap().is_bearer());
        assert!(parse(SERVICE).unwrap().hint().is_none());
    }

    #[test]
    fn keys_that_cannot_see_the_sessions_are_refused() {
        let setting = "SUPABASE_SECRET_KEY";
        assert_eq!(
            parse("sb_publishable_abc").unwrap_err(),
            KeyRefusal::Publishable { setting }
        );
        assert_eq!(parse(ANON).unwrap_err(), KeyRefusal::Anon { setting });
        assert_eq!(
            parse("sb_other_abc").unwrap_err(),
            KeyRefusal::UnknownSbKey { setting }
        );
        assert_eq!(
            parse("sb_secret_a\nb").unwrap_err(),
            KeyRefusal::NotAHeader { setting }
        );
        let message = parse("sb_publishable_abc").unwrap_err().to_string();
        assert!(
            message.contains("secret key") && !message.contains("abc"),
            "{message}"
        );
    }

    #[test]
    fn jwt_role_is_read_from_the_payload() {
        assert_eq!(jwt_role(ANON).as_deref(), Some("anon"));
        assert_eq!(jwt_role("sb_secret_abc"), None);
    }
}
