//! The one session a command is about: by id, or by exact email (and
//! fingerprint when the member has several).

use crate::app::exit::AppError;
use crate::config::Target;
use crate::domain::session::SessionRow;
use crate::supabase::store::Store;

/// The session `target` names: `NotFound` when none, `Usage` listing the
/// candidates when an email has several and no fingerprint picks one.
pub(crate) async fn find(store: &Store, target: &Target) -> anyhow::Result<SessionRow> {
    match target {
        Target::Id(id) => Ok(store.by_id(id).await?.ok_or_else(|| {
            AppError::NotFound(not_found(store, &format!("no session with id {id}")))
        })?),
        Target::Email { email, fingerprint } => {
            let mut rows = store.by_email(email, fingerprint.as_deref()).await?;
            match rows.len() {
                0 => Err(AppError::NotFound(not_found(store, "no session for that email")).into()),
                1 => Ok(rows.remove(0)),
                _ => Err(AppError::Usage(ambiguous(&rows)).into()),
            }
        }
    }
}

fn not_found(store: &Store, what: &str) -> String {
    match store.key_hint() {
        Some(hint) => format!("{what}; {hint}"),
        None => format!("{what}; check the id or email (status --sessions lists them)"),
    }
}

/// The candidates, for the operator to pick from. The email is masked
/// even under `--show-emails`: the operator typed it, and an error line
/// lands in logs.
fn ambiguous(rows: &[SessionRow]) -> String {
    let candidates: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} (fingerprint {}, last refresh {})",
                r.id,
                r.fingerprint.as_deref().unwrap_or("-"),
                r.last_refresh_date.as_deref().unwrap_or("never")
            )
        })
        .collect();
    let who = rows
        .first()
        .and_then(|r| r.user_email.as_ref())
        .map(|e| e.masked())
        .unwrap_or_default();
    format!(
        "{who} has {} sessions; pick one with --fingerprint or --id: {}",
        rows.len(),
        candidates.join("; ")
    )
}
