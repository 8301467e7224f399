//! Helpers shared by the integration tests.

pub mod etcd;

use std::path::Path;
use std::process::{Command, Output};

/// The `resetd` binary built for this test run.
pub fn resetd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resetd"));
    // Tests never inherit a developer's token or API base by accident.
    cmd.env_remove("IPROYAL_API_TOKEN")
        .env_remove("RESETD_API_BASE")
        .env_remove("RESETD_LOG")
        .env_remove("RESETD_LOG_FORMAT");
    cmd
}

/// Run to completion, returning (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("resetd runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The repository root, for bundled examples and the committed schema.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The token every test hands resetd; it must never show up in its output.
pub const TOKEN: &str = "tok-SECRET-5f2c9a81e3";

pub const HEAD: &str = "# yaml-language-server: $schema=../schema/resetd.schema.json\napiVersion: resetd/v1\nkind: SessionResets\n";

/// A temporary directory with a config and its status file.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
    pub status: std::path::PathBuf,
}

impl Workspace {
    /// A workspace whose config is `HEAD` + `body`.
    pub fn new(body: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("resets.yaml");
        let status = dir.path().join("resets.status.yaml");
        let ws = Workspace {
            dir,
            config,
            status,
        };
        ws.write_config(body);
        ws
    }

    pub fn write_config(&self, body: &str) {
        std::fs::write(&self.config, format!("{HEAD}{body}")).unwrap();
    }

    /// `resetd run --once --config <config>` with the token in the
    /// environment; checks that the token leaked nowhere.
    pub fn run_once(&self, api_base: &str, extra: &[&str]) -> (i32, String, String) {
        let mut cmd = self.command(api_base);
        cmd.args(["run", "--once", "--config"])
            .arg(&self.config)
            .args(extra);
        self.run_checked(&mut cmd)
    }

    /// Run any command to completion, then check that the token leaked
    /// into neither its output nor the status file.
    pub fn run_checked(&self, cmd: &mut Command) -> (i32, String, String) {
        let result = run(cmd);
        self.assert_no_token_leak(&result.1, &result.2);
        result
    }

    /// `resetd` with the token and API base in its environment; the caller
    /// adds the subcommand and flags.
    pub fn command(&self, api_base: &str) -> Command {
        let mut cmd = resetd();
        cmd.env("IPROYAL_API_TOKEN", TOKEN)
            .env("RESETD_API_BASE", api_base)
            .env("RESETD_LOG", "debug")
            .current_dir(self.dir.path());
        cmd
    }

    /// `resetd run` on this workspace's config as the daemon tests start
    /// it: listening on an ephemeral port, a short debounce, a resync of an
    /// hour (so only the watcher can pass a test), JSON logs. The caller
    /// adds flags.
    pub fn daemon_command(&self, api_base: &str) -> Command {
        self.daemon_command_debounced(api_base, "50ms")
    }

    /// `daemon_command` with another `--debounce`.
    pub fn daemon_command_debounced(&self, api_base: &str, debounce: &str) -> Command {
        let mut cmd = self.command(api_base);
        cmd.args(["run", "--config"])
            .arg(&self.config)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--debounce",
                debounce,
                "--resync",
                "1h",
            ])
            .env("RESETD_LOG_FORMAT", "json");
        cmd
    }

    pub fn status(&self) -> resetd::status::Status {
        resetd::store::read(&self.status).unwrap()
    }

    /// The token appears in no output and not in the status file.
    pub fn assert_no_token_leak(&self, stdout: &str, stderr: &str) {
        assert!(!stdout.contains(TOKEN), "token leaked to stdout:\n{stdout}");
        assert!(!stderr.contains(TOKEN), "token leaked to stderr:\n{stderr}");
        let status = std::fs::read_to_string(&self.status).unwrap_or_default();
        assert!(!status.contains(TOKEN), "token leaked to the status file");
    }
}

/// `resetd` as a user that mode bits apply to: root ignores them, so as
/// root the binary runs as `nobody` (through `setpriv`). Nothing of the
/// caller's environment but what the test sets reaches it either way.
pub fn unprivileged_resetd() -> Command {
    let uid = run(Command::new("id").arg("-u")).1;
    let mut cmd = if uid.trim() == "0" {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_resetd"),
        ]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_resetd"))
    };
    cmd.env_remove("IPROYAL_API_TOKEN")
        .env_remove("RESETD_API_BASE")
        .env_remove("RESETD_LOG")
        .env_remove("RESETD_LOG_FORMAT");
    cmd
}

/// The lines a child writes to a pipe, collected as they come, to wait on
/// with a deadline.
#[derive(Clone)]
pub struct Lines(std::sync::Arc<(std::sync::Mutex<Vec<String>>, std::sync::Condvar)>);

impl Lines {
    /// Start collecting `pipe` (a child's stderr, say) on a thread.
    pub fn collect(pipe: impl std::io::Read + Send + 'static) -> Lines {
        use std::io::BufRead as _;
        let lines = Lines(Default::default());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.0.0.lock().unwrap().push(line);
                sink.0.1.notify_all();
            }
        });
        lines
    }

    /// Wait until a line contains `text`; panics after `deadline`.
    pub fn wait_for(&self, text: &str, deadline: std::time::Duration) -> String {
        let end = std::time::Instant::now() + deadline;
        let (lock, cond) = &*self.0;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no {text:?} within {deadline:?} in:\n{}",
                lines.join("\n")
            );
            lines = cond.wait_timeout(lines, left).unwrap().0;
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }
}

/// Run `git` in `dir` (a test's own work tree), with a throwaway identity;
/// its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=resetd-test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
