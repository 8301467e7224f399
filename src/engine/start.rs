//! What every `resetd run` does before its first request, `--once` and the
//! daemon alike: find the status file, make sure there is a token if a real
//! request is due, and only then lock and open the status.
//!
//! # Guarantees
//! - A missing token (exit 2) leaves the status directory as it was: no
//!   lock, journal or status file is created, no journal folded, no temp
//!   file removed.
//! - The lock is held before any request, and the caller plans from the
//!   status as it is under the lock: the unlocked read is reused only if the
//!   files did not change in between (`Store::open_after`).
//! - A status directory resetd cannot write names `--status` as the way out.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::api::Credentials;
use crate::cli::RunArgs;
use crate::config::Config;
use crate::status::Status;
use crate::store::{self, Store, StoreError};

/// The status, locked, and where the token comes from.
pub struct Opened {
    pub store: Store,
    pub status: Status,
    pub path: PathBuf,
    pub credentials: Credentials,
}

/// Check the token (when a real request is due under `config`), then lock
/// and open the status file.
pub fn open(args: &RunArgs, config: &Config, now: DateTime<Utc>) -> anyhow::Result<Opened> {
    let path = args
        .status
        .clone()
        .unwrap_or_else(|| store::default_status_path(&args.config));
    let mut credentials = Credentials::new(&args.api_base, args.token_file.as_deref());
    // A dry run never needs a token, so it skips this read of the status.
    let unlocked = if args.dry_run {
        None
    } else {
        let unlocked = store::read_unlocked(&path)?;
        // The token read here serves the first pass too.
        let inputs = args.plan_inputs();
        if crate::plan::plan(config, &unlocked.status, now, &inputs).needs_api() {
            credentials.api().map_err(|e| {
                anyhow::anyhow!("{e}; resets are due and not in dry run (nothing was sent)")
            })?;
        }
        Some(unlocked)
    };
    let opened = Store::open_after(&path, unlocked);
    let (store, status) = opened.map_err(|e| match unwritable_hint(&e, args) {
        Some(hint) => anyhow::anyhow!("{e}; {hint}"),
        None => e.into(),
    })?;
    Ok(Opened {
        store,
        status,
        path,
        credentials,
    })
}

/// The way out when the status directory cannot be written. By default the
/// status file goes beside the config, which is often a read-only mount
/// (a ConfigMap, a deployed checkout).
fn unwritable_hint(e: &StoreError, args: &RunArgs) -> Option<&'static str> {
    let StoreError::Io { error, .. } = e else {
        return None;
    };
    let unwritable = matches!(
        error.kind(),
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
    );
    Some(match (unwritable, args.status.is_some()) {
        (false, _) => return None,
        (true, true) => "give --status a path in a directory resetd can write",
        (true, false) => {
            "the status file goes beside the config unless --status says otherwise, and resetd \
             cannot write there (a read-only mount?): give --status PATH in a writable directory"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(extra: &[&str]) -> RunArgs {
        let cli = crate::cli::Cli::parse_from(
            ["resetd", "run", "--config", "/etc/resetd/resets.yaml"]
                .iter()
                .chain(extra),
        );
        match cli.command {
            crate::cli::Command::Run(args) => args,
            other => panic!("{other:?}"),
        }
    }

    fn io(kind: std::io::ErrorKind) -> StoreError {
        StoreError::Io {
            action: "cannot open lock file",
            path: "/etc/resetd/resets.status.yaml.lock".into(),
            error: kind.into(),
        }
    }

    #[test]
    fn a_read_only_or_forbidden_directory_suggests_status() {
        use std::io::ErrorKind::{NotFound, PermissionDenied, ReadOnlyFilesystem};
        for kind in [ReadOnlyFilesystem, PermissionDenied] {
            let hint = unwritable_hint(&io(kind), &args(&[])).unwrap();
            assert!(hint.contains("give --status PATH"), "{hint}");
            let hint = unwritable_hint(&io(kind), &args(&["--status", "/x"])).unwrap();
            assert!(hint.contains("give --status a path"), "{hint}");
        }
        assert_eq!(unwritable_hint(&io(NotFound), &args(&[])), None);
        let locked = StoreError::Locked {
            path: "/s".into(),
            holder: "1".into(),
        };
        assert_eq!(unwritable_hint(&locked, &args(&[])), None);
    }
}
