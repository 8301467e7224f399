//! The `resetd` binary: parses flags, runs a command, maps the outcome to an
//! exit code (0 ok, 1 invalid config or failed reset, 2 usage/I/O/environment,
//! 130/143 `run --once` stopped by SIGINT/SIGTERM).

use std::process::ExitCode;

use clap::Parser as _;
use resetd::cli::Cli;
use resetd::commands::{Outcome, run};

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
