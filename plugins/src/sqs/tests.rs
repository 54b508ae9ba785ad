//! moto's SQS never fails one entry of a batch, so this server answers `SendMessageBatch` the
//! way the SQS API reference documents it for the AWS JSON 1.0 protocol the SDK speaks
//! (`X-Amz-Target: AmazonSQS.SendMessageBatch`; `Successful` and `Failed` entries with `Id`,
//! `SenderFault`, `Code`, `Message`; `__type` error bodies with HTTP 400).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::aws::fixtures::{dialogue, event_ids, events, logs};
use lumina_sdk::config;

/// What the server does with each request, in order; then it accepts everything.
#[derive(Clone)]
enum Answer {
    /// Fail these entries (by position): not the sender's fault, then the sender's.
    Fail {
        server: Vec<usize>,
        sender: Vec<usize>,
    },
    /// Refuse the whole request with this error type.
    Error(&'static str),
}

type Server = crate::aws::fixtures::Scripted<Answer, Vec<Value>>;

async fn handle(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let ct = [("content-type", "application/x-amz-json-1.0")];
    let target = crate::aws::fixtures::target(&headers);
    if target != "AmazonSQS.SendMessageBatch" {
        let e = json!({"__type": "com.amazonaws.sqs#UnsupportedOperation", "message": target});
        return (StatusCode::BAD_REQUEST, ct, e.to_string());
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let entries = req["Entries"].as_array().unwrap().clone();
    let answer = s.next(entries.clone());
    let (server, sender) = match answer {
        Some(Answer::Error(t)) => {
            let e = json!({"__type": format!("com.amazonaws.sqs#{t}"), "message": "The specified queue does not exist."});
            return (StatusCode::BAD_REQUEST, ct, e.to_string());
        }
        Some(Answer::Fail { server, sender }) => (server, sender),
        None => (Vec::new(), Vec::new()),
    };
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let id = e["Id"].as_str().unwrap();
        if server.contains(&i) {
            failed.push(json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "We encountered an internal error. Please try again."}));
        } else if sender.contains(&i) {
            failed.push(json!({"Id": id, "SenderFault": true, "Code": "InvalidMessageContents", "Message": "The message contains characters outside the allowed set."}));
        } else {
            ok.push(json!({"Id": id, "MessageId": format!("m-{i}"), "MD5OfMessageBody": "00000000000000000000000000000000"}));
        }
    }
    let out = json!({"Successful": ok, "Failed": failed});
    (StatusCode::OK, ct, out.to_string())
}

async fn serve(script: Vec<Answer>) -> (Arc<Server>, String) {
    crate::aws::fixtures::serve_scripted(script, handle).await
}

fn exporter(url: &str, yaml: &str) -> SqsExporter {
    let cfg: SqsConfig =
        config::parse(&lumina_sdk::config::parse_yaml(yaml, "t").unwrap()).unwrap();
    SqsExporter::new(
        aws_sdk_sqs::Client::new(&crate::aws::fixtures::sdk(url)),
        cfg,
    )
}

const STANDARD: &str = "queue_url: http://127.0.0.1/123456789012/dialogue-end";
const FIFO: &str = "queue_url: http://127.0.0.1/123456789012/dialogue-end.fifo";

#[tokio::test]
async fn only_failed_entries_are_retried_and_the_sender_s_faults_are_refused() {
    let (server, url) = serve(vec![Answer::Fail {
        server: vec![1, 3],
        sender: vec![4],
    }])
    .await;
    let e = exporter(&url, STANDARD);
    let err = e.export(&events(6)).await.unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("InternalError"), "{}", err.message);
    assert_eq!(event_ids(&err.failed.clone().unwrap()), vec!["e1", "e3"]);
    assert_eq!(err.rejected.len(), 1);
    assert_eq!(event_ids(&err.rejected[0].batch), vec!["e4"]);
    assert!(
        err.rejected[0].reason.contains("InvalidMessageContents"),
        "{}",
        err.rejected[0].reason
    );
    // The retry sends only those two, and they go through.
    e.export(&err.failed.unwrap()).await.unwrap();
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![6, 2]
    );
    // Each body is the event's native JSON.
    let body: Value =
        serde_json::from_str(requests[1][0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(body["eventId"], "e1");
}

#[tokio::test]
async fn requests_hold_at_most_ten_messages_and_the_byte_limit() {
    let (server, url) = serve(Vec::new()).await;
    let e = exporter(&url, STANDARD);
    e.export(&events(25)).await.unwrap();
    let sizes: Vec<usize> = server.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);

    let (server, url) = serve(Vec::new()).await;
    let one = events(1);
    let len = e
        .message(records(&one).remove(0))
        .ok()
        .unwrap()
        .0
        .body
        .len();
    let e = exporter(
        &url,
        &format!(
            "{STANDARD}\nlimits: {{ max_message_bytes: {}, max_request_bytes: {} }}",
            len + 5,
            2 * len + 20
        ),
    );
    e.export(&events(5)).await.unwrap();
    let sizes: Vec<usize> = server.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
}

#[tokio::test]
async fn fifo_messages_are_grouped_by_dialogue_and_deduplicated_by_what_they_are() {
    let (server, url) = serve(Vec::new()).await;
    let e = exporter(&url, FIFO);
    let mut recs = crate::aws::fixtures::event_records(2);
    recs.push(dialogue("d-7", 4, "COMPLETED"));
    e.export(&logs(recs)).await.unwrap();
    let entries = server.requests()[0].clone();
    let ids: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["MessageGroupId"].as_str().unwrap(),
                e["MessageDeduplicationId"].as_str().unwrap(),
            )
        })
        .collect();
    let d0 = lumina_sdk::testkit::voice_event("e0", "call-0", "CALL_STARTED", 0).dialogue_id;
    assert_eq!(ids[0], (d0.as_str(), "e0"));
    assert_eq!(ids[2], ("d-7", "d-7:4:lumina.dialogue.update"));

    // A standard queue takes neither.
    let (server, url) = serve(Vec::new()).await;
    exporter(&url, STANDARD).export(&events(1)).await.unwrap();
    let entry = server.requests()[0][0].clone();
    assert!(entry.get("MessageGroupId").is_none(), "{entry}");
    assert!(entry.get("MessageDeduplicationId").is_none(), "{entry}");
}

#[tokio::test]
async fn a_missing_queue_retries_the_whole_batch_and_a_record_of_no_voice_meaning_is_refused() {
    let (_server, url) = serve(vec![Answer::Error("QueueDoesNotExist")]).await;
    let e = exporter(&url, STANDARD);
    let mut recs = crate::aws::fixtures::event_records(3);
    recs.push(lumina_sdk::proto::logs::v1::LogRecord {
        event_name: "app.log".into(),
        ..Default::default()
    });
    let err = e.export(&logs(recs)).await.unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("QueueDoesNotExist"), "{}", err.message);
    assert_eq!(event_ids(&err.failed.unwrap()), vec!["e0", "e1", "e2"]);
    assert_eq!(err.rejected.len(), 1);
    assert!(
        err.rejected[0].reason.contains("app.log"),
        "{}",
        err.rejected[0].reason
    );
}

#[test]
fn the_config_is_checked() {
    let e = config::parse::<SqsConfig>(
        &lumina_sdk::config::parse_yaml(
            "queue_url: dialogue-end\nlimits: { max_messages_per_request: 11 }",
            "t",
        )
        .unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("queue_url"), "{e}");
    assert!(e.contains("max_messages_per_request"), "{e}");
}
