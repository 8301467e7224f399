//! One reconcile pass, the same for `run --once` and the daemon: config +
//! status + now + ports (API, status store, clock, observers) → what
//! happened and when to wake next, the way kube-runtime's `reconcile`
//! returns an `Action`.
//!
//! A pass plans; reads the token once, and only when a request is due (or
//! a refused token may have been replaced); looks sub-users up when a real
//! run names them; holds back, entry by entry, the runs that need a token
//! there is none of, while everything else (dry runs, expiries, orphans,
//! failures before sending) is recorded; carries the plan out; and works
//! out the next wake from the status it leaves behind.
//!
//! # Guarantees
//! - The wake is decided here and nowhere else: the earliest `nextRunAt` /
//!   `nextRetryAt` of the status after the pass, a token wait (doubling from
//!   1 s to `max_token_wait` while resets wait for a token), a look at a
//!   rotated token file (every 5 s while an entry waits for a new token),
//!   or nothing.
//! - The token is read at most once per pass.
//! - A stop lets the request in flight finish within the grace period; one
//!   still unanswered then is recorded as in flight (re-sent next time).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::api::Credentials;
use crate::config::Config;
use crate::directory::SubUsers;
use crate::plan::{Inputs, Plan};
use crate::reconcile::{Clock, Control, Executor, Observer, RateLimiter, Stop, Summary};
use crate::shutdown::finish_within;
use crate::status::Status;
use crate::store::StatusStore;

/// How often the token file is looked at while an entry waits for a token
/// the API does not refuse.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// The long-lived half of the passes: where the token comes from, the
/// sub-user copy, the rate limit, the clock, and the token back-off.
pub struct Reconciler<C: Clock> {
    pub credentials: Credentials,
    subusers: SubUsers,
    limiter: RateLimiter,
    pub clock: C,
    /// What the flags give the planner (`--dry-run`, `--retry-backoff`).
    flags: Inputs,
    /// `--shutdown-timeout`: how long a request in flight may finish after
    /// a stop.
    grace: Duration,
    /// The current wait between looks for a token while resets wait for
    /// one, and its ceiling.
    token_wait: Option<Duration>,
    max_token_wait: Duration,
}

/// What a pass is handed besides the config and the status.
pub struct Ports<'a, S: StatusStore> {
    pub store: &'a mut S,
    pub observer: &'a dyn Observer,
    /// The kill switch, asked between batches.
    pub control: &'a mut dyn Control,
    /// Set by SIGTERM/SIGINT.
    pub stop: watch::Receiver<bool>,
    /// The commit the config came from, for every record.
    pub source_revision: Option<String>,
}

/// What a pass did.
#[derive(Debug)]
pub struct Done {
    /// The plan carried out (runs held back for a token show as waiting).
    pub plan: Plan,
    /// `None`: the grace after a stop ran out with a request in flight.
    pub summary: Option<Summary>,
    /// The batches a stop left unsent (what the next run sends).
    pub unsent_batches: usize,
    /// Real runs due that wait for a token, and why there is none.
    pub blocked: usize,
    pub token_error: Option<String>,
    /// When to pass again (`None`: only a change can bring work).
    pub wake: Option<DateTime<Utc>>,
}

impl<C: Clock> Reconciler<C> {
    pub fn new(args: &crate::cli::RunArgs, credentials: Credentials, clock: C) -> Self {
        Reconciler {
            credentials,
            subusers: if args.once {
                SubUsers::for_one_run()
            } else {
                SubUsers::for_daemon()
            },
            limiter: RateLimiter::new(None),
            clock,
            flags: args.plan_inputs(),
            grace: args.shutdown_timeout,
            token_wait: None,
            max_token_wait: args.resync,
        }
    }

    /// One pass over `config` and `status`.
    pub async fn pass<S: StatusStore>(
        &mut self,
        config: &Config,
        status: &mut Status,
        ports: Ports<'_, S>,
    ) -> anyhow::Result<Done> {
        self.limiter
            .set_rate(config.settings.max_requests_per_second);
        let now = self.clock.now();
        let mut inputs = Inputs {
            source_revision: ports.source_revision.clone(),
            ..self.flags.clone()
        };
        let mut plan = crate::plan::plan(config, status, now, &inputs);
        // The token, read once and only if a request may be due: a run, or
        // the retry of one whose token the API refused (a new one retries
        // it at once).
        let awaits_token = status.awaits_new_token();
        let token = if plan.needs_api() || awaits_token {
            Some(self.credentials.api().map(|api| api.token_fingerprint()))
        } else {
            None
        };
        // A new token may make a retry due now: planned with it first, so
        // that the users such a retry names are looked up too.
        if awaits_token && let Some(Ok(fingerprint)) = &token {
            inputs.token = Some(fingerprint.clone());
            plan = crate::plan::plan(config, status, now, &inputs);
        }
        if plan.needs_users()
            && let (Some(Ok(_)), Some(api)) = (&token, self.credentials.current())
        {
            let wanted: Vec<&str> = plan.wanted_users(config).collect();
            inputs.users = self.subusers.users(api, &wanted).await;
            plan = crate::plan::plan(config, status, now, &inputs);
        }
        // The token was read whenever the first plan needed the API, and
        // only a token read makes a later plan need it.
        let token_error = match (&token, plan.needs_api()) {
            (Some(Err(e)), true) => Some(format!("{e:#}")),
            _ => None,
        };
        let blocked = match &token_error {
            Some(e) => plan.hold_for_token(&format!("due, but it waits for an API token: {e}")),
            None => 0,
        };
        let mut executor = Executor {
            store: &mut *ports.store,
            api: self.credentials.current().filter(|_| token_error.is_none()),
            limiter: &mut self.limiter,
            stop: Stop::new(ports.stop.clone()),
            control: ports.control,
            observer: ports.observer,
            clock: &self.clock,
        };
        let execution = executor.execute(&plan, status);
        let summary = match finish_within(execution, ports.stop.clone(), self.grace).await {
            Some(summary) => Some(summary?),
            None => {
                tracing::warn!(
                    "shutdown timeout ({:?}) reached with a request in flight; it is recorded \
                     as in flight and sent again by the next run",
                    self.grace
                );
                status.abandon_in_flight();
                status.updated_at = Some(self.clock.now());
                ports.store.save(status)?;
                None
            }
        };
        let unsent_batches = match &summary {
            Some(s) => s.unsent_batches,
            // The run gave up at the timeout, mid-request: what the next run
            // would send is the planner's own answer.
            None => crate::plan::plan(config, status, self.clock.now(), &inputs)
                .runs()
                .filter(|(_, spec)| !spec.dry_run)
                .map(|(_, spec)| spec.remaining_batches())
                .sum(),
        };
        // The next pass reads the token again: it may have been rotated.
        self.credentials.forget_read();
        let wake = self.wake(status, blocked, token_error.as_deref());
        tracing::debug!(next_wake = ?wake, "pass done");
        Ok(Done {
            plan,
            summary,
            unsent_batches,
            blocked,
            token_error,
            wake,
        })
    }

    /// When to pass again, from the status after a pass: the one place the
    /// wake is decided.
    fn wake(
        &mut self,
        status: &Status,
        blocked: usize,
        token_error: Option<&str>,
    ) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        let after = |wait: Duration| {
            chrono::Duration::from_std(wait)
                .ok()
                .and_then(|w| now.checked_add_signed(w))
        };
        let mut wake = status.next_due();
        if blocked > 0 {
            let wait = self
                .token_wait
                .map_or(Duration::from_secs(1), |w| w.saturating_mul(2))
                .min(self.max_token_wait);
            self.token_wait = Some(wait);
            tracing::error!(
                "{}; {blocked} due reset(s) wait; looking for a token again in {wait:?}",
                token_error.unwrap_or("no API token")
            );
            wake = wake.into_iter().chain(after(wait)).min();
        } else {
            self.token_wait = None;
        }
        if self.credentials.from_file() && status.awaits_new_token() {
            // The token file may be rotated at any moment, and a new token
            // retries at once; a look every few seconds costs nothing.
            wake = wake.into_iter().chain(after(TOKEN_RECHECK)).min();
        }
        wake
    }
}

#[cfg(test)]
mod tests {
    //! The wake, decided here, on an injected clock and paused tokio time:
    //! no test waits on the wall clock.

    use super::*;
    use crate::reconcile::TokioClock;
    use crate::store::MemStore;
    use chrono::TimeZone as _;

    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 0).unwrap()
    }

    fn args(extra: &[&str]) -> crate::cli::RunArgs {
        let cli = <crate::cli::Cli as clap::Parser>::parse_from(
            ["resetd", "run", "--config", "/nowhere/resets.yaml"]
                .iter()
                .chain(extra),
        );
        match cli.command {
            crate::cli::Command::Run(args) => args,
            other => panic!("{other:?}"),
        }
    }

    fn config(body: &str) -> Config {
        let text = format!("apiVersion: resetd/v1\nkind: SessionResets\n{body}");
        let loaded = crate::config::parse("t.yaml", &text, base());
        loaded
            .config
            .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
    }

    /// Passes over `config` from an empty status, each `gap` after the
    /// last: the wake each returned, as seconds after its pass began.
    async fn wakes(
        config: &Config,
        args: &crate::cli::RunArgs,
        token_file: &str,
        n: usize,
    ) -> Vec<Option<i64>> {
        let clock = TokioClock::starting_at(base());
        let credentials = Credentials::new(
            "http://127.0.0.1:9/v1",
            Some(std::path::Path::new(token_file)),
        );
        let mut reconciler = Reconciler::new(args, credentials, clock);
        let mut status = Status::default();
        let mut store = MemStore::default();
        let (_stop_tx, stop) = watch::channel(false);
        let mut out = Vec::new();
        for _ in 0..n {
            let began = reconciler.clock.now();
            let done = reconciler
                .pass(
                    config,
                    &mut status,
                    Ports {
                        store: &mut store,
                        observer: &(),
                        control: &mut (),
                        stop: stop.clone(),
                        source_revision: None,
                    },
                )
                .await
                .unwrap();
            out.push(done.wake.map(|w| (w - began).num_seconds()));
            if let Some(w) = done.wake {
                let wait = (w - reconciler.clock.now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn resets_waiting_for_a_token_wake_doubling_up_to_the_resync() {
        let c = config("resets:\n  - id: r1\n    hashes: [H1]\n");
        let got = wakes(&c, &args(&["--resync", "5s"]), "/nowhere/token", 5).await;
        assert_eq!(got, [Some(1), Some(2), Some(4), Some(5), Some(5)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_recurring_entry_wakes_for_its_next_slot() {
        let every = config(
            "settings:\n  dryRun: true\nresets:\n  - id: r1\n    hashes: [H1]\n    trigger: {every: 6h}\n",
        );
        let got = wakes(&every, &args(&[]), "/nowhere/token", 3).await;
        assert_eq!(got, [Some(6 * 3600); 3]);
        // 10:30 → the next 03:00 is 16 h 30 min away, then a day each.
        let cron = config(
            "settings:\n  dryRun: true\nresets:\n  - id: r1\n    hashes: [H1]\n    trigger: {cron: \"0 3 * * *\"}\n",
        );
        let got = wakes(&cron, &args(&[]), "/nowhere/token", 3).await;
        assert_eq!(
            got,
            [Some(16 * 3600 + 1800), Some(24 * 3600), Some(24 * 3600)]
        );
        // A one-shot entry, done: nothing to wake for.
        let once = config("settings:\n  dryRun: true\nresets:\n  - id: r1\n    hashes: [H1]\n");
        assert_eq!(wakes(&once, &args(&[]), "/nowhere/token", 1).await, [None]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_run_wakes_for_its_retry_backing_off() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-1234567890").unwrap();
        // Nothing listens on port 9: every run fails for a passing reason.
        let c = config("settings:\n  maxAttempts: 1\nresets:\n  - id: r1\n    hashes: [H1]\n");
        let got = wakes(
            &c,
            &args(&["--retry-backoff", "10s"]),
            token.to_str().unwrap(),
            4,
        )
        .await;
        assert_eq!(got, [Some(10), Some(20), Some(40), Some(80)]);
    }
}
