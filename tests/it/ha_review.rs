//! Adversarial HA tests (review of ha-core): real etcd, real daemons, and a
//! TCP proxy in front of etcd that forwards every byte but holds etcd's
//! answer to chosen requests (the request is applied; its answer comes
//! late), which is what a slow disk, a GC pause or a congested link does.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::fake_api::FakeApi;
use crate::ha::{member, shared_phase};
use crate::support::Workspace;
use crate::support::etcd::Etcd;

type Pick = dyn Fn(&[u8]) -> bool + Send + Sync;

/// What a proxy does to one connection's bytes: each chunk of a request on
/// its way to etcd (`Forward::Drop` closes the connection unsent), and
/// before and after each chunk of etcd's answer is passed back.
struct Taps {
    request: OnRequest,
    before_answer: OnAnswer,
    after_answer: OnAnswer,
}

type OnRequest = Box<dyn FnMut(&[u8]) -> Forward + Send>;
type OnAnswer = Box<dyn FnMut() + Send>;

enum Forward {
    Pass,
    Drop,
}

impl Taps {
    /// Every byte passed on as it comes.
    fn none() -> Taps {
        Taps {
            request: Box::new(|_| Forward::Pass),
            before_answer: Box::new(|| {}),
            after_answer: Box::new(|| {}),
        }
    }
}

/// Splice `client` to a new connection to `upstream` through `taps`, one
/// thread each way.
fn bridge(client: TcpStream, upstream: SocketAddr, taps: Taps) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_in, mut c_out) = (server, client);
    let Taps {
        mut request,
        mut before_answer,
        mut after_answer,
    } = taps;
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let n = match c_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Forward::Drop = request(&buf[..n]) {
                let _ = s_out.shutdown(std::net::Shutdown::Both);
                let _ = c_in.shutdown(std::net::Shutdown::Both);
                return;
            }
            if s_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_out.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match s_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            before_answer();
            if c_out.write_all(&buf[..n]).is_err() {
                break;
            }
            after_answer();
        }
        let _ = c_out.shutdown(std::net::Shutdown::Write);
    });
}

/// Forwards to `upstream`; etcd's answer to the requests `pick` selects
/// (the `nth`.. `nth + count - 1`th of them, counted from 1) is held `hold`.
pub struct SlowProxy {
    addr: SocketAddr,
    /// How many selected requests were seen so far.
    pub seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    pub fn start(
        upstream: SocketAddr,
        pick: Box<Pick>,
        nth: usize,
        count: usize,
        hold: Duration,
    ) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pick: Arc<Pick> = Arc::from(pick);
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                // Set by a selected request, taken by its answer.
                let hold_next = Arc::new(Mutex::new(None::<Duration>));
                let (pick, seen, flag) = (
                    Arc::clone(&pick),
                    Arc::clone(&seen2),
                    Arc::clone(&hold_next),
                );
                let taps = Taps {
                    request: Box::new(move |chunk| {
                        if pick(chunk) {
                            let k = seen.fetch_add(1, Ordering::SeqCst) + 1;
                            if k >= nth && k < nth + count {
                                *flag.lock().unwrap() = Some(hold);
                            }
                        }
                        Forward::Pass
                    }),
                    before_answer: Box::new(move || {
                        if let Some(hold) = hold_next.lock().unwrap().take() {
                            std::thread::sleep(hold);
                        }
                    }),
                    after_answer: Box::new(|| {}),
                };
                bridge(client, upstream, taps);
            }
        });
        SlowProxy { addr, seen, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A campaign: `txn { CREATE(leader) == 0 } ...`.
fn is_campaign(body: &[u8]) -> bool {
    contains(body, b"/v3/kv/txn") && contains(body, b"\"create_revision\":\"0\"")
}

/// A fenced status write: a txn comparing the leader key's create revision
/// with a term's (non-zero).
fn is_fenced_write(body: &[u8]) -> bool {
    contains(body, b"/v3/kv/txn")
        && contains(body, b"\"target\":\"CREATE\"")
        && !contains(body, b"\"create_revision\":\"0\"")
}

/// The base64 of a key's first 24 bytes (a whole number of base64 groups,
/// so it appears as is in the encoded key).
fn key_start(prefix24: &str) -> Vec<u8> {
    use base64::Engine as _;
    assert_eq!(prefix24.len(), 24);
    base64::engine::general_purpose::STANDARD
        .encode(prefix24)
        .into_bytes()
}

/// A fenced write that puts (or deletes) a run-list chunk of group `test`.
fn writes_chunks(body: &[u8]) -> bool {
    is_fenced_write(body) && contains(body, &key_start("/resetd/test/status/runs"))
}

/// A fenced write of chunks only (no entry in it).
fn writes_only_chunks(body: &[u8]) -> bool {
    writes_chunks(body) && !contains(body, &key_start("/resetd/test/status/entr"))
}

fn upstream(etcd: &Etcd) -> SocketAddr {
    etcd.endpoint(0)
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

fn wait_until(deadline: Duration, what: &str, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while !check() {
        if Instant::now() >= end {
            eprintln!("not within {deadline:?}: {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn etcdctl(etcd: &Etcd, args: &[&str]) -> String {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &etcd.endpoints()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A campaign whose txn etcd applied but answered late (after the call's
/// timeout): the member's own lease now holds the leader key, the member
/// believes it lost, keeps that lease alive, and from then on sees the key
/// "held by" itself. Nobody ever leads; nothing is ever sent.
#[test]
fn a_campaign_answered_late_still_elects_someone() {
    let Some(etcd) = Etcd::single("ha_review::campaign_answered_late") else {
        return;
    };
    let ws = Workspace::new(
        "settings:\n  maxRequestsPerSecond: 0\nresets:\n  - id: one\n    hashes: [A1]\n",
    );
    let (api_a, api_b) = (FakeApi::start(), FakeApi::start());
    // Member a's first campaign is applied by etcd, answered 1.5 s late.
    let proxy = SlowProxy::start(
        upstream(&etcd),
        Box::new(is_campaign),
        1,
        1,
        Duration::from_millis(1500),
    );
    let a = member(&ws, &api_a, &proxy.url(), "a", &["--ha-lease", "2s"]);
    assert!(wait_until(Duration::from_secs(10), "a campaigned", || {
        proxy.seen.load(Ordering::SeqCst) >= 1
    }));
    let b = member(&ws, &api_b, &etcd.endpoints(), "b", &["--ha-lease", "2s"]);
    let sent = wait_until(Duration::from_secs(12), "some member sends", || {
        !api_a.deletes().is_empty() || !api_b.deletes().is_empty()
    });
    let leader = etcdctl(&etcd, &["get", "/resetd/test/leader", "--print-value-only"]);
    assert!(
        sent,
        "no member sent within 12 s (6 lease TTLs); the leader key names {leader:?}; a's log:\n{}\n\nb's log:\n{}",
        a.logs()
            .iter()
            .filter(|l| l.contains("leader") || l.contains("HA"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        b.logs()
            .iter()
            .filter(|l| l.contains("leader") || l.contains("HA"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// The import of a status file into an empty group is several
/// transactions (128 ops each). One answered late makes the leader step
/// down; its next term sees a group that is no longer empty (part of the
/// import) and imports nothing: the entries not yet written are new again
/// and their resets are sent a second time.
#[test]
fn an_interrupted_import_is_not_left_half_done() {
    let Some(etcd) = Etcd::single("ha_review::interrupted_import") else {
        return;
    };
    const N: usize = 300;
    let mut body = String::from("settings:\n  maxRequestsPerSecond: 0\nresets:\n");
    for i in 0..N {
        body.push_str(&format!("  - id: e{i:03}\n    hashes: [H{i:03}]\n"));
    }
    let ws = Workspace::new(&body);
    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(api.deletes().len(), N);
    // The second fenced write (the second 128-op part of the import) is
    // applied, but answered late.
    let proxy = SlowProxy::start(
        upstream(&etcd),
        Box::new(is_fenced_write),
        2,
        1,
        Duration::from_millis(1500),
    );
    let status = ws.status.to_str().unwrap().to_owned();
    let leader = member(
        &ws,
        &api,
        &proxy.url(),
        "a",
        &["--ha-lease", "2s", "--status", &status],
    );
    leader.wait_for_log("leading the HA group");
    // Give the leader time for a pass.
    let resent = wait_until(Duration::from_secs(8), "a re-sent reset", || {
        api.deletes().len() > N
    });
    let entries = etcdctl(
        &etcd,
        &[
            "get",
            "/resetd/test/status/entries/",
            "--prefix",
            "--keys-only",
        ],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .count();
    assert!(
        !resent,
        "the group's leader re-sent (at least) {} reset(s) that the imported file said had run ({} of {N} entries in etcd); log:\n{}",
        api.deletes().len() - N,
        entries,
        leader
            .logs()
            .iter()
            .filter(|l| l.contains("import") || l.contains("lead") || l.contains("step"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Leaving HA: `status --etcd --export FILE` writes `journalSeq: 0`. A
/// status file's journal left beside FILE (the single instance that was
/// SIGKILLed before the move to HA: the import read it, nothing removed it)
/// holds records with higher sequence numbers, so the single instance that
/// takes the export back replays those stale records over it: the entry is
/// in flight again at an old batch and its resets are sent again.
#[test]
fn an_export_over_the_old_status_file_is_not_undone_by_its_journal() {
    let Some(etcd) = Etcd::single("ha_review::export_and_stale_journal") else {
        return;
    };
    let endpoints = etcd.endpoints();
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: one\n    hashes: [A1, A2, A3, A4]\n",
    );
    let api = FakeApi::start();
    api.script([
        crate::fake_api::Reply::Status(204),
        crate::fake_api::Reply::Status(204),
        crate::fake_api::Reply::Hold,
    ]);
    // A single instance killed while its third batch is in flight.
    let mut cmd = ws.command(&api.base());
    cmd.args(["run", "--once", "--config"]).arg(&ws.config);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    api.wait_until(Duration::from_secs(20), "the third request", |r| {
        r.len() >= 3
    });
    child.kill().unwrap();
    child.wait().unwrap();
    api.release_held();
    let journal = ws.status.with_file_name("resets.status.yaml.journal");
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "no journal left at {}",
        journal.display()
    );

    // Into HA (the import reads the file and its journal), run to the end.
    let status = ws.status.to_str().unwrap().to_owned();
    let leader = member(&ws, &api, &endpoints, "a", &["--status", &status]);
    leader.wait_for_log("imported it from the status file");
    assert!(wait_until(
        Duration::from_secs(20),
        "the run succeeded",
        || shared_phase(&endpoints, "one").as_deref() == Some("Succeeded")
    ));
    drop(leader);
    let sent_in_ha = api.deletes().len();

    // Out of HA, back to the file the single instance used.
    let mut cmd = crate::support::resetd();
    cmd.args([
        "status",
        "--etcd",
        &endpoints,
        "--ha-group",
        "test",
        "--export",
    ])
    .arg(&ws.status);
    let (code, _, err) = crate::support::run(&mut cmd);
    if code != 0 {
        // Refusing (and saying why) is a fix too.
        assert!(err.contains("journal"), "{err}");
        return;
    }
    let back = resetd::store::read(&ws.status).unwrap();
    let phase = serde_json::to_value(&back.resets["one"]).unwrap()["phase"].clone();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        phase == "Succeeded" && api.deletes().len() == sent_in_ha,
        "the exported status reads back as {phase} and the single instance sent {} request(s) again",
        api.deletes().len() - sent_in_ha
    );
}

/// An "etcd" that answers every POST with `body` (HTTP/1.1, keep-alive).
fn fake_etcd(body: Arc<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let body = Arc::clone(&body);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    // One request: head, then Content-Length bytes.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    while buf.len() < head_end + len {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A hostile (or broken) etcd answers every range with 100 keys of 400 KB
/// and `more: true`. Each answer is under the 64 MiB bound, but the pages
/// are kept until 10,000 (members) or 2,000,000 (status) keys: gigabytes.
/// What one `resetd status --etcd` holds must stay bounded.
#[test]
fn a_hostile_etcd_cannot_make_a_status_read_hold_gigabytes() {
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 400 * 1024]);
    let mut kvs = Vec::new();
    for i in 0..100 {
        let key = base64::engine::general_purpose::STANDARD
            .encode(format!("/resetd/test/members/m{i:03}"));
        kvs.push(format!(
            "{{\"key\":\"{key}\",\"value\":\"{value}\",\"create_revision\":\"2\",\"mod_revision\":\"2\"}}"
        ));
    }
    let body = format!(
        "{{\"header\":{{\"revision\":\"5\"}},\"kvs\":[{}],\"more\":true,\"count\":\"100000000\"}}",
        kvs.join(",")
    );
    let addr = fake_etcd(Arc::new(body.into_bytes()));
    let mut cmd = crate::support::resetd();
    cmd.args([
        "status",
        "--etcd",
        &format!("http://{addr}"),
        "--ha-group",
        "test",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let rss_mib = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    const LIMIT_MIB: u64 = 768;
    let end = Instant::now() + Duration::from_secs(120);
    let mut peak = 0;
    let exited = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        peak = peak.max(rss_mib());
        if peak > LIMIT_MIB || Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        exited,
        "`resetd status --etcd` against an etcd whose every page says `more` reached {peak} MiB \
         of RSS (killed at {LIMIT_MIB} MiB); each answer is bounded, their sum is not"
    );
}

/// Forwards to `upstream`; once the answer to the first request `pick`
/// selects has been passed on, every later answer is held `hold` (the
/// requests still reach etcd: a link that lost its return path).
fn cut_after(
    upstream: SocketAddr,
    pick: fn(&[u8]) -> bool,
    nth: usize,
    hold: Duration,
) -> SocketAddr {
    let picked = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            // Set by the picked request, turned into `armed` once its
            // answer has been passed on.
            let arm_next = Arc::new(AtomicBool::new(false));
            let (flag, armed1, armed2, armed3) = (
                Arc::clone(&arm_next),
                Arc::clone(&armed),
                Arc::clone(&armed),
                Arc::clone(&armed),
            );
            let picked = Arc::clone(&picked);
            let taps = Taps {
                request: Box::new(move |chunk| {
                    if !armed1.load(Ordering::SeqCst)
                        && pick(chunk)
                        && picked.fetch_add(1, Ordering::SeqCst) + 1 == nth
                    {
                        flag.store(true, Ordering::SeqCst);
                    }
                    Forward::Pass
                }),
                before_answer: Box::new(move || {
                    if armed2.load(Ordering::SeqCst) {
                        std::thread::sleep(hold);
                    }
                }),
                after_answer: Box::new(move || {
                    if arm_next.swap(false, Ordering::SeqCst) {
                        armed3.store(true, Ordering::SeqCst);
                    }
                }),
            };
            bridge(client, upstream, taps);
        }
    });
    addr
}

/// A listener whose accept queue is full until `release` is set, so a
/// connect to it waits for SYN retransmits (1 s, 3 s, 7 s); then it
/// forwards each connection to `upstream`.
fn slow_accept(upstream: SocketAddr, release: Arc<AtomicBool>) -> SocketAddr {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(1).unwrap().into_std().unwrap()
    });
    listener.set_nonblocking(false).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue (backlog 1 holds 2 connections).
    let fillers: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::spawn(move || {
        while !release.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(fillers);
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            if n < 2 {
                continue; // a filler
            }
            bridge(client, upstream, Taps::none());
        }
    });
    addr
}

/// `may_send` is asked before `delete_sessions`, but the DELETE's bytes
/// leave only once its connection is up (DNS, TCP connect with a 10 s
/// timeout, TLS): a lost SYN alone costs 1 s, twice the margin of a 2 s
/// lease. Here the leader's first DELETE waits for its connection while
/// its keep-alives go unanswered; it steps down, the standby leads and
/// sends, and then the old leader's DELETE arrives: two senders at once.
#[test]
fn a_delete_whose_connection_is_slow_does_not_overlap_the_next_leader() {
    let Some(etcd) = Etcd::single("ha_review::slow_connect") else {
        return;
    };
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: one\n    hashes: [A1, A2, A3, A4, A5, A6]\n",
    );
    let (api_a, api_b) = (FakeApi::start(), FakeApi::start());
    let release = Arc::new(AtomicBool::new(false));
    let a_api = slow_accept(api_a.addr(), Arc::clone(&release));
    let a_etcd = cut_after(
        upstream(&etcd),
        is_fenced_write,
        // The second fenced write: the first batch in flight.
        2,
        Duration::from_secs(60),
    );
    let mut cmd = ws.daemon_command(&format!("http://{a_api}"));
    cmd.args([
        "--etcd",
        &format!("http://{a_etcd}"),
        "--ha-group",
        "test",
        "--member",
        "a",
    ])
    .args(["--ha-lease", "2s"])
    .env("RESETD_LOG_FORMAT", "json");
    let a = Daemon::spawn(cmd);
    a.wait_for_log("elected HA leader");
    let b = member(&ws, &api_b, &etcd.endpoints(), "b", &["--ha-lease", "2s"]);
    let first_b = api_b.wait_until(Duration::from_secs(20), "b's first DELETE", |r| {
        r.iter().any(|r| r.method == "DELETE")
    });
    let b_started = first_b
        .iter()
        .find(|r| r.method == "DELETE")
        .unwrap()
        .received;
    release.store(true, Ordering::SeqCst);
    // The old leader's DELETE, if it still comes, comes within its 10 s connect timeout.
    let late = wait_until(Duration::from_secs(12), "a's DELETE arrives", || {
        api_a.requests().iter().any(|r| r.method == "DELETE")
    });
    let a_at = api_a
        .requests()
        .iter()
        .find(|r| r.method == "DELETE")
        .map(|r| r.received);
    assert!(
        !late || a_at.is_some_and(|t| t < b_started),
        "the old leader's DELETE reached the API {:?} after the new leader's first DELETE \
         (a stepped down before: {})",
        a_at.unwrap().duration_since(b_started),
        a.logs().iter().any(|l| l.contains("stepped down"))
    );
    eprintln!(
        "late={late} a's log:\n{}",
        a.logs()
            .iter()
            .filter(|l| !l.contains("DEBUG"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(b);
}

/// Failover within TTL + 1 s must not depend on the size of the shared
/// status: a standby re-reads the whole status every second before it
/// looks at the term again, and the new leader reads it once more. With
/// 20,000 entries in the status, measure the standby's first DELETE after
/// the leader's SIGKILL.
#[test]
#[ignore = "known limit (README, High availability on etcd): a new leader reads the whole status first, so 20,000 entries take longer than TTL + 1 s"]
fn failover_with_a_large_status_stays_within_the_lease_plus_a_second() {
    let Some(etcd) = Etcd::single("ha_review::large_status_failover") else {
        return;
    };
    const ORPHANS: usize = 20_000;
    let ws = Workspace::new(
        "settings:\n  maxRequestsPerSecond: 0\nresets:\n  - id: seed\n    hashes: [S1]\n",
    );
    let seed_api = FakeApi::start();
    let (code, _, err) = ws.run_once(&seed_api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    let mut status = ws.status();
    let seed = status.resets["seed"].clone();
    for i in 0..ORPHANS {
        status.resets.insert(format!("o{i:05}"), seed.clone());
    }
    resetd::store::write_status(&ws.status, &status).unwrap();
    let all: Vec<String> = (0..400).map(|i| format!("H{i:04}")).collect();
    ws.write_config(&format!(
        "settings:\n  batchSize: 2\n  maxRequestsPerSecond: 0\nresets:\n  - id: seed\n    hashes: [S1]\n  - id: ha\n    hashes: [{}]\n",
        all.join(", ")
    ));
    let apis = [FakeApi::start(), FakeApi::start()];
    for api in &apis {
        api.default_reply(crate::fake_api::Reply::Delay(
            Duration::from_millis(20),
            Box::new(crate::fake_api::Reply::Status(204)),
        ));
    }
    let status_flag = ws.status.to_str().unwrap().to_owned();
    let extra = ["--ha-lease", "2s", "--status", status_flag.as_str()];
    let mut members = [
        Some(member(&ws, &apis[0], &etcd.endpoints(), "a", &extra)),
        None,
    ];
    members[0]
        .as_ref()
        .unwrap()
        .wait_for_log("leading the HA group");
    members[1] = Some(member(&ws, &apis[1], &etcd.endpoints(), "b", &extra));
    let sent = |a: &FakeApi| a.deletes().len();
    assert!(wait_until(Duration::from_secs(60), "ten requests", || {
        sent(&apis[0]) + sent(&apis[1]) >= 10
    }));
    // b has been a standby for a while (several refreshes).
    std::thread::sleep(Duration::from_secs(3));
    let leader = usize::from(sent(&apis[0]) == 0);
    let other = 1 - leader;
    let killed_at = Instant::now();
    members[leader].as_ref().unwrap().signal("KILL");
    members[leader] = None;
    let took_over = wait_until(Duration::from_secs(30), "the standby sends", || {
        apis[other]
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.received > killed_at)
    });
    assert!(took_over);
    let at = apis[other]
        .requests()
        .iter()
        .find(|r| r.method == "DELETE" && r.received > killed_at)
        .unwrap()
        .received;
    let failover = at - killed_at;
    println!("{ORPHANS} entries, lease 2s: failover {failover:?}");
    for l in members[other].as_ref().unwrap().logs() {
        if l.contains("elected")
            || l.contains("leading")
            || l.contains("new entry")
            || l.contains("resum")
            || l.contains("step")
            || l.contains("batch confirmed\",\"entry\":\"ha\"")
        {
            println!("{}", &l[..l.len().min(220)]);
        }
    }
    assert!(
        failover <= Duration::from_secs(3),
        "failover took {failover:?} with a 2 s lease and {ORPHANS} entries in the status"
    );
}

/// A failed run keeps the hashes it confirmed in the entry's status
/// (`confirmed.hashes`, so its retry skips them). Only the *run's* hash list
/// is chunked; an entry of 70,000 hashes whose second batch fails keeps
/// 60,000 in `confirmed`: ~1.7 MB of JSON, over etcd's 1.5 MiB request
/// limit. The leader cannot record the run's end, steps down, is elected
/// again, re-sends the last in-flight batch, fails to record again...
#[test]
fn a_failed_run_of_a_large_entry_can_be_recorded() {
    let Some(etcd) = Etcd::single("ha_review::large_confirmed") else {
        return;
    };
    const N: usize = 70_000;
    let hashes: Vec<String> = (0..N)
        .map(|i| format!("01H7YCG0R9GYY1YCPS2S4{i:05}"))
        .collect();
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 10000\n  maxRequestsPerSecond: 0\nresets:\n  - id: big\n    hashes: [{}]\n",
        hashes.join(", ")
    ));
    let api = FakeApi::start();
    api.script([
        crate::fake_api::Reply::Status(204),
        crate::fake_api::Reply::Status(400),
    ]);
    let leader = member(&ws, &api, &etcd.endpoints(), "a", &["--ha-lease", "2s"]);
    // 7 batches; the second fails for good (400): the run ends Failed.
    api.wait_until(Duration::from_secs(60), "seven DELETEs", |r| {
        r.iter().filter(|r| r.method == "DELETE").count() >= 7
    });
    // Read as resetd reads it (a large entry's value is in chunks).
    let endpoints = etcd.endpoints();
    let recorded = wait_until(Duration::from_secs(15), "the run's end in etcd", || {
        shared_phase(&endpoints, "big").as_deref() == Some("Failed")
    });
    assert!(
        recorded && api.deletes().len() == 7,
        "the run's end was {}recorded in etcd; {} DELETEs for 7 batches; log:\n{}",
        if recorded { "" } else { "never " },
        api.deletes().len(),
        leader
            .logs()
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("elected"))
            .map(|l| l.chars().take(300).collect::<String>())
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The acceptance case "SIGSTOP the leader 3×TTL, SIGCONT: it starts no
/// request", with the stop landing while the leader's DELETE waits for its
/// connection (after `may_send`, before a byte left): the kernel completes
/// the handshake while the process is stopped, and on SIGCONT the request
/// goes out, 3×TTL after the lease could have expired and while the new
/// leader sends.
#[test]
#[ignore = "known limit (README, High availability on etcd): a leader stopped between its last check and its request leaving sends it on waking"]
fn a_leader_stopped_while_connecting_sends_nothing_when_it_wakes() {
    let Some(etcd) = Etcd::single("ha_review::stopped_while_connecting") else {
        return;
    };
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: one\n    hashes: [A1, A2, A3, A4, A5, A6]\n",
    );
    let (api_a, api_b) = (FakeApi::start(), FakeApi::start());
    let release = Arc::new(AtomicBool::new(false));
    let a_api = slow_accept(api_a.addr(), Arc::clone(&release));
    let mut cmd = ws.daemon_command(&format!("http://{a_api}"));
    cmd.args([
        "--etcd",
        &etcd.endpoints(),
        "--ha-group",
        "test",
        "--member",
        "a",
    ])
    .args(["--ha-lease", "2s"])
    .env("RESETD_LOG_FORMAT", "json");
    let a = Daemon::spawn(cmd);
    a.wait_for_log("run: new entry");
    let b = member(&ws, &api_b, &etcd.endpoints(), "b", &["--ha-lease", "2s"]);
    // a's first DELETE is past may_send and waits for its connection.
    std::thread::sleep(Duration::from_millis(300));
    a.signal("STOP");
    let stopped_at = Instant::now();
    api_b.wait_until(Duration::from_secs(10), "b leads and sends", |r| {
        r.iter().any(|r| r.method == "DELETE")
    });
    // The accept queue frees: a's next SYN retransmit completes in the kernel.
    release.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(6).saturating_sub(stopped_at.elapsed()));
    let woke_at = Instant::now();
    a.signal("CONT");
    let late = wait_until(
        Duration::from_secs(3),
        "a DELETE from the woken leader",
        || {
            api_a
                .requests()
                .iter()
                .any(|r| r.method == "DELETE" && r.received > woke_at)
        },
    );
    assert!(
        !late,
        "the old leader sent a DELETE after SIGCONT, {:?} after it was stopped (lease 2s), \
         while b leads",
        woke_at - stopped_at
    );
    drop(b);
}

/// A run's hash list is written in chunk transactions before the entry
/// that points at it. A term that ends between the two (here: one chunk
/// transaction answered late) leaves chunks nobody points at; the next
/// term starts the run again under a new `startedAt` and never deletes
/// them. They are read by every status load (each standby, every second)
/// and accumulate with each such failover.
#[test]
fn chunks_of_a_run_list_left_by_a_lost_term_are_removed() {
    let Some(etcd) = Etcd::single("ha_review::orphan_chunks") else {
        return;
    };
    const N: usize = 200_000;
    let hashes: Vec<String> = (0..N)
        .map(|i| format!("01H7YCG0R9GYY1YCPS2S{i:06}"))
        .collect();
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 10000\n  maxRequestsPerSecond: 0\nresets:\n  - id: big\n    hashes: [{}]\n",
        hashes.join(", ")
    ));
    let api = FakeApi::start();
    // The first transaction of chunks alone is applied, but answered late.
    let proxy = SlowProxy::start(
        upstream(&etcd),
        Box::new(writes_only_chunks),
        1,
        1,
        Duration::from_millis(1500),
    );
    let leader = member(&ws, &api, &proxy.url(), "a", &["--ha-lease", "2s"]);
    assert!(wait_until(
        Duration::from_secs(90),
        "the run succeeded",
        || {
            etcdctl(
                &etcd,
                &[
                    "get",
                    "/resetd/test/status/entries/big",
                    "--print-value-only",
                ],
            )
            .contains("\"phase\":\"Succeeded\"")
        }
    ));
    let left: Vec<String> = etcdctl(
        &etcd,
        &[
            "get",
            "/resetd/test/status/runs/",
            "--prefix",
            "--keys-only",
        ],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_owned)
    .collect();
    assert!(
        left.is_empty(),
        "{} run-list chunk key(s) left after the run succeeded (stepped down {} time(s)): {:?}",
        left.len(),
        leader
            .logs()
            .iter()
            .filter(|l| l.contains("stepped down"))
            .count(),
        left.iter().take(3).collect::<Vec<_>>()
    );
}

/// Forwards to `upstream`, except the `nth` request `pick` selects: that
/// one never reaches etcd (its connection is closed), as when the leader
/// dies or its link breaks between two transactions.
fn drop_nth(upstream: SocketAddr, pick: fn(&[u8]) -> bool, nth: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let picked = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let picked = Arc::clone(&picked);
            let mut taps = Taps::none();
            taps.request = Box::new(move |chunk| {
                if pick(chunk) && picked.fetch_add(1, Ordering::SeqCst) + 1 == nth {
                    Forward::Drop
                } else {
                    Forward::Pass
                }
            });
            bridge(client, upstream, taps);
        }
    });
    addr
}

/// `save` splits its writes into transactions of 128 operations in key
/// order: `status/entries/*`, then `status/meta`, then `status/runs/*`. An
/// entry whose (one-chunk) run list is written in the same save can land
/// in an earlier transaction than its chunk. If the later one never
/// happens (here: the import of 131 entries, one with an unfinished run,
/// loses its second transaction), etcd holds an entry pointing at a chunk
/// that does not exist: every later load is `Corrupt`, every new leader
/// steps down at once, and the group never runs again.
#[test]
fn an_entry_is_never_written_before_its_run_list() {
    let Some(etcd) = Etcd::single("ha_review::entry_before_chunk") else {
        return;
    };
    // A Succeeded entry's status, to clone.
    let seed_ws = Workspace::new(
        "settings:\n  maxRequestsPerSecond: 0\nresets:\n  - id: seed\n    hashes: [S1]\n",
    );
    let seed_api = FakeApi::start();
    assert_eq!(seed_ws.run_once(&seed_api.base(), &[]).0, 0);
    let seed = seed_ws.status().resets["seed"].clone();
    // An unfinished run: a single instance killed at its second batch.
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: a-run\n    hashes: [A1, A2, A3, A4]\n",
    );
    let api = FakeApi::start();
    api.script([
        crate::fake_api::Reply::Status(204),
        crate::fake_api::Reply::Hold,
    ]);
    let mut cmd = ws.command(&api.base());
    cmd.args(["run", "--once", "--config"]).arg(&ws.config);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    api.wait_until(Duration::from_secs(20), "the second request", |r| {
        r.len() >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    api.release_held();
    let mut status = ws.status();
    assert!(status.run_hashes.contains_key("a-run"), "no unfinished run");
    for i in 0..130 {
        status.resets.insert(format!("e{i:03}"), seed.clone());
    }
    resetd::store::write_status(&ws.status, &status).unwrap();
    let _ = std::fs::remove_file(ws.status.with_file_name("resets.status.yaml.journal"));

    // The transaction that writes the chunk never reaches etcd.
    let proxy = drop_nth(upstream(&etcd), writes_chunks, 1);
    let status_flag = ws.status.to_str().unwrap().to_owned();
    let a = member(
        &ws,
        &api,
        &format!("http://{proxy}"),
        "a",
        &["--ha-lease", "2s", "--status", &status_flag],
    );
    let done = wait_until(Duration::from_secs(20), "a-run finished", || {
        etcdctl(
            &etcd,
            &[
                "get",
                "/resetd/test/status/entries/a-run",
                "--print-value-only",
            ],
        )
        .contains("\"phase\":\"Succeeded\"")
    });
    assert!(
        done,
        "the group never finished a-run; {} elections; log:\n{}",
        a.logs()
            .iter()
            .filter(|l| l.contains("elected HA leader"))
            .count(),
        a.logs()
            .iter()
            .filter(|l| l.contains("ERROR"))
            .take(3)
            .map(|l| l.chars().take(400).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The lock file is what keeps two resetd processes off one status. The
/// first leader imports `--status FILE` without asking it: a single
/// instance still running on FILE (a migration step done out of order)
/// and the new group then both send the same resets.
#[test]
fn the_import_refuses_a_status_file_a_running_instance_holds() {
    let Some(etcd) = Etcd::single("ha_review::import_locked") else {
        return;
    };
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: one\n    hashes: [A1, A2, A3, A4]\n",
    );
    let (api_single, api_ha) = (FakeApi::start(), FakeApi::start());
    api_single.script([
        crate::fake_api::Reply::Status(204),
        crate::fake_api::Reply::Hold,
    ]);
    let single = Daemon::start(&ws, &api_single, &[]);
    api_single.wait_until(Duration::from_secs(20), "the single instance sends", |r| {
        r.len() >= 2
    });
    let status = ws.status.to_str().unwrap().to_owned();
    let ha = member(
        &ws,
        &api_ha,
        &etcd.endpoints(),
        "a",
        &["--ha-lease", "2s", "--status", &status],
    );
    let sent = wait_until(Duration::from_secs(6), "the group sends", || {
        !api_ha.deletes().is_empty()
    });
    api_single.release_held();
    assert!(
        !sent,
        "the group imported a status file a running instance holds and sent {} DELETE(s) of the \
         same entry; imported: {}",
        api_ha.deletes().len(),
        ha.logs()
            .iter()
            .any(|l| l.contains("imported it from the status file"))
    );
    drop(single);
}

/// The etcd member that is raft leader dies (an ordinary etcd event: the
/// other two elect a new one within an election timeout). The resetd
/// leader keeps its leadership at the default lease (5 s): its lease
/// survives (etcd extends every lease on a raft leader change) and a write
/// unanswered during the election is tried again while the lease holds. At
/// the shortest lease (2 s) the leader may step down instead (safe, one
/// handover): its 1.5 s window from the last acknowledged keep-alive is
/// about what etcd's election and the failed keep-alive take (README,
/// "Sizing the lease").
#[test]
fn losing_the_etcd_raft_leader_does_not_depose_the_resetd_leader() {
    let Some(mut etcd) = Etcd::cluster("ha_review::etcd_leader_loss", 3) else {
        return;
    };
    let all: Vec<String> = (0..600).map(|i| format!("H{i:04}")).collect();
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 20\nresets:\n  - id: ha\n    hashes: [{}]\n",
        all.join(", ")
    ));
    let api = FakeApi::start();
    let leader = member(&ws, &api, &etcd.endpoints(), "a", &[]);
    api.wait_until(Duration::from_secs(20), "the run started", |r| r.len() >= 5);
    // Which etcd member is raft leader?
    let status = etcdctl(&etcd, &["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let raft_leader = v
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s["Status"]["leader"] == s["Status"]["header"]["member_id"])
        .unwrap();
    etcd.kill(raft_leader);
    let before = api.deletes().len();
    api.wait_until(Duration::from_secs(20), "100 more requests", |r| {
        r.len() >= before + 20
    });
    let downs: Vec<String> = leader
        .logs()
        .iter()
        .filter(|l| l.contains("stepped down") || l.contains("unreachable"))
        .map(|l| l.chars().take(300).collect())
        .collect();
    assert!(
        !downs.iter().any(|l| l.contains("stepped down")),
        "the resetd leader lost its leadership when etcd member {raft_leader} (raft leader) died:\n{}",
        downs.join("\n")
    );
}

/// A graceful stop (SIGTERM, a rolling update) of the leader while a
/// request is in flight: the leadership task revokes the lease at once,
/// so the standby leads and re-sends the batch the old leader is still
/// waiting on (its confirmation then cannot be written: fenced). A single
/// instance waits for the answer and records it; a leader could too,
/// before giving its lease back.
#[test]
fn a_gracefully_stopped_leader_hands_over_without_a_resend() {
    let Some(etcd) = Etcd::single("ha_review::sigterm_handover") else {
        return;
    };
    let all: Vec<String> = (0..40).map(|i| format!("H{i:04}")).collect();
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: ha\n    hashes: [{}]\n",
        all.join(", ")
    ));
    let (api_a, api_b) = (FakeApi::start(), FakeApi::start());
    for api in [&api_a, &api_b] {
        api.default_reply(crate::fake_api::Reply::Delay(
            Duration::from_millis(800),
            Box::new(crate::fake_api::Reply::Status(204)),
        ));
    }
    let a = member(&ws, &api_a, &etcd.endpoints(), "a", &["--ha-lease", "2s"]);
    a.wait_for_log("elected HA leader");
    let b = member(&ws, &api_b, &etcd.endpoints(), "b", &["--ha-lease", "2s"]);
    api_a.wait_until(Duration::from_secs(20), "a's third request", |r| {
        r.len() >= 3
    });
    a.signal("TERM");
    api_b.wait_until(Duration::from_secs(20), "b sends", |r| r.len() >= 2);
    let sent_a: std::collections::HashSet<Vec<String>> = api_a.deletes().into_iter().collect();
    let resent: Vec<Vec<String>> = api_b
        .deletes()
        .into_iter()
        .filter(|h| sent_a.contains(h))
        .collect();
    assert!(
        resent.is_empty(),
        "after a SIGTERM the new leader re-sent {resent:?}, which the old leader had sent and \
         was waiting on; a's log:\n{}",
        a.logs()
            .iter()
            .filter(|l| l.contains("stop") || l.contains("shared status"))
            .map(|l| l.chars().take(250).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(b);
}

/// A status write whose connection drops before etcd sees it (a proxy
/// restarting, a reset connection) is tried again, the same puts under the
/// same fence, while the lease holds: the leader keeps its term and sends
/// every hash once. Without the retry it steps down at the first dropped
/// write and a new term re-sends the batch in flight.
#[test]
fn a_dropped_status_write_is_tried_again_without_stepping_down() {
    let Some(etcd) = Etcd::single("ha_review::dropped_write") else {
        return;
    };
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: one\n    hashes: [A1, A2, A3, A4, A5, A6]\n",
    );
    let api = FakeApi::start();
    // The third fenced write (a batch in flight, mid-run) never reaches etcd.
    let proxy = drop_nth(upstream(&etcd), is_fenced_write, 3);
    let a = member(&ws, &api, &format!("http://{proxy}"), "a", &[]);
    api.wait_until(Duration::from_secs(20), "every hash", |r| r.len() >= 6);
    let done = wait_until(Duration::from_secs(10), "the run recorded", || {
        etcdctl(
            &etcd,
            &[
                "get",
                "/resetd/test/status/entries/one",
                "--print-value-only",
            ],
        )
        .contains("\"phase\":\"Succeeded\"")
    });
    assert!(done, "the run never ended Succeeded in etcd");
    let downs: Vec<String> = a
        .logs()
        .into_iter()
        .filter(|l| l.contains("stepped down"))
        .collect();
    assert!(
        downs.is_empty(),
        "the leader stepped down:\n{}",
        downs.join("\n")
    );
    assert_eq!(api.deletes().len(), 6, "a batch was sent twice");
}
