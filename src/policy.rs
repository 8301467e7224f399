//! The retry decision: after a failed request, wait and retry, or give up.
//!
//! Separate from the request loop so it can be tested exhaustively and read
//! on its own. Pure: the jitter is passed in.

use std::time::Duration;

/// What went wrong with one request, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The API answered with a non-2xx status.
    Status {
        code: u16,
        /// `Retry-After`, already converted to a delay.
        retry_after: Option<Duration>,
    },
    /// No answer within the request timeout.
    Timeout,
    /// Connecting failed, or the connection dropped before an answer.
    Connection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retry(Duration),
    /// Retrying cannot help, or attempts are used up.
    GiveUp,
    /// The token was refused (401/403): every other request would fail the
    /// same way, so the whole run stops.
    StopRun,
}

/// Longest backoff delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured; a server asking for more is treated as
/// asking for this much, so one answer cannot park resetd for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How retries are spaced and bounded (from the config's settings).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The first backoff delay; it doubles each attempt.
    pub base_delay: Duration,
}

/// `attempt` is the number of the attempt that just failed (1-based);
/// `jitter` is in `[0, 1)` and spreads retries of many batches apart.
pub fn on_failure(failure: &Failure, attempt: u32, policy: RetryPolicy, jitter: f64) -> Verdict {
    let RetryPolicy {
        max_attempts,
        base_delay,
    } = policy;
    let retryable = match failure {
        Failure::Status {
            code: 401 | 403, ..
        } => return Verdict::StopRun,
        Failure::Status { code, .. } => *code == 429 || (500..=599).contains(code),
        Failure::Timeout | Failure::Connection => true,
    };
    if !retryable || attempt >= max_attempts {
        return Verdict::GiveUp;
    }
    match failure {
        Failure::Status {
            retry_after: Some(after),
            ..
        } => Verdict::Retry((*after).min(MAX_RETRY_AFTER)),
        _ => Verdict::Retry(backoff(base_delay, attempt, jitter)),
    }
}

/// Exponential backoff with jitter: `base · 2^(attempt-1)`, capped, then
/// scaled into `[50%, 100%]` of that.
fn backoff(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(MAX_DELAY)
        .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(200),
        }
    }

    fn status(code: u16) -> Failure {
        Failure::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn server_errors_rate_limits_timeouts_and_drops_are_retried() {
        for failure in [
            status(429),
            status(500),
            status(503),
            Failure::Timeout,
            Failure::Connection,
        ] {
            assert!(
                matches!(on_failure(&failure, 1, p(5), 0.0), Verdict::Retry(_)),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn client_errors_give_up_and_auth_errors_stop_the_run() {
        for code in [400, 404, 409, 422] {
            assert_eq!(on_failure(&status(code), 1, p(5), 0.0), Verdict::GiveUp);
        }
        assert_eq!(on_failure(&status(401), 1, p(5), 0.0), Verdict::StopRun);
        assert_eq!(on_failure(&status(403), 1, p(5), 0.0), Verdict::StopRun);
    }

    #[test]
    fn attempts_are_bounded() {
        assert!(matches!(
            on_failure(&status(500), 4, p(5), 0.0),
            Verdict::Retry(_)
        ));
        assert_eq!(on_failure(&status(500), 5, p(5), 0.0), Verdict::GiveUp);
        assert_eq!(on_failure(&status(500), 1, p(1), 0.0), Verdict::GiveUp);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(
            on_failure(&status(500), 1, p(99), 1.0),
            Verdict::Retry(Duration::from_millis(200))
        );
        assert_eq!(
            on_failure(&status(500), 2, p(99), 1.0),
            Verdict::Retry(Duration::from_millis(400))
        );
        assert_eq!(
            on_failure(&status(500), 2, p(99), 0.0),
            Verdict::Retry(Duration::from_millis(200))
        );
        assert_eq!(
            on_failure(&status(500), 30, p(99), 1.0),
            Verdict::Retry(MAX_DELAY)
        );
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let asked = |secs| Failure::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            on_failure(&asked(3), 1, p(5), 0.5),
            Verdict::Retry(Duration::from_secs(3))
        );
        assert_eq!(
            on_failure(&asked(86_400), 1, p(5), 0.5),
            Verdict::Retry(MAX_RETRY_AFTER)
        );
    }
}
