//! Backoff: exponential with full jitter, honouring a server's `Retry-After`.

use std::time::Duration;

use crate::model::{CallError, RetryPolicy};

/// The longest `Retry-After` honoured; a server asking for more is capped here.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait before retry number `retry` (1-based), or None when no retry is due.
/// `jitter` is a number in [0,1) (random in production, fixed in tests).
pub fn delay(policy: &RetryPolicy, retry: u32, error: &CallError, jitter: f64) -> Option<Duration> {
    if !error.retryable || retry > policy.max {
        return None;
    }
    let exp = policy.base_delay.saturating_mul(
        1u32.checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX),
    );
    let cap = exp.min(policy.max_delay);
    // Full jitter: uniform in [cap/2, cap] keeps some spacing while spreading clients.
    let backoff = cap.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    Some(match error.retry_after {
        Some(after) => after.min(MAX_RETRY_AFTER).max(backoff.min(after)),
        None => backoff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorKind;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        }
    }

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let e = CallError::new(ErrorKind::Server, "500");
        let p = policy();
        assert_eq!(delay(&p, 1, &e, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(delay(&p, 2, &e, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(delay(&p, 3, &e, 1.0), Some(Duration::from_millis(350)));
        assert_eq!(delay(&p, 4, &e, 1.0), None, "max retries reached");
        assert_eq!(delay(&p, 1, &e, 0.0), Some(Duration::from_millis(50)));
    }

    #[test]
    fn honours_retry_after_and_never_retries_permanent_errors() {
        let mut e = CallError::new(ErrorKind::RateLimited, "429");
        e.retry_after = Some(Duration::from_secs(2));
        assert_eq!(delay(&policy(), 1, &e, 0.3), Some(Duration::from_secs(2)));
        e.retry_after = Some(Duration::from_secs(10_000));
        assert_eq!(delay(&policy(), 1, &e, 0.3), Some(MAX_RETRY_AFTER));
        let bad = CallError::new(ErrorKind::Client, "401");
        assert_eq!(delay(&policy(), 1, &bad, 0.3), None);
    }
}
