//! Prometheus metrics, served as text on `/metrics`.
//!
//! Names follow SPEC §5; counters are registered without `_total`, which the
//! text encoder appends.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::notify::NotifyObserver;
use crate::reconcile::Observer;
use crate::status::{Outcome, Phase, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    /// HTTP status, or `timeout` / `connection` when there was none.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabel {
    receiver: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<CodeLabel, Counter>,
    duration: Histogram,
    hashes_reset: Counter,
    resets: Family<OutcomeLabel, Counter>,
    reloads: Family<ResultLabel, Counter>,
    last_reload_ok: Gauge,
    entries: Family<PhaseLabel, Gauge>,
    last_reconcile: Gauge,
    /// Every read of the config file: an idle daemon's stays flat between
    /// resyncs, which is how tests and alerts see a self-waking loop.
    config_reads: Counter,
    /// Resets due now that wait for something other than time: what an
    /// alert needs, since they end in no phase (`Failed` stays 0).
    blocked: Family<ReasonLabel, Gauge>,
    notifications: Family<DeliveryLabel, Counter>,
    /// Only members of an HA group (`--etcd`) export these: an alert that
    /// sums `resetd_ha_leader` must not count single instances.
    ha: Option<HaMetrics>,
}

struct HaMetrics {
    leader: Gauge,
    changes: Counter,
    etcd_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<CodeLabel, Counter>::default();
        registry.register(
            "resetd_api_requests",
            "IPRoyal API requests, by HTTP status",
            requests.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        registry.register(
            "resetd_api_request_duration_seconds",
            "Time from sending a DELETE to its answer",
            duration.clone(),
        );
        let hashes_reset = Counter::default();
        registry.register(
            "resetd_hashes_reset",
            "Hashes whose sessions the API confirmed reset",
            hashes_reset.clone(),
        );
        let resets = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "resetd_resets",
            "Finished entry runs, by outcome",
            resets.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "resetd_config_reloads",
            "Config reloads, by result",
            reloads.clone(),
        );
        let last_reload_ok = Gauge::default();
        registry.register(
            "resetd_config_last_reload_successful",
            "1 if the last config reload succeeded, 0 if the last good config is still in force",
            last_reload_ok.clone(),
        );
        let entries = Family::<PhaseLabel, Gauge>::default();
        registry.register(
            "resetd_entries",
            "Entries in the status file, by phase",
            entries.clone(),
        );
        let last_reconcile = Gauge::default();
        registry.register(
            "resetd_last_reconcile_timestamp_seconds",
            "Unix time of the last reconcile pass",
            last_reconcile.clone(),
        );
        let config_reads = Counter::default();
        registry.register(
            "resetd_config_reads",
            "Times the daemon read the config file (change checks and reloads)",
            config_reads.clone(),
        );
        let blocked = Family::<ReasonLabel, Gauge>::default();
        registry.register(
            "resetd_resets_blocked",
            "Resets due now that cannot run, by reason (no_token: no API token to send them with)",
            blocked.clone(),
        );
        let notifications = Family::<DeliveryLabel, Counter>::default();
        registry.register(
            "resetd_notifications",
            "Notification deliveries, by receiver and result (ok; failed: refused or attempts \
             used up; dropped: the receiver's queue was full)",
            notifications.clone(),
        );
        // Present from the start, so an alert on it never sees "no data".
        blocked.get_or_create(&no_token()).set(0);
        Metrics {
            ha: None,
            notifications,
            blocked,
            config_reads,
            registry,
            requests,
            duration,
            hashes_reset,
            resets,
            reloads,
            last_reload_ok,
            entries,
            last_reconcile,
        }
    }

    /// Metrics of a member of an HA group: the single instance's and
    /// `resetd_ha_*`.
    pub fn with_ha() -> Self {
        let mut metrics = Self::new();
        let ha = HaMetrics {
            leader: Gauge::default(),
            changes: Counter::default(),
            etcd_up: Gauge::default(),
        };
        metrics.registry.register(
            "resetd_ha_leader",
            "Whether this member leads its HA group (the one member that sends): 1 or 0",
            ha.leader.clone(),
        );
        metrics.registry.register(
            "resetd_ha_leader_changes",
            "Times this member became or stopped being the leader",
            ha.changes.clone(),
        );
        metrics.registry.register(
            "resetd_ha_etcd_up",
            "1 while this member's last etcd call that needs a quorum succeeded",
            ha.etcd_up.clone(),
        );
        metrics.ha = Some(ha);
        metrics
    }

    /// The HA state now: leading or not, etcd quorum reachable or not, and
    /// the leader changes counted so far.
    pub fn ha(&self, leader: bool, etcd_up: bool, changes: u64) {
        if let Some(ha) = &self.ha {
            ha.leader.set(i64::from(leader));
            ha.etcd_up.set(i64::from(etcd_up));
            let seen = ha.changes.get();
            if changes > seen {
                ha.changes.inc_by(changes - seen);
            }
        }
    }

    /// `due` resets wait for a token (0: none wait).
    pub fn blocked_without_token(&self, due: usize) {
        self.blocked
            .get_or_create(&no_token())
            .set(i64::try_from(due).unwrap_or(i64::MAX));
    }

    pub fn config_read(&self) {
        self.config_reads.inc();
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
        self.last_reload_ok.set(i64::from(ok));
    }

    /// Refresh the per-phase gauges from the status.
    pub fn status(&self, status: &Status) {
        for phase in [
            Phase::Pending,
            Phase::Scheduled,
            Phase::Running,
            Phase::Succeeded,
            Phase::Failed,
            Phase::DryRun,
            Phase::Expired,
            Phase::Suspended,
        ] {
            let count = status
                .resets
                .values()
                .filter(|s| s.phase == phase && !s.orphaned)
                .count();
            self.entries
                .get_or_create(&PhaseLabel {
                    phase: format!("{phase:?}"),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// A reconcile pass finished (not set at start-up, so a daemon stuck in
    /// its first pass shows 0 to a staleness alert).
    pub fn reconciled(&self) {
        self.last_reconcile.set(chrono::Utc::now().timestamp());
    }

    /// The OpenMetrics text exposition (`serve` negotiates it, or renders it
    /// as Prometheus text 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn no_token() -> ReasonLabel {
    ReasonLabel {
        reason: "no_token".into(),
    }
}

impl Observer for Metrics {
    fn request(&self, code: Option<u16>, elapsed: Duration, timed_out: bool) {
        let code = match code {
            Some(c) => c.to_string(),
            None if timed_out => "timeout".into(),
            None => "connection".into(),
        };
        self.requests.get_or_create(&CodeLabel { code }).inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    fn hashes_confirmed(&self, count: usize) {
        self.hashes_reset
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    fn run_recorded(&self, ended: &crate::reconcile::RunEnded<'_>) {
        // Expiries are not resets (`resetd_entries{phase="Expired"}` shows them).
        if ended.record.outcome == Outcome::Expired {
            return;
        }
        let outcome = format!("{:?}", ended.record.outcome);
        self.resets.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

impl NotifyObserver for Metrics {
    fn delivered(&self, receiver: &str, result: &str) {
        self.notifications
            .get_or_create(&DeliveryLabel {
                receiver: receiver.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }
}
