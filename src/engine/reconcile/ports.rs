//! What the executor talks to, as traits the shell implements: the API
//! (`Sessions`), the clock, the kill switch (`Control`, `LiveConfig`),
//! observers (metrics, notifications), the rate limit and the stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{Answered, Api, ApiError};
use crate::config::Config;

/// The API as the executor sees it: one DELETE of a batch of hashes.
pub trait Sessions {
    fn delete_sessions(
        &self,
        hashes: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<Answered, ApiError>>;

    /// Fingerprint of the token the requests carry, recorded when the API
    /// refuses it.
    fn token_fingerprint(&self) -> Option<String> {
        None
    }
}

impl Sessions for Api {
    fn delete_sessions(
        &self,
        hashes: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<Answered, ApiError>> {
        Api::delete_sessions(self, hashes, timeout)
    }

    fn token_fingerprint(&self) -> Option<String> {
        Some(Api::token_fingerprint(self))
    }
}

/// Wall-clock time for the status file (`startedAt`, `nextRunAt`, ...).
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall-clock time that advances with tokio's clock, so tests on paused time
/// see `startedAt` and backoff move together.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl TokioClock {
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        TokioClock {
            base,
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        chrono::Duration::from_std(self.start.elapsed())
            .ok()
            .and_then(|d| self.base.checked_add_signed(d))
            .unwrap_or(self.base)
    }
}

/// Asked between batches whether an entry's run may go on.
pub trait Control {
    /// `Some(reason)` to halt `id`'s run at this batch boundary.
    fn halt(&mut self, id: &str) -> Option<String>;
}

/// Never halts (`run --once`: the config cannot change under it).
impl Control for () {
    fn halt(&mut self, _id: &str) -> Option<String> {
        None
    }
}

/// The daemon's kill switch: halts a run when the newest valid config
/// suspends, removes or dry-runs its entry.
pub struct LiveConfig {
    rx: watch::Receiver<Arc<Config>>,
    cli_dry_run: bool,
    /// The newest config, once it differs from the one the pass planned with.
    changed: Option<Arc<Config>>,
    /// The verdict for the entry last asked about, under `changed`: runs ask
    /// once per batch, and finding an entry is linear in the config.
    verdict: Option<(String, Option<&'static str>)>,
}

impl LiveConfig {
    /// `rx` as the pass began: later configs are what may halt a run.
    pub fn new(mut rx: watch::Receiver<Arc<Config>>, cli_dry_run: bool) -> Self {
        rx.mark_unchanged();
        LiveConfig {
            rx,
            cli_dry_run,
            changed: None,
            verdict: None,
        }
    }
}

impl Control for LiveConfig {
    fn halt(&mut self, id: &str) -> Option<String> {
        if self.rx.has_changed().unwrap_or(false) {
            self.changed = Some(Arc::clone(&self.rx.borrow_and_update()));
            self.verdict = None;
        }
        let config = self.changed.as_ref()?;
        let reason = match &self.verdict {
            Some((last, reason)) if last == id => *reason,
            _ => {
                let reason = crate::plan::halt_reason(config, id, self.cli_dry_run);
                self.verdict = Some((id.to_owned(), reason));
                reason
            }
        };
        reason.map(str::to_owned)
    }
}

/// Receives what happens, for metrics and notifications. Every method has
/// a no-op default.
pub trait Observer: Send + Sync {
    /// One API request ended: `code` is the HTTP status, `None` for a timeout
    /// (`timed_out`) or a connection failure.
    fn request(&self, _code: Option<u16>, _elapsed: Duration, _timed_out: bool) {}
    fn hashes_confirmed(&self, _count: usize) {}
    /// A run ended (or an entry expired) and is recorded in its history.
    fn run_recorded(&self, _ended: &RunEnded<'_>) {}
}

impl Observer for () {}

/// A run's end or an expiry, as its history records it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnded<'a> {
    pub entry: &'a str,
    pub record: &'a crate::status::RunRecord,
    /// The run failed because the API refused the token (401/403).
    pub token_refused: bool,
    /// Digest of the config the run came from.
    pub config_digest: &'a str,
}

impl<T: Observer + ?Sized> Observer for &T {
    fn request(&self, code: Option<u16>, elapsed: Duration, timed_out: bool) {
        (**self).request(code, elapsed, timed_out);
    }
    fn hashes_confirmed(&self, count: usize) {
        (**self).hashes_confirmed(count);
    }
    fn run_recorded(&self, ended: &RunEnded<'_>) {
        (**self).run_recorded(ended);
    }
}

/// Several observers as one (metrics and notifications).
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn request(&self, code: Option<u16>, elapsed: Duration, timed_out: bool) {
        self.0.request(code, elapsed, timed_out);
        self.1.request(code, elapsed, timed_out);
    }
    fn hashes_confirmed(&self, count: usize) {
        self.0.hashes_confirmed(count);
        self.1.hashes_confirmed(count);
    }
    fn run_recorded(&self, ended: &RunEnded<'_>) {
        self.0.run_recorded(ended);
        self.1.run_recorded(ended);
    }
}

/// Spaces requests at most `n` per second, process-wide.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: Option<f64>) -> Self {
        RateLimiter {
            interval: per_second.and_then(interval),
            next: None,
        }
    }

    pub fn set_rate(&mut self, per_second: Option<f64>) {
        self.interval = per_second.and_then(interval);
    }

    pub(super) async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let at = self.next.map_or(now, |n| n.max(now));
        tokio::time::sleep_until(at).await;
        self.next = Some(at + interval);
    }
}

/// The spacing of requests at `per_second`; `None` for no limit. Validation
/// keeps the rate in [0.001, 10000], so the interval is at most 1,000 s.
fn interval(per_second: f64) -> Option<Duration> {
    (per_second > 0.0)
        .then(|| Duration::try_from_secs_f64(1.0 / per_second).ok())
        .flatten()
}

/// Asks the executor to stop between requests.
#[derive(Debug, Clone)]
pub struct Stop {
    rx: watch::Receiver<bool>,
    /// For `never`: the sender is kept (and never used) so the channel stays
    /// open and `wait` waits rather than returning at once.
    _sender: Option<Arc<watch::Sender<bool>>>,
}

impl Stop {
    pub fn new(rx: watch::Receiver<bool>) -> Self {
        Stop { rx, _sender: None }
    }

    /// A stop that never fires (`run --once`).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        Stop {
            rx,
            _sender: Some(Arc::new(tx)),
        }
    }

    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    pub(super) async fn wait(&mut self) {
        // An error means the sender is gone: nobody can ask to stop any more.
        if self.rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
