//! Region routing and the AWS exporters against the real stand-ins: kinesalite (Kinesis), the
//! OpenSearch emulator and the Amplify AppSync simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use lumina_callsim::{Plan, Progress, SimConfig, Wire, generate};
use serde_json::Value;

use lumina_sdk::voice::Dialogue;

use crate::harness::services::{AppSync, Kinesis, OpenSearch};
use crate::harness::{Collector, wait_for_async};
use crate::query::publishable;
use crate::tier2::target;
use crate::voice::{all_dialogues, newest_dialogues};

/// Tenants and their home regions, as the simulator names organizations.
const TENANTS: [(&str, &str); 3] = [
    ("org-0000", "eu-west-1"),
    ("org-0001", "us-east-1"),
    ("org-0002", "ap-southeast-2"),
];

fn stream_of(region: &str) -> String {
    format!("lumina-{region}")
}

/// The tenant table as a YAML value: inline.
fn inline_tenants() -> String {
    let tenants: Vec<String> = TENANTS.iter().map(|(t, r)| format!("{t}: {r}")).collect();
    format!("{{ {} }}", tenants.join(", "))
}

/// The tenant table in a file (kept while the returned directory lives), as a YAML value.
fn tenants_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.yaml");
    let lines: Vec<String> = TENANTS.iter().map(|(t, r)| format!("{t}: {r}\n")).collect();
    std::fs::write(&path, lines.concat()).unwrap();
    let value = format!("file:{}", path.display());
    (dir, value)
}

/// GP/RT in → `region_router` → a Kinesis stream per region; `extra_exporters` and
/// `extra_pipelines` (YAML lines, indented) are added to the sections.
fn routing_config(kinesis: &str, extra: &Extra) -> String {
    let mut exporters = String::new();
    let mut pipelines = String::new();
    let mut routes = String::new();
    for (_, region) in TENANTS {
        exporters.push_str(&format!(
            "  kinesis/{region}:\n    stream_name: {}\n    region: {region}\n    endpoint: {kinesis}\n    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}\n",
            stream_of(region)
        ));
        pipelines.push_str(&format!(
            "    logs/{region}: {{ receivers: [region_router], exporters: [kinesis/{region}] }}\n"
        ));
        routes.push_str(&format!("      {region}: [logs/{region}]\n"));
    }
    format!(
        r#"
receivers:
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
  rt: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:rt}}" }} }} }}
{processors}connectors:
  region_router:
    tenants: {tenants}
    unknown_tenants: dead_letter
    dead_letter: [logs/unrouted]
    routes:
{routes}exporters:
{exporters}{extra_exporters}  file/unrouted: {{ path: "{{dir}}/unrouted.jsonl" }}
service:
  pipelines:
    logs/in: {{ receivers: [gp, rt], exporters: [region_router] }}
    logs/unrouted: {{ receivers: [region_router], exporters: [file/unrouted] }}
{pipelines}{extra_pipelines}"#,
        tenants = extra.tenants.clone().unwrap_or_else(inline_tenants),
        processors = extra.processors,
        extra_exporters = extra.exporters,
        extra_pipelines = extra.pipelines,
    )
}

/// YAML added to [`routing_config`]'s sections.
#[derive(Default)]
struct Extra {
    /// The tenant table (default: inline).
    tenants: Option<String>,
    processors: String,
    exporters: String,
    pipelines: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_region_s_stream_holds_exactly_its_tenants_events() {
    let kinesis = Kinesis::start().await;
    for (_, region) in TENANTS {
        kinesis.create_stream(&stream_of(region), 2).await;
    }
    let c = Collector::start(&routing_config(&kinesis.service.url(), &Extra::default())).await;
    let plan = Arc::new(generate(&SimConfig {
        calls: 90,
        organizations: 3,
        seed: 7,
        ..SimConfig::default()
    }));
    let report = lumina_callsim::send(
        &plan,
        &target(&c, Wire::Json),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");

    let expected = assert_streams(&kinesis, &plan).await;
    assert_eq!(
        c.metric(
            "lumina_exporter_sent_items_total",
            &[("component", "kinesis/us-east-1")]
        )
        .await as usize,
        expected["us-east-1"].len()
    );
    let stopped = c.stop().await;
    stopped.assert_clean();
    assert!(
        !stopped.path("unrouted.jsonl").exists()
            || std::fs::read_to_string(stopped.path("unrouted.jsonl"))
                .unwrap()
                .is_empty()
    );
}

/// Waits until each region's stream holds exactly the events sent for its tenants (as sent,
/// duplicates included: tier 1 does not deduplicate), each keyed by its dialogue id, and
/// returns the expected event ids by region, sorted.
async fn assert_streams(kinesis: &Kinesis, plan: &Plan) -> BTreeMap<&'static str, Vec<String>> {
    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in &plan.sends {
        let region = TENANTS
            .iter()
            .find(|(t, _)| *t == s.event.organization_id)
            .map(|(_, r)| *r)
            .unwrap();
        expected
            .entry(region)
            .or_default()
            .push(s.event.event_id.clone());
    }
    for (region, want) in expected.iter_mut() {
        want.sort();
        let stream = stream_of(region);
        let records = wait_for_async(Duration::from_secs(60), || async {
            let r = kinesis.records(&stream).await;
            if r.len() >= want.len() {
                Ok(r)
            } else {
                Err(format!(
                    "{stream} holds {} of {} events",
                    r.len(),
                    want.len()
                ))
            }
        })
        .await;
        let mut got = Vec::new();
        for r in &records {
            let event: Value = serde_json::from_slice(&r.data).unwrap();
            let org = event["organizationId"].as_str().unwrap();
            assert_eq!(
                TENANTS.iter().find(|(t, _)| *t == org).unwrap().1,
                *region,
                "{org}'s event in {stream}"
            );
            // A call stays on one shard: the partition key is the dialogue id.
            assert_eq!(r.partition_key, event["dialogueId"].as_str().unwrap());
            got.push(event["eventId"].as_str().unwrap().to_owned());
        }
        got.sort();
        assert_eq!(&got, want, "{stream}");
    }
    expected
}

/// Tier 2 in the same collector: dialogues to OpenSearch and AppSync. With one simulator, all
/// go to it; with one per region (in `TENANTS` order), each tenant's go to its home region's,
/// from the same tenant table as `region_router`'s.
fn tier2(opensearch: &str, appsync: &[&AppSync], tenants: Option<String>) -> Extra {
    let target = match appsync {
        [one] => format!(
            "url: {}\n    auth: {{ api_key: {} }}",
            one.graphql_url(),
            one.api_key
        ),
        many => {
            let mut regions = String::from("regions:\n");
            for ((_, region), a) in TENANTS.iter().zip(many) {
                regions.push_str(&format!(
                    "      {region}: {{ url: {}, auth: {{ api_key: {} }} }}\n",
                    a.graphql_url(),
                    a.api_key
                ));
            }
            format!(
                "{regions}    tenants: {}",
                tenants.clone().unwrap_or_else(inline_tenants)
            )
        }
    };
    Extra {
        tenants,
        processors: "processors:\n  dialogue_assembly: { storage: \"{dir}/state\", idle_timeout: 1h }\n".into(),
        exporters: format!(
            r#"  opensearch:
    endpoints: [{opensearch}]
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
  appsync:
    {target}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
  file/dialogues: {{ path: "{{dir}}/dialogues.jsonl" }}
"#
        ),
        pipelines: "    logs/dialogues: { receivers: [gp, rt], processors: [dialogue_assembly], exporters: [opensearch, appsync, file/dialogues] }\n".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_three_regions_reach_their_streams_opensearch_and_appsync_subscribers() {
    let kinesis = Kinesis::start().await;
    for (_, region) in TENANTS {
        kinesis.create_stream(&stream_of(region), 2).await;
    }
    let opensearch = OpenSearch::start().await;
    // One AppSync API per region.
    let apis = [AppSync::start(), AppSync::start(), AppSync::start()];
    let mut updates = Vec::new();
    for a in &apis {
        updates.push(
            a.subscribe(
                "subscription { onDialogueUpdate(organizationId: \"any\") { dialogueId organizationId revision } }",
            )
            .await,
        );
    }
    let (_tenants, table) = tenants_file();
    let c = Collector::start(&routing_config(
        &kinesis.service.url(),
        &tier2(
            &opensearch.url,
            &apis.iter().collect::<Vec<_>>(),
            Some(table),
        ),
    ))
    .await;
    let plan = Arc::new(generate(&SimConfig {
        calls: 60,
        organizations: 3,
        seed: 11,
        disorder: 0.1,
        duplicate: 0.05,
        ..SimConfig::default()
    }));
    let report = lumina_callsim::send(
        &plan,
        &target(&c, Wire::Json),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");

    // Tier 1: each region's stream holds exactly its tenants' events.
    assert_streams(&kinesis, &plan).await;

    // Tier 2: the index holds every dialogue in its final state, one document per dialogue,
    // searchable. The dialogues are written with external versioning (the default), which the
    // layer in front of the emulator enforces as OpenSearch does: a late, older revision is
    // refused with 409 and the newer document stays.
    let truth: BTreeMap<String, &Dialogue> = plan
        .truth
        .iter()
        .map(|d| (d.dialogue_id.clone(), d))
        .collect();
    crate::harness::wait_for_async(Duration::from_secs(60), || async {
        for (id, d) in &truth {
            let doc = opensearch.call(&format!("/dialogues/_doc/{id}"), None).await;
            let stored = &doc["_source"];
            let want = (
                Value::from(d.status.as_str()),
                serde_json::to_value(d.duration).unwrap(),
                d.events.len(),
            );
            let got = (
                stored["status"].clone(),
                stored["duration"].clone(),
                stored["events"].as_array().map_or(0, Vec::len),
            );
            if got != want {
                let file = newest_dialogues(&c.path("dialogues.jsonl"));
                return Err(format!(
                    "dialogue {id}: the index holds (status, duration, events) {got:?} at revision {}, the truth is {want:?}; the collector's newest is revision {:?}; the bulk requests carried revisions {:?}",
                    stored["revision"],
                    file.get(id).map(|d| d.revision),
                    opensearch.sent_versions(id)
                ));
            }
        }
        Ok(())
    })
    .await;
    opensearch
        .call("/dialogues/_refresh", Some(serde_json::json!({})))
        .await;
    for (id, d) in &truth {
        let found = opensearch
            .call(
                "/dialogues/_search",
                Some(serde_json::json!({"query": {"term": {"dialogueId": id}}})),
            )
            .await;
        let hits = found["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(hits.len(), 1, "dialogue {id}: {found}");
        assert_eq!(
            hits[0]["_source"]["organizationId"],
            d.organization_id.as_str()
        );
    }

    // Each region's API got every publishable update of its own tenants' dialogues, and
    // nothing of another region's. (The simulator does not filter by the subscription's
    // argument, so each subscriber sees all its API published.)
    let stopped = c.stop().await;
    stopped.assert_clean();
    let written = all_dialogues(&stopped.path("dialogues.jsonl"));
    assert_eq!(
        newest_dialogues(&stopped.path("dialogues.jsonl")).len(),
        truth.len()
    );
    for ((tenant, region), rx) in TENANTS.iter().zip(&mut updates) {
        let want: BTreeSet<(String, u64)> = written
            .iter()
            .filter(|d| d.organization_id == *tenant && publishable(d))
            .map(|d| (d.dialogue_id.clone(), d.revision))
            .collect();
        assert!(!want.is_empty());
        let mut got = BTreeSet::new();
        while got.len() < want.len() {
            let next = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
            let Ok(Some(data)) = next else {
                let missing: Vec<_> = want.difference(&got).take(5).collect();
                panic!("{region}'s API is missing updates, e.g. {missing:?}");
            };
            let d = &data["onDialogueUpdate"];
            assert_eq!(d["organizationId"], *tenant, "{region}'s API got {d}");
            got.insert((
                d["dialogueId"].as_str().unwrap().to_owned(),
                d["revision"].as_u64().unwrap(),
            ));
        }
        assert_eq!(got, want, "{region}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_stream_loses_nothing_and_the_other_exporters_keep_delivering_meanwhile() {
    let data = tempfile::tempdir().unwrap();
    let mut kinesis = Kinesis::start_persistent(data.path()).await;
    for (_, region) in TENANTS {
        kinesis.create_stream(&stream_of(region), 1).await;
    }
    let opensearch = OpenSearch::start().await;
    let appsync = AppSync::start();
    let c = Collector::start(&routing_config(
        &kinesis.service.url(),
        &tier2(&opensearch.url, &[&appsync], None),
    ))
    .await;
    // Kinesis goes away before the calls come in.
    kinesis.service.kill();
    let plan = Arc::new(generate(&SimConfig {
        calls: 40,
        organizations: 3,
        seed: 5,
        ..SimConfig::default()
    }));
    let report = lumina_callsim::send(
        &plan,
        &target(&c, Wire::Json),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");
    // Meanwhile OpenSearch gets every dialogue to its final state.
    opensearch
        .wait_indexed(Duration::from_secs(60), |indexed| {
            let ended = plan
                .truth
                .iter()
                .filter(|d| {
                    indexed.iter().any(|(_, s)| {
                        s["dialogueId"] == d.dialogue_id.as_str()
                            && s["status"] == d.status.as_str()
                    })
                })
                .count();
            if ended == plan.truth.len() {
                Ok(())
            } else {
                Err(format!(
                    "{ended} of {} dialogues in OpenSearch",
                    plan.truth.len()
                ))
            }
        })
        .await;
    // ... while every Kinesis exporter was failing and retrying.
    for (_, region) in TENANTS {
        let component = format!("kinesis/{region}");
        let labels = [("component", component.as_str())];
        assert!(
            c.metric("lumina_exporter_send_retries_total", &labels)
                .await
                > 0.0
        );
        assert_eq!(
            c.metric("lumina_exporter_sent_items_total", &labels).await,
            0.0
        );
    }
    // Kinesis is back: everything queued arrives, each event once.
    kinesis.service.restart();
    assert_streams(&kinesis, &plan).await;
    c.stop().await.assert_clean();
}

/// An OpenSearch `_bulk` endpoint that, while `broken`, refuses the listed document ids with
/// the documented mapping-error item (400 `mapper_parsing_exception`).
#[derive(Default)]
struct MappingErrors {
    broken: std::sync::atomic::AtomicBool,
    refuse: Vec<String>,
    /// Ids of the documents it stored.
    stored: std::sync::Mutex<Vec<String>>,
}

async fn mapping_errors_bulk(
    axum::extract::State(s): axum::extract::State<Arc<MappingErrors>>,
    body: String,
) -> axum::Json<Value> {
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let broken = s.broken.load(std::sync::atomic::Ordering::SeqCst);
    let mut items = Vec::new();
    for pair in lines.chunks(2) {
        let id = pair[0]["index"]["_id"].as_str().unwrap().to_owned();
        let index = pair[0]["index"]["_index"].clone();
        if broken && s.refuse.contains(&id) {
            items.push(serde_json::json!({"index": {"_index": index, "_id": id, "status": 400,
                "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [data.digits] of type [long]"}}}));
        } else {
            s.stored.lock().unwrap().push(id.clone());
            items.push(serde_json::json!({"index": {"_index": index, "_id": id, "status": 201, "result": "created"}}));
        }
    }
    let errors = items.iter().any(|i| i["index"]["status"] == 400);
    axum::Json(serde_json::json!({"took": 1, "errors": errors, "items": items}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_are_dead_lettered_with_reasons_and_replayed_once_fixed() {
    let server = Arc::new(MappingErrors {
        broken: true.into(),
        refuse: vec!["ev-2".into(), "ev-4".into()],
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/_bulk", axum::routing::post(mapping_errors_bulk))
        .with_state(server.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let c = Collector::start(&format!(
        r#"
receivers:
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
exporters:
  opensearch:
    endpoints: [{url}]
    retry_on_failure: {{ initial_interval: 100ms }}
service:
  pipelines:
    logs: {{ receivers: [gp], exporters: [opensearch] }}
"#
    ))
    .await;
    let events: Vec<Value> = (1..=5)
        .map(|i| {
            serde_json::json!({
                "eventId": format!("ev-{i}"), "eventType": "DTMF_RECEIVED",
                "timestamp": "2026-11-23T10:00:00Z", "organizationId": "org-1", "accountId": "acc-1",
                "callGuid": "call-1", "legGuid": "leg-1", "data": {"digits": "12#"},
            })
        })
        .collect();
    let resp = crate::harness::http()
        .post(format!("http://127.0.0.1:{}/v1/events", c.port("gp")))
        .header("content-type", "application/json")
        .body(Value::Array(events).to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // The three good ones are stored; the two refused ones are dead letters, with the reason.
    let dlq = c.path("lumina-data/dead_letters/opensearch.jsonl");
    let letters = crate::harness::wait_for(Duration::from_secs(30), || {
        let letters =
            lumina_collector::exporter::dead_letter::read_file(&dlq).map_err(|e| e.to_string())?;
        let n: usize = letters.iter().map(|l| l.batch.len()).sum();
        if n == 2 {
            Ok(letters)
        } else {
            Err(format!("{n} dead letters"))
        }
    })
    .await;
    for l in &letters {
        assert_eq!(l.exporter, "opensearch");
        assert_eq!(
            l.reason,
            "permanent: 400 mapper_parsing_exception: failed to parse field [data.digits] of type [long]"
        );
    }
    let mut stored = server.stored.lock().unwrap().clone();
    stored.sort();
    assert_eq!(stored, vec!["ev-1", "ev-3", "ev-5"]);
    assert_eq!(
        c.metric(
            "lumina_exporter_dead_lettered_items_total",
            &[("component", "opensearch"), ("reason", "permanent")]
        )
        .await,
        2.0
    );

    // The mapping is fixed; `lumina dlq replay` delivers the dead letters.
    server
        .broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let out = std::process::Command::new(crate::harness::lumina_bin())
        .args(["dlq", "replay", "--config"])
        .arg(c.path("config.yaml"))
        .current_dir(c.path(""))
        .envs(crate::harness::services::AWS_ENV)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 item(s) delivered, 0 failed again"),
        "{stdout}"
    );
    let mut stored = server.stored.lock().unwrap().clone();
    stored.sort();
    assert_eq!(stored, vec!["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"]);
    // Nothing is left to replay.
    assert!(!dlq.exists());
    let claimed: Vec<String> = std::fs::read_dir(c.path("lumina-data/dead_letters"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("opensearch.jsonl.replay"))
        .collect();
    assert!(claimed.is_empty(), "no claimed file is left: {claimed:?}");
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_appsync_refuses_is_dead_lettered_with_its_graphql_error() {
    let appsync = AppSync::start();
    let c = Collector::start(&format!(
        r#"
receivers:
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
exporters:
  appsync:
    url: {}
    auth: {{ api_key: {} }}
    events: {{ mutation: handleEvent, input_type: EventInput, selection: "eventId callerNumber" }}
service:
  pipelines:
    logs: {{ receivers: [gp], exporters: [appsync] }}
"#,
        appsync.graphql_url(),
        appsync.api_key
    ))
    .await;
    let event = serde_json::json!({
        "eventId": "ev-1", "eventType": "CALL_STARTED", "timestamp": "2026-11-23T10:00:00Z",
        "organizationId": "org-1", "accountId": "acc-1", "callGuid": "call-1", "legGuid": "leg-1",
    });
    let resp = crate::harness::http()
        .post(format!("http://127.0.0.1:{}/v1/events", c.port("gp")))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // `Event` has no `callerNumber`: the simulator refuses the document, which is not retried.
    let dlq = c.path("lumina-data/dead_letters/appsync.jsonl");
    let letters = crate::harness::wait_for(Duration::from_secs(30), || {
        lumina_collector::exporter::dead_letter::read_file(&dlq).map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.starts_with("permanent: "),
        "{}",
        letters[0].reason
    );
    assert!(
        letters[0].reason.contains("callerNumber"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        c.metric(
            "lumina_exporter_send_retries_total",
            &[("component", "appsync")]
        )
        .await,
        0.0
    );
    c.stop().await.assert_clean();
}
