//! The `resetd` binary: parses flags, runs a command, maps the outcome to an
//! exit code (0 ok, 1 invalid config or failed reset, 2 usage/I/O/environment).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use resetd::cli::{Cli, Command, ValidateFormat};
use resetd::diagnostic::{self, Diagnostic};

/// How a command ended, as the exit code promises it.
enum Outcome {
    Ok,
    /// Invalid config, or a reset attempted in this run ended Failed.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("resetd: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Validate { configs, format } => validate(&configs, format),
        Command::Schema => {
            print_out(&resetd::schema::json())?;
            Ok(Outcome::Ok)
        }
    }
}

fn validate(configs: &[std::path::PathBuf], format: ValidateFormat) -> anyhow::Result<Outcome> {
    let now = chrono::Utc::now();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut unreadable = Vec::new();
    for path in configs {
        match resetd::config::load(path, now) {
            Ok(loaded) => all.extend(loaded.diagnostics),
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
        }
    }
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
        ValidateFormat::Json => diagnostic::render_json(&all) + "\n",
        ValidateFormat::Github => diagnostic::render_github(&all),
    };
    print_out(&text)?;
    if !unreadable.is_empty() {
        anyhow::bail!("cannot read {}", unreadable.join("; "));
    }
    Ok(if all.iter().any(Diagnostic::is_error) {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Write to stdout, treating a closed pipe (`| head`) as success.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
