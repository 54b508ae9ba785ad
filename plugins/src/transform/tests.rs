use lumina_sdk::proto::common::v1::{AnyValue, KeyValue, any_value};
use lumina_sdk::testkit::{CollectingConsumer, attr, voice_event, voice_events};

use super::*;

async fn transform(yaml: &str) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    lumina_sdk::testkit::processor::<TransformConfig>("transform", Signal::Logs, yaml).await
}

fn records(
    out: &CollectingConsumer,
) -> Vec<(Vec<KeyValue>, lumina_sdk::proto::logs::v1::LogRecord)> {
    out.batches()
        .iter()
        .flat_map(|b| {
            b.as_logs()
                .unwrap()
                .resource_logs
                .iter()
                .flat_map(|r| {
                    let res = r.resource.clone().unwrap_or_default().attributes;
                    r.scope_logs
                        .iter()
                        .flat_map(|s| &s.log_records)
                        .map(move |l| (res.clone(), l.clone()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn events() -> Batch {
    let mut b = voice_event("b", "call-2", "CALL_STARTED", 1);
    b.organization_id = "org-2".into();
    voice_events(&[voice_event("a", "call-1", "CALL_STARTED", 0), b])
}

#[tokio::test]
async fn renames_an_attribute_and_adds_one() {
    let (p, out) = transform(
        r#"
source: |
  .attributes.tenant = del(.attributes."voice.organization.id")
  .attributes.pipeline = "gp-main"
"#,
    )
    .await;
    p.consume(events()).await.unwrap();
    let got = records(&out);
    assert_eq!(got.len(), 2);
    for (r, org) in got.iter().zip(["org-1", "org-2"]) {
        let a = &r.1.attributes;
        assert_eq!(attr(a, "tenant").as_deref(), Some(org));
        assert_eq!(attr(a, "voice.organization.id"), None);
        assert_eq!(attr(a, "pipeline").as_deref(), Some("gp-main"));
        // What the program did not touch is as it was.
        assert!(attr(a, lumina_sdk::voice::attr::EVENT_ID).is_some());
    }
    let before = events().as_logs().unwrap().resource_logs[0].scope_logs[0].log_records[0].clone();
    assert_eq!(got[0].1.event_name, lumina_sdk::voice::EVENT_NAME);
    assert_eq!(got[0].1.time_unix_nano, before.time_unix_nano);
    assert_eq!(
        got[0].1.observed_time_unix_nano,
        before.observed_time_unix_nano
    );
    assert_eq!(got[0].1.severity_number, before.severity_number);
}

#[tokio::test]
async fn values_keep_their_types_through_a_program() {
    let (p, out) = transform("source: '.attributes.n = 3; .attributes.f = 1.5; .attributes.b = true; .attributes.l = [1, \"x\"]; .body = {\"k\": {\"v\": 2}}'").await;
    p.consume(events()).await.unwrap();
    let (_, r) = &records(&out)[0];
    let get = |k: &str| {
        r.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(get("n"), Some(any_value::Value::IntValue(3)));
    assert_eq!(get("f"), Some(any_value::Value::DoubleValue(1.5)));
    assert_eq!(get("b"), Some(any_value::Value::BoolValue(true)));
    let Some(any_value::Value::ArrayValue(l)) = get("l") else {
        panic!()
    };
    assert_eq!(l.values[0].value, Some(any_value::Value::IntValue(1)));
    assert_eq!(
        l.values[1].value,
        Some(any_value::Value::StringValue("x".into()))
    );
    let body = serde_json::to_value(r.body.clone().unwrap()).unwrap();
    assert!(body.to_string().contains("\"v\""), "{body}");
}

#[tokio::test]
async fn a_record_whose_resource_changes_moves_to_a_resource_of_its_own() {
    let (p, out) = transform(
        r#"source: 'if .attributes."voice.organization.id" == "org-2" { .resource.attributes.region = "eu" }'"#,
    )
    .await;
    p.consume(events()).await.unwrap();
    let got = records(&out);
    assert_eq!(attr(&got[0].0, "region"), None);
    assert_eq!(attr(&got[1].0, "region").as_deref(), Some("eu"));
    assert_eq!(out.batches()[0].as_logs().unwrap().resource_logs.len(), 2);
}

#[tokio::test]
async fn a_runtime_error_leaves_the_record_unchanged_drops_it_or_refuses_it() {
    // The events have no body: `string!` fails at run time, after the first line ran.
    let program = "source: '.attributes.touched = true; .attributes.b = upcase(string!(.body))'";
    let (p, out) = transform(&format!("{program}\nerror_mode: ignore")).await;
    p.consume(events()).await.unwrap();
    let got = records(&out);
    assert_eq!(got.len(), 2);
    assert_eq!(attr(&got[0].1.attributes, "touched"), None, "unchanged");
    let (p, out) = transform(&format!("{program}\nerror_mode: drop")).await;
    assert_eq!(p.consume(events()).await.unwrap().rejected, 0);
    assert!(records(&out).is_empty());
    let (p, out) = transform(&format!("{program}\nerror_mode: propagate")).await;
    let refused = p.consume(events()).await.unwrap();
    assert_eq!(refused.rejected, 2);
    assert!(refused.message.unwrap().contains("string"));
    assert!(records(&out).is_empty());
}

#[tokio::test]
async fn a_field_left_in_a_wrong_shape_is_a_runtime_error() {
    let (p, out) = transform("source: '.attributes = \"flat\"'\nerror_mode: propagate").await;
    let refused = p.consume(events()).await.unwrap();
    assert_eq!(refused.rejected, 2);
    let why = refused.message.unwrap();
    assert!(why.contains("`.attributes` must be an object"), "{why}");
    assert!(records(&out).is_empty());
}

#[tokio::test]
async fn abort_drops_the_record() {
    let (p, out) =
        transform(r#"source: 'if .attributes."voice.organization.id" == "org-2" { abort }'"#).await;
    p.consume(events()).await.unwrap();
    let got = records(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(
        attr(&got[0].1.attributes, "voice.organization.id").as_deref(),
        Some("org-1")
    );
}

#[tokio::test]
async fn a_dialogue_record_keeps_its_events_when_a_field_is_rewritten() {
    let events = [voice_event("e1", "call-1", "CALL_STARTED", 0)];
    let record = lumina_sdk::testkit::dialogue("d1", &events)
        .to_log_record(lumina_sdk::voice::DialogueRecordKind::End);
    let (p, out) = transform("source: '.body.callerNumber = \"withheld\"'").await;
    p.consume(lumina_sdk::testkit::logs_of(vec![record]))
        .await
        .unwrap();
    let (_, r) = &records(&out)[0];
    let (_, got) = lumina_sdk::voice::Dialogue::from_log_record(r)
        .unwrap()
        .unwrap();
    assert_eq!(got.caller_number.as_deref(), Some("withheld"));
    assert_eq!(got.events.len(), 1);
    assert_eq!(got.dialogue_id, "d1");
}

#[tokio::test]
async fn spans_and_metrics_are_rewritten() {
    use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
    use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let (p, out) = transform("source: '.name = \"call \" + string!(.name); .status.code = \"ERROR\"; .status.message = \"busy\"'").await;
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "answer".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    p.consume(Batch::traces(req)).await.unwrap();
    let b = &out.batches()[0];
    let s = &b.as_traces().unwrap().resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(s.name, "call answer");
    let st = s.status.clone().unwrap();
    assert_eq!((st.code, st.message.as_str()), (2, "busy"));

    let (p, out) =
        transform("source: '.name = replace(string!(.name), \".\", \"_\"); .unit = \"s\"'").await;
    let mut batch = lumina_sdk::testkit::metrics(1, 1);
    let before = batch.as_metrics().unwrap().resource_metrics[0].scope_metrics[0].metrics[0]
        .name
        .clone();
    p.consume(std::mem::replace(&mut batch, Batch::empty(Signal::Metrics)))
        .await
        .unwrap();
    let b = &out.batches()[0];
    let m = &b.as_metrics().unwrap().resource_metrics[0].scope_metrics[0].metrics[0];
    assert_eq!(m.name, before.replace('.', "_"));
    assert_eq!(m.unit, "s");
}

#[test]
fn programs_that_do_not_compile_are_refused_with_vrl_s_diagnostic() {
    let check = lumina_sdk::testkit::config_errors::<TransformConfig>;
    let syntax = check("source: '.attributes.x = '");
    assert!(
        syntax.contains("source") && syntax.contains("does not compile"),
        "{syntax}"
    );
    let types = check("source: '.attributes.n = to_int(.attributes.x) + 1'");
    assert!(
        types.contains("fallible") || types.contains("unhandled"),
        "{types}"
    );
    let _ = AnyValue::default();
}
