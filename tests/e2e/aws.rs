//! Region routing and the AWS exporters against the real stand-ins: kinesalite (Kinesis), the
//! OpenSearch emulator and the Amplify AppSync simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use lumina_callsim::{Progress, SimConfig, Target, Wire, generate};
use serde_json::Value;

use crate::harness::services::Kinesis;
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

fn routing_config(kinesis: &str) -> String {
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
connectors:
  region_router:
    tenants: {{ {} }}
    unknown_tenants: dead_letter
    dead_letter: [logs/unrouted]
    routes:
{routes}exporters:
{exporters}  file/unrouted: {{ path: "{{dir}}/unrouted.jsonl" }}
service:
  pipelines:
    logs/in: {{ receivers: [gp, rt], exporters: [region_router] }}
    logs/unrouted: {{ receivers: [region_router], exporters: [file/unrouted] }}
{pipelines}"#,
        tenants.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_region_s_stream_holds_exactly_its_tenants_events() {
    let kinesis = Kinesis::start().await;
    for (_, region) in TENANTS {
        kinesis.create_stream(&stream_of(region), 2).await;
    }
    let c = Collector::start(&routing_config(&kinesis.service.url())).await;
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

    // What each stream must hold: the event ids of its tenants.
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for s in &plan.sends {
        let region = TENANTS
            .iter()
            .find(|(t, _)| *t == s.event.organization_id)
            .map(|(_, r)| *r)
            .unwrap();
        expected
            .entry(region)
            .or_default()
            .insert(s.event.event_id.clone());
    }
    for (region, want) in &expected {
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
        let mut got = BTreeSet::new();
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
            assert!(
                got.insert(event["eventId"].as_str().unwrap().to_owned()),
                "duplicate in {stream}"
            );
        }
        assert_eq!(&got, want, "{stream}");
    }
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
