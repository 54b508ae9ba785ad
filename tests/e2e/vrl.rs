//! The VRL processors and redaction through the real binary: a filter that drops one
//! organisation's events, a transform that renames an attribute and adds one, each runtime
//! error mode, and a simulated call stream whose phone numbers must not reach the file while
//! every dialogue still matches the ground truth.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lumina_callsim::{Plan, Wire, generate};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::testkit::{attr, voice_event};
use lumina_sdk::voice::{VoiceEvent, attr as va};
use serde_json::{Value, json};

use crate::harness::{Collector, logs_client, read_jsonl, wait_for};
use crate::voice::{compare, dialogues, send_all, sim, truth};

const PROGRAMS: &str = r#"
receivers:
  gp/filter: { protocols: { grpc: { endpoint: "127.0.0.1:{port:filter}" } } }
  gp/transform: { protocols: { grpc: { endpoint: "127.0.0.1:{port:transform}" } } }
  gp/ignore: { protocols: { grpc: { endpoint: "127.0.0.1:{port:ignore}" } } }
  gp/drop: { protocols: { grpc: { endpoint: "127.0.0.1:{port:drop}" } } }
  gp/propagate: { protocols: { grpc: { endpoint: "127.0.0.1:{port:propagate}" } } }
processors:
  filter/no-org-2:
    drop: '.attributes."voice.organization.id" == "org-2"'
  transform/tenant:
    source: |
      .attributes.tenant = del(.attributes."voice.organization.id")
      .attributes.pipeline = "gp-main"
  # `string!` fails on an event whose data has no note.
  transform/ignore: { source: '.attributes.note = upcase(string!(.body.note))', error_mode: ignore }
  transform/drop: { source: '.attributes.note = upcase(string!(.body.note))', error_mode: drop }
  transform/propagate: { source: '.attributes.note = upcase(string!(.body.note))', error_mode: propagate }
exporters:
  file/filter: { path: "{dir}/filter.jsonl", sending_queue: { enabled: false } }
  file/transform: { path: "{dir}/transform.jsonl", sending_queue: { enabled: false } }
  file/ignore: { path: "{dir}/ignore.jsonl", sending_queue: { enabled: false } }
  file/drop: { path: "{dir}/drop.jsonl", sending_queue: { enabled: false } }
  file/propagate: { path: "{dir}/propagate.jsonl", sending_queue: { enabled: false } }
service:
  pipelines:
    logs/filter: { receivers: [gp/filter], processors: [filter/no-org-2], exporters: [file/filter] }
    logs/transform: { receivers: [gp/transform], processors: [transform/tenant], exporters: [file/transform] }
    logs/ignore: { receivers: [gp/ignore], processors: [transform/ignore], exporters: [file/ignore] }
    logs/drop: { receivers: [gp/drop], processors: [transform/drop], exporters: [file/drop] }
    logs/propagate: { receivers: [gp/propagate], processors: [transform/propagate], exporters: [file/propagate] }
"#;

/// Events `a` (org-1, with a note), `b` (org-2, with a note) and `c` (org-1, without).
fn events() -> ExportLogsServiceRequest {
    let mut a = voice_event("a", "call-1", "CALL_STARTED", 0);
    a.data.insert("note".into(), json!("vip"));
    let mut b = voice_event("b", "call-2", "CALL_STARTED", 1);
    b.organization_id = "org-2".into();
    b.data.insert("note".into(), json!("new"));
    let c = voice_event("c", "call-3", "CALL_STARTED", 2);
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: [a, b, c].iter().map(VoiceEvent::to_log_record).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The log records in a file the `file` exporter wrote.
fn written(c: &Collector, name: &str) -> Vec<LogRecord> {
    read_jsonl(&c.path(name))
        .iter()
        .flat_map(lumina_sdk::testkit::log_records)
        .collect()
}

fn ids(records: &[LogRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| attr(&r.attributes, va::EVENT_ID).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_transform_and_each_error_mode_through_the_binary() {
    let c = Collector::start(PROGRAMS).await;
    let send = |port: &'static str| {
        let port = c.port(port);
        async move {
            logs_client(port)
                .await
                .export(events())
                .await
                .unwrap()
                .into_inner()
                .partial_success
        }
    };

    // The filter drops org-2's event.
    assert_eq!(
        send("filter")
            .await
            .map(|p| p.rejected_log_records)
            .unwrap_or(0),
        0
    );
    assert_eq!(ids(&written(&c, "filter.jsonl")), ["a", "c"]);
    assert_eq!(
        c.metric(
            "lumina_filter_records_total",
            &[("component", "filter/no-org-2"), ("outcome", "dropped")]
        )
        .await,
        1.0
    );

    // The transform renames the organisation attribute and adds one.
    send("transform").await;
    let out = written(&c, "transform.jsonl");
    assert_eq!(ids(&out), ["a", "b", "c"]);
    let tenants: Vec<_> = out.iter().map(|r| attr(&r.attributes, "tenant")).collect();
    assert_eq!(
        tenants,
        [
            Some("org-1".into()),
            Some("org-2".into()),
            Some("org-1".into())
        ]
    );
    assert!(
        out.iter()
            .all(|r| attr(&r.attributes, va::ORGANIZATION_ID).is_none())
    );
    assert!(
        out.iter()
            .all(|r| attr(&r.attributes, "pipeline").as_deref() == Some("gp-main"))
    );

    // A runtime error on `c`: ignore passes it unchanged...
    send("ignore").await;
    let out = written(&c, "ignore.jsonl");
    assert_eq!(ids(&out), ["a", "b", "c"]);
    let notes: Vec<_> = out.iter().map(|r| attr(&r.attributes, "note")).collect();
    assert_eq!(notes, [Some("VIP".into()), Some("NEW".into()), None]);
    // ... drop drops it, and the sender is not told ...
    assert_eq!(
        send("drop")
            .await
            .map(|p| p.rejected_log_records)
            .unwrap_or(0),
        0
    );
    assert_eq!(ids(&written(&c, "drop.jsonl")), ["a", "b"]);
    // ... propagate refuses it back to the sender, with the reason, and passes the rest.
    let partial = send("propagate").await.unwrap();
    assert_eq!(partial.rejected_log_records, 1, "{partial:?}");
    assert!(partial.error_message.contains("string"), "{partial:?}");
    assert_eq!(ids(&written(&c, "propagate.jsonl")), ["a", "b"]);
    for id in ["transform/ignore", "transform/drop", "transform/propagate"] {
        assert_eq!(
            c.metric(
                "lumina_transform_records_total",
                &[("component", id), ("outcome", "error")]
            )
            .await,
            1.0,
            "{id}"
        );
    }
    c.stop().await.assert_clean();
}

const REDACTION: &str = r#"
receivers:
  gp: { protocols: { grpc: { endpoint: "127.0.0.1:{port:gp_grpc}" } } }
  rt: { protocols: { grpc: { endpoint: "127.0.0.1:{port:rt_grpc}" } } }
processors:
  redaction: {}
  redaction/joinable: { mode: hmac }
  dialogue_assembly/masked:
    storage: { directory: "{dir}/masked" }
    idle_timeout: 3s
  dialogue_assembly/joinable:
    storage: { directory: "{dir}/joinable" }
    idle_timeout: 3s
exporters:
  file/masked: { path: "{dir}/masked.jsonl", sending_queue: { enabled: false } }
  file/joinable: { path: "{dir}/joinable.jsonl", sending_queue: { enabled: false } }
service:
  pipelines:
    logs/masked:
      receivers: [gp, rt]
      processors: [redaction, dialogue_assembly/masked]
      exporters: [file/masked]
    logs/joinable:
      receivers: [gp, rt]
      processors: [redaction/joinable, dialogue_assembly/joinable]
      exporters: [file/joinable]
"#;

/// Every phone number of the plan.
fn numbers(plan: &Plan) -> HashSet<String> {
    plan.truth
        .iter()
        .flat_map(|d| {
            d.participants
                .iter()
                .chain(&d.caller_number)
                .chain(&d.called_number)
                .cloned()
        })
        .collect()
}

/// `v` with every string that is a key of `map` replaced by its value.
fn replace(v: &Value, map: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => map
            .get(s)
            .map_or_else(|| v.clone(), |m| Value::String(m.clone())),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace(x, map)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), replace(x, map)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A number with every digit but the last four masked (written here apart from the
/// processor's code).
fn last_four(n: &str) -> String {
    let digits = n.chars().filter(char::is_ascii_digit).count();
    let mut i = 0;
    n.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                i += 1;
                if i <= digits - 4 { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_phone_number_of_a_call_stream_reaches_the_file_and_dialogues_are_otherwise_the_truth() {
    let c = Collector::start_with_env(
        REDACTION,
        &[],
        vec![(
            "LUMINA_REDACTION_KEY".into(),
            "a key of the operator's".into(),
        )],
    )
    .await;
    let mut cfg = sim(300, 31);
    cfg.never_end = 0.0;
    let plan = generate(&cfg);
    send_all(&c, &plan, Wire::Otlp).await;
    let raw = numbers(&plan);
    assert!(raw.len() > 300, "{}", raw.len());
    let expected = truth(&plan);

    // Keeping the last four digits: the truth with each number masked so.
    let masks: HashMap<String, String> = raw.iter().map(|n| (n.clone(), last_four(n))).collect();
    let want: HashMap<String, Value> = expected
        .iter()
        .map(|(k, v)| (k.clone(), replace(v, &masks)))
        .collect();
    wait_for(Duration::from_secs(60), || {
        compare(&dialogues(&c.path("masked.jsonl")), &want)
            .map_err(|e| format!("{e}\nlog:\n{}", c.log()))
    })
    .await;

    // HMAC: each number has one mask and each mask one number; put back, the dialogues are
    // the truth.
    let joinable = wait_for(Duration::from_secs(60), || {
        let got = dialogues(&c.path("joinable.jsonl"));
        if got.len() == expected.len() {
            Ok(got)
        } else {
            Err(format!("{} of {} dialogues", got.len(), expected.len()))
        }
    })
    .await;
    let mut back: HashMap<String, String> = HashMap::new();
    for (id, t) in &expected {
        let g = &joinable[id];
        for k in ["callerNumber", "calledNumber"] {
            let (Some(raw), Some(mask)) = (t[k].as_str(), g[k].as_str()) else {
                continue;
            };
            assert!(mask.starts_with('#') && mask.len() == 17, "{mask}");
            let old = back.insert(mask.to_owned(), raw.to_owned());
            assert!(
                old.as_deref().is_none_or(|o| o == raw),
                "{mask} stands for {raw} and {old:?}"
            );
        }
    }
    let distinct: HashSet<&String> = back.values().collect();
    assert_eq!(distinct.len(), back.len(), "one mask per number");
    let unmasked: HashMap<String, Value> = joinable
        .iter()
        .map(|(k, v)| (k.clone(), replace(v, &back)))
        .collect();
    compare(&unmasked, &expected).unwrap();

    // No number, with or without its `+`, anywhere in either file.
    for file in ["masked.jsonl", "joinable.jsonl"] {
        let text = std::fs::read_to_string(c.path(file)).unwrap();
        for n in &raw {
            assert!(
                !text.contains(n.trim_start_matches('+')),
                "{n} reached {file}"
            );
        }
    }
    assert!(
        c.metric(
            "lumina_redaction_masked_total",
            &[("component", "redaction")]
        )
        .await
            > 0.0
    );
    c.stop().await.assert_clean();
}
