use std::collections::{HashMap, HashSet};

use lumina_sdk::testkit::voice_event;
use lumina_sdk::voice::VoiceEvent;

use super::*;

fn event(dialogue: usize, id: usize, t: &str, secs: i64) -> VoiceEvent {
    let mut e = voice_event(&format!("e{id}"), &format!("c{dialogue}"), t, secs);
    e.dialogue_id = format!("d{dialogue}");
    e.data
        .insert("n".into(), serde_json::json!({ "id": id, "s": "ü" }));
    e
}

type Seen = (
    HashMap<String, DialogueState>,
    HashMap<String, u64>,
    HashMap<String, (u64, i64)>,
    HashSet<String>,
);

fn seen(s: &Store) -> Seen {
    (
        s.dialogues.clone(),
        s.pending.clone(),
        s.evicted.clone(),
        s.finished.clone(),
    )
}

/// Says what differs, if anything.
fn same(got: &Seen, want: &Seen, when: &str) {
    for (id, s) in &want.0 {
        assert_eq!(got.0.get(id), Some(s), "{when}: dialogue {id}");
    }
    assert_eq!(got.0.len(), want.0.len(), "{when}: dialogues");
    assert_eq!(got.1, want.1, "{when}: pending");
    assert_eq!(got.2, want.2, "{when}: evicted");
    assert_eq!(got.3, want.3, "{when}: finished");
}

fn open(dir: &Path) -> Store {
    let mut s = Store::open(dir.to_path_buf(), None).unwrap();
    s.snapshot_after = 0;
    s
}

/// Random work, with restarts and snapshots (written, or cut short as by a crash) between:
/// after every restart the store holds exactly what it held before.
#[test]
fn a_reopened_store_holds_what_it_held_through_snapshots_evictions_and_cut_short_snapshots() {
    for seed in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.dialogues");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut store = open(&path);
        let mut now = 1_000;
        let (mut restarts, mut snapshots) = (0, 0);
        for _ in 0..300 {
            now += rng.i64(1..50);
            match rng.u8(0..100) {
                0..60 => {
                    for _ in 0..rng.usize(1..20) {
                        let t = ["CALL_STARTED", "CALL_ANSWERED", "CALL_HELD", "CALL_ENDED"]
                            [rng.usize(0..4)];
                        let e = event(rng.usize(0..10), rng.usize(0..60), t, rng.i64(0..100));
                        store.apply(&e, now);
                    }
                    store.commit().unwrap();
                }
                60..70 => {
                    let done: Vec<(String, u64)> = store
                        .pending
                        .iter()
                        .filter(|_| rng.bool())
                        .map(|(k, v)| (k.clone(), *v))
                        .collect();
                    store.emitted(&done).unwrap();
                }
                70..75 => {
                    let open: Vec<String> = store
                        .dialogues
                        .keys()
                        .filter(|id| !store.finished.contains(*id))
                        .take(2)
                        .cloned()
                        .collect();
                    for id in &open {
                        store.close_idle(id, DialogueStatus::Failed, now);
                    }
                    store.commit().unwrap();
                }
                75..82 => {
                    store.evict(now - 100, now, now - 400).unwrap();
                }
                82..90 => {
                    if let Some(snapshot) = store.snapshot_due().unwrap() {
                        snapshots += 1;
                        if rng.bool() {
                            let written = snapshot.write();
                            store.snapshot_written(&written);
                            written.unwrap();
                        }
                        // Else dropped unwritten: a crash after the new log was started.
                    }
                }
                _ => {
                    let before = seen(&store);
                    drop(store);
                    store = open(&path);
                    restarts += 1;
                    same(
                        &seen(&store),
                        &before,
                        &format!("seed {seed}: after restart {restarts}"),
                    );
                    assert_eq!(store.recovered, store.pending);
                }
            }
        }
        let before = seen(&store);
        drop(store);
        let store = open(&path);
        same(&seen(&store), &before, &format!("seed {seed}: at the end"));
        assert!(
            restarts > 5 && snapshots > 2,
            "seed {seed}: {restarts} restarts, {snapshots} snapshots"
        );
        // Written snapshots replaced the logs before them.
        assert!(logs(&path).unwrap().len() <= snapshots + 1);
    }
}

#[test]
fn a_torn_last_write_is_cut_off_and_the_store_goes_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.dialogues");
    let mut store = open(&path);
    store.apply(&event(1, 1, "CALL_STARTED", 0), 10);
    store.commit().unwrap();
    // The next batch's frame, cut off half way (a crash while it was written).
    let log = log_path(&path, store.generation);
    let good = std::fs::metadata(&log).unwrap().len();
    store.apply(&event(1, 2, "CALL_ENDED", 5), 20);
    store.commit().unwrap();
    let whole = std::fs::metadata(&log).unwrap().len();
    drop(store);
    let f = OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(good + (whole - good) / 2).unwrap();
    drop(f);

    let mut store = open(&path);
    assert_eq!(
        store.dialogues["d1"].events.len(),
        1,
        "the torn batch is gone"
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good);
    store.apply(&event(1, 3, "CALL_HELD", 3), 30);
    store.commit().unwrap();
    drop(store);
    let store = open(&path);
    let ids: Vec<&str> = store.dialogues["d1"]
        .events
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(ids, ["e1", "e3"]);
    assert_eq!(store.dialogues["d1"].revision, 2);
}

#[test]
fn a_damaged_snapshot_is_refused_by_name_rather_than_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.dialogues");
    let mut store = open(&path);
    store.apply(&event(1, 1, "CALL_STARTED", 0), 10);
    store.commit().unwrap();
    let snapshot = store.snapshot_due().unwrap().unwrap();
    snapshot.write().unwrap();
    drop(store);
    let file = path.join("snapshot");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let err = Store::open(path.clone(), None).err().unwrap().to_string();
    assert!(
        err.contains("snapshot") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn a_store_of_the_previous_format_is_carried_over_once() {
    let dir = tempfile::tempdir().unwrap();
    let legacy_path = dir.path().join("p.redb");
    let mut s = DialogueState::new("d1", 5);
    s.apply(&event(1, 1, "CALL_STARTED", 0), 5);
    s.apply(&event(1, 2, "CALL_ENDED", 9), 6);
    let state = (
        HashMap::from([("d1".to_owned(), s)]),
        HashMap::from([("d1".to_owned(), 2)]),
        HashMap::from([("d0".to_owned(), (7, 3))]),
    );
    legacy::write(&legacy_path, &state).unwrap();
    let path = dir.path().join("p.dialogues");
    let store = Store::open(path.clone(), Some(&legacy_path)).unwrap();
    assert_eq!(
        (&store.dialogues, &store.pending, &store.evicted),
        (&state.0, &state.1, &state.2)
    );
    assert!(store.finished.contains("d1"));
    assert!(!legacy_path.exists());
    assert!(dir.path().join("p.redb.migrated").is_file());
    drop(store);
    let store = Store::open(path, Some(&legacy_path)).unwrap();
    assert_eq!(store.dialogues, state.0);
}
