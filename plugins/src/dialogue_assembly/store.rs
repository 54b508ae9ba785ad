//! The durable state of `dialogue_assembly`: every open (and recently finished) dialogue in
//! memory, made durable by an append-only log of what changed and periodic snapshots.
//!
//! A store is a directory holding `snapshot` and `log-<generation>` files:
//!
//! - **The log.** Each batch appends one frame (`length`, CRC-32, then the batch's entries:
//!   the events it applied or saw again, dialogues written whole, pending marks cleared, evictions) and
//!   the frame is flushed with `fdatasync` before the batch is acknowledged: a group commit,
//!   so a batch costs one write and one sync however many events it holds. A frame is
//!   applied whole or not at all; a torn last frame (a crash while writing it) fails its
//!   checksum and is cut off when the store opens.
//! - **Snapshots.** When the log has grown past the state it describes, the state is
//!   encoded, a new log generation is started, and the snapshot is written beside it (a
//!   temporary file, synced, then renamed), after which older logs are deleted. A snapshot of
//!   generation *g* holds everything in the logs before *g*; opening loads the snapshot and
//!   replays the logs from *g* on, in order. A crash at any point leaves either the old
//!   snapshot with its logs or the new one.
//!
//! Replaying an entry does what applying it did, in the same order, so the state after a
//! restart equals the state before it (revisions, pending marks and evictions included).
//! Why not a key-value store: the previous store (redb) rewrote each changed dialogue's
//! whole state per batch and committed a copy-on-write B-tree; the log writes only what is
//! new, and the working set is the in-memory map either way. A store written by that
//! version (`<name>.redb`) is read once and carried over into the new format.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use lumina_sdk::component::ComponentError;
use lumina_sdk::voice::{DialogueStatus, VoiceEvent};

use super::codec::{Dec, Enc};
use super::fold::DialogueState;

pub(super) fn store_error(e: impl std::fmt::Display) -> ComponentError {
    ComponentError::Other(format!("dialogue store: {e}"))
}

const LOG_MAGIC: &[u8; 8] = b"LUMDLOG1";
const SNAPSHOT_MAGIC: &[u8; 8] = b"LUMDSNP1";
/// Magic and generation.
const HEADER: usize = 16;
/// A frame's length and checksum.
const FRAME_HEAD: usize = 8;
/// A log smaller than this is never snapshotted: replaying it at start-up is quick.
const MIN_SNAPSHOT_LOG: u64 = 64 << 20;

const EVENT: u8 = 1;
const PUT: u8 = 2;
const EMITTED: u8 = 3;
const EVICTED: u8 = 4;
const FORGOTTEN: u8 = 5;
const SEEN: u8 = 6;

/// The durable state and its in-memory copy.
pub(crate) struct Store {
    dir: PathBuf,
    log: File,
    generation: u64,
    /// Bytes in the current log file, all of them whole frames.
    log_len: u64,
    /// Bytes of the last snapshot.
    snapshot_len: u64,
    /// The log size from which a snapshot is taken (when it is also larger than the last).
    pub(super) snapshot_after: u64,
    /// Entries not yet in the log (after room for their frame's length and checksum), and
    /// the dialogues they change.
    buf: Vec<u8>,
    dirty: HashSet<String>,
    /// A snapshot encoded but not yet written (see [`Self::snapshot_due`]).
    snapshotting: bool,
    pub(super) dialogues: HashMap<String, DialogueState>,
    pub(super) pending: HashMap<String, u64>,
    /// Finished dialogues (for eviction), by id.
    pub(super) finished: HashSet<String>,
    /// What was pending when the store was opened: emitted again on the first check.
    pub(super) recovered: HashMap<String, u64>,
    /// Evicted dialogues' last revisions and eviction times.
    pub(super) evicted: HashMap<String, (u64, i64)>,
}

/// What applying one event did.
pub(super) struct Applied {
    /// The dialogue was created by it: `Some(true)` if it had been evicted before.
    pub(super) created: Option<bool>,
    /// The event was new (not applied before).
    pub(super) applied: bool,
    /// The dialogue was finished before the event.
    pub(super) was_finished: bool,
    /// The event ended the dialogue.
    pub(super) ended: bool,
}

/// A snapshot encoded under the store's lock, to be written without it.
pub(super) struct Snapshot {
    dir: PathBuf,
    generation: u64,
    bytes: Vec<u8>,
}

impl Snapshot {
    /// Writes the snapshot and deletes the logs it replaces; returns its size.
    pub(super) fn write(self) -> Result<u64, String> {
        let tmp = self.dir.join("snapshot.tmp");
        let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", tmp.display());
        let mut f = File::create(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(&self.bytes).map_err(|e| io("writing", e))?;
        f.sync_data().map_err(|e| io("syncing", e))?;
        drop(f);
        std::fs::rename(&tmp, self.dir.join("snapshot")).map_err(|e| io("renaming", e))?;
        sync_dir(&self.dir)?;
        for (generation, path) in logs(&self.dir)? {
            if generation < self.generation {
                std::fs::remove_file(&path)
                    .map_err(|e| format!("removing {}: {e}", path.display()))?;
            }
        }
        Ok(self.bytes.len() as u64)
    }
}

impl Store {
    /// Opens (or creates) the store in directory `dir`; a store of the previous format at
    /// `legacy` is carried over the first time.
    pub(crate) fn open(dir: PathBuf, legacy: Option<&Path>) -> Result<Self, ComponentError> {
        let fresh = !dir.join("snapshot").exists() && logs(&dir).unwrap_or_default().is_empty();
        std::fs::create_dir_all(&dir)
            .map_err(|e| ComponentError::io(format!("creating {}", dir.display()), e))?;
        let mut store = Self {
            // Replaced by the log to append to once the store is loaded.
            log: File::open(&dir).map_err(|e| store_error(format!("{}: {e}", dir.display())))?,
            dir,
            generation: 0,
            log_len: 0,
            snapshot_len: 0,
            snapshot_after: MIN_SNAPSHOT_LOG,
            buf: vec![0; FRAME_HEAD],
            dirty: HashSet::new(),
            snapshotting: false,
            dialogues: HashMap::new(),
            pending: HashMap::new(),
            finished: HashSet::new(),
            recovered: HashMap::new(),
            evicted: HashMap::new(),
        };
        match legacy.filter(|p| fresh && p.is_file()) {
            Some(path) => store.migrate(path)?,
            None => store.load().map_err(store_error)?,
        }
        store.finished = store
            .dialogues
            .iter()
            .filter(|(_, s)| s.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        store.recovered = store.pending.clone();
        Ok(store)
    }

    /// Loads the snapshot and replays the logs after it; opens the last log for appending.
    fn load(&mut self) -> Result<(), String> {
        let snapshot = self.dir.join("snapshot");
        let mut from = 0;
        if snapshot.exists() {
            let bytes = std::fs::read(&snapshot)
                .map_err(|e| format!("reading {}: {e}", snapshot.display()))?;
            from = self
                .read_snapshot(&bytes)
                .map_err(|e| format!("{}: {e}", snapshot.display()))?;
            self.snapshot_len = bytes.len() as u64;
        }
        let mut last = None;
        for (generation, path) in logs(&self.dir)? {
            if generation < from {
                // Written into the snapshot; its removal was cut short.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let len = self.replay(&path)?;
            last = Some((generation, path, len));
        }
        match last {
            Some((generation, path, len)) => {
                self.log = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| format!("opening {}: {e}", path.display()))?;
                // Cuts off a torn last frame.
                self.log
                    .set_len(len)
                    .map_err(|e| format!("truncating {}: {e}", path.display()))?;
                self.log.sync_data().map_err(|e| e.to_string())?;
                use std::io::Seek;
                self.log
                    .seek(std::io::SeekFrom::End(0))
                    .map_err(|e| e.to_string())?;
                self.generation = generation;
                self.log_len = len;
            }
            None => self.start_log(from.max(1))?,
        }
        Ok(())
    }

    /// Starts log `generation` (empty) and appends to it from now on.
    fn start_log(&mut self, generation: u64) -> Result<(), String> {
        let path = log_path(&self.dir, generation);
        let mut f = File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let mut header = LOG_MAGIC.to_vec();
        header.extend_from_slice(&generation.to_le_bytes());
        f.write_all(&header)
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        sync_dir(&self.dir)?;
        self.log = f;
        self.generation = generation;
        self.log_len = HEADER as u64;
        Ok(())
    }

    /// Replays a log's whole frames; returns the length they take (where a torn frame, if
    /// any, begins).
    fn replay(&mut self, path: &Path) -> Result<u64, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        if bytes.len() < HEADER {
            // Created, but its header never reached the disk: nothing was committed to it.
            let mut header = LOG_MAGIC.to_vec();
            header.extend_from_slice(&generation_of(path).to_le_bytes());
            std::fs::write(path, header).map_err(|e| format!("writing {}: {e}", path.display()))?;
            return Ok(HEADER as u64);
        }
        if &bytes[..8] != LOG_MAGIC {
            return Err(format!("{} is not a dialogue store log", path.display()));
        }
        let mut at = HEADER;
        while let Some(frame) = frame_at(&bytes, at) {
            let mut d = Dec { b: frame };
            while !d.is_empty() {
                self.replay_entry(&mut d)
                    .map_err(|e| format!("{} at byte {at}: {e}", path.display()))?;
            }
            at += FRAME_HEAD + frame.len();
        }
        if at < bytes.len() {
            tracing::warn!(
                log = %path.display(),
                bytes = bytes.len() - at,
                "The dialogue store's log ends in an incomplete write (a crash while a batch was being written; that batch was not acknowledged); it is cut off."
            );
        }
        Ok(at as u64)
    }

    fn replay_entry(&mut self, d: &mut Dec<'_>) -> Result<(), String> {
        match d.u("entry")? as u8 {
            EVENT => {
                let id = d.s("dialogue id")?.to_owned();
                let now = d.i("time")?;
                let (event_id, e) = d.event()?;
                let (state, _) = state_for(&mut self.dialogues, &self.evicted, &id, now);
                state.insert(event_id, e, now);
                let revision = state.revision;
                self.pending.insert(id, revision);
            }
            PUT => {
                let s = d.state()?;
                self.pending.insert(s.id.clone(), s.revision);
                self.dialogues.insert(s.id.clone(), s);
            }
            EMITTED => {
                let id = d.s("dialogue id")?;
                let revision = d.u("revision")?;
                if self.pending.get(id) == Some(&revision) {
                    self.pending.remove(id);
                }
            }
            EVICTED => {
                let id = d.s("dialogue id")?.to_owned();
                let at = d.i("time")?;
                let revision = self.dialogues.remove(&id).map_or(0, |s| s.revision);
                self.pending.remove(&id);
                self.evicted.insert(id, (revision, at));
            }
            SEEN => {
                let id = d.s("dialogue id")?;
                let now = d.i("time")?;
                if let Some(s) = self.dialogues.get_mut(id) {
                    s.last_seen = now;
                }
            }
            FORGOTTEN => {
                let id = d.s("dialogue id")?;
                self.evicted.remove(id);
            }
            other => return Err(format!("unknown entry kind {other}")),
        }
        Ok(())
    }

    fn read_snapshot(&mut self, bytes: &[u8]) -> Result<u64, String> {
        if bytes.len() < HEADER + 4 || &bytes[..8] != SNAPSHOT_MAGIC {
            return Err("not a dialogue store snapshot".into());
        }
        let generation = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
        let (crc, body) = bytes[HEADER..].split_at(4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err("the checksum does not match (the file is damaged)".into());
        }
        let mut d = Dec { b: body };
        for _ in 0..d.u("dialogue count")? {
            let s = d.state()?;
            self.dialogues.insert(s.id.clone(), s);
        }
        for _ in 0..d.u("pending count")? {
            let id = d.s("dialogue id")?.to_owned();
            self.pending.insert(id, d.u("revision")?);
        }
        for _ in 0..d.u("evicted count")? {
            let id = d.s("dialogue id")?.to_owned();
            let revision = d.u("revision")?;
            self.evicted.insert(id, (revision, d.i("time")?));
        }
        Ok(generation)
    }

    /// Carries a store of the previous format over: writes its state as this store's first
    /// snapshot, then renames the old file to `<name>.migrated`.
    fn migrate(&mut self, path: &Path) -> Result<(), ComponentError> {
        let (dialogues, pending, evicted) = legacy::read(path)?;
        self.dialogues = dialogues;
        self.pending = pending;
        self.evicted = evicted;
        self.start_log(1).map_err(store_error)?;
        let snapshot = self.encode_snapshot(1);
        self.snapshot_len = snapshot.write().map_err(store_error)?;
        let mut done = path.as_os_str().to_owned();
        done.push(".migrated");
        std::fs::rename(path, &done).map_err(|e| {
            store_error(format!(
                "renaming {} after carrying it over: {e}",
                path.display()
            ))
        })?;
        tracing::info!(from = %path.display(), to = %self.dir.display(), dialogues = self.dialogues.len(), "Carried the dialogue store over to its new format.");
        Ok(())
    }

    fn encode_snapshot(&self, generation: u64) -> Snapshot {
        let mut body = Vec::with_capacity(self.snapshot_len as usize + 4096);
        let mut e = Enc(&mut body);
        e.u(self.dialogues.len() as u64);
        for s in self.dialogues.values() {
            e.state(s);
        }
        e.u(self.pending.len() as u64);
        for (id, revision) in &self.pending {
            e.s(id);
            e.u(*revision);
        }
        e.u(self.evicted.len() as u64);
        for (id, (revision, at)) in &self.evicted {
            e.s(id);
            e.u(*revision);
            e.i(*at);
        }
        let mut bytes = Vec::with_capacity(body.len() + HEADER + 4);
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&generation.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        Snapshot {
            dir: self.dir.clone(),
            generation,
            bytes,
        }
    }

    /// A snapshot, when the log has outgrown the state: the state is encoded and a new log
    /// started now; the caller writes the snapshot (outside the lock) and then calls
    /// [`Self::snapshot_written`].
    pub(super) fn snapshot_due(&mut self) -> Result<Option<Snapshot>, String> {
        if self.snapshotting || self.log_len < self.snapshot_after.max(self.snapshot_len) {
            return Ok(None);
        }
        self.flush()?;
        let generation = self.generation + 1;
        self.start_log(generation)?;
        self.snapshotting = true;
        Ok(Some(self.encode_snapshot(generation)))
    }

    /// Records how a snapshot write went.
    pub(super) fn snapshot_written(&mut self, result: &Result<u64, String>) {
        self.snapshotting = false;
        if let Ok(len) = result {
            self.snapshot_len = *len;
        }
    }

    /// Bytes the store takes on disk (snapshot and logs, nearly: the log since the last
    /// snapshot is counted, older ones are about to go).
    pub(super) fn disk_bytes(&self) -> u64 {
        self.snapshot_len + self.log_len
    }

    /// Applies `e` to its dialogue at `now` (recording it for the next [`Self::commit`]).
    pub(super) fn apply(&mut self, e: &VoiceEvent, now: i64) -> Applied {
        let (state, created) = state_for(&mut self.dialogues, &self.evicted, &e.dialogue_id, now);
        let (was_finished, was_ended) = (state.is_finished(), state.has_ended());
        let applied = state.apply(e, now);
        let ended = applied && !was_ended && state.has_ended();
        if applied {
            let mut w = Enc(&mut self.buf);
            w.u(u64::from(EVENT));
            w.s(&e.dialogue_id);
            w.i(now);
            if let Some(stored) = state.events.get(&e.event_id) {
                w.event(&e.event_id, stored);
            }
            if !self.dirty.contains(&e.dialogue_id) {
                self.dirty.insert(e.dialogue_id.clone());
            }
        } else {
            // A duplicate changes only when the dialogue was last seen (its idle timeout).
            let mut w = Enc(&mut self.buf);
            w.u(u64::from(SEEN));
            w.s(&e.dialogue_id);
            w.i(now);
        }
        Applied {
            created,
            applied,
            was_finished,
            ended,
        }
    }

    /// Records `ids`' whole states for the next [`Self::commit`] (after a change made to them
    /// directly, such as closing by the idle timeout).
    pub(super) fn put(&mut self, ids: &[String]) {
        for id in ids {
            if let Some(s) = self.dialogues.get(id) {
                let mut w = Enc(&mut self.buf);
                w.u(u64::from(PUT));
                w.state(s);
                self.dirty.insert(id.clone());
            }
        }
    }

    /// Closes dialogue `id` as the idle timeout does, with `status`, at `now`.
    pub(super) fn close_idle(&mut self, id: &str, status: DialogueStatus, now: i64) {
        if let Some(s) = self.dialogues.get_mut(id) {
            s.timed_out = Some(status);
            s.touch(now);
            self.put(&[id.to_owned()]);
        }
    }

    /// Whether anything is recorded and not yet durable.
    pub(super) fn has_uncommitted(&self) -> bool {
        self.buf.len() > FRAME_HEAD
    }

    /// Writes what was recorded since the last commit, and syncs it if it changed a dialogue;
    /// then every dialogue it changed is pending at its revision. On failure nothing recorded
    /// is lost: it is written with the next commit.
    pub(super) fn commit(&mut self) -> Result<(), String> {
        self.flush()?;
        if self.dirty.is_empty() {
            // Only what need not survive a crash (when a duplicate was seen, pending marks
            // cleared, evictions): it reaches the disk with the next synced write.
            return Ok(());
        }
        self.log.sync_data().map_err(|e| {
            format!(
                "syncing {}: {e}",
                log_path(&self.dir, self.generation).display()
            )
        })?;
        for id in std::mem::take(&mut self.dirty) {
            if let Some(state) = self.dialogues.get(&id) {
                self.pending.insert(id.clone(), state.revision);
                if state.is_finished() {
                    self.finished.insert(id);
                }
            }
        }
        Ok(())
    }

    /// Appends the recorded entries as one frame (not synced). The frame's length and
    /// checksum go into the first bytes of the buffer, kept free for them, so the batch is
    /// written from where it was encoded, without a copy.
    fn flush(&mut self) -> Result<(), String> {
        if !self.has_uncommitted() {
            return Ok(());
        }
        let entries = &self.buf[FRAME_HEAD..];
        let len = u32::try_from(entries.len()).map_err(|_| "a batch over 4 GiB".to_owned())?;
        let crc = crc32fast::hash(entries);
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..FRAME_HEAD].copy_from_slice(&crc.to_le_bytes());
        if let Err(e) = self.log.write_all(&self.buf) {
            // Whatever part of the frame was written fails its checksum; cut it off so the
            // next frame follows the last whole one.
            let _ = self.log.set_len(self.log_len);
            use std::io::Seek;
            let _ = self.log.seek(std::io::SeekFrom::Start(self.log_len));
            return Err(format!(
                "writing {}: {e}",
                log_path(&self.dir, self.generation).display()
            ));
        }
        self.log_len += self.buf.len() as u64;
        self.buf.truncate(FRAME_HEAD);
        Ok(())
    }

    /// Clears the pending marks of dialogues emitted at these revisions (unless a newer
    /// revision is pending). Written, not synced: losing it only emits them again.
    pub(super) fn emitted(&mut self, done: &[(String, u64)]) -> Result<(), String> {
        let mut any = false;
        for (id, revision) in done {
            if self.pending.get(id) == Some(revision) {
                self.pending.remove(id);
                let mut w = Enc(&mut self.buf);
                w.u(u64::from(EMITTED));
                w.s(id);
                w.u(*revision);
                any = true;
            }
        }
        if any {
            self.flush()?;
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
                    && !self.dirty.contains(*id)
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
        for id in &forgotten {
            self.evicted.remove(id);
            let mut w = Enc(&mut self.buf);
            w.u(u64::from(FORGOTTEN));
            w.s(id);
        }
        for id in &old {
            if let Some(s) = self.dialogues.remove(id) {
                self.evicted.insert(id.clone(), (s.revision, now));
            }
            self.finished.remove(id);
            let mut w = Enc(&mut self.buf);
            w.u(u64::from(EVICTED));
            w.s(id);
            w.i(now);
        }
        self.commit()?;
        Ok(old.len())
    }

    /// Dialogues not finished.
    pub(super) fn open_count(&self) -> usize {
        self.dialogues.len().saturating_sub(self.finished.len())
    }

    /// A new state for a dialogue first seen (again) at `now`: one that was evicted goes on
    /// from its last revision, so every update it emits is newer than the ones before. Also
    /// says whether it had been evicted. (Tests look at it; the processor goes through
    /// [`Self::apply`].)
    #[cfg(test)]
    pub(super) fn new_state(&self, id: &str, now: i64) -> (DialogueState, bool) {
        new_state(&self.evicted, id, now)
    }
}

/// The state of dialogue `id`, created if there is none (an evicted one going on from its last
/// revision); with `Some(evicted before)` when it was created.
fn state_for<'a>(
    dialogues: &'a mut HashMap<String, DialogueState>,
    evicted: &HashMap<String, (u64, i64)>,
    id: &str,
    now: i64,
) -> (&'a mut DialogueState, Option<bool>) {
    let mut created = None;
    if !dialogues.contains_key(id) {
        let (state, revived) = new_state(evicted, id, now);
        created = Some(revived);
        dialogues.insert(id.to_owned(), state);
    }
    match dialogues.get_mut(id) {
        Some(state) => (state, created),
        None => unreachable!("dialogue `{id}` was just inserted"),
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

/// The whole frame starting at `at`, if there is one (length, checksum and payload intact).
fn frame_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let head = bytes.get(at..at + FRAME_HEAD)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    let payload = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len)?;
    (len > 0 && crc32fast::hash(payload) == crc).then_some(payload)
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("log-{generation:016}"))
}

fn generation_of(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("log-"))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// The logs in `dir`, oldest first.
fn logs(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let generation = generation_of(&path);
        if generation > 0 {
            out.push((generation, path));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("syncing {}: {e}", dir.display()))
}

/// The store format before this one: a redb file of each dialogue's state as JSON.
mod legacy {
    use std::collections::HashMap;
    use std::path::Path;

    use lumina_sdk::component::ComponentError;
    use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

    use super::super::fold::DialogueState;
    use super::store_error;

    const DIALOGUES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dialogues");
    const PENDING: TableDefinition<'_, &str, u64> = TableDefinition::new("pending");
    const EVICTED: TableDefinition<'_, &str, (u64, i64)> = TableDefinition::new("evicted");

    type State = (
        HashMap<String, DialogueState>,
        HashMap<String, u64>,
        HashMap<String, (u64, i64)>,
    );

    /// Every dialogue, pending mark and eviction in the redb store at `path`.
    pub(super) fn read(path: &Path) -> Result<State, ComponentError> {
        let db = Database::open(path)
            .map_err(|e| store_error(format!("cannot open {}: {e}", path.display())))?;
        let read = db.begin_read().map_err(store_error)?;
        let mut dialogues = HashMap::new();
        if let Ok(table) = read.open_table(DIALOGUES) {
            for row in table.iter().map_err(store_error)? {
                let (k, v) = row.map_err(store_error)?;
                let state: DialogueState = serde_json::from_slice(v.value()).map_err(|e| {
                    store_error(format!("dialogue `{}` does not decode: {e}", k.value()))
                })?;
                dialogues.insert(k.value().to_owned(), state);
            }
        }
        let mut pending = HashMap::new();
        if let Ok(table) = read.open_table(PENDING) {
            for row in table.iter().map_err(store_error)? {
                let (k, v) = row.map_err(store_error)?;
                pending.insert(k.value().to_owned(), v.value());
            }
        }
        let mut evicted = HashMap::new();
        if let Ok(table) = read.open_table(EVICTED) {
            for row in table.iter().map_err(store_error)? {
                let (k, v) = row.map_err(store_error)?;
                evicted.insert(k.value().to_owned(), v.value());
            }
        }
        Ok((dialogues, pending, evicted))
    }

    /// Writes a store in the previous format (for the test that carries one over).
    #[cfg(test)]
    pub(in super::super) fn write(path: &Path, state: &State) -> Result<(), String> {
        let db = Database::create(path).map_err(|e| e.to_string())?;
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut t = txn.open_table(DIALOGUES).map_err(|e| e.to_string())?;
            for (id, s) in &state.0 {
                let json = serde_json::to_vec(s).map_err(|e| e.to_string())?;
                t.insert(id.as_str(), json.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            let mut t = txn.open_table(PENDING).map_err(|e| e.to_string())?;
            for (id, r) in &state.1 {
                t.insert(id.as_str(), *r).map_err(|e| e.to_string())?;
            }
            let mut t = txn.open_table(EVICTED).map_err(|e| e.to_string())?;
            for (id, v) in &state.2 {
                t.insert(id.as_str(), *v).map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
