//! The retry decisions: after a failed request, wait and retry or give up
//! (`on_failure`); after a failed run, whether and when the entry is retried
//! on its own (`cause`, `next_retry`).
//!
//! Separate from the request loop so it can be tested exhaustively and read
//! on its own. Pure: the jitter and the time are passed in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// A 2xx answer that is not what the API documents: asking again would
    /// get the same.
    Invalid,
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

impl RetryPolicy {
    /// For reads outside a config's settings (`subusers`, `plan --resolve`):
    /// the settings' defaults.
    pub fn for_reads() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
        }
    }
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
        failure => failure.cause() == Cause::Passing,
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

/// Why a run failed, as far as retrying the entry on its own is concerned
/// (SPEC §2). Ordered: a run with several failures counts as its worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Cause {
    /// The API was away or overloaded (connection errors, timeouts,
    /// 408/429/5xx): it passes, so the entry is retried on its own.
    Passing,
    /// The token was refused (401/403): retried on its own too (the token
    /// may be rotated), and at once with a different token.
    Token,
    /// The request itself was refused (another 4xx, a redirect): sending it
    /// again cannot help; only a change of the entry runs it again.
    Request,
}

impl Failure {
    pub fn cause(&self) -> Cause {
        match self {
            Failure::Status {
                code: 401 | 403, ..
            } => Cause::Token,
            Failure::Status { code, .. } => {
                if *code == 408 || *code == 429 || (500..=599).contains(code) {
                    Cause::Passing
                } else {
                    Cause::Request
                }
            }
            Failure::Timeout | Failure::Connection => Cause::Passing,
            Failure::Invalid => Cause::Request,
        }
    }
}

/// How an entry that failed for a passing reason is retried on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRetry {
    /// The first delay after a failed run; it doubles with each retry.
    pub backoff: Duration,
    /// Retries stop this long after the first failure (`retryFailedFor`).
    pub window: Duration,
    /// Never retried after this instant (the entry's `notAfter`).
    pub not_after: Option<DateTime<Utc>>,
}

/// The longest wait between automatic retries, as a multiple of the first:
/// 1 minute doubling to at most 1 hour.
pub const MAX_RUN_BACKOFF_FACTOR: u32 = 60;

/// When an entry whose run failed at `failed_at` is retried on its own,
/// after `retries` automatic retries since its first failure at `since`;
/// `None` when retries are over (past the window or `notAfter`). Also the
/// planner's answer when it re-checks the time against a newer config.
pub fn next_retry(
    since: DateTime<Utc>,
    retries: u32,
    failed_at: DateTime<Utc>,
    rule: &RunRetry,
) -> Option<DateTime<Utc>> {
    let cap = rule.backoff.saturating_mul(MAX_RUN_BACKOFF_FACTOR);
    let delay = rule
        .backoff
        .saturating_mul(1u32 << retries.min(16))
        .min(cap);
    let at = failed_at.checked_add_signed(chrono::Duration::from_std(delay).ok()?)?;
    let window_end = since.checked_add_signed(chrono::Duration::from_std(rule.window).ok()?)?;
    (at <= window_end && rule.not_after.is_none_or(|t| at <= t)).then_some(at)
}

/// Whether `now` is still inside the time a failure streak that began at
/// `since` may be retried in.
pub fn retry_window_open(since: DateTime<Utc>, now: DateTime<Utc>, rule: &RunRetry) -> bool {
    let window_end = chrono::Duration::from_std(rule.window)
        .ok()
        .and_then(|w| since.checked_add_signed(w))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    now <= window_end && rule.not_after.is_none_or(|t| now <= t)
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
    fn causes_separate_passing_failures_from_refused_requests_and_tokens() {
        for passing in [
            status(408),
            status(429),
            status(500),
            status(599),
            Failure::Timeout,
            Failure::Connection,
        ] {
            assert_eq!(passing.cause(), Cause::Passing, "{passing:?}");
        }
        for code in [400, 404, 409, 422, 301, 308, 600] {
            assert_eq!(status(code).cause(), Cause::Request, "{code}");
        }
        assert_eq!(status(401).cause(), Cause::Token);
        assert_eq!(status(403).cause(), Cause::Token);
        assert!(Cause::Request > Cause::Token && Cause::Token > Cause::Passing);
        // A 408 is retried within the run too.
        assert!(matches!(
            on_failure(&status(408), 1, p(5), 0.0),
            Verdict::Retry(_)
        ));
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn rule(window_h: u64, not_after: Option<&str>) -> RunRetry {
        RunRetry {
            backoff: Duration::from_secs(60),
            window: Duration::from_secs(window_h * 3600),
            not_after: not_after.map(t),
        }
    }

    #[test]
    fn failed_runs_back_off_from_a_minute_doubling_to_an_hour() {
        let since = t("2026-01-01T00:00:00Z");
        let at = |retries, failed_at| next_retry(since, retries, t(failed_at), &rule(24, None));
        assert_eq!(
            at(0, "2026-01-01T00:00:00Z"),
            Some(t("2026-01-01T00:01:00Z"))
        );
        assert_eq!(
            at(1, "2026-01-01T00:01:00Z"),
            Some(t("2026-01-01T00:03:00Z"))
        );
        assert_eq!(
            at(5, "2026-01-01T01:00:00Z"),
            Some(t("2026-01-01T01:32:00Z"))
        );
        assert_eq!(
            at(6, "2026-01-01T02:00:00Z"),
            Some(t("2026-01-01T03:00:00Z"))
        );
        assert_eq!(
            at(u32::MAX, "2026-01-01T02:00:00Z"),
            Some(t("2026-01-01T03:00:00Z"))
        );
    }

    #[test]
    fn failed_runs_are_not_retried_past_the_window_or_not_after() {
        let since = t("2026-01-01T00:00:00Z");
        let failed = t("2026-01-01T23:30:00Z");
        assert_eq!(
            next_retry(since, 9, failed, &rule(24, None)),
            None,
            "23:30 + 1 h is past the 24 h window"
        );
        assert_eq!(
            next_retry(since, 0, since, &rule(24, Some("2026-01-01T00:00:30Z"))),
            None
        );
        assert_eq!(
            next_retry(since, 0, since, &rule(0, None)),
            None,
            "retryFailedFor: 0s turns retries off"
        );
        let end = DateTime::<Utc>::MAX_UTC;
        assert_eq!(
            next_retry(end, 3, end, &rule(24, None)),
            None,
            "no overflow at the end of time"
        );
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
