//! Duration settings checked beyond their parse: how they bound each other
//! and the run.

use std::time::Duration;

use crate::cli::{ClaimArgs, HttpArgs};
use crate::config::error::ConfigError;
use crate::engine::caller::MAX_ATTEMPTS;

/// The claim lease: a few times the longest one call can take (every
/// attempt timing out), unless set; renewed while a call runs long, so a
/// short one only makes a killed runner's sessions free sooner.
pub(super) fn claim_lease(claims: &ClaimArgs, http: &HttpArgs) -> Result<Duration, ConfigError> {
    const LEAST: Duration = Duration::from_secs(1);
    match claims.claim_lease {
        Some(lease) if lease < LEAST => Err(ConfigError::Usage(
            "--claim-lease (AIMHARDER_CLAIM_LEASE) must be at least 1s".into(),
        )),
        Some(lease) => Ok(lease),
        None => Ok(http.request_timeout * MAX_ATTEMPTS as u32 * 3),
    }
}

/// The longest wait `--jitter` may ask for: it spreads runs over minutes,
/// and a longer one would eat into the next run's slot.
const MAX_JITTER: Duration = Duration::from_secs(3600);

/// `--jitter`, checked: at most [`MAX_JITTER`], and shorter than the
/// run's `--max-duration`, which counts the wait; zero is no wait.
pub(super) fn jitter(
    jitter: Option<Duration>,
    max_duration: Option<Duration>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(jitter) = jitter.filter(|j| !j.is_zero()) else {
        return Ok(None);
    };
    if jitter > MAX_JITTER {
        return Err(ConfigError::Usage(
            "--jitter (AIMHARDER_JITTER) must be at most 1h".into(),
        ));
    }
    if max_duration.is_some_and(|max| jitter >= max) {
        return Err(ConfigError::Usage(
            "--jitter (AIMHARDER_JITTER) must be shorter than --max-duration: the wait counts against it".into(),
        ));
    }
    Ok(Some(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn jitter_is_at_most_an_hour_and_shorter_than_the_deadline() {
        assert_eq!(jitter(None, None).unwrap(), None);
        assert_eq!(jitter(Some(Duration::ZERO), None).unwrap(), None);
        assert_eq!(jitter(Some(60 * MINUTE), None).unwrap(), Some(60 * MINUTE));
        assert!(jitter(Some(61 * MINUTE), None).is_err());
        assert_eq!(
            jitter(Some(5 * MINUTE), Some(50 * MINUTE)).unwrap(),
            Some(5 * MINUTE)
        );
        for too_long in [50 * MINUTE, 55 * MINUTE] {
            let err = jitter(Some(too_long), Some(50 * MINUTE)).unwrap_err();
            assert!(err.to_string().contains("--max-duration"), "{err}");
        }
    }
}
