//! The admin endpoint: `lumina tap` shows the records of a running pipeline under load
//! without costing it a record, `lumina top` (its data endpoint, its plain table and its
//! terminal view) shows each component's rates, and both need the token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lumina_sdk::{Batch, Signal};

use crate::harness::{Collector, http, logs_client, logs_request, lumina_bin, wait_for};

const CONFIG: &str = r#"
receivers:
  otlp: { protocols: { grpc: { endpoint: "127.0.0.1:{grpc}" } } }
processors:
  transform: { source: '.attributes.tapped = "after transform"' }
exporters:
  file: { path: "{dir}/out.jsonl" }
service:
  telemetry:
    admin: { address: "127.0.0.1:{port:admin}", token: s3cret }
  pipelines:
    logs: { receivers: [otlp], processors: [transform], exporters: [file] }
"#;

fn records_in(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            Batch::decode_json(Signal::Logs, l.as_bytes())
                .unwrap()
                .len()
        })
        .sum()
}

/// `lumina tap ARGS...` against the collector, its stdout lines as they come.
fn tap(c: &Collector, args: &[&str]) -> std::process::Child {
    Command::new(lumina_bin())
        .arg("tap")
        .args(args)
        .args(["--admin", &format!("127.0.0.1:{}", c.port("admin"))])
        .env("LUMINA_ADMIN_TOKEN", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child's output once it exits; killed (and the test failed) after 30 s.
async fn finished(child: std::process::Child) -> std::process::Output {
    let pid = child.id();
    let waiter = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    match tokio::time::timeout(Duration::from_secs(30), waiter).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("`lumina tap` did not finish in 30 s: it saw fewer batches than asked");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_and_top_show_a_pipeline_under_load_which_loses_nothing_to_them() {
    let c = Collector::start(CONFIG).await;
    // Load: batches of 100 records until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, sent, port) = (stop.clone(), sent.clone(), c.grpc);
        tokio::spawn(async move {
            let mut client = logs_client(port).await;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                client.export(logs_request(i, 100, 64)).await.unwrap();
                i += 100;
                sent.store(i, Ordering::Relaxed);
            }
        })
    };

    // Out of `transform`: its attribute is set.
    let out = tap(&c, &["transform", "--format", "json", "--limit", "3"]);
    let o = finished(out).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines[0]["notice"].as_str().unwrap().contains("lossy"),
        "{lines:?}"
    );
    let batches: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("batch").is_some()).collect();
    assert_eq!(batches.len(), 3, "{lines:?}");
    for b in &batches {
        assert_eq!(
            (
                b["component"].as_str(),
                b["direction"].as_str(),
                b["pipeline"].as_str()
            ),
            (Some("transform"), Some("output"), Some("logs"))
        );
        assert!(b["batch"].to_string().contains("after transform"), "{b}");
    }
    // Into `transform`: not yet.
    let into = tap(
        &c,
        &["transform", "--inputs", "--format", "json", "--limit", "1"],
    );
    let text = String::from_utf8(finished(into).await.stdout).unwrap();
    assert!(
        text.contains("\"direction\":\"input\"") && !text.contains("after transform"),
        "{text}"
    );
    // The debug format, from the exporter's input, limited to 10 records a second: lossy,
    // and it says how much it left out.
    let mut slow = tap(&c, &["file", "--inputs", "--rate", "10"]);
    let reader = BufReader::new(slow.stdout.take().unwrap());
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in reader.lines() {
            let line = line.unwrap();
            let done = line.starts_with("# dropped");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    slow.kill().unwrap();
    let _ = slow.wait();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("== exporter file in logs into (logs)")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("tapped: Str(after transform)")),
        "{seen:#?}"
    );

    // `top --once`: rates over half a second, under load.
    let once = Command::new(lumina_bin())
        .args(["top", "--once", "--interval", "500ms", "--admin"])
        .arg(format!("127.0.0.1:{}", c.port("admin")))
        .env("LUMINA_ADMIN_TOKEN", "s3cret")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&once.stdout);
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert!(table.starts_with("COMPONENT"), "{table}");
    for row in ["receiver/otlp", "processor/transform", "exporter/file"] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{table}"));
        let out_rate: f64 = line
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_end_matches('k')
            .parse()
            .unwrap();
        assert!(
            out_rate > 0.0,
            "{row} shows no records under load:\n{table}"
        );
    }

    // Without --admin and a token, both come from the collector's own config.
    let from_config = Command::new(lumina_bin())
        .args(["top", "--once", "--interval", "200ms", "--config"])
        .arg(c.path("config.yaml"))
        .env_remove("LUMINA_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&from_config.stdout);
    assert!(
        from_config.status.success() && text.contains("processor/transform"),
        "{text}{}",
        String::from_utf8_lossy(&from_config.stderr)
    );

    // The terminal view, in a real terminal.
    let session = format!("lumina-top-{}", std::process::id());
    let ok = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "160", "-y", "20"])
        .arg(format!(
            "{} top --interval 300ms --admin 127.0.0.1:{} --token s3cret",
            lumina_bin().display(),
            c.port("admin")
        ))
        .status()
        .unwrap();
    assert!(ok.success());
    let screen = wait_for(Duration::from_secs(20), || {
        let cap = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&cap.stdout).into_owned();
        if screen.contains("processor/transform") && screen.contains(" up ") {
            Ok(screen)
        } else {
            Err(format!("not drawn yet:\n{screen}"))
        }
    })
    .await;
    assert!(
        screen.contains("lumina top") && screen.contains("OUT/s"),
        "{screen}"
    );
    Command::new("tmux")
        .args(["send-keys", "-t", &session, "q"])
        .status()
        .unwrap();
    let gone = wait_for(Duration::from_secs(10), || {
        let alive = Command::new("tmux")
            .args(["has-session", "-t", &session])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if alive {
            Err("top did not quit on q".to_owned())
        } else {
            Ok(())
        }
    });
    gone.await;

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let total = sent.load(Ordering::Relaxed);
    // Nothing was lost to the taps: the file holds every record sent.
    wait_for(Duration::from_secs(30), || {
        let n = records_in(&c.path("out.jsonl"));
        if n == total {
            Ok(())
        } else {
            Err(format!("{n} of {total} records in the file"))
        }
    })
    .await;
    // `/v1/top` counts what the receiver took.
    let snap: serde_json::Value = http()
        .get(format!("http://127.0.0.1:{}/v1/top", c.port("admin")))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        snap["components"]["receiver/otlp"]["incoming"], total as f64,
        "{snap}"
    );
    assert_eq!(
        snap["components"]["exporter/file"]["outgoing"], total as f64,
        "{snap}"
    );

    // Without the token: refused.
    let r = http()
        .get(format!("http://127.0.0.1:{}/v1/top", c.port("admin")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let denied = Command::new(lumina_bin())
        .args(["tap", "--admin", &format!("127.0.0.1:{}", c.port("admin"))])
        .env_remove("LUMINA_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
    c.stop().await.assert_clean();
}

#[test]
fn an_admin_endpoint_reachable_from_other_hosts_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "receivers: { nop: {} }\nexporters: { nop: {} }\nservice:\n  telemetry:\n    admin: { address: \"0.0.0.0:8899\" }\n  pipelines:\n    logs: { receivers: [nop], exporters: [nop] }\n",
    )
    .unwrap();
    let out = Command::new(lumina_bin())
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("telemetry.admin.token"),
        "{err}"
    );
    assert!(err.contains("is required"), "{err}");
}
