//! The long-running mode of `resetd run` (SPEC §5).
//!
//! One loop consumes one closed `Event` at a time: a debounced config change,
//! a periodic resync, SIGHUP, a trigger falling due, or shutdown. Each event
//! ends in a reconcile pass (plan → execute) unless nothing changed.
//!
//! # Guarantees
//! - An invalid config is rejected whole; the last good one stays in force.
//! - Triggers fire on time: the loop sleeps until the earliest `nextRunAt`
//!   (no polling), and the resync bounds how stale anything can get.
//! - On SIGTERM/SIGINT no new request starts; an in-flight one may finish
//!   within `--shutdown-timeout`; the status is written; exit 0. A request
//!   abandoned at the timeout was saved as in flight and is re-sent next start.
//!
//! # Caveats
//! Runs execute inline: a config change that arrives during a long run is
//! applied when that run ends.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::api::{Api, Token, load_token};
use crate::cli::RunArgs;
use crate::config::{self, Config, hex_digest};
use crate::plan::{Action, plan};
use crate::reconcile::{Executor, RateLimiter, Stop};
use crate::serve::Shared;
use crate::status::Status;
use crate::store::{self, Store};
use crate::watch::{ConfigWatch, max_wait, watch as watch_config};

/// How the daemon ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by a signal (exit 0).
    Stopped,
    /// The config was invalid at start-up (exit 1).
    InvalidConfig,
}

/// What wakes the loop.
#[derive(Debug)]
enum Event {
    ConfigChanged,
    Resync,
    /// SIGHUP: re-read the config even if its digest is unchanged.
    Reload,
    /// A trigger's time has come.
    Due,
    Shutdown,
}

/// Start the runtime, wire SIGTERM/SIGINT to shutdown, and run.
pub fn main(args: RunArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            }
        };
        run(args, shutdown).await
    })
}

struct Daemon {
    args: RunArgs,
    config: Config,
    /// Digest of the config text last read, valid or not, so an unchanged
    /// invalid file is not re-reported at every resync.
    seen_digest: String,
    status: Status,
    store: Store,
    shared: Arc<Shared>,
    limiter: RateLimiter,
    api: Option<(Token, Api)>,
    stop: watch::Receiver<bool>,
}

/// Run the daemon until `shutdown` completes.
pub async fn run(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Exit> {
    let loaded = config::load(&args.config, Utc::now())
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", args.config.display()))?;
    log_diagnostics(&loaded.diagnostics);
    let Some(config) = loaded.config else {
        tracing::error!(file = %args.config.display(), "config is invalid; nothing to run");
        return Ok(Exit::InvalidConfig);
    };
    let status_path = args
        .status
        .clone()
        .unwrap_or_else(|| store::default_status_path(&args.config));
    let (store, status) = Store::open(&status_path)?;
    if plan(&config, &status, Utc::now(), args.dry_run).needs_api() {
        // Fail fast: resets are due and there is no way to send them.
        load_token(args.token_file.as_deref())?;
    }

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let shared = Arc::new(Shared::new());
    shared.metrics.reload(true);
    if let Some(addr) = args.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tracing::info!("listening on {}", listener.local_addr()?);
        let mut server_stop = stop.clone();
        let server_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let stopped = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::serve::serve(listener, server_shared, stopped).await {
                tracing::error!("HTTP server failed: {e}");
            }
        });
    }
    let watch = match watch_config(&args.config, &status_path) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(
                "cannot watch the config directory ({e}); relying on the {:?} resync",
                args.resync
            );
            None
        }
    };
    tracing::info!(
        config = %args.config.display(),
        status = %status_path.display(),
        entries = config.resets.len(),
        dry_run = args.dry_run,
        "resetd started"
    );
    let mut daemon = Daemon {
        seen_digest: config.digest.clone(),
        limiter: RateLimiter::new(config.settings.max_requests_per_second),
        config,
        status,
        store,
        shared,
        api: None,
        stop,
        args,
    };
    daemon.shared.set_status(&daemon.status);
    daemon.shared.ready.store(true, Ordering::Relaxed);
    daemon.run(watch).await
}

impl Daemon {
    async fn run(&mut self, mut watch: Option<ConfigWatch>) -> anyhow::Result<Exit> {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut resync = tokio::time::interval(self.args.resync);
        resync.reset(); // the first tick would fire at once
        let (quiet, max_wait) = (self.args.debounce, max_wait(self.args.debounce));
        let mut stop = self.stop.clone();
        let mut event = Event::Due;
        let mut stalled: Option<Vec<String>> = None;
        loop {
            match event {
                Event::Shutdown => break,
                Event::ConfigChanged | Event::Resync => self.reload(false),
                Event::Reload => self.reload(true),
                Event::Due => {}
            }
            let ran = self.pass().await?;
            if *self.stop.borrow() {
                break;
            }
            // Entries still due right after a pass: if the pass could not run
            // (no token) wait for an event or the resync; if the same entries
            // are due again, retry in a second rather than spin; otherwise
            // (they fell due during the pass) go again at once.
            let (due_now, next_wake) = self.upcoming();
            let wake = if due_now.is_empty() {
                stalled = None;
                next_wake
            } else if ran.is_none() {
                None
            } else if stalled.as_ref() == Some(&due_now) {
                Some(Utc::now() + chrono::Duration::seconds(1))
            } else {
                stalled = Some(due_now);
                Some(Utc::now())
            };
            let sleep = until(wake);
            event = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => Event::Shutdown,
                _ = hup.recv() => Event::Reload,
                changed = changed(&mut watch, quiet, max_wait) => {
                    if changed.is_none() {
                        tracing::error!("config watcher stopped; relying on the resync");
                        watch = None;
                    }
                    Event::ConfigChanged
                }
                _ = resync.tick() => Event::Resync,
                () = sleep => Event::Due,
            };
            tracing::debug!(?event, "woke");
        }
        self.shared.ready.store(false, Ordering::Relaxed);
        self.save()?;
        tracing::info!("stopped; status written");
        Ok(Exit::Stopped)
    }

    /// Re-read the config; swap it in only if it is valid.
    fn reload(&mut self, force: bool) {
        let path = self.args.config.clone();
        self.shared.metrics.config_read();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(file = %path.display(), "config reload failed: {e}; keeping the last good config");
                self.shared.metrics.reload(false);
                return;
            }
        };
        let digest = hex_digest(text.as_bytes());
        if !force && digest == self.seen_digest {
            return;
        }
        self.seen_digest.clone_from(&digest);
        let loaded = config::parse(&path.display().to_string(), &text, Utc::now());
        log_diagnostics(&loaded.diagnostics);
        match loaded.config {
            Some(config) => {
                tracing::info!(file = %path.display(), %digest, entries = config.resets.len(), "config reloaded");
                self.limiter
                    .set_rate(config.settings.max_requests_per_second);
                self.config = config;
                self.shared.metrics.reload(true);
            }
            None => {
                let errors = loaded.errors().count();
                tracing::error!(
                    file = %path.display(),
                    errors,
                    "config rejected: {errors} error(s); keeping the last good config"
                );
                self.shared.metrics.reload(false);
            }
        }
    }

    /// One reconcile pass. `None` when it could not run (no token).
    async fn pass(&mut self) -> anyhow::Result<Option<crate::reconcile::Summary>> {
        let now = Utc::now();
        let plan = plan(&self.config, &self.status, now, self.args.dry_run);
        if plan.needs_api() && !self.refresh_api() {
            return Ok(None);
        }
        let shutdown_timeout = self.args.shutdown_timeout;
        let mut stop = self.stop.clone();
        let mut executor = Executor {
            store: &mut self.store,
            api: self.api.as_ref().map(|(_, api)| api),
            limiter: &mut self.limiter,
            stop: Stop::new(self.stop.clone()),
            observer: &self.shared.metrics,
        };
        let summary = {
            let execution = executor.execute(&self.config, &plan, &mut self.status);
            tokio::pin!(execution);
            tokio::select! {
            result = &mut execution => result?,
            _ = stop.wait_for(|s| *s) => match tokio::time::timeout(shutdown_timeout, &mut execution).await {
                Ok(result) => result?,
                Err(_) => {
                    tracing::warn!(
                        "shutdown timeout ({shutdown_timeout:?}) reached with a request in flight; \
                         it is recorded as in flight and re-sent on the next start"
                    );
                    return Ok(None);
                }
            },
            }
        };
        self.shared.set_status(&self.status);
        Ok(Some(summary))
    }

    /// Make sure `self.api` uses the current token (a mounted secret may have
    /// rotated). False, with an error logged, when there is none.
    fn refresh_api(&mut self) -> bool {
        let token = match load_token(self.args.token_file.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("{e}; due resets wait");
                return false;
            }
        };
        if self
            .api
            .as_ref()
            .is_some_and(|(current, _)| *current == token)
        {
            return true;
        }
        match Api::new(&self.args.api_base, token.clone()) {
            Ok(api) => {
                self.api = Some((token, api));
                true
            }
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        }
    }

    /// From one plan: the ids of entries due right now, and the earliest
    /// time another falls due.
    fn upcoming(&self) -> (Vec<String>, Option<DateTime<Utc>>) {
        let plan = plan(&self.config, &self.status, Utc::now(), self.args.dry_run);
        let next = plan.entries.iter().filter_map(|e| e.next_run_at).min();
        let due = plan
            .entries
            .into_iter()
            .filter(|e| e.action != Action::Wait)
            .map(|e| e.id)
            .collect();
        (due, next)
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.status.updated_at = Some(Utc::now());
        self.store.save(&self.status)?;
        Ok(())
    }
}

/// Sleep until `wake`, or forever when there is nothing scheduled.
async fn until(wake: Option<DateTime<Utc>>) {
    match wake {
        Some(t) => {
            let delay = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(delay).await;
        }
        None => std::future::pending().await,
    }
}

async fn changed(
    watch: &mut Option<ConfigWatch>,
    quiet: Duration,
    max_wait: Duration,
) -> Option<()> {
    match watch {
        Some(w) => w.changed(quiet, max_wait).await,
        None => std::future::pending().await,
    }
}

fn log_diagnostics(diagnostics: &[crate::diagnostic::Diagnostic]) {
    for d in diagnostics {
        if d.is_error() {
            tracing::error!(file = %d.file, line = d.line, column = d.column, path = %d.path, "{}", d.message);
        } else {
            tracing::warn!(file = %d.file, line = d.line, column = d.column, path = %d.path, "{}", d.message);
        }
    }
}
