//! The `resetd` binary: parses flags, runs a command, maps the outcome to an
//! exit code (0 ok, 1 invalid config or failed reset, 2 usage/I/O/environment,
//! 130/143 `run --once` stopped by SIGINT/SIGTERM).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use resetd::cli::{
    Cli, Command, PlanFormat, RunArgs, StatusFormat, SubusersFormat, ValidateFormat,
};
use resetd::config::{self, Config};
use resetd::diagnostic::{self, Diagnostic};
use resetd::reconcile::Clock as _;
use resetd::report::StatusSource;
use resetd::shutdown::Signal;
use resetd::{plan, report, store};
use tracing::Level;

/// The longest `run --once` waits for notifications after its resets.
const NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How a command ended, as the exit code promises it.
enum Outcome {
    Ok,
    /// Invalid config, or a reset attempted in this run ended Failed.
    Failed,
    /// `run --once` stopped by a signal before it was done.
    Interrupted(Signal),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted(signal)) => ExitCode::from(signal.exit_code()),
        Err(e) => {
            resetd::logging::fatal(&e);
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Validate { configs, format } => validate(&configs, format),
        Command::Plan {
            config,
            status,
            status_url,
            format,
            resolve,
            api_base,
            token_file,
        } => plan_command(
            &config,
            status.as_deref(),
            status_url.as_deref(),
            format,
            resolve.then_some(Resolve {
                api_base: &api_base,
                token_file: token_file.as_deref(),
            }),
        ),
        Command::Run(args) => {
            resetd::logging::init()?;
            if args.once {
                run_once(&args)
            } else {
                match resetd::daemon::main(args)? {
                    resetd::daemon::Exit::Stopped => Ok(Outcome::Ok),
                    resetd::daemon::Exit::InvalidConfig => Ok(Outcome::Failed),
                }
            }
        }
        Command::Status {
            config,
            status,
            format,
        } => {
            let st = match (status, config) {
                (Some(p), _) => read_explicit_status(&p)?,
                (None, Some(c)) => {
                    if !c.exists() {
                        anyhow::bail!("config {} does not exist (check --config)", c.display());
                    }
                    let path = store::default_status_path(&c);
                    if !path.exists() {
                        resetd::logging::conclude(
                            Level::INFO,
                            &format!(
                                "no status yet: `resetd run` has not run this config (its \
                                 status will be {})",
                                path.display()
                            ),
                        );
                        return Ok(Outcome::Ok);
                    }
                    store::read(&path)?
                }
                (None, None) => anyhow::bail!("give --status or --config"),
            };
            let text = match format {
                StatusFormat::Human => report::status_human(&st),
                StatusFormat::Json => serde_json::to_string_pretty(&st)? + "\n",
            };
            print_out(&text)?;
            Ok(Outcome::Ok)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "resetd", &mut script);
            print_out(&String::from_utf8_lossy(&script))?;
            Ok(Outcome::Ok)
        }
        Command::Subusers {
            format,
            api_base,
            token_file,
        } => subusers(format, &api_base, token_file.as_deref()),
        Command::Schema => {
            print_out(&resetd::schema::json())?;
            Ok(Outcome::Ok)
        }
    }
}

fn validate(configs: &[PathBuf], format: ValidateFormat) -> anyhow::Result<Outcome> {
    let now = chrono::Utc::now();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut unreadable = Vec::new();
    for path in configs {
        match config::check_file(path, now) {
            Ok(diagnostics) => all.extend(diagnostics),
            Err(e) => unreadable.push((path, e)),
        }
    }
    // Machine formats carry unreadable files too: a CI step that reads only
    // the JSON must not see `[]` for a file nobody checked.
    let located: Vec<Diagnostic> = unreadable
        .iter()
        .map(|(path, e)| Diagnostic {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("cannot read the file: {e}"),
            severity: diagnostic::Severity::Error,
        })
        .collect();
    let text = match format {
        ValidateFormat::Human => {
            let mut text = diagnostic::render_human(&all);
            let errors = all.iter().filter(|d| d.is_error()).count();
            let warnings = all.len() - errors;
            text.push_str(&format!(
                "{} file(s) checked: {errors} error(s), {warnings} warning(s)\n",
                configs.len() - unreadable.len()
            ));
            text
        }
        ValidateFormat::Json => diagnostic::render_json(&[&all[..], &located[..]].concat()) + "\n",
        ValidateFormat::Github => diagnostic::render_github(&[&all[..], &located[..]].concat()),
    };
    print_out(&text)?;
    if !unreadable.is_empty() {
        let names: Vec<String> = unreadable
            .iter()
            .map(|(path, e)| format!("{}: {e}", path.display()))
            .collect();
        anyhow::bail!("cannot read {}", names.join("; "));
    }
    Ok(if all.iter().any(Diagnostic::is_error) {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Load a config for `plan`, printing its diagnostics to stderr. `None`
/// when it has errors.
fn load_config(path: &Path) -> anyhow::Result<Option<Config>> {
    let loaded = config::load(path, chrono::Utc::now())
        .with_context(|| format!("cannot read config {}", path.display()))?;
    resetd::logging::print_diagnostics(&loaded.diagnostics);
    Ok(loaded.config)
}

/// What `plan --resolve` needs: where the API is and its token.
struct Resolve<'a> {
    api_base: &'a str,
    token_file: Option<&'a Path>,
}

fn plan_command(
    config_path: &Path,
    status: Option<&Path>,
    status_url: Option<&str>,
    format: PlanFormat,
    resolve: Option<Resolve<'_>>,
) -> anyhow::Result<Outcome> {
    let Some(config) = load_config(config_path)? else {
        return Ok(Outcome::Failed);
    };
    let (st, source) = match (status, status_url) {
        (Some(path), _) => (read_explicit_status(path)?, StatusSource::File),
        (None, Some(url)) => (fetch_status(url)?, StatusSource::Daemon),
        (None, None) => {
            let path = store::default_status_path(config_path);
            let missing = !path.exists();
            let st = store::read(&path)?;
            // A journal left by a first run that never finished is a status too.
            if missing && st.resets.is_empty() {
                (st, StatusSource::Empty)
            } else {
                (st, StatusSource::File)
            }
        }
    };
    let mut inputs = plan::Inputs::new(false);
    let directory = match resolve {
        Some(r) => {
            let directory = std::sync::Arc::new(fetch_directory(r)?);
            inputs.users = plan::Users::Fetched(std::sync::Arc::clone(&directory));
            Some(directory)
        }
        None => None,
    };
    let p = plan::plan(&config, &st, chrono::Utc::now(), &inputs);
    let owners = directory.map(|d| report::Owners::of(&config, &p, &d));
    let text = match format {
        PlanFormat::Human => {
            let mut text = report::plan_human_against(&config, &p, source);
            if let Some(owners) = &owners {
                text.push_str(&owners.human());
            }
            text
        }
        PlanFormat::Json => {
            // Every hash of every run: written as it is made, never held
            // whole (a plan can send millions).
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = report::write_plan_json(&mut out, &config, &p, source, owners.as_ref())
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            ignore_broken_pipe(written)?;
            return Ok(Outcome::Ok);
        }
        PlanFormat::Markdown => {
            let mut text = report::plan_markdown(&config, &p, source);
            if let Some(owners) = &owners {
                text.push_str(&owners.markdown());
            }
            text
        }
    };
    print_out(&text)?;
    Ok(Outcome::Ok)
}

fn run_once(args: &RunArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load(&args.config, chrono::Utc::now())
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    resetd::logging::diagnostics(&loaded.diagnostics);
    let Some(config) = loaded.config else {
        tracing::error!(file = %args.config.display(), "config is invalid; nothing to run");
        return Ok(Outcome::Failed);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(reconcile_once(args, &config))
}

async fn reconcile_once(args: &RunArgs, config: &Config) -> anyhow::Result<Outcome> {
    // From here on SIGTERM/SIGINT ask the run to stop between batches and
    // write its status, instead of killing it mid-way.
    let signal = resetd::shutdown::signal()?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let caught = tokio::spawn(async move {
        let caught = signal.await;
        let _ = stop_tx.send(true);
        caught
    });
    let clock = resetd::reconcile::SystemClock;
    let resetd::start::Opened {
        mut store,
        mut status,
        path: status_path,
        credentials,
    } = resetd::start::open(args, config, clock.now())?;
    let events = resetd::notify::RunEvents {
        notifier: resetd::notify::start_available(config, std::sync::Arc::new(())),
    };
    let done = resetd::pass::Reconciler::new(args, credentials, clock)
        .pass(
            config,
            &mut status,
            resetd::pass::Ports {
                store: &mut store,
                observer: &events,
                control: &mut (),
                stop,
                source_revision: resetd::revision::of(
                    &args.config,
                    args.source_revision.as_deref(),
                ),
            },
        )
        .await?;
    // Delivery runs beside the resets; the run waits a bounded time for it.
    let undelivered = events.notifier.drain(NOTIFY_WAIT).await;
    if undelivered > 0 {
        tracing::warn!(
            "{undelivered} notification(s) not delivered within {NOTIFY_WAIT:?}; given up"
        );
    }
    print_out(&report::plan_human(&done.plan))?;
    if let Some(e) = &done.token_error {
        // `start` checked for a token; it went away since.
        tracing::error!("{e}: {} due reset(s) not sent", done.blocked);
    }
    if let Some(summary) = &done.summary {
        resetd::logging::conclude(
            Level::INFO,
            &format!(
                "{} succeeded, {} failed, {} dry run(s), {} expired, {} request(s); status in {}",
                summary.succeeded.len(),
                summary.failed.len(),
                summary.dry_runs.len(),
                summary.expired.len(),
                summary.requests,
                status_path.display()
            ),
        );
    }
    let stopped_early = done.summary.as_ref().is_none_or(|s| s.interrupted);
    // The task ends in the same step that sets the stop, so a stop implies
    // it has finished.
    let signal = if caught.is_finished() {
        caught.await.ok()
    } else {
        caught.abort();
        None
    };
    match signal {
        Some(signal) if stopped_early => {
            let left = done.unsent_batches;
            resetd::logging::conclude(
                Level::WARN,
                &format!(
                    "interrupted by {}: {left} batch(es) not sent; run again to resume (status in {})",
                    signal.name(),
                    status_path.display()
                ),
            );
            Ok(Outcome::Interrupted(signal))
        }
        _ => Ok(match done.summary {
            Some(s) if s.failed.is_empty() && done.blocked == 0 => Outcome::Ok,
            _ => Outcome::Failed,
        }),
    }
}

/// `plan --resolve`: the account's sub-users and its own hash, by GET only.
fn fetch_directory(resolve: Resolve<'_>) -> anyhow::Result<resetd::users::Directory> {
    let mut credentials = resetd::api::Credentials::new(resolve.api_base, resolve.token_file);
    let api = credentials.api().map_err(|e| {
        anyhow::anyhow!("{e}: `plan --resolve` reads who owns each hash with it (GETs only)")
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let retry = resetd::policy::RetryPolicy::for_reads();
    let (users, own) = runtime.block_on(async {
        let users = api.subusers(resetd::api::GET_TIMEOUT, retry).await?;
        let own = api.own_hash(resetd::api::GET_TIMEOUT, retry).await?;
        Ok::<_, resetd::api::ApiError>((users, own))
    })?;
    Ok(resetd::users::Directory::new(users, Some(own)))
}

/// `plan --status-url`: the status a running daemon serves.
fn fetch_status(url: &str) -> anyhow::Result<resetd::status::Status> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(resetd::api::get_status(url))?)
}

fn subusers(
    format: SubusersFormat,
    api_base: &str,
    token_file: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let mut credentials = resetd::api::Credentials::new(api_base, token_file);
    let api = credentials.api().map_err(|e| {
        anyhow::anyhow!("{e}: `resetd subusers` reads the account's sub-users with it")
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let users = runtime.block_on(api.subusers(
        resetd::api::GET_TIMEOUT,
        resetd::policy::RetryPolicy::for_reads(),
    ))?;
    let text = match format {
        SubusersFormat::Table => report::subusers_table(&users),
        SubusersFormat::Json => serde_json::to_string_pretty(&users)? + "\n",
        SubusersFormat::Yaml => resetd::users::groups_snippet(&users),
    };
    print_out(&text)?;
    Ok(Outcome::Ok)
}

/// A status file named with `--status` must exist: a typo would otherwise
/// show every entry as new. (The default path may be missing: nothing ran
/// yet. Only `run` creates a status file.)
fn read_explicit_status(path: &Path) -> anyhow::Result<resetd::status::Status> {
    if !path.exists() {
        anyhow::bail!(
            "status file {} does not exist (check --status; only `resetd run` creates one)",
            path.display()
        );
    }
    Ok(store::read(path)?)
}

/// Write to stdout, treating a closed pipe (`| head`) as success.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    ignore_broken_pipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

/// A write to stdout whose reader went away (`| head`) succeeded.
fn ignore_broken_pipe(written: std::io::Result<()>) -> anyhow::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
