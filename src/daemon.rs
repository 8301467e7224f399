//! The long-running daemon (SPEC §5).

use crate::cli::RunArgs;

pub fn main(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("the daemon is not available yet; use `resetd run --once`")
}
