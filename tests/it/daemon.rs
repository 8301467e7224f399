//! The daemon as a real process: a real directory, real signals, the fake API
//! over real HTTP. Every wait is on an event (a request reaching the fake API,
//! a log line) with a deadline; no sleeps as synchronisation.

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

struct Daemon {
    child: Child,
    logs: Logs,
    addr: SocketAddr,
}

impl Daemon {
    fn start(ws: &Workspace, api: &FakeApi, extra: &[&str]) -> Daemon {
        let mut cmd = ws.command(&api.base());
        cmd.args(["run", "--config"])
            .arg(&ws.config)
            .args(["--listen", "127.0.0.1:0", "--debounce", "50ms"])
            .args(extra)
            .env("RESETD_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
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
    fn wait_for_log(&self, text: &str) -> String {
        self.wait_for_logs(text, 1).pop().unwrap()
    }

    /// Wait until `count` log lines contain `text`.
    fn wait_for_logs(&self, text: &str, count: usize) -> Vec<String> {
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

    fn get(&self, path: &str) -> (u16, String) {
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

    fn metrics(&self) -> prometheus_parse::Scrape {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200);
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Poll for the exit, with a deadline.
    fn wait_exit(&mut self) -> i32 {
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
    api.wait_until(WAIT, &format!("a DELETE for {hash}"), |r| {
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
    let scrape = daemon.metrics();
    assert_eq!(
        value(
            &scrape,
            "resetd_config_reloads_total",
            Some(("result", "failure"))
        ),
        1.0
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
