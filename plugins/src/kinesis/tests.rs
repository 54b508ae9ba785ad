//! Kinesis' error answers (per-record failures, throttling) cannot be had from kinesalite,
//! which never throttles or fails a record; this server answers `PutRecords` the way the
//! Kinesis API reference documents it (JSON 1.1, `FailedRecordCount` and per-record
//! `ErrorCode`/`ErrorMessage`, `__type` error bodies with HTTP 400).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::aws::fixtures::{event_ids, events};
use lumina_sdk::config;
use lumina_sdk::voice::attr;

/// What the server does with each request, in order; then it accepts everything.
#[derive(Clone)]
enum Answer {
    /// Fail the records at these positions with `ProvisionedThroughputExceededException`.
    FailRecords(Vec<usize>),
    /// Refuse the whole request with this error type.
    Error(&'static str),
}

type Server = crate::aws::fixtures::Scripted<Answer, Vec<String>>;

async fn put_records(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let ct = [("content-type", "application/x-amz-json-1.1")];
    let target = crate::aws::fixtures::target(&headers);
    if target != "Kinesis_20131202.PutRecords" {
        let e = json!({"__type": "UnknownOperationException"});
        return (StatusCode::BAD_REQUEST, ct, e.to_string());
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<String> = req["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["PartitionKey"].as_str().unwrap().to_owned())
        .collect();
    let answer = s.next(keys.clone());
    match answer {
        Some(Answer::Error(t)) => {
            let e = json!({"__type": t, "message": "Rate exceeded for stream s under account 123456789012."});
            (StatusCode::BAD_REQUEST, ct, e.to_string())
        }
        other => {
            let fail = match other {
                Some(Answer::FailRecords(f)) => f,
                _ => Vec::new(),
            };
            let records: Vec<Value> = (0..keys.len()).map(|i| if fail.contains(&i) {
                json!({"ErrorCode": "ProvisionedThroughputExceededException",
                       "ErrorMessage": "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012."})
            } else {
                json!({"SequenceNumber": format!("4959{i:020}"), "ShardId": "shardId-000000000000"})
            }).collect();
            let out = json!({"FailedRecordCount": fail.len(), "Records": records});
            (StatusCode::OK, ct, out.to_string())
        }
    }
}

async fn serve(script: Vec<Answer>) -> (Arc<Server>, String) {
    crate::aws::fixtures::serve_scripted(script, put_records).await
}

fn exporter(url: &str, yaml: &str) -> KinesisExporter {
    let cfg: KinesisConfig =
        config::parse(&lumina_sdk::config::parse_yaml(yaml, "t").unwrap()).unwrap();
    KinesisExporter::new(
        aws_sdk_kinesis::Client::new(&crate::aws::fixtures::sdk(url)),
        cfg,
    )
}

#[tokio::test]
async fn only_the_records_kinesis_failed_are_handed_back_for_retry() {
    let (server, url) = serve(vec![Answer::FailRecords(vec![1, 3])]).await;
    let e = exporter(&url, "stream_name: s");
    let err = e.export(&events(5)).await.unwrap_err();
    assert!(err.retryable);
    assert!(
        err.message
            .contains("ProvisionedThroughputExceededException"),
        "{}",
        err.message
    );
    let failed = err.failed.unwrap();
    assert_eq!(event_ids(&failed), vec!["e1", "e3"]);
    assert!(err.rejected.is_empty());
    // The retry sends just those two, and they go through.
    e.export(&failed).await.unwrap();
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![5, 2]
    );
}

#[tokio::test]
async fn requests_are_packed_within_the_limits_and_oversized_records_refused() {
    let (server, url) = serve(Vec::new()).await;
    let e = exporter(
        &url,
        "stream_name: s\nlimits: { max_records_per_request: 2, max_record_bytes: 2KiB, max_request_bytes: 2KiB }",
    );
    let mut big = crate::aws::fixtures::event("big", "call-big", "CALL_STARTED", 0);
    big.data
        .insert("note".into(), Value::String("x".repeat(3000)));
    let mut records = crate::aws::fixtures::event_records(5);
    records.insert(2, big.to_log_record());
    let err = e
        .export(&crate::aws::fixtures::logs(records))
        .await
        .unwrap_err();
    assert_eq!(
        err.failed.as_ref().map(Batch::len),
        Some(0),
        "nothing to retry"
    );
    assert_eq!(err.rejected.len(), 1);
    assert_eq!(event_ids(&err.rejected[0].batch), vec!["big"]);
    assert!(
        err.rejected[0].reason.contains("over the 2048-byte limit"),
        "{}",
        err.rejected[0].reason
    );
    let requests = server.requests();
    // 5 records of ~400 bytes: at most 2 per request, and within 2 KiB.
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
}

#[tokio::test]
async fn a_throttled_request_is_retried_whole_and_a_bad_one_refused() {
    let (_server, url) = serve(vec![
        Answer::Error("LimitExceededException"),
        Answer::Error("InvalidArgumentException"),
    ])
    .await;
    let e = exporter(&url, "stream_name: s");
    let err = e.export(&events(3)).await.unwrap_err();
    assert!(
        err.retryable && err.message.contains("LimitExceededException"),
        "{}",
        err.message
    );
    assert_eq!(err.failed.map(|b| b.len()), Some(3));
    let err = e.export(&events(3)).await.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.rejected.iter().map(|r| r.batch.len()).sum::<usize>(), 3);
}

#[tokio::test]
async fn partition_keys_are_dialogue_ids_and_otlp_groups_records_by_key() {
    let (server, url) = serve(Vec::new()).await;
    let e = exporter(&url, "stream_name: s\nencoding: otlp_proto");
    let mut records = crate::aws::fixtures::event_records(2);
    records.push(crate::aws::fixtures::event("e9", "call-0", "CALL_ANSWERED", 5).to_log_record());
    e.export(&crate::aws::fixtures::logs(records.clone()))
        .await
        .unwrap();
    let requests = server.requests();
    // Two calls: two Kinesis records, keyed by their dialogue ids.
    let mut keys = requests[0].clone();
    keys.sort();
    let mut want: Vec<String> = records[..2]
        .iter()
        .map(|r| lumina_sdk::testkit::attr(&r.attributes, attr::DIALOGUE_ID).unwrap())
        .collect();
    want.sort();
    assert_eq!(keys, want);
}
