//! The voice job end to end: simulated calls (and the OpenTelemetry Python SDK) into `gp` and
//! `rt`, through `dialogue_assembly` (durable state), to a `file` exporter; every dialogue must
//! match the simulator's ground truth, also across a `kill -9`. Malformed events are rejected
//! by name while the valid ones of the same request are assembled.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lumina_callsim::{Plan, Progress, SimConfig, Target, Wire, generate, native_json, truth_json};
use lumina_sdk::voice::{Dialogue, Source};
use lumina_sdk::{Batch, Payload, Signal};
use serde_json::{Value, json};

use crate::harness::{Collector, http, python, wait_for, workspace};

const CONFIG: &str = r#"
receivers:
  gp:
    protocols:
      grpc: { endpoint: "127.0.0.1:{port:gp_grpc}" }
      http: { endpoint: "127.0.0.1:{port:gp_http}" }
    max_event_data_size: 1KiB
    max_events_per_request: 250
  rt:
    protocols:
      grpc: { endpoint: "127.0.0.1:{port:rt_grpc}" }
      http: { endpoint: "127.0.0.1:{port:rt_http}" }
processors:
  dialogue_assembly:
    storage: { directory: "{dir}/state" }
    idle_timeout: 3s
    check_interval: 100ms
exporters:
  file:
    path: "{dir}/dialogues.jsonl"
    append: true                  # a restart adds to the file instead of starting it again
    # Written before the receiver answers, so an acknowledged event's dialogue is on disk.
    sending_queue: { enabled: false }
service:
  pipelines:
    logs:
      receivers: [gp, rt]
      processors: [dialogue_assembly]
      exporters: [file]
"#;

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

pub(crate) fn sim(calls: usize, seed: u64) -> SimConfig {
    SimConfig {
        calls,
        organizations: 40,
        seed,
        start: now_nanos() - 3_600_000_000_000,
        disorder: 0.3,
        duplicate: 0.05,
        late: 0.05,
        never_end: 0.02,
        ..SimConfig::default()
    }
}

pub(crate) fn target(c: &Collector, wire: Wire) -> Target {
    let (gp, rt) = match wire {
        Wire::Otlp => (c.port("gp_grpc"), c.port("rt_grpc")),
        Wire::Json => (c.port("gp_http"), c.port("rt_http")),
    };
    Target {
        wire,
        gp: format!("127.0.0.1:{gp}"),
        rt: format!("127.0.0.1:{rt}"),
        batch: 200,
        concurrency: 4,
        retry_for: Duration::from_secs(60),
        rate: None,
    }
}

/// Sends the whole plan over `wire`; every event must be taken.
pub(crate) async fn send_all(c: &Collector, plan: &Plan, wire: Wire) {
    let report = lumina_callsim::send(plan, &target(c, wire), Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");
}

/// The newest version (highest revision) of every dialogue in the file, as ground-truth JSON.
pub(crate) fn dialogues(path: &Path) -> HashMap<String, Value> {
    newest_dialogues(path)
        .into_iter()
        .map(|(k, d)| (k, truth_json(&d)))
        .collect()
}

/// The newest version (highest revision) of every dialogue in the file.
pub(crate) fn newest_dialogues(path: &Path) -> HashMap<String, Dialogue> {
    let mut newest: HashMap<String, Dialogue> = HashMap::new();
    for d in all_dialogues(path) {
        match newest.get(&d.dialogue_id) {
            Some(old) if old.revision >= d.revision => {}
            _ => {
                newest.insert(d.dialogue_id.clone(), d);
            }
        }
    }
    newest
}

/// Every dialogue record in the file, in order.
pub(crate) fn all_dialogues(path: &Path) -> Vec<Dialogue> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    // Only whole lines: the file may be mid-write.
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    for line in complete.lines().filter(|l| !l.trim().is_empty()) {
        let batch = Batch::decode_json(Signal::Logs, line.as_bytes()).unwrap();
        let Payload::Logs(req) = batch.into_payload() else {
            continue;
        };
        for record in req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
        {
            out.push(Dialogue::from_log_record(record).unwrap().unwrap().1);
        }
    }
    out
}

/// The plan's dialogues as ground-truth JSON, by id.
pub(crate) fn truth(plan: &Plan) -> HashMap<String, Value> {
    plan.truth
        .iter()
        .map(|d| (d.dialogue_id.clone(), truth_json(d)))
        .collect()
}

/// `Ok` if `got` holds exactly the `expected` dialogues, else what differs: counts and the
/// first wrong one.
pub(crate) fn compare(
    got: &HashMap<String, Value>,
    expected: &HashMap<String, Value>,
) -> Result<(), String> {
    if got == expected {
        return Ok(());
    }
    let missing = expected.keys().filter(|k| !got.contains_key(*k)).count();
    let extra = got.keys().filter(|k| !expected.contains_key(*k)).count();
    let wrong = expected
        .iter()
        .find(|(k, v)| got.get(*k).is_some_and(|g| g != *v));
    Err(format!(
        "{} expected, {} got, {missing} missing, {extra} unexpected; first wrong: {}",
        expected.len(),
        got.len(),
        wrong.map_or("none".into(), |(k, v)| format!(
            "{k}\nexpected {v}\n     got {}",
            got[k]
        ))
    ))
}

/// Waits until the file holds exactly the plan's dialogues; on timeout, shows the first
/// difference.
async fn assert_matches_truth(c: &Collector, plan: &Plan, timeout: Duration) {
    let expected = truth(plan);
    wait_for(timeout, || {
        compare(&dialogues(&c.path("dialogues.jsonl")), &expected).map_err(|e| {
            format!(
                "dialogues do not match the ground truth: {e}\nlog:\n{}",
                c.log()
            )
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_disordered_duplicated_calls_assemble_into_the_ground_truth() {
    let c = Collector::start(CONFIG).await;
    let plan = generate(&sim(2000, 7));
    assert!(plan.truth.len() > 2000);
    let orgs: std::collections::HashSet<&str> = plan
        .truth
        .iter()
        .map(|d| d.organization_id.as_str())
        .collect();
    assert_eq!(orgs.len(), 40);
    send_all(&c, &plan, Wire::Otlp).await;
    assert_matches_truth(&c, &plan, Duration::from_secs(60)).await;
    // The calls that never ended were closed by the idle timeout.
    assert!(
        plan.truth
            .iter()
            .any(|d| d.end_reason.as_deref() == Some("IDLE_TIMEOUT"))
    );
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_json_events_assemble_like_otlp_ones() {
    let c = Collector::start(CONFIG).await;
    let mut cfg = sim(300, 11);
    cfg.never_end = 0.0;
    let plan = generate(&cfg);
    send_all(&c, &plan, Wire::Json).await;
    assert_matches_truth(&c, &plan, Duration::from_secs(60)).await;
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_and_corrupts_nothing() {
    let mut c = Collector::start(CONFIG).await;
    let plan = Arc::new(generate(&sim(1500, 23)));
    let progress = Arc::new(Progress::default());
    let t = target(&c, Wire::Otlp);
    let sender = {
        let (plan, progress) = (plan.clone(), progress.clone());
        let t = Target {
            batch: 50,
            concurrency: 2,
            ..t
        };
        tokio::spawn(async move { lumina_callsim::send(&plan, &t, progress).await })
    };
    let third = plan.sends.len() as u64 / 3;
    tokio::time::timeout(Duration::from_secs(60), progress.wait_acknowledged(third))
        .await
        .expect("the stream did not get going");
    c.kill_and_restart().await;
    let report = sender.await.unwrap().unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");
    assert!(
        report.retries > 0,
        "the kill was not in the middle of the stream: {report:?}"
    );
    assert_matches_truth(&c, &plan, Duration::from_secs(60)).await;
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opentelemetry_python_sdk_s_voice_events_assemble_into_the_ground_truth() {
    let c = Collector::start(CONFIG).await;
    let mut cfg = sim(60, 31);
    cfg.never_end = 0.0;
    let plan = generate(&cfg);
    let events = c.path("events.jsonl");
    let lines: Vec<String> = plan
        .sends
        .iter()
        .map(|s| {
            let source = if s.source == Source::Gp { "GP" } else { "RT" };
            json!({ "source": source, "event": native_json(&s.event) }).to_string()
        })
        .collect();
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let out = Command::new(python())
        .arg(workspace().join("tests/python/send_voice_events.py"))
        .arg("--events")
        .arg(&events)
        .arg("--gp")
        .arg(format!("127.0.0.1:{}", c.port("gp_grpc")))
        .arg("--rt")
        .arg(format!("127.0.0.1:{}", c.port("rt_grpc")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_matches_truth(&c, &plan, Duration::from_secs(60)).await;
    c.stop().await.assert_clean();
}

fn good(id: &str, t: &str, secs: i64) -> Value {
    json!({
        "eventId": id,
        "eventType": t,
        "timestamp": lumina_sdk::voice::format_time(now_nanos() - 600_000_000_000 + secs * 1_000_000_000),
        "organizationId": "org-bad",
        "accountId": "acc-1",
        "callGuid": "call-bad",
        "legGuid": "leg-1",
        "dialogueId": "dlg-bad",
        "callerNumber": "+441",
        "calledNumber": "+442",
        "direction": "INBOUND",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_rejected_by_name_and_the_valid_ones_assembled() {
    let c = Collector::start(CONFIG).await;
    let url = format!("http://127.0.0.1:{}/v1/events", c.port("gp_http"));
    let with = |patch: Value| {
        let mut v = good("e-x", "CALL_HELD", 5);
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v
    };
    let body = json!([
        good("e-1", "CALL_STARTED", 0),
        with(json!({ "eventId": null })),
        with(json!({ "eventId": "e-2", "eventType": "CALL_EXPLODED" })),
        with(json!({ "eventId": "e-3", "timestamp": "yesterday" })),
        with(json!({ "eventId": "e-4", "regionId": "two" })),
        with(json!({ "eventId": "e-5", "data": { "blob": "x".repeat(2000) } })),
        good("e-6", "CALL_ENDED", 9),
    ]);
    let r = http()
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reply: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(reply["accepted"], 2, "{reply}");
    let fields: Vec<(u64, &str)> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            (1, "eventId"),
            (2, "eventType"),
            (3, "timestamp"),
            (4, "regionId"),
            (5, "data")
        ],
        "{reply}"
    );
    assert_eq!(reply["rejected"][1]["eventId"], "e-2");
    assert!(
        reply["rejected"][4]["message"]
            .as_str()
            .unwrap()
            .contains("max_event_data_size"),
        "{reply}"
    );

    // Over OTLP: the same, as a partial success naming the attribute.
    use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
    use lumina_sdk::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
    use lumina_sdk::proto::logs::v1::{ResourceLogs, ScopeLogs};
    let valid = lumina_sdk::voice::VoiceEvent::from_json(&good("e-7", "DTMF_RECEIVED", 4)).unwrap();
    let mut invalid = valid.to_log_record();
    invalid
        .attributes
        .retain(|kv| kv.key != lumina_sdk::voice::attr::CALL_GUID);
    let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{}", c.port("gp_grpc")))
        .await
        .unwrap();
    let reply = client
        .export(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![valid.to_log_record(), invalid],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial
            .error_message
            .contains("event 1 (`e-7`): `voice.call.guid` is missing"),
        "{}",
        partial.error_message
    );

    // Not JSON, and too many bytes, are refused as a whole.
    let r = http()
        .post(&url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not JSON"));
    let many: Vec<Value> = (0..251)
        .map(|i| good(&format!("m-{i}"), "CALL_HELD", 1))
        .collect();
    let r = http()
        .post(&url)
        .header("content-type", "application/json")
        .body(Value::Array(many).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("max_events_per_request"));

    // The valid events were assembled: started, DTMF, ended.
    let d = wait_for(Duration::from_secs(20), || {
        let got = dialogues(&c.path("dialogues.jsonl"));
        match got.get("dlg-bad") {
            Some(d) if d["events"].as_array().is_some_and(|e| e.len() == 3) => Ok(d.clone()),
            _ => Err(format!("valid events not assembled: {got:?}")),
        }
    })
    .await;
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["endReason"], "NO_ANSWER");
    assert_eq!(d["events"][1]["source"], "GP");
    assert_eq!(
        c.metric(
            "lumina_receiver_refused_items_total",
            &[("component", "gp"), ("reason", "invalid")]
        )
        .await,
        6.0
    );
    assert_eq!(
        c.metric(
            "lumina_receiver_accepted_items_total",
            &[("component", "gp")]
        )
        .await,
        3.0
    );
    c.stop().await.assert_clean();
}
