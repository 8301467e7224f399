//! `resetd status --etcd` and `plan --etcd`: the shared status read by a
//! one-off command, and `--export` to a status file.
//!
//! # Guarantees
//! - Reads only; never writes to etcd.
//! - An export is a status file written atomically that a single
//!   `resetd run --status FILE` accepts (what `store::write_status` writes).

use std::path::Path;

use super::{COMMAND_TIMEOUT, layout};
use crate::cli::{EtcdArgs, StatusFormat};
use crate::status::Status;

/// The shared status of the group `args` names.
pub fn read(args: &EtcdArgs) -> anyhow::Result<Status> {
    let (client, keys) = super::connect(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let loaded = runtime.block_on(layout::load(&client, &keys, COMMAND_TIMEOUT))?;
    Ok(loaded.status)
}

/// `resetd status --etcd`: the leader and members, then the status; or
/// with `export`, the status written to that file.
pub fn status(
    args: &EtcdArgs,
    format: StatusFormat,
    export: Option<&Path>,
) -> anyhow::Result<String> {
    let (client, keys) = super::connect(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (group, loaded) = runtime.block_on(async {
        let group = super::group(&client, &keys, &args.ha_group).await?;
        let loaded = layout::load(&client, &keys, COMMAND_TIMEOUT).await?;
        Ok::<_, anyhow::Error>((group, loaded))
    })?;
    if let Some(path) = export {
        // A journal beside the file (left by a single instance killed before
        // the move to HA) would be replayed over the export when it is read.
        let mut journal = path.as_os_str().to_owned();
        journal.push(".journal");
        let journal = std::path::PathBuf::from(journal);
        if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0) {
            anyhow::bail!(
                "{} has a journal beside it ({}), which a run would replay over the export; \
                 move both away first, or export to another path (nothing was written)",
                path.display(),
                journal.display()
            );
        }
        crate::store::write_status(path, &loaded.status)?;
        return Ok(format!(
            "exported {} entr{} of HA group {} to {}\n",
            loaded.status.resets.len(),
            if loaded.status.resets.len() == 1 {
                "y"
            } else {
                "ies"
            },
            args.ha_group,
            path.display()
        ));
    }
    Ok(match format {
        StatusFormat::Json => {
            let value = serde_json::json!({
                "group": group.group,
                "leader": group.leader,
                "members": group.members,
                "status": loaded.status,
            });
            serde_json::to_string_pretty(&value)? + "\n"
        }
        StatusFormat::Human => {
            let mut text = format!(
                "HA group {}: leader {}\n",
                group.group,
                group.leader.as_deref().map_or("(none)".into(), shown)
            );
            if let Some(meta) = loaded.meta.as_ref().filter(|m| m.imported_from.is_some()) {
                text.push_str(&format!(
                    "imported from {} at {}\n",
                    meta.imported_from.as_deref().unwrap_or_default(),
                    meta.imported_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                ));
            }
            text.push_str("MEMBER\tROLE\tCONFIG DIGEST\tSOURCE REVISION\tSINCE\n");
            for m in &group.members {
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    shown(&m.name),
                    m.role,
                    m.config_digest.as_deref().map_or("-".into(), shown),
                    m.source_revision.as_deref().map_or("-".into(), shown),
                    m.since
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into())
                ));
            }
            text.push('\n');
            text.push_str(&crate::report::status_human(&loaded.status));
            text
        }
    })
}

/// Text anyone able to write to etcd chose, fit for a terminal: control
/// characters replaced, at most 100 characters.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(100).is_some() {
        out.push('…');
    }
    out
}
