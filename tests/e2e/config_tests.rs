//! `lumina test`: the shipped configs' tests pass; a changed expectation fails at its line
//! with what differed; each test starts from empty state; a test writes nothing where it runs;
//! a malformed tests file is refused with its errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{lumina_bin, workspace};

fn lumina_test(config: &Path, tests: Option<&Path>, dir: &Path) -> (i32, String, String) {
    lumina_test_with(config, tests, dir, &[])
}

fn lumina_test_with(
    config: &Path,
    tests: Option<&Path>,
    dir: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut cmd = Command::new(lumina_bin());
    cmd.arg("test")
        .args(extra)
        .arg("--config")
        .arg(config)
        .current_dir(dir);
    if let Some(t) = tests {
        cmd.arg("--tests").arg(t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn config(name: &str) -> PathBuf {
    workspace().join("configs").join(name)
}

/// The 1-based line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn every_shipped_config_has_tests_and_they_pass() {
    let mut configs = 0;
    for entry in std::fs::read_dir(workspace().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") || name.ends_with(".tests.yaml") {
            continue;
        }
        let tests = path.with_file_name(name.replace(".yaml", ".tests.yaml"));
        assert!(
            tests.exists(),
            "{name} has no tests file ({})",
            tests.display()
        );
        // From the workspace: tier1's tenants table is a path relative to it.
        let (code, out, err) = lumina_test(&path, None, &workspace());
        assert_eq!(code, 0, "{name}:\n{out}\n{err}");
        let last = out.lines().last().unwrap_or_default();
        assert!(last.ends_with(" passed, 0 failed."), "{name}: {out}");
        assert!(!last.starts_with("0 tests"), "{name}: {out}");
        configs += 1;
    }
    assert!(configs >= 4, "{configs}");
}

#[test]
fn a_changed_expectation_fails_at_its_line_with_what_differed_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(config("local.tests.yaml")).unwrap();
    let mut text = shipped.clone();
    for (from, to) in [
        ("duration: 65", "duration: 66"),
        ("count: 3", "count: 4"),
        (
            "no_outputs_from: [dialogue_assembly, file/dialogues]",
            "no_outputs_from: [dialogue_assembly, file]",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let tests = dir.path().join("local.tests.yaml");
    std::fs::write(&tests, &text).unwrap();

    let (code, out, err) = lumina_test(&config("local.yaml"), Some(&tests), dir.path());
    assert_eq!(code, 1, "{out}\n{err}");
    // The fourth test (a span as OTLP/JSON) was not changed.
    assert!(out.ends_with("4 tests: 1 passed, 3 failed.\n"), "{out}");
    let at = |needle: &str| format!("--> {}:{}:", tests.display(), line_of(&text, needle));
    // Each failure points at the line of the expectation, says what came out instead.
    for (needle, message) in [
        ("duration: 66", "expected 66, got 65"),
        (
            "count: 4",
            "expected 4 record(s) out of `dialogue_assembly`, got 3",
        ),
        (
            "no_outputs_from: [dialogue_assembly, file]",
            "expected nothing out of `file`, got 2 record(s)",
        ),
    ] {
        let i = out
            .find(message)
            .unwrap_or_else(|| panic!("no `{message}` in:\n{out}"));
        let after = &out[i..];
        let next_error = after[1..].find("error:").map_or(after.len(), |j| j + 1);
        assert!(
            after[..next_error].contains(&at(needle)),
            "`{message}` not located at {}:\n{out}",
            at(needle)
        );
    }
    // `--name` runs only the tests it names: here the unchanged one.
    let (code, only, _) = lumina_test_with(
        &config("local.yaml"),
        Some(&tests),
        dir.path(),
        &["--name", "OTLP/JSON"],
    );
    assert_eq!(code, 0, "{only}");
    assert!(only.ends_with("1 test: 1 passed, 0 failed.\n"), "{only}");
    // The shipped tests pass, so each failure is the change's.
    let (code, out, err) = lumina_test(&config("local.yaml"), None, &workspace());
    assert_eq!(code, 0, "{out}\n{err}");

    // The dialogue store, the file exporters' files and dead letters were all kept out of
    // the directory the tests ran in (local.yaml puts them under ./lumina-data).
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["local.tests.yaml"]);
}

const ONE_START: &str = r#"
  - name: NAME
    inputs:
      - insert_at: dialogue_assembly
        events:
          - { eventId: e1, eventType: CALL_STARTED, timestamp: "2026-11-23T10:15:00Z",
              organizationId: org-1, accountId: acc-1, callGuid: call-1, legGuid: leg-1 }
    outputs:
      - extract_from: dialogue_assembly
        count: 1
        records:
          - body: { status: ACTIVE, revision: 1 }
"#;

#[test]
fn each_test_starts_from_empty_state() {
    // The same event twice in one store would be a duplicate with no output; in two tests
    // each sees a new dialogue.
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("twice.tests.yaml");
    let text = format!(
        "tests:{}{}",
        ONE_START.replace("NAME", "first"),
        ONE_START.replace("NAME", "second")
    );
    std::fs::write(&tests, text).unwrap();
    let (code, out, err) = lumina_test(&config("local.yaml"), Some(&tests), dir.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.ends_with("2 tests: 2 passed, 0 failed.\n"), "{out}");
}

#[test]
fn a_malformed_tests_file_is_refused_with_each_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("bad.tests.yaml");
    let text = ONE_START
        .replace("NAME", "bad")
        .replace("callGuid: call-1, ", "")
        .replace("extract_from", "extract_form");
    // An input with no records would test nothing.
    let empty = "  - name: empty\n    inputs: [{ insert_at: gp, events: [] }]\n    no_outputs_from: [file]\n";
    let text = format!("tests:{text}{empty}");
    std::fs::write(&tests, &text).unwrap();
    let (code, out, err) = lumina_test(&config("local.yaml"), Some(&tests), dir.path());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.is_empty(), "no test runs: {out}");
    let event = format!("--> {}:{}:", tests.display(), line_of(&text, "eventId: e1"));
    let key = format!(
        "--> {}:{}:",
        tests.display(),
        line_of(&text, "extract_form")
    );
    assert!(err.contains("event field `callGuid`"), "{err}");
    assert!(err.contains(&event), "{event}\n{err}");
    assert!(
        err.contains("unknown key `extract_form` in an output"),
        "{err}"
    );
    assert!(err.contains("did you mean `extract_from`?"), "{err}");
    assert!(err.contains(&key), "{key}\n{err}");
    assert!(err.contains("`events` lists no event"), "{err}");
}
