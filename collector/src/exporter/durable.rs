//! The on-disk store behind a durable sending queue (`sending_queue: { storage: <dir> }`).
//!
//! Each exporter has one redb database, `<dir>/<exporter id>.redb`, holding the batches it
//! has accepted and not yet finished with (delivered or dead-lettered), keyed by an increasing
//! sequence number. redb is crash-safe (copy-on-write B-trees, checksummed pages, atomic
//! commits), so after a `kill -9` or power loss the store holds exactly the batches whose
//! enqueue had committed. With `fsync: always` (the default) an enqueue returns only after its
//! commit is on disk; with `fsync: never` commits are not synced (faster; a crash of the
//! machine, not just of the process, may lose the most recent batches).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lumina_sdk::component::{ComponentError, ComponentId};
use lumina_sdk::{Batch, Signal};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const QUEUE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("queue");

/// redb's page cache per durable queue.
const CACHE_BYTES: usize = 16 << 20;

/// A durable queue's store. Cheap to clone.
#[derive(Clone)]
pub struct DurableStore {
    db: Arc<Database>,
    durability: fn() -> Durability,
    path: PathBuf,
}

fn signal_byte(s: Signal) -> u8 {
    match s {
        Signal::Logs => 0,
        Signal::Traces => 1,
        Signal::Metrics => 2,
    }
}

/// An entry: the signal (1 byte), the item count (4 bytes, little-endian), the OTLP protobuf.
fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.encoded_len() + 5);
    out.push(signal_byte(batch.signal()));
    out.extend(u32::try_from(batch.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&batch.encoded());
    out
}

fn items(bytes: &[u8]) -> usize {
    bytes
        .get(1..5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize)
}

fn decode(bytes: &[u8]) -> Result<Batch, String> {
    if bytes.len() < 5 {
        return Err("a truncated entry".into());
    }
    let signal = match bytes[0] {
        0 => Signal::Logs,
        1 => Signal::Traces,
        2 => Signal::Metrics,
        other => return Err(format!("an entry of unknown kind {other}")),
    };
    Batch::from_protobuf(signal, bytes::Bytes::copy_from_slice(&bytes[5..]))
        .map_err(|e| e.to_string())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl DurableStore {
    /// Opens (or creates) the store of `exporter` in `dir`. `sync` makes every commit durable
    /// before it returns.
    pub fn open(dir: &Path, exporter: &ComponentId, sync: bool) -> Result<Self, ComponentError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ComponentError::io(
                format!("cannot create the queue directory {}", dir.display()),
                e,
            )
        })?;
        let path = dir.join(format!("{}.redb", super::file_stem(exporter)));
        // A small page cache: the queue is written once and read once, and redb's default
        // (1 GiB) would count against the process's memory budget while a destination is down.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| {
                ComponentError::Other(format!(
                    "cannot open the durable queue {}: {e}",
                    path.display()
                ))
            })?;
        let store = Self {
            db: Arc::new(db),
            durability: if sync {
                || Durability::Immediate
            } else {
                || Durability::None
            },
            path,
        };
        // Create the table, so reads never find it missing.
        store.write(|_| Ok(())).map_err(ComponentError::Other)?;
        Ok(store)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut redb::Table<'_, u64, &[u8]>) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut tx = self.db.begin_write().map_err(err)?;
        tx.set_durability((self.durability)()).map_err(err)?;
        let out = {
            let mut t = tx.open_table(QUEUE).map_err(err)?;
            f(&mut t)?
        };
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Appends a batch; returns its sequence number once committed.
    pub fn push(&self, batch: &Batch) -> Result<u64, String> {
        let bytes = encode(batch);
        self.write(|t| {
            let next = t.last().map_err(err)?.map_or(0, |(k, _)| k.value() + 1);
            t.insert(next, bytes.as_slice()).map_err(err)?;
            Ok(next)
        })
    }

    /// Forgets a batch (delivered or dead-lettered).
    pub fn remove(&self, seq: u64) -> Result<(), String> {
        self.write(|t| t.remove(seq).map(|_| ()).map_err(err))
    }

    /// The sequence numbers and item counts of every batch in the store, oldest first. The
    /// batches themselves are read when they are sent ([`DurableStore::get`]), so a long queue
    /// costs disk, not memory.
    pub fn pending(&self) -> Result<Vec<(u64, usize)>, String> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(QUEUE).map_err(err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value(), items(v.value())));
        }
        Ok(out)
    }

    /// The batch at `seq`, if it is still there.
    pub fn get(&self, seq: u64) -> Result<Option<Batch>, String> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(QUEUE).map_err(err)?;
        match t.get(seq).map_err(err)? {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::testkit;

    #[test]
    fn batches_survive_reopening_in_order_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let id: ComponentId = "otlp/x".parse().unwrap();
        {
            let s = DurableStore::open(dir.path(), &id, true).unwrap();
            assert_eq!(s.push(&testkit::logs(1, 2)).unwrap(), 0);
            assert_eq!(s.push(&testkit::traces(1, 3)).unwrap(), 1);
            assert_eq!(s.push(&testkit::metrics(1, 1)).unwrap(), 2);
            s.remove(1).unwrap();
        }
        let s = DurableStore::open(dir.path(), &id, true).unwrap();
        let points = testkit::metrics(1, 1).len();
        assert_eq!(s.pending().unwrap(), vec![(0, 2), (2, points)]);
        let got: Vec<(Signal, usize)> = [0, 2]
            .iter()
            .map(|k| s.get(*k).unwrap().unwrap())
            .map(|b| (b.signal(), b.len()))
            .collect();
        assert_eq!(got, vec![(Signal::Logs, 2), (Signal::Metrics, points)]);
        assert!(s.get(1).unwrap().is_none());
        // New entries come after the old ones.
        assert_eq!(s.push(&testkit::logs(1, 1)).unwrap(), 3);
    }
}
