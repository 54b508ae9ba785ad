//! moto's Firehose never fails one record of a batch, so this server answers
//! `PutRecordBatch` the way the Firehose API reference documents it (JSON 1.1,
//! `X-Amz-Target: Firehose_20150804.PutRecordBatch`; `FailedPutCount` and per-record
//! `RecordId` or `ErrorCode`/`ErrorMessage`; `__type` error bodies with HTTP 400).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::aws::fixtures::{event_ids, events};
use lumina_sdk::config;

#[derive(Clone)]
enum Answer {
    /// Fail the records at these positions with `ServiceUnavailableException`.
    FailRecords(Vec<usize>),
    /// Refuse the whole request with this error type.
    Error(&'static str),
}

type Server = crate::aws::fixtures::Scripted<Answer, Vec<Vec<u8>>>;

async fn handle(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let ct = [("content-type", "application/x-amz-json-1.1")];
    let target = crate::aws::fixtures::target(&headers);
    if target != "Firehose_20150804.PutRecordBatch" {
        let e = json!({"__type": "UnknownOperationException"});
        return (StatusCode::BAD_REQUEST, ct, e.to_string());
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let data: Vec<Vec<u8>> = req["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let n = data.len();
    let answer = s.next(data);
    let fail = match answer {
        Some(Answer::Error(t)) => {
            let e = json!({"__type": t, "message": "Firehose lumina-metrics under account 123456789012 is not found."});
            return (StatusCode::BAD_REQUEST, ct, e.to_string());
        }
        Some(Answer::FailRecords(f)) => f,
        None => Vec::new(),
    };
    let responses: Vec<Value> = (0..n)
        .map(|i| {
            if fail.contains(&i) {
                json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
            } else {
                json!({"RecordId": format!("r{i}")})
            }
        })
        .collect();
    let out =
        json!({"FailedPutCount": fail.len(), "Encrypted": false, "RequestResponses": responses});
    (StatusCode::OK, ct, out.to_string())
}

async fn serve(script: Vec<Answer>) -> (Arc<Server>, String) {
    crate::aws::fixtures::serve_scripted(script, handle).await
}

fn exporter(url: &str, yaml: &str) -> FirehoseExporter {
    let cfg: FirehoseConfig =
        config::parse(&lumina_sdk::config::parse_yaml(yaml, "t").unwrap()).unwrap();
    FirehoseExporter::new(
        aws_sdk_firehose::Client::new(&crate::aws::fixtures::sdk(url)),
        cfg,
    )
}

#[tokio::test]
async fn only_the_records_firehose_failed_are_retried() {
    let (server, url) = serve(vec![Answer::FailRecords(vec![0, 2])]).await;
    let e = exporter(&url, "delivery_stream: s\nencoding: voice_json");
    let err = e.export(&events(4)).await.unwrap_err();
    assert!(err.retryable);
    assert!(
        err.message.contains("ServiceUnavailableException"),
        "{}",
        err.message
    );
    let failed = err.failed.unwrap();
    assert_eq!(event_ids(&failed), vec!["e0", "e2"]);
    e.export(&failed).await.unwrap();
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![4, 2]
    );
    // Each record is one line of native event JSON.
    let line = String::from_utf8(requests[1][1].clone()).unwrap();
    assert!(line.ends_with('\n'), "{line:?}");
    let v: Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["eventId"], "e2");
}

#[tokio::test]
async fn otlp_records_are_split_to_fit_and_requests_packed_within_the_limits() {
    let (server, url) = serve(Vec::new()).await;
    let one = events(1).encode_json().unwrap().len() + 1;
    let e = exporter(
        &url,
        &format!(
            "delivery_stream: s\nlimits: {{ max_records_per_request: 2, max_record_bytes: {}, max_request_bytes: {} }}",
            one * 2 + 40,
            one * 4 + 80
        ),
    );
    let batch = events(8);
    e.export(&batch).await.unwrap();
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.len() <= 2));
    let mut items = 0;
    for data in requests.iter().flatten() {
        assert!(data.len() <= one * 2 + 40);
        assert!(data.ends_with(b"\n"));
        let b = Batch::decode_json(Signal::Logs, &data[..data.len() - 1]).unwrap();
        items += b.len();
    }
    assert_eq!(items, 8, "every record is in exactly one Firehose record");
}

#[tokio::test]
async fn a_missing_stream_retries_everything_and_voice_json_refuses_metrics() {
    let (_server, url) = serve(vec![Answer::Error("ResourceNotFoundException")]).await;
    let e = exporter(&url, "delivery_stream: s\nencoding: voice_json");
    let err = e.export(&events(3)).await.unwrap_err();
    assert!(err.retryable);
    assert!(
        err.message.contains("ResourceNotFoundException"),
        "{}",
        err.message
    );
    assert_eq!(event_ids(&err.failed.unwrap()), vec!["e0", "e1", "e2"]);

    let metrics = lumina_sdk::testkit::metrics(1, 2);
    let err = e.export(&metrics).await.unwrap_err();
    assert_eq!(err.rejected.len(), 1);
    assert!(
        err.rejected[0].reason.contains("otlp_json"),
        "{}",
        err.rejected[0].reason
    );
}
