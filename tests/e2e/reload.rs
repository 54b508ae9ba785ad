//! Reloading the configuration of a running collector (SIGHUP, `--watch-config`): under load,
//! unchanged components keep running with their state and queues, changed ones are rebuilt,
//! nothing acknowledged is lost, and a config that does not validate is refused with its
//! errors while the running one stays, as does one whose new parts cannot be built; a new
//! receiver that cannot start leaves the rest applied. systemd hears of each step
//! (`Type=notify`).

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lumina_callsim::{Progress, Wire, generate};

use crate::harness::{Collector, wait_for, wait_until};
use crate::voice::{compare, dialogues, sim, target, truth};

fn config(extra_exporter: bool, rt_limit: usize) -> String {
    let (decl, used) = if extra_exporter {
        (
            "  file/copy: { path: \"{dir}/copy.jsonl\" }\n",
            ", file/copy",
        )
    } else {
        ("", "")
    };
    format!(
        r#"
receivers:
  gp:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:{{port:gp_grpc}}" }}
      http: {{ endpoint: "127.0.0.1:{{port:gp_http}}" }}
  rt:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:{{port:rt_grpc}}" }}
      http: {{ endpoint: "127.0.0.1:{{port:rt_http}}" }}
    max_events_per_request: {rt_limit}
processors:
  dialogue_assembly:
    storage: {{ directory: "{{dir}}/state" }}
    idle_timeout: 3s
    check_interval: 100ms
exporters:
  file:
    path: "{{dir}}/dialogues.jsonl"
    sending_queue: {{ queue_size: 10000 }}
{decl}service:
  pipelines:
    logs:
      receivers: [gp, rt]
      processors: [dialogue_assembly]
      exporters: [file{used}]
"#
    )
}

/// Collects what the collector tells systemd.
fn notify_socket(dir: &std::path::Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (path.display().to_string(), got)
}

/// The config as `Collector` wrote it, with the ports and directory it chose.
fn rewrite(c: &Collector, text: &str) {
    let dir = c.path("");
    let mut text = text.replace("{dir}", dir.to_str().unwrap().trim_end_matches('/'));
    for name in ["gp_grpc", "gp_http", "rt_grpc", "rt_http"] {
        text = text.replace(&format!("{{port:{name}}}"), &c.port(name).to_string());
    }
    std::fs::write(c.path("config.yaml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_keeps_state_and_queues_rebuilds_what_changed_and_refuses_a_bad_config()
{
    let sockdir = tempfile::tempdir().unwrap();
    let (socket, told) = notify_socket(sockdir.path());
    let c = Collector::start_with_env(
        &config(false, 1000),
        &[],
        vec![("NOTIFY_SOCKET".into(), socket)],
    )
    .await;
    wait_until(Duration::from_secs(10), "READY=1", || {
        told.lock()
            .unwrap()
            .iter()
            .any(|m| m.starts_with("READY=1"))
    })
    .await;

    let plan = generate(&sim(1500, 21));
    let total = plan.sends.len() as u64;
    let progress = Arc::new(Progress::default());
    let mut t = target(&c, Wire::Otlp);
    // Slow enough that the reloads happen while calls are in flight.
    t.rate = Some(total as f64 / 6.0);
    t.batch = 50;
    let sender = {
        let (plan, progress) = (plan.clone(), progress.clone());
        tokio::spawn(async move { lumina_callsim::send(&plan, &t, progress).await })
    };

    // A third in: add an exporter and change `rt` (rebuilt: it listens again on its port).
    progress.wait_acknowledged(total / 3).await;
    rewrite(&c, &config(true, 900));
    c.signal("HUP");
    let log = wait_for(Duration::from_secs(30), || {
        let log = c.log();
        if log.contains("SIGHUP: the configuration was reloaded") {
            Ok(log)
        } else {
            Err(format!("no reload:\n{log}"))
        }
    })
    .await;
    let line = log
        .lines()
        .find(|l| l.contains("the configuration was reloaded"))
        .unwrap();
    for kept in [
        "receiver gp",
        "processor dialogue_assembly of logs",
        "exporter file",
    ] {
        assert!(
            line.split("Kept running:")
                .nth(1)
                .unwrap()
                .split("Stopped")
                .next()
                .unwrap()
                .contains(kept),
            "{kept} was not kept: {line}"
        );
    }
    assert!(line.contains("Stopped or replaced: receiver rt."), "{line}");

    // Two thirds in: a config that does not validate is refused, with where and why.
    progress.wait_acknowledged(2 * total / 3).await;
    let bad =
        config(true, 900).replace("idle_timeout: 3s", "idle_timeout: 3s\n    idle_timout: 4s");
    rewrite(&c, &bad);
    c.signal("HUP");
    let log = wait_for(Duration::from_secs(30), || {
        let log = c.log();
        if log.contains("the new configuration is not valid") {
            Ok(log)
        } else {
            Err(format!("no refusal:\n{log}"))
        }
    })
    .await;
    let line = bad.lines().position(|l| l.contains("idle_timout")).unwrap() + 1;
    assert!(log.contains("unknown key `idle_timout`"), "{log}");
    assert!(
        log.contains(&format!("config.yaml:{line}:5")),
        "the error is not placed at line {line}:\n{log}"
    );

    let report = sender.await.unwrap().unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");
    // Every acknowledged event is in its dialogue: state and queues survived both reloads.
    let expected = truth(&plan);
    wait_for(Duration::from_secs(60), || {
        compare(&dialogues(&c.path("dialogues.jsonl")), &expected)
    })
    .await;
    // The exporter added by the reload got what ended after it, and nothing else.
    let copy = dialogues(&c.path("copy.jsonl"));
    assert!(!copy.is_empty(), "the new exporter got nothing");
    assert!(copy.keys().all(|id| expected.contains_key(id)), "{copy:?}");
    assert!(
        copy.iter().any(|(id, d)| expected[id] == *d),
        "no finished dialogue reached the new exporter"
    );
    assert_eq!(
        c.metric("lumina_config_reloads_total", &[("outcome", "ok")])
            .await,
        1.0
    );
    assert_eq!(
        c.metric("lumina_config_reloads_total", &[("outcome", "invalid")])
            .await,
        1.0
    );
    c.stop().await.assert_clean();
    // The process has exited, so everything it told systemd has been sent.
    wait_until(Duration::from_secs(5), "STOPPING=1", || {
        told.lock().unwrap().len() >= 6
    })
    .await;
    let told = told.lock().unwrap().clone();
    let steps: Vec<&str> = told
        .iter()
        .map(|m| m.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(
        steps,
        [
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "RELOADING=1",
            "READY=1",
            "STOPPING=1"
        ],
        "{told:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_config_a_changed_file_is_applied_without_a_signal() {
    let c = Collector::start_with(&config(false, 1000), &["--watch-config"]).await;
    rewrite(&c, &config(true, 1000));
    wait_until(
        Duration::from_secs(30),
        "a reload on the file change",
        || {
            c.log()
                .contains("a config file changed: the configuration was reloaded")
        },
    )
    .await;
    // What is sent now reaches the exporter the file added.
    let plan = generate(&sim(20, 5));
    crate::voice::send_all(&c, &plan, Wire::Otlp).await;
    let expected = truth(&plan);
    wait_for(Duration::from_secs(30), || {
        compare(&dialogues(&c.path("copy.jsonl")), &expected)
    })
    .await;

    // A valid config whose changed processor cannot be built (its store would be under a
    // file): nothing changes, the running graph stays.
    let blocked = config(true, 1000).replace("{dir}/state", "{dir}/config.yaml/state");
    rewrite(&c, &blocked);
    wait_until(Duration::from_secs(30), "a failed reload", || {
        c.log().contains("the new configuration could not be built")
    })
    .await;
    // A new receiver that cannot listen (this test holds its port): the rest is applied.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let partial = config(true, 1000)
        .replace(
            "\nprocessors:\n",
            &format!("\n  otlp:\n    protocols:\n      grpc: {{ endpoint: \"127.0.0.1:{port}\" }}\nprocessors:\n"),
        )
        .replace("receivers: [gp, rt]", "receivers: [gp, rt, otlp]");
    rewrite(&c, &partial);
    wait_for(Duration::from_secs(30), || {
        let log = c.log();
        if log.contains("the rest of the new configuration runs") {
            Ok(())
        } else {
            Err(format!("no partial reload:\n{log}"))
        }
    })
    .await;
    // After both, the state the first graph built goes on: new calls and old ones together
    // are each one right dialogue.
    let more = generate(&sim(20, 6));
    crate::voice::send_all(&c, &more, Wire::Otlp).await;
    let mut expected = truth(&plan);
    expected.extend(truth(&more));
    wait_for(Duration::from_secs(30), || {
        compare(&dialogues(&c.path("dialogues.jsonl")), &expected)
    })
    .await;
    for (outcome, n) in [("ok", 1.0), ("failed", 1.0), ("partial", 1.0)] {
        assert_eq!(
            c.metric("lumina_config_reloads_total", &[("outcome", outcome)])
                .await,
            n,
            "{outcome}"
        );
    }
    drop(held);
    c.stop().await.assert_clean();
}
