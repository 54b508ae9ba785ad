//! A poison batch (one a plugin fails on every time) mixed into a stream of good ones, through
//! the binary: the good batches are delivered, the poison one is given up on after
//! `fault_attempts` faults as `on_fault` says (dead-lettered with the fault, handed on
//! unprocessed, or dropped and counted), and the plugin is not left quarantined.

use std::collections::BTreeSet;
use std::time::Duration;

use lumina_sdk::Batch;
use lumina_sdk::testkit::{self, kv};

use crate::harness::{Collector, plugin, read_jsonl};
use crate::plugins::{calls, post};

/// The `seq`s of the records in a file.
fn seqs(path: &std::path::Path) -> BTreeSet<String> {
    read_jsonl(path)
        .iter()
        .flat_map(testkit::item_ids)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_batch_is_given_up_on_as_on_fault_says_and_the_good_ones_are_delivered() {
    let wasm = plugin("misbehave.wasm");
    let actions = ["dead_letter", "pass_through", "drop"];
    let mut config = String::from("receivers:\n");
    for a in actions {
        config.push_str(&format!(
            "  otlp/{a}: {{ protocols: {{ http: {{ endpoint: '127.0.0.1:{{port:{a}}}' }} }} }}\n"
        ));
    }
    config.push_str("processors:\n");
    for a in actions {
        config.push_str(&format!(
            "  wasm/{a}:\n    path: '{}'\n    config: {{ mode: pass-then-panic }}\n    on_fault: {a}\n    dead_letter: {{ path: '{{dir}}/{a}.dead.jsonl' }}\n    quarantine: {{ after: 3, backoff: 60s }}\n",
            wasm.display()
        ).replace("    dead_letter: { path: '{dir}/pass_through.dead.jsonl' }\n", "").replace("    dead_letter: { path: '{dir}/drop.dead.jsonl' }\n", ""));
    }
    config.push_str("exporters:\n");
    for a in actions {
        config.push_str(&format!(
            "  file/{a}: {{ path: '{{dir}}/{a}.jsonl', sending_queue: {{ enabled: false }} }}\n"
        ));
    }
    config.push_str("service:\n  pipelines:\n");
    for a in actions {
        config.push_str(&format!(
            "    logs/{a}: {{ receivers: [otlp/{a}], processors: [wasm/{a}], exporters: [file/{a}] }}\n"
        ));
    }
    let c = Collector::start(&config).await;
    // Records 1000..1010 ask the plugin to panic.
    let mut poison = calls(1000, 10);
    poison.resource_logs[0].scope_logs[0].log_records[3]
        .attributes
        .push(kv("misbehave", "panic"));
    let poison = Batch::logs(poison).encode_protobuf();

    for a in actions {
        let port = c.port(a);
        let send = |b: Vec<u8>| post(port, "/v1/logs", "application/x-protobuf", b);
        let mut good = 0;
        let mut replies = Vec::new();
        // Good batches before and after the poison one, whose sender tries it again at once
        // on each retryable refusal: three faults in a row, enough to quarantine the plugin.
        for round in 0..2 {
            for _ in 0..5 {
                let (status, text) =
                    send(Batch::logs(calls(good * 10, 10)).encode_protobuf()).await;
                assert_eq!(status, 200, "{a}: a good batch: {text}");
                good += 1;
            }
            while round == 0 && replies.last().is_none_or(|r: &(u16, String)| r.0 != 200) {
                assert!(replies.len() < 5, "{a}: {replies:?}");
                replies.push(send(poison.clone()).await);
            }
        }
        let statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
        assert_eq!(statuses, [503, 503, 200], "{a}: {replies:?}");
        assert!(
            replies[0].1.contains("asked misbehave to panic"),
            "{a}: {}",
            replies[0].1
        );

        // Every good record was delivered; the poison ones only when handed on unprocessed.
        let delivered = seqs(&c.path(&format!("{a}.jsonl")));
        let mut want: BTreeSet<String> = (0..good * 10).map(|i| i.to_string()).collect();
        if a == "pass_through" {
            want.extend((1000..1010).map(|i| i.to_string()));
        }
        assert_eq!(delivered, want, "{a}");
        let given_up = c
            .metric(
                "lumina_plugin_fault_items_total",
                &[("component", &format!("wasm/{a}")), ("action", a)],
            )
            .await;
        assert_eq!(given_up, 10.0, "{a}");
        // The plugin is not left quarantined (its third fault would quarantine it, but they
        // were one batch's): nothing says so, and the good batches after the poison one went
        // through it.
        assert_eq!(
            c.metric(
                "lumina_plugin_quarantined",
                &[("component", &format!("wasm/{a}"))]
            )
            .await,
            0.0,
            "{a}"
        );
    }

    // The dead letter holds the poison batch with the fault that made it one.
    let letters = std::fs::read_to_string(c.path("dead_letter.dead.jsonl")).unwrap();
    let lines: Vec<&str> = letters.lines().collect();
    assert_eq!(lines.len(), 1, "{letters}");
    assert!(
        lines[0].contains("asked misbehave to panic") && lines[0].contains("3 times"),
        "{letters}"
    );
    assert_eq!(
        seqs(&c.path("dead_letter.dead.jsonl")),
        (1000..1010).map(|i| i.to_string()).collect::<BTreeSet<_>>()
    );
    assert_eq!(
        c.metric(
            "lumina_dropped_items_total",
            &[("component", "wasm/drop"), ("reason", "plugin_fault")]
        )
        .await,
        10.0
    );
    let (_, health) = c.health().await;
    assert!(!health.to_string().contains("quarantined"), "{health}");
    tokio::time::timeout(Duration::from_secs(30), c.stop())
        .await
        .unwrap()
        .assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refused_for_its_config_is_logged_as_validate_shows_it_and_the_old_version_stays()
{
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("swap.wasm");
    std::fs::copy(plugin("redact_numbers.wasm"), &live).unwrap();
    let config = format!(
        "receivers: {{ otlp: {{ protocols: {{ http: {{ endpoint: '127.0.0.1:{{port:http}}' }} }} }} }}
processors:
  wasm/swap:
    path: '{}'
    config:
      keep_last: 2
exporters: {{ file: {{ path: '{{dir}}/out.jsonl', sending_queue: {{ enabled: false }} }} }}
service: {{ pipelines: {{ logs: {{ receivers: [otlp], processors: [wasm/swap], exporters: [file] }} }} }}
",
        live.display()
    );
    let c = Collector::start(&config).await;
    // A new version that does not know `keep_last`.
    std::fs::copy(plugin("misbehave.wasm"), &live).unwrap();
    c.signal("HUP");
    crate::harness::wait_until(
        Duration::from_secs(30),
        "the refused reload in the log",
        || c.log().contains("the new version refused the config"),
    )
    .await;
    let log = c.log();
    let at = format!("--> {}:6:7", c.path("config.yaml").display());
    assert!(
        log.contains(&at)
            && log.contains("keep_last: 2")
            && log.contains("unknown key `keep_last`"),
        "{log}"
    );
    // The running version still masks.
    let port = c.port("http");
    let (status, text) = post(
        port,
        "/v1/logs",
        "application/x-protobuf",
        Batch::logs(calls(0, 1)).encode_protobuf(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let out = read_jsonl(&c.path("out.jsonl"));
    let caller = testkit::attr(
        &out[0].as_logs().unwrap().resource_logs[0].scope_logs[0].log_records[0].attributes,
        "voice.caller.number",
    );
    assert_eq!(caller.as_deref(), Some("+**********78"));
    c.stop().await.assert_clean();
}
