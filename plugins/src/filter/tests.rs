use lumina_sdk::testkit::{CollectingConsumer, voice_event, voice_events};

use super::*;

async fn filter(yaml: &str) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    lumina_sdk::testkit::processor::<FilterConfig>("filter", Signal::Logs, yaml).await
}

/// Events of organizations org-1, org-2, org-1 (ids a, b, c).
fn mixed() -> Batch {
    let mut b = voice_event("b", "call-2", "CALL_STARTED", 1);
    b.organization_id = "org-2".into();
    voice_events(&[
        voice_event("a", "call-1", "CALL_STARTED", 0),
        b,
        voice_event("c", "call-3", "CALL_STARTED", 2),
    ])
}

fn ids(out: &CollectingConsumer) -> Vec<String> {
    out.batches()
        .iter()
        .flat_map(|b| {
            b.as_logs()
                .unwrap()
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .filter_map(|r| {
                    lumina_sdk::testkit::attr(&r.attributes, lumina_sdk::voice::attr::EVENT_ID)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn drop_and_keep_select_records_by_a_condition_on_their_attributes() {
    let (p, out) = filter(r#"drop: '.attributes."voice.organization.id" == "org-2"'"#).await;
    p.consume(mixed()).await.unwrap();
    assert_eq!(ids(&out), ["a", "c"]);
    let (p, out) = filter(r#"keep: '.attributes."voice.organization.id" == "org-2"'"#).await;
    p.consume(mixed()).await.unwrap();
    assert_eq!(ids(&out), ["b"]);
}

#[test]
fn a_program_that_does_not_compile_is_refused_with_vrl_s_diagnostic() {
    let check = lumina_sdk::testkit::config_errors::<FilterConfig>;
    let syntax = check("keep: '.attributes.x ==== 1'");
    assert!(
        syntax.contains("keep") && syntax.contains("does not compile"),
        "{syntax}"
    );
    assert!(
        syntax.contains("syntax error") || syntax.contains("unexpected"),
        "{syntax}"
    );
    // A fallible call that is not handled is a compile-time (type) error in VRL.
    let types = check("keep: 'to_int(.attributes.x) > 1'");
    assert!(
        types.contains("fallible") || types.contains("unhandled"),
        "{types}"
    );
    let neither = check("error_mode: drop");
    assert!(
        neither.contains("exactly one of `keep` and `drop`"),
        "{neither}"
    );
}

#[tokio::test]
async fn a_runtime_error_follows_the_error_mode() {
    // `.body` is null for these events: `upcase!` fails at run time.
    let program = r#"keep: 'upcase!(.body) == "X"'"#;
    let (p, out) = filter(&format!("{program}\nerror_mode: ignore")).await;
    p.consume(mixed()).await.unwrap();
    assert_eq!(ids(&out), ["a", "b", "c"], "ignore keeps them");
    let (p, out) = filter(&format!("{program}\nerror_mode: drop")).await;
    p.consume(mixed()).await.unwrap();
    assert!(ids(&out).is_empty(), "drop drops them");
    let (p, out) = filter(&format!("{program}\nerror_mode: propagate")).await;
    let refused = p.consume(mixed()).await.unwrap();
    assert_eq!(refused.rejected, 3);
    let why = refused.message.unwrap();
    assert!(
        why.contains("3 record(s)") && why.contains("upcase"),
        "{why}"
    );
    assert!(out.batches().is_empty());
}

#[tokio::test]
async fn propagate_refuses_the_failing_records_and_passes_the_rest() {
    // Only org-2's event has a body; `string!` fails on the others' null body.
    let mut b = mixed().into_payload();
    let lumina_sdk::Payload::Logs(req) = &mut b else {
        panic!()
    };
    req.resource_logs[0].scope_logs[0].log_records[1].body =
        Some(lumina_sdk::proto::common::v1::AnyValue {
            value: Some(
                lumina_sdk::proto::common::v1::any_value::Value::StringValue("hello".into()),
            ),
        });
    let (p, out) = filter("keep: 'string!(.body) == \"hello\"'\nerror_mode: propagate").await;
    let accepted = p.consume(Batch::new(b)).await.unwrap();
    assert_eq!(accepted.rejected, 2);
    assert_eq!(ids(&out), ["b"]);
}

#[tokio::test]
async fn spans_and_metrics_are_judged_too() {
    use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
    use lumina_sdk::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
    use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let (p, out) = filter("drop: '.name == \"health\" || .kind == \"SERVER\"'").await;
    let span = |name: &str, kind: i32| Span {
        name: name.into(),
        kind,
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span("health", 1), span("answer", 2), span("answer", 3)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    p.consume(Batch::traces(req)).await.unwrap();
    let b = &out.batches()[0];
    let kept = &b.as_traces().unwrap().resource_spans[0].scope_spans[0].spans;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind, 3);

    let (p, out) = filter("keep: 'starts_with(string!(.name), \"voice.\")'").await;
    // A metric of one gauge point (a batch of metrics counts points).
    let metric = |name: &str| Metric {
        name: name.into(),
        data: Some(lumina_sdk::proto::metrics::v1::metric::Data::Gauge(
            lumina_sdk::proto::metrics::v1::Gauge {
                data_points: vec![Default::default()],
            },
        )),
        ..Default::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric("voice.call_count"), metric("process.cpu")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    p.consume(Batch::metrics(req)).await.unwrap();
    let b = &out.batches()[0];
    let kept = &b.as_metrics().unwrap().resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(
        kept.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["voice.call_count"]
    );
}

#[test]
fn a_condition_that_cannot_give_a_boolean_is_refused_at_compile_time() {
    let e = lumina_sdk::testkit::config_errors::<FilterConfig>("keep: '\"text\"'");
    assert!(e.contains("must give a boolean"), "{e}");
}

#[tokio::test]
async fn dialogue_records_are_filtered_by_their_body() {
    use lumina_sdk::proto::logs::v1::LogRecord;
    let dialogue = |status: &str| LogRecord {
        event_name: "voice.dialogue.end".into(),
        body: Some(lumina_sdk::proto::common::v1::AnyValue {
            value: Some(
                lumina_sdk::proto::common::v1::any_value::Value::KvlistValue(
                    lumina_sdk::proto::common::v1::KeyValueList {
                        values: vec![lumina_sdk::testkit::kv("status", status)],
                    },
                ),
            ),
        }),
        ..Default::default()
    };
    let (p, out) = filter("keep: '.body.status == \"FAILED\"'").await;
    p.consume(lumina_sdk::testkit::logs_of(vec![
        dialogue("COMPLETED"),
        dialogue("FAILED"),
    ]))
    .await
    .unwrap();
    let b = &out.batches()[0];
    let kept = &b.as_logs().unwrap().resource_logs[0].scope_logs[0].log_records;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0], dialogue("FAILED"));
}

#[tokio::test]
async fn a_result_that_is_not_a_boolean_is_an_error() {
    let (p, out) = filter("keep: '.event_name'\nerror_mode: drop").await;
    p.consume(mixed()).await.unwrap();
    assert!(ids(&out).is_empty());
}

#[tokio::test]
async fn a_condition_sees_every_field_it_reads_and_only_those_are_built() {
    use lumina_sdk::proto::common::v1::InstrumentationScope;
    let mut e = voice_event("a", "call-1", "CALL_STARTED", 0);
    e.data.insert("note".into(), "vip".into());
    let mut b = voice_events(&[e]).into_payload();
    let lumina_sdk::Payload::Logs(req) = &mut b else {
        panic!()
    };
    req.resource_logs[0].resource = Some(lumina_sdk::proto::resource::v1::Resource {
        attributes: vec![lumina_sdk::testkit::kv("service.name", "gp-eu")],
        ..Default::default()
    });
    req.resource_logs[0].scope_logs[0].scope = Some(InstrumentationScope {
        name: "lumina.gp".into(),
        ..Default::default()
    });
    let batch = Batch::new(b);
    for condition in [
        r#".body.note == "vip""#,
        r#".resource.attributes."service.name" == "gp-eu""#,
        r#".scope.name == "lumina.gp" && .event_name == "lumina.voice.event""#,
        r#"exists(.attributes."voice.event.id") && to_unix_timestamp(timestamp!(.time)) > 1577836800"#,
        // The record whole.
        r#"length(keys(.)) > 10 && get!(., ["body", "note"]) == "vip""#,
    ] {
        let (p, out) = filter(&format!("keep: |\n  {condition}\nerror_mode: propagate")).await;
        let accepted = p.consume(batch.clone()).await.unwrap();
        assert_eq!(accepted.rejected, 0, "{condition}: {:?}", accepted.message);
        assert_eq!(ids(&out), ["a"], "{condition}");
    }
    let reads = |c: &str| crate::remap::Program::condition(c).ok().unwrap().reads();
    let need = reads(r#".body.note == "vip""#);
    assert!(need.has("body") && !need.has("attributes") && !need.has("resource"));
    assert!(reads("length(keys(.)) > 1").has("attributes"));
}
