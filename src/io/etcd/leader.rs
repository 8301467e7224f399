//! Leadership on etcd: one lease per member, the leader key bound to it,
//! and the instant after which the leader must not start a request.
//!
//! `Leadership` is the shared state (read by the store before every
//! request, by `/readyz` and the metrics); `drive` is the task that keeps
//! it: it grants and keeps alive this member's lease, publishes the member
//! key, campaigns while standby, and steps down when the lease cannot be
//! shown to be held.
//!
//! # Guarantees
//! - A term is (lease, create revision of the leader key); the revision is
//!   the fencing token every status write compares.
//! - `may_send` is `Ok` only while this member leads in that term and
//!   `Instant::now()` is before the send time of the last keep-alive etcd
//!   acknowledged plus the TTL less `margin` (std's `Instant` is
//!   CLOCK_MONOTONIC on Linux, so time spent stopped by SIGSTOP counts).
//! - Stepping down abandons the lease (revoked if etcd can be reached,
//!   never kept alive again), so the leader key goes within one TTL at the
//!   latest and a new term needs a new lease and a new revision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::client::{Client, Cmp, EtcdError, Op};
use super::layout::Keys;

/// The leader's fencing: its lease and the create revision of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub lease: i64,
    pub revision: i64,
}

/// Why a leader may no longer act.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LostLeadership {
    #[error(
        "this member is no longer the HA leader (its leader key was taken or deleted); \
         it stepped down and sends nothing more"
    )]
    Deposed,
    #[error(
        "this member could not renew its etcd lease in time, so another may lead by now; it \
         stopped sending and stepped down"
    )]
    Expired,
    #[error("this member does not lead the HA group")]
    NotLeader,
    #[error(
        "a status write was not confirmed by etcd ({0}); this member stepped down and sends \
         nothing more"
    )]
    Unconfirmed(String),
}

/// How a member takes part.
#[derive(Debug, Clone)]
pub struct Options {
    pub member: String,
    pub ttl: Duration,
}

impl Options {
    /// Time kept between the last instant a leader may start a request and
    /// the earliest its lease can expire in etcd: covers the request's own
    /// start and clock rates. max(TTL/5, 500 ms).
    pub fn margin(&self) -> Duration {
        (self.ttl / 5).max(Duration::from_millis(500))
    }

    /// How often the lease is kept alive.
    pub fn keep_alive_every(&self) -> Duration {
        self.ttl / 3
    }

    /// The deadline of every etcd call a member makes while it runs: a
    /// keep-alive that takes longer is no proof anyway, and no call may
    /// outlast the margin (`may_send` reads the clock itself, but a write
    /// answered after the deadline proves nothing either).
    pub fn call_timeout(&self) -> Duration {
        (self.ttl / 3)
            .min(self.margin())
            .min(Duration::from_secs(1))
    }

    /// How often a standby tries to take the leader key (one small
    /// transaction). etcd notices an expired lease up to 500 ms late, and a
    /// new leader reads the status before its first request: this stays
    /// far under the rest of the second a failover may take beyond the TTL.
    pub fn campaign_every(&self) -> Duration {
        (self.ttl / 20).min(Duration::from_millis(100))
    }
}

/// What a member says of itself under `members/<name>`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    pub role: String,
    pub config_digest: Option<String>,
    pub source_revision: Option<String>,
    /// When this member started running this config digest.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl MemberInfo {
    /// A member key's value; `None` (skipped) when it is not one, or larger
    /// than any member writes.
    pub fn read(value: &[u8]) -> Option<MemberInfo> {
        if value.len() > 4096 {
            return None;
        }
        serde_json::from_slice(value).ok()
    }
}

#[derive(Debug, Default)]
struct State {
    /// This member's lease and the instant it may be trusted until.
    lease: Option<(i64, Instant)>,
    term: Option<Term>,
    /// Leases given up but maybe still alive in etcd (after a quorum loss
    /// etcd renews every lease when it elects a raft leader): revoked, and
    /// retried until etcd confirms, so their keys go and an election can
    /// happen at once. Never kept alive again.
    abandoned: Vec<i64>,
    /// No campaign before this instant (a term that could not start).
    campaign_after: Option<Instant>,
}

/// How often the leader reads the members' config digests: the warning
/// comes after a minute of skew, so a few seconds more are nothing.
const SKEW_CHECK_EVERY: Duration = Duration::from_secs(5);

/// At most this many leases wait to be revoked; an older one has expired by
/// itself long since (nothing keeps it alive).
const MAX_ABANDONED: usize = 16;

impl State {
    /// Stop using the lease; revoke it soon.
    fn abandon(&mut self) {
        if let Some((id, _)) = self.lease.take() {
            if self.abandoned.len() >= MAX_ABANDONED {
                self.abandoned.remove(0);
            }
            self.abandoned.push(id);
        }
    }
}

/// The shared leadership state of this member.
pub struct Leadership {
    pub options: Options,
    state: Mutex<State>,
    /// The current term (None: standby). The daemon loop waits on it.
    term_tx: watch::Sender<Option<Term>>,
    /// The last etcd call that needs a quorum succeeded (and within a TTL).
    etcd_up: AtomicBool,
    /// Counts terms this member won or lost: resetd_ha_leader_changes_total.
    changes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("member", &self.options.member)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    pub fn new(options: Options) -> Arc<Leadership> {
        Arc::new(Leadership {
            options,
            state: Mutex::new(State::default()),
            term_tx: watch::channel(None).0,
            etcd_up: AtomicBool::new(false),
            changes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it half-written: every
        // change is one assignment. Poisoning is therefore ignored.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Terms as they change.
    pub fn terms(&self) -> watch::Receiver<Option<Term>> {
        self.term_tx.subscribe()
    }

    pub fn term(&self) -> Option<Term> {
        self.state().term
    }

    pub fn etcd_up(&self) -> bool {
        self.etcd_up.load(Ordering::Relaxed)
    }

    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Whether the leader of `term` may start a request now.
    pub fn may_send(&self, term: Term) -> Result<(), LostLeadership> {
        let lost = {
            let state = self.state();
            if state.term != Some(term) {
                return Err(LostLeadership::NotLeader);
            }
            match state.lease {
                Some((lease, until)) if lease == term.lease && Instant::now() < until => {
                    return Ok(());
                }
                _ => LostLeadership::Expired,
            }
        };
        self.step_down(term, &lost);
        Err(lost)
    }

    /// Do not campaign for `pause`: this member could not start its term
    /// (the status unreadable, an import refused) and would fail again.
    pub fn hold_off(&self, pause: Duration) {
        self.state().campaign_after = Some(Instant::now() + pause);
    }

    /// Leave `term` (if it is still the current one) and abandon its lease.
    pub fn step_down(&self, term: Term, why: &LostLeadership) {
        let mut state = self.state();
        if state.term != Some(term) {
            return;
        }
        state.term = None;
        if state.lease.is_some_and(|(lease, _)| lease == term.lease) {
            state.abandon();
        }
        drop(state);
        self.changes.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(revision = term.revision, "stepped down: {why}");
        self.term_tx.send_replace(None);
    }
}

/// Keep this member's lease, member key and, when it can, the leadership,
/// until `stop`. `info` is what the member key says (the daemon updates it
/// when its config changes).
pub async fn drive(
    leadership: Arc<Leadership>,
    client: Arc<Client>,
    keys: Keys,
    mut info: watch::Receiver<MemberInfo>,
    mut stop: watch::Receiver<bool>,
) {
    let options = leadership.options.clone();
    let timeout = options.call_timeout();
    let mut next_keep_alive = Instant::now();
    let mut leader_seen: Option<String> = None;
    let mut skew = super::skew::Skew::default();
    let mut next_skew_check = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        revoke_abandoned(&leadership, &client, timeout).await;
        let lease = leadership.state().lease;
        let lease = match lease {
            Some((id, until)) if Instant::now() < until => id,
            Some(_) => {
                // Not renewed in time: whatever this member held it may
                // have lost; it starts again with a new lease.
                if let Some(term) = leadership.term() {
                    leadership.step_down(term, &LostLeadership::Expired);
                }
                leadership.state().abandon();
                continue;
            }
            None => {
                let sent = Instant::now();
                match client.grant(options.ttl, timeout).await {
                    Ok(id) => {
                        up(&leadership, true);
                        leadership.state().lease =
                            Some((id, sent + options.ttl.saturating_sub(options.margin())));
                        next_keep_alive = sent + options.keep_alive_every();
                        let current = info.borrow_and_update().clone();
                        let published =
                            publish(&client, &keys, &options, id, &current, "standby", timeout)
                                .await;
                        if let Err(e) = published {
                            tracing::debug!("cannot publish the member key: {e}");
                        }
                        id
                    }
                    Err(e) => {
                        down(&leadership, &e);
                        if wait(&mut stop, options.campaign_every()).await {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        // Keep the lease alive.
        if Instant::now() >= next_keep_alive {
            let sent = Instant::now();
            next_keep_alive = sent + options.keep_alive_every();
            match client.keep_alive(lease, timeout).await {
                Ok(ttl) if ttl > 0 => {
                    up(&leadership, true);
                    let ttl = Duration::from_secs(ttl.unsigned_abs()).min(options.ttl);
                    let mut state = leadership.state();
                    if state.lease.is_some_and(|(id, _)| id == lease) {
                        state.lease = Some((lease, sent + ttl.saturating_sub(options.margin())));
                    }
                }
                Ok(_) => {
                    // etcd no longer knows the lease: whatever was bound to
                    // it is gone, leadership included.
                    up(&leadership, true);
                    tracing::warn!("the etcd lease of this member expired");
                    if let Some(term) = leadership.term() {
                        leadership.step_down(term, &LostLeadership::Expired);
                    }
                    leadership.state().lease = None;
                    continue;
                }
                Err(e) => down(&leadership, &e),
            }
        }
        let term = leadership.term();
        let role = if term.is_some() { "leader" } else { "standby" };
        if info.has_changed().unwrap_or(false) {
            let current = info.borrow_and_update().clone();
            if let Err(e) = publish(&client, &keys, &options, lease, &current, role, timeout).await
            {
                tracing::debug!("cannot publish the member key: {e}");
            }
        }
        let held_off = leadership
            .state()
            .campaign_after
            .is_some_and(|t| Instant::now() < t);
        match term {
            None if held_off => {}
            None => match campaign(&client, &keys, &options, lease, timeout).await {
                Ok(Campaign::Won(revision)) => {
                    up(&leadership, true);
                    let term = Term { lease, revision };
                    let won = {
                        let mut state = leadership.state();
                        let held = state
                            .lease
                            .is_some_and(|(id, until)| id == lease && Instant::now() < until);
                        if held {
                            state.term = Some(term);
                        }
                        held
                    };
                    if won {
                        leadership.changes.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(member = %options.member, revision, "elected HA leader");
                        leadership.term_tx.send_replace(Some(term));
                        let current = info.borrow().clone();
                        let _ =
                            publish(&client, &keys, &options, lease, &current, "leader", timeout)
                                .await;
                        leader_seen = Some(options.member.clone());
                    }
                    continue;
                }
                Ok(Campaign::Held(name)) => {
                    up(&leadership, true);
                    if leader_seen.as_ref() != Some(&name) {
                        tracing::info!(leader = %name, "standby: the HA group is led by {name}");
                        leader_seen = Some(name);
                    }
                }
                Err(e) => down(&leadership, &e),
            },
            Some(_) if Instant::now() >= next_skew_check => {
                next_skew_check = Instant::now() + SKEW_CHECK_EVERY;
                let own = info.borrow().config_digest.clone();
                skew.check(&client, &keys, &options.member, own.as_deref(), timeout)
                    .await;
            }
            Some(_) => {}
        }
        let pause = match leadership.term() {
            None => options.campaign_every(),
            Some(_) => next_keep_alive.saturating_duration_since(Instant::now()),
        }
        .min(next_keep_alive.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            // The sender lives as long as the daemon; should it go, the
            // member key keeps what it said last.
            Ok(()) = info.changed() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
    // Leaving: give the lease back so a standby takes over at once.
    if let Some(term) = leadership.term() {
        leadership.step_down(term, &LostLeadership::NotLeader);
    }
    leadership.state().abandon();
    revoke_abandoned(&leadership, &client, timeout).await;
}

/// Revoke the leases given up; keep those etcd could not be asked about.
async fn revoke_abandoned(leadership: &Leadership, client: &Client, timeout: Duration) {
    let abandoned = std::mem::take(&mut leadership.state().abandoned);
    let mut left = Vec::new();
    for id in abandoned {
        if let Err(e) = client.revoke(id, timeout).await {
            tracing::debug!(lease = id, "cannot revoke an abandoned lease yet: {e}");
            left.push(id);
        }
    }
    if !left.is_empty() {
        let mut state = leadership.state();
        left.append(&mut state.abandoned);
        left.truncate(MAX_ABANDONED);
        state.abandoned = left;
    }
}

/// Mark etcd reachable with a quorum.
fn up(leadership: &Leadership, ok: bool) {
    leadership.etcd_up.store(ok, Ordering::Relaxed);
}

fn down(leadership: &Leadership, e: &EtcdError) {
    if leadership.etcd_up.swap(false, Ordering::Relaxed) {
        tracing::warn!("etcd quorum unreachable: {e}");
    } else {
        tracing::debug!("etcd still unreachable: {e}");
    }
}

/// `true` when `stop` came first.
async fn wait(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        () = tokio::time::sleep(pause) => false,
    }
}

enum Campaign {
    Won(i64),
    /// Someone else (named) holds the key.
    Held(String),
}

/// Take the leader key if nobody holds it.
async fn campaign(
    client: &Client,
    keys: &Keys,
    options: &Options,
    lease: i64,
    timeout: Duration,
) -> Result<Campaign, EtcdError> {
    let leader = keys.leader();
    let result = client
        .txn(
            &[Cmp::Created(&leader, 0)],
            &[Op::Put {
                key: leader.clone(),
                value: options.member.as_bytes().to_vec(),
                lease,
            }],
            &[Op::Get(leader.clone())],
            timeout,
        )
        .await?;
    if result.succeeded {
        return Ok(Campaign::Won(result.revision));
    }
    let Some(held) = result.kvs.first() else {
        // Gone between the compare and the read: try again next time.
        return Ok(Campaign::Held(String::new()));
    };
    // A campaign of ours whose answer was lost (a timeout, or a retry on
    // another endpoint) did take the key: it is bound to our own lease.
    if held.lease == lease {
        return Ok(Campaign::Won(held.create_revision));
    }
    Ok(Campaign::Held(
        String::from_utf8_lossy(&held.value).into_owned(),
    ))
}

async fn publish(
    client: &Client,
    keys: &Keys,
    options: &Options,
    lease: i64,
    info: &MemberInfo,
    role: &str,
    timeout: Duration,
) -> Result<(), EtcdError> {
    let value = MemberInfo {
        role: role.to_owned(),
        updated_at: Some(chrono::Utc::now()),
        ..info.clone()
    };
    let value = serde_json::to_vec(&value).unwrap_or_default();
    client
        .txn(
            &[],
            &[Op::Put {
                key: keys.member(&options.member),
                value,
                lease,
            }],
            &[],
            timeout,
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leading(until: Instant) -> (Arc<Leadership>, Term) {
        let leadership = Leadership::new(Options {
            member: "a".into(),
            ttl: Duration::from_secs(2),
        });
        let term = Term {
            lease: 7,
            revision: 42,
        };
        {
            let mut state = leadership.state();
            state.lease = Some((7, until));
            state.term = Some(term);
        }
        (leadership, term)
    }

    #[test]
    fn a_leader_may_send_only_before_its_deadline() {
        let (leadership, term) = leading(Instant::now() + Duration::from_secs(60));
        assert!(leadership.may_send(term).is_ok());
        // Another term's store may not.
        let old = Term {
            revision: 41,
            ..term
        };
        assert!(matches!(
            leadership.may_send(old),
            Err(LostLeadership::NotLeader)
        ));

        let (leadership, term) = leading(Instant::now());
        assert!(matches!(
            leadership.may_send(term),
            Err(LostLeadership::Expired)
        ));
        // It stepped down, abandoning the lease (to be revoked), and
        // counted the change.
        assert_eq!(leadership.term(), None);
        assert!(leadership.state().lease.is_none());
        assert_eq!(leadership.state().abandoned, [7]);
        assert_eq!(leadership.changes(), 1);
        assert!(matches!(
            leadership.may_send(term),
            Err(LostLeadership::NotLeader)
        ));
    }

    #[test]
    fn the_margin_and_periods_follow_the_ttl() {
        let o = |s| Options {
            member: "a".into(),
            ttl: Duration::from_secs(s),
        };
        assert_eq!(o(2).margin(), Duration::from_millis(500));
        assert_eq!(o(10).margin(), Duration::from_secs(2));
        assert!(o(2).call_timeout() <= o(2).margin());
        assert!(o(2).call_timeout() <= Duration::from_secs(2) / 3);
        assert_eq!(o(60).call_timeout(), Duration::from_secs(1));
        assert_eq!(o(2).campaign_every(), Duration::from_millis(100));
    }
}
