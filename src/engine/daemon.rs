//! The long-running mode of `resetd run` (SPEC §5).
//!
//! Two tasks. The *reloader* owns the config file: it wakes on a watcher
//! event, SIGHUP or the resync, checks the file's digest, waits until new
//! content has stayed byte-identical for the debounce period, parses it,
//! and publishes it only if it is valid (keep-last-good). The *loop* owns the
//! status: `next = pass(); select!{shutdown, new config, sleep_until(next)}`.
//!
//! # Guarantees
//! - An invalid config is rejected whole; the last good one stays in force.
//! - Content still being written is never applied.
//! - The loop sleeps until the earliest `nextRunAt` that the pass itself
//!   reports (no second planning, no polling); an idle daemon reads nothing.
//! - A new config reaches a run under way between batches: suspending,
//!   removing or dry-running its entry halts it (`reconcile::LiveConfig`).
//! - Resets due with no token wait, retried with a doubling back-off up to
//!   the resync period, logged once per step and counted in
//!   `resetd_resets_blocked{reason="no_token"}`.
//! - A config that cannot be read (deleted, a FIFO, no permission) is logged
//!   once per change of its error, however often it is checked; the last
//!   good config stays in force.
//! - On SIGTERM/SIGINT no new request starts; an in-flight one may finish
//!   within `--shutdown-timeout`; the status is written; exit 0. A request
//!   abandoned at the timeout was saved as in flight and is re-sent next start.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::cli::RunArgs;
use crate::config::{self, Config};
use crate::config_files::ConfigFiles;
use crate::pass::{Ports, Reconciler};
use crate::reconcile::{Clock, LiveConfig, SystemClock};
use crate::serve::Shared;
use crate::status::Status;
use crate::store::StatusStore as _;
use crate::watch::{ConfigWatch, Settled, max_wait, watch as watch_config};

mod ha;
use ha::AnyStore;

/// How the daemon ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by a signal (exit 0).
    Stopped,
    /// The config was invalid at start-up (exit 1).
    InvalidConfig,
}

/// Start the runtime, wire SIGTERM/SIGINT to shutdown, and run.
pub fn main(args: RunArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let signal = crate::shutdown::signal()?;
        run(args, async move {
            signal.await;
        })
        .await
    })
}

/// The commit the config came from (`revision::of`), asked of git off the
/// async threads.
async fn source_revision(args: &RunArgs) -> Option<String> {
    let config = args.config.clone();
    let given = args.source_revision.clone();
    tokio::task::spawn_blocking(move || crate::revision::of(&config, given.as_deref()))
        .await
        .ok()
        .flatten()
}

struct Daemon<C: Clock> {
    /// Where run outcomes and rejected configs (by the reloader) are told;
    /// rebuilt when a new config changes the receivers.
    notifier: Arc<std::sync::Mutex<crate::notify::Notifier>>,
    /// The commit the config in force came from.
    source_revision: Option<String>,
    args: RunArgs,
    /// The config in force: the newest valid one the reloader published.
    config: Arc<Config>,
    status: Status,
    /// The status file, or (`--etcd`) the shared status while leading.
    store: AnyStore,
    shared: Arc<Shared>,
    /// The passes' long-lived half: token, sub-users, rate limit, clock.
    reconciler: Reconciler<C>,
    stop: watch::Receiver<bool>,
}

/// Run the daemon until `shutdown` completes.
pub async fn run(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Exit> {
    run_with_clock(args, shutdown, SystemClock).await
}

/// [`run`] with the time read from `clock`: tests drive the daemon in
/// process on paused tokio time (`reconcile::TokioClock`).
pub async fn run_with_clock<C: Clock>(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: C,
) -> anyhow::Result<Exit> {
    let mut files = ConfigFiles::new(&args.config, args.status.as_deref());
    let loaded = files
        .load(clock.now())
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", args.config.display()))?;
    let mut loaded = loaded;
    let file = args.config.display().to_string();
    config::refuse_token_file(&mut loaded, args.token_file.as_deref(), &file);
    crate::logging::diagnostics(&loaded.diagnostics);
    let Some(config) = loaded.config else {
        tracing::error!(file = %args.config.display(), "config is invalid; nothing to run");
        return Ok(Exit::InvalidConfig);
    };
    // Fails fast, before touching the status directory, when resets are due
    // and there is no token to send them with. With --etcd there is no
    // status file to open: the leader reads the shared status when elected.
    let ha = ha::Ha::new(&args)?;
    let (store, status, status_path, credentials) = match &ha {
        None => {
            let opened = crate::start::open(&args, &config, clock.now())?;
            let store = AnyStore::File(opened.store);
            (store, opened.status, opened.path, opened.credentials)
        }
        Some(_) => ha::opened(&args),
    };

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let shared = Arc::new(match &ha {
        None => Shared::new(),
        Some(_) => Shared::with_metrics(crate::metrics::Metrics::with_ha()),
    });
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
    let (config_tx, config_rx) = watch::channel(Arc::new(config));
    // A standby of an HA group tells nobody of a rejected config: the
    // leader, which rejects it too, does.
    let may_notify = Arc::new(std::sync::atomic::AtomicBool::new(ha.is_none()));
    let notifier = crate::notify::start_available(&config_rx.borrow(), Arc::clone(&shared) as _);
    let shared_notifier = Arc::new(std::sync::Mutex::new(notifier));
    let reloader = Reloader {
        path: args.config.clone(),
        events: watch.as_ref().map(ConfigWatch::events),
        files: Arc::new(std::sync::Mutex::new(files)),
        cost: (0, 0),
        token_file: args.token_file.clone(),
        config_path: args.config.clone(),
        source_revision: args.source_revision.clone(),
        quiet: args.debounce,
        seen: loaded.digest,
        unreadable: None,
        tx: config_tx,
        shared: Arc::clone(&shared),
        notifier: Arc::clone(&shared_notifier),
        may_notify: Arc::clone(&may_notify),
    };
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(reloader.run(watch, hup, args.resync, stop.clone()));
    let mut daemon = Daemon {
        notifier: shared_notifier,
        source_revision: source_revision(&args).await,
        reconciler: Reconciler::new(&args, credentials, clock),
        config: Arc::clone(&config_rx.borrow()),
        status,
        store,
        shared,
        stop,
        args,
    };
    if let Some(ha) = ha {
        return ha.run(&mut daemon, config_rx, may_notify).await;
    }
    daemon.shared.set_status(&daemon.status);
    daemon.shared.ready.store(true, Ordering::Relaxed);
    daemon.run(config_rx).await
}

impl<C: Clock> Daemon<C> {
    async fn run(&mut self, mut configs: watch::Receiver<Arc<Config>>) -> anyhow::Result<Exit> {
        let mut stop = self.stop.clone();
        loop {
            let wake = self.pass(&mut configs).await?;
            if *self.stop.borrow() {
                break;
            }
            let delay = wake.map(|t| {
                (t - self.reconciler.clock.now())
                    .to_std()
                    .unwrap_or_default()
            });
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                changed = configs.changed() => {
                    if changed.is_err() {
                        // The reloader only ends at shutdown.
                        break;
                    }
                }
                () = sleep(delay) => {}
            }
        }
        self.shared.ready.store(false, Ordering::Relaxed);
        self.status.updated_at = Some(self.reconciler.clock.now());
        self.store.save(&mut self.status)?;
        tracing::info!("stopped; status written");
        Ok(Exit::Stopped)
    }

    /// One reconcile pass with the newest config. Returns when to wake for
    /// the next one (`None`: only a config change or shutdown can bring work).
    async fn pass(
        &mut self,
        configs: &mut watch::Receiver<Arc<Config>>,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let newest = Arc::clone(&configs.borrow_and_update());
        if !Arc::ptr_eq(&newest, &self.config) {
            if newest.notifications != self.config.notifications {
                let notifier =
                    crate::notify::start_available(&newest, Arc::clone(&self.shared) as _);
                if let Ok(mut slot) = self.notifier.lock() {
                    *slot = notifier;
                }
            }
            let replaced = std::mem::replace(&mut self.config, newest);
            // Freed on another thread, now: thousands of entries to drop
            // must not stand between an edit and its first request, nor be
            // held through a long run.
            tokio::task::spawn_blocking(move || drop(replaced));
            // A new config is usually a new commit (a merge, a git-sync).
            self.source_revision = source_revision(&self.args).await;
        }
        let mut control = LiveConfig::new(configs.clone(), self.args.dry_run);
        let events = crate::notify::RunEvents {
            notifier: self.notifier.lock().map(|n| n.clone()).unwrap_or_default(),
        };
        let config = Arc::clone(&self.config);
        let done = self
            .reconciler
            .pass(
                &config,
                &mut self.status,
                Ports {
                    store: &mut self.store,
                    observer: &(&self.shared.metrics, &events),
                    control: &mut control,
                    stop: self.stop.clone(),
                    source_revision: self.source_revision.clone(),
                },
            )
            .await?;
        self.shared.metrics.blocked_without_token(done.blocked);
        self.shared.set_status(&self.status);
        if done.summary.is_none() {
            // The grace after a stop ran out: the loop ends.
            return Ok(None);
        }
        self.shared.metrics.reconciled();
        Ok(done.wake)
    }
}

/// Owns the config file: decides when its content changed for good, and
/// publishes each new valid config.
struct Reloader {
    path: PathBuf,
    /// The watcher's count of changes (`ConfigWatch::events`): a read of
    /// the config is applied without a second look only if it did not move
    /// while the read was made.
    events: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The config's files and their parses, shared with the blocking
    /// threads that read them (one read at a time).
    files: Arc<std::sync::Mutex<ConfigFiles>>,
    /// What the last load cost: files parsed, milliseconds.
    cost: (usize, u64),
    /// `--token-file`: no receiver may read it.
    token_file: Option<PathBuf>,
    /// The debounce period: also how long new content must stay unchanged.
    quiet: Duration,
    /// Digest of the content last parsed, valid or not, so an unchanged
    /// invalid file is not re-reported at every resync.
    seen: String,
    /// The read error last logged, while the file cannot be read: a deleted
    /// or unreadable config is logged when that changes, not at every check.
    unreadable: Option<String>,
    tx: watch::Sender<Arc<Config>>,
    shared: Arc<Shared>,
    /// Told when a new config is rejected.
    notifier: Arc<std::sync::Mutex<crate::notify::Notifier>>,
    /// False on an HA standby: only the leader notifies.
    may_notify: Arc<std::sync::atomic::AtomicBool>,
    /// For the rejected config's source revision.
    config_path: PathBuf,
    source_revision: Option<String>,
}

impl Reloader {
    async fn run(
        mut self,
        mut watch: Option<ConfigWatch>,
        mut hup: tokio::signal::unix::Signal,
        resync: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut resync = tokio::time::interval(resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.reset(); // the first tick would fire at once
        let max_wait = max_wait(self.quiet);
        self.retrust_later();
        let mut early = None;
        loop {
            // (force, settled): SIGHUP re-parses unchanged content; a
            // quiet debounce already proves the content settled.
            let (force, settled) = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    (true, false)
                }
                changed = changed(&mut watch, self.quiet, max_wait, &mut early, self.reader()) => {
                    if changed.is_none() {
                        tracing::error!("config watcher stopped; relying on the resync");
                        watch = None;
                    }
                    (false, changed == Some(Settled::Quiet))
                }
                _ = resync.tick() => (false, false),
            };
            // A read made in a debounce stands only at its quiet end (a
            // SIGHUP or the resync may have cut the debounce short).
            let early = early.take().filter(|_| settled);
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                () = self.reload(force, settled, early) => {}
            }
            self.retrust_later();
        }
    }

    /// Take the digests the last check could not trust
    /// (`ConfigFiles::untrusted`) again just after they can be, in a task of
    /// their own: this loop must not stop watching for it (a debounce under
    /// way would be dropped with its event). What they show is not acted
    /// on here: a change was also an event, or the resync sees it. Once per
    /// load: a file whose ctime stays in the future (a clock set back) is
    /// never trusted, and must not be read every second for it.
    fn retrust_later(&self) {
        let files = Arc::clone(&self.files);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(crate::config_files::RACY + RETRUST_MARGIN).await;
            // Asked on a blocking thread: a read may hold the files.
            let _ = tokio::task::spawn_blocking(move || {
                let mut files = lock(&files);
                if files.untrusted() {
                    shared.metrics.config_read();
                    // An unreadable file is the next check's to report.
                    let _ = files.digest();
                }
            })
            .await;
        });
    }

    /// What a read of the config made early in a debounce needs.
    fn reader(&self) -> Reader {
        Reader {
            files: Arc::clone(&self.files),
            shared: Arc::clone(&self.shared),
            events: self.events.clone(),
            // After a failed read, any content is news.
            seen: self.unreadable.is_none().then(|| self.seen.clone()),
        }
    }

    /// Check the file; once new content has settled, parse it and publish
    /// it if valid. `force` (SIGHUP) re-parses unchanged content too;
    /// `settled`: the watcher saw no change for a debounce period already.
    /// `early`: the config as read during that quiet period.
    async fn reload(&mut self, force: bool, mut settled: bool, mut early: Option<Read>) {
        let was_unreadable = self.unreadable.is_some();
        if force && let Ok(mut files) = self.files.lock() {
            files.forget();
        }
        // A file back after it could not be read is parsed even if unchanged,
        // so that the log and the metrics say again which config is in force.
        let news = |digest: &str, seen: &str| force || was_unreadable || digest != seen;
        // Content the watcher saw settle is loaded at once: the load takes
        // each file's digest as it reads it, so a first check would only
        // list and stat the tree twice on the way to the first request.
        let mut candidate = None;
        if !settled {
            let Some(digest) = self.digest().await else {
                return;
            };
            if !news(&digest, &self.seen) {
                return;
            }
            candidate = Some(digest);
        }
        let loaded = loop {
            // Settle: a file written in place over several seconds is
            // applied only once it stops changing, never half-written.
            if !settled {
                tokio::time::sleep(self.quiet).await;
                let Some(again) = self.digest().await else {
                    return;
                };
                if candidate.as_ref() != Some(&again) {
                    tracing::debug!(file = %self.path.display(), "config still changing; waiting for it to settle");
                    candidate = Some(again);
                    continue;
                }
            }
            settled = false;
            let read = early.take().unwrap_or_else(|| self.reader().start(None));
            let from = read.from;
            let Some(loaded) = self.load(read).await else {
                return;
            };
            let Some(loaded) = loaded else {
                // The early read found the content it was told of.
                return;
            };
            // A change under way while the read was made (it came after the
            // quiet period) may have been read in part: settle again.
            let moved = self
                .events
                .as_ref()
                .is_some_and(|e| e.load(std::sync::atomic::Ordering::SeqCst) != from);
            match &candidate {
                None if moved => candidate = Some(loaded.digest),
                None if !news(&loaded.digest, &self.seen) => return,
                None => break loaded,
                Some(c) if *c == loaded.digest => break loaded,
                // Changed between the check and the parse: settle again.
                Some(_) => candidate = Some(loaded.digest),
            }
        };
        self.seen.clone_from(&loaded.digest);
        let mut loaded = loaded;
        let file = self.path.display().to_string();
        config::refuse_token_file(&mut loaded, self.token_file.as_deref(), &file);
        crate::logging::diagnostics(&loaded.diagnostics);
        let path = self.path.display();
        match loaded.config {
            Some(config) => {
                // What the reload cost: a config directory re-parses only
                // the files that changed.
                let (parsed, took_ms) = self.cost;
                tracing::info!(file = %path, digest = %loaded.digest, entries = config.resets.len(), parsed, took_ms, "config reloaded");
                self.shared.metrics.reload(true);
                self.tx.send_replace(Arc::new(config));
            }
            None => {
                let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
                tracing::error!(
                    file = %path,
                    errors,
                    "config rejected: {errors} error(s); keeping the last good config"
                );
                self.shared.metrics.reload(false);
                // A config directory's rejection names the file that broke it.
                let first = loaded
                    .diagnostics
                    .iter()
                    .find(|d| d.is_error())
                    .map(|d| match d.file == path.to_string() {
                        true => format!("; first: line {}: {}", d.line, d.message),
                        false => format!("; first: {} line {}: {}", d.file, d.line, d.message),
                    })
                    .unwrap_or_default();
                let revision =
                    crate::revision::of(&self.config_path, self.source_revision.as_deref());
                let event = crate::notify::config_rejected(
                    format!(
                        "config rejected: {errors} error(s){first}; the last good config stays in force"
                    ),
                    Some(loaded.digest.clone()),
                    revision,
                );
                if let Ok(notifier) = self.notifier.lock()
                    && self.may_notify.load(Ordering::Relaxed)
                {
                    notifier.send(event);
                }
            }
        }
    }

    /// The file's digest, off the async threads; `None` (logged, counted)
    /// when it cannot be read.
    async fn digest(&mut self) -> Option<String> {
        self.shared.metrics.config_read();
        let files = Arc::clone(&self.files);
        let read = tokio::task::spawn_blocking(move || lock(&files).digest()).await;
        self.read_result(read)
    }

    /// Wait for a read of the config: `None` when it could not be made
    /// (logged, counted), `Some(None)` when it found the content it was
    /// told of unchanged and parsed nothing.
    async fn load(&mut self, read: Read) -> Option<Option<config::Loaded>> {
        let (loaded, cost) = self.read_result(read.task.await)?;
        if let Some(cost) = cost {
            self.cost = cost;
        }
        Some(loaded)
    }

    fn read_result<T>(
        &mut self,
        read: Result<std::io::Result<T>, tokio::task::JoinError>,
    ) -> Option<T> {
        let problem = match read {
            Ok(Ok(value)) => {
                if self.unreadable.take().is_some() {
                    tracing::info!(file = %self.path.display(), "the config can be read again");
                }
                return Some(value);
            }
            Ok(Err(e)) => format!("cannot read the config: {e}"),
            Err(e) => format!("config reload failed: {e}"),
        };
        // Every failed check counts; only news is logged as an error.
        if self.unreadable.as_ref() == Some(&problem) {
            tracing::debug!(file = %self.path.display(), "{problem}; keeping the last good config");
        } else {
            tracing::error!(file = %self.path.display(), "{problem}; keeping the last good config");
            self.unreadable = Some(problem);
        }
        self.shared.metrics.reload(false);
        None
    }
}

/// The files, whoever held them last: a panic mid-read leaves at worst a
/// cache entry that the next digest check replaces.
fn lock(files: &std::sync::Mutex<ConfigFiles>) -> std::sync::MutexGuard<'_, ConfigFiles> {
    files
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long after [`crate::config_files::RACY`] the digests are taken again.
const RETRUST_MARGIN: Duration = Duration::from_millis(100);

/// Sleep until `wake`, or forever when there is nothing scheduled.
async fn sleep(delay: Option<Duration>) {
    match delay {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// What a read yields: the config (`None`: its digest was the one the
/// reader was told of, so nothing was parsed) and what the parse cost
/// (files parsed, milliseconds).
type Outcome = (Option<config::Loaded>, Option<(usize, u64)>);

/// A read of the config under way on a blocking thread.
struct Read {
    task: tokio::task::JoinHandle<std::io::Result<Outcome>>,
    /// The watcher's change count when it began.
    from: u64,
}

/// What starts a read.
struct Reader {
    files: Arc<std::sync::Mutex<ConfigFiles>>,
    shared: Arc<Shared>,
    events: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The digest in force (`None` after a failed read).
    seen: Option<String>,
}

impl Reader {
    /// Read the config. With `unless`, first take its digest (stats, and
    /// reads of the files whose fingerprint moved) and parse only if it is
    /// not that one: a read made early in a debounce, which any event in
    /// the tree may start (`notes.txt` appended to), costs a check, not a
    /// parse and a merge of every file, unless the config changed.
    fn start(&self, unless: Option<String>) -> Read {
        self.shared.metrics.config_read();
        let from = self
            .events
            .as_ref()
            .map_or(0, |e| e.load(std::sync::atomic::Ordering::SeqCst));
        let files = Arc::clone(&self.files);
        let task = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let mut files = lock(&files);
            if let Some(seen) = unless
                && files.digest()? == seen
            {
                return Ok((None, None));
            }
            let loaded = files.load(Utc::now())?;
            let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok((Some(loaded), Some((files.parsed_last, took))))
        });
        Read { task, from }
    }
}

/// The next debounced change, the config read as soon as it has been calm
/// for a quarter of the quiet period (`watch::calm_after`): by the end of
/// the period the read is done, and stands if no event came after it began
/// (one that did starts the period again, and a later calm a new read).
/// A read still under way at a new calm began before the event that
/// restarted the period: it is dropped, and the next calm starts anew.
async fn changed(
    watch: &mut Option<ConfigWatch>,
    quiet: Duration,
    max_wait: Duration,
    early: &mut Option<Read>,
    reader: Reader,
) -> Option<Settled> {
    let Some(w) = watch else {
        return std::future::pending().await;
    };
    let mut calm = || {
        *early = match early.take() {
            Some(running) if !running.task.is_finished() => None,
            _ => Some(reader.start(reader.seen.clone())),
        };
    };
    w.changed_calling(quiet, max_wait, &mut calm).await
}
