//! Real etcd for the HA tests: one member or a cluster of three on free
//! loopback ports, data in temp dirs, members killed (SIGKILL) and
//! restarted at will, all stopped on Drop.
//!
//! Without an `etcd` binary (on PATH or /usr/bin) a test prints
//! `SKIPPED (no etcd): <test>` to stderr and returns, unless
//! `RESETD_REQUIRE_ETCD` is set (CI), when it fails.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a member may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(20);

struct Member {
    name: String,
    client: u16,
    peer: u16,
    data: PathBuf,
    child: Option<Child>,
}

pub struct Etcd {
    binary: PathBuf,
    members: Vec<Member>,
    /// Holds every member's data directory.
    _dir: tempfile::TempDir,
    /// `--unsafe-no-fsync` (benchmarks only).
    no_fsync: bool,
}

/// The etcd binary, if there is one; `None` means the test is to be
/// skipped (it says so), or panics when `RESETD_REQUIRE_ETCD` is set.
fn binary(test: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("etcd"))
            .find(|p| p.is_file())
    });
    let found = on_path.or_else(|| {
        let p = PathBuf::from("/usr/bin/etcd");
        p.is_file().then_some(p)
    });
    if found.is_none() {
        assert!(
            std::env::var_os("RESETD_REQUIRE_ETCD").is_none(),
            "{test}: RESETD_REQUIRE_ETCD is set and no etcd binary was found"
        );
        eprintln!("SKIPPED (no etcd): {test}");
    }
    found
}

/// A port nothing listens on right now (it may be taken before etcd binds
/// it: `start` retries with new ports then).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    /// One member.
    pub fn single(test: &str) -> Option<Etcd> {
        Etcd::cluster(test, 1)
    }

    /// `n` members forming one cluster.
    pub fn cluster(test: &str, n: usize) -> Option<Etcd> {
        Etcd::start_cluster(test, n, false)
    }

    pub fn start_cluster(test: &str, n: usize, no_fsync: bool) -> Option<Etcd> {
        let binary = binary(test)?;
        for attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let members: Vec<Member> = (0..n)
                .map(|i| Member {
                    name: format!("m{i}"),
                    client: free_port(),
                    peer: free_port(),
                    data: dir.path().join(format!("m{i}")),
                    child: None,
                })
                .collect();
            let mut etcd = Etcd {
                binary: binary.clone(),
                members,
                _dir: dir,
                no_fsync,
            };
            for i in 0..n {
                etcd.start(i);
            }
            if (0..n).all(|i| etcd.healthy_within(i, HEALTHY_WITHIN)) {
                return Some(etcd);
            }
            eprintln!("etcd did not come up (attempt {attempt}); new ports");
        }
        panic!("{test}: etcd did not start in three attempts");
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Start (or restart, on its data) member `i`.
    pub fn start(&mut self, i: usize) {
        let cluster = self.initial_cluster();
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "member {i} runs already");
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
            ])
            .args(["--initial-cluster-token", "resetd-test"])
            // Fast elections among loopback members.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.no_fsync {
            cmd.arg("--unsafe-no-fsync");
        }
        m.child = Some(cmd.spawn().unwrap());
    }

    /// SIGKILL member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client)
    }

    /// Every member's client URL, comma-separated (what `--etcd` takes).
    pub fn endpoints(&self) -> String {
        (0..self.members.len())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Member `i` answers `/health` with `true` (it has a cluster leader).
    pub fn healthy(&self, i: usize) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.members[i].client)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = write!(
            stream,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.contains("\"health\":\"true\"")
    }

    /// Wait (polling, with a deadline) until member `i` is healthy.
    pub fn healthy_within(&self, i: usize, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if self.healthy(i) {
                return true;
            }
            if self.members[i].child.is_none() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Etcd {
    /// Run `etcdctl` (beside the etcd binary) against every member; its
    /// stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new(self.binary.with_file_name("etcdctl"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
