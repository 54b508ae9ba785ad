//! The `kinesis` receiver against Kinesis's error answers, which kinesalite never gives: a
//! server answering `ListShards`, `GetShardIterator` and `GetRecords` as the Kinesis API
//! reference documents (JSON 1.1, `__type` error bodies with HTTP 400) throttles the first
//! read and expires an iterator mid-stream. The reader must back off, reopen after the last
//! record it handed on, dead-letter the record that does not decode, and deliver every other
//! record exactly once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::services::DynamoDb;
use crate::harness::{Collector, read_jsonl, wait_for};

const RECORDS: usize = 30;
/// The record that is not a voice event.
const GARBAGE: usize = 7;
const SHARD: &str = "shardId-000000000000";

fn sequence(i: usize) -> String {
    format!("4959{i:052}")
}

fn data(i: usize) -> Vec<u8> {
    if i == GARBAGE {
        return b"{\"not\": \"a voice event\"}".to_vec();
    }
    json!({
        "eventId": format!("e{i}"),
        "eventType": "CALL_STARTED",
        "timestamp": "2026-12-01T10:00:00Z",
        "organizationId": "org-1",
        "accountId": "acc-1",
        "callGuid": format!("call-{i}"),
        "legGuid": format!("call-{i}-l1"),
        "source": "RT",
        "data": {}
    })
    .to_string()
    .into_bytes()
}

#[derive(Default)]
struct Script {
    /// GetRecords calls so far.
    reads: usize,
    /// `(iterator type, starting sequence number)` of each GetShardIterator call.
    opens: Vec<(String, Option<String>)>,
    /// When each GetRecords call came.
    read_times: Vec<Instant>,
}

type Reply = (StatusCode, [(&'static str, &'static str); 1], String);

fn error(kind: &str, message: &str) -> Reply {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
}

async fn kinesis(State(s): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: String) -> Reply {
    let ok = |v: Value| {
        (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            v.to_string(),
        )
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut s = s.lock().unwrap();
    match target {
        "Kinesis_20131202.ListShards" => ok(json!({"Shards": [{
            "ShardId": SHARD,
            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"},
            "SequenceNumberRange": {"StartingSequenceNumber": sequence(0)}
        }]})),
        "Kinesis_20131202.GetShardIterator" => {
            let kind = req["ShardIteratorType"].as_str().unwrap_or("").to_owned();
            let start = req["StartingSequenceNumber"].as_str().map(str::to_owned);
            let next = match (kind.as_str(), &start) {
                ("AFTER_SEQUENCE_NUMBER", Some(seq)) => seq[4..].parse::<usize>().unwrap() + 1,
                _ => 0,
            };
            s.opens.push((kind, start));
            ok(json!({"ShardIterator": format!("it-{next}")}))
        }
        "Kinesis_20131202.GetRecords" => {
            s.reads += 1;
            s.read_times.push(Instant::now());
            let from: usize = req["ShardIterator"].as_str().unwrap()[3..].parse().unwrap();
            match s.reads {
                1 => error(
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for shard shardId-000000000000 in stream voice under account 123456789012.",
                ),
                3 => error(
                    "ExpiredIteratorException",
                    "Iterator expired. The iterator was created at time Tue Dec 01 10:00:00 UTC 2026 while right now it is Tue Dec 01 10:05:01 UTC 2026 which is further in the future than the tolerated delay of 300000 milliseconds.",
                ),
                _ => {
                    let limit = req["Limit"].as_u64().unwrap_or(10_000) as usize;
                    let to = (from + limit).min(RECORDS);
                    let arrived = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64()
                        - 60.0;
                    let records: Vec<Value> = (from..to)
                        .map(|i| {
                            json!({
                                "SequenceNumber": sequence(i),
                                // A minute ago: the checkpoint lag is about that.
                                "ApproximateArrivalTimestamp": arrived,
                                "Data": base64::engine::general_purpose::STANDARD.encode(data(i)),
                                "PartitionKey": format!("call-{i}"),
                            })
                        })
                        .collect();
                    ok(json!({
                        "Records": records,
                        "NextShardIterator": format!("it-{to}"),
                        "MillisBehindLatest": (RECORDS - to) * 1000,
                    }))
                }
            }
        }
        other => error(
            "UnknownOperationException",
            &format!("unknown operation {other}"),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_an_expired_iterator_lose_nothing_and_a_bad_record_is_dead_lettered() {
    let script = Arc::new(Mutex::new(Script::default()));
    let app = axum::Router::new()
        .route("/", axum::routing::post(kinesis))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let db = DynamoDb::start();
    let c = Collector::start(&format!(
        r#"
receivers:
  kinesis:
    stream_name: voice
    region: eu-west-1
    endpoint: {url}
    initial_position: trim_horizon
    poll_interval: 200ms
    max_records: 10
    dead_letter_path: "{{dir}}/dead_letters.jsonl"
    leases: {{ table: leases, endpoint: {}, failover_time: 3s }}
exporters:
  file: {{ path: "{{dir}}/records.jsonl", sending_queue: {{ enabled: false }} }}
service:
  pipelines:
    logs: {{ receivers: [kinesis], exporters: [file] }}
"#,
        db.service.url()
    ))
    .await;
    let ids = || -> Vec<String> {
        read_jsonl(&c.path("records.jsonl"))
            .iter()
            .flat_map(|b| {
                b.as_logs()
                    .unwrap()
                    .resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records)
                    .map(|r| {
                        let get = |k: &str| lumina_sdk::testkit::attr(&r.attributes, k).unwrap();
                        format!(
                            "{}@{}@{}",
                            get("voice.event.id"),
                            get("kinesis.shard_id"),
                            get("kinesis.sequence_number")
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let want: Vec<String> = (0..RECORDS)
        .filter(|i| *i != GARBAGE)
        .map(|i| format!("e{i}@{SHARD}@{}", sequence(i)))
        .collect();
    wait_for(Duration::from_secs(30), || {
        let got = ids();
        if got.len() >= want.len() {
            Ok(())
        } else {
            Err(format!("{} of {} records delivered", got.len(), want.len()))
        }
    })
    .await;
    // Every record once, in order, with its shard and sequence number.
    assert_eq!(ids(), want);
    {
        let s = script.lock().unwrap();
        // After the throttled call the reader waited before asking again.
        let pause = s.read_times[1] - s.read_times[0];
        assert!(
            pause >= Duration::from_millis(190),
            "retried after {pause:?}"
        );
        // The expired iterator was reopened right after the last record handed on.
        assert_eq!(s.opens[0], ("TRIM_HORIZON".to_owned(), None));
        assert_eq!(
            s.opens[1],
            ("AFTER_SEQUENCE_NUMBER".to_owned(), Some(sequence(9)))
        );
    }
    // The record that is not a voice event is in the dead-letter file, with where it was.
    let letters = std::fs::read_to_string(c.path("dead_letters.jsonl")).unwrap();
    let letter: Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    assert_eq!(letters.lines().count(), 1, "{letters}");
    assert_eq!(letter["shard_id"], SHARD);
    assert_eq!(letter["sequence_number"], sequence(GARBAGE));
    assert_eq!(letter["stream"], "voice");
    assert!(
        letter["reason"].as_str().unwrap().contains("eventType"),
        "{letter}"
    );
    let raw = base64::engine::general_purpose::STANDARD
        .decode(letter["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, data(GARBAGE));
    // Counted, too.
    assert_eq!(
        c.metric(
            "lumina_kinesis_dead_lettered_records_total",
            &[("shard", SHARD)]
        )
        .await,
        1.0
    );
    assert_eq!(
        c.metric("lumina_kinesis_throttles_total", &[("service", "kinesis")])
            .await,
        1.0
    );
    assert_eq!(
        c.metric("lumina_kinesis_records_read_total", &[("shard", SHARD)])
            .await,
        RECORDS as f64
    );
    let bytes: usize = (0..RECORDS).map(|i| data(i).len()).sum();
    assert_eq!(
        c.metric("lumina_kinesis_bytes_read_total", &[("shard", SHARD)])
            .await,
        bytes as f64
    );
    // The last answer was at the tip of the shard.
    assert_eq!(
        c.metric("lumina_kinesis_millis_behind_latest", &[("shard", SHARD)])
            .await,
        0.0
    );
    let lag = c
        .metric("lumina_kinesis_checkpoint_lag_seconds", &[("shard", SHARD)])
        .await;
    assert!((59.0..120.0).contains(&lag), "checkpoint lag {lag}");
    assert_eq!(c.metric("lumina_kinesis_leases_held", &[]).await, 1.0);
    for event in ["created", "taken"] {
        assert_eq!(
            c.metric("lumina_kinesis_lease_events_total", &[("event", event)])
                .await,
            1.0,
            "{event}"
        );
    }
    c.stop().await.assert_clean();
}
