//! The commands of the CLI (`cli::Command`): each reads its inputs, does its
//! work through the core, engine and io modules, and says how it ended
//! (`Outcome`); `main` maps that to an exit code. `run --once` is
//! `engine::once`, the daemon `engine::daemon`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, PlanFormat, StatusFormat, SubusersFormat, ValidateFormat};
use crate::config::{self, Config};
use crate::diagnostic::{self, Diagnostic};
use crate::report::StatusSource;
use crate::shutdown::Signal;
use crate::{plan, report, store};
use anyhow::Context as _;
use tracing::Level;

/// How a command ended, as the exit code promises it.
pub enum Outcome {
    Ok,
    /// Invalid config, or a reset attempted in this run ended Failed.
    Failed,
    /// `run --once` stopped by a signal before it was done.
    Interrupted(Signal),
}

/// Run one command.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Validate { configs, format } => validate(&configs, format),
        Command::Plan {
            config,
            status,
            status_url,
            etcd,
            format,
            resolve,
            api_base,
            token_file,
        } => plan_command(
            &config,
            status.as_deref(),
            status_url.as_deref(),
            &etcd,
            format,
            resolve.then_some(Resolve {
                api_base: &api_base,
                token_file: token_file.as_deref(),
            }),
        ),
        Command::Run(args) => {
            crate::logging::init()?;
            if args.once && args.etcd.etcd.is_some() {
                anyhow::bail!(
                    "`run --once` does not take --etcd: an HA group is run by daemons (leave out \
                     --once), or export its status (`resetd status --etcd ... --export FILE`) and \
                     run that file once"
                );
            }
            if args.once {
                crate::once::run_once(&args)
            } else {
                match crate::daemon::main(args)? {
                    crate::daemon::Exit::Stopped => Ok(Outcome::Ok),
                    crate::daemon::Exit::InvalidConfig => Ok(Outcome::Failed),
                }
            }
        }
        Command::Status {
            config,
            status,
            format,
            etcd,
            export,
        } => {
            if etcd.etcd.is_some() && status.is_none() && config.is_none() {
                print_out(&crate::etcd::command::status(
                    &etcd,
                    format,
                    export.as_deref(),
                )?)?;
                return Ok(Outcome::Ok);
            }
            let st = match (status, config) {
                (Some(p), _) => read_explicit_status(&p)?,
                (None, Some(c)) => {
                    if !c.exists() {
                        anyhow::bail!("config {} does not exist (check --config)", c.display());
                    }
                    let path = store::default_status_path(&c);
                    if !path.exists() {
                        crate::logging::conclude(
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
            print_out(&crate::schema::json())?;
            Ok(Outcome::Ok)
        }
    }
}

fn validate(configs: &[PathBuf], format: ValidateFormat) -> anyhow::Result<Outcome> {
    let now = chrono::Utc::now();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut unreadable = Vec::new();
    let mut checked = 0;
    for path in configs {
        // A directory is one config of many files (SPEC §2b), checked as a set.
        let listed = config::listing::list(path)
            .and_then(|listing| Ok((listing.files.len(), config::check_listed(&listing, now)?)));
        match listed {
            Ok((files, diagnostics)) => {
                checked += files;
                all.extend(diagnostics);
            }
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
                "{checked} file(s) checked: {errors} error(s), {warnings} warning(s)\n"
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
fn load_config(path: &Path, status: Option<&Path>) -> anyhow::Result<Option<Config>> {
    let loaded = config::load_beside(path, status, chrono::Utc::now())
        .with_context(|| format!("cannot read config {}", path.display()))?;
    crate::logging::print_diagnostics(&loaded.diagnostics);
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
    etcd: &crate::cli::EtcdArgs,
    format: PlanFormat,
    resolve: Option<Resolve<'_>>,
) -> anyhow::Result<Outcome> {
    let Some(config) = load_config(config_path, status)? else {
        return Ok(Outcome::Failed);
    };
    if etcd.etcd.is_some() && (status.is_some() || status_url.is_some()) {
        anyhow::bail!("give one of --status, --status-url and --etcd: the status to plan against");
    }
    let (st, source) = match (status, status_url) {
        (None, None) if etcd.etcd.is_some() => {
            (crate::etcd::command::read(etcd)?, StatusSource::Etcd)
        }
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

/// `plan --resolve`: the account's sub-users and its own hash, by GET only.
fn fetch_directory(resolve: Resolve<'_>) -> anyhow::Result<crate::users::Directory> {
    let mut credentials = crate::api::Credentials::new(resolve.api_base, resolve.token_file);
    let api = credentials.api().map_err(|e| {
        anyhow::anyhow!("{e}: `plan --resolve` reads who owns each hash with it (GETs only)")
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let retry = crate::policy::RetryPolicy::for_reads();
    let (users, own) = runtime.block_on(async {
        let users = api.subusers(crate::api::GET_TIMEOUT, retry).await?;
        let own = api.own_hash(crate::api::GET_TIMEOUT, retry).await?;
        Ok::<_, crate::api::ApiError>((users, own))
    })?;
    Ok(crate::users::Directory::new(users, Some(own)))
}

/// `plan --status-url`: the status a running daemon serves.
fn fetch_status(url: &str) -> anyhow::Result<crate::status::Status> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(crate::api::get_status(url))?)
}

fn subusers(
    format: SubusersFormat,
    api_base: &str,
    token_file: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let mut credentials = crate::api::Credentials::new(api_base, token_file);
    let api = credentials.api().map_err(|e| {
        anyhow::anyhow!("{e}: `resetd subusers` reads the account's sub-users with it")
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let users = runtime.block_on(api.subusers(
        crate::api::GET_TIMEOUT,
        crate::policy::RetryPolicy::for_reads(),
    ))?;
    let text = match format {
        SubusersFormat::Table => report::subusers_table(&users),
        SubusersFormat::Json => serde_json::to_string_pretty(&users)? + "\n",
        SubusersFormat::Yaml => crate::users::groups_snippet(&users),
    };
    print_out(&text)?;
    Ok(Outcome::Ok)
}

/// A status file named with `--status` must exist: a typo would otherwise
/// show every entry as new. (The default path may be missing: nothing ran
/// yet. Only `run` creates a status file.)
fn read_explicit_status(path: &Path) -> anyhow::Result<crate::status::Status> {
    if !path.exists() {
        anyhow::bail!(
            "status file {} does not exist (check --status; only `resetd run` creates one)",
            path.display()
        );
    }
    Ok(store::read(path)?)
}

/// Write to stdout, treating a closed pipe (`| head`) as success.
pub(crate) fn print_out(text: &str) -> anyhow::Result<()> {
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
