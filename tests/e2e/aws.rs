//! Region routing and the AWS exporters against the real stand-ins: kinesalite (Kinesis), the
//! OpenSearch emulator and the Amplify AppSync simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use lumina_callsim::{Plan, Progress, SimConfig, Target, Wire, generate};
use serde_json::Value;

use lumina_sdk::voice::Dialogue;
use lumina_sdk::{Batch, Payload, Signal};

use crate::harness::services::{AppSync, Kinesis, OpenSearch};
use crate::harness::{Collector, wait_for_async};

/// Tenants and their home regions, as the simulator names organizations.
const TENANTS: [(&str, &str); 3] = [
    ("org-0000", "eu-west-1"),
    ("org-0001", "us-east-1"),
    ("org-0002", "ap-southeast-2"),
];

fn stream_of(region: &str) -> String {
    format!("lumina-{region}")
}

fn target(c: &Collector) -> Target {
    Target {
        wire: Wire::Json,
        gp: format!("127.0.0.1:{}", c.port("gp")),
        rt: format!("127.0.0.1:{}", c.port("rt")),
        batch: 50,
        concurrency: 2,
        retry_for: Duration::from_secs(60),
    }
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
    let tenants: Vec<String> = TENANTS.iter().map(|(t, r)| format!("{t}: {r}")).collect();
    format!(
        r#"
receivers:
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
  rt: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:rt}}" }} }} }}
{processors}connectors:
  region_router:
    tenants: {{ {} }}
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
        tenants.join(", "),
        processors = extra.processors,
        extra_exporters = extra.exporters,
        extra_pipelines = extra.pipelines,
    )
}

/// YAML added to [`routing_config`]'s sections.
#[derive(Default)]
struct Extra {
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
    let report = lumina_callsim::send(&plan, &target(&c), Arc::new(Progress::default()))
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

/// The newest revision of every dialogue record the `file` exporter wrote, and every
/// (dialogue id, revision) it wrote.
fn dialogue_file(path: &std::path::Path) -> (BTreeMap<String, Dialogue>, BTreeSet<(String, u64)>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut newest: BTreeMap<String, Dialogue> = BTreeMap::new();
    let mut all = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let batch = Batch::decode_json(Signal::Logs, line.as_bytes()).unwrap();
        let Payload::Logs(req) = batch.into_payload() else {
            continue;
        };
        for r in req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
        {
            if let Some(Ok((_, d))) = Dialogue::from_log_record(r) {
                all.insert((d.dialogue_id.clone(), d.revision));
                if newest
                    .get(&d.dialogue_id)
                    .is_none_or(|n| n.revision < d.revision)
                {
                    newest.insert(d.dialogue_id.clone(), d);
                }
            }
        }
    }
    (newest, all)
}

fn tier2(opensearch: &str, appsync: &AppSync) -> Extra {
    Extra {
        processors: "processors:\n  dialogue_assembly: { storage: { directory: \"{dir}/state\" }, idle_timeout: 1h }\n".into(),
        exporters: format!(
            r#"  opensearch:
    endpoints: [{opensearch}]
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
  appsync:
    url: {}
    auth: {{ api_key: {} }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
  file/dialogues: {{ path: "{{dir}}/dialogues.jsonl" }}
"#,
            appsync.graphql_url(),
            appsync.api_key
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
    let appsync = AppSync::start();
    let mut updates = appsync
        .subscribe("subscription { onDialogue { dialogueId organizationId status revision } }")
        .await;
    let c = Collector::start(&routing_config(
        &kinesis.service.url(),
        &tier2(&opensearch.url, &appsync),
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
    let report = lumina_callsim::send(&plan, &target(&c), Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");

    // Tier 1: each region's stream holds exactly its tenants' events.
    assert_streams(&kinesis, &plan).await;

    // Tier 2: every dialogue reached OpenSearch in its final state and is searchable there,
    // one document per dialogue. (The emulator keeps whichever revision was written last,
    // having no external versioning, so the final state is checked on what was indexed.)
    let truth: BTreeMap<String, &Dialogue> = plan
        .truth
        .iter()
        .map(|d| (d.dialogue_id.clone(), d))
        .collect();
    wait_for_async(Duration::from_secs(60), || async {
        let indexed = opensearch.indexed.lock().unwrap().clone();
        for (id, d) in &truth {
            let last = indexed
                .iter()
                .filter(|(i, s)| i == "dialogues" && s["dialogueId"] == id.as_str())
                .max_by_key(|(_, s)| s["revision"].as_u64());
            let status = last.map(|(_, s)| s["status"].clone());
            if status != Some(Value::from(d.status.as_str())) {
                return Err(format!(
                    "dialogue {id}: want {}, newest indexed {status:?}",
                    d.status.as_str()
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

    // Every dialogue update the collector made reached the AppSync subscriber.
    let stopped = c.stop().await;
    stopped.assert_clean();
    let (newest, written) = dialogue_file(&stopped.path("dialogues.jsonl"));
    assert_eq!(newest.len(), truth.len());
    let mut received = BTreeSet::new();
    while !written.is_subset(&received) {
        let next = tokio::time::timeout(Duration::from_secs(30), updates.recv()).await;
        let Ok(Some(data)) = next else {
            let missing: Vec<_> = written.difference(&received).take(5).collect();
            panic!("the subscriber is missing updates, e.g. {missing:?}");
        };
        let d = &data["onDialogue"];
        received.insert((
            d["dialogueId"].as_str().unwrap().to_owned(),
            d["revision"].as_u64().unwrap(),
        ));
    }
}
