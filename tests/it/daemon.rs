//! The daemon as a real process: a real directory, real signals, the fake API
//! over real HTTP. Every wait is on an event (a request reaching the fake API,
//! a log line) with a deadline; no sleeps as synchronisation. The resync is
//! an hour: every config change here is seen by the watcher or not at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use resetd::status::Phase;

use crate::fake_api::{FakeApi, Reply};
use crate::support::{HEAD, Workspace};

const WAIT: Duration = Duration::from_secs(20);

type Logs = Arc<(Mutex<Vec<String>>, Condvar)>;

pub(crate) struct Daemon {
    child: Child,
    logs: Logs,
    pub(crate) addr: SocketAddr,
}

impl Daemon {
    pub(crate) fn start(ws: &Workspace, api: &FakeApi, extra: &[&str]) -> Daemon {
        Daemon::start_at(ws, &api.base(), extra)
    }

    /// `start` against any API base (one where nothing listens yet, say).
    fn start_at(ws: &Workspace, api_base: &str, extra: &[&str]) -> Daemon {
        let mut cmd = ws.command(api_base);
        cmd.args(["run", "--config"])
            .arg(&ws.config)
            .args(["--listen", "127.0.0.1:0", "--debounce", "50ms"])
            .args(extra)
            .env("RESETD_LOG_FORMAT", "json");
        if !extra.contains(&"--resync") {
            // Only the watcher may pass these tests, never the resync.
            cmd.args(["--resync", "1h"]);
        }
        Daemon::spawn(cmd)
    }

    /// Start `cmd`, a `resetd run` with `--listen` and JSON logs, capture
    /// its log, and wait until it listens and has started.
    pub(crate) fn spawn(mut cmd: std::process::Command) -> Daemon {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs: Logs = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.0.lock().unwrap().push(line);
                sink.1.notify_all();
            }
        });
        let mut daemon = Daemon {
            child,
            logs,
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let line = daemon.wait_for_log("listening on ");
        let at = line.find("listening on ").unwrap() + "listening on ".len();
        let addr: String = line[at..].chars().take_while(|c| *c != '"').collect();
        daemon.addr = addr.parse().unwrap();
        daemon.wait_for_log("resetd started");
        daemon
    }

    /// Wait for a log line containing `text`; returns it.
    pub(crate) fn wait_for_log(&self, text: &str) -> String {
        self.wait_for_logs(text, 1).pop().unwrap()
    }

    /// Wait until `count` log lines contain `text`.
    pub(crate) fn wait_for_logs(&self, text: &str, count: usize) -> Vec<String> {
        let end = Instant::now() + WAIT;
        let (lock, cond) = &*self.logs;
        let mut lines = lock.lock().unwrap();
        loop {
            let found: Vec<String> = lines.iter().filter(|l| l.contains(text)).cloned().collect();
            if found.len() >= count {
                return found;
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {count}× {text:?} in the log:\n{}",
                lines.join("\n")
            );
            lines = cond.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Every log line so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.0.lock().unwrap().clone()
    }

    /// Log lines at `level` (`ERROR`, `INFO`...) containing `text`, so far.
    fn count_logs(&self, level: &str, text: &str) -> usize {
        let level = format!("\"level\":\"{level}\"");
        let lines = self.logs.0.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(&level) && l.contains(text))
            .count()
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let code = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (code, body)
    }

    /// A GET with extra request headers: the status, the response's head
    /// (status line and headers) and the body.
    pub(crate) fn get_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (
            head[9..12].parse().unwrap(),
            head.to_owned(),
            body.to_owned(),
        )
    }

    fn metrics(&self) -> prometheus_parse::Scrape {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200);
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
    }

    /// Scrape until `name` (with `label`) reaches `expected`; returns that
    /// scrape.
    fn wait_for_metric(
        &self,
        name: &str,
        label: Option<(&str, &str)>,
        expected: f64,
    ) -> prometheus_parse::Scrape {
        let end = Instant::now() + WAIT;
        loop {
            let scrape = self.metrics();
            let found = value(&scrape, name, label);
            if found == expected {
                return scrape;
            }
            assert!(
                Instant::now() < end,
                "{name} {label:?} is {found}, not {expected}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Poll for the exit, with a deadline.
    pub(crate) fn wait_exit(&mut self) -> i32 {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let logs = self.logs.0.lock().unwrap();
            assert!(
                logs.iter().all(|l| !l.contains(crate::support::TOKEN)),
                "the token leaked into the daemon's log"
            );
        }
    }
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn entry(id: &str, hash: &str) -> String {
    format!("  - id: {id}\n    hashes: [{hash}]\n")
}

fn requests_with(api: &FakeApi, hash: &'static str) -> Vec<crate::fake_api::Recorded> {
    requests_within(api, hash, WAIT)
}

fn requests_within(
    api: &FakeApi,
    hash: &'static str,
    deadline: Duration,
) -> Vec<crate::fake_api::Recorded> {
    api.wait_until(deadline, &format!("a DELETE for {hash}"), |r| {
        r.iter().any(|r| {
            r.hashes
                .as_deref()
                .is_some_and(|h| h.iter().any(|x| x == hash))
        })
    })
}

#[test]
fn appending_an_entry_with_a_plain_write_is_applied() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&ws.config)
        .unwrap();
    file.write_all(entry("second", "BBBB2").as_bytes()).unwrap();
    drop(file);
    requests_with(&api, "BBBB2");
    daemon.wait_for_log("config reloaded");
}

#[test]
fn a_rename_save_is_applied() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let _daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    // What editors do: write a temp file beside it, rename it over.
    let tmp = ws.dir.path().join(".resets.yaml.swp");
    std::fs::write(
        &tmp,
        format!(
            "{HEAD}resets:\n{}{}",
            entry("first", "AAAA1"),
            entry("second", "CCCC3")
        ),
    )
    .unwrap();
    std::fs::rename(&tmp, &ws.config).unwrap();
    requests_with(&api, "CCCC3");
    assert_eq!(
        api.requests().len(),
        2,
        "the unchanged entry is not sent again"
    );
}

#[test]
fn a_configmap_style_symlink_swap_is_applied() {
    let api = FakeApi::start();
    let ws = Workspace::new("");
    let dir = ws.dir.path();
    // Kubernetes layout: resets.yaml -> ..data/resets.yaml, ..data -> ..v1
    std::fs::create_dir(dir.join("..v1")).unwrap();
    std::fs::write(
        dir.join("..v1/resets.yaml"),
        format!("{HEAD}resets:\n{}", entry("first", "AAAA1")),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::fs::remove_file(&ws.config).unwrap();
    std::os::unix::fs::symlink("..data/resets.yaml", &ws.config).unwrap();
    let status = dir.join("state.status.yaml");
    let status_arg = status.to_str().unwrap();
    let _daemon = Daemon::start(&ws, &api, &["--status", status_arg]);
    requests_with(&api, "AAAA1");

    std::fs::create_dir(dir.join("..v2")).unwrap();
    std::fs::write(
        dir.join("..v2/resets.yaml"),
        format!(
            "{HEAD}resets:\n{}{}",
            entry("first", "AAAA1"),
            entry("second", "DDDD4")
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    requests_with(&api, "DDDD4");
}

#[test]
fn an_invalid_config_is_rejected_and_the_last_good_one_stays() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");

    ws.write_config(&format!(
        "resets:\n{}{}    groups: [missing]\n",
        entry("first", "AAAA1"),
        entry("bad", "EEEE5")
    ));
    let rejected = daemon.wait_for_log("config rejected");
    assert!(
        rejected.contains("keeping the last good config"),
        "{rejected}"
    );
    daemon.wait_for_log("unknown group `missing`");
    // The daemon counts the failure just after logging it.
    let scrape = daemon.wait_for_metric(
        "resetd_config_reloads_total",
        Some(("result", "failure")),
        1.0,
    );
    assert_eq!(
        value(&scrape, "resetd_config_last_reload_successful", None),
        0.0
    );
    assert_eq!(daemon.get("/readyz").0, 200);
    assert_eq!(daemon.get("/healthz").0, 200);

    ws.write_config(&format!(
        "resets:\n{}{}",
        entry("first", "AAAA1"),
        entry("good", "FFFF6")
    ));
    let requests = requests_with(&api, "FFFF6");
    assert!(
        requests.iter().all(|r| r.sent() != ["EEEE5"]),
        "nothing from the invalid config ran"
    );
    let scrape = daemon.metrics();
    assert_eq!(
        value(&scrape, "resetd_config_last_reload_successful", None),
        1.0
    );
}

#[test]
fn every_fires_repeatedly_and_suspended_never_fires() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "resets:\n{}    trigger: {{every: 2s}}\n{}    trigger: {{every: 1s}}\n    suspend: true\n",
        entry("often", "AAAA1"),
        entry("held", "SSSS9")
    ));
    let _daemon = Daemon::start(&ws, &api, &[]);
    let requests = api.wait_until(WAIT, "two runs of `often`", |r| r.len() >= 2);
    let gap = requests[1].received - requests[0].received;
    assert!(
        gap >= Duration::from_millis(1900),
        "every: 2s fired after {gap:?}"
    );
    assert!(
        api.requests().iter().all(|r| r.sent() == ["AAAA1"]),
        "the suspended entry fired"
    );
    assert_eq!(ws.status().resets["held"].phase, Phase::Suspended);
}

#[test]
fn sigterm_lets_the_in_flight_request_finish_and_exits_zero() {
    let api = FakeApi::start();
    api.script([Reply::Delay(
        Duration::from_millis(1500),
        Box::new(Reply::Status(204)),
    )]);
    let ws = Workspace::new(&format!("resets:\n{}", entry("slow", "AAAA1")));
    let mut daemon = Daemon::start(&ws, &api, &[]);
    api.wait_until(WAIT, "the slow request to arrive", |r| r.len() == 1);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
    assert_eq!(api.requests()[0].answered, Some(204));
    let st = &ws.status().resets["slow"];
    assert_eq!(st.phase, Phase::Succeeded, "{st:?}");
    assert!(st.run.is_none());
}

#[test]
fn sighup_forces_a_reload() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    daemon.signal("HUP");
    daemon.wait_for_log("config reloaded");
    assert_eq!(
        api.requests().len(),
        1,
        "an unchanged config sends nothing new"
    );
}

#[test]
fn removed_entries_are_orphaned_by_the_daemon() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "resets:\n{}{}",
        entry("keep", "AAAA1"),
        entry("drop", "BBBB2")
    ));
    let daemon = Daemon::start(&ws, &api, &[]);
    api.wait_until(WAIT, "both entries", |r| r.len() == 2);
    ws.write_config(&format!("resets:\n{}", entry("keep", "AAAA1")));
    daemon.wait_for_log("config reloaded");
    let deadline = Instant::now() + WAIT;
    while !ws.status().resets["drop"].orphaned {
        assert!(Instant::now() < deadline, "entry not marked orphaned");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_and_status_endpoints_serve_the_spec_names() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    daemon.wait_for_log("run succeeded");
    let scrape = daemon.metrics();
    for name in [
        "resetd_api_requests_total",
        "resetd_api_request_duration_seconds_count",
        "resetd_hashes_reset_total",
        "resetd_resets_total",
        "resetd_config_reloads_total",
        "resetd_config_last_reload_successful",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "{name} missing"
        );
    }
    assert_eq!(
        value(&scrape, "resetd_api_requests_total", Some(("code", "204"))),
        1.0
    );
    assert_eq!(value(&scrape, "resetd_hashes_reset_total", None), 1.0);
    assert_eq!(
        value(
            &scrape,
            "resetd_resets_total",
            Some(("outcome", "Succeeded"))
        ),
        1.0
    );
    // The log line comes from the run; /status is refreshed when the pass
    // ends, just after: poll with a deadline.
    let end = Instant::now() + WAIT;
    loop {
        let (code, body) = daemon.get("/status");
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        if status["resets"]["first"]["phase"] == "Succeeded" {
            break;
        }
        assert!(
            Instant::now() < end,
            "/status never showed Succeeded: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_at_trigger_fires_on_time_while_running() {
    let api = FakeApi::start();
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ws = Workspace::new(&format!(
        "resets:\n{}    trigger: {{at: \"{at_text}\"}}\n",
        entry("later", "AAAA1")
    ));
    let _daemon = Daemon::start(&ws, &api, &[]);
    let requests = requests_with(&api, "AAAA1");
    let fired = chrono::Utc::now();
    assert!(fired >= at, "fired before its time");
    assert!(
        fired - at < chrono::Duration::seconds(2),
        "fired {} late",
        fired - at
    );
    assert_eq!(requests.len(), 1);
}

/// A full config of `entries`.
fn config(entries: &[(&str, &str)]) -> String {
    let body: String = entries.iter().map(|(id, hash)| entry(id, hash)).collect();
    format!("{HEAD}resets:\n{body}")
}

pub(crate) fn config_reads(daemon: &Daemon) -> f64 {
    let scrape = daemon.metrics();
    // A missing counter would read as 0 and pass every "no reads" check.
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "resetd_config_reads_total"),
        "resetd_config_reads_total missing"
    );
    value(&scrape, "resetd_config_reads_total", None)
}

#[test]
fn edits_of_a_symlinked_configs_target_are_applied() {
    let api = FakeApi::start();
    let ws = Workspace::new("");
    // A link into a git checkout: edits happen in a directory the config's
    // own does not see.
    let checkout = ws.dir.path().join("checkout");
    std::fs::create_dir(&checkout).unwrap();
    let target = checkout.join("resets.yaml");
    std::fs::write(&target, config(&[("first", "AAAA1")])).unwrap();
    std::fs::remove_file(&ws.config).unwrap();
    std::os::unix::fs::symlink(&target, &ws.config).unwrap();
    let _daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap();
    file.write_all(entry("second", "BBBB2").as_bytes()).unwrap();
    drop(file);
    requests_within(&api, "BBBB2", Duration::from_secs(1));

    // What `git checkout` and editors do: a new file renamed over the target.
    let tmp = checkout.join(".resets.yaml.tmp");
    std::fs::write(
        &tmp,
        config(&[("first", "AAAA1"), ("second", "BBBB2"), ("third", "CCCC3")]),
    )
    .unwrap();
    std::fs::rename(&tmp, &target).unwrap();
    requests_within(&api, "CCCC3", Duration::from_secs(1));
}

#[test]
fn a_swapped_release_link_is_followed_and_its_new_target_watched() {
    let api = FakeApi::start();
    let mut ws = Workspace::new("");
    let dir = ws.dir.path().to_owned();
    std::fs::create_dir(dir.join("release-1")).unwrap();
    std::fs::write(
        dir.join("release-1/resets.yaml"),
        config(&[("first", "AAAA1")]),
    )
    .unwrap();
    std::os::unix::fs::symlink("release-1", dir.join("current")).unwrap();
    ws.config = dir.join("current/resets.yaml");
    let status = dir.join("state.status.yaml");
    let _daemon = Daemon::start(&ws, &api, &["--status", status.to_str().unwrap()]);
    requests_with(&api, "AAAA1");

    std::fs::create_dir(dir.join("release-2")).unwrap();
    std::fs::write(
        dir.join("release-2/resets.yaml"),
        config(&[("first", "AAAA1"), ("second", "BBBB2")]),
    )
    .unwrap();
    // `ln -sfn release-2 current`, atomically: a new link renamed over.
    std::os::unix::fs::symlink("release-2", dir.join("current.tmp")).unwrap();
    std::fs::rename(dir.join("current.tmp"), dir.join("current")).unwrap();
    requests_within(&api, "BBBB2", Duration::from_secs(1));

    // Only a watch armed after the swap sees an edit in the new release.
    std::fs::write(
        dir.join("release-2/resets.yaml"),
        config(&[("first", "AAAA1"), ("second", "BBBB2"), ("third", "CCCC3")]),
    )
    .unwrap();
    requests_within(&api, "CCCC3", Duration::from_secs(1));
}

#[test]
fn a_status_elsewhere_named_like_the_config_hides_no_edits() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    std::fs::create_dir(ws.dir.path().join("state")).unwrap();
    let daemon = Daemon::start(&ws, &api, &["--status", "state/resets.yaml"]);
    requests_with(&api, "AAAA1");
    assert!(ws.dir.path().join("state/resets.yaml").exists());

    ws.write_config(&format!(
        "resets:\n{}{}",
        entry("first", "AAAA1"),
        entry("second", "BBBB2")
    ));
    requests_with(&api, "BBBB2");
    daemon.wait_for_log("config reloaded");
}

#[test]
fn reads_by_other_processes_neither_wake_nor_delay_the_daemon() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let notes = ws.dir.path().join("notes.txt");
    std::fs::write(&notes, "read me").unwrap();
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    daemon.wait_for_log("run succeeded");

    let stop = Arc::new(AtomicBool::new(false));
    let (warmed_up, warm) = std::sync::mpsc::channel();
    let reader = {
        let stop = Arc::clone(&stop);
        let config = ws.config.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                // A failed test removes the directory under us: keep quiet.
                let _ = std::fs::read(&config);
                let _ = std::fs::read(&notes);
                reads += 1;
                if reads == 150 {
                    let _ = warmed_up.send(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // At least 1.5 s of reads every 10 ms: more than a max-wait (1 s), so a
    // watcher that counted them would have reloaded by now.
    warm.recv_timeout(WAIT).expect("the reader ran");
    assert_eq!(
        config_reads(&daemon),
        0.0,
        "reads by others woke the daemon"
    );

    ws.write_config(&format!(
        "resets:\n{}{}",
        entry("first", "AAAA1"),
        entry("second", "BBBB2")
    ));
    requests_within(&api, "BBBB2", Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    // One parse applies it, taking the digest as it reads (the watcher's
    // quiet period showed it settled); a write that straddles two debounce
    // periods costs one more, and events that arrived meanwhile one more
    // check.
    let reads = config_reads(&daemon);
    assert!(
        (1.0..=3.0).contains(&reads),
        "{reads} config reads for one edit"
    );
}

#[test]
fn an_idle_daemon_reads_nothing() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    daemon.wait_for_log("run succeeded");
    // A negative needs a window: 30 debounce periods, across which the
    // status writes of the pass and the daemon's own reads would show.
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        assert_eq!(config_reads(&daemon), 0.0, "an idle daemon read its config");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(config_reads(&daemon), 0.0);
}

/// A `Status` poll with a deadline: `/status` is refreshed after each pass.
pub(crate) fn wait_for_phase(daemon: &Daemon, id: &str, phase: &str) -> serde_json::Value {
    wait_for_entry(daemon, id, phase, |st| st["phase"] == phase)
}

/// Poll `/status` until `id`'s status satisfies `done`; returns the status.
fn wait_for_entry(
    daemon: &Daemon,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + WAIT;
    loop {
        let (_, body) = daemon.get("/status");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        if done(&status["resets"][id]) {
            return status;
        }
        assert!(Instant::now() < end, "{id} never reached {what}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Failed with no retry ahead: the served status once retries are over.
fn retries_over(st: &serde_json::Value) -> bool {
    st["phase"] == "Failed" && st.get("nextRetryAt").is_none() && st.get("retrying").is_some()
}

#[test]
fn a_slow_in_place_writer_never_gets_a_partial_file_applied() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    // Written in place, one hash per line, for ~2 s: every cut at a line end
    // is a valid config with fewer hashes, and the pauses (20 ms) are shorter
    // than the debounce (50 ms), so the watcher's max wait (1 s) passes
    // while the file is still being written.
    let hashes: Vec<String> = (0..100).map(|i| format!("SLOW{i:03}")).collect();
    let mut file = std::fs::File::create(&ws.config).unwrap();
    write!(
        file,
        "{HEAD}settings:\n  batchSize: 1000\nresets:\n{}  - id: slow\n    hashes:\n",
        entry("first", "AAAA1")
    )
    .unwrap();
    for hash in &hashes {
        writeln!(file, "      - {hash}").unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(file);
    let sent = requests_with(&api, "SLOW000");
    let runs: Vec<_> = sent
        .iter()
        .filter(|r| r.sent().iter().any(|h| h.starts_with("SLOW")))
        .collect();
    assert_eq!(runs.len(), 1, "one run for the finished file");
    assert_eq!(runs[0].sent(), hashes, "every hash of the finished file");
    wait_for_phase(&daemon, "slow", "Succeeded");
}

#[test]
fn a_read_made_early_in_the_quiet_period_is_dropped_when_an_event_follows_it() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    // A long debounce: its calm (a quarter) comes well before its end.
    let cmd = ws.daemon_command_debounced(&api.base(), "2s");
    let daemon = Daemon::spawn(cmd);
    requests_with(&api, "AAAA1");
    // Half an edit, itself a valid config: read once it has been calm...
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&ws.config)
        .unwrap();
    write!(file, "  - id: two\n    hashes:\n      - HALF1\n").unwrap();
    file.flush().unwrap();
    let deadline = Instant::now() + WAIT;
    while config_reads(&daemon) < 1.0 {
        assert!(Instant::now() < deadline, "no early read");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...then finished, within the quiet period: that read is stale.
    writeln!(file, "      - HALF2").unwrap();
    drop(file);
    let sent = requests_with(&api, "HALF1");
    let runs: Vec<_> = sent
        .iter()
        .filter(|r| r.sent().iter().any(|h| h.starts_with("HALF")))
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].sent(), ["HALF1", "HALF2"], "the finished edit only");
    assert!(config_reads(&daemon) >= 2.0, "read again after the event");
}

#[test]
fn suspending_an_entry_stops_its_run_at_the_next_batch_and_resuming_continues() {
    let api = FakeApi::start();
    api.default_reply(Reply::Hold);
    let body = |suspend: bool| {
        format!(
            "settings:\n  batchSize: 1\nresets:\n  - id: big\n    hashes: [KILL1, KILL2, KILL3]\n    suspend: {suspend}\n"
        )
    };
    let ws = Workspace::new(&body(false));
    let daemon = Daemon::start(&ws, &api, &[]);
    // The first batch is on the wire, held by the API.
    requests_with(&api, "KILL1");
    ws.write_config(&body(true));
    daemon.wait_for_log("config reloaded");
    api.release_held();
    daemon.wait_for_log("run halted before batch 2 of 3");
    wait_for_phase(&daemon, "big", "Suspended");
    assert_eq!(api.requests().len(), 1, "no batch after the kill switch");

    // Lifting the suspension resumes with the batches not yet confirmed.
    ws.write_config(&body(false));
    requests_with(&api, "KILL3");
    wait_for_phase(&daemon, "big", "Succeeded");
    let sent: Vec<Vec<String>> = api.requests().iter().map(|r| r.sent().to_vec()).collect();
    assert_eq!(sent, [["KILL1"], ["KILL2"], ["KILL3"]]);
}

#[test]
fn due_resets_without_a_token_back_off_then_run_once_one_appears() {
    let api = FakeApi::start();
    let both = format!(
        "resets:\n{}{}",
        entry("first", "AAAA1"),
        entry("second", "BBBB2")
    );
    let ws = Workspace::new(&format!("settings:\n  dryRun: true\n{both}"));
    let token_file = ws.dir.path().join("token");
    let daemon = Daemon::start(&ws, &api, &["--token-file", token_file.to_str().unwrap()]);
    daemon.wait_for_log("dry run: would send");
    let blocked = Some(("reason", "no_token"));
    let scrape = daemon.metrics();
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "resetd_resets_blocked"),
        "resetd_resets_blocked is there before anything blocks"
    );
    assert_eq!(value(&scrape, "resetd_resets_blocked", blocked), 0.0);
    // Dry run off: both entries are due and there is no token.
    ws.write_config(&both);
    let logged = daemon.wait_for_logs("looking for a token again in", 3);
    assert!(logged[0].contains("in 1s"), "{}", logged[0]);
    assert!(logged[1].contains("in 2s"), "{}", logged[1]);
    assert!(logged[2].contains("in 4s"), "{}", logged[2]);
    assert!(logged[2].contains("2 due reset(s) wait"), "{}", logged[2]);
    // An alert can see them: they are in no phase that counts as failed.
    let scrape = daemon.metrics();
    assert_eq!(value(&scrape, "resetd_resets_blocked", blocked), 2.0);
    assert_eq!(
        value(&scrape, "resetd_entries", Some(("phase", "Failed"))),
        0.0
    );
    assert!(api.requests().is_empty());
    std::fs::write(&token_file, crate::support::TOKEN).unwrap();
    api.wait_until(WAIT, "both entries", |r| r.len() == 2);
    daemon.wait_for_metric("resetd_resets_blocked", blocked, 0.0);
    // One line per back-off step: no more than the steps that fit in the
    // time it took (1 + 2 + 4 + 8 s).
    let lines = daemon.count_logs("ERROR", "looking for a token again in");
    assert!(lines <= 4, "{lines} lines");
}

#[test]
fn an_entry_waiting_for_a_token_holds_back_no_other_entry() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "settings:\n  dryRun: true\nresets:\n{}",
        entry("first", "AAAA1")
    ));
    let token_file = ws.dir.path().join("token");
    let daemon = Daemon::start(&ws, &api, &["--token-file", token_file.to_str().unwrap()]);
    daemon.wait_for_log("dry run: would send");
    // A due entry that needs the token, beside a dry run and an entry long
    // past its `notAfter`, neither of which needs one.
    ws.write_config(&format!(
        "resets:\n{}{}  - id: old\n    hashes: [CCCC3]\n    trigger: {{at: \"2020-01-01T00:00:00Z\"}}\n    notAfter: \"2020-01-02T00:00:00Z\"\n",
        entry("due", "BBBB2"),
        "  - id: dry\n    hashes: [DDDD4]\n    dryRun: true\n",
    ));
    let served = wait_for_phase(&daemon, "dry", "DryRun");
    assert_eq!(
        served["resets"]["dry"]["history"][0]["outcome"], "DryRun",
        "{served}"
    );
    let served = wait_for_phase(&daemon, "old", "Expired");
    assert_eq!(
        served["resets"]["old"]["history"][0]["outcome"], "Expired",
        "{served}"
    );
    let served = wait_for_phase(&daemon, "due", "Pending");
    let history = &served["resets"]["due"]["history"];
    assert!(history.as_array().is_none_or(Vec::is_empty), "{served}");
    daemon.wait_for_metric("resetd_resets_blocked", Some(("reason", "no_token")), 1.0);
    assert!(api.requests().is_empty());
    // The status file says the same as `/status`.
    let status = ws.status();
    assert_eq!(status.resets["dry"].phase, Phase::DryRun);
    assert_eq!(status.resets["old"].phase, Phase::Expired);
}

#[test]
fn a_config_replaced_by_a_fifo_is_refused_and_sigterm_still_stops_the_daemon() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let mut daemon = Daemon::start(&ws, &api, &[]);
    requests_with(&api, "AAAA1");
    std::fs::remove_file(&ws.config).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&ws.config)
        .status()
        .unwrap();
    assert!(made.success());
    // Reading it would block forever; the daemon refuses it instead.
    daemon.wait_for_log("not a regular file");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
}

// Failed entries retried on their own (SPEC §2). The back-off is shortened
// with `--retry-backoff`; the times come from the status the daemon serves.

fn time_of(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

#[test]
fn a_three_second_outage_heals_on_its_own_at_the_first_retry() {
    // Nothing listens on the API's port while the outage lasts.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let base = format!("http://{addr}/v1");
    let ws = Workspace::new(&format!(
        "settings:\n  maxAttempts: 2\n  retryDelay: 100ms\nresets:\n{}",
        entry("r1", "OUTAGE1")
    ));
    let outage_began = Instant::now();
    let daemon = Daemon::start_at(&ws, &base, &["--retry-backoff", "4s"]);
    let status = wait_for_phase(&daemon, "r1", "Failed");
    let st = &status["resets"]["r1"];
    let error = st["lastError"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("cannot reach {base}/sessions: ")),
        "{error}"
    );
    let retry_at = time_of(&st["nextRetryAt"]);
    assert_eq!(
        retry_at - time_of(&st["completedAt"]),
        chrono::Duration::seconds(4)
    );

    // The API comes back 3 s after the outage began (the outage is the
    // scenario: this wait is not synchronisation).
    std::thread::sleep(Duration::from_secs(3).saturating_sub(outage_began.elapsed()));
    let api = FakeApi::start_on(&addr.to_string());
    let sent = requests_with(&api, "OUTAGE1");
    assert!(
        chrono::Utc::now() >= retry_at,
        "retried before its nextRetryAt"
    );
    let status = wait_for_phase(&daemon, "r1", "Succeeded");
    let st = &status["resets"]["r1"];
    let outcomes: Vec<&str> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["Failed", "Succeeded"],
        "healed at the first retry"
    );
    assert_eq!(sent.len(), 1);
    assert!(
        st.get("nextRetryAt").is_none() && st.get("retrying").is_none(),
        "{st}"
    );
}

#[test]
fn a_refused_request_stays_failed_while_a_passing_failure_recovers() {
    let api = FakeApi::start();
    api.script([
        Reply::Json(422, r#"{"message":"invalid hash"}"#.into()),
        Reply::Status(503),
    ]);
    let ws = Workspace::new(&format!(
        "settings:\n  maxAttempts: 1\nresets:\n{}{}",
        entry("refused", "REFUSED1"),
        entry("passing", "PASSING1")
    ));
    let daemon = Daemon::start(&ws, &api, &["--retry-backoff", "300ms"]);
    let status = wait_for_phase(&daemon, "passing", "Succeeded");
    let refused = &status["resets"]["refused"];
    assert_eq!(refused["phase"], "Failed");
    assert!(refused.get("nextRetryAt").is_none(), "{refused}");
    let error = refused["lastError"].as_str().unwrap();
    assert_eq!(
        error,
        format!("HTTP 422 from {}/sessions: invalid hash", api.base())
    );
    let sent: Vec<Vec<String>> = api.requests().iter().map(|r| r.sent().to_vec()).collect();
    assert_eq!(sent, [["REFUSED1"], ["PASSING1"], ["PASSING1"]]);

    // A change of the refused entry runs it again.
    ws.write_config(&format!(
        "settings:\n  maxAttempts: 1\nresets:\n{}{}",
        entry("refused", "REFUSED2"),
        entry("passing", "PASSING1")
    ));
    requests_with(&api, "REFUSED2");
    wait_for_phase(&daemon, "refused", "Succeeded");
}

#[test]
fn retries_stop_after_retry_failed_for() {
    let api = FakeApi::start();
    api.default_reply(Reply::Status(503));
    let ws = Workspace::new(&format!(
        "settings:\n  maxAttempts: 1\n  retryFailedFor: 1s\nresets:\n{}",
        entry("r1", "WINDOW1")
    ));
    let daemon = Daemon::start(&ws, &api, &["--retry-backoff", "200ms"]);
    // Failures at 0, then retries 200 ms and 400 ms after each: the third
    // wait (800 ms) would end past the 1 s window.
    let status = wait_for_entry(&daemon, "r1", "retries over", retries_over);
    let st = &status["resets"]["r1"];
    assert_eq!(st["history"].as_array().unwrap().len(), 3, "{st}");
    assert_eq!(st["retrying"]["retries"], 2, "{st}");
    assert_eq!(api.requests().len(), 3);
    daemon.wait_for_log("not retried until the entry changes");
}

#[test]
fn retries_never_go_past_not_after() {
    let api = FakeApi::start();
    api.default_reply(Reply::Status(503));
    let not_after = chrono::Utc::now() + chrono::Duration::seconds(4);
    let ws = Workspace::new(&format!(
        "settings:\n  maxAttempts: 1\nresets:\n{}    notAfter: \"{}\"\n",
        entry("r1", "NOTAFTER1"),
        not_after.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    ));
    let daemon = Daemon::start(&ws, &api, &["--retry-backoff", "200ms"]);
    let status = wait_for_entry(&daemon, "r1", "retries over", retries_over);
    let st = &status["resets"]["r1"];
    assert!(
        st["history"].as_array().unwrap().len() >= 2,
        "it was retried: {st}"
    );
    for run in st["history"].as_array().unwrap() {
        assert!(
            time_of(&run["startedAt"]) <= not_after,
            "a run past notAfter: {run}"
        );
    }
}

#[test]
fn a_rotated_token_file_retries_a_refused_entry_at_once() {
    let api = FakeApi::start();
    api.script([Reply::Status(401)]);
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", "ROTATE1")));
    let token_file = ws.dir.path().join("token");
    std::fs::write(&token_file, "tok-OLD-refused-1234").unwrap();
    // The default back-off (1 minute) is far longer than the test's wait:
    // only the new token can bring the retry.
    let daemon = Daemon::start(&ws, &api, &["--token-file", token_file.to_str().unwrap()]);
    let status = wait_for_phase(&daemon, "r1", "Failed");
    let refused = status["resets"]["r1"]["retrying"]["refusedToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(refused.len(), 12, "a 48-bit fingerprint: {refused}");
    assert!(!refused.contains("OLD") && !refused.contains("refused-1"));
    std::fs::write(&token_file, crate::support::TOKEN).unwrap();
    let sent = api.wait_until(WAIT, "a second request", |r| r.len() >= 2);
    assert_eq!(
        sent[1].header("authorization"),
        Some(format!("Bearer {}", crate::support::TOKEN).as_str())
    );
    wait_for_phase(&daemon, "r1", "Succeeded");
}

/// A refused token replaced while an entry that names a sub-user waits: the
/// retry comes at once with the new token, its user looked up, and is not
/// recorded as a failure "its users were not looked up".
#[test]
fn a_rotated_token_retries_at_once_an_entry_naming_users() {
    let api = FakeApi::start();
    api.subusers(crate::subusers::account(3));
    api.script([Reply::Status(401)]);
    let ws = Workspace::new("resets:\n  - id: r1\n    users: [user-001]\n");
    let token_file = ws.dir.path().join("token");
    std::fs::write(&token_file, "tok-OLD-refused-1234").unwrap();
    let daemon = Daemon::start(&ws, &api, &["--token-file", token_file.to_str().unwrap()]);
    wait_for_phase(&daemon, "r1", "Failed");
    assert_eq!(api.deletes().len(), 1);
    std::fs::write(&token_file, crate::support::TOKEN).unwrap();
    let status = wait_for_phase(&daemon, "r1", "Succeeded");
    let history = status["resets"]["r1"]["history"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(api.deletes().len(), 2);
}

/// Wait until the daemon has read its config `more` more times (each resync
/// is one read): the window a negative check needs.
fn wait_for_reads(daemon: &Daemon, more: f64) {
    let target = config_reads(daemon) + more;
    let end = Instant::now() + WAIT;
    while config_reads(daemon) < target {
        assert!(Instant::now() < end, "fewer than {more} config reads");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_config_that_cannot_be_read_or_is_invalid_is_logged_once_per_change_not_per_check() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("first", "AAAA1")));
    let good = std::fs::read(&ws.config).unwrap();
    // A resync every 50 ms: every check of a broken file could log.
    let daemon = Daemon::start(&ws, &api, &["--resync", "50ms"]);
    requests_with(&api, "AAAA1");
    let last_ok = |d: &Daemon| value(&d.metrics(), "resetd_config_last_reload_successful", None);

    std::fs::remove_file(&ws.config).unwrap();
    daemon.wait_for_log("No such file");
    wait_for_reads(&daemon, 20.0);
    assert_eq!(daemon.count_logs("ERROR", "cannot read the config"), 1);
    assert_eq!(last_ok(&daemon), 0.0);

    // Back with the same content: said once, and in force again.
    std::fs::write(&ws.config, &good).unwrap();
    daemon.wait_for_log("the config can be read again");
    daemon.wait_for_metric("resetd_config_last_reload_successful", None, 1.0);

    let made = std::process::Command::new("mkfifo")
        .arg(ws.dir.path().join("fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::rename(ws.dir.path().join("fifo"), &ws.config).unwrap();
    daemon.wait_for_log("not a regular file");
    wait_for_reads(&daemon, 20.0);
    assert_eq!(daemon.count_logs("ERROR", "not a regular file"), 1);
    assert_eq!(daemon.count_logs("ERROR", "cannot read the config"), 2);

    std::fs::remove_file(&ws.config).unwrap();
    ws.write_config("resets:\n  - id: bad\n    groups: [missing]\n");
    daemon.wait_for_log("config rejected");
    wait_for_reads(&daemon, 20.0);
    assert_eq!(daemon.count_logs("ERROR", "config rejected"), 1);
    assert_eq!(daemon.count_logs("ERROR", "unknown group"), 1);
    assert_eq!(last_ok(&daemon), 0.0);
    assert_eq!(api.requests().len(), 1, "nothing ran from a broken config");
}

#[test]
fn a_sub_user_created_after_start_up_is_found_when_an_entry_names_it() {
    let api = FakeApi::start();
    api.subusers(crate::subusers::account(3));
    let ws = Workspace::new("resets:\n  - id: early\n    users: [user-001]\n");
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_for_phase(&daemon, "early", "Succeeded");
    let gets = |api: &FakeApi| api.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets(&api), 1);

    // A sub-user created on the account after the daemon looked them up,
    // then named by a new entry: the copy lacks it, so it is looked up again
    // at once (not after the 5-minute age), without a restart.
    api.add_subuser("created-later", "01LATE0000000000000000000A");
    ws.write_config(
        "resets:\n  - id: early\n    users: [user-001]\n  - id: later\n    users: [created-later]\n",
    );
    let sent = requests_with(&api, "01LATE0000000000000000000A");
    assert_eq!(gets(&api), 2);
    let status = wait_for_phase(&daemon, "later", "Succeeded");
    let history = &status["resets"]["later"]["history"][0]["users"];
    assert_eq!(history["created-later"], "01LATE0000000000000000000A");
    assert!(
        sent.iter()
            .all(|r| !r.body.contains(crate::fake_api::SUBUSER_PASSWORD))
    );

    // A further entry naming only known users reuses the copy.
    ws.write_config(
        "resets:\n  - id: early\n    users: [user-001]\n  - id: later\n    users: [created-later]\n  - id: third\n    users: [user-002]\n",
    );
    requests_with(&api, "01SUB000000000000000000002");
    assert_eq!(
        gets(&api),
        2,
        "no lookup while the copy is fresh and complete"
    );
    let (_, body) = daemon.get("/status");
    assert!(!body.contains(crate::fake_api::SUBUSER_PASSWORD));
    assert_eq!(
        daemon.count_logs("INFO", "looked up the account's sub-users"),
        2
    );
    let logs = daemon.logs.0.lock().unwrap();
    assert!(
        logs.iter()
            .all(|l| !l.contains(crate::fake_api::SUBUSER_PASSWORD))
    );
}

#[test]
fn the_daemon_notifies_runs_on_their_commit_and_rejected_configs_and_never_again_after_a_restart() {
    use crate::notifications::{Receivers, assert_no_secret};
    let api = FakeApi::start();
    let receivers = Receivers::start();
    let ws = Workspace::new("");
    let section = receivers.section(&ws);
    ws.write_config(&format!(
        "{section}resets:\n{}",
        entry("first", "01H7YCG0R9GYY1YCPS2S4QA6WB")
    ));
    // The config lives in a git work tree: its HEAD is the source revision.
    crate::support::git(ws.dir.path(), &["init", "-q"]);
    crate::support::git(ws.dir.path(), &["add", "resets.yaml"]);
    crate::support::git(ws.dir.path(), &["commit", "-q", "-m", "first reset"]);
    let head = crate::support::git(ws.dir.path(), &["rev-parse", "HEAD"]);
    let start = || {
        let mut cmd = ws.daemon_command(&api.base());
        receivers.env(&mut cmd);
        Daemon::spawn(cmd)
    };
    let mut daemon = start();
    receivers
        .github
        .wait_until(WAIT, "a commit status", |r| !r.is_empty());
    let status = &receivers.github.requests()[0];
    assert_eq!(
        status.path,
        format!("/repos/acme/proxy-ops/statuses/{head}")
    );
    let body: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(
        (body["state"].as_str(), body["context"].as_str()),
        (Some("success"), Some("resetd/first"))
    );

    // A broken config is rejected, and the receivers are told.
    ws.write_config(&format!(
        "{section}resets:\n  - id: broken\n    groups: [missing]\n"
    ));
    let rejected = crate::notifications::config_rejected(&receivers.hook);
    assert_eq!(rejected["entry"], serde_json::Value::Null);
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("unknown group"),
        "{rejected}"
    );
    receivers
        .slack
        .wait_until(WAIT, "ConfigRejected on Slack", |r| !r.is_empty());
    receivers.github.wait_until(WAIT, "resetd/config", |r| {
        r.iter().any(|r| r.body.contains("resetd/config"))
    });

    daemon.wait_for_metric(
        "resetd_notifications_total",
        Some(("receiver", "audit")),
        2.0,
    );

    // A restart notifies nothing that ended before it.
    let before = (
        receivers.hook.requests().len(),
        receivers.github.requests().len(),
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
    ws.write_config(&format!(
        "{section}resets:\n{}",
        entry("first", "01H7YCG0R9GYY1YCPS2S4QA6WB")
    ));
    let daemon = start();
    wait_for_phase(&daemon, "first", "Succeeded");
    assert_eq!(
        (
            receivers.hook.requests().len(),
            receivers.github.requests().len()
        ),
        before
    );
    let logs = daemon.logs.0.lock().unwrap().join("\n");
    assert_no_secret(&[&logs]);
}

/// The daemon reads time from its clock: driven in process on paused tokio
/// time with a `TokioClock`, an hourly entry runs again exactly one
/// (virtual) hour later, and no wall-clock wait is involved.
#[tokio::test(start_paused = true)]
async fn the_daemon_keeps_time_by_its_injected_clock() {
    use chrono::TimeZone as _;
    let ws = Workspace::new(
        "settings:\n  dryRun: true\nresets:\n  - id: hourly\n    hashes: [AAAA1]\n    trigger: {every: 1h}\n",
    );
    let base = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap();
    let clock = resetd::reconcile::TokioClock::starting_at(base);
    let cli = <resetd::cli::Cli as clap::Parser>::parse_from([
        "resetd",
        "run",
        "--config",
        ws.config.to_str().unwrap(),
        "--resync",
        "24h",
        "--source-revision",
        "abc123",
    ]);
    let resetd::cli::Command::Run(args) = cli.command else {
        panic!("not a run command");
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = resetd::daemon::run_with_clock(
        args,
        async move {
            let _ = rx.await;
        },
        clock,
    );
    let records = |n: usize| {
        let path = ws.status.clone();
        async move {
            loop {
                if let Ok(status) = resetd::store::read(&path)
                    && status
                        .resets
                        .get("hourly")
                        .is_some_and(|st| st.history.len() >= n)
                {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let driver = async {
        let first = tokio::time::timeout(Duration::from_secs(60), records(1))
            .await
            .expect("the first dry run");
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let second = tokio::time::timeout(Duration::from_secs(60), records(2))
            .await
            .expect("a dry run an hour later");
        let _ = tx.send(());
        (first, second)
    };
    let (exit, (first, second)) = tokio::join!(daemon, driver);
    assert_eq!(exit.unwrap(), resetd::daemon::Exit::Stopped);
    let started =
        |status: &resetd::status::Status, i: usize| status.resets["hourly"].history[i].started_at;
    assert!(started(&first, 0) - base < chrono::Duration::seconds(1));
    let gap = started(&second, 1) - started(&second, 0);
    assert!(
        gap >= chrono::Duration::hours(1) && gap < chrono::Duration::seconds(3601),
        "{gap}"
    );
    assert_eq!(
        second.resets["hourly"].next_run_at,
        Some(started(&second, 1) + chrono::Duration::hours(1))
    );
}
