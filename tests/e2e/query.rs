//! The live and query side of the platform: tier 1 → Kinesis → tier 2 (the dialogue table in
//! DynamoDB) → the platform's GraphQL API on the AppSync simulator, with the shipped schema
//! and resolvers (`configs/appsync/`), and OpenSearch. Subscribers of one organization get
//! every update of its calls; queries answer exactly the ground truth from the table; and the
//! source a voice component gave (RT) is kept all the way.
//!
//! The simulator does not filter subscriptions by their arguments (AppSync does, on the
//! fields the mutation selected), so the subscriber filters on `organizationId`, which every
//! message carries.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use lumina_callsim::{Progress, Wire, generate, truth_json};
use lumina_sdk::voice::{Dialogue, Source};
use serde_json::{Value, json};

use crate::harness::services::{AppSync, DynamoDb, Kinesis, OpenSearch};
use crate::harness::{Collector, wait_for};
use crate::tier2::{STREAM, target, tier1, tier2_input};
use crate::voice::{all_dialogues, compare, dialogues, sim, truth};

const ORG: &str = "org-0000";
/// The dialogue table `tier2_input` names.
const TABLE: &str = "dialogues";

fn tier2(kinesis: &str, dynamo: &str, opensearch: &str, appsync: &AppSync) -> String {
    format!(
        r#"{}
exporters:
  opensearch:
    endpoints: [{opensearch}]
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
  appsync:
    url: {}
    auth: {{ api_key: {} }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
  file:
    path: "{{dir}}/dialogues.jsonl"
    sending_queue: {{ enabled: false }}
service:
  pipelines:
    logs/dialogues: {{ receivers: [kinesis], processors: [dialogue_assembly], exporters: [opensearch, appsync, file] }}
    logs/events: {{ receivers: [kinesis], exporters: [appsync] }}
"#,
        tier2_input(kinesis, dynamo, "w1"),
        appsync.graphql_url(),
        appsync.api_key
    )
}

/// Whether the schema lets this revision be published (every non-null field present).
pub(crate) fn publishable(d: &Dialogue) -> bool {
    d.caller_number.is_some()
        && d.called_number.is_some()
        && d.start_time.is_some()
        && d.direction.is_some()
        && d.events.iter().all(|e| e.source.is_some())
}

/// A Dialogue from the GraphQL answer (which has no table keys, and `data` as AWSJSON text).
fn from_graphql(v: &Value) -> Dialogue {
    let mut v = v.clone();
    v["PK"] = json!(Dialogue::partition_key(
        v["organizationId"].as_str().unwrap(),
        v["accountId"].as_str().unwrap()
    ));
    v["SK"] = v["dialogueId"].clone();
    for e in v["events"].as_array_mut().unwrap() {
        e["data"] = serde_json::from_str(e["data"].as_str().unwrap()).unwrap();
    }
    if v["territory"].is_null() {
        v.as_object_mut().unwrap().remove("territory");
    }
    serde_json::from_value(v).unwrap()
}

const EVENT_FIELDS: &str = "eventId dialogueId eventType timestamp data source";
fn dialogue_fields() -> String {
    format!(
        "dialogueId callGuid legGuid callerNumber calledNumber startTime endTime duration status direction organizationId accountId createdAt updatedAt answerTime endReason participants regionId territory revision events {{ {EVENT_FIELDS} }}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_s_subscribers_and_queries_get_exactly_its_calls_from_tier_2() {
    let kinesis = Kinesis::start().await;
    kinesis.create_stream(STREAM, 2).await;
    let db = DynamoDb::start();
    let opensearch = OpenSearch::start().await;
    let appsync = AppSync::start_on_table(&db.service.url(), TABLE);
    let mut updates = appsync
        .subscribe(&format!(
            "subscription {{ onDialogueUpdate(organizationId: \"{ORG}\") {{ dialogueId organizationId revision events {{ eventId source }} }} }}"
        ))
        .await;
    let mut events = appsync
        .subscribe(&format!(
            "subscription {{ onEvent(organizationId: \"{ORG}\") {{ eventId organizationId source }} }}"
        ))
        .await;
    let (k, d) = (kinesis.service.url(), db.service.url());
    let t1 = Collector::start(&tier1(&k)).await;
    let t2 = Collector::start(&tier2(&k, &d, &opensearch.url, &appsync)).await;

    let mut cfg = sim(40, 29);
    cfg.organizations = 2;
    let plan = Arc::new(generate(&cfg));
    assert!(
        plan.sends.iter().any(|s| s.source == Source::Rt),
        "the plan has RT events"
    );
    let report = lumina_callsim::send(
        &plan,
        &target(&t1, Wire::Otlp),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");

    // Tier 2 assembled the ground truth, RT sources included (the truth has each event's).
    let expected = truth(&plan);
    wait_for(Duration::from_secs(90), || {
        compare(&dialogues(&t2.path("dialogues.jsonl")), &expected)
    })
    .await;
    let ours: HashMap<&str, &Dialogue> = plan
        .truth
        .iter()
        .filter(|d| d.organization_id == ORG)
        .map(|d| (d.dialogue_id.as_str(), d))
        .collect();
    let theirs = plan
        .truth
        .iter()
        .find(|d| d.organization_id != ORG)
        .unwrap();
    assert!(ours.len() >= 3, "{} dialogues of {ORG}", ours.len());

    // OpenSearch holds every dialogue with the sources the components gave.
    for d in &plan.truth {
        let want: Vec<(String, Option<Source>)> = d
            .events
            .iter()
            .map(|e| (e.event_id.clone(), e.source))
            .collect();
        crate::harness::wait_for_async(Duration::from_secs(30), || async {
            let doc = opensearch
                .call(&format!("/dialogues/_doc/{}", d.dialogue_id), None)
                .await;
            let got: Vec<(String, Option<Source>)> = doc["_source"]["events"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            (
                                e["eventId"].as_str().unwrap_or_default().to_owned(),
                                e["source"].as_str().and_then(Source::parse),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if got == want {
                Ok(())
            } else {
                Err(format!("{}: index {got:?}, truth {want:?}", d.dialogue_id))
            }
        })
        .await;
    }

    // Live: every publishable revision of the organization's dialogues, and every one of its
    // events with its source.
    let written: BTreeSet<(String, u64)> = all_dialogues(&t2.path("dialogues.jsonl"))
        .iter()
        .filter(|d| d.organization_id == ORG && publishable(d))
        .map(|d| (d.dialogue_id.clone(), d.revision))
        .collect();
    let sources: HashMap<String, Source> = plan
        .truth
        .iter()
        .flat_map(|d| &d.events)
        .map(|e| (e.event_id.clone(), e.source.unwrap()))
        .collect();
    let wanted_events: BTreeSet<String> = plan
        .sends
        .iter()
        .filter(|s| s.event.organization_id == ORG)
        .map(|s| s.event.event_id.clone())
        .collect();
    let mut got_updates = BTreeSet::new();
    let mut others = 0;
    while !written.is_subset(&got_updates) {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(30), updates.recv()).await
        else {
            let missing: Vec<_> = written.difference(&got_updates).take(5).collect();
            panic!("the subscriber is missing updates, e.g. {missing:?}");
        };
        let u = &m["onDialogueUpdate"];
        // Every message names its organization, which is what AppSync filters on.
        match u["organizationId"].as_str() {
            Some(ORG) => {}
            Some(_) => {
                others += 1;
                continue;
            }
            None => panic!("an update without organizationId: {m}"),
        }
        for e in u["events"].as_array().unwrap() {
            let id = e["eventId"].as_str().unwrap();
            assert_eq!(e["source"], sources[id].as_str(), "{m}");
        }
        got_updates.insert((
            u["dialogueId"].as_str().unwrap().to_owned(),
            u["revision"].as_u64().unwrap(),
        ));
    }
    assert!(
        got_updates.is_subset(&written),
        "updates that were never published: {:?}",
        got_updates.difference(&written).collect::<Vec<_>>()
    );
    assert!(
        others > 0,
        "the simulator sent no other organization's updates: the filter above went untested"
    );
    let mut got_events = BTreeSet::new();
    while !wanted_events.is_subset(&got_events) {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(30), events.recv()).await else {
            let missing: Vec<_> = wanted_events.difference(&got_events).take(5).collect();
            panic!("the event subscriber is missing events, e.g. {missing:?}");
        };
        let e = &m["onEvent"];
        if e["organizationId"] != ORG {
            assert!(e["organizationId"].is_string(), "{m}");
            continue;
        }
        let id = e["eventId"].as_str().unwrap().to_owned();
        assert_eq!(e["source"], sources[&id].as_str(), "{m}");
        got_events.insert(id);
    }
    assert_eq!(got_events, wanted_events);

    // Queries, answered from the dialogue table tier 2 wrote.
    let fields = dialogue_fields();
    let one = format!(
        "query($id: ID!, $org: String!) {{ dialogue(dialogueId: $id, organizationId: $org) {{ {fields} }} }}"
    );
    for (id, want) in &ours {
        let got = appsync.query(&one, json!({"id": id, "org": ORG})).await;
        assert!(got["dialogue"].is_object(), "dialogue {id}: {got}");
        assert_eq!(
            truth_json(&from_graphql(&got["dialogue"])),
            truth_json(want),
            "dialogue {id}"
        );
    }
    // Another organization's dialogue is not answered to this one.
    let got = appsync
        .query(&one, json!({"id": theirs.dialogue_id, "org": ORG}))
        .await;
    assert_eq!(got["dialogue"], Value::Null);

    // Two pages.
    let page = "query($org: String!, $limit: Int, $next: String, $filter: DialogueFilter) { dialogues(organizationId: $org, limit: $limit, nextToken: $next, filter: $filter) { items { dialogueId status startTime } nextToken } }".to_owned();
    let limit = ours.len() / 2 + 1;
    let first = appsync
        .query(&page, json!({"org": ORG, "limit": limit}))
        .await["dialogues"]
        .clone();
    let next = first["nextToken"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = appsync
        .query(&page, json!({"org": ORG, "limit": limit, "next": next}))
        .await["dialogues"]
        .clone();
    assert_eq!(second["nextToken"], Value::Null, "{second}");
    let ids = |pages: &[&Value]| -> BTreeSet<String> {
        pages
            .iter()
            .flat_map(|p| p["items"].as_array().unwrap())
            .map(|d| d["dialogueId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(first["items"].as_array().unwrap().len(), limit);
    assert_eq!(
        ids(&[&first, &second]),
        ours.keys().map(|k| (*k).to_owned()).collect()
    );
    // Filters: by status, and by start time.
    let all = |filter: Value| {
        let (appsync, page) = (&appsync, &page);
        async move {
            let mut pages = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let p = appsync
                    .query(page, json!({"org": ORG, "next": next, "filter": filter}))
                    .await["dialogues"]
                    .clone();
                next = p["nextToken"].as_str().map(str::to_owned);
                pages.push(p);
                if next.is_none() {
                    return pages;
                }
            }
        }
    };
    let completed: BTreeSet<String> = ours
        .values()
        .filter(|d| d.status.as_str() == "COMPLETED")
        .map(|d| d.dialogue_id.clone())
        .collect();
    assert!(!completed.is_empty() && completed.len() < ours.len());
    let pages = all(json!({"status": "COMPLETED"})).await;
    assert_eq!(ids(&pages.iter().collect::<Vec<_>>()), completed);
    let mut starts: Vec<&str> = ours
        .values()
        .map(|d| d.start_time.as_deref().unwrap())
        .collect();
    starts.sort();
    let from = starts[starts.len() / 2];
    let later: BTreeSet<String> = ours
        .values()
        .filter(|d| d.start_time.as_deref().unwrap() >= from)
        .map(|d| d.dialogue_id.clone())
        .collect();
    let pages = all(json!({"startTimeFrom": from})).await;
    assert_eq!(ids(&pages.iter().collect::<Vec<_>>()), later);

    // A dialogue's events, in the Dialogue's order, and of one type.
    let evq = format!(
        "query($id: ID!, $org: String!, $type: EventType) {{ events(dialogueId: $id, organizationId: $org, eventType: $type) {{ {EVENT_FIELDS} }} }}"
    );
    for (id, want) in &ours {
        let got = appsync.query(&evq, json!({"id": id, "org": ORG})).await;
        let got: Vec<(String, String, String)> = got["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["eventId"].as_str().unwrap().to_owned(),
                    e["timestamp"].as_str().unwrap().to_owned(),
                    e["source"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String, String)> = want
            .events
            .iter()
            .map(|e| {
                (
                    e.event_id.clone(),
                    e.timestamp.clone(),
                    e.source.unwrap().as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, expected, "events of {id}");
        let started = appsync
            .query(&evq, json!({"id": id, "org": ORG, "type": "CALL_STARTED"}))
            .await;
        let n = want
            .events
            .iter()
            .filter(|e| e.event_type.as_str() == "CALL_STARTED")
            .count();
        assert_eq!(started["events"].as_array().unwrap().len(), n, "{id}");
    }
    let got = appsync
        .query(&evq, json!({"id": theirs.dialogue_id, "org": ORG}))
        .await;
    assert_eq!(got["events"], json!([]), "another organization's events");

    t2.stop().await.assert_clean();
    t1.stop().await.assert_clean();
}
