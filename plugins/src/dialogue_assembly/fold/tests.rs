//! Property tests: any permutation and duplication of a call's events gives the dialogue the
//! call's scenario says it should have. The expected dialogue is built from the scenario, not
//! by the code under test.

use proptest::prelude::*;
use serde_json::json;

use super::*;

const T0: i64 = 1_795_000_000_000_000_000;
const S: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Completed,
    Abandoned,
    Busy,
    Transferred,
    Active,
}

fn event(id: &str, t: EventType, ts: i64, data: serde_json::Value) -> VoiceEvent {
    VoiceEvent {
        event_id: id.into(),
        event_type: t,
        timestamp: ts,
        organization_id: "org-7".into(),
        account_id: "acc-1".into(),
        call_guid: "call-1".into(),
        leg_guid: "leg-1".into(),
        dialogue_id: "d-1".into(),
        caller_number: (t == EventType::CallStarted).then(|| "+441111".into()),
        called_number: (t == EventType::CallStarted).then(|| "+442222".into()),
        direction: (t == EventType::CallStarted).then_some(Direction::Inbound),
        region_id: (t == EventType::CallStarted).then_some(1),
        territory: None,
        source: Some(Source::Gp),
        data: data.as_object().cloned().unwrap_or_default(),
    }
}

/// A call's events and the dialogue they must give (times, status, reason, participants).
fn scenario(outcome: Outcome, ring: i64, talk: i64, extras: usize) -> (Vec<VoiceEvent>, Dialogue) {
    let start = T0;
    let answer = start + ring * S;
    let end = answer + talk * S + 1;
    let mut events = vec![event("e-start", EventType::CallStarted, start, json!({}))];
    let answered = matches!(outcome, Outcome::Completed | Outcome::Transferred);
    if answered {
        events.push(event(
            "e-answer",
            EventType::CallAnswered,
            answer,
            json!({}),
        ));
        for i in 0..extras {
            let t = [
                EventType::CallHeld,
                EventType::DtmfReceived,
                EventType::RecordingStarted,
            ][i % 3];
            events.push(event(
                &format!("e-x{i}"),
                t,
                answer + (i as i64 + 1) * 7,
                json!({"n": i}),
            ));
        }
    }
    let mut participants = vec!["+441111".to_owned(), "+442222".to_owned()];
    let (status, reason, end_time) = match outcome {
        Outcome::Completed => {
            events.push(event(
                "e-end",
                EventType::CallEnded,
                end,
                json!({"reason": "NORMAL"}),
            ));
            (DialogueStatus::Completed, Some("NORMAL"), Some(end))
        }
        Outcome::Abandoned => {
            events.push(event(
                "e-end",
                EventType::CallEnded,
                answer,
                json!({"reason": "ABANDONED"}),
            ));
            (DialogueStatus::Failed, Some("ABANDONED"), Some(answer))
        }
        Outcome::Busy => {
            events.push(event(
                "e-end",
                EventType::CallEnded,
                answer,
                json!({"reason": "BUSY"}),
            ));
            (DialogueStatus::Failed, Some("BUSY"), Some(answer))
        }
        Outcome::Transferred => {
            events.push(event(
                "e-xfer",
                EventType::CallTransferred,
                end,
                json!({"target": "+443333"}),
            ));
            // The transferred leg's own CALL_ENDED comes later and does not change its end.
            events.push(event("e-end", EventType::CallEnded, end + 2 * S, json!({})));
            participants.push("+443333".into());
            (DialogueStatus::Transferred, Some("TRANSFERRED"), Some(end))
        }
        Outcome::Active => (DialogueStatus::Active, None, None),
    };
    let mut sorted = events.clone();
    sorted.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
    let expected = Dialogue {
        pk: "org-7#acc-1".into(),
        sk: "d-1".into(),
        dialogue_id: "d-1".into(),
        call_guid: "call-1".into(),
        leg_guid: "leg-1".into(),
        caller_number: Some("+441111".into()),
        called_number: Some("+442222".into()),
        start_time: Some(format_time(start)),
        end_time: end_time.map(format_time),
        duration: end_time.map(|e| ((e - start) / S) as u64),
        status,
        direction: Some(Direction::Inbound),
        events: sorted
            .iter()
            .map(|e| Event {
                event_id: e.event_id.clone(),
                dialogue_id: "d-1".into(),
                event_type: e.event_type,
                timestamp: format_time(e.timestamp),
                data: serde_json::Value::Object(e.data.clone()),
                source: Some(Source::Gp),
            })
            .collect(),
        organization_id: "org-7".into(),
        account_id: "acc-1".into(),
        created_at: String::new(),
        updated_at: String::new(),
        answer_time: answered.then(|| format_time(answer)),
        end_reason: reason.map(str::to_owned),
        participants,
        region_id: Some(1),
        territory: None,
        revision: 0,
    };
    (events, expected)
}

/// The dialogue without the fields that depend on when the collector saw it.
fn comparable(mut d: Dialogue) -> Dialogue {
    d.created_at.clear();
    d.updated_at.clear();
    d.revision = 0;
    d
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Completed),
        Just(Outcome::Abandoned),
        Just(Outcome::Busy),
        Just(Outcome::Transferred),
        Just(Outcome::Active),
    ]
}

proptest! {
    #[test]
    fn any_order_and_duplication_gives_the_scenario_s_dialogue(
        outcome in outcome(),
        ring in 0i64..60,
        talk in 0i64..3600,
        extras in 0usize..6,
        order in any::<u64>(),
        copies in prop::collection::vec(1usize..4, 12),
    ) {
        let (events, expected) = scenario(outcome, ring, talk, extras);
        // Each event sent 1-3 times, then everything shuffled by a seeded permutation.
        let mut sent: Vec<VoiceEvent> = events
            .iter()
            .enumerate()
            .flat_map(|(i, e)| std::iter::repeat_n(e.clone(), copies[i % copies.len()]))
            .collect();
        let mut rng = order;
        for i in (1..sent.len()).rev() {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            sent.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut state = DialogueState::new("d-1", 1);
        let mut changes = 0;
        for (n, e) in sent.iter().enumerate() {
            if state.apply(e, n as i64) {
                changes += 1;
            }
        }
        prop_assert_eq!(changes, events.len(), "each event id is applied once");
        prop_assert_eq!(state.revision, events.len() as u64);
        prop_assert_eq!(comparable(state.dialogue()), expected);
    }
}

proptest! {
    /// The records written as bytes (what is emitted) decode to the records built as OTLP
    /// values, for every outcome, at every point of the call, timed out or not.
    #[test]
    fn encoded_records_decode_to_the_built_ones(
        outcome in outcome(),
        ring in 0i64..60,
        talk in 0i64..3600,
        extras in 0usize..6,
        timed_out in any::<bool>(),
    ) {
        use prost::Message;
        let (events, _) = scenario(outcome, ring, talk, extras);
        let mut state = DialogueState::new("d-1", 1);
        for (n, e) in events.iter().enumerate() {
            state.apply(e, n as i64);
            if timed_out && n == 1 {
                state.timed_out = Some(DialogueStatus::Failed);
            }
            for ended in [false, true] {
                let (update, end) = state.records(ended);
                let mut buf = Vec::new();
                let kinds: &[DialogueRecordKind] = if ended {
                    &[DialogueRecordKind::Update, DialogueRecordKind::End]
                } else {
                    &[DialogueRecordKind::Update]
                };
                state.encode_records(kinds, &mut buf);
                let scope = lumina_sdk::proto::logs::v1::ScopeLogs::decode(buf.as_slice()).unwrap();
                let built: Vec<_> = std::iter::once(update).chain(end).collect();
                prop_assert_eq!(scope.log_records, built);
            }
        }
    }
}

#[test]
fn a_call_that_never_ends_is_closed_by_the_idle_timeout_at_its_last_event() {
    let (events, _) = scenario(Outcome::Completed, 5, 10, 2);
    let mut state = DialogueState::new("d-1", 0);
    for e in events
        .iter()
        .filter(|e| e.event_type != EventType::CallEnded)
    {
        state.apply(e, 0);
    }
    assert_eq!(state.dialogue().status, DialogueStatus::Active);
    assert!(!state.is_finished());
    state.timed_out = Some(DialogueStatus::Failed);
    let d = state.dialogue();
    assert_eq!(d.status, DialogueStatus::Failed);
    assert_eq!(d.end_reason.as_deref(), Some("IDLE_TIMEOUT"));
    assert_eq!(d.end_time, d.events.last().map(|e| e.timestamp.clone()));
    // The real end arriving late wins over the timeout.
    let end = events
        .iter()
        .find(|e| e.event_type == EventType::CallEnded)
        .unwrap();
    state.apply(end, 1);
    assert_eq!(state.dialogue().status, DialogueStatus::Completed);
}

#[test]
fn state_survives_serialisation() {
    let (events, _) = scenario(Outcome::Transferred, 3, 30, 3);
    let mut state = DialogueState::new("d-1", 5);
    for e in &events {
        state.apply(e, 6);
    }
    let bytes = serde_json::to_vec(&state).unwrap();
    let back: DialogueState = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, state);
    assert_eq!(back.dialogue(), state.dialogue());
}
