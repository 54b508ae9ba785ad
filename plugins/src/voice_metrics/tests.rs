use super::*;
use lumina_sdk::component::{ComponentId, ComponentKind};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::testkit::CollectingConsumer;
use lumina_sdk::testkit::logs_of as logs;
use lumina_sdk::voice::{DialogueStatus, EventType};

fn dialogue(id: &str, org: &str, status: DialogueStatus, answered: bool, reason: &str) -> Dialogue {
    Dialogue {
        pk: String::new(),
        sk: id.into(),
        dialogue_id: id.into(),
        call_guid: id.into(),
        leg_guid: "l".into(),
        caller_number: None,
        called_number: None,
        start_time: Some("2026-11-23T10:00:00Z".into()),
        end_time: Some("2026-11-23T10:01:00Z".into()),
        duration: Some(55),
        status,
        direction: None,
        events: Vec::new(),
        organization_id: org.into(),
        account_id: "a".into(),
        created_at: "2026-11-23T10:00:00Z".into(),
        updated_at: "2026-11-23T10:01:00Z".into(),
        answer_time: answered.then(|| "2026-11-23T10:00:05Z".into()),
        end_reason: Some(reason.into()),
        participants: Vec::new(),
        region_id: Some(2),
        territory: Some("21".into()),
        revision: 3,
    }
}

#[tokio::test]
async fn counts_each_ended_dialogue_once_per_organization_and_region() {
    let out = Arc::new(CollectingConsumer::new());
    let c = lumina_sdk::component::connector::<VoiceMetricsConfig>()
        .create(
            &ConfigValue::from(serde_json::json!({ "interval": "1h" })),
            CreateContext::new(ComponentId::new("voice_metrics"), ComponentKind::Connector),
            Signal::Logs,
            Signal::Metrics,
            ConnectorOutputs {
                pipelines: Vec::new(),
                all: out.clone() as DynConsumer,
            },
        )
        .await
        .unwrap();
    let done = dialogue("d1", "o1", DialogueStatus::Completed, true, "NORMAL");
    c.consume(logs(vec![
        done.to_log_record(DialogueRecordKind::Update),
        done.to_log_record(DialogueRecordKind::End),
        done.to_log_record(DialogueRecordKind::End),
        dialogue("d2", "o1", DialogueStatus::Failed, false, "ABANDONED")
            .to_log_record(DialogueRecordKind::End),
        {
            let mut d3 = dialogue("d3", "o2", DialogueStatus::Failed, false, "BUSY");
            d3.territory = Some("22".into());
            d3.to_log_record(DialogueRecordKind::End)
        },
    ]))
    .await
    .unwrap();
    c.shutdown().await.unwrap();
    let batches = out.batches();
    assert_eq!(batches.len(), 1);
    let Payload::Metrics(m) = batches[0].clone().into_payload() else {
        panic!("not metrics")
    };
    let metrics = &m.resource_metrics[0].scope_metrics[0].metrics;
    let find = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();
    let points = |name: &str, org: &str| -> Vec<f64> {
        let pts: Vec<&NumberDataPoint> = match find(name).data.as_ref().unwrap() {
            metric::Data::Sum(s) => s.data_points.iter().collect(),
            metric::Data::Gauge(g) => g.data_points.iter().collect(),
            _ => panic!("{name}"),
        };
        pts.into_iter()
            .filter(|p| {
                lumina_sdk::testkit::attr(&p.attributes, attr::ORGANIZATION_ID).as_deref()
                    == Some(org)
            })
            .map(|p| match p.value.unwrap() {
                number_data_point::Value::AsInt(i) => i as f64,
                number_data_point::Value::AsDouble(d) => d,
            })
            .collect()
    };
    assert_eq!(points("voice.calls", "o1").iter().sum::<f64>(), 2.0);
    assert_eq!(points("voice.calls", "o2"), [1.0]);
    assert_eq!(points("voice.calls.answered", "o1"), [1.0]);
    assert_eq!(points("voice.calls.abandoned", "o1"), [1.0]);
    assert_eq!(points("voice.calls.answer_rate", "o1"), [0.5]);
    assert_eq!(points("voice.calls.abandon_rate", "o2"), [0.0]);
    let metric::Data::Histogram(h) = find("voice.call.wait_time").data.as_ref().unwrap() else {
        panic!()
    };
    let o1 = h
        .data_points
        .iter()
        .find(|p| {
            lumina_sdk::testkit::attr(&p.attributes, attr::ORGANIZATION_ID).as_deref() == Some("o1")
        })
        .unwrap();
    assert_eq!((o1.count, o1.sum), (1, Some(5.0)));

    // The contract metrics, by territory, region and ending event type.
    let c = |name, territory| contract_point(metrics, name, territory);
    assert_eq!(c("call_count", "21"), Some(2.0));
    assert_eq!(c("call_count", "22"), Some(1.0));
    assert_eq!(c("call_answer_rate", "21"), Some(50.0));
    assert_eq!(c("call_abandon_rate", "21"), Some(50.0));
    assert_eq!(c("call_abandon_rate", "22"), Some(0.0));
    assert_eq!(c("call_duration", "21"), Some(55.0));
    assert_eq!(c("call_wait_time", "21"), Some(5.0));
    assert_eq!(c("call_wait_time", "22"), None, "no answered call there");
    let unit = |n: &str| metrics.iter().find(|m| m.name == n).unwrap().unit.clone();
    assert_eq!(
        (
            unit("call_count"),
            unit("call_duration"),
            unit("call_answer_rate")
        ),
        ("1".into(), "s".into(), "%".into())
    );
}

/// The value of the contract metric `name` at `territory_id`, `region_id` 2, `CALL_ENDED`.
fn contract_point(metrics: &[Metric], name: &str, territory: &str) -> Option<f64> {
    let m = metrics.iter().find(|m| m.name == name)?;
    let pts = match m.data.as_ref()? {
        metric::Data::Sum(s) => &s.data_points,
        metric::Data::Gauge(g) => &g.data_points,
        _ => return None,
    };
    pts.iter()
        .find(|p| {
            let a = |k: &str| lumina_sdk::testkit::attr(&p.attributes, k);
            a("territory_id").as_deref() == Some(territory)
                && a("region_id").as_deref() == Some("2")
                && a("event_type").as_deref() == Some("CALL_ENDED")
        })
        .map(|p| match p.value.unwrap() {
            number_data_point::Value::AsInt(i) => i as f64,
            number_data_point::Value::AsDouble(d) => d,
        })
}

/// A call of territory 61 (region 6): queued in `queue` by a routing decision at 10:00:00,
/// answered `answer` seconds later by `agent`, ended `end` seconds after the start (`None`:
/// still open, or abandoned when `end` is given without an answer).
fn call(id: &str, queue: &str, answer: Option<(i64, &str)>, end: Option<i64>) -> Dialogue {
    let at = |s: i64| lumina_sdk::voice::format_time(1_795_000_000_000_000_000 + s * 1_000_000_000);
    let ev = |n: usize, t: EventType, s: i64, data: serde_json::Value| lumina_sdk::voice::Event {
        event_id: format!("{id}-{n}"),
        dialogue_id: id.into(),
        event_type: t,
        timestamp: at(s),
        data,
        source: None,
    };
    let mut d = dialogue(id, "o1", DialogueStatus::Active, false, "");
    d.end_reason = None;
    d.end_time = None;
    d.duration = None;
    d.territory = Some("61".into());
    d.region_id = Some(6);
    d.start_time = Some(at(0));
    d.events = vec![
        ev(0, EventType::CallStarted, 0, serde_json::json!({})),
        ev(
            1,
            EventType::RoutingDecision,
            0,
            serde_json::json!({ "queueId": queue }),
        ),
    ];
    if let Some((s, agent)) = answer {
        d.answer_time = Some(at(s));
        d.events.push(ev(
            2,
            EventType::CallAnswered,
            s,
            serde_json::json!({ "agentId": agent }),
        ));
    }
    if let Some(e) = end {
        d.end_time = Some(at(e));
        d.duration = Some(e as u64);
        d.events
            .push(ev(3, EventType::CallEnded, e, serde_json::json!({})));
        (d.status, d.end_reason) = match answer {
            Some(_) => (DialogueStatus::Completed, Some("NORMAL".into())),
            None => (DialogueStatus::Failed, Some("ABANDONED".into())),
        };
    }
    d
}

/// The value of each point of `name` whose attributes include every one of `having`.
fn values(batch: &Batch, name: &str, having: &[(&str, &str)]) -> Vec<f64> {
    let Payload::Metrics(m) = batch.clone().into_payload() else {
        panic!("not metrics")
    };
    let metrics = &m.resource_metrics[0].scope_metrics[0].metrics;
    let Some(metric) = metrics.iter().find(|m| m.name == name) else {
        return Vec::new();
    };
    let points: Vec<&NumberDataPoint> = match metric.data.as_ref().unwrap() {
        metric::Data::Sum(s) => s.data_points.iter().collect(),
        metric::Data::Gauge(g) => g.data_points.iter().collect(),
        _ => panic!("{name}"),
    };
    points
        .into_iter()
        .filter(|p| {
            having
                .iter()
                .all(|(k, v)| lumina_sdk::testkit::attr(&p.attributes, k).as_deref() == Some(*v))
        })
        .map(|p| match p.value.unwrap() {
            number_data_point::Value::AsInt(i) => i as f64,
            number_data_point::Value::AsDouble(d) => d,
        })
        .collect()
}

/// The connector with no interval task (the tests take its batches themselves) and a
/// service-level threshold of 20 s.
fn connector() -> VoiceMetrics {
    VoiceMetrics {
        shared: Arc::new(Shared {
            state: Mutex::new(State {
                level_secs: 20.0,
                ..State::default()
            }),
            next: Arc::new(CollectingConsumer::new()) as DynConsumer,
            start: 0,
            id: "voice_metrics".into(),
        }),
        stop: CancellationToken::new(),
        task: Mutex::new(None),
    }
}

#[tokio::test]
async fn queue_and_agent_metrics_of_calls_with_known_answers() {
    let c = connector();
    let end = |d: Dialogue| d.to_log_record(DialogueRecordKind::End);
    let update = |d: Dialogue| d.to_log_record(DialogueRecordKind::Update);
    c.consume(logs(vec![
        // Queue q1: waits 10, 20 and 30 s, one abandoned; handled 60, 30 and 90 s.
        update(call("c1", "q1", None, None)),
        end(call("c1", "q1", Some((10, "a1")), Some(70))),
        end(call("c2", "q1", Some((20, "a2")), Some(50))),
        end(call("c3", "q1", Some((30, "a1")), Some(120))),
        end(call("c4", "q1", None, Some(40))),
        end(call("c4", "q1", None, Some(40))),
        // Open now: one waiting in q2, three answered by two agents.
        update(call("c5", "q2", None, None)),
        update(call("c6", "q2", Some((5, "a3")), None)),
        update(call("c7", "q1", Some((5, "a3")), None)),
        update(call("c8", "q1", Some((5, "a4")), None)),
    ]))
    .await
    .unwrap();
    let b = c.shared.batch(true).unwrap();
    let q1 = [
        ("territory_id", "61"),
        ("region_id", "6"),
        ("queue_id", "q1"),
        ("event_type", "CALL_ENDED"),
    ];
    assert_eq!(values(&b, "queue_wait_time", &q1), [20.0]);
    assert_eq!(values(&b, "queue_abandon_rate", &q1), [25.0]);
    assert_eq!(values(&b, "queue_service_level", &q1), [50.0]);
    let ended = [("territory_id", "61"), ("event_type", "CALL_ENDED")];
    assert_eq!(values(&b, "agent_handle_time", &ended), [60.0]);
    assert_eq!(values(&b, "call_count", &ended), [4.0]);
    assert_eq!(values(&b, "call_answer_rate", &ended), [75.0]);
    assert_eq!(values(&b, "call_abandon_rate", &ended), [25.0]);
    assert_eq!(values(&b, "call_wait_time", &ended), [20.0]);
    let q2 = [("queue_id", "q2"), ("event_type", "ROUTING_DECISION")];
    assert_eq!(values(&b, "queue_depth", &q2), [1.0]);
    // c1 was queued in q1 until it ended: no longer waiting.
    assert_eq!(values(&b, "queue_depth", &[("queue_id", "q1")]), [0.0]);
    assert_eq!(
        values(&b, "agent_busy_count", &[("territory_id", "61")]),
        [2.0]
    );

    // The waiting call is abandoned and the agents' calls end: the "now" gauges drop to 0.
    c.consume(logs(vec![
        end(call("c5", "q2", None, Some(30))),
        end(call("c6", "q2", Some((5, "a3")), Some(35))),
        end(call("c7", "q1", Some((5, "a3")), Some(45))),
        end(call("c8", "q1", Some((5, "a4")), Some(15))),
    ]))
    .await
    .unwrap();
    let b = c.shared.batch(true).unwrap();
    assert_eq!(values(&b, "queue_depth", &q2), [0.0]);
    assert_eq!(
        values(&b, "agent_busy_count", &[("territory_id", "61")]),
        [0.0]
    );
    let q2_ended = [("queue_id", "q2"), ("event_type", "CALL_ENDED")];
    assert_eq!(values(&b, "queue_abandon_rate", &q2_ended), [50.0]);
    assert_eq!(values(&b, "queue_wait_time", &q2_ended), [5.0]);
    // q1 now also has c7 and c8, answered after 5 s: waits 10, 20, 30, 5, 5.
    assert_eq!(values(&b, "queue_wait_time", &q1), [14.0]);
    assert_eq!(values(&b, "queue_service_level", &q1), [400.0 / 6.0]);
}

#[tokio::test]
async fn a_later_end_record_corrects_what_its_dialogue_counted_for() {
    let c = connector();
    // Ended before its routing decision and answer arrived: an unanswered call, no queue.
    let mut early = call("c1", "q1", None, Some(70));
    early
        .events
        .retain(|e| e.event_type != EventType::RoutingDecision);
    (early.status, early.end_reason, early.revision) =
        (DialogueStatus::Failed, Some("NO_ANSWER".into()), 2);
    // ... and before the event naming its territory: first counted in territory 0.
    early.territory = None;
    let mut last = call("c1", "q1", Some((10, "a1")), Some(70));
    last.revision = 4;
    c.consume(logs(vec![
        early.to_log_record(DialogueRecordKind::End),
        last.to_log_record(DialogueRecordKind::End),
        // An older revision coming after changes nothing.
        early.to_log_record(DialogueRecordKind::End),
    ]))
    .await
    .unwrap();
    let b = c.shared.batch(true).unwrap();
    let ended = [("territory_id", "61"), ("event_type", "CALL_ENDED")];
    assert_eq!(values(&b, "call_count", &ended), [1.0]);
    assert_eq!(values(&b, "call_answer_rate", &ended), [100.0]);
    // Territory 0's series is ended once (no recorded value), then no longer sent.
    let flags = |b: &Batch| -> Vec<u32> {
        let Payload::Metrics(m) = b.clone().into_payload() else {
            panic!()
        };
        let metric = m.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .find(|m| m.name == "call_count")
            .unwrap()
            .clone();
        let Some(metric::Data::Sum(sum)) = metric.data else {
            panic!()
        };
        sum.data_points
            .iter()
            .filter(|p| {
                lumina_sdk::testkit::attr(&p.attributes, "territory_id").as_deref() == Some("0")
            })
            .map(|p| p.flags)
            .collect()
    };
    assert_eq!(flags(&b), [NO_RECORDED_VALUE]);
    assert!(flags(&c.shared.batch(true).unwrap()).is_empty());
    assert_eq!(values(&b, "queue_wait_time", &[("queue_id", "q1")]), [10.0]);
    assert_eq!(values(&b, "agent_handle_time", &ended), [60.0]);
    let failed = [("voice.dialogue.status", "FAILED")];
    assert_eq!(values(&b, "voice.calls", &failed), [0.0]);
    assert_eq!(
        values(&b, "voice.calls", &[("voice.dialogue.status", "COMPLETED")]),
        [1.0]
    );
}
