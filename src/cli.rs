//! Command-line interface: flags, and the one place they are documented.
//!
//! `--help` is generated from these doc comments; the README's flag reference
//! points here rather than restating them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes:
  0    ok
  1    invalid config, or a reset attempted by `run --once` ended Failed
  2    usage, I/O or environment error (missing token, locked, corrupt or
       unwritable status)
  130  `run --once` stopped by SIGINT (Ctrl-C) before it was done
  143  `run --once` stopped by SIGTERM before it was done
       (either way the request in flight may finish within --shutdown-timeout,
       the status is written, and the next run resumes with what was not sent)

Environment:
  IPROYAL_API_TOKEN  the API token (or use --token-file); required only when a real request is due
  RESETD_API_BASE    API base URL (default https://resi-api.iproyal.com/v1)
  RESETD_LOG         log filter, e.g. `info`, `debug`, `resetd=debug` (default info)
  RESETD_LOG_FORMAT  `text` (default) or `json`

Examples:
  resetd validate --format github resets.yaml
  resetd plan --config resets.yaml --format markdown
  resetd run --config resets.yaml --once --dry-run
  resetd run --config resets.yaml --token-file /run/secrets/token --listen 127.0.0.1:9090
  resetd completions bash > /etc/bash_completion.d/resetd";

/// Reconcile a reviewed YAML file of IPRoyal session resets into
/// `DELETE /v1/sessions` calls, and write back what happened.
#[derive(Debug, Parser)]
#[command(name = "resetd", version, propagate_version = true, about, long_about = None, after_long_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check config files against the schema and resetd's rules (for PR checks).
    ///
    /// Exit 0: valid (warnings allowed); 1: at least one error; 2: a file could not be read.
    Validate {
        /// Config files to check; a directory is one config of many files,
        /// checked as a set.
        #[arg(required = true, value_name = "CONFIG")]
        configs: Vec<PathBuf>,
        /// Output format: `human` (rustc-like), `json` (array of diagnostics),
        /// or `github` (workflow commands that annotate the PR).
        #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
        format: ValidateFormat,
    },
    /// Show what `run` would do now, and why, per entry. Never sends a reset;
    /// reads the token and calls the API (GETs only) just with `--resolve`.
    Plan {
        /// The config: a file, or a directory of files.
        #[arg(long, value_name = "CONFIG")]
        config: PathBuf,
        /// Status file [default: beside the config, `<stem>.status.yaml`;
        /// `<dir>.status.yaml` for a directory].
        /// Without one, the plan is made against an empty status and says so.
        #[arg(long, value_name = "PATH")]
        status: Option<PathBuf>,
        /// Read the status from a running daemon instead: its `--listen`
        /// address and `/status`, e.g. http://127.0.0.1:9090/status. No token
        /// is sent; redirects are not followed.
        #[arg(long, value_name = "URL", conflicts_with = "status")]
        status_url: Option<String>,
        /// Read the shared status of an HA group from etcd (`--etcd`).
        #[command(flatten)]
        etcd: EtcdArgs,
        /// Output format; `markdown` is a table fit for a PR comment.
        #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
        format: PlanFormat,
        /// Look up who every hash belongs to (a sub-user, the account, or
        /// `unknown`: most likely a wrong hash) and resolve `users:`. Needs
        /// the token; calls only GET /residential-subusers and GET /me. Run
        /// it on trusted branches only.
        #[arg(long)]
        resolve: bool,
        /// API base URL, for `--resolve`.
        #[arg(long, env = "RESETD_API_BASE", default_value = crate::api::DEFAULT_API_BASE, value_name = "URL")]
        api_base: String,
        /// Read the API token from this file, for `--resolve`.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// Reconcile: send the resets that are due and write the status file.
    ///
    /// With `--once`, reconcile what is due now and exit (0, or 1 if a reset
    /// attempted in this run ended Failed; 130/143 if SIGINT/SIGTERM stopped
    /// it). Without it, run as a daemon that watches the config and fires
    /// scheduled triggers on time.
    Run(RunArgs),
    /// Print the status file as a table or JSON.
    Status {
        /// Find the status file beside this config.
        #[arg(long, value_name = "CONFIG", conflicts_with = "status")]
        config: Option<PathBuf>,
        /// The status file.
        #[arg(long, value_name = "PATH", required_unless_present_any = ["config", "etcd"])]
        status: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = StatusFormat::Human)]
        format: StatusFormat,
        /// With `--etcd`, the shared status, its leader and members.
        #[command(flatten)]
        etcd: EtcdArgs,
        /// With `--etcd`: write the shared status to this file, one that a
        /// single `resetd run --status FILE` accepts (a backup, or leaving HA).
        #[arg(long, value_name = "FILE", requires = "etcd")]
        export: Option<PathBuf>,
    },
    /// List the account's sub-users (username and hash only), to name them
    /// in `users:`. Needs the token; only reads (`GET /residential-subusers`).
    Subusers {
        /// `table`; `json` (an array of {username, hash}); or `yaml`, a
        /// `groups:` snippet ready to paste into a config.
        #[arg(long, value_enum, default_value_t = SubusersFormat::Table)]
        format: SubusersFormat,
        /// IPRoyal API base URL.
        #[arg(long, env = "RESETD_API_BASE", default_value = crate::api::DEFAULT_API_BASE, value_name = "URL")]
        api_base: String,
        /// Read the API token from this file instead of IPROYAL_API_TOKEN.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// Print the JSON Schema of the config file (equals schema/resetd.schema.json).
    Schema,
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The config: a file, or a directory of files.
    #[arg(long, value_name = "CONFIG")]
    pub config: PathBuf,
    /// Status file [default: beside the config, `<stem>.status.yaml`;
    /// `<dir>.status.yaml` for a directory]; set it when the config sits on
    /// a read-only mount.
    #[arg(long, value_name = "PATH")]
    pub status: Option<PathBuf>,
    /// Reconcile once and exit instead of running as a daemon.
    #[arg(long)]
    pub once: bool,
    /// Send nothing: record what would be sent (phase DryRun). No token needed.
    #[arg(long)]
    pub dry_run: bool,
    /// IPRoyal API base URL.
    #[arg(long, env = "RESETD_API_BASE", default_value = crate::api::DEFAULT_API_BASE, value_name = "URL")]
    pub api_base: String,
    /// Read the API token from this file (trailing newline trimmed) instead of
    /// the IPROYAL_API_TOKEN environment variable.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Serve /healthz, /readyz, /metrics and /status on this address
    /// (e.g. 127.0.0.1:9090). Off by default. The daemon's: not with --once.
    #[arg(long, value_name = "ADDR", conflicts_with = "once")]
    pub listen: Option<std::net::SocketAddr>,
    /// Quiet period after a config change before reloading.
    #[arg(long, value_name = "DUR", default_value = "200ms", value_parser = parse_duration)]
    pub debounce: std::time::Duration,
    /// Re-read the config this often even without file events (lost events, NFS).
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub resync: std::time::Duration,
    /// The commit the config came from, recorded with every run [default:
    /// the HEAD commit of the git work tree the config lies in, if any].
    #[arg(long, env = "RESETD_SOURCE_REVISION", value_name = "REV")]
    pub source_revision: Option<String>,
    /// First wait before an entry that failed for a passing reason (API
    /// unreachable, overloaded, token refused) is retried on its own; it
    /// doubles with each retry, up to 60 times this. Shorter only for tests.
    #[arg(long, value_name = "DUR", default_value = "1m", value_parser = parse_retry_backoff)]
    pub retry_backoff: std::time::Duration,
    /// On SIGTERM/SIGINT, how long a request in flight may take to finish
    /// (daemon and `--once`).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// High availability: several daemons share one status in etcd and one
    /// of them, the leader, sends. `--status FILE` is then only imported,
    /// once, into a group that has no status yet.
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// This member's name in the HA group [default: `<hostname>-<pid>`].
    #[arg(long, env = "RESETD_MEMBER", value_name = "NAME", requires = "etcd", value_parser = parse_name)]
    pub member: Option<String>,
    /// The leader's lease TTL (2s to 60s, whole seconds): a standby takes
    /// over within about this long after the leader dies.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_lease)]
    pub ha_lease: std::time::Duration,
}

/// Where the shared status of an HA group is (SPEC §7).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated http:// or https:// URLs (v3 API,
    /// etcd 3.4 or newer). Credentials: RESETD_ETCD_USERNAME and
    /// RESETD_ETCD_PASSWORD.
    #[arg(long, env = "RESETD_ETCD_ENDPOINTS", value_name = "URLS")]
    pub etcd: Option<String>,
    /// The HA group: every key lives under /resetd/<group>/.
    #[arg(long, value_name = "NAME", default_value = "default", value_parser = parse_name)]
    pub ha_group: String,
    /// CA certificate(s) of the etcd endpoints (PEM).
    #[arg(long, value_name = "FILE", requires = "etcd")]
    pub etcd_ca: Option<PathBuf>,
    /// Client certificate for etcd (PEM), with --etcd-key.
    #[arg(long, value_name = "FILE", requires_all = ["etcd", "etcd_key"])]
    pub etcd_cert: Option<PathBuf>,
    /// Client key for etcd (PEM), with --etcd-cert.
    #[arg(long, value_name = "FILE", requires_all = ["etcd", "etcd_cert"])]
    pub etcd_key: Option<PathBuf>,
}

/// A group or member name: what an entry id may be.
fn parse_name(s: &str) -> Result<String, String> {
    let ok = s.len() <= 63
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
        })
        && !s.is_empty();
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}`: 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit"
        ))
    }
}

/// etcd counts lease TTLs in whole seconds.
fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d.subsec_nanos() != 0 || d.as_secs() < 2 || d.as_secs() > 60 {
        return Err(format!("`{s}`: whole seconds from 2s to 60s"));
    }
    Ok(d)
}

impl RunArgs {
    /// The planner's inputs the flags give (`--dry-run`, `--retry-backoff`);
    /// a pass adds the token, the sub-users and the source revision.
    pub fn plan_inputs(&self) -> crate::plan::Inputs {
        crate::plan::Inputs {
            retry_backoff: self.retry_backoff,
            ..crate::plan::Inputs::new(self.dry_run)
        }
    }
}

/// At least 100ms: a zero back-off would retry a failing entry in a loop.
fn parse_retry_backoff(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d < std::time::Duration::from_millis(100) {
        return Err(format!("`{s}` is too short: at least 100ms"));
    }
    Ok(d)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration `{s}`: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubusersFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Human,
    Json,
    Github,
}
