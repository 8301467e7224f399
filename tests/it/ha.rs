//! High availability on etcd (SPEC §7), against real etcd: one member or a
//! cluster of three (`support::etcd`), real daemons, real signals. Each
//! member talks to its own fake API, so who sent what is plain.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::fake_api::{FakeApi, Reply};
use crate::support::Workspace;
use crate::support::etcd::Etcd;

/// A member of the group under test.
fn member(ws: &Workspace, api: &FakeApi, etcd: &str, name: &str, extra: &[&str]) -> Daemon {
    let mut cmd = ws.command(&api.base());
    cmd.args(["run", "--config"])
        .arg(&ws.config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--debounce",
            "50ms",
            "--resync",
            "1h",
        ])
        .args(["--etcd", etcd, "--ha-group", "test", "--member", name])
        .args(extra)
        .env("RESETD_LOG_FORMAT", "json");
    Daemon::spawn(cmd)
}

/// Poll `check` until it holds; panics with `what` after `deadline`.
fn wait_until(deadline: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The shared status, as `resetd status --etcd --format json` prints it.
fn shared(ws: &Workspace, etcd: &str) -> serde_json::Value {
    let mut cmd = crate::support::resetd();
    cmd.args([
        "status",
        "--etcd",
        etcd,
        "--ha-group",
        "test",
        "--format",
        "json",
    ]);
    let (code, out, err) = ws.run_checked(&mut cmd);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn config(hashes: usize, batch: usize) -> String {
    let all: Vec<String> = (0..hashes).map(|i| format!("H{i:04}")).collect();
    format!(
        "settings:\n  batchSize: {batch}\n  maxRequestsPerSecond: 0\nresets:\n  - id: ha\n    hashes: [{}]\n",
        all.join(", ")
    )
}

#[test]
fn two_members_one_sends() {
    let Some(etcd) = Etcd::single("ha::two_members_one_sends") else {
        return;
    };
    let ws = Workspace::new(&config(40, 4));
    let (api_a, api_b) = (FakeApi::start(), FakeApi::start());
    for api in [&api_a, &api_b] {
        api.default_reply(Reply::Delay(
            Duration::from_millis(20),
            Box::new(Reply::Status(204)),
        ));
    }
    let a = member(&ws, &api_a, &etcd.endpoints(), "a", &["--ha-lease", "2s"]);
    let b = member(&ws, &api_b, &etcd.endpoints(), "b", &["--ha-lease", "2s"]);
    wait_until(Duration::from_secs(20), "the run succeeded", || {
        shared(&ws, &etcd.endpoints())["status"]["resets"]["ha"]["phase"] == "Succeeded"
    });
    let (sent_a, sent_b) = (api_a.deletes().len(), api_b.deletes().len());
    assert!(
        (sent_a == 10 && sent_b == 0) || (sent_a == 0 && sent_b == 10),
        "a sent {sent_a}, b sent {sent_b}"
    );
    let view = shared(&ws, &etcd.endpoints());
    let leader = view["leader"].as_str().unwrap().to_owned();
    assert_eq!(leader, if sent_a > 0 { "a" } else { "b" });
    let members: HashSet<&str> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(members, HashSet::from(["a", "b"]));
    // Both are ready; the standby serves the shared status too.
    for d in [&a, &b] {
        wait_until(Duration::from_secs(5), "ready", || {
            d.get("/readyz").0 == 200
        });
        wait_until(Duration::from_secs(5), "/status from etcd", || {
            let (_, body) = d.get("/status");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["resets"]["ha"]["phase"]
                == "Succeeded"
        });
        let (_, metrics) = d.get("/metrics");
        assert!(
            metrics.lines().any(|l| l == "resetd_ha_etcd_up 1"),
            "{metrics}"
        );
    }
    let (_, ma) = a.get("/metrics");
    let (_, mb) = b.get("/metrics");
    let leading = |m: &str| m.lines().any(|l| l == "resetd_ha_leader 1");
    assert!(
        leading(&ma) != leading(&mb),
        "exactly one leads:\n{ma}\n{mb}"
    );
}

/// Which batch (by index) a request sent, for a config of `config(n, batch)`.
fn batch_of(hashes: &[String], batch: usize) -> usize {
    hashes[0][1..].parse::<usize>().unwrap() / batch
}

/// Start two members, SIGKILL whichever leads in the middle of the run:
/// the other takes over within TTL + 1 s and finishes; nothing is lost and
/// at most the batch in flight is sent twice.
fn failover_after_sigkill(test: &str, lease: u64) {
    let Some(etcd) = Etcd::single(test) else {
        return;
    };
    const HASHES: usize = 200;
    let ws = Workspace::new(&config(HASHES, 2));
    let apis = [FakeApi::start(), FakeApi::start()];
    for api in &apis {
        api.default_reply(Reply::Delay(
            Duration::from_millis(20),
            Box::new(Reply::Status(204)),
        ));
    }
    let lease_flag = format!("{lease}s");
    let extra = ["--ha-lease", lease_flag.as_str()];
    let mut members = [
        Some(member(&ws, &apis[0], &etcd.endpoints(), "a", &extra)),
        Some(member(&ws, &apis[1], &etcd.endpoints(), "b", &extra)),
    ];
    // Wait for the leader's tenth request, then kill it.
    wait_until(Duration::from_secs(20), "ten requests", || {
        apis.iter().map(|a| a.deletes().len()).sum::<usize>() >= 10
    });
    let leader = usize::from(apis[0].deletes().is_empty());
    let killed_at = Instant::now();
    members[leader].as_ref().unwrap().signal("KILL");
    members[leader] = None;
    let before = apis[leader].deletes();
    let other = 1 - leader;
    let deadline = Instant::now() + Duration::from_secs(lease + 5);
    let took_over = loop {
        let found = apis[other]
            .requests()
            .iter()
            .find(|r| r.method == "DELETE" && r.received > killed_at)
            .map(|r| r.received);
        if let Some(at) = found {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "no DELETE from the standby after the kill; its log:\n{}",
            members[other].as_ref().unwrap().logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let failover = took_over - killed_at;
    println!("lease {lease}s: the standby sent {failover:?} after the leader's SIGKILL");
    assert!(
        failover <= Duration::from_secs(lease + 1),
        "failover took {failover:?} with a {lease}s lease"
    );
    wait_until(Duration::from_secs(30), "the run succeeded", || {
        shared(&ws, &etcd.endpoints())["status"]["resets"]["ha"]["phase"] == "Succeeded"
    });
    // Every hash confirmed; the new leader re-sent at most one batch of
    // those the old one sent.
    let after = apis[other].deletes();
    let sent_before: HashSet<usize> = before.iter().map(|h| batch_of(h, 2)).collect();
    let resent = after
        .iter()
        .filter(|h| sent_before.contains(&batch_of(h, 2)))
        .count();
    assert!(resent <= 1, "{resent} batches re-sent after one kill");
    let all: HashSet<&String> = before.iter().chain(&after).flatten().collect();
    assert_eq!(all.len(), HASHES);
    drop(members);
}

#[test]
fn a_killed_leader_is_replaced_within_the_lease_plus_a_second() {
    failover_after_sigkill("ha::failover_5s", 5);
}

#[test]
fn a_killed_leader_is_replaced_within_a_short_lease_plus_a_second() {
    failover_after_sigkill("ha::failover_2s", 2);
}
