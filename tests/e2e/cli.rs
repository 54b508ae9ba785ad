//! The `lumina` command line: components, print-config, run with a bad config, the embedded
//! default.

use std::process::Command;

use crate::harness::{Collector, lumina_bin};

fn lumina(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(lumina_bin())
        .args(args)
        .current_dir(dir)
        .env("LUMINA_TEST_SECRET", "s3cret-from-env")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn components_lists_every_built_in_type() {
    let (code, out, _) = lumina(&["components"], std::path::Path::new("."));
    assert_eq!(code, 0);
    for (kind, ty) in [
        ("receiver", "otlp"),
        ("receiver", "nop"),
        ("processor", "batch"),
        ("exporter", "otlp"),
        ("exporter", "otlphttp"),
        ("exporter", "debug"),
        ("exporter", "file"),
        ("exporter", "nop"),
        ("receiver", "wasm"),
        ("processor", "wasm"),
        ("exporter", "wasm"),
        ("receiver", "native"),
        ("processor", "native"),
        ("exporter", "native"),
        ("connector", "forward"),
        ("extension", "health_check"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().take(2).collect::<Vec<_>>() == [kind, ty]),
            "{kind} {ty} missing:\n{out}"
        );
    }
    assert!(
        out.contains("logs,traces,metrics") && out.contains("beta"),
        "{out}"
    );
}

#[test]
fn print_config_merges_files_expands_variables_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}\nexporters:\n  otlp:\n    endpoint: a.example:4317\n    headers: {authorization: 'Bearer ${env:LUMINA_TEST_SECRET}', x-tenant: acme}\nservice: {pipelines: {logs: {receivers: [otlp], exporters: [otlp]}}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "exporters:\n  otlp:\n    endpoint: b.example:4317\n",
    )
    .unwrap();
    let (code, out, err) = lumina(
        &["print-config", "--config", "a.yaml", "--config", "b.yaml"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("endpoint: b.example:4317"),
        "the later file wins:\n{out}"
    );
    assert!(
        out.contains("x-tenant: acme"),
        "keys the later file does not set are kept:\n{out}"
    );
    assert!(out.contains("authorization: \"[REDACTED]\""), "{out}");
    assert!(
        !out.contains("s3cret"),
        "the secret must not be printed:\n{out}"
    );
}

#[test]
fn run_with_a_bad_config_reports_it_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "receivers: {otlp: {protocols: {grpc:}}}\nservice: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}\n").unwrap();
    let (code, _, err) = lumina(&["--config", "bad.yaml"], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("error: exporter `debug` is not defined"),
        "{err}"
    );
    assert!(err.contains("--> bad.yaml:2:61"), "{err}");
}

#[test]
fn the_embedded_default_validates_without_a_config() {
    let (code, out, err) = lumina(&["validate"], std::path::Path::new("."));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("5 pipeline(s): logs/voice, metrics/voice, logs, traces, metrics"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_check_extension_and_json_logs_work() {
    let port = crate::harness::free_port();
    let config = format!(
        "
receivers: {{ otlp: {{ protocols: {{ http: {{ endpoint: '127.0.0.1:{{http}}' }} }} }} }}
exporters: {{ nop: }}
extensions: {{ health_check: {{ endpoint: '127.0.0.1:{port}', path: /healthz }} }}
service:
  extensions: [health_check]
  telemetry: {{ logs: {{ encoding: json, level: debug }} }}
  pipelines: {{ logs: {{ receivers: [otlp], exporters: [nop] }} }}
"
    );
    let c = Collector::start(&config).await;
    let text = crate::harness::http()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["healthy"], true);
    assert_eq!(body["pipelines"]["logs"], "running");
    let stopped = c.stop().await;
    stopped.assert_clean();
    let lines: Vec<&str> = stopped
        .log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{l}"
        );
    }
}

#[test]
fn the_readme_example_config_is_valid() {
    let readme = std::fs::read_to_string(crate::harness::workspace().join("README.md")).unwrap();
    let section = &readme[readme.find("## Configuration").unwrap()..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let yaml = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.yaml"), yaml).unwrap();
    let (code, out, err) = lumina(&["validate", "--config", "readme.yaml"], dir.path());
    assert_eq!(
        code, 0,
        "the README's example config must stay valid:\n{err}"
    );
    assert!(
        out.contains("3 pipeline(s): logs, traces/copy, traces"),
        "{out}"
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (code, bash, err) = lumina(&["completions", "bash"], dir.path());
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.path().join("lumina.bash"), &bash).unwrap();
    // The script is valid bash, and completes every subcommand.
    let check = Command::new("bash")
        .args(["-n", "lumina.bash"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for sub in [
        "validate",
        "dlq",
        "replay",
        "plugin",
        "inspect",
        "completions",
        "print-config",
    ] {
        assert!(bash.contains(sub), "{sub} is not completed");
    }
    let (code, man, _) = lumina(&["man"], dir.path());
    assert_eq!(code, 0);
    assert!(man.contains(".TH lumina 1"), "{man}");
    assert!(
        man.contains("validate") && man.contains("dead letters"),
        "{man}"
    );
}

#[test]
fn without_config_the_system_config_is_read_when_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("config.yaml");
    std::fs::write(
        &sys,
        "receivers: { nop: {} }\nexporters: { nop: {} }\nservice: { pipelines: { logs/system: { receivers: [nop], exporters: [nop] } } }\n",
    )
    .unwrap();
    let out = Command::new(lumina_bin())
        .arg("validate")
        .env("LUMINA_DEFAULT_CONFIG", &sys)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("No --config given: checked {}.", sys.display())),
        "{stdout}"
    );
    assert!(stdout.contains("logs/system"), "{stdout}");
    // Absent, the built-in one is used.
    let out = Command::new(lumina_bin())
        .arg("validate")
        .env("LUMINA_DEFAULT_CONFIG", dir.path().join("missing.yaml"))
        .current_dir(crate::harness::workspace())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked the built-in configuration"));
}
