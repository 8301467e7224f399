//! Where the shared status lives in etcd, and how it is read back.
//!
//! Under `/resetd/<group>/`: `leader` (the leader's name, bound to its
//! lease), `members/<name>` (each member's `MemberInfo`, bound to its
//! lease), `status/meta` (everything in a status but its entries),
//! `status/entries/<id>` (one entry's status) and
//! `status/runs/<id>/<startedAt>/<n>` (the hash list of an unfinished run,
//! in chunks: a run of a million hashes is far above etcd's 1.5 MiB limit
//! for one request, and its list is written once per run, not per batch).
//!
//! # Guarantees
//! - Reading is one paged range over `status/` at one revision, bounded in
//!   keys; a key that does not read back (bad JSON, a run list with a
//!   chunk missing) is a located error naming the key, never skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::{Client, EtcdError, Kv};

use crate::status::{EntryStatus, RunHashes, Status};

/// The most a status read keeps: entries, run chunks and meta. A million
/// hashes in runs and 100,000 entries fit many times over.
const LIMITS: super::client::Limits = super::client::Limits {
    keys: 2_000_000,
    bytes: 256 * 1024 * 1024,
};
/// Keys per page of a status read.
const PAGE: usize = 100;

/// The keys of one HA group.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(group: &str) -> Keys {
        Keys {
            prefix: format!("/resetd/{group}/"),
        }
    }

    pub fn leader(&self) -> String {
        format!("{}leader", self.prefix)
    }

    pub fn members(&self) -> String {
        format!("{}members/", self.prefix)
    }

    pub fn member(&self, name: &str) -> String {
        format!("{}members/{name}", self.prefix)
    }

    pub fn status(&self) -> String {
        format!("{}status/", self.prefix)
    }

    pub fn meta(&self) -> String {
        format!("{}status/meta", self.prefix)
    }

    fn entries(&self) -> String {
        format!("{}status/entries/", self.prefix)
    }

    pub fn entry(&self, id: &str) -> String {
        format!("{}{id}", self.entries())
    }

    pub fn blobs(&self) -> String {
        format!("{}status/blobs/", self.prefix)
    }

    /// Every chunk of the value of entry `id` whose digest is `digest`.
    pub fn blob(&self, id: &str, digest: &str) -> String {
        format!("{}{id}/{digest}/", self.blobs())
    }

    pub fn blob_chunk(&self, id: &str, digest: &str, n: usize) -> String {
        format!("{}{n:06}", self.blob(id, digest))
    }

    pub fn runs(&self) -> String {
        format!("{}status/runs/", self.prefix)
    }

    /// Every chunk of the list of `id`'s run started at `started`.
    pub fn run(&self, id: &str, started: DateTime<Utc>) -> String {
        format!("{}{id}/{}/", self.runs(), started.timestamp_micros())
    }

    pub fn chunk(&self, id: &str, started: DateTime<Utc>, n: usize) -> String {
        format!("{}{n:06}", self.run(id, started))
    }
}

/// `status/meta`: the status-level fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub updated_at: Option<DateTime<Utc>>,
    pub config_digest: Option<String>,
    /// An import under way (the file): set before its first entry is
    /// written, cleared by the save that completes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importing: Option<String>,
    /// The status file this group's status was imported from, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_at: Option<DateTime<Utc>>,
}

/// `status/entries/<id>`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRef<'a> {
    pub entry: &'a EntryStatus,
    /// The chunks of the unfinished run's list, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_list: Option<RunList>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntryDoc {
    entry: EntryStatus,
    #[serde(default)]
    run_list: Option<RunList>,
}

/// `status/entries/<id>` of an entry too large for one etcd request (a
/// failed run's confirmed hashes, say): its value is in chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// The first 16 hex digits of the value's sha256: names its chunks.
    pub digest: String,
    pub chunks: usize,
    pub bytes: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    pub blob: Blob,
}

/// Where an unfinished run's hash list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunList {
    pub started_at: DateTime<Utc>,
    pub chunks: usize,
    pub hashes: usize,
}

/// A status read from etcd, and what it says of itself.
#[derive(Debug, Default)]
pub struct Loaded {
    pub status: Status,
    /// `None`: the group has no status yet.
    pub meta: Option<Meta>,
    /// Every key under `status/` and its value's digest, as read.
    pub digests: BTreeMap<String, [u8; 32]>,
    /// Runs whose list is in etcd: entry id → (startedAt, chunk count).
    pub listed: BTreeMap<String, RunList>,
    /// Entries whose value is in chunks: entry id → its blob's digest.
    pub blobs: BTreeMap<String, String>,
    /// Prefixes of chunks no entry points at (left by a term cut off
    /// between writing them and the entry): the next term deletes them.
    pub orphans: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error("the shared status in etcd is corrupt at {key}: {reason}; nothing was changed")]
    Corrupt { key: String, reason: String },
}

/// sha256 of a value: whether it needs writing again.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Read the whole status of a group.
pub async fn load(client: &Client, keys: &Keys, timeout: Duration) -> Result<Loaded, LoadError> {
    let kvs = client
        .range_prefix(&keys.status(), PAGE, LIMITS, timeout)
        .await?;
    assemble(keys, kvs)
}

/// The status the keys under `status/` make.
pub fn assemble(keys: &Keys, kvs: Vec<Kv>) -> Result<Loaded, LoadError> {
    let corrupt = |key: &str, reason: String| LoadError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let mut loaded = Loaded::default();
    let mut chunks: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut blob_chunks: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let (entries, runs, meta) = (keys.entries(), keys.runs(), keys.meta());
    let blobs = keys.blobs();
    for kv in kvs {
        loaded.digests.insert(kv.key.clone(), digest(&kv.value));
        if kv.key == meta {
            let m: Meta =
                serde_json::from_slice(&kv.value).map_err(|e| corrupt(&kv.key, e.to_string()))?;
            loaded.status.updated_at = m.updated_at;
            loaded.status.config_digest.clone_from(&m.config_digest);
            loaded.meta = Some(m);
        } else if let Some(id) = kv.key.strip_prefix(&entries) {
            let value = match serde_json::from_slice::<BlobRef>(&kv.value) {
                Ok(r) => {
                    let value = join_blob(&blob_chunks, &keys.blob(id, &r.blob.digest), &r.blob)
                        .map_err(|reason| corrupt(&kv.key, reason))?;
                    loaded.blobs.insert(id.to_owned(), r.blob.digest);
                    value
                }
                Err(_) => kv.value,
            };
            let doc: EntryDoc =
                serde_json::from_slice(&value).map_err(|e| corrupt(&kv.key, e.to_string()))?;
            if let Some(list) = doc.run_list {
                loaded.listed.insert(id.to_owned(), list);
            }
            loaded.status.resets.insert(id.to_owned(), doc.entry);
        } else if kv.key.starts_with(&runs) {
            chunks.insert(kv.key, kv.value);
        } else if kv.key.starts_with(&blobs) {
            // Keys come in order: `blobs/` before `entries/`.
            blob_chunks.insert(kv.key, kv.value);
        }
        // Anything else under status/ is not ours to read.
    }
    let named: std::collections::BTreeSet<String> = loaded
        .listed
        .iter()
        .map(|(id, list)| keys.run(id, list.started_at))
        .chain(loaded.blobs.iter().map(|(id, d)| keys.blob(id, d)))
        .collect();
    let chunk_prefix = |key: &String| key.rsplit_once('/').map(|(p, _)| format!("{p}/"));
    let seen: std::collections::BTreeSet<String> = chunks
        .keys()
        .chain(blob_chunks.keys())
        .filter_map(chunk_prefix)
        .collect();
    loaded.orphans = seen.difference(&named).cloned().collect();
    for (id, list) in &loaded.listed {
        // Only the list of the run the entry is in counts.
        let current = loaded.status.resets.get(id).and_then(|e| e.run.as_ref());
        if current.is_none() {
            continue;
        }
        let mut hashes = Vec::with_capacity(list.hashes);
        for n in 0..list.chunks {
            let key = keys.chunk(id, list.started_at, n);
            let bytes = chunks
                .get(&key)
                .ok_or_else(|| corrupt(&key, "a chunk of the run's hash list is missing".into()))?;
            let part: Vec<String> =
                serde_json::from_slice(bytes).map_err(|e| corrupt(&key, e.to_string()))?;
            hashes.extend(part);
        }
        if hashes.len() != list.hashes {
            return Err(corrupt(
                &keys.run(id, list.started_at),
                format!(
                    "the run's list holds {} hashes, not {}",
                    hashes.len(),
                    list.hashes
                ),
            ));
        }
        loaded.status.run_hashes.insert(
            id.clone(),
            RunHashes {
                started_at: list.started_at,
                hashes,
            },
        );
    }
    Ok(loaded)
}

/// An entry's value from its chunks under `prefix`, checked against `blob`.
fn join_blob(
    chunks: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    blob: &Blob,
) -> Result<Vec<u8>, String> {
    let mut value = Vec::with_capacity(blob.bytes.min(64 * 1024 * 1024));
    for n in 0..blob.chunks {
        let key = format!("{prefix}{n:06}");
        let part = chunks
            .get(&key)
            .ok_or_else(|| format!("chunk {key} of its value is missing"))?;
        value.extend_from_slice(part);
    }
    if value.len() != blob.bytes || blob_digest(&value) != blob.digest {
        return Err("its value's chunks do not add up to it (length or digest)".into());
    }
    Ok(value)
}

/// What names a blob: the first 16 hex digits of its sha256.
pub fn blob_digest(value: &[u8]) -> String {
    digest(value)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Cut a run's list into chunks of at most about `max_bytes` of JSON each.
pub fn chunks(hashes: &[String], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < hashes.len() {
        let mut size = 2;
        let mut end = start;
        while end < hashes.len() && (end == start || size + hashes[end].len() + 3 <= max_bytes) {
            size += hashes[end].len() + 3;
            end += 1;
        }
        out.push(serde_json::to_vec(&hashes[start..end]).unwrap_or_default());
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_hash_in_order_and_stay_under_the_bound() {
        let hashes: Vec<String> = (0..10_000).map(|i| format!("hash-{i:05}")).collect();
        let cut = chunks(&hashes, 4096);
        assert!(cut.len() > 1);
        let mut back = Vec::new();
        for c in &cut {
            assert!(c.len() <= 4096, "{}", c.len());
            back.extend(serde_json::from_slice::<Vec<String>>(c).unwrap());
        }
        assert_eq!(back, hashes);
        assert!(chunks(&[], 4096).is_empty());
    }

    #[test]
    fn chunks_no_entry_names_are_orphans() {
        let keys = Keys::new("g");
        let started = Utc::now();
        let kvs = vec![Kv {
            key: keys.chunk("gone", started, 0),
            value: b"[\"h1\"]".to_vec(),
            ..Kv::default()
        }];
        let loaded = assemble(&keys, kvs).unwrap();
        assert_eq!(loaded.orphans, [keys.run("gone", started)]);
    }

    #[test]
    fn a_missing_chunk_is_a_located_error() {
        let keys = Keys::new("g");
        let started = Utc::now();
        let entry = serde_json::json!({
            "entry": {"phase": "Running", "revision": 1, "specDigest": "d", "hashCount": 2,
                      "firstSeenAt": started, "run": {"startedAt": started, "batchSize": 1,
                      "revision": 1, "specDigest": "d", "hashesDigest": "d", "hashCount": 2,
                      "batches": 2, "nextBatch": 0}},
            "runList": {"startedAt": started, "chunks": 2, "hashes": 2}
        });
        let kvs = vec![
            Kv {
                key: keys.entry("a"),
                value: serde_json::to_vec(&entry).unwrap(),
                ..Kv::default()
            },
            Kv {
                key: keys.chunk("a", started, 0),
                value: b"[\"h1\"]".to_vec(),
                ..Kv::default()
            },
        ];
        match assemble(&keys, kvs) {
            Err(LoadError::Corrupt { key, .. }) => assert_eq!(key, keys.chunk("a", started, 1)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a status with a chunk missing was read"),
        }
    }
}
