//! `EtcdStore`: the `StatusStore` of an HA leader, the shared status in etcd.
//!
//! # Guarantees
//! - Every write is one fenced transaction: it succeeds only while the
//!   leader key's create revision is this term's; a failed compare is
//!   `Deposed` and the member steps down at once.
//! - A durable record (a batch in flight) is acknowledged by etcd before
//!   `record` returns. Non-durable records (a confirmation, the start of a
//!   run) ride in the next transaction, so a batch costs one transaction
//!   whatever the status holds; a kill loses at most the confirmation of the
//!   batch in flight, which is then sent again (at-least-once).
//! - `save` writes only the keys whose value changed since this term last
//!   wrote or read them, in transactions of at most `MAX_OPS` operations.
//! - A run's hash list is written once per run, before its first request,
//!   in chunks of at most `CHUNK_BYTES`.
//! - `may_send` is `Err` once the lease may have expired or the term ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::client::{Client, Cmp, EtcdError, Op};
use super::layout::{self, EntryRef, Keys, Meta, RunList};
use super::leader::{Leadership, LostLeadership, Term};
use crate::status::Status;
use crate::store::{StatusStore, StoreError};

/// etcd's default `--max-txn-ops`.
pub const MAX_OPS: usize = 128;
/// Bytes of values per transaction: under etcd's 1.5 MiB request limit
/// with room for keys and base64 (4/3).
const MAX_TXN_BYTES: usize = 768 * 1024;
/// One chunk of a run's hash list or of a large entry's value.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// An entry's value larger than this goes in chunks (etcd refuses a request
/// over 1.5 MiB).
const ENTRY_INLINE: usize = 512 * 1024;

/// Why the etcd store failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Lost(#[from] LostLeadership),
    #[error("cannot write the shared status: {0}")]
    Etcd(#[from] EtcdError),
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> StoreError {
        StoreError::Shared(f.to_string())
    }
}

/// The status store of one leader term.
pub struct EtcdStore {
    client: Arc<Client>,
    keys: Keys,
    leadership: Arc<Leadership>,
    term: Term,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    /// Digest of each key's value as this term last wrote or read it.
    written: HashMap<String, [u8; 32]>,
    /// Non-durable writes waiting for the next transaction, by key.
    pending: BTreeMap<String, Op>,
    /// Runs whose hash list is in etcd, by entry id.
    listed: BTreeMap<String, RunList>,
    /// Entries whose value is in chunks, by id: the chunks' digest.
    blobs: BTreeMap<String, String>,
    /// What `status/meta` holds besides the fields of `Status`.
    meta: Meta,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("term", &self.term)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// The store of `term`, over a status just `loaded` from etcd. Must be
    /// used on a multi-threaded tokio runtime (`record` blocks in place).
    pub fn new(
        client: Arc<Client>,
        keys: Keys,
        leadership: Arc<Leadership>,
        term: Term,
        loaded: &layout::Loaded,
    ) -> Result<EtcdStore, StoreError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Shared(format!("no async runtime: {e}")))?;
        // Chunks nobody names are swept with the first write.
        let pending = loaded
            .orphans
            .iter()
            .map(|p| (p.clone(), Op::DeletePrefix(p.clone())))
            .collect();
        Ok(EtcdStore {
            timeout: leadership.options.call_timeout(),
            written: loaded
                .digests
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            listed: loaded.listed.clone(),
            blobs: loaded.blobs.clone(),
            meta: loaded.meta.clone().unwrap_or_default(),
            pending,
            client,
            keys,
            leadership,
            term,
            runtime,
        })
    }

    /// Start importing the status file `from`: recorded in `status/meta`
    /// (alone, fenced) before any entry is written, so an import cut short
    /// is seen and finished by the next leader instead of leaving a status
    /// that lacks entries (whose resets would be sent again).
    pub fn begin_import(&mut self, from: &str) -> Result<(), StoreError> {
        self.meta.importing = Some(from.to_owned());
        self.meta.imported_from = None;
        self.meta.imported_at = None;
        // Whatever was read is rewritten: the import replaces it.
        self.written.clear();
        Ok(self.write_meta()?)
    }

    /// The import is complete once the save that follows has written it.
    pub fn end_import(&mut self) {
        self.meta.imported_from = self.meta.importing.take();
        self.meta.imported_at = Some(chrono::Utc::now());
    }

    /// An import whose end was never written.
    pub fn unfinished_import(&self) -> Option<&str> {
        self.meta.importing.as_deref()
    }

    /// `status/meta`, in a transaction of its own.
    pub fn write_meta(&mut self) -> Result<(), Failure> {
        let key = self.keys.meta();
        let value = serde_json::to_vec(&self.meta).unwrap_or_default();
        if self.written.get(&key) == Some(&layout::digest(&value)) {
            return Ok(());
        }
        self.commit(vec![(
            key.clone(),
            Op::Put {
                key,
                value,
                lease: 0,
            },
        )])
    }

    /// Run `future` to its end from this synchronous call.
    fn block<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        tokio::task::block_in_place(|| self.runtime.block_on(future))
    }

    /// One fenced transaction of `ops`.
    fn commit(&mut self, ops: Vec<(String, Op)>) -> Result<(), Failure> {
        if ops.is_empty() {
            return Ok(());
        }
        let leader = self.keys.leader();
        let just_ops: Vec<Op> = ops.iter().map(|(_, op)| op.clone()).collect();
        let client = Arc::clone(&self.client);
        let timeout = self.timeout;
        let (leadership, term) = (Arc::clone(&self.leadership), self.term);
        // An unanswered write (etcd electing a raft leader, a slow fsync) is
        // tried again while the lease certainly holds: the same puts under
        // the same fence, harmless if the first was applied. Only then, or
        // on an answer that refuses it, does the term end.
        let result = self.block(async move {
            loop {
                match client
                    .txn(&fence(&leader, term), &just_ops, &[], timeout)
                    .await
                {
                    Err(EtcdError::Unreachable { .. }) if leadership.may_send(term).is_ok() => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other,
                }
            }
        });
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                // Whether it was applied may be unknown; a leader that
                // cannot tell what it wrote may not go on.
                self.leadership
                    .step_down(self.term, &LostLeadership::Unconfirmed(e.to_string()));
                return Err(e.into());
            }
        };
        if !result.succeeded {
            self.leadership
                .step_down(self.term, &LostLeadership::Deposed);
            return Err(LostLeadership::Deposed.into());
        }
        for (key, op) in ops {
            if let Op::Put { value, .. } = &op {
                self.written.insert(key, layout::digest(value));
            }
        }
        Ok(())
    }

    /// Write `ops` in as few transactions as the limits allow.
    fn commit_all(&mut self, ops: Vec<(String, Op)>) -> Result<(), Failure> {
        let mut txn = Vec::new();
        let mut bytes = 0;
        for (key, op) in ops {
            let size = op_size(&op);
            if !txn.is_empty() && (txn.len() >= MAX_OPS || bytes + size > MAX_TXN_BYTES) {
                self.commit(std::mem::take(&mut txn))?;
                bytes = 0;
            }
            bytes += size;
            txn.push((key, op));
        }
        self.commit(txn)
    }

    /// The writes a record of `id` needs, queued; a run's list, when it is
    /// too large to ride along, written at once.
    fn queue(&mut self, status: &Status, id: &str) -> Result<(), Failure> {
        let Some(entry) = status.resets.get(id) else {
            return Ok(());
        };
        let list = status.run_hashes.get(id).filter(|_| entry.run.is_some());
        let mut run_list = self.listed.get(id).copied();
        if let Some(l) = list
            && run_list.map(|r| r.started_at) != Some(l.started_at)
        {
            let parts = layout::chunks(&l.hashes, CHUNK_BYTES);
            let new = RunList {
                started_at: l.started_at,
                chunks: parts.len(),
                hashes: l.hashes.len(),
            };
            let ops: Vec<(String, Op)> = parts
                .into_iter()
                .enumerate()
                .map(|(n, value)| {
                    let key = self.keys.chunk(id, l.started_at, n);
                    (
                        key.clone(),
                        Op::Put {
                            key,
                            value,
                            lease: 0,
                        },
                    )
                })
                .collect();
            if let Some(old) = run_list {
                let prefix = self.keys.run(id, old.started_at);
                self.pending
                    .insert(prefix.clone(), Op::DeletePrefix(prefix));
            }
            if ops.len() == 1 {
                self.pending.extend(ops);
            } else {
                // Before the entry that points at them, in their own
                // transactions.
                self.commit_all(ops)?;
            }
            self.listed.insert(id.to_owned(), new);
            run_list = Some(new);
        }
        if entry.run.is_none()
            && let Some(old) = self.listed.remove(id)
        {
            let prefix = self.keys.run(id, old.started_at);
            self.pending
                .insert(prefix.clone(), Op::DeletePrefix(prefix));
            run_list = None;
        }
        let mut value = serde_json::to_vec(&EntryRef { entry, run_list }).unwrap_or_default();
        let old_blob = self.blobs.get(id).cloned();
        if value.len() > ENTRY_INLINE {
            // Too large for one request: its chunks first, in their own
            // fenced transactions, then the entry key pointing at them.
            let digest = layout::blob_digest(&value);
            let blob = layout::Blob {
                chunks: value.len().div_ceil(CHUNK_BYTES),
                bytes: value.len(),
                digest: digest.clone(),
            };
            if old_blob.as_deref() != Some(digest.as_str()) {
                // A delete of these very chunks may still wait (the value
                // changed and changed back): it must not follow them.
                self.pending.remove(&self.keys.blob(id, &digest));
                let ops: Vec<(String, Op)> = value
                    .chunks(CHUNK_BYTES)
                    .enumerate()
                    .map(|(n, part)| {
                        let key = self.keys.blob_chunk(id, &digest, n);
                        let op = Op::Put {
                            key: key.clone(),
                            value: part.to_vec(),
                            lease: 0,
                        };
                        (key, op)
                    })
                    .collect();
                self.commit_all(ops)?;
                self.blobs.insert(id.to_owned(), digest);
            }
            value = serde_json::to_vec(&layout::BlobRef { blob }).unwrap_or_default();
        } else {
            self.blobs.remove(id);
        }
        if let Some(old) = old_blob
            && self.blobs.get(id) != Some(&old)
        {
            let prefix = self.keys.blob(id, &old);
            self.pending
                .insert(prefix.clone(), Op::DeletePrefix(prefix));
        }
        let key = self.keys.entry(id);
        self.pending.insert(
            key.clone(),
            Op::Put {
                key,
                value,
                lease: 0,
            },
        );
        Ok(())
    }

    /// Everything queued. Split into transactions, the ops keep this
    /// order: chunks first, then the entries (and meta) that point at them,
    /// then the deletes of chunks nothing points at any more. A write cut
    /// off between two transactions leaves chunks nobody names yet (swept
    /// by the next term), never an entry naming chunks that are not there.
    fn flush(&mut self) -> Result<(), Failure> {
        let pending = std::mem::take(&mut self.pending);
        let (runs, blobs) = (self.keys.runs(), self.keys.blobs());
        let rank = |key: &str, op: &Op| match op {
            Op::Put { .. } if key.starts_with(&runs) || key.starts_with(&blobs) => 0,
            Op::Put { .. } | Op::Get(_) => 1,
            Op::DeletePrefix(_) => 2,
        };
        let mut ops: Vec<(String, Op)> = pending.into_iter().collect();
        ops.sort_by_key(|(key, op)| rank(key, op));
        self.commit_all(ops)
    }
}

/// The fence of a status write: the leader key created by this term's
/// campaign (its revision) and still bound to this term's lease (after an
/// etcd restored from a backup, revisions start again: the lease tells).
fn fence(leader: &str, term: Term) -> [Cmp<'_>; 2] {
    [
        Cmp::Created(leader, term.revision),
        Cmp::Lease(leader, term.lease),
    ]
}

fn op_size(op: &Op) -> usize {
    match op {
        Op::Put { key, value, .. } => key.len() + value.len(),
        Op::DeletePrefix(key) | Op::Get(key) => key.len(),
    }
}

impl StatusStore for EtcdStore {
    fn record(&mut self, status: &Status, id: &str, durable: bool) -> Result<(), StoreError> {
        self.queue(status, id)?;
        if durable || self.pending.len() >= MAX_OPS {
            self.flush()?;
        }
        Ok(())
    }

    fn save(&mut self, status: &mut Status) -> Result<(), StoreError> {
        let ids: Vec<String> = status.resets.keys().cloned().collect();
        for id in &ids {
            self.queue(status, id)?;
        }
        // Only what changed since it was last written or read.
        let written = &self.written;
        self.pending.retain(|key, op| match op {
            Op::Put { value, .. } => written.get(key) != Some(&layout::digest(value)),
            _ => true,
        });
        self.flush()?;
        // Last, on its own: an import is complete only once every entry is.
        self.meta.updated_at = status.updated_at;
        self.meta.config_digest.clone_from(&status.config_digest);
        Ok(self.write_meta()?)
    }

    fn may_send(&mut self) -> Result<(), StoreError> {
        Ok(self.leadership.may_send(self.term).map_err(Failure::from)?)
    }
}
