//! Small helpers the host and components share.

/// Wall-clock nanoseconds since the Unix epoch (0 if the clock reads before it).
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `name` (a component id, a pipeline id) as part of a file name: ASCII letters, digits, `-`
/// and `.` are kept, anything else (`/` included) becomes `_` (`kinesis/eu-west-1` →
/// `kinesis_eu-west-1`).
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether the open `file` is still the file at `path` (false when the path was renamed away
/// or removed since it was opened: a claimed dead-letter file, a rotated log).
pub fn still_at(file: &std::fs::File, path: &std::path::Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) => Ok(open.dev() == now.dev() && open.ino() == now.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        Ok(true)
    }
}

/// Appends `bytes` to the file at `path` (created if missing) and syncs it, following the
/// protocol that lets a reader claim the file while writers append: every writer holds an
/// exclusive lock on the file while it writes, and writes only once it has checked, under the
/// lock, that the file it opened is still the one at `path`. A reader claims the file by
/// renaming it, then takes the lock before reading: a write that had opened the file before
/// the rename either finished before the reader got the lock (and is read), or finds the file
/// moved and writes to a new one at `path`. Nothing appended is lost to the claim.
pub fn append_claimable(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    loop {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.lock()?;
        if !still_at(&f, path)? {
            // Claimed between the open and the lock: write to the new file at `path`.
            continue;
        }
        f.write_all(bytes)?;
        f.sync_data()?;
        return Ok(());
    }
}

/// Claims the file at `path` for reading, as `append_claimable`'s writers expect: renames it
/// to `claimed`, then waits for the lock, so that every write begun before the claim is in it.
/// Returns the claimed file, locked (the lock is released when it is dropped); `None` if there
/// was no file at `path`.
pub fn claim(
    path: &std::path::Path,
    claimed: &std::path::Path,
) -> std::io::Result<Option<std::fs::File>> {
    match std::fs::rename(path, claimed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let f = std::fs::OpenOptions::new().read(true).open(claimed)?;
    f.lock()?;
    Ok(Some(f))
}

/// An error and its causes in one line, each cause once: a cause whose text the message already
/// contains (an error that both displays and chains its source) is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems_keep_only_safe_characters() {
        assert_eq!(super::file_stem("kinesis/eu-west-1"), "kinesis_eu-west-1");
        assert_eq!(super::file_stem("a b/../c"), "a_b_.._c");
    }

    #[test]
    fn a_write_to_a_claimed_file_goes_to_a_new_file_at_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("letters.jsonl");
        super::append_claimable(&path, b"one\n").unwrap();
        // A writer opened the file before the claim...
        let early = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let claimed = dir.join("letters.jsonl.replay");
        let held = super::claim(&path, &claimed).unwrap().unwrap();
        // ...and finds it moved once it gets the lock.
        assert!(!super::still_at(&early, &path).unwrap());
        drop(held);
        super::append_claimable(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&claimed).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert!(
            super::claim(&dir.join("none"), &dir.join("none.replay"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot listen on {endpoint}: {source}")]
        struct Bind {
            endpoint: String,
            source: std::io::Error,
        }
        #[derive(Debug, thiserror::Error)]
        #[error("receiver `rt`: {0}")]
        struct Component(#[source] Bind);
        let e = Component(Bind {
            endpoint: "127.0.0.1:4317".into(),
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use"),
        });
        assert_eq!(
            super::error_chain(&e),
            "receiver `rt`: cannot listen on 127.0.0.1:4317: Address already in use"
        );
        let io = std::io::Error::other("disk full");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write the queue")]
        struct Write(#[source] std::io::Error);
        assert_eq!(
            super::error_chain(&Write(io)),
            "cannot write the queue: disk full"
        );
    }
}
