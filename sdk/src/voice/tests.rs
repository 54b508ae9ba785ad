use serde_json::json;

use super::*;
use crate::proto::common::v1::{AnyValue, any_value};

fn native() -> serde_json::Value {
    json!({
        "eventId": "e-1",
        "eventType": "CALL_STARTED",
        "timestamp": "2026-11-23T10:15:00.250+01:00",
        "organizationId": "org-1",
        "accountId": "acc-1",
        "callGuid": "call-1",
        "legGuid": "leg-1",
        "callerNumber": "+442012345678",
        "calledNumber": "+15551234567",
        "direction": "INBOUND",
        "regionId": 1,
        "data": { "queue": "sales", "attempt": 2 }
    })
}

#[test]
fn a_native_event_reads_with_a_derived_dialogue_id_and_round_trips_through_a_log_record() {
    let e = VoiceEvent::from_json(&native()).unwrap();
    assert_eq!(e.event_type, EventType::CallStarted);
    assert_eq!(e.timestamp, parse_time("2026-11-23T09:15:00.25Z").unwrap());
    assert_eq!(
        e.dialogue_id,
        derive_dialogue_id("org-1", "call-1", "leg-1")
    );
    assert_eq!(e.region_id, Some(1));
    assert_eq!(e.data["attempt"], json!(2));

    let mut with_source = e.clone();
    with_source.source = Some(Source::Gp);
    let record = with_source.to_log_record();
    assert_eq!(record.event_name, EVENT_NAME);
    let back = VoiceEvent::from_log_record(&record, &[]).unwrap();
    assert_eq!(back, with_source);
    assert_eq!(VoiceEvent::from_json(&back.to_json()).unwrap(), back);
}

#[test]
fn derived_dialogue_ids_are_stable_and_distinct() {
    let a = derive_dialogue_id("org-1", "call-1", "leg-1");
    assert_eq!(a, derive_dialogue_id("org-1", "call-1", "leg-1"));
    assert_ne!(a, derive_dialogue_id("org-1", "call-1", "leg-2"));
    assert_ne!(a, derive_dialogue_id("org-2", "call-1", "leg-1"));
    // A fixed value: the derivation is a contract other systems rely on.
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "5", "a version 5 UUID: {a}");
}

#[test]
fn every_bad_field_is_named() {
    let cases: Vec<(serde_json::Value, &str, &str)> = vec![
        (json!({"eventId": null}), "eventId", "is missing"),
        (json!({"eventId": ""}), "eventId", "is empty"),
        (
            json!({"eventId": 7}),
            "eventId",
            "must be a string, got a number",
        ),
        (
            json!({"eventType": "CALL_EXPLODED"}),
            "eventType",
            "`CALL_EXPLODED` is not an event type",
        ),
        (
            json!({"timestamp": "yesterday"}),
            "timestamp",
            "is not an RFC 3339 time",
        ),
        (
            json!({"timestamp": 1_700_000_000}),
            "timestamp",
            "must be an RFC 3339 time string",
        ),
        (
            json!({"timestamp": "1970-01-01T00:00:01Z"}),
            "timestamp",
            "before 2000-01-01",
        ),
        (
            json!({"organizationId": null}),
            "organizationId",
            "is missing",
        ),
        (json!({"callGuid": ["x"]}), "callGuid", "got a list"),
        (
            json!({"legGuid": "x".repeat(300)}),
            "legGuid",
            "the limit is 256",
        ),
        (
            json!({"direction": "SIDEWAYS"}),
            "direction",
            "expected `INBOUND` or `OUTBOUND`",
        ),
        (json!({"regionId": 9}), "regionId", "from 1 to 6, got 9"),
        (json!({"regionId": "2"}), "regionId", "got a string"),
        (
            json!({"data": "text"}),
            "data",
            "must be an object, got a string",
        ),
    ];
    for (patch, field, message) in cases {
        let mut v = native();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        let e = VoiceEvent::from_json(&v).unwrap_err();
        assert_eq!(e.field, field, "{patch}: {e}");
        assert!(e.message.contains(message), "{patch}: {e}");
    }
    let e = VoiceEvent::from_json(&json!([1])).unwrap_err();
    assert_eq!(e.field, "event");
}

#[test]
fn log_record_fields_fall_back_to_the_resource_and_errors_name_attributes() {
    let e = VoiceEvent::from_json(&native()).unwrap();
    let mut record = e.to_log_record();
    record
        .attributes
        .retain(|kv| kv.key != attr::ORGANIZATION_ID);
    let resource = vec![value::string_kv(attr::ORGANIZATION_ID, "org-1")];
    assert_eq!(VoiceEvent::from_log_record(&record, &resource).unwrap(), e);
    let err = VoiceEvent::from_log_record(&record, &[]).unwrap_err();
    assert_eq!(err.field, attr::ORGANIZATION_ID);

    let mut no_time = e.to_log_record();
    no_time.time_unix_nano = 0;
    assert_eq!(
        VoiceEvent::from_log_record(&no_time, &[])
            .unwrap_err()
            .field,
        "time_unix_nano"
    );
    let mut text_body = e.to_log_record();
    text_body.body = Some(AnyValue {
        value: Some(any_value::Value::StringValue("hello".into())),
    });
    let err = VoiceEvent::from_log_record(&text_body, &[]).unwrap_err();
    assert_eq!(err.field, "body");
    assert!(err.message.contains("must be a map"), "{err}");
}

#[test]
fn normalising_keeps_foreign_attributes_and_replaces_voice_ones() {
    let e = VoiceEvent::from_json(&native()).unwrap();
    let mut record = e.to_log_record();
    record.event_name.clear();
    record.attributes.push(value::string_kv("http.route", "/x"));
    let mut tagged = e.clone();
    tagged.source = Some(Source::Rt);
    tagged.normalise(&mut record);
    assert_eq!(record.event_name, EVENT_NAME);
    assert!(record.attributes.iter().any(|kv| kv.key == "http.route"));
    let n = |k: &str| record.attributes.iter().filter(|kv| kv.key == k).count();
    assert_eq!(n(attr::EVENT_ID), 1);
    assert_eq!(
        VoiceEvent::from_log_record(&record, &[]).unwrap().source,
        Some(Source::Rt)
    );
}

#[test]
fn a_dialogue_round_trips_through_its_record_with_exact_field_names() {
    let d = Dialogue {
        pk: Dialogue::partition_key("org-1", "acc-1"),
        sk: "d-1".into(),
        dialogue_id: "d-1".into(),
        call_guid: "call-1".into(),
        leg_guid: "leg-1".into(),
        caller_number: Some("+44".into()),
        called_number: None,
        start_time: Some(format_time(parse_time("2026-11-23T10:00:00Z").unwrap())),
        end_time: None,
        duration: None,
        status: DialogueStatus::Active,
        direction: Some(Direction::Outbound),
        events: vec![Event {
            event_id: "e-1".into(),
            dialogue_id: "d-1".into(),
            event_type: EventType::CallStarted,
            timestamp: "2026-11-23T10:00:00Z".into(),
            data: json!({"a": [1, 2.5, true, null]}),
            source: Some(Source::Gp),
        }],
        organization_id: "org-1".into(),
        account_id: "acc-1".into(),
        created_at: "2026-11-23T10:00:01Z".into(),
        updated_at: "2026-11-23T10:00:02Z".into(),
        answer_time: None,
        end_reason: None,
        participants: vec!["+44".into()],
        region_id: Some(3),
        territory: None,
        revision: 1,
    };
    let record = d.to_log_record(DialogueRecordKind::End);
    assert_eq!(record.event_name, DIALOGUE_END);
    // The body is built directly, and equals the dialogue's JSON form converted, with every
    // field known or none.
    let full = Dialogue {
        called_number: Some("+1".into()),
        end_time: Some("2026-11-23T10:05:00Z".into()),
        duration: Some(300),
        status: DialogueStatus::Transferred,
        answer_time: Some("2026-11-23T10:00:09Z".into()),
        end_reason: Some("TRANSFERRED".into()),
        territory: Some("31".into()),
        revision: u64::MAX,
        ..d.clone()
    };
    let none = Dialogue {
        caller_number: None,
        start_time: None,
        direction: None,
        region_id: None,
        events: vec![Event {
            source: None,
            data: json!({}),
            ..d.events[0].clone()
        }],
        participants: Vec::new(),
        ..d.clone()
    };
    for x in [&d, &full, &none] {
        let r = x.clone().into_log_record(DialogueRecordKind::Update);
        assert_eq!(
            r.body.as_ref().map(value::any_to_json),
            Some(value::any_to_json(&value::json_to_any(
                &serde_json::to_value(x).unwrap()
            )))
        );
    }
    let (kind, back) = Dialogue::from_log_record(&record).unwrap().unwrap();
    assert_eq!(kind, DialogueRecordKind::End);
    assert_eq!(back, d);
    let body = value::any_to_json(record.body.as_ref().unwrap());
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "PK",
        "SK",
        "dialogueId",
        "callGuid",
        "legGuid",
        "callerNumber",
        "calledNumber",
        "startTime",
        "endTime",
        "duration",
        "status",
        "direction",
        "events",
        "organizationId",
        "accountId",
        "createdAt",
        "updatedAt",
        "answerTime",
        "endReason",
        "participants",
        "regionId",
        "revision",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let other = VoiceEvent::from_json(&native()).unwrap().to_log_record();
    assert!(Dialogue::from_log_record(&other).is_none());
}

#[test]
fn times_format_in_utc_and_parse_any_offset() {
    let t = parse_time("2026-11-23T10:15:00+02:00").unwrap();
    assert_eq!(format_time(t), "2026-11-23T08:15:00Z");
    assert_eq!(format_time(t + 250_000_000), "2026-11-23T08:15:00.25Z");
    assert!(parse_time("2026-13-01T00:00:00Z").is_err());
}
