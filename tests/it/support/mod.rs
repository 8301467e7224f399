//! Helpers shared by the integration tests.

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
