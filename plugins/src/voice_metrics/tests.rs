use super::*;
use lumina_sdk::component::{ComponentId, ComponentKind};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::testkit::CollectingConsumer;
use lumina_sdk::testkit::logs_of as logs;

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
