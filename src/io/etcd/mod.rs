//! High availability on etcd (SPEC §7): the client of etcd's v3 JSON
//! gateway (`client`, its JSON in `wire`), the key layout and status reads (`layout`),
//! leadership with its lease, fencing token and self-stop deadline
//! (`leader`), the leader's `StatusStore` (`store`) and config skew
//! between members (`skew`). The only code that knows etcd exists; the
//! pass sees a `StatusStore`.

pub mod client;
pub mod command;
pub mod layout;
pub mod leader;
pub mod skew;
pub mod store;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use client::{Auth, Client, EtcdError, TlsFiles};
pub use layout::Keys;
pub use leader::{Leadership, MemberInfo, Term};
pub use store::EtcdStore;

/// How long a one-off command (`status`, `plan`) waits for one etcd call.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What `resetd status --etcd` shows of a group besides its status.
#[derive(Debug, serde::Serialize)]
pub struct Group {
    pub group: String,
    pub leader: Option<String>,
    pub members: Vec<Member>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub name: String,
    pub role: String,
    pub config_digest: Option<String>,
    pub source_revision: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// The leader and members of a group.
pub async fn group(client: &Client, keys: &Keys, name: &str) -> Result<Group, EtcdError> {
    let leader = client
        .get(&keys.leader(), COMMAND_TIMEOUT)
        .await?
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
    let prefix = keys.members();
    let members = client
        .range_prefix(&prefix, 100, client::MEMBERS, COMMAND_TIMEOUT)
        .await?
        .into_iter()
        .filter_map(|kv| {
            let name = kv.key.strip_prefix(&prefix)?.to_owned();
            let info = MemberInfo::read(&kv.value)?;
            Some(Member {
                role: if leader.as_deref() == Some(name.as_str()) {
                    "leader".into()
                } else {
                    "standby".into()
                },
                name,
                config_digest: info.config_digest,
                source_revision: info.source_revision,
                since: info.since,
            })
        })
        .collect();
    Ok(Group {
        group: name.to_owned(),
        leader,
        members,
    })
}

/// A client and the keys of a group, from the flags.
pub fn connect(args: &crate::cli::EtcdArgs) -> anyhow::Result<(Arc<Client>, Keys)> {
    let Some(endpoints) = &args.etcd else {
        anyhow::bail!("--etcd is not set");
    };
    let tls = TlsFiles {
        ca: args.etcd_ca.clone(),
        cert: args.etcd_cert.clone(),
        key: args.etcd_key.clone(),
    };
    let client = Client::new(endpoints, &tls, Auth::from_env())?;
    Ok((Arc::new(client), Keys::new(&args.ha_group)))
}
