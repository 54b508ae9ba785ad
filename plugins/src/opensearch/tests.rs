//! The happy path against the OpenSearch emulator (`awsim-opensearch`); the error paths
//! against a server that answers with OpenSearch's documented `_bulk` error shapes, which the
//! emulator does not produce (it has no per-item `status`/`error`).

use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::*;

/// Sends a request to the stand-in and reads its JSON answer.
trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::RequestBuilder {
    async fn json_value(self) -> Value {
        self.send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap()
    }
}
use crate::aws::fixtures::{dialogue, event_ids, events, logs};

async fn listen(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

async fn exporter(yaml: &str) -> Arc<dyn Exporter> {
    let v = lumina_sdk::config::parse_yaml(yaml, "t").unwrap();
    let ctx = CreateContext::new("opensearch".parse().unwrap(), ComponentKind::Exporter);
    lumina_sdk::component::exporter::<OpenSearchConfig>()
        .create(&v, ctx)
        .await
        .unwrap()
}

#[tokio::test]
async fn dialogues_are_upserted_by_id_and_events_go_to_daily_indices() {
    let state = Arc::new(awsim_opensearch::state::OpenSearchState::ephemeral().unwrap());
    let url = listen(awsim_opensearch::router(state)).await;
    let e = exporter(&format!("endpoints: [{url}]\ndialogue_versioning: none")).await;
    let mut records = crate::aws::fixtures::event_records(3);
    records.push(dialogue("d-1", 1, "ACTIVE"));
    records.push(dialogue("d-1", 2, "COMPLETED"));
    e.export(&logs(records)).await.unwrap();
    let http = reqwest::Client::new();
    http.post(format!("{url}/_refresh")).send().await.unwrap();
    // The dialogue is one document, the latest update.
    let doc: Value = http
        .get(format!("{url}/dialogues/_doc/d-1"))
        .json_value()
        .await;
    assert_eq!(doc["_source"]["revision"], 2, "{doc}");
    assert_eq!(doc["_source"]["status"], "COMPLETED");
    // Searchable by its fields.
    let found: Value = http
        .post(format!("{url}/dialogues/_search"))
        .header("content-type", "application/json")
        .body(json!({"query": {"term": {"dialogueId": "d-1"}}}).to_string())
        .json_value()
        .await;
    assert_eq!(
        found["hits"]["hits"].as_array().unwrap().len(),
        1,
        "{found}"
    );
    // Events in the index of their day (2026-11-18 UTC), under their event ids.
    let count: Value = http
        .get(format!("{url}/voice-events-2026.11.18/_count"))
        .json_value()
        .await;
    assert_eq!(count["count"], 3, "{count}");
    let ev: Value = http
        .get(format!("{url}/voice-events-2026.11.18/_doc/e1"))
        .json_value()
        .await;
    assert_eq!(ev["_source"]["eventType"], "CALL_STARTED");
}

/// Answers `_bulk` per document id: ids listed in `fail` get that status and error (once),
/// a body over `max_body` gets 413, anything else succeeds.
#[derive(Default)]
struct ErrorServer {
    fail: Mutex<Vec<(String, u16, &'static str)>>,
    max_body: usize,
    /// The ids of every request.
    requests: Mutex<Vec<Vec<String>>>,
    /// Answer the next request with this status for the whole request.
    whole: Mutex<Option<u16>>,
    /// The `Authorization` header of every request.
    authorization: Mutex<Vec<Option<String>>>,
}

async fn bulk(
    State(s): State<Arc<ErrorServer>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    s.authorization.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    if let Some(code) = s.whole.lock().unwrap().take() {
        let e = json!({"error": {"root_cause": [{"type": "cluster_block_exception", "reason": "blocked"}], "type": "cluster_block_exception", "reason": "blocked"}, "status": code});
        return (StatusCode::from_u16(code).unwrap(), axum::Json(e)).into_response();
    }
    if body.len() > s.max_body {
        return (StatusCode::PAYLOAD_TOO_LARGE, "").into_response();
    }
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids = Vec::new();
    let mut items = Vec::new();
    let mut errors = false;
    for pair in lines.chunks(2) {
        let meta = &pair[0]["index"];
        let id = meta["_id"].as_str().unwrap().to_owned();
        let index = meta["_index"].as_str().unwrap();
        ids.push(id.clone());
        let failure = {
            let mut fail = s.fail.lock().unwrap();
            fail.iter()
                .position(|(f, _, _)| *f == id)
                .map(|i| fail.remove(i))
        };
        items.push(match failure {
            Some((_, status, kind)) => {
                errors = true;
                let reason = match kind {
                    "es_rejected_execution_exception" => "rejected execution of coordinating operation",
                    "version_conflict_engine_exception" => "version conflict, current version [5] is higher or equal to the one provided [2]",
                    _ => "failed to parse field [duration] of type [long] in document",
                };
                json!({"index": {"_index": index, "_id": id, "status": status,
                    "error": {"type": kind, "reason": reason}}})
            }
            None => json!({"index": {"_index": index, "_id": id, "_version": 1, "result": "created", "status": 201}}),
        });
    }
    s.requests.lock().unwrap().push(ids);
    axum::Json(json!({"took": 3, "errors": errors, "items": items})).into_response()
}

async fn error_server(s: ErrorServer) -> (Arc<ErrorServer>, String) {
    let s = Arc::new(s);
    let app = axum::Router::new()
        .route("/_bulk", axum::routing::post(bulk))
        .with_state(s.clone());
    (s.clone(), listen(app).await)
}

#[tokio::test]
async fn item_errors_retry_429s_dead_letter_mapping_errors_and_accept_stale_versions() {
    let (server, url) = error_server(ErrorServer {
        fail: Mutex::new(vec![
            ("e1".into(), 429, "es_rejected_execution_exception"),
            ("e2".into(), 400, "mapper_parsing_exception"),
            ("d-1".into(), 409, "version_conflict_engine_exception"),
        ]),
        max_body: usize::MAX,
        ..Default::default()
    })
    .await;
    let e = exporter(&format!("endpoints: [{url}]")).await;
    let mut records = crate::aws::fixtures::event_records(4);
    records.push(dialogue("d-1", 2, "ACTIVE"));
    let err = e.export(&logs(records)).await.unwrap_err();
    assert!(err.retryable);
    assert!(
        err.message.contains("429 es_rejected_execution_exception"),
        "{}",
        err.message
    );
    // Only the 429 is retried; the 409 on a versioned dialogue means a newer one is stored.
    let retry = err.failed.unwrap();
    assert_eq!(event_ids(&retry), vec!["e1"]);
    assert_eq!(err.rejected.len(), 1);
    assert_eq!(event_ids(&err.rejected[0].batch), vec!["e2"]);
    assert_eq!(
        err.rejected[0].reason,
        "400 mapper_parsing_exception: failed to parse field [duration] of type [long] in document"
    );
    e.export(&retry).await.unwrap();
    assert_eq!(
        server.requests.lock().unwrap().last().unwrap(),
        &vec!["e1".to_owned()]
    );
}

#[tokio::test]
async fn a_413_splits_the_request_and_a_5xx_retries_it_whole() {
    let (server, url) = error_server(ErrorServer {
        max_body: 1500,
        ..Default::default()
    })
    .await;
    let e = exporter(&format!("endpoints: [{url}]")).await;
    e.export(&events(6)).await.unwrap();
    let requests = server.requests.lock().unwrap().clone();
    assert!(requests.len() > 1, "{requests:?}");
    let mut all: Vec<String> = requests.concat();
    all.sort();
    assert_eq!(all, vec!["e0", "e1", "e2", "e3", "e4", "e5"]);
    *server.whole.lock().unwrap() = Some(503);
    let err = e.export(&events(2)).await.unwrap_err();
    assert!(
        err.retryable && err.message.contains("503"),
        "{}",
        err.message
    );
    assert_eq!(err.failed.map(|b| b.len()), Some(2));
}

#[tokio::test]
async fn a_second_endpoint_takes_over_when_the_first_is_down_and_records_that_are_not_voice_are_refused()
 {
    let (server, url) = error_server(ErrorServer {
        max_body: usize::MAX,
        ..Default::default()
    })
    .await;
    let dead = format!("http://127.0.0.1:{}", lumina_sdk::testkit::free_port());
    let e = exporter(&format!(
        "endpoints: [{dead}, {url}]\nauth: {{ basic: {{ username: u, password: p }} }}"
    ))
    .await;
    e.export(&events(2)).await.unwrap();
    // Basic authentication: base64 of `u:p`.
    assert_eq!(
        server.authorization.lock().unwrap().as_slice(),
        [Some("Basic dTpw".to_owned())]
    );
    let mut other = dialogue("x", 1, "ACTIVE");
    other.event_name = "app.log".into();
    let err = e.export(&logs(vec![other])).await.unwrap_err();
    assert!(!err.retryable);
    assert!(
        err.rejected[0]
            .reason
            .contains("`app.log` records are neither voice events nor dialogue records"),
        "{}",
        err.rejected[0].reason
    );
}

/// `DescribeDomain` as the Amazon OpenSearch Service API reference documents it
/// (`GET /2021-01-01/opensearch/domain/{DomainName}`, REST-JSON; an unknown domain is a 409
/// `ResourceNotFoundException`). No stand-in in reach implements this API.
async fn describe_domain(
    axum::extract::Path(name): axum::extract::Path<String>,
) -> axum::response::Response {
    if name != "voice" {
        let e = json!({"message": format!("Domain not found: {name}")});
        return (
            StatusCode::CONFLICT,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            axum::Json(e),
        )
            .into_response();
    }
    axum::Json(json!({"DomainStatus": {
        "ARN": "arn:aws:es:eu-west-1:123456789012:domain/voice",
        "DomainId": "123456789012/voice",
        "DomainName": "voice",
        "Endpoint": "search-voice-abc123.eu-west-1.es.amazonaws.com",
        "Created": true, "Deleted": false, "Processing": false,
        "ClusterConfig": {"InstanceType": "r6g.large.search", "InstanceCount": 2},
    }}))
    .into_response()
}

#[tokio::test]
async fn the_endpoint_of_a_domain_is_looked_up_by_name() {
    let url = listen(axum::Router::new().route(
        "/2021-01-01/opensearch/domain/{name}",
        axum::routing::get(describe_domain),
    ))
    .await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKID", "secret", None, None, "test"),
            ),
        )
        .http_client(crate::aws::http_client())
        .build();
    assert_eq!(
        describe(&sdk, "voice").await.unwrap(),
        "https://search-voice-abc123.eu-west-1.es.amazonaws.com"
    );
    let err = describe(&sdk, "nope").await.unwrap_err();
    assert!(
        err.contains("ResourceNotFoundException") && err.contains("Domain not found: nope"),
        "{err}"
    );
}

#[test]
fn a_version_conflict_tells_a_re_send_from_a_newer_stored_revision() {
    let conflict = |reason: &str| {
        VersionConflict::read(
            &json!({"type": "version_conflict_engine_exception", "reason": reason}),
        )
    };
    let same = conflict(
        "[d-1]: version conflict, current version [5] is higher or equal to the one provided [5]",
    )
    .unwrap();
    assert_eq!(same.outcome(), "already_indexed");
    let newer = conflict(
        "[d-1]: version conflict, current version [7] is higher or equal to the one provided [2]",
    )
    .unwrap();
    assert_eq!(
        (newer.current, newer.provided, newer.outcome()),
        (7, 2, "superseded")
    );
    assert_eq!(conflict("something else"), None);
    assert_eq!(
        VersionConflict::read(&json!({"type": "mapper_parsing_exception", "reason": "x"})),
        None,
        "any other 409 is refused like any other error"
    );
}
