//! The durable state of `dialogue_assembly`: every open (and recently finished) dialogue in a
//! redb file, with its in-memory copy, the revisions not yet known to be downstream, and the
//! last revisions of evicted dialogues.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use lumina_sdk::component::ComponentError;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::fold::DialogueState;

const DIALOGUES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dialogues");

/// Dialogue id → the revision whose records are not yet known to be downstream.
const PENDING: TableDefinition<'_, &str, u64> = TableDefinition::new("pending");

/// Evicted dialogue id → (its last revision, when it was evicted): late events that start it
/// again continue from there.
const EVICTED: TableDefinition<'_, &str, (u64, i64)> = TableDefinition::new("evicted");

pub(super) fn store_error(e: impl std::fmt::Display) -> ComponentError {
    ComponentError::Other(format!("dialogue store: {e}"))
}

/// The durable state and its in-memory copy.
pub(crate) struct Store {
    pub(super) db: Database,
    pub(super) dialogues: HashMap<String, DialogueState>,
    pub(super) pending: HashMap<String, u64>,
    /// Finished dialogues (for eviction), by id.
    pub(super) finished: HashSet<String>,
    /// What was pending when the store was opened: emitted again on the first check.
    pub(super) recovered: HashMap<String, u64>,
    /// Evicted dialogues' last revisions and eviction times.
    pub(super) evicted: HashMap<String, (u64, i64)>,
}

impl Store {
    /// Opens (or creates) the store at `path` and loads it.
    pub(crate) fn open(path: PathBuf) -> Result<Self, ComponentError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ComponentError::io(format!("creating {}", dir.display()), e))?;
        }
        let db = Database::create(&path)
            .map_err(|e| store_error(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(store_error)?;
        {
            txn.open_table(DIALOGUES).map_err(store_error)?;
            txn.open_table(PENDING).map_err(store_error)?;
            txn.open_table(EVICTED).map_err(store_error)?;
        }
        txn.commit().map_err(store_error)?;
        let mut dialogues = HashMap::new();
        let mut pending = HashMap::new();
        let read = db.begin_read().map_err(store_error)?;
        let table = read.open_table(DIALOGUES).map_err(store_error)?;
        for row in table.iter().map_err(store_error)? {
            let (k, v) = row.map_err(store_error)?;
            let state: DialogueState = serde_json::from_slice(v.value()).map_err(|e| {
                store_error(format!("dialogue `{}` does not decode: {e}", k.value()))
            })?;
            dialogues.insert(k.value().to_owned(), state);
        }
        let table = read.open_table(PENDING).map_err(store_error)?;
        for row in table.iter().map_err(store_error)? {
            let (k, v) = row.map_err(store_error)?;
            pending.insert(k.value().to_owned(), v.value());
        }
        let mut evicted = HashMap::new();
        let table = read.open_table(EVICTED).map_err(store_error)?;
        for row in table.iter().map_err(store_error)? {
            let (k, v) = row.map_err(store_error)?;
            evicted.insert(k.value().to_owned(), v.value());
        }
        drop(read);
        let finished = dialogues
            .iter()
            .filter(|(_, s)| s.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        Ok(Self {
            db,
            dialogues,
            recovered: pending.clone(),
            pending,
            finished,
            evicted,
        })
    }

    /// Writes `ids`' states and marks them pending, durably.
    pub(super) fn commit(&mut self, ids: &[String]) -> Result<(), String> {
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(DIALOGUES).map_err(|e| e.to_string())?;
            let mut pending = txn.open_table(PENDING).map_err(|e| e.to_string())?;
            for id in ids {
                let Some(state) = self.dialogues.get(id) else {
                    continue;
                };
                let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
                table
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(|e| e.to_string())?;
                pending
                    .insert(id.as_str(), state.revision)
                    .map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())?;
        for id in ids {
            if let Some(state) = self.dialogues.get(id) {
                self.pending.insert(id.clone(), state.revision);
                if state.is_finished() {
                    self.finished.insert(id.clone());
                }
            }
        }
        Ok(())
    }

    /// Clears the pending marks of dialogues emitted at these revisions (unless a newer
    /// revision is pending). Not forced to disk: losing it only re-emits.
    pub(super) fn emitted(&mut self, done: &[(String, u64)]) -> Result<(), String> {
        let clear: Vec<&(String, u64)> = done
            .iter()
            .filter(|(id, rev)| self.pending.get(id) == Some(rev))
            .collect();
        if clear.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(Durability::None)
            .map_err(|e| e.to_string())?;
        {
            let mut pending = txn.open_table(PENDING).map_err(|e| e.to_string())?;
            for (id, _) in &clear {
                pending.remove(id.as_str()).map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())?;
        for (id, _) in clear {
            self.pending.remove(id);
        }
        Ok(())
    }

    /// Removes finished dialogues last changed before `cutoff` with nothing pending,
    /// remembering their last revisions; forgets those evicted before `forget`. Returns how
    /// many were evicted.
    pub(super) fn evict(&mut self, cutoff: i64, now: i64, forget: i64) -> Result<usize, String> {
        let old: Vec<String> = self
            .finished
            .iter()
            .filter(|id| {
                !self.pending.contains_key(*id)
                    && self.dialogues.get(*id).is_none_or(|s| s.updated < cutoff)
            })
            .cloned()
            .collect();
        let forgotten: Vec<String> = self
            .evicted
            .iter()
            .filter(|(_, (_, at))| *at < forget)
            .map(|(k, _)| k.clone())
            .collect();
        if old.is_empty() && forgotten.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(DIALOGUES).map_err(|e| e.to_string())?;
            let mut evicted = txn.open_table(EVICTED).map_err(|e| e.to_string())?;
            for id in &old {
                table.remove(id.as_str()).map_err(|e| e.to_string())?;
                let revision = self.dialogues.get(id).map_or(0, |s| s.revision);
                evicted
                    .insert(id.as_str(), (revision, now))
                    .map_err(|e| e.to_string())?;
            }
            for id in &forgotten {
                evicted.remove(id.as_str()).map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())?;
        for id in &forgotten {
            self.evicted.remove(id);
        }
        for id in &old {
            if let Some(s) = self.dialogues.remove(id) {
                self.evicted.insert(id.clone(), (s.revision, now));
            }
            self.finished.remove(id);
        }
        Ok(old.len())
    }

    /// Dialogues not finished.
    pub(super) fn open_count(&self) -> usize {
        self.dialogues.len().saturating_sub(self.finished.len())
    }

    /// A new state for a dialogue first seen (again) at `now`: one that was evicted goes on
    /// from its last revision, so every update it emits is newer than the ones before. Also
    /// says whether it had been evicted. (Tests look at it; the processor goes through
    /// [`Self::state_for`].)
    #[cfg(test)]
    pub(super) fn new_state(&self, id: &str, now: i64) -> (DialogueState, bool) {
        new_state(&self.evicted, id, now)
    }

    /// The state of dialogue `id`, created if there is none (an evicted one going on from its
    /// last revision); with
    /// `Some(evicted before)` when it was created. One lookup on the hot path.
    pub(super) fn state_for(&mut self, id: &str, now: i64) -> (&mut DialogueState, Option<bool>) {
        let mut created = None;
        let evicted = &self.evicted;
        let state = self.dialogues.entry(id.to_owned()).or_insert_with(|| {
            let (state, revived) = new_state(evicted, id, now);
            created = Some(revived);
            state
        });
        (state, created)
    }
}

fn new_state(evicted: &HashMap<String, (u64, i64)>, id: &str, now: i64) -> (DialogueState, bool) {
    let mut state = DialogueState::new(id, now);
    match evicted.get(id) {
        Some((revision, _)) => {
            state.revision = *revision;
            (state, true)
        }
        None => (state, false),
    }
}
