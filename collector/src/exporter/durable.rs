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

/// What a store holds: the batches by sequence number, and the entries that could not be read
/// (removed), with why.
pub type Pending = (Vec<(u64, Batch)>, Vec<(u64, String)>);

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

fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.encoded_len() + 1);
    out.push(signal_byte(batch.signal()));
    out.extend(batch.encode_protobuf());
    out
}

fn decode(bytes: &[u8]) -> Result<Batch, String> {
    let (first, rest) = bytes.split_first().ok_or("an empty entry")?;
    let signal = match first {
        0 => Signal::Logs,
        1 => Signal::Traces,
        2 => Signal::Metrics,
        other => return Err(format!("an entry of unknown kind {other}")),
    };
    Batch::decode_protobuf(signal, rest).map_err(|e| e.to_string())
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
        let name: String = exporter
            .to_string()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.redb"));
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

    /// Every batch still in the store, oldest first. An entry that cannot be read is reported
    /// and removed (it cannot be delivered).
    pub fn pending(&self) -> Result<Pending, String> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(QUEUE).map_err(err)?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for entry in t.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            match decode(v.value()) {
                Ok(b) => good.push((k.value(), b)),
                Err(e) => bad.push((k.value(), e)),
            }
        }
        drop(t);
        drop(tx);
        for (seq, _) in &bad {
            self.remove(*seq)?;
        }
        Ok((good, bad))
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
        let (pending, bad) = s.pending().unwrap();
        assert!(bad.is_empty());
        let got: Vec<(u64, Signal, usize)> = pending
            .iter()
            .map(|(k, b)| (*k, b.signal(), b.len()))
            .collect();
        let points = testkit::metrics(1, 1).len();
        assert_eq!(
            got,
            vec![(0, Signal::Logs, 2), (2, Signal::Metrics, points)]
        );
        // New entries come after the old ones.
        assert_eq!(s.push(&testkit::logs(1, 1)).unwrap(), 3);
    }
}
