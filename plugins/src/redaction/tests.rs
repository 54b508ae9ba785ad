use lumina_sdk::component::{ComponentId, ComponentKind};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::testkit::{CollectingConsumer, attr, voice_event};
use lumina_sdk::voice::{Dialogue, DialogueRecordKind, VoiceEvent};
use serde_json::json;

use super::*;
use crate::test_metrics::{counter, recorded};

async fn redaction(id: &str, yaml: &str) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    lumina_sdk::testkit::processor::<RedactionConfig>(id, Signal::Logs, yaml).await
}

/// An event from +442071234567 to +15551234567 whose data names a transfer target and has
/// a note in free text.
fn event() -> VoiceEvent {
    let mut e = voice_event("e1", "call-1", "CALL_TRANSFERRED", 0);
    e.caller_number = Some("+442071234567".into());
    e.called_number = Some("+15551234567".into());
    e.data = json!({
        "target": "+441611234567",
        "note": "customer asked to be called back on 020 7946 0958 after 2026-12-01",
        "agentId": "agent-12345678",
    })
    .as_object()
    .cloned()
    .unwrap();
    e
}

fn records(out: &CollectingConsumer) -> Vec<lumina_sdk::proto::logs::v1::LogRecord> {
    out.log_records()
}

const RAW: [&str; 4] = ["2071234567", "5551234567", "1611234567", "7946 0958"];

#[tokio::test]
async fn with_no_settings_every_number_of_an_event_keeps_its_last_four_digits() {
    let _ = recorded();
    let (p, out) = redaction("redaction/events", "{}").await;
    p.consume(lumina_sdk::testkit::voice_events(&[event()]))
        .await
        .unwrap();
    let r = &records(&out)[0];
    let text = serde_json::to_string(r).unwrap();
    for raw in RAW {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
    let got = VoiceEvent::from_log_record(r, &[]).unwrap();
    assert_eq!(got.caller_number.as_deref(), Some("+********4567"));
    assert_eq!(got.called_number.as_deref(), Some("+*******4567"));
    assert_eq!(got.data["target"], "+********4567");
    assert_eq!(
        got.data["note"],
        "customer asked to be called back on *** **** 0958 after 2026-12-01"
    );
    // What is not a number is as it was.
    assert_eq!(got.data["agentId"], "agent-12345678");
    assert_eq!(got.event_id, "e1");
    assert_eq!(got.call_guid, "call-1");
    assert_eq!(
        counter(MASKED, "redaction/events", "field", "attributes"),
        2
    );
    assert_eq!(counter(MASKED, "redaction/events", "field", "body"), 2);
}

#[tokio::test]
async fn a_dialogue_record_is_masked_everywhere_and_keeps_its_events() {
    let dialogue = lumina_sdk::testkit::dialogue("d1", &[event()]);
    let (p, out) = redaction("redaction/dialogues", "{}").await;
    p.consume(lumina_sdk::testkit::logs_of(vec![
        dialogue.to_log_record(DialogueRecordKind::End),
    ]))
    .await
    .unwrap();
    let r = &records(&out)[0];
    let text = serde_json::to_string(r).unwrap();
    for raw in RAW {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
    let (kind, got) = Dialogue::from_log_record(r).unwrap().unwrap();
    assert_eq!(kind, DialogueRecordKind::End);
    assert_eq!(got.caller_number.as_deref(), Some("+********4567"));
    assert_eq!(got.participants, ["+********4567", "+*******4567"]);
    assert_eq!(got.events.len(), 1);
    assert_eq!(got.events[0].data["target"], "+********4567");
    // Everything else is the dialogue as it was.
    let mut want = dialogue.clone();
    want.caller_number = got.caller_number.clone();
    want.called_number = got.called_number.clone();
    want.participants = got.participants.clone();
    want.events[0].data = got.events[0].data.clone();
    assert_eq!(got, want);
}

#[tokio::test]
async fn hmac_masks_keep_equal_numbers_joinable() {
    // A variable cargo sets for every test run serves as the key.
    let (p, out) = redaction(
        "redaction/hmac",
        "mode: hmac\nhmac_key_env: CARGO_MANIFEST_DIR",
    )
    .await;
    let mut second = event();
    second.event_id = "e2".into();
    second.caller_number = Some("+44 20 7123 4567".into());
    p.consume(lumina_sdk::testkit::voice_events(&[event(), second]))
        .await
        .unwrap();
    let got = records(&out);
    let caller = |r| {
        attr(
            &VoiceEvent::from_log_record(r, &[])
                .unwrap()
                .to_log_record()
                .attributes,
            attr::CALLER_NUMBER,
        )
        .unwrap()
    };
    let (a, b) = (caller(&got[0]), caller(&got[1]));
    assert_eq!(a, b, "one number, two spellings, one mask");
    assert!(a.starts_with('#') && a.len() == 17, "{a}");
    let called = attr(&got[0].attributes, attr::CALLED_NUMBER).unwrap();
    assert_ne!(a, called);
}

#[tokio::test]
async fn hmac_without_its_key_is_refused_at_start() {
    let cfg: ConfigValue =
        lumina_sdk::config::parse_yaml("mode: hmac\nhmac_key_env: LUMINA_TEST_UNSET_KEY", "t")
            .unwrap();
    let err = lumina_sdk::component::processor::<RedactionConfig>()
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("redaction"), ComponentKind::Processor),
            Signal::Logs,
            Arc::new(CollectingConsumer::new()) as DynConsumer,
        )
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("LUMINA_TEST_UNSET_KEY"), "{err}");
}

#[tokio::test]
async fn configured_keys_and_patterns_are_masked_and_text_scanning_can_be_off() {
    let (p, out) = redaction(
        "redaction/custom",
        "scan_text: false\nextra_keys: [agentId]\npatterns: ['PIN \\d{4}']\nkeep_last_digits: 2",
    )
    .await;
    let mut e = event();
    e.data.insert("pin".into(), json!("PIN 1234"));
    p.consume(lumina_sdk::testkit::voice_events(&[e]))
        .await
        .unwrap();
    let got = VoiceEvent::from_log_record(&records(&out)[0], &[]).unwrap();
    assert_eq!(got.data["agentId"], "agent-******78");
    assert_eq!(got.data["pin"], "PIN **34");
    assert_eq!(got.caller_number.as_deref(), Some("+**********67"));
    // Free text is left alone when scanning is off.
    assert!(got.data["note"].as_str().unwrap().contains("020 7946 0958"));
}

#[test]
fn a_pattern_that_does_not_compile_is_refused_at_its_index() {
    let e = lumina_sdk::testkit::config_errors::<RedactionConfig>("patterns: ['ok', '(']");
    assert!(
        e.contains("patterns[1]") && e.contains("not a regular expression"),
        "{e}"
    );
}

#[tokio::test]
async fn span_attributes_and_span_event_attributes_are_masked() {
    use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
    use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
    let out = Arc::new(CollectingConsumer::new());
    let p = lumina_sdk::component::processor::<RedactionConfig>()
        .create(
            &lumina_sdk::config::parse_yaml("{}", "t").unwrap(),
            CreateContext::new(
                ComponentId::new("redaction/spans"),
                ComponentKind::Processor,
            ),
            Signal::Traces,
            out.clone() as DynConsumer,
        )
        .await
        .unwrap();
    let span = Span {
        name: "answer".into(),
        attributes: vec![lumina_sdk::testkit::kv(
            attr::CALLER_NUMBER,
            "+442071234567",
        )],
        events: vec![span::Event {
            name: "transfer".into(),
            attributes: vec![lumina_sdk::testkit::kv("note", "to +441611234567 now")],
            ..Default::default()
        }],
        ..Default::default()
    };
    p.consume(Batch::traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
    .await
    .unwrap();
    let b = &out.batches()[0];
    let s = &b.as_traces().unwrap().resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        attr(&s.attributes, attr::CALLER_NUMBER).as_deref(),
        Some("+********4567")
    );
    assert_eq!(
        attr(&s.events[0].attributes, "note").as_deref(),
        Some("to +********4567 now")
    );
}
