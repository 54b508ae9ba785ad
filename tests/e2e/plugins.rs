//! Plugins loaded from YAML: every example does its job (WebAssembly and native, Rust and
//! Python, processor, exporter and receiver); misbehaving plugins are stopped at their limits
//! while everything else keeps serving; a wrong native ABI is refused; SIGHUP swaps a
//! WebAssembly plugin without losing data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::testkit::{self, kv};
use lumina_sdk::{Batch, Payload, Signal};

use crate::harness::{
    Collector, free_port, http, logs_client, lumina_bin, plugin, read_jsonl, wait_until,
};

/// A logs request of `n` records (`seq` from `first`) that carry a caller number.
pub(crate) fn calls(first: usize, n: usize) -> ExportLogsServiceRequest {
    let Payload::Logs(mut req) = testkit::logs_from(first, 1, n).into_payload() else {
        unreachable!()
    };
    for r in req
        .resource_logs
        .iter_mut()
        .flat_map(|r| &mut r.scope_logs)
        .flat_map(|s| &mut s.log_records)
    {
        r.attributes
            .push(kv("voice.caller.number", "+442012345678"));
    }
    req
}

fn callers(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .filter_map(Batch::as_logs)
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter_map(|l| testkit::attr(&l.attributes, "voice.caller.number"))
        .collect()
}

pub(crate) async fn post(
    port: u16,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let r = http()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// What the test webhook received: the `x-token` header and the body of each POST.
type Posts = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

/// A webhook that keeps every POST.
async fn webhook() -> (u16, Posts) {
    let got: Posts = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    let token = headers
                        .get("x-token")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    store.lock().unwrap().push((token, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_plugin_loads_from_yaml_and_does_its_job() {
    let (hook, posts) = webhook().await;
    let cdr = free_port();
    let config = format!(
        "
receivers:
  otlp: {{ protocols: {{ http: {{ endpoint: '127.0.0.1:{{http}}' }} }} }}
  wasm/cdr: {{ path: '{cdr_wasm}', endpoint: '127.0.0.1:{cdr}', auth: {{ api_keys: [cdr-key] }} }}
processors:
  wasm/redact: {{ path: '{redact_wasm}' }}
  native/redact: {{ path: '{redact_so}', config: {{ keep_last: 2 }} }}
  wasm/sample: {{ path: '{sampler}', config: {{ keep_one_in: 2 }}, instances: 1, limits: {{ memory: 128MiB, timeout: 10s }} }}
exporters:
  file/wasm: {{ path: '{{dir}}/wasm.jsonl' }}
  file/native: {{ path: '{{dir}}/native.jsonl' }}
  file/sampled: {{ path: '{{dir}}/sampled.jsonl' }}
  file/cdr: {{ path: '{{dir}}/cdr.jsonl' }}
  wasm/webhook:
    path: '{webhook_wasm}'
    allow: {{ http: ['127.0.0.1:{hook}'] }}
    config: {{ url: 'http://127.0.0.1:{hook}/hook', headers: {{ x-token: t0k3n }} }}
service:
  pipelines:
    logs/wasm: {{ receivers: [otlp], processors: [wasm/redact], exporters: [file/wasm] }}
    logs/native: {{ receivers: [otlp], processors: [native/redact], exporters: [file/native] }}
    logs/sampled: {{ receivers: [otlp], processors: [wasm/sample], exporters: [file/sampled] }}
    logs/webhook: {{ receivers: [otlp], exporters: [wasm/webhook] }}
    logs/cdr: {{ receivers: [wasm/cdr], exporters: [file/cdr] }}
",
        cdr_wasm = plugin("cdr_receiver.wasm").display(),
        redact_wasm = plugin("redact_numbers.wasm").display(),
        redact_so = plugin("libredact_numbers.so").display(),
        sampler = plugin("py_sampler.wasm").display(),
        webhook_wasm = plugin("webhook_exporter.wasm").display(),
    );
    let c = Collector::start(&config).await;
    for i in 0..4 {
        let body = Batch::logs(calls(i, 1)).encode_protobuf();
        assert_eq!(
            post(c.http, "/v1/logs", "application/x-protobuf", body)
                .await
                .0,
            200
        );
    }
    let csv = "call_guid,organization_id,caller_number,direction,start_time,end_time\nc-1,org-1,+4420,INBOUND,100,160\nc-2,org-2,+1555,OUTBOUND,200,230\nc-3,,+1,INBOUND,1,2\n";
    // The host's listener asks for the API key before the plugin sees anything.
    let (status, _) = post(cdr, "/cdr", "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(status, 401);
    let r = http()
        .post(format!("http://127.0.0.1:{cdr}/cdr"))
        .header("content-type", "text/csv")
        .header("x-api-key", "cdr-key")
        .body(csv)
        .send()
        .await
        .unwrap();
    let (status, reply) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(status, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["accepted"], 2);
    assert_eq!(
        reply["rejected"],
        serde_json::json!(["line 4: `organization_id` is empty"])
    );
    wait_until(Duration::from_secs(30), "four webhook posts", || {
        posts.lock().unwrap().len() >= 4
    })
    .await;
    // The plugin's own label beside `component`, from either form.
    for id in ["wasm/redact", "native/redact"] {
        assert_eq!(
            c.metric(
                "lumina_plugin_redacted_values_total",
                &[("component", id), ("signal", "logs")]
            )
            .await,
            4.0,
            "{id}"
        );
    }
    assert_eq!(
        c.metric("lumina_plugin_cdr_rows_total", &[("component", "wasm/cdr")])
            .await,
        2.0
    );
    let stopped = c.stop().await;
    stopped.assert_clean();

    assert_eq!(
        callers(&read_jsonl(&stopped.path("wasm.jsonl"))),
        vec!["+********5678"; 4],
        "the WebAssembly build masks"
    );
    assert_eq!(
        callers(&read_jsonl(&stopped.path("native.jsonl"))),
        vec!["+**********78"; 4],
        "the native build of the same source masks, with its own config"
    );
    assert_eq!(
        read_jsonl(&stopped.path("sampled.jsonl")).len(),
        2,
        "the Python plugin keeps one batch in two"
    );
    let posts = posts.lock().unwrap();
    assert_eq!(posts.len(), 4);
    for (token, body) in posts.iter() {
        assert_eq!(
            token.as_deref(),
            Some("t0k3n"),
            "the configured header is sent"
        );
        let b = Batch::decode_json(Signal::Logs, body).unwrap();
        assert_eq!(
            callers(&[b]),
            vec!["+442012345678"],
            "the webhook pipeline has no redaction"
        );
    }
    let cdr_batches = read_jsonl(&stopped.path("cdr.jsonl"));
    let guids: Vec<String> = cdr_batches
        .iter()
        .filter_map(Batch::as_logs)
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter_map(|l| testkit::attr(&l.attributes, "voice.call.guid"))
        .collect();
    assert_eq!(guids, vec!["c-1", "c-2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_plugins_are_stopped_at_their_limits_and_the_rest_keeps_serving() {
    let modes = ["loop", "fuel", "alloc", "trap", "panic", "ok"];
    let ports: BTreeMap<&str, u16> = modes.iter().map(|m| (*m, free_port())).collect();
    let wasm = plugin("misbehave.wasm");
    let mut config = String::from("receivers:\n");
    for m in modes {
        config.push_str(&format!(
            "  otlp/{m}: {{ protocols: {{ http: {{ endpoint: '127.0.0.1:{}' }} }} }}\n",
            ports[m]
        ));
    }
    config.push_str(&format!(
        "processors:
  wasm/loop: {{ path: '{w}', config: {{ mode: loop }}, limits: {{ timeout: 100ms }} }}
  wasm/fuel: {{ path: '{w}', config: {{ mode: loop }}, limits: {{ fuel: 20000000, timeout: 60s }} }}
  wasm/alloc: {{ path: '{w}', config: {{ mode: alloc }}, limits: {{ memory: 16MiB }} }}
  wasm/trap: {{ path: '{w}', config: {{ mode: trap }}, quarantine: {{ after: 3, backoff: 60s }}, on_fault: retry }}
  wasm/panic: {{ path: '{w}', config: {{ mode: panic }} }}
  wasm/ok: {{ path: '{w}', config: {{ mode: pass }} }}
exporters:
  file: {{ path: '{{dir}}/ok.jsonl' }}
service:
  pipelines:
",
        w = wasm.display()
    ));
    for m in modes {
        config.push_str(&format!(
            "    logs/{m}: {{ receivers: [otlp/{m}], processors: [wasm/{m}], exporters: [file] }}\n"
        ));
    }
    let c = Collector::start(&config).await;
    let body = || Batch::logs(calls(0, 1)).encode_protobuf();

    // While a plugin spins in one pipeline, another pipeline answers promptly.
    let spinning = tokio::spawn({
        let port = ports["loop"];
        async move {
            let started = Instant::now();
            let (status, text) = post(
                port,
                "/v1/logs",
                "application/x-protobuf",
                Batch::logs(calls(0, 1)).encode_protobuf(),
            )
            .await;
            (status, text, started.elapsed())
        }
    });
    let started = Instant::now();
    assert_eq!(
        post(ports["ok"], "/v1/logs", "application/x-protobuf", body())
            .await
            .0,
        200
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the healthy pipeline answered in {:?}",
        started.elapsed()
    );
    let (status, text, took) = spinning.await.unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(
        took < Duration::from_secs(10),
        "the endless loop was stopped after {took:?}"
    );
    assert!(text.contains("time limit"), "{text}");

    for (mode, reason, words) in [
        ("fuel", "fuel", "fuel"),
        ("alloc", "memory", "memory limit"),
        ("trap", "trap", "unreachable"),
        ("panic", "panic", "misbehave was told to panic"),
    ] {
        let (status, text) = post(ports[mode], "/v1/logs", "application/x-protobuf", body()).await;
        assert_eq!(
            status, 503,
            "{mode}: a plugin failure is retryable for the sender: {text}"
        );
        assert!(
            text.contains(words),
            "{mode}: the reply says what happened: {text}"
        );
        assert_eq!(
            c.metric(
                "lumina_plugin_faults_total",
                &[("component", &format!("wasm/{mode}")), ("reason", reason)]
            )
            .await,
            1.0,
            "{mode}"
        );
    }
    assert_eq!(
        c.metric(
            "lumina_plugin_faults_total",
            &[("component", "wasm/loop"), ("reason", "timeout")]
        )
        .await,
        1.0
    );

    // Three traps in a row quarantine the plugin: with `on_fault: retry`, calls are refused
    // (retryably) without running it. (`plugin_faults` tests the other policies.)
    for _ in 0..2 {
        assert_eq!(
            post(ports["trap"], "/v1/logs", "application/x-protobuf", body())
                .await
                .0,
            503
        );
    }
    let (status, text) = post(ports["trap"], "/v1/logs", "application/x-protobuf", body()).await;
    assert_eq!(status, 503);
    assert!(text.contains("quarantined"), "{text}");
    assert_eq!(
        c.metric(
            "lumina_plugin_calls_total",
            &[("component", "wasm/trap"), ("outcome", "quarantined")]
        )
        .await,
        1.0
    );
    let health = http()
        .get(format!("http://127.0.0.1:{}/health", c.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let health: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
    assert!(
        health["components"]["wasm/trap"]
            .as_str()
            .unwrap()
            .contains("quarantined"),
        "{health}"
    );

    // Still serving.
    assert_eq!(
        post(ports["ok"], "/v1/logs", "application/x-protobuf", body())
            .await
            .0,
        200
    );
    let stopped = c.stop().await;
    stopped.assert_clean();
    assert!(
        stopped.log.contains("misbehave was told to panic"),
        "the plugin's own message is logged:\n{}",
        stopped.log
    );
    assert_eq!(read_jsonl(&stopped.path("ok.jsonl")).len(), 2);
}

#[test]
fn a_native_plugin_built_for_another_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let so = plugin("libnative_bad_abi.so");
    std::fs::write(
        dir.path().join("bad.yaml"),
        format!("receivers: {{ otlp: {{ protocols: {{ grpc: }} }} }}\nprocessors: {{ native/old: {{ path: '{}' }} }}\nexporters: {{ nop: }}\nservice: {{ pipelines: {{ logs: {{ receivers: [otlp], processors: [native/old], exporters: [nop] }} }} }}\n", so.display()),
    )
    .unwrap();
    let out = std::process::Command::new(lumina_bin())
        .args(["validate", "--config", "bad.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&so.display().to_string()),
        "names the file: {err}"
    );
    assert!(
        err.contains("ABI version 999") && err.contains("loads version 1"),
        "names both versions: {err}"
    );
    assert!(err.contains("processors.native/old.path"), "{err}");
}

#[test]
fn a_plugin_s_config_errors_point_at_the_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        format!(
            "receivers: {{ otlp: {{ protocols: {{ grpc: }} }} }}\nprocessors:\n  wasm/redact:\n    path: '{}'\n    config:\n      keep_lst: 2\n      mask: xx\nexporters: {{ nop: }}\nservice: {{ pipelines: {{ logs: {{ receivers: [otlp], processors: [wasm/redact], exporters: [nop] }} }} }}\n",
            plugin("redact_numbers.wasm").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(lumina_bin())
        .args(["validate", "--config", "p.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--> p.yaml:6:7")
            && err.contains("= at: processors.wasm/redact.config.keep_lst")
            && err.contains("did you mean `keep_last`?"),
        "{err}"
    );
    assert!(
        err.contains("--> p.yaml:7:13") && err.contains("must be one character"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_a_changed_plugin_under_load_without_losing_data() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("swap.wasm");
    std::fs::copy(plugin("redact_numbers.wasm"), &live).unwrap();
    let config = format!(
        "
receivers: {{ otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }} }} }} }}
processors: {{ wasm/swap: {{ path: '{}' }} }}
exporters: {{ file: {{ path: '{{dir}}/out.jsonl' }} }}
service: {{ pipelines: {{ logs: {{ receivers: [otlp], processors: [wasm/swap], exporters: [file] }} }} }}
",
        live.display()
    );
    let c = Collector::start(&config).await;
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (acked, port) = (acked.clone(), c.grpc);
            tokio::spawn(async move {
                let mut client = logs_client(port).await;
                for n in 0..150 {
                    let first = t * 100_000 + n * 10;
                    client
                        .export(calls(first, 10))
                        .await
                        .expect("every request succeeds across the reload");
                    acked.lock().unwrap().extend(first..first + 10);
                }
            })
        })
        .collect();
    wait_until(
        Duration::from_secs(60),
        "some traffic before the swap",
        || acked.lock().unwrap().len() >= 1000,
    )
    .await;
    // Replace the file atomically (as a deploy would), then ask for a reload.
    let staged = dir.path().join("swap.wasm.new");
    std::fs::copy(plugin("misbehave.wasm"), &staged).unwrap();
    std::fs::rename(&staged, &live).unwrap();
    c.signal("HUP");
    wait_until(Duration::from_secs(60), "the reload", || {
        c.log().contains("Reloaded the plugin")
    })
    .await;
    for s in senders {
        s.await.unwrap();
    }
    let stopped = c.stop().await;
    stopped.assert_clean();
    let batches = read_jsonl(&stopped.path("out.jsonl"));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for b in &batches {
        for id in testkit::item_ids(b) {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 4 * 150 * 10, "every record arrived");
    assert!(seen.values().all(|n| *n == 1), "and only once");
    let numbers = callers(&batches);
    assert!(
        numbers.iter().any(|n| n == "+********5678"),
        "records before the swap were masked by the old version"
    );
    assert!(
        numbers.iter().any(|n| n == "+442012345678"),
        "records after it passed through the new one"
    );
}
