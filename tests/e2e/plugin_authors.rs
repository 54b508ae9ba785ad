//! What a plugin author does: a crate made from `examples/plugin-template` outside the
//! workspace runs its unit tests with the SDK's test kit, and `lumina plugin test` runs its
//! built artifact on JSON batches, passing on the expected output and failing on a mismatch or
//! a fault; `lumina plugin inspect` tells what a file is.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{lumina_bin, plugin, workspace};

/// `lumina plugin ...` in `dir`.
fn lumina_plugin(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(lumina_bin())
        .arg("plugin")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_test_runs_a_built_plugin_on_json_batches_and_fails_on_a_mismatch_or_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let event = |id: &str, caller: &str| {
        format!(
            r#"{{"eventId":"{id}","eventType":"CALL_STARTED","timestamp":"2026-12-01T10:00:00Z","organizationId":"org-1","accountId":"a","callGuid":"c1","legGuid":"l1","callerNumber":"{caller}"}}"#
        )
    };
    std::fs::write(
        d.join("settings.yaml"),
        "limits: { fuel: 100000000 }\nconfig: { keep_last: 2 }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("in.jsonl"),
        format!(
            "[{}]\n{}\n",
            event("e1", "+442071234567"),
            event("e2", "withheld")
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("want.jsonl"),
        format!(
            "[{}]\n[{}]\n",
            event("e1", "+**********67"),
            event("e2", "withheld")
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("wrong.jsonl"),
        format!(
            "[{}]\n[{}]\n",
            event("e1", "+442071234567"),
            event("e2", "withheld")
        ),
    )
    .unwrap();
    let wasm = plugin("redact_numbers.wasm");
    let wasm = wasm.to_str().unwrap();
    let args = |expect: &str| {
        vec![
            "test",
            "--plugin",
            wasm,
            "--config",
            "settings.yaml",
            "--input",
            "in.jsonl",
            "--expect",
            expect,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| lumina_plugin(d, &a.iter().map(String::as_str).collect::<Vec<_>>());

    // What the plugin gives is what is expected: each call's time and fuel are shown.
    let (code, out, err) = run(args("want.jsonl"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("redact-numbers 0.1.0 (wasm)"), "{out}");
    assert!(
        out.contains("batch 1: 1 logs item(s) in, 1 out (") && out.contains(", fuel "),
        "{out}"
    );
    assert!(
        out.contains("batch 2: 1 logs item(s) in, unchanged"),
        "{out}"
    );
    assert!(
        out.contains("+**********67") && out.ends_with("ok: 2 batch(es)\n"),
        "{out}"
    );

    // A batch that differs fails the run, and says where.
    let (code, out, _) = run(args("wrong.jsonl"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("batch 1: MISMATCH") && out.contains("record 1:"),
        "{out}"
    );
    assert!(!out.contains("batch 2: MISMATCH"), "{out}");

    // A fault fails it too, named.
    std::fs::write(d.join("trap.yaml"), "config: { mode: trap }\n").unwrap();
    let misbehave = plugin("misbehave.wasm");
    let (code, out, _) = lumina_plugin(
        d,
        &[
            "test",
            "--plugin",
            misbehave.to_str().unwrap(),
            "--config",
            "trap.yaml",
            "--input",
            "in.jsonl",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("batch 1: FAILED") && out.contains("trap"),
        "{out}"
    );

    // `inspect` tells what the file is.
    let (code, out, err) = lumina_plugin(d, &["inspect", wasm]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("exports lumina:plugin/processor@0.2.0"),
        "{out}"
    );
    assert!(
        out.contains("runs as a processor plugin: redact-numbers 0.1.0"),
        "{out}"
    );
    let so = plugin("libredact_numbers.so");
    let (code, out, err) = lumina_plugin(d, &["inspect", so.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("(native)") && out.contains("built for the C ABI version 1"),
        "{out}"
    );
    assert!(
        out.contains("runs as a processor plugin: redact-numbers 0.1.0"),
        "{out}"
    );
    let (code, _, err) = lumina_plugin(d, &["inspect", "settings.yaml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("a plugin is a `.wasm` component or a shared library"),
        "{err}"
    );
}

/// Copies `examples/plugin-template` to `dir` as the crate `my-plugin`, depending on this
/// checkout's SDK by path, with this workspace's lock file (so the same versions are used).
fn crate_from_template(dir: &Path) {
    let template = workspace().join("examples/plugin-template");
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        "testdata/events.jsonl",
        "testdata/expected.jsonl",
        "testdata/settings.yaml",
    ] {
        let to = dir.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(template.join(f), &to).unwrap();
    }
    let sdk = workspace().join("sdk");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("path = \"../../sdk\"")
            && manifest.contains("name = \"plugin-template\"")
    );
    let manifest = manifest
        .replace(
            "path = \"../../sdk\"",
            &format!("path = {:?}", sdk.display().to_string()),
        )
        .replace("name = \"plugin-template\"", "name = \"my-plugin\"");
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

/// `cargo ARGS` in the crate at `dir`, with a target directory of its own beside this
/// workspace's (the one running the tests is locked while they run), kept between runs.
fn cargo(dir: &Path, args: &[&str]) -> PathBuf {
    let target = lumina_bin()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("plugin-template");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} in a crate made from the template:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

#[test]
fn a_crate_made_from_the_template_passes_its_unit_tests_and_plugin_test() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate_from_template(d);
    // Its unit tests use the test kit (`plugin-testkit`) without the host's runtime.
    cargo(d, &["test", "--quiet"]);
    let target = cargo(d, &["build", "--quiet"]);
    let lib = target.join("debug/libmy_plugin.so");
    let lib = lib.to_str().unwrap();
    let run = |expect: &str| {
        lumina_plugin(
            d,
            &[
                "test",
                "--plugin",
                lib,
                "--config",
                "testdata/settings.yaml",
                "--input",
                "testdata/events.jsonl",
                "--expect",
                expect,
            ],
        )
    };
    let (code, out, err) = run("testdata/expected.jsonl");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("drop-event-types 0.1.0 (native)")
            && out.contains("batch 1: 2 logs item(s) in, 1 out"),
        "{out}"
    );
    // Expecting the DTMF event to stay fails it.
    std::fs::write(
        d.join("wrong.jsonl"),
        std::fs::read_to_string(d.join("testdata/events.jsonl")).unwrap(),
    )
    .unwrap();
    let (code, out, _) = run("wrong.jsonl");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("batch 1: MISMATCH: 1 record(s) out, 2 expected"),
        "{out}"
    );
}

#[test]
fn the_python_example_reads_the_records_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let event = |id: &str, t: &str| {
        format!(
            r#"{{"eventId":"{id}","eventType":"{t}","timestamp":"2026-12-01T10:00:00Z","organizationId":"org-1","accountId":"a","callGuid":"c1","legGuid":"l1"}}"#
        )
    };
    let batches = [
        format!("[{}]", event("e1", "CALL_STARTED")),
        format!(
            "[{},{}]",
            event("e2", "CALL_ANSWERED"),
            event("e3", "DTMF_RECEIVED")
        ),
        format!("[{}]", event("e4", "CALL_HELD")),
        format!(
            "[{},{}]",
            event("e5", "CALL_RESUMED"),
            event("e6", "CALL_ENDED")
        ),
    ];
    std::fs::write(d.join("in.jsonl"), batches.join("\n")).unwrap();
    // One batch in two is kept, and the fourth too: it holds a CALL_ENDED, which the plugin
    // finds by reading its records' `voice.event.type`.
    let want = [
        batches[0].clone(),
        "[]".into(),
        batches[2].clone(),
        batches[3].clone(),
    ];
    std::fs::write(d.join("want.jsonl"), want.join("\n")).unwrap();
    std::fs::write(
        d.join("settings.yaml"),
        "config: { keep_one_in: 2, always_keep: [CALL_ENDED] }\nlimits: { memory: 128MiB, timeout: 10s }\n",
    )
    .unwrap();
    let py = plugin("py_sampler.wasm");
    let (code, out, err) = lumina_plugin(
        d,
        &[
            "test",
            "--plugin",
            py.to_str().unwrap(),
            "--config",
            "settings.yaml",
            "--input",
            "in.jsonl",
            "--expect",
            "want.jsonl",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("batch 2: 2 logs item(s) in, dropped")
            && out.contains("batch 4: 2 logs item(s) in, unchanged"),
        "{out}"
    );
}
