//! Command-line interface: flags, and the one place they are documented.
//!
//! `--help` is generated from these doc comments; the README's flag reference
//! points here rather than restating them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Reconcile a reviewed YAML file of IPRoyal session resets into
/// `DELETE /v1/sessions` calls, and write back what happened.
#[derive(Debug, Parser)]
#[command(name = "resetd", version, about, long_about = None)]
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
        /// Config files to check.
        #[arg(required = true, value_name = "CONFIG")]
        configs: Vec<PathBuf>,
        /// Output format: `human` (rustc-like), `json` (array of diagnostics),
        /// or `github` (workflow commands that annotate the PR).
        #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
        format: ValidateFormat,
    },
    /// Print the JSON Schema of the config file (equals schema/resetd.schema.json).
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Human,
    Json,
    Github,
}
