//! The daemon as a member of an HA group (`--etcd`, SPEC §7): a standby
//! until elected, then the same passes as a single daemon over the shared
//! status, back to standby when its term ends.
//!
//! One cycle at a time, as Patroni's `run_cycle`: the leadership task
//! (`etcd::leader::drive`) keeps the lease and campaigns; this loop reads
//! the term it publishes and acts on it.
//!
//! # Guarantees
//! - Only the leader passes, writes status and notifies; a standby loads and
//!   validates every config like the leader (the reloader is the same), and
//!   serves `/status` read from etcd (refreshed every `STANDBY_REFRESH`).
//! - A new term reads the whole status from etcd first: nothing a former
//!   term of this member remembered is trusted.
//! - A term that ends (deposed, lease not renewed in time, etcd gone) ends
//!   the pass at its next store call; the member stays up as a standby.
//! - `/readyz` is 200 only while the last etcd call needing a quorum
//!   succeeded (the config in force is good by construction).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::{Daemon, Exit, sleep, source_revision};
use crate::cli::RunArgs;
use crate::config::Config;
use crate::etcd::{self, Client, EtcdStore, Keys, Leadership, MemberInfo, Term};
use crate::reconcile::Clock;
use crate::status::Status;
use crate::store::{StatusStore, Store, StoreError};

/// How fresh a standby's `/status` is.
const STANDBY_REFRESH: Duration = Duration::from_secs(1);
/// How long a member that could not start its term waits before it
/// campaigns again.
const HOLD_OFF: Duration = Duration::from_secs(5);
/// How often the HA metrics and readiness are brought up to date.
const GAUGE_EVERY: Duration = Duration::from_millis(200);

/// Where the daemon keeps its status.
pub(super) enum AnyStore {
    File(Store),
    /// An HA member: the shared status while it leads.
    Leading(Box<EtcdStore>),
    /// An HA standby: nothing may be written or sent.
    Standby,
}

impl StatusStore for AnyStore {
    fn record(&mut self, status: &Status, id: &str, durable: bool) -> Result<(), StoreError> {
        match self {
            AnyStore::File(s) => s.record(status, id, durable),
            AnyStore::Leading(s) => s.record(status, id, durable),
            AnyStore::Standby => Err(standby()),
        }
    }

    fn save(&mut self, status: &mut Status) -> Result<(), StoreError> {
        match self {
            AnyStore::File(s) => s.save(status),
            AnyStore::Leading(s) => s.save(status),
            AnyStore::Standby => Err(standby()),
        }
    }

    fn may_send(&mut self) -> Result<(), StoreError> {
        match self {
            AnyStore::File(s) => s.may_send(),
            AnyStore::Leading(s) => s.may_send(),
            AnyStore::Standby => Err(standby()),
        }
    }
}

fn standby() -> StoreError {
    StoreError::Shared(etcd::leader::LostLeadership::NotLeader.to_string())
}

/// What `start::open` gives a single daemon, for an HA member: no store
/// yet, an empty status, where `--status` would be (the import source),
/// and the token's source.
pub(super) fn opened(
    args: &RunArgs,
) -> (
    AnyStore,
    Status,
    std::path::PathBuf,
    crate::api::Credentials,
) {
    let path = args
        .status
        .clone()
        .unwrap_or_else(|| crate::store::default_status_path(&args.config));
    // A request `may_send` allowed leaves within half the margin, so before
    // the lease can expire (the margin is at least 500 ms).
    let margin = etcd::leader::Options {
        member: String::new(),
        ttl: args.ha_lease,
    }
    .margin();
    let credentials = crate::api::Credentials::new(&args.api_base, args.token_file.as_deref())
        .connecting_within(margin / 2);
    (AnyStore::Standby, Status::default(), path, credentials)
}

/// This member of an HA group.
pub(super) struct Ha {
    client: Arc<Client>,
    keys: Keys,
    leadership: Arc<Leadership>,
    /// `--status FILE`: imported once into a group with no status yet.
    import: Option<std::path::PathBuf>,
    /// The imported file's lock, held for the member's life.
    import_lock: std::sync::Mutex<Option<Store>>,
}

impl Ha {
    /// `None` without `--etcd`.
    pub(super) fn new(args: &RunArgs) -> anyhow::Result<Option<Ha>> {
        if args.etcd.etcd.is_none() {
            return Ok(None);
        }
        let (client, keys) = etcd::connect(&args.etcd)?;
        let member = args.member.clone().unwrap_or_else(default_member);
        tracing::info!(
            etcd = %client.endpoints(), group = %args.etcd.ha_group, member = %member,
            lease = ?args.ha_lease, "HA: joining the group"
        );
        let leadership = Leadership::new(etcd::leader::Options {
            member,
            ttl: args.ha_lease,
        });
        Ok(Some(Ha {
            client,
            keys,
            leadership,
            import: args.status.clone(),
            import_lock: std::sync::Mutex::new(None),
        }))
    }

    /// Take part until shutdown.
    pub(super) async fn run<C: Clock>(
        self,
        daemon: &mut Daemon<C>,
        mut configs: watch::Receiver<Arc<Config>>,
        may_notify: Arc<AtomicBool>,
    ) -> anyhow::Result<Exit> {
        let (info_tx, info_rx) = watch::channel(self.member_info(daemon, None));
        // The leadership outlives the daemon's stop: a leader stopping keeps
        // its lease until its last pass and save are done, then gives it up.
        let (release, released) = watch::channel(false);
        let driver = tokio::spawn(etcd::leader::drive(
            Arc::clone(&self.leadership),
            Arc::clone(&self.client),
            self.keys.clone(),
            info_rx,
            released,
        ));
        let gauges = tokio::spawn(gauges(
            Arc::clone(&self.leadership),
            Arc::clone(&daemon.shared),
            daemon.stop.clone(),
        ));
        let mut terms = self.leadership.terms();
        let mut stop = daemon.stop.clone();
        let mut published = daemon.config.digest.clone();
        // The newest change of the shared status `/status` shows.
        let mut shown = -1;
        'member: loop {
            // Standby: it neither notifies nor counts entries.
            may_notify.store(false, Ordering::Relaxed);
            daemon.store = AnyStore::Standby;
            daemon.shared.metrics.status(&Status::default());
            let term = loop {
                if let Some(term) = *terms.borrow_and_update() {
                    break term;
                }
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break 'member,
                    // An election does not wait for a read of the status.
                    _ = terms.changed() => continue,
                    () = self.refresh_status(daemon, &mut shown) => {}
                }
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break 'member,
                    _ = terms.changed() => {}
                    changed = configs.changed() => {
                        if changed.is_err() {
                            // The reloader only ends at shutdown.
                            break 'member;
                        }
                    }
                    () = tokio::time::sleep(STANDBY_REFRESH) => {}
                }
                // Published, not taken: the leader's pass takes it (and
                // restarts the notifier if its receivers changed).
                let current = Arc::clone(&configs.borrow());
                self.publish(daemon, &current, &mut published, &info_tx)
                    .await;
            };
            // Leader: the status as etcd has it now.
            match self.open(term).await {
                Ok((store, status)) => {
                    daemon.store = AnyStore::Leading(Box::new(store));
                    daemon.status = status;
                    daemon.shared.set_status(&daemon.status);
                }
                Err(e) => {
                    tracing::error!("cannot start leading: {e:#}; another member may");
                    self.leadership.step_down(
                        term,
                        &etcd::leader::LostLeadership::Unconfirmed(format!("{e:#}")),
                    );
                    self.leadership.hold_off(HOLD_OFF);
                    continue;
                }
            }
            may_notify.store(true, Ordering::Relaxed);
            loop {
                let wake = match daemon.pass(&mut configs).await {
                    Ok(wake) => wake,
                    Err(e) if self.leadership.term() != Some(term) => {
                        tracing::warn!("the pass ended with the term: {e:#}");
                        continue 'member;
                    }
                    Err(e) => {
                        // A leader that cannot tell what it wrote may not go on.
                        self.leadership
                            .step_down(term, &etcd::leader::LostLeadership::Expired);
                        tracing::error!("stepping down after a failed pass: {e:#}");
                        continue 'member;
                    }
                };
                let current = Arc::clone(&daemon.config);
                self.publish(daemon, &current, &mut published, &info_tx)
                    .await;
                if *daemon.stop.borrow() {
                    break 'member;
                }
                let delay = wake.map(|t| {
                    (t - daemon.reconciler.clock.now())
                        .to_std()
                        .unwrap_or_default()
                });
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break 'member,
                    _ = terms.changed() => {
                        if *terms.borrow_and_update() != Some(term) {
                            continue 'member;
                        }
                    }
                    changed = configs.changed() => {
                        if changed.is_err() {
                            break 'member;
                        }
                    }
                    () = sleep(delay) => {}
                }
            }
        }
        daemon.shared.ready.store(false, Ordering::Relaxed);
        if let AnyStore::Leading(_) = daemon.store
            && self.leadership.term().is_some()
        {
            daemon.status.updated_at = Some(daemon.reconciler.clock.now());
            match daemon.store.save(&mut daemon.status) {
                Ok(()) => tracing::info!("stopped; shared status written"),
                Err(e) => tracing::warn!("stopped; the shared status was not written: {e}"),
            }
        }
        // The driver gives the lease back, so a standby takes over at once.
        let _ = release.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
        gauges.abort();
        tracing::info!("stopped");
        Ok(Exit::Stopped)
    }

    /// The store of a new term, over the status read fresh from etcd (or
    /// imported from `--status` into an empty group).
    async fn open(&self, term: Term) -> anyhow::Result<(EtcdStore, Status)> {
        let timeout = etcd::COMMAND_TIMEOUT.min(self.leadership.options.ttl);
        let loaded = etcd::layout::load(&self.client, &self.keys, timeout).await?;
        let mut store = EtcdStore::new(
            Arc::clone(&self.client),
            self.keys.clone(),
            Arc::clone(&self.leadership),
            term,
            &loaded,
        )?;
        let mut status = loaded.status;
        let unfinished = store.unfinished_import().map(str::to_owned);
        match (&loaded.meta, &self.import, unfinished) {
            // A group without a status, or an import cut short: import the
            // file (again, whole: it replaces whatever the first try wrote).
            (None, Some(path), _) | (Some(_), Some(path), Some(_)) => {
                status = self.import(&mut store, path).await?;
            }
            (Some(_), None, Some(from)) => anyhow::bail!(
                "an import of {from} into this HA group was cut short; start a member with \
                 --status {from} to finish it (nothing was sent)"
            ),
            // Marked as started at once, so a later member given --status
            // cannot import over what this one will send.
            (None, None, _) => store.write_meta()?,
            (Some(_), _, None) => {}
        }
        tracing::info!(
            entries = status.resets.len(),
            revision = term.revision,
            "leading the HA group"
        );
        Ok((store, status))
    }

    /// Import the status file `path` into the group: marked as begun, every
    /// entry written, marked as done.
    async fn import(
        &self,
        store: &mut EtcdStore,
        path: &std::path::Path,
    ) -> anyhow::Result<Status> {
        // Under the file's lock, held from now on: a single instance still
        // running on it (a migration done out of order) must not send
        // beside the group, nor start on it again afterwards.
        let (lock, mut status) = {
            let path = path.to_owned();
            tokio::task::spawn_blocking(move || Store::open(&path)).await??
        };
        if let Ok(mut slot) = self.import_lock.lock() {
            *slot = Some(lock);
        }
        status.journal_seq = 0;
        let shown = path.display().to_string();
        store.begin_import(&shown)?;
        store.end_import();
        store.save(&mut status)?;
        tracing::info!(
            file = %shown, entries = status.resets.len(),
            "HA: the group had no status; imported it from the status file (once)"
        );
        Ok(status)
    }

    /// A standby's `/status`: the shared status as etcd has it, read again
    /// only when a key of it changed (one key's read otherwise).
    async fn refresh_status<C: Clock>(&self, daemon: &Daemon<C>, shown: &mut i64) {
        let timeout = self.leadership.options.call_timeout();
        let newest = match self
            .client
            .newest_change(&self.keys.status(), timeout)
            .await
        {
            Ok(n) if n == *shown => return,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("cannot read the shared status: {e}");
                return;
            }
        };
        match etcd::layout::load(&self.client, &self.keys, timeout).await {
            Ok(loaded) => {
                daemon.shared.show_status(&loaded.status);
                *shown = newest;
            }
            Err(e) => tracing::debug!("cannot read the shared status: {e}"),
        }
    }

    /// Publish the config this member runs on (`current`) when it changed.
    async fn publish<C: Clock>(
        &self,
        daemon: &Daemon<C>,
        current: &Config,
        published: &mut String,
        info: &watch::Sender<MemberInfo>,
    ) {
        if current.digest == *published {
            return;
        }
        published.clone_from(&current.digest);
        let revision = source_revision(&daemon.args).await;
        info.send_replace(MemberInfo {
            config_digest: Some(current.digest.clone()),
            ..self.member_info(daemon, revision)
        });
    }

    fn member_info<C: Clock>(&self, daemon: &Daemon<C>, revision: Option<String>) -> MemberInfo {
        MemberInfo {
            role: String::new(),
            config_digest: Some(daemon.config.digest.clone()),
            source_revision: revision.or_else(|| daemon.source_revision.clone()),
            since: Some(chrono::Utc::now()),
            updated_at: None,
        }
    }
}

/// Keep `resetd_ha_*` and `/readyz` in step with the leadership.
async fn gauges(
    leadership: Arc<Leadership>,
    shared: Arc<crate::serve::Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let up = leadership.etcd_up();
        shared
            .metrics
            .ha(leadership.term().is_some(), up, leadership.changes());
        shared.ready.store(up, Ordering::Relaxed);
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(GAUGE_EVERY) => {}
        }
    }
}

/// `<hostname>-<pid>`, in the characters a member name may have.
fn default_member() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(48)
        .collect();
    let host = host.trim_start_matches(['.', '_', '-']);
    let host = if host.is_empty() { "resetd" } else { host };
    format!("{host}-{}", std::process::id())
}
