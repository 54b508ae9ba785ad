//! Tier 2 across processes: one tier-1 `lumina` writes simulated calls to a 4-shard
//! kinesalite stream; tier-2 `lumina` processes share the stream through DynamoDB leases
//! (dynalite) and keep dialogue state in the DynamoDB dialogue table. Collectors are stopped,
//! killed and added mid-stream; the dialogues, in their output and in the table, must equal
//! the simulator's ground truth.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use lumina_callsim::{Plan, Progress, SendReport, Target, Wire, generate, truth_json};
use lumina_plugins::dialogue_assembly::dynamo::from_attribute;
use lumina_plugins::kinesis::receiver::leases::LeaseTable;
use lumina_sdk::voice::Dialogue;
use serde_json::Value;

use crate::harness::services::{DynamoDb, Kinesis};
use crate::harness::{Collector, wait_for, wait_for_async};
use crate::voice::{compare, newest_dialogues, sim, truth};

pub(crate) const STREAM: &str = "voice";
const FAILOVER: Duration = Duration::from_secs(2);

pub(crate) fn tier1(kinesis: &str) -> String {
    format!(
        r#"
receivers:
  gp: {{ protocols: {{ grpc: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
  rt: {{ protocols: {{ grpc: {{ endpoint: "127.0.0.1:{{port:rt}}" }} }} }}
exporters:
  kinesis:
    stream_name: {STREAM}
    region: eu-west-1
    endpoint: {kinesis}
    encoding: voice_json
    # Acknowledged only once Kinesis holds it.
    sending_queue: {{ enabled: false }}
    retry_on_failure: {{ initial_interval: 50ms, max_interval: 500ms }}
service:
  pipelines:
    logs: {{ receivers: [gp, rt], exporters: [kinesis] }}
"#
    )
}

/// The tier-2 `receivers:` and `processors:` sections: the stream through leases in `dynamo`,
/// as `worker`, into `dialogue_assembly` on the dialogue table `dialogues` there.
pub(crate) fn tier2_input(kinesis: &str, dynamo: &str, worker: &str) -> String {
    format!(
        r#"
receivers:
  kinesis:
    stream_name: {STREAM}
    region: eu-west-1
    endpoint: {kinesis}
    encoding: voice_json
    initial_position: trim_horizon
    poll_interval: 200ms
    max_records: 500
    dead_letter_path: "{{dir}}/dead_letters.jsonl"
    leases: {{ table: leases, endpoint: {dynamo}, failover_time: {}ms, worker_id: {worker} }}
processors:
  dialogue_assembly:
    storage: {{ dynamodb: {{ table: dialogues, endpoint: {dynamo}, region: eu-west-1 }} }}
    idle_timeout: 3s
    check_interval: 200ms
"#,
        FAILOVER.as_millis()
    )
}

fn tier2(kinesis: &str, dynamo: &str, worker: &str) -> String {
    format!(
        r#"{}exporters:
  file:
    path: "{{dir}}/dialogues.jsonl"
    append: true
    sending_queue: {{ enabled: false }}
service:
  pipelines:
    logs: {{ receivers: [kinesis], processors: [dialogue_assembly], exporters: [file] }}
"#,
        tier2_input(kinesis, dynamo, worker)
    )
}

/// Leases per owner (`None`: free), finished shards left out.
async fn owners(table: &LeaseTable) -> BTreeMap<Option<String>, usize> {
    let mut out = BTreeMap::new();
    for l in table.list().await.unwrap() {
        if !l.is_finished() {
            *out.entry(l.owner).or_default() += 1;
        }
    }
    out
}

/// Waits until the live shards' leases are held by exactly `workers`, as evenly as can be.
async fn wait_balanced(table: &LeaseTable, workers: &[&str], timeout: Duration) -> Duration {
    let started = Instant::now();
    wait_for_async(timeout, || async {
        let o = owners(table).await;
        let total: usize = o.values().sum();
        let fair = total.div_ceil(workers.len());
        let ok = o
            .keys()
            .all(|k| k.as_deref().is_some_and(|k| workers.contains(&k)))
            && o.len() == workers.len()
            && o.values()
                .all(|n| *n <= fair && *n >= total / workers.len());
        if ok {
            Ok(())
        } else {
            Err(format!("leases: {o:?}, want them shared by {workers:?}"))
        }
    })
    .await;
    started.elapsed()
}

/// Sends the plan's calls to tier 1 in the background.
fn send(
    plan: &Arc<Plan>,
    t1: &Collector,
) -> (
    tokio::task::JoinHandle<anyhow::Result<SendReport>>,
    Arc<Progress>,
) {
    let progress = Arc::new(Progress::default());
    let (plan, p, t) = (plan.clone(), progress.clone(), target(t1, Wire::Otlp));
    let task = tokio::spawn(async move { lumina_callsim::send(&plan, &t, p).await });
    (task, progress)
}

/// Waits (up to two minutes) until the collector acknowledged `n` events; else `stalled`.
async fn acknowledged(progress: &Progress, n: u64, stalled: &str) {
    if tokio::time::timeout(Duration::from_secs(120), progress.wait_acknowledged(n))
        .await
        .is_err()
    {
        panic!("{stalled}");
    }
}

/// The calls of a test to the collector's `gp` and `rt` ports, over `wire`.
pub(crate) fn target(c: &Collector, wire: Wire) -> Target {
    Target {
        wire,
        gp: format!("127.0.0.1:{}", c.port("gp")),
        rt: format!("127.0.0.1:{}", c.port("rt")),
        batch: 50,
        concurrency: 2,
        retry_for: Duration::from_secs(60),
        rate: None,
    }
}

/// The newest version of every dialogue across the output files.
fn newest(files: &[PathBuf]) -> HashMap<String, Value> {
    let mut all: HashMap<String, Dialogue> = HashMap::new();
    for f in files {
        for (id, d) in newest_dialogues(f) {
            if all.get(&id).is_none_or(|o| o.revision < d.revision) {
                all.insert(id, d);
            }
        }
    }
    all.into_iter().map(|(k, d)| (k, truth_json(&d))).collect()
}

/// Every version each collector wrote of the first dialogue that differs from the truth.
fn history(
    files: &[PathBuf],
    got: &HashMap<String, Value>,
    expected: &HashMap<String, Value>,
) -> String {
    let Some(id) = expected.keys().find(|k| got.get(*k) != expected.get(*k)) else {
        return String::new();
    };
    let mut out = format!("versions of {id}:\n");
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines() {
            let Ok(b) = lumina_sdk::Batch::decode_json(lumina_sdk::Signal::Logs, line.as_bytes())
            else {
                continue;
            };
            for r in b
                .as_logs()
                .unwrap()
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
            {
                if let Some(Ok((kind, d))) = Dialogue::from_log_record(r)
                    && &d.dialogue_id == id
                {
                    out.push_str(&format!(
                        "  {} {kind:?} revision {} {:?} {} events, updated {}\n",
                        f.parent().unwrap().display(),
                        d.revision,
                        d.status,
                        d.events.len(),
                        d.updated_at
                    ));
                }
            }
        }
    }
    out
}

/// Every dialogue the DynamoDB table holds, rebuilt from its dialogue and event items.
async fn table_dialogues(db: &DynamoDb) -> HashMap<String, Value> {
    let items = db.scan("dialogues").await;
    let sk = |i: &HashMap<String, AttributeValue>| i["SK"].as_s().unwrap().clone();
    let mut events: HashMap<String, Vec<Value>> = HashMap::new();
    let mut dialogues: Vec<serde_json::Map<String, Value>> = Vec::new();
    for item in &items {
        let Value::Object(mut m) = from_attribute(&AttributeValue::M(item.clone())) else {
            unreachable!()
        };
        if sk(item).contains("#EVENT#") {
            let mut e = serde_json::Map::new();
            for k in [
                "eventId",
                "dialogueId",
                "eventType",
                "timestamp",
                "data",
                "source",
            ] {
                e.insert(k.into(), m.remove(k).unwrap_or(Value::Null));
            }
            if e["data"].is_null() {
                e.insert("data".into(), Value::Object(Default::default()));
            }
            events
                .entry(e["dialogueId"].as_str().unwrap().to_owned())
                .or_default()
                .push(Value::Object(e));
        } else {
            dialogues.push(m);
        }
    }
    let mut out = HashMap::new();
    for mut d in dialogues {
        let id = d["dialogueId"].as_str().unwrap().to_owned();
        let mut es = events.remove(&id).unwrap_or_default();
        es.sort_by(|a, b| {
            (a["timestamp"].as_str(), a["eventId"].as_str())
                .cmp(&(b["timestamp"].as_str(), b["eventId"].as_str()))
        });
        d.insert("events".into(), Value::Array(es));
        for k in [
            "callerNumber",
            "calledNumber",
            "startTime",
            "endTime",
            "duration",
            "direction",
            "answerTime",
            "endReason",
            "regionId",
        ] {
            d.entry(k).or_insert(Value::Null);
        }
        let dialogue: Dialogue = serde_json::from_value(Value::Object(d)).unwrap();
        out.insert(id, truth_json(&dialogue));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_sharing_a_stream_survive_a_stop_a_kill_and_new_members_and_assemble_the_ground_truth()
 {
    let kinesis = Kinesis::start().await;
    kinesis.create_stream(STREAM, 4).await;
    let db = DynamoDb::start();
    let (k, d) = (kinesis.service.url(), db.service.url());
    let leases = LeaseTable::new(db.client.clone(), "leases");
    let t1 = Collector::start(&tier1(&k)).await;
    let w1 = Collector::start(&tier2(&k, &d, "w1")).await;
    let w2 = Collector::start(&tier2(&k, &d, "w2")).await;
    let w3 = Collector::start(&tier2(&k, &d, "w3")).await;
    // Four shards among three workers settle 2/1/1.
    wait_balanced(&leases, &["w1", "w2", "w3"], Duration::from_secs(30)).await;

    let plan = Arc::new(generate(&sim(1500, 41)));
    let (sender, progress) = send(&plan, &t1);
    let sends = plan.sends.len() as u64;

    // A graceful stop: the leases are released, so the others take them at their next round.
    acknowledged(&progress, sends / 3, "the stream did not get going").await;
    let stopped = w3.stop().await;
    stopped.assert_clean();
    assert!(
        stopped.log.contains("Released the shard leases"),
        "{}",
        stopped.log
    );
    // Released on the way out: none is still w3's (an unreleased one would be until it expired).
    let o = owners(&leases).await;
    assert!(
        !o.contains_key(&Some("w3".to_owned())),
        "w3 still holds leases after its graceful stop: {o:?}"
    );
    let graceful = wait_balanced(&leases, &["w1", "w2"], Duration::from_secs(30)).await;

    // A kill: the leases expire after the failover time, then are taken.
    acknowledged(&progress, 2 * sends / 3, "the stream stalled").await;
    w2.signal("KILL");
    let killed = w2.wait_exit().await;
    let hard = wait_balanced(&leases, &["w1"], Duration::from_secs(30)).await;
    // Within the failover time plus one taker interval (the failover time), with slack for a
    // loaded machine; and not before it could have expired (the last renewal came up to a
    // third of the failover time before the kill).
    assert!(
        hard <= 2 * FAILOVER + Duration::from_secs(3),
        "took {hard:?}"
    );
    assert!(
        hard >= FAILOVER - FAILOVER / 3,
        "taken before the lease expired: {hard:?}"
    );
    // Released leases need no expiry: taken at the next round.
    assert!(
        graceful <= FAILOVER + Duration::from_secs(2),
        "a released lease took {graceful:?}"
    );

    // Two new members: one to three converges.
    let w4 = Collector::start(&tier2(&k, &d, "w4")).await;
    let w5 = Collector::start(&tier2(&k, &d, "w5")).await;
    wait_balanced(&leases, &["w1", "w4", "w5"], Duration::from_secs(60)).await;

    let report = sender.await.unwrap().unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");
    let expected = truth(&plan);
    let files = vec![
        w1.path("dialogues.jsonl"),
        w4.path("dialogues.jsonl"),
        w5.path("dialogues.jsonl"),
        stopped.path("dialogues.jsonl"),
        killed.path("dialogues.jsonl"),
    ];
    let logs = || {
        [&w1.log(), &w4.log(), &w5.log(), &stopped.log, &killed.log]
            .iter()
            .flat_map(|l| l.lines())
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    wait_for(Duration::from_secs(120), || {
        compare(&newest(&files), &expected).map_err(|e| {
            format!(
                "the dialogues written do not match the ground truth: {e}\n{}\nwarnings:\n{}",
                history(&files, &newest(&files), &expected),
                logs()
            )
        })
    })
    .await;
    // The table holds the same dialogues, every event an item of its own.
    let held = table_dialogues(&db).await;
    compare(&held, &expected).unwrap_or_else(|e| panic!("the dialogue table: {e}"));
    for c in [w1, w4, w5, t1] {
        c.stop().await.assert_clean();
    }
    // Every lease is free again, and none was lost or corrupted.
    let o = owners(&leases).await;
    assert_eq!(o.keys().collect::<Vec<_>>(), vec![&None], "{o:?}");
}

/// `(time, shard)` of every log line of `what` (`Reading a shard.` or `The shard was read to
/// its end.`) in `log`.
fn shard_lines(log: &str, what: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            let time = l.split_whitespace().next()?.to_owned();
            let shard = l
                .split("shard=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_owned();
            Some((time, shard))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitting_and_merging_shards_mid_stream_loses_nothing_and_reads_parents_first() {
    let kinesis = Kinesis::start().await;
    kinesis.create_stream(STREAM, 2).await;
    let db = DynamoDb::start();
    let (k, d) = (kinesis.service.url(), db.service.url());
    let leases = LeaseTable::new(db.client.clone(), "leases");
    let t1 = Collector::start(&tier1(&k)).await;
    let w1 = Collector::start(&tier2(&k, &d, "w1")).await;
    let w2 = Collector::start(&tier2(&k, &d, "w2")).await;
    wait_balanced(&leases, &["w1", "w2"], Duration::from_secs(30)).await;

    let plan = Arc::new(generate(&sim(800, 43)));
    let (sender, progress) = send(&plan, &t1);
    let sends = plan.sends.len() as u64;
    acknowledged(&progress, sends / 3, "the stream did not get going").await;
    // Split the first shard in two...
    let shards = kinesis.shards(STREAM).await;
    let (first, second) = (shards[0].clone(), shards[1].clone());
    kinesis.split(STREAM, &first.0, second.2 / 2).await;
    acknowledged(
        &progress,
        2 * sends / 3,
        "the stream stalled after the split",
    )
    .await;
    // ...then merge its upper half with the second shard.
    let upper = kinesis
        .shards(STREAM)
        .await
        .into_iter()
        .find(|s| s.1 == vec![first.0.clone()] && s.2 == second.2 / 2)
        .unwrap();
    kinesis.merge(STREAM, &upper.0, &second.0).await;
    let report = sender.await.unwrap().unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");

    let expected = truth(&plan);
    let files = vec![w1.path("dialogues.jsonl"), w2.path("dialogues.jsonl")];
    wait_for(Duration::from_secs(120), || {
        compare(&newest(&files), &expected).map_err(|e| {
            format!(
                "the dialogues written do not match the ground truth: {e}\n{}",
                history(&files, &newest(&files), &expected)
            )
        })
    })
    .await;
    compare(&table_dialogues(&db).await, &expected)
        .unwrap_or_else(|e| panic!("the dialogue table: {e}"));

    // Every closed shard was read to its end and names its children; every child was first
    // read after all its parents ended.
    let all = kinesis.shards(STREAM).await;
    assert_eq!(all.len(), 5, "{all:?}");
    let table = leases.list().await.unwrap();
    let logs = format!("{}\n{}", w1.log(), w2.log());
    let ended = shard_lines(&logs, "The shard was read to its end.");
    let reading = shard_lines(&logs, "Reading a shard.");
    for (id, parents, _, closed) in &all {
        let lease = table.iter().find(|l| &l.key == id).unwrap();
        if *closed {
            assert!(lease.is_finished(), "{lease:?}");
            let children: Vec<&String> = all
                .iter()
                .filter(|s| s.1.contains(id))
                .map(|s| &s.0)
                .collect();
            assert_eq!(
                lease.children.iter().collect::<Vec<_>>(),
                children,
                "{lease:?}"
            );
        }
        if parents.is_empty() {
            continue;
        }
        let first_read = reading
            .iter()
            .filter(|(_, s)| s == id)
            .map(|(t, _)| t)
            .min()
            .unwrap_or_else(|| panic!("{id} was never read:\n{logs}"));
        for p in parents {
            let end = ended
                .iter()
                .filter(|(_, s)| s == p)
                .map(|(t, _)| t)
                .max()
                .unwrap_or_else(|| panic!("{p} was never read to its end:\n{logs}"));
            assert!(
                end < first_read,
                "{id} was read at {first_read}, before its parent {p} ended at {end}"
            );
        }
    }
    for c in [w1, w2, t1] {
        c.stop().await.assert_clean();
    }
}
